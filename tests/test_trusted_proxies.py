"""Behind a reverse proxy the per-address session limits count clients, not the proxy
(``ServerOptions.trusted_proxies``, docs/operations.md "Behind a reverse proxy"): for a socket
from a trusted proxy the client's address comes from ``X-Forwarded-For``; from anywhere else the
header is ignored, so a client cannot pick its own address.
"""

from __future__ import annotations

import contextlib

import anyio
import pytest
from adapters_support import BACKENDS, make_client, serving, url

from sigma_core.api import ServerOptions
from sigma_core.errors import ConnectionFailed
from sigma_core.hub import HubConfig
from sigma_core.proxies import TrustedProxies


def test_the_header_counts_only_from_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])
    xff = [("x-forwarded-for", "203.0.113.9")]
    assert proxies.client_address("127.0.0.1", xff) == "203.0.113.9"
    assert proxies.client_address("10.1.2.3", xff) == "203.0.113.9"
    assert proxies.client_address("::1", xff) == "203.0.113.9"
    # Not a proxy: its header is its own invention.
    assert proxies.client_address("198.51.100.7", xff) == "198.51.100.7"
    # No header, or only proxies in it: the proxy's address stays.
    assert proxies.client_address("127.0.0.1", []) == "127.0.0.1"
    assert proxies.client_address("127.0.0.1", [("x-forwarded-for", "10.0.0.5")]) == "127.0.0.1"


def test_the_header_is_read_from_the_right_past_trusted_hops() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    # A client wrote "1.2.3.4" itself; nginx appended the address it saw; an inner proxy too.
    headers = [("x-forwarded-for", "1.2.3.4, 203.0.113.9"), ("x-forwarded-for", "10.0.0.7")]
    assert proxies.client_address("127.0.0.1", headers) == "203.0.113.9"
    # Ports and IPv6 in brackets, as some proxies write them.
    assert proxies.client_address("127.0.0.1", [("x-forwarded-for", "203.0.113.9:5555")]) \
        == "203.0.113.9"
    assert proxies.client_address("127.0.0.1", [("x-forwarded-for", "[2001:db8::1]:443")]) \
        == "2001:db8::1"
    # Garbage before any client address: the proxy's address, not the garbage.
    assert proxies.client_address("127.0.0.1", [("x-forwarded-for", "unknown")]) == "127.0.0.1"


@pytest.mark.parametrize("entry", ["localhost", "10.0.0.0/33", "", "1.2.3"])
def test_a_bad_entry_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        HubConfig(trusted_proxies=(entry,))
    with pytest.raises(ValueError, match="trusted_proxies"):
        ServerOptions(trusted_proxies=(entry,)).hub_config()


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.mark.anyio
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
async def test_clients_behind_a_proxy_are_counted_apart(anyio_backend: str,
                                                        trusted: bool) -> None:
    # One session per address. Every client connects from 127.0.0.1 (the "proxy") with its
    # own X-Forwarded-For. Trusted: three clients, three addresses, three sessions; a fourth
    # with the first one's address is refused. Untrusted: the header is ignored and the second
    # client is already one too many.
    with anyio.fail_after(30):
        async with serving(anyio_backend, max_sessions_per_peer=1,
                           trusted_proxies=("127.0.0.1",) if trusted else ()) as server:
            admitted = 0
            async with contextlib.AsyncExitStack() as stack:
                for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1"):
                    client = make_client(anyio_backend, url(server), max_reconnect_attempts=1,
                                         extra_headers=(("X-Forwarded-For", address),))
                    try:
                        await stack.enter_async_context(client)
                    except ConnectionFailed:
                        break
                    admitted += 1
                assert admitted == (3 if trusted else 1)
