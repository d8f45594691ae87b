"""SigmaASGIApp in host apps and under real ASGI servers.

In-process (uvicorn in the test's loop, asgi_support.ASGIServer): the FastAPI example (REST
publish, login cookie read by the authenticate hook, the page), a FastAPI app that mounts the
app and forwards its lifespan, Starlette's authentication middleware (``scope["user"]``), the
timer with no lifespan at all, and a Django project. As subprocesses, stopped by PID: the
example under uvicorn on uvloop, hypercorn's trio worker and granian, each through connect,
echo, topics over REST, resume after a cut and shutdown. The scenario suite itself runs on
uvicorn and hypercorn in test_adapters.py and test_hostile_input.py (``any_server``).
"""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from adapters_support import (
    DEADLINE,
    LOCAL,
    ROOT,
    Recorder,
    connected_client,
    next_message,
    proxy_to,
    session_of,
)
from asgi_support import ASGIServer

from sigma_asgi import ASGIAuthRequest, AuthAccept, AuthRefuse, AuthRequest, SigmaASGIApp

pytestmark = pytest.mark.anyio

if str(ROOT) not in sys.path:  # the examples package sits at the repository's root
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def ws_url(port: int, path: str = "/ws") -> str:
    return f"ws://{LOCAL}:{port}{path}"


# ----------------------------------------------------------------------------- the FastAPI example


async def test_fastapi_example_publishes_over_rest_to_a_room() -> None:
    from examples.fastapi_app.app import app

    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=app) as server, \
                httpx.AsyncClient(base_url=f"http://{LOCAL}:{server.port}") as http:
            page = await http.get("/")
            assert page.status_code == 200
            assert "SigmaSocketClient" in page.text
            assert "client.subscribe(room)" in page.text

            login = await http.post("/login", json={"user": "alice"})
            assert login.status_code == 200
            cookie = f"login={login.cookies['login']}"
            async with connected_client("asyncio", ws_url(server.port),
                                        extra_headers=(("Cookie", cookie),)) as alice, \
                    connected_client("asyncio", ws_url(server.port)) as guest:
                assert session_of(server, alice).identity == "alice"  # the REST login carried over
                assert session_of(server, guest).identity == "guest"
                events = Recorder(alice, "subscribed")
                alice.subscribe("lobby")
                await events.wait("subscribed")

                answer = await http.post("/rooms/lobby/messages", content=b"hello room",
                                         headers={"content-type": "application/octet-stream"})
                assert answer.status_code == 200
                assert answer.json()["offset"] == 1
                assert answer.json()["subscribers"] == 1
                message = await next_message(alice)
                assert (message.topic, message.data, message.message_id) == (
                    "lobby", b"hello room", 1)

                assert guest.send(b"echo me")  # no topic: echoed to its sender
                assert (await next_message(guest)).data == b"echo me"
                assert guest.send(b"to the lobby", topic="lobby")  # a room: published there
                assert (await next_message(alice)).data == b"to the lobby"
                stats = (await http.get("/stats")).json()
                assert stats["connected_clients"] == 2


# ----------------------------------------------------------------------------- host apps


async def test_mounted_in_fastapi_with_its_lifespan_and_auth_middleware() -> None:
    from fastapi import FastAPI
    from starlette.authentication import (
        AuthCredentials,
        AuthenticationBackend,
        SimpleUser,
    )
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.requests import HTTPConnection

    class TokenCookie(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection
                               ) -> tuple[AuthCredentials, SimpleUser] | None:
            name = conn.cookies.get("token")
            return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

    seen: list[ASGIAuthRequest] = []

    def authenticate(request: AuthRequest | ASGIAuthRequest) -> AuthAccept | AuthRefuse:
        assert isinstance(request, ASGIAuthRequest)
        seen.append(request)
        if not request.user.is_authenticated:
            return AuthRefuse(message="log in first")
        return AuthAccept(identity=request.user.display_name)

    sigma = SigmaASGIApp(authenticate=authenticate)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with sigma:  # a mounted app gets no lifespan of its own
            yield

    api = FastAPI(lifespan=lifespan,
                  middleware=[Middleware(AuthenticationMiddleware, backend=TokenCookie())])
    api.mount("/realtime", sigma)

    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=sigma, asgi=api) as server:
            url = ws_url(server.port, "/realtime/?room=1")
            async with connected_client("asyncio", url, extra_headers=(
                    ("Cookie", "token=bob; theme=dark"), ("X-App", "tests"))) as client:
                assert session_of(server, client).identity == "bob"
            request = seen[0]
            assert request.path == "/realtime/?room=1"
            assert request.header("x-app") == "tests"
            assert request.cookies == {"token": "bob", "theme": "dark"}
            assert request.scope["type"] == "websocket"
            assert request.user.display_name == "bob"

            refused = connected_client("asyncio", ws_url(server.port, "/realtime/"),
                                       max_reconnect_attempts=1)
            with pytest.raises(Exception, match="log in first"):
                async with refused:
                    pass  # pragma: no cover - refused
        assert not sigma._accepting  # the host's lifespan stopped it


