"""The chat server without a browser: the static-file handler, configuration, and the chat
protocol driven by the Python client over real sockets (see examples/chat/README.md)."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chat_support import REPO, ChatServer, Pages
from playwright.sync_api import expect

from examples.chat.app import ChatApp, ChatLimits, clean_username
from examples.chat.server import ChatConfig, build_server, parse_config
from examples.chat.static import HttpRequest, StaticFiles
from sigma_asyncio import ClientOptions, SigmaSocketClient, SigmaSocketServer
from sigma_core.errors import ServerError
from sigma_core.messages import ClientInfo
from sigma_core.serializers import JSON

DEADLINE = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ----------------------------------------------------------------------------- static files


@pytest.fixture
def site(tmp_path: Path) -> StaticFiles:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>chat</title>" + " " * 600)
    (root / "assets" / "app-1a2b.js").write_text("console.log('hi');" * 100)
    (root / "assets" / "font.woff2").write_bytes(b"wOF2" + bytes(100))
    (root / ".stamp").write_text("x")
    (tmp_path / "secret.txt").write_text("outside the root")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return StaticFiles(root)


def get(site: StaticFiles, path: str, *headers: tuple[str, str], method: str = "GET") -> Any:
    return site(HttpRequest(method=method, path=path, headers=tuple(headers)))


def header(response: Any, name: str) -> str | None:
    return next((v for k, v in response.headers if k == name), None)


def test_static_serves_index_and_assets_with_types(site: StaticFiles) -> None:
    index = get(site, "/")
    assert index.status == 200
    assert index.body.startswith(b"<!doctype html>")
    assert header(index, "content-type") == "text/html; charset=utf-8"
    assert header(index, "cache-control") == "no-cache"
    assert get(site, "/index.html?x=1#top").body == index.body
    js = get(site, "/assets/app-1a2b.js")
    assert header(js, "content-type") == "text/javascript; charset=utf-8"
    assert "immutable" in (header(js, "cache-control") or "")
    assert header(get(site, "/assets/font.woff2"), "content-type") == "font/woff2"


def test_static_refuses_everything_outside_the_root(site: StaticFiles) -> None:
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
                 "/assets/%2E%2E/%2E%2E/secret.txt", "/escape", "/.stamp", "/assets/",
                 "/nope.js", "//etc/passwd", "/assets%2f..%2f..%2fsecret.txt", "/a%00b",
                 "/..%5csecret.txt", "relative.txt", "/%ff"):
        response = get(site, path)
        assert response.status == 404, path
        assert b"outside" not in response.body


def test_static_head_gzip_etag_and_methods(site: StaticFiles) -> None:
    full = get(site, "/assets/app-1a2b.js")
    head = get(site, "/assets/app-1a2b.js", method="HEAD")
    assert head.status == 200
    assert head.body == full.body  # the core writes its Content-Length and drops the body
    assert head.headers == full.headers
    packed = get(site, "/assets/app-1a2b.js", ("accept-encoding", "gzip, br"))
    assert header(packed, "content-encoding") == "gzip"
    assert gzip.decompress(packed.body) == full.body
    etag = header(full, "etag")
    assert etag is not None
    assert get(site, "/assets/app-1a2b.js", ("if-none-match", etag)).status == 304
    post = get(site, "/", method="POST")
    assert post.status == 405
    assert header(post, "allow") == "GET, HEAD"


def test_static_sends_a_strict_csp_and_security_headers(site: StaticFiles) -> None:
    for response in (get(site, "/", ("host", "chat.example:3000")),
                     get(site, "/nope", ("host", "chat.example:3000")),
                     get(site, "/", ("host", "chat.example:3000"), method="POST")):
        csp = header(response, "content-security-policy") or ""
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["script-src"] == "'self'"  # no inline script, no eval
        assert directives["connect-src"] == "'self' ws://chat.example:* wss://chat.example:*"
        assert directives["frame-ancestors"] == "'none'"
        assert directives["object-src"] == directives["base-uri"] == "'none'"
        assert header(response, "x-frame-options") == "DENY"
        assert header(response, "x-content-type-options") == "nosniff"
        assert header(response, "referrer-policy") == "no-referrer"
        assert header(response, "cross-origin-opener-policy") == "same-origin"
        assert "camera=()" in (header(response, "permissions-policy") or "")
    # A Host header that is not a plain host name never reaches the policy.
    for host in ("evil\r\nset-cookie: x=1", "a b", "x;script-src *", "*", ""):
        csp = header(get(site, "/", ("host", host)), "content-security-policy") or ""
        assert "connect-src 'self';" in csp, host
    assert "ws://[::1]:*" in (header(get(site, "/", ("host", "[::1]:3000")),
                                     "content-security-policy") or "")


# ----------------------------------------------------------------------------- configuration


def test_config_from_flags_and_environment() -> None:
    assert parse_config([], env={}) == ChatConfig()
    env = {"SIGMASOCKETS_HOST": "0.0.0.0", "SIGMASOCKETS_PORT": "8081",
           "SIGMASOCKETS_MAX_CONNECTIONS": "50", "SIGMASOCKETS_HEARTBEAT_INTERVAL": "60000ms",
           "SIGMASOCKETS_HISTORY_SIZE": "7", "SIGMASOCKETS_ROOMS": "lobby, games"}
    config = parse_config([], env=env)
    assert (config.host, config.port, config.max_connections) == ("0.0.0.0", 8081, 50)
    assert config.heartbeat_interval == 60.0
    assert config.history_size == 7
    assert config.rooms == ("lobby", "games")
    limits = parse_config(["--max-rooms", "9", "--typing-interval", "2"], env={
        "SIGMASOCKETS_ROOMS_PER_USER": "1", "SIGMASOCKETS_ROOM_EXPIRY": "30",
        "SIGMASOCKETS_SYNC_INTERVAL": "500ms", "SIGMASOCKETS_ROOM_CREATE_INTERVAL": "7",
        "SIGMASOCKETS_ROOMS_UPDATE_INTERVAL": "3"}).limits
    assert limits == ChatLimits(max_rooms=9, rooms_per_user=1, room_expiry=30.0,
                                sync_interval=0.5, room_create_interval=7.0,
                                typing_interval=2.0, rooms_update_interval=3.0)
    with pytest.raises(SystemExit):
        parse_config(["--max-rooms", "1", "--rooms", "a,b"], env={})
    flags = parse_config(["--port", "9000", "--history-size", "0", "--heartbeat-interval", "5"],
                         env=env)
    assert (flags.port, flags.history_size, flags.heartbeat_interval) == (9000, 0, 5.0)
    with pytest.raises(SystemExit):
        parse_config(["--port", "-1"], env={})


@pytest.mark.parametrize(("module", "argv", "env", "extra"), [
    ("sigma_redis._url", ["--redis-url", "redis://127.0.0.1:6379/0"], {}, "redis"),
    ("sigma_redis._url", [], {"SIGMASOCKETS_REDIS_URL": "redis://127.0.0.1:6379/0"}, "redis"),
    ("sigma_auth", [], {"SIGMASOCKETS_JWT_SECRET": "x" * 40}, "jwt"),
])
def test_a_mode_whose_extra_is_missing_is_a_usage_error_naming_it(
        module: str, argv: list[str], env: dict[str, str], extra: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``bash scripts/chat.sh`` installs the chat extra only: the cluster engine (docs/cluster.md)
    and JWT mode (docs/auth.md) then say which extra to install, not a traceback."""
    monkeypatch.setitem(sys.modules, module, None)  # (importing it raises ImportError)
    with pytest.raises(SystemExit) as exited:
        parse_config(argv, env=env)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"needs the {extra} extra" in err
    assert f"pip install 'sigmasockets[{extra}]'" in err
    assert "Traceback" not in err


