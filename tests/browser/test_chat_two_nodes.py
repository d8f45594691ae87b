"""The chat demo on two nodes sharing one Redis (issue 15, item 6): two chat servers
(``--redis-url``), one user's page on each; one conversation in one order, one member list,
one history for a newcomer on either node; node 2 SIGKILLed, and its user carries on through
node 1 with nothing lost or doubled on screen.

Bob's page is served by node 2, but its WebSocket goes through a small proxy that prefers
node 2 and falls back to node 1 (``?ws=``): the load balancer of a real deployment. Needs
redis-server (bench/cluster_support.py starts it on a free port in a temporary directory and
stops it by PID). Screenshots go to tests/browser/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import ChatServer, CuttableProxy, Pages, screenshot, with_ws
from playwright.sync_api import Page, expect
from test_chat_browser import SENT, all_messages, join, send, sent_texts

from bench.cluster_support import RedisServer, running_redis  # REPO is on sys.path


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def nodes(tmp_path: Path, redis: RedisServer,
          pages: Pages) -> Iterator[tuple[ChatServer, ChatServer]]:
    started: list[ChatServer] = []
    try:
        for name in ("node1", "node2"):
            directory = tmp_path / name
            directory.mkdir()
            node = ChatServer(directory, "--history-size", "10", "--redis-url", redis.url,
                              "--node-name", name)
            node.start()
            started.append(node)
        yield started[0], started[1]
    finally:
        pages.close()  # before the nodes go (conftest.py, `pages`)
        for node in started:
            node.kill()


def members(page: Page) -> list[str]:
    names: list[str] = page.get_by_test_id("user-item").evaluate_all(
        "els => els.map(e => e.querySelector('.v-list-item-title').textContent"
        ".replace(' (you)', '') + (e.dataset.online === 'true' ? '' : ' (away)'))")
    return sorted(names)


def test_two_nodes_one_conversation_members_history_and_a_node_killed(
        nodes: tuple[ChatServer, ChatServer], pages: Pages) -> None:
    node1, node2 = nodes
    proxy = CuttableProxy(node2.port, node1.port)
    try:
        alice = pages.open(node1.url)
        join(alice, "Alice")
        bob = pages.open(with_ws(node2.url, proxy.ws_url()))
        join(bob, "Bob")
        assert proxy.routed == [node2.port]

        # One conversation: sent through both nodes, each message once, one order on both
        # screens (the room topic's).
        said = []
        for i in range(3):
            for page, who in ((alice, "alice"), (bob, "bob")):
                text = f"{who} {i}"
                send(page, text, confirmed=False)
                said.append(text)
        for page in (alice, bob):
            expect(page.locator(SENT)).to_have_count(len(said))
        order = sent_texts(alice)
        assert sorted(order) == sorted(said)
        assert sent_texts(bob) == order
        # One member list, on both nodes' pages.
        for page in (alice, bob):
            expect(page.get_by_test_id("user-item")).to_have_count(2)
            assert members(page) == ["Alice", "Bob"]

        # Newcomers on either node get one history: the same messages in the same order.
        carol = pages.open(node2.url)
        join(carol, "Carol")
        dave = pages.open(node1.url)
        join(dave, "Dave")
        for page in (carol, dave):
            expect(page.locator(SENT)).to_have_count(len(said))
            assert sent_texts(page) == order
            expect(page.get_by_test_id("user-item")).to_have_count(4)
            assert members(page) == ["Alice", "Bob", "Carol", "Dave"]
        screenshot(dave, "two-nodes-newcomer-history")
        carol.get_by_test_id("logout").click()  # Carol leaves before her node dies
        for page in (alice, bob, dave):
            expect(page.get_by_test_id("user-item")).to_have_count(3)

        # Node 2 dies. Bob's page reconnects through the proxy to node 1 and resumes his
        # session there: Alice's message sent meanwhile reaches him once, and his next
        # message is accepted by node 1 (it knows he is in the room) and reaches everyone.
        node2.kill()
        expect(bob.get_by_test_id("status")).not_to_have_attribute("data-status", "connected")
        send(alice, "while node 2 is down", confirmed=True)
        expect(bob.get_by_test_id("status")).to_have_attribute("data-status", "connected",
                                                              timeout=20_000)
        assert proxy.routed[-1] == node1.port
        send(bob, "bob via node 1")
        after = [*order, "while node 2 is down", "bob via node 1"]
        for page in (alice, bob, dave):
            expect(page.locator(SENT)).to_have_count(len(after))
            assert sent_texts(page) == after
        assert all(state == "sent" for state, _ in all_messages(bob))
        for page in (alice, bob, dave):
            expect(page.get_by_test_id("user-item")).to_have_count(3)
            expect(page.locator("[data-testid=user-item][data-online=false]")).to_have_count(0)
            assert members(page) == ["Alice", "Bob", "Dave"]
        screenshot(bob, "two-nodes-after-node-killed")
    finally:
        # The pages first: a page still open when the proxy's listener closes would
        # reconnect to it, and the browser logs the refusal as a console error.
        pages.close()
        proxy.close()
