"""Browser tests of the chat demo: its server in a subprocess, Debian's chromium driven by
Playwright (PyPI), headless.

Each test starts its own chat server on 127.0.0.1 on a free port (stdout and stderr to files in
the test's tmp dir, stopped by PID). Every page fails its test on any console error or uncaught
exception, except the browser's own "WebSocket connection ... failed" lines inside
``pages.server_down()`` (the server is down on purpose there). Screenshots of the main states go
to tests/browser/artifacts/ (gitignored).

Needs /usr/bin/chromium and the built web app: ``bash tests/browser/setup.sh`` installs and
builds them, and is run from here when something is missing. Never ``playwright install``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import CHROMIUM, CHROMIUM_ARGS, DIST, REPO, ChatServer, Pages
from playwright.sync_api import Browser, Playwright, sync_playwright


def _ensure_setup() -> None:
    if not Path(CHROMIUM).exists() or not DIST.exists():
        subprocess.run(["bash", str(REPO / "tests" / "browser" / "setup.sh")], check=True)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run bash tests/browser/setup.sh")


# Module scope, not session: sync Playwright keeps an asyncio loop running in this thread until
# it exits, which would break every asyncio test that runs after the browser tests.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    _ensure_setup()
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         headless=True)
    yield browser
    browser.close()


@pytest.fixture
def chat_server(tmp_path: Path, pages: Pages) -> Iterator[ChatServer]:
    server = ChatServer(tmp_path, "--history-size", "3")
    server.start()
    yield server
    pages.close()  # before the server goes (see `pages`)
    running = server.proc is not None
    code = server.stop()
    if running:
        assert code == 0, f"chat server exited with {code} on SIGTERM:\n{server.log()}"


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """The test's pages. Every fixture that runs a server the pages connect to (directly or
    through a proxy) takes ``pages`` and closes them before it stops that server: a page still
    open would reconnect to the stopped server and the browser would log the refusal as a
    console error (CI failed so once). Taking ``pages`` also sets them up first, so this holds
    whatever order a test lists its fixtures in."""
    pages = Pages(browser, request.node.name)
    yield pages
    pages.close()
    assert not pages.errors, "console errors:\n" + "\n".join(pages.errors)