def test_usernames_are_cleaned() -> None:
    assert clean_username("  Ada \t Lovelace ") == "Ada Lovelace"
    assert clean_username("a\x00b\u200b") == "ab"
    assert clean_username("   ") == ""
    assert clean_username("x" * 25) == ""


def test_sigterm_stops_gracefully(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "examples.chat", "--host", "127.0.0.1", "--port", "0"],
            cwd=REPO, stdout=stdout, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for _ in range(200):
            if b"SigmaSockets chat: http://127.0.0.1:" in out.read_bytes():
                break
            assert proc.poll() is None, out.read_text()
            subprocess.run(["sleep", "0.05"], check=True)
        else:
            raise AssertionError(out.read_text())
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
        assert out.read_text().rstrip().endswith("stopped")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# ----------------------------------------------------------------------------- protocol


class User:
    """A Python client speaking the chat protocol; collects decoded messages by topic."""

    def __init__(self, server: SigmaSocketServer, name: str) -> None:
        self.client = SigmaSocketClient(ClientOptions(
            url=f"ws://127.0.0.1:{server.port}/ws", max_reconnect_attempts=1, max_queued_messages=0,
            client_info=ClientInfo(name="test", metadata={"user": name}), serializer=JSON))
        self.inbox: list[dict[str, Any]] = []
        self.rooms: list[dict[str, Any]] = []
        self.topics_seen: set[str] = set()
        self.errors: list[BaseException] = []
        self.changed = asyncio.Event()
        self.client.on("message", self._on_message)
        self.client.on("error", self._on_error)

    def _on_message(self, data: dict[str, Any], offset: int, _ts: int, topic: str) -> None:
        self.topics_seen.add(topic)
        # "_offset": the message's position in its topic (the timeline's order).
        (self.inbox if topic == "$inbox" else self.rooms).append({**data, "_offset": offset})
        self.changed.set()

    def _on_error(self, error: BaseException) -> None:
        self.errors.append(error)
        self.changed.set()

    def send(self, **message: Any) -> None:
        assert self.client.send(message)

    async def until(self, predicate: Any) -> None:
        while not predicate():
            self.changed.clear()
            await self.changed.wait()


