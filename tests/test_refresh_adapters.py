"""Token refresh and serializer negotiation over real sockets, on both adapters: a client with
``get_token`` refreshes over its open connection before its credentials expire and stays
connected past them; a client whose serializer is not the server's is refused at connect time
(close 4011) and does not retry."""

from __future__ import annotations

import time

import anyio
import jwt
import pytest
from adapters_support import (
    BACKENDS,
    DEADLINE,
    Recorder,
    any_server,
    connected_client,
    make_client,
    serving,
    session_of,
    url,
)

from sigma_auth import JwtConfig
from sigma_core.client import ConnectionStatus
from sigma_core.errors import ConnectionFailed
from sigma_core.serializers import JSON

pytestmark = pytest.mark.anyio

SECRET = "refresh-test-secret-" + "r" * 44
HS = JwtConfig(algorithms=("HS256",), secret=SECRET)


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def token(lifetime: float) -> str:
    return jwt.encode({"sub": "alice", "exp": time.time() + lifetime}, SECRET, algorithm="HS256")


@any_server
async def test_get_token_refreshes_before_expiry_and_the_connection_stays(
        anyio_backend: str) -> None:
    asked: list[float] = []

    async def get_token() -> str:
        asked.append(time.time())
        return token(60)

    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, jwt=HS, credentials_grace=0.3) as server:
            events = Recorder(server, "disconnection")
            async with connected_client(anyio_backend, url(server), auth_token=token(1.5),
                                        get_token=get_token, token_refresh_margin=1.0) as client:
                first = session_of(server, client).credentials_expire_at
                await anyio.sleep(2.5)  # past the first token's exp + grace
                assert client.get_status() is ConnectionStatus.CONNECTED
                assert len(asked) == 1
                session = session_of(server, client)
                assert session.credentials_expire_at is not None
                assert first is not None
                assert session.credentials_expire_at > first + 30
                assert events.calls["disconnection"] == []  # never closed with 4010


async def test_serializer_mismatch_is_refused_at_connect_without_retries(
        anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, serializer=JSON) as server:
            rejected = Recorder(server, "rejected")
            client = make_client(anyio_backend, url(server))  # raw
            log = Recorder(client, "reconnecting")
            with pytest.raises(ConnectionFailed, match="serializer mismatch"):
                async with client:
                    pass  # pragma: no cover - refused
            assert log.calls["reconnecting"] == []
            _, why = await rejected.wait("rejected")
            assert why.startswith("serializer_mismatch: serializer mismatch: this server uses "
                                  "'json', the client 'raw'")
