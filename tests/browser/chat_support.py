"""Helpers of the chat browser tests: the chat server subprocess, pages with console checks,
screenshots. Fixtures are in conftest.py."""


from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("SIGMA_CHROMIUM", "/usr/bin/chromium")
DIST = REPO / "examples" / "chat" / "web" / "dist" / "index.html"
# Launch flags that work as root, offline, in containers (see shared/web-recipe.md).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]
_READY = re.compile(r"^SigmaSockets chat: (\S+)$", re.MULTILINE)
_WS_FAILED = re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws' failed")

if str(REPO) not in sys.path:  # `examples.chat` is imported by the non-browser tests
    sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChatServer:
    """``python -m examples.chat`` in a subprocess; ``start()`` again after ``kill()`` reuses
    the port (the restarted server has none of the old one's memory)."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.args = args
        #: SIGMASOCKETS_* variables for the server (the test's own are never passed on).
        self.env = env or {}
        self.out = directory / "chat-server.out"
        self.err = directory / "chat-server.err"
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0) -> str:
        assert self.proc is None, "already running"
        offset = self.out.stat().st_size if self.out.exists() else 0
        argv = [sys.executable, "-m", "examples.chat", "--host", "127.0.0.1",
                "--port", str(self.port), *self.args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("SIGMASOCKETS_")} | self.env
        with self.out.open("ab") as out, self.err.open("ab") as err:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err, env=env,
                                         stdin=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_bytes()[offset:].decode(errors="replace")
            match = _READY.search(text)
            if match:
                self.url = match.group(1)
                return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"chat server did not start:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no goodbye, memory lost."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM (graceful); returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                return proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                raise AssertionError(f"chat server ignored SIGTERM:\n{self.log()}") from None
        return proc.returncode

    def log(self) -> str:
        out = self.out.read_text(errors="replace") if self.out.exists() else ""
        err = self.err.read_text(errors="replace") if self.err.exists() else ""
        return f"--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}"


def with_ws(url: str, ws_url: str) -> str:
    """The page ``url`` told to connect its WebSocket to ``ws_url`` (the app's ``?ws=``)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=f"ws={ws_url}"))


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of the chat server, for one browser: ``cut()`` drops
    its connections and refuses new ones (accepts and closes at once) until ``restore()`` —
    a network outage for that browser alone, while the server keeps running. With
    ``fallback_ports`` it is a load balancer with a preference: each connection goes to the
    first of ``upstream_port, *fallback_ports`` that accepts it (another chat node when the
    first one is dead)."""

    def __init__(self, upstream_port: int, *fallback_ports: int) -> None:
        self.upstream_port = upstream_port
        self.upstream_ports = (upstream_port, *fallback_ports)
        #: Upstream port of each connection made, in order.
        self.routed: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._refusing = False
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def cut(self) -> None:
        with self._lock:
            self._refusing = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                _close(client)
                continue
            upstream = None
            for port in self.upstream_ports:
                try:
                    upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError:
                    continue
                self.routed.append(port)
                break
            if upstream is None:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


#: Seconds after a ``server_down`` window in which a late "WebSocket connection failed"
#: console report of an attempt made inside the window is still tolerated.
_WS_FAILED_GRACE = 3.0


class Pages:
    """Browser contexts for one test, each one user; checks the console at the end."""

    def __init__(self, browser: Browser, name: str) -> None:
        self.browser = browser
        self.test_name = name
        self.errors: list[str] = []
        self.tolerated: list[str] = []
        self._server_down = False
        #: Chromium reports a failed WebSocket attempt on the console asynchronously, so the
        #: report of an attempt made while the server was down may arrive just after the
        #: window closed (seen under load): such reports are tolerated for a short grace.
        self._tolerate_until = 0.0
        self._contexts: list[BrowserContext] = []

    def open(self, url: str, *, width: int = 1280, height: int = 800,
             mobile: bool = False) -> Page:
        context = self.browser.new_context(
            viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile,
            device_scale_factor=2 if mobile else 1, locale="en-US", timezone_id="UTC",
            reduced_motion="reduce")
        context.set_default_timeout(10_000)
        self._contexts.append(context)
        page = context.new_page()
        label = f"page {len(self._contexts)}"
        page.on("console", lambda msg: self._console(label, msg))
        page.on("pageerror", lambda exc: self.errors.append(f"{label}: uncaught {exc}"))
        page.goto(url)
        return page

    def _console(self, label: str, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        text = f"{label}: {msg.text}"
        down = self._server_down or time.monotonic() < self._tolerate_until
        if down and _WS_FAILED.search(msg.text):
            self.tolerated.append(text)
        else:
            self.errors.append(text)

    @contextlib.contextmanager
    def server_down(self) -> Iterator[None]:
        """While the server is down on purpose, the browser's failed reconnect attempts log
        "WebSocket connection to 'ws://...' failed" (an error the page cannot suppress)."""
        self._server_down = True
        try:
            yield
        finally:
            self._server_down = False
            self._tolerate_until = time.monotonic() + _WS_FAILED_GRACE

    def close(self) -> None:
        """Close every page's context (again is harmless: the fixture closes at teardown)."""
        contexts, self._contexts = self._contexts, []
        for context in contexts:
            with contextlib.suppress(Error):
                context.close()



def screenshot(page: Page, name: str) -> Path:
    """Save ``artifacts/<name>.png`` once Vuetify's click ripples are gone."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_function("() => !document.querySelector('.v-ripple__container')")
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path