async def _started(history_size: int = 2) -> SigmaSocketServer:
    app = ChatApp(history_size=history_size, rooms=("general",), log=False)
    server = build_server(ChatConfig(host="127.0.0.1", port=0, history_size=history_size), app)
    await server.start()
    return server


@pytest.mark.anyio
async def test_protocol_rooms_history_dedup_and_authorization() -> None:
    async with asyncio.timeout(DEADLINE):
        server = await _started(history_size=2)
        try:
            ann = User(server, "Ann")
            await ann.client.connect()
            await ann.until(lambda: any(m["t"] == "hello" for m in ann.inbox))
            hello = next(m for m in ann.inbox if m["t"] == "hello")
            assert hello["user"] == "Ann"
            assert hello["rooms"] == [{"name": "general", "users": 0, "fixed": True}]

            ann.client.subscribe("room:general")
            await ann.until(lambda: any(m["t"] == "history" for m in ann.inbox))
            for i in range(3):
                ann.send(t="msg", room="general", id=f"ann-msg-{i}", text=f"m{i}")
            ann.send(t="msg", room="general", id="ann-msg-2", text="m2 again")  # same id
            ann.send(t="msg", room="random", id="ann-msg-9", text="not a member")
            await ann.until(lambda: any(m["t"] == "error" for m in ann.inbox))
            error = next(m for m in ann.inbox if m["t"] == "error")
            assert (error["code"], error["id"]) == ("not_in_room", "ann-msg-9")
            msgs = [m for m in ann.rooms if m["t"] == "msg"]
            assert [m["text"] for m in msgs] == ["m0", "m1", "m2"]  # the duplicate dropped
            assert [m["_offset"] for m in msgs] == sorted(m["_offset"] for m in msgs)

            # Only room topics may be subscribed.
            ann.client.subscribe("secret")
            await ann.until(lambda: any(isinstance(e, ServerError) for e in ann.errors))

            # A newcomer gets the last 2 messages and sees Ann online.
            bea = User(server, "Bea")
            await bea.client.connect()
            bea.client.subscribe("room:general")
            await bea.until(lambda: any(m["t"] == "history" for m in bea.inbox))
            history = next(m for m in bea.inbox if m["t"] == "history")
            assert [m["text"] for m in history["items"]] == ["m1", "m2"]
            assert (history["page"], history["pages"]) == (1, 1)
            members = next(m for m in bea.inbox if m["t"] == "members")
            assert {u["user"] for u in members["users"]} == {"Ann", "Bea"}
            await ann.until(lambda: any(m["t"] == "presence" and m["user"] == "Bea"
                                        for m in ann.rooms))
            # The others get the join as a change, not the member list.
            join = next(m for m in ann.rooms if m["t"] == "presence" and m["user"] == "Bea")
            assert "users" not in join
            assert join["_offset"] == members["v"]  # the list Bea got includes her join
            # History items carry their place in the room topic: the messages' own offsets.
            assert [(m["boot"], m["n"]) for m in history["items"]] == \
                [(history["boot"], m["_offset"]) for m in msgs[1:]]

            # Typing goes to the others only, on the room's live topic (not its history).
            bea.send(t="typing", room="general", on=True)
            await ann.until(lambda: any(m["t"] == "typing" for m in ann.rooms))
            assert not any(m["t"] == "typing" for m in bea.rooms)
            assert "live:general" in ann.topics_seen

            await bea.client.disconnect()
            await ann.until(lambda: any(m["t"] == "presence" and m["action"] == "leave"
                                        for m in ann.rooms))
            await ann.client.disconnect()
        finally:
            await server.stop()


