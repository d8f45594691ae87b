"""JWT authentication over real sockets, on both adapters (``ServerOptions.jwt``).

Every bad token is refused with close 4005 and ``token <reason>``, the client does not retry,
and no log line carries the token. A JWKS endpoint that hangs or is down refuses everyone as
"come back later" (close 1013) without blocking the event loop; once it answers, the client that
kept retrying gets in.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import jwt
import pytest
from adapters_support import (
    BACKENDS,
    DEADLINE,
    LOCAL,
    Recorder,
    any_server,
    connected_client,
    make_client,
    serving,
    session_of,
    url,
)
from anyio.abc import SocketAttribute, SocketStream
from cryptography.hazmat.primitives.asymmetric import ec

from sigma_auth import JwtConfig
from sigma_core.client import ConnectionStatus
from sigma_core.errors import ConnectionFailed

pytestmark = pytest.mark.anyio

SECRET = "adapter-test-secret-" + "z" * 44


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def token(**overrides: Any) -> str:
    claims = {"sub": "alice", "aud": "chat", "exp": time.time() + 300,
              "info": {"name": "Alice"}, **overrides}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def unsigned() -> str:
    def part(obj: dict[str, Any]) -> str:
        return jwt.utils.base64url_encode(json.dumps(obj).encode()).decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': 'alice', 'aud': 'chat'})}."


HS = JwtConfig(algorithms=("HS256",), secret=SECRET, audience="chat")

BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: token(exp=time.time() - 60),
    "not yet valid": lambda: token(nbf=time.time() + 600),
    "bad signature": lambda: jwt.encode({"sub": "alice", "aud": "chat",
                                         "exp": time.time() + 300},
                                        "wrong-" + "k" * 58, algorithm="HS256"),
    "wrong audience": lambda: token(aud="billing"),
    "algorithm not allowed": unsigned,
    "too large": lambda: token(info={"blob": "x" * 10_000}),
    "malformed": lambda: "this.is-not.a-token",
}


@any_server
@pytest.mark.parametrize("reason", list(BAD_TOKENS))
async def test_bad_token_is_refused_for_good_without_logging_it(
        anyio_backend: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bad = BAD_TOKENS[reason]()
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, jwt=HS) as server:
            events = Recorder(server, "rejected", "connection")
            client = make_client(anyio_backend, url(server), auth_token=bad)
            log = Recorder(client, "reconnecting")
            with pytest.raises(ConnectionFailed, match=f"token {reason}"):
                async with client:
                    pass  # pragma: no cover - refused
            assert client.get_status() is ConnectionStatus.ERROR
            assert log.calls["reconnecting"] == []  # a refused token is not retried
            _, why = await events.wait("rejected")
            assert why.startswith(f"auth_failed: token {reason}")
            assert events.calls["connection"] == []
    logged = [r.getMessage() + repr(getattr(r, "__dict__", {})) for r in caplog.records]
    assert any(f"token {reason}" in line for line in logged)
    assert not any(bad in line for line in logged)


@any_server
async def test_valid_token_carries_identity_and_info(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, jwt=HS) as server, \
                connected_client(anyio_backend, url(server),
                                 auth_token=token(channels=["lobby"])) as client:
            session = session_of(server, client)
            assert (session.identity, session.metadata) == ("alice", {"name": "Alice"})
            assert "lobby" in session.subscriptions


# ----------------------------------------------------------------------------- JWKS


class JwksEndpoint:
    """A tiny HTTP server for one JWKS document: ``hang`` makes it accept and never answer."""

    def __init__(self) -> None:
        self.port = 0
        self.hang = True
        self.document: dict[str, Any] = {"keys": []}
        self.requests = 0

    async def handle(self, stream: SocketStream) -> None:
        async with stream:
            self.requests += 1
            with anyio.move_on_after(DEADLINE):
                await stream.receive()
                if self.hang:
                    await anyio.sleep(DEADLINE)
                    return
                body = json.dumps(self.document).encode()
                await stream.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                  b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                                  % (len(body), body))


@asynccontextmanager
async def jwks_endpoint() -> AsyncIterator[JwksEndpoint]:
    endpoint = JwksEndpoint()
    async with await anyio.create_tcp_listener(local_host=LOCAL) as listener, \
            anyio.create_task_group() as tasks:
        endpoint.port = listener.extra(SocketAttribute.local_port)
        tasks.start_soon(listener.serve, endpoint.handle)
        try:
            yield endpoint
        finally:
            tasks.cancel_scope.cancel()


async def test_jwks_endpoint_hanging_blocks_nothing_and_admits_nobody(
        anyio_backend: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "k1"
    good = jwt.encode({"sub": "carol", "exp": time.time() + 300}, key, algorithm="ES256",
                      headers={"kid": "k1"})
    with anyio.fail_after(DEADLINE * 2):
        async with jwks_endpoint() as endpoint:
            config = JwtConfig(algorithms=("ES256",),
                               jwks_url=f"http://{LOCAL}:{endpoint.port}/jwks",
                               jwks_timeout=0.3, jwks_retry_interval=0.2)
            async with serving(anyio_backend, jwt=config) as server:
                events = Recorder(server, "rejected", "connection")
                client = make_client(anyio_backend, url(server), auth_token=good)
                retries = Recorder(client, "reconnecting")
                done = anyio.Event()

                async def hold() -> None:  # `async with client` waits until connected
                    async with client:
                        await done.wait()

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(hold)
                    # While the fetch hangs in its thread, the loop still answers: refusals
                    # that say "come back later", and the client keeps coming back.
                    await events.wait("rejected", 2)
                    assert {why for _, why in events.calls["rejected"]} == {
                        "try_again_later: token keys unavailable: the JWKS could not be "
                        "fetched"}
                    await retries.wait("reconnecting", 2)
                    assert events.calls["connection"] == []
                    endpoint.document = {"keys": [jwk]}
                    endpoint.hang = False
                    await events.wait("connection")
                    (session,) = events.calls["connection"][0]
                    assert session.identity == "carol"
                    done.set()
