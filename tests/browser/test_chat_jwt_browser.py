"""The chat in JWT mode in headless chromium (examples/chat/README.md, "JWT mode"): the page logs
in through the server's /login, connects with the token, and refreshes it over the open
connection before it expires (the TypeScript client's getToken) -- one WebSocket for the
whole visit, while the server closes a connection whose token expired unrefreshed after 1 s.
Same set-up as the chat's browser tests (conftest.py: fails on any console error)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import ChatServer, Pages
from playwright.sync_api import Request, WebSocket, expect
from test_chat_browser import SENT, join, send

SECRET = "a-chat-secret-of-at-least-32-bytes!"
#: Seconds a login token lives, and a connection stays open past an unrefreshed token.
LIFETIME, GRACE = 4, 1


@pytest.fixture
def jwt_server(tmp_path: Path, pages: Pages) -> Iterator[ChatServer]:
    server = ChatServer(tmp_path, env={
        "SIGMASOCKETS_JWT_SECRET": SECRET, "SIGMASOCKETS_JWT_LOGIN": "1",
        "SIGMASOCKETS_JWT_LIFETIME": str(LIFETIME), "SIGMASOCKETS_JWT_GRACE": str(GRACE)})
    server.start()
    yield server
    pages.close()  # before the server goes (conftest.py, `pages`)
    assert server.stop() == 0, server.log()


def test_page_refreshes_its_token_without_reconnecting(jwt_server: ChatServer,
                                                       pages: Pages) -> None:
    alice = pages.open(jwt_server.url)
    logins: list[str] = []
    sockets: list[WebSocket] = []

    def on_request(request: Request) -> None:
        if "/login?" in request.url:
            logins.append(request.url)

    def on_websocket(socket: WebSocket) -> None:  # (Playwright cannot take a bound method)
        sockets.append(socket)

    alice.on("request", on_request)
    alice.on("websocket", on_websocket)
    join(alice, "Alice")
    assert len(logins) == 1
    assert alice.get_by_test_id("status").get_attribute("data-status") == "connected"
    # Three token lifetimes: each token lives 4 s, and an unrefreshed one is cut 1 s after.
    deadline = time.monotonic() + 3 * LIFETIME
    while time.monotonic() < deadline:
        expect(alice.get_by_test_id("status")).to_have_attribute("data-status", "connected")
        alice.wait_for_timeout(250)
    assert len(logins) >= 3, logins  # asked again before each expiry (halfway: every ~2 s)
    assert len(sockets) == 1  # refreshed over the open connection, never reconnected
    assert not sockets[0].is_closed()
    send(alice, "still here")
    expect(alice.locator(SENT, has_text="still here")).to_have_count(1)
    assert "4010" not in jwt_server.log()