async def _http(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await reader.read()  # the core closes after one response
    finally:
        writer.close()


@pytest.mark.anyio
async def test_page_and_websocket_share_one_port(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>chat</title>")
    app = ChatApp(rooms=("general",), log=False)
    server = build_server(ChatConfig(host="127.0.0.1", port=0, static_dir=tmp_path), app)
    async with asyncio.timeout(DEADLINE):
        await server.start()
        try:
            get = await _http(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, body = get.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"content-type: text/html; charset=utf-8" in head.lower()
            assert f"content-length: {len(body)}".encode() in head.lower()
            assert body == b"<!doctype html><title>chat</title>"
            only_head = await _http(server.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert only_head.endswith(b"\r\n\r\n")
            assert f"content-length: {len(body)}".encode() in only_head.lower()
            missing = await _http(server.port, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
            assert missing.startswith(b"HTTP/1.1 404 ")
            ann = User(server, "Ann")  # and the WebSocket on the same port
            await ann.client.connect()
            await ann.until(lambda: any(m["t"] == "hello" for m in ann.inbox))
            await ann.client.disconnect()
        finally:
            await server.stop()


@pytest.mark.anyio
async def test_protocol_refuses_a_missing_username() -> None:
    async with asyncio.timeout(DEADLINE):
        server = await _started()
        try:
            nobody = User(server, "   ")
            with pytest.raises(Exception, match="username"):
                await nobody.client.connect()
        finally:
            await server.stop()


def test_the_page_runs_under_its_content_security_policy(chat_server: ChatServer,
                                                         pages: Pages) -> None:
    # The built app (Vue + Vuetify, fonts, the WebSocket) works with the CSP on: no violation
    # reported, no console error (the pages fixture fails on any), and a chat round trip.
    page = pages.open(chat_server.url)
    response = page.request.get(chat_server.url)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    page.evaluate("""() => { window.__violations = [];
        document.addEventListener('securitypolicyviolation',
            e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI)); }""")
    page.get_by_test_id("username").locator("input").fill("Csp")
    page.get_by_test_id("join").click()
    expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected")
    box = page.get_by_test_id("composer").locator("input")
    box.fill("under a strict policy")
    box.press("Enter")
    expect(page.locator("[data-testid=msg][data-state=sent]",
                        has_text="under a strict policy")).to_have_count(1)
    # An inline script injected into the page is refused (and reported).
    page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.__ran = true'; document.body.appendChild(s); }""")
    page.wait_for_function("() => window.__violations.length > 0")
    assert page.evaluate("() => window.__ran === undefined")
    violations = page.evaluate("() => window.__violations")
    assert violations == ["script-src-elem inline"], violations
    provoked = [e for e in pages.errors if "inline script" in e]
    assert len(provoked) == 1, pages.errors
    pages.errors.remove(provoked[0])  # the one we provoked; any other still fails the test