async def test_http_without_an_inner_app_gets_404_and_the_timer_runs_without_lifespan() -> None:
    sigma = SigmaASGIApp(heartbeat_interval=0.05, heartbeat_timeout=2.0)
    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=sigma, lifespan=False) as server:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://{LOCAL}:{server.port}/")
            assert answer.status_code == 404
            assert sigma.hub is None  # started by the first WebSocket
            async with connected_client("asyncio", ws_url(server.port)):
                # The server's heartbeat (a hub timer) ran and measured the round trip.
                while sigma.get_stats().average_latency == 0:
                    await anyio.sleep(0.02)


async def test_a_request_without_the_subprotocol_is_refused() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    sigma = SigmaASGIApp()
    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=sigma) as server:
            events = Recorder(server, "rejected")
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(server.port, "/")):
                    pass  # pragma: no cover - refused
            assert refused.value.response.status_code == 400
            assert b"no supported subprotocol" in refused.value.response.body
            _, reason = await events.wait("rejected")
            assert "no supported subprotocol" in reason


async def test_a_cluster_engine_that_nothing_runs_refuses_websockets_with_503(
        caplog: pytest.LogCaptureFixture) -> None:
    """docs/asgi.md: the engine's driver runs in the lifespan; served without one, the app
    refuses WebSockets (HTTP 503) and logs why, rather than serve without its engine."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from sigma_redis import RedisEngine, RedisEngineConfig

    engine = RedisEngine(RedisEngineConfig(url=f"redis://{LOCAL}:1/0"))
    sigma = SigmaASGIApp(engine=engine)
    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=sigma, lifespan=False) as server:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(ws_url(server.port), subprotocols=["sigma.v1"]):  # type: ignore[list-item]
                    pass  # pragma: no cover - refused
            assert refused.value.response.status_code == 503
            assert b"cluster engine not running" in refused.value.response.body
    assert "nothing runs it" in caplog.text


# ----------------------------------------------------------------------------- Django


async def test_django_project_wrapped_in_sigma() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(SECRET_KEY="tests", ALLOWED_HOSTS=["*"], INSTALLED_APPS=[],
                           ROOT_URLCONF="django_urls", DEBUG=False, USE_TZ=True)
        django.setup()
    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application()
    sigma = SigmaASGIApp(app=django_app)  # as in docs/asgi.md
    sigma.on("message", lambda client, data, topic: sigma.send_to_client(client, data))
    with anyio.fail_after(DEADLINE):
        async with ASGIServer("uvicorn", sigma=sigma) as server:
            async with httpx.AsyncClient() as http:
                answer = await http.get(f"http://{LOCAL}:{server.port}/hello/")
            assert (answer.status_code, answer.text) == (200, "hello from django")
            async with connected_client("asyncio", ws_url(server.port)) as client:
                assert client.send(b"ping")
                assert (await next_message(client)).data == b"ping"


# ----------------------------------------------------------------------------- real servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        port: int = sock.getsockname()[1]
        return port


APP = "examples.fastapi_app.app:app"
COMMANDS: dict[str, list[str]] = {
    "uvicorn-uvloop": ["-m", "uvicorn", APP, "--host", LOCAL, "--port", "{port}",
                       "--loop", "uvloop", "--log-level", "warning"],
    "hypercorn-trio": ["-m", "hypercorn", APP, "--bind", f"{LOCAL}:{{port}}", "-k", "trio",
                       "--graceful-timeout", "2"],
    "granian": ["-m", "granian", "--interface", "asgi", "--host", LOCAL, "--port", "{port}",
                "--log-level", "warning", APP],
}


@asynccontextmanager
async def subprocess_server(name: str) -> AsyncIterator[tuple[int, anyio.abc.Process]]:
    """The example app under a real server, as a subprocess on a free port; killed by PID at
    the end if it is still there."""
    port = _free_port()
    command = [sys.executable, *(a.format(port=port) for a in COMMANDS[name])]
    process = await anyio.open_process(command, cwd=ROOT, stdin=subprocess.DEVNULL,
                                       stdout=None, stderr=None)
    try:
        async with httpx.AsyncClient() as http:
            with anyio.fail_after(20):  # a cold start of a server on a loaded machine
                while True:
                    try:
                        if (await http.get(f"http://{LOCAL}:{port}/stats")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert process.returncode is None, f"{name} exited"
                    await anyio.sleep(0.1)
        yield port, process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()


@pytest.mark.parametrize("name", [
    "uvicorn-uvloop", "hypercorn-trio",
    pytest.param("granian", marks=pytest.mark.skipif(
        importlib.util.find_spec("granian") is None, reason="granian does not install here")),
])
async def test_example_under_a_real_server(name: str) -> None:
    with anyio.fail_after(DEADLINE * 3):
        async with subprocess_server(name) as (port, process), \
                httpx.AsyncClient(base_url=f"http://{LOCAL}:{port}") as http, \
                proxy_to(port) as proxy, connected_client("asyncio", ws_url(proxy.port)) as client:
            log = Recorder(client, "subscribed", "disconnection", "reconnecting")
            # connect + echo
            assert client.send(b"echo")
            assert (await next_message(client)).data == b"echo"
            # topics, published over REST
            client.subscribe("room")
            await log.wait("subscribed")
            answer = await http.post("/rooms/room/messages", content=b"r1")
            assert answer.json()["subscribers"] == 1
            message = await next_message(client)
            assert (message.topic, message.data) == ("room", b"r1")
            # resume after a cut: what was published meanwhile is replayed, once
            before = client.get_session()
            assert before is not None
            proxy.refusing = True
            proxy.cut()
            await log.wait("reconnecting")
            await http.post("/rooms/room/messages", content=b"while away")
            proxy.refusing = False
            await client.connect()
            after = client.get_session()
            assert after is not None
            assert (after.id, after.resumed) == (before.id, True)
            message = await next_message(client)
            assert (message.topic, message.data, message.message_id) == (
                "room", b"while away", 2)
            # shutdown: SIGTERM, the server exits and the client loses its connection
            process.send_signal(signal.SIGTERM)
            await log.wait("disconnection", 2)
            with anyio.fail_after(10):
                await process.wait()




# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(("options", "match"), [
    ({"ssl": object()}, "ServerOptions.ssl: TLS is the ASGI server's"),
    ({"http_handler": lambda request: None}, "http_handler: plain HTTP goes to the inner app"),
    ({"compression_enabled": True}, "compression_enabled: permessage-deflate is the ASGI"),
])
def test_options_that_belong_to_the_asgi_server_are_refused(options: dict[str, Any],
                                                            match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SigmaASGIApp(**options)


def test_asgi_scope_of_a_native_request_is_none() -> None:
    from sigma_asgi import asgi_scope
    from sigma_core.messages import Hello

    native = AuthRequest(hello=Hello(), path="/", headers=())
    assert asgi_scope(native) is None
    scoped = ASGIAuthRequest(hello=Hello(), path="/", headers=(("cookie", "a=1; b=2"),),
                             scope={"type": "websocket", "user": "u"})
    assert asgi_scope(scoped) == {"type": "websocket", "user": "u"}
    assert (scoped.cookies, scoped.user) == ({"a": "1", "b": "2"}, "u")
    broken = ASGIAuthRequest(hello=Hello(), path="/", headers=(("cookie", "\x00bad;;="),),
                             scope={})
    assert (broken.cookies, broken.user) == ({}, None)
