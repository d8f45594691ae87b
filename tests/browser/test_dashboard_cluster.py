"""The dashboard's cluster view in headless chromium: two chat nodes share one real
redis-server; the dashboard on node A lists both nodes and the cluster's totals (it receives
node B's points through the cluster engine), follows traffic on node B, and shows node B down
within ``dashboard_stale_after`` (5 s by default) of its SIGKILL, its figures left out of the
totals. Screenshots go to tests/browser/artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import ChatServer, Pages, screenshot
from playwright.sync_api import Page, expect
from test_chat_browser import join, send

from bench.cluster_support import RedisServer, running_redis  # REPO is on sys.path

STALE_AFTER = 5.0  # sigma_ops.Ops(dashboard_stale_after=...)'s default, the chat's


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def nodes(tmp_path: Path, redis: RedisServer,
          pages: Pages) -> Iterator[tuple[ChatServer, ChatServer]]:
    started: list[ChatServer] = []
    try:
        for name in ("node-a", "node-b"):
            directory = tmp_path / name
            directory.mkdir()
            node = ChatServer(directory, "--redis-url", redis.url, "--node-name", name,
                              "--heartbeat-interval", "0.5")
            node.start()
            started.append(node)
        yield started[0], started[1]
    finally:
        pages.close()  # before the nodes go (conftest.py, `pages`)
        for node in started:
            node.kill()


def row(page: Page, node: str) -> str:
    return f'#nodes tbody tr[data-node="{node}"]'


def ctile(page: Page, key: str) -> str:
    return f"#ctile-{key} .value"


def test_dashboard_shows_the_cluster_and_a_dead_node(nodes: tuple[ChatServer, ChatServer],
                                                     pages: Pages) -> None:
    node_a, node_b = nodes
    dash = pages.open(node_a.url + "dashboard")
    expect(dash.locator("#status")).to_have_attribute("data-state", "live")
    expect(dash.locator("#node")).to_have_text("· node-a")
    # Both nodes listed, up; node A's row marked as this page's node.
    expect(dash.locator(row(dash, "node-a"))).to_have_attribute("data-state", "up",
                                                                 timeout=10_000)
    expect(dash.locator(row(dash, "node-b"))).to_have_attribute("data-state", "up")
    expect(dash.locator(row(dash, "node-a"))).to_have_class("local")
    expect(dash.locator(ctile(dash, "nodes_up"))).to_have_text("2")
    expect(dash.locator(ctile(dash, "nodes_down"))).to_have_text("0")

    # Users on node B only: node A's own tiles stay at its viewer, the cluster's count them.
    alice = pages.open(node_b.url)
    join(alice, "Alice")
    bob = pages.open(node_b.url)
    join(bob, "Bob")
    expect(dash.locator(f"{row(dash, 'node-b')} td:nth-child(4)")).to_have_text(
        "2", timeout=5_000)                       # node B's clients
    expect(dash.locator("#tile-clients .value")).to_have_text("1")  # node A: the viewer
    expect(dash.locator(ctile(dash, "clients"))).to_have_text("3")  # 1 + 2
    for i in range(5):
        send(alice, f"message {i}")
    expect(dash.locator(ctile(dash, "messages_in_per_s"))).not_to_have_text("0", timeout=5_000)
    expect(dash.locator(ctile(dash, "deliveries_per_s"))).not_to_have_text("0")
    expect(dash.locator("#tile-messages_in_per_s .value")).to_have_text("0")  # not node A's
    expect(dash.locator(ctile(dash, "rtt_ms"))).to_have_text(
        re.compile(r"^\d+\.\d ms \(worst p95 ≤ [\d.]+ ms\)$"), timeout=5_000)
    # The cluster charts fill from the page's opening, one sample per node-A point.
    expect(dash.locator("#cchart-connections")).to_have_attribute(
        "data-points", re.compile(r"[3-9]|\d\d+"), timeout=10_000)
    dash.locator("#cluster-charts").scroll_into_view_if_needed()
    screenshot(dash, "dashboard-cluster")

    # Node B dies without a goodbye: down within the staleness rule (plus a second of the
    # page's re-check and a loaded machine's slack), and out of the totals.
    with pages.server_down():  # Alice's and Bob's pages retry node B: expected console lines
        node_b.kill()
        killed = time.monotonic()
        expect(dash.locator(row(dash, "node-b"))).to_have_attribute(
            "data-state", "down", timeout=(STALE_AFTER + 3) * 1000)
        took = time.monotonic() - killed
        assert took >= STALE_AFTER - 1.5, f"node B marked down {took:.1f} s after its kill"
        expect(dash.locator(ctile(dash, "nodes_up"))).to_have_text("1")
        expect(dash.locator(ctile(dash, "nodes_down"))).to_have_text("1")
        expect(dash.locator(ctile(dash, "clients"))).to_have_text("1")
        expect(dash.locator(row(dash, "node-a"))).to_have_attribute("data-state", "up")
        expect(dash.locator(f"{row(dash, 'node-b')} td:last-child")).to_have_text(
            re.compile(r"^\d+ s ago$"))
        screenshot(dash, "dashboard-cluster-node-down")
        alice.close()
        bob.close()
