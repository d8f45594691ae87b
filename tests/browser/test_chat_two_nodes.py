"""The chat demo on two nodes sharing one Redis (issue 15, item 6): one user's page talks to
node 1, the other's to node 2. Only part of item 6 holds yet: see the test's docstring.

Needs redis-server (bench/cluster_support.py starts it on a free port in a temporary directory
and stops it by PID). Screenshots go to tests/browser/artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_support import ChatServer, Pages, screenshot
from playwright.sync_api import expect
from test_chat_browser import SENT, join, send, sent_texts

from bench.cluster_support import RedisServer, running_redis  # REPO is on sys.path


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def nodes(tmp_path: Path, redis: RedisServer) -> Iterator[tuple[ChatServer, ChatServer]]:
    started: list[ChatServer] = []
    try:
        for name in ("node1", "node2"):
            directory = tmp_path / name
            directory.mkdir()
            node = ChatServer(directory, "--history-size", "10", "--redis-url", redis.url)
            node.start()
            started.append(node)
        yield started[0], started[1]
    finally:
        for node in started:
            node.kill()


def test_messages_cross_two_nodes_once(nodes: tuple[ChatServer, ChatServer],
                                       pages: Pages) -> None:
    """Alice on node 1, Bob on node 2: what either sends in #general reaches the other's
    screen exactly once (the room topic's messages cross nodes through Redis).

    Only this part of a two-node chat holds today. Not yet (docs/cluster.md, "Not covered
    yet"): the same *order* on both screens (the page sorts by each node's own ``boot``/``n``),
    one member list (each node lists its own users), one history for a newcomer (each node
    keeps its own), and carrying on through node 1 after node 2 dies (node 1's app does not
    know the user is in the room: the next message is refused, ``not_in_room``)."""
    node1, node2 = nodes
    alice = pages.open(node1.url)
    join(alice, "Alice")
    bob = pages.open(node2.url)
    join(bob, "Bob")
    send(alice, "hello from node 1")
    expect(bob.locator(SENT, has_text="hello from node 1")).to_have_count(1)
    send(bob, "hello from node 2")
    expect(alice.locator(SENT, has_text="hello from node 2")).to_have_count(1)
    send(alice, "and back")
    expect(bob.locator(SENT, has_text="and back")).to_have_count(1)
    expected = {"hello from node 1", "hello from node 2", "and back"}
    for page in (alice, bob):
        expect(page.locator(SENT)).to_have_count(3)
        texts = sent_texts(page)
        assert sorted(texts) == sorted(expected), texts  # each once, nothing else
    screenshot(bob, "two-nodes-conversation")
