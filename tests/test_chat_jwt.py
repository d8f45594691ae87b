"""The chat demo's JWT mode (``SIGMASOCKETS_JWT_*``, examples/chat/auth.py): configuration from
the environment, the login endpoint, and a real server admitting a token's user and refusing a
forged one."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from sigma_asyncio import ClientOptions, SigmaSocketClient
from sigma_core.api import HttpRequest, HttpResponse
from sigma_core.errors import ConnectionFailed
from sigma_core.serializers import JSON

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `examples.chat` lives beside the packages, not in them
    sys.path.insert(0, str(REPO))

from examples.chat.app import ChatApp  # noqa: E402
from examples.chat.auth import ChatJwt, login_handler, parse_jwt_env  # noqa: E402
from examples.chat.server import ChatConfig, build_server, parse_config  # noqa: E402

SECRET = "chat-demo-secret-" + "q" * 20
DEADLINE = 10.0


def test_jwt_mode_is_off_unless_a_key_is_given() -> None:
    assert parse_jwt_env({}) is None
    assert parse_config([], {}).jwt is None
    mode = parse_jwt_env({"SIGMASOCKETS_JWT_SECRET": SECRET, "SIGMASOCKETS_JWT_LOGIN": "1",
                          "SIGMASOCKETS_JWT_AUDIENCE": "chat",
                          "SIGMASOCKETS_JWT_LIFETIME": "120"})
    assert mode == ChatJwt(algorithms=("HS256",), secret=SECRET, audience="chat", login=True,
                           lifetime=120.0)


@pytest.mark.parametrize(("env", "message"), [
    ({"SIGMASOCKETS_JWT_JWKS_URL": "https://k.example/jwks", "SIGMASOCKETS_JWT_LOGIN": "1"},
     "LOGIN needs SIGMASOCKETS_JWT_SECRET"),
    ({"SIGMASOCKETS_JWT_SECRET": "short"}, "needs at least 32"),
    ({"SIGMASOCKETS_JWT_SECRET": SECRET, "SIGMASOCKETS_JWT_ALGORITHMS": "none"},
     "'none' is not allowed"),
])
def test_inconsistent_jwt_variables_are_refused(env: dict[str, str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config([], env)
    assert message in capsys.readouterr().err


def test_login_endpoint_issues_tokens_and_passes_the_rest_on() -> None:
    mode = ChatJwt(algorithms=("HS256",), secret=SECRET, login=True, lifetime=60)

    def static(_: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    handle = login_handler(mode, static, clock=lambda: 1000.0)
    ok = handle(HttpRequest(method="GET", path="/login?user=Ann%20B", headers=()))
    body = json.loads(ok.body)
    assert ok.status == 200
    assert body["expires_at"] == 1060.0
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"],
                        options={"verify_exp": False})
    assert (claims["sub"], claims["info"], claims["exp"]) == ("Ann B", {"name": "Ann B"}, 1060)
    assert handle(HttpRequest(method="GET", path="/login?user=", headers=())).status == 400
    assert handle(HttpRequest(method="GET", path="/index.html", headers=())).status == 404


def test_login_without_jwt_mode_says_no_token_is_needed() -> None:
    # The web app asks /login first: without JWT mode it connects with the bare name.
    def static(_: HttpRequest) -> HttpResponse:
        return HttpResponse(status=404)

    handle = login_handler(None, static)
    answer = handle(HttpRequest(method="GET", path="/login?user=Ann", headers=()))
    assert (answer.status, json.loads(answer.body)) == (200, {"token": None})
    # Whatever the name: the server's Hello check refuses a bad one with its reason (4005).
    empty = handle(HttpRequest(method="GET", path="/login?user=", headers=()))
    assert (empty.status, json.loads(empty.body)) == (200, {"token": None})


def test_grace_comes_from_the_environment() -> None:
    mode = parse_jwt_env({"SIGMASOCKETS_JWT_SECRET": SECRET, "SIGMASOCKETS_JWT_GRACE": "2.5"})
    assert mode is not None
    assert mode.grace == 2.5
    with pytest.raises(ValueError, match="GRACE"):
        parse_jwt_env({"SIGMASOCKETS_JWT_SECRET": SECRET, "SIGMASOCKETS_JWT_GRACE": "-1"})


@pytest.mark.anyio
async def test_chat_server_admits_a_login_token_and_refuses_a_forged_one() -> None:
    mode = ChatJwt(algorithms=("HS256",), secret=SECRET, login=True)
    app = ChatApp(rooms=("general",), log=False)
    server = build_server(ChatConfig(host="127.0.0.1", port=0, jwt=mode), app)
    async with asyncio.timeout(DEADLINE):
        await server.start()
        try:
            token = mode.issue("Ann", time.time())
            url = f"ws://127.0.0.1:{server.port}/ws"
            inbox: list[Any] = []
            client = SigmaSocketClient(ClientOptions(url=url, auth_token=token,
                                                     serializer=JSON))
            client.on("message", lambda data, *_: inbox.append(data))
            async with client:
                while not any(m.get("t") == "hello" for m in inbox):
                    await asyncio.sleep(0.01)
                hello = next(m for m in inbox if m.get("t") == "hello")
                assert hello["user"] == "Ann"
            forged = jwt.encode({"sub": "Ann", "exp": 4_000_000_000}, "x" * 40,
                                algorithm="HS256")
            intruder = SigmaSocketClient(ClientOptions(url=url, auth_token=forged,
                                                       serializer=JSON))
            with pytest.raises(ConnectionFailed, match="token bad signature"):
                async with intruder:
                    pass  # pragma: no cover - refused
        finally:
            await server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
