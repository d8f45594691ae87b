"""The FastAPI example (examples/fastapi_app) in headless chromium: uvicorn serves the REST API,
the page and SigmaSockets on one port; the page subscribes to its room with the TypeScript
client, and a message POSTed to the room's REST endpoint appears on the page. Same set-up as the
chat's browser tests (conftest.py: the page fails its test on any console error)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import REPO, Pages, free_port
from playwright.sync_api import expect

APP = "examples.fastapi_app.app:app"


@pytest.fixture
def fastapi_url(tmp_path: Path, pages: Pages) -> Iterator[str]:
    """The example under uvicorn in a subprocess on a free port (output to files), stopped by
    PID; the page's TypeScript client comes from clients/js/dist (built by setup.sh)."""
    port = free_port()
    out, err = tmp_path / "uvicorn.out", tmp_path / "uvicorn.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20.0
        while b"Uvicorn running on" not in err.read_bytes():
            assert proc.poll() is None, f"uvicorn exited {proc.returncode}:\n{err.read_text()}"
            assert time.monotonic() < deadline, f"uvicorn did not start:\n{err.read_text()}"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        pages.close()  # before uvicorn goes (conftest.py, `pages`)
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise AssertionError("uvicorn did not stop within 10 s of SIGINT") from None
    assert code == 0, f"uvicorn exited with {code}:\n{err.read_text()}"


def test_rest_publish_appears_on_the_subscribed_page(fastapi_url: str, pages: Pages) -> None:
    page = pages.open(fastapi_url + "?room=news")
    expect(page.locator("#room")).to_have_text("news")
    expect(page.locator("#status")).to_have_text("connected")
    # The page subscribes right after connecting: wait until the server counts it in the room
    # (the REST answer says how many subscribers got the message).
    deadline = time.monotonic() + 10.0
    while True:
        response = page.request.post(fastapi_url + "rooms/news/messages",
                                     headers={"content-type": "application/octet-stream"},
                                     data=b"first")
        assert response.status == 200, response.text()
        first = json.loads(response.text())
        if first["subscribers"] == 1:
            break
        assert time.monotonic() < deadline, "the page never subscribed to the room"
        time.sleep(0.1)
    log = page.locator("#log li")
    expect(log.last).to_have_text(f"news #{first['offset']}: first")
    response = page.request.post(fastapi_url + "rooms/news/messages",
                                 headers={"content-type": "application/octet-stream"},
                                 data="héllo from REST".encode())
    second = json.loads(response.text())
    assert second["subscribers"] == 1
    expect(log.last).to_have_text(f"news #{second['offset']}: héllo from REST")
    # Another room's message does not reach this page.
    other = page.request.post(fastapi_url + "rooms/sport/messages",
                              headers={"content-type": "application/octet-stream"}, data=b"goal")
    assert json.loads(other.text())["subscribers"] == 0
    stats = json.loads(page.request.get(fastapi_url + "stats").text())
    assert stats["connected_clients"] == 1
    assert page.locator("#log li").all_inner_texts()[-1] == \
        f"news #{second['offset']}: héllo from REST"
    assert all("goal" not in line for line in page.locator("#log li").all_inner_texts())
