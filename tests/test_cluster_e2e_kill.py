"""A node SIGKILLed mid-traffic: three node processes (bench/cluster_node.py) on one real
redis-server, clients spread over them by a proxy that picks the next live node for every
connection, every client sending into one room while one node is killed. Every client must then
hold every message exactly once (by position), in each sender's order, with nothing lost —
both ways: what clients sent reached the app (which publishes it to the room) and what the
room carried reached every client. On asyncio and on trio."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack

import anyio
import pytest
from adapters_support import Client, make_client
from redis_support import RedisServer, running_redis

from bench.cluster_support import Node, round_robin_proxy, start_node
from sigma_core.api import Message

pytestmark = pytest.mark.anyio
CLIENTS = 6
PER_CLIENT = 40


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Tally:
    """What a client got in the room."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.changed = anyio.Event()

    async def collect(self, client: Client) -> None:
        async for message in client:
            if message.topic == "room":
                self.messages.append(message)
                self.changed.set()
                self.changed = anyio.Event()

    def data(self) -> list[bytes]:
        return [m.data for m in self.messages]


def check(tally: Tally, expected: set[bytes]) -> dict[str, int]:
    """Counts a user would notice: lost, duplicated (same position twice or the same message
    published twice), out of each sender's order."""
    positions = [(m.position.epoch, m.position.offset) for m in tally.messages]
    traffic = [d for d in tally.data() if not d.startswith(b"warm")]
    counts = Counter(traffic)
    order_breaks = 0
    last: dict[bytes, int] = {}
    for data in dict.fromkeys(traffic):  # first occurrences, in arrival order
        sender, _, index = data.partition(b"-")
        if int(index) < last.get(sender, -1):
            order_breaks += 1
        last[sender] = int(index)
    return {
        "lost": len(expected - set(counts)),
        "same_position_twice": len(positions) - len(set(positions)),
        "republished": sum(c - 1 for c in counts.values() if c > 1),
        "republished_twice": sum(1 for c in counts.values() if c > 2),
        "out_of_order": order_breaks,
        "positions_not_increasing": sum(
            1 for a, b in itertools.pairwise(positions) if a[0] == b[0] and b <= a),
    }


async def test_node_sigkilled_mid_traffic_clients_resume_elsewhere(
        anyio_backend: str, redis: RedisServer) -> None:
    nodes: list[Node] = []
    try:
        for i in range(3):
            nodes.append(await anyio.to_thread.run_sync(
                start_node, anyio_backend, redis.url, f"{anyio_backend}-n{i}"))
        with anyio.fail_after(60):
            async with round_robin_proxy(nodes) as proxy, AsyncExitStack() as stack:
                clients = [make_client(anyio_backend, proxy.url) for _ in range(CLIENTS)]
                tallies = [Tally() for _ in clients]
                for client in clients:
                    await stack.enter_async_context(client)
                    client.subscribe("room")
                tg = await stack.enter_async_context(anyio.create_task_group())
                for client, tally in zip(clients, tallies, strict=True):
                    tg.start_soon(tally.collect, client)
                assert all(count == 2 for count in proxy.connections.values())
                # Warm up until every client hears the room (its subscription is in place).
                k = 0
                while not all(any(d.startswith(b"warm") for d in t.data()) for t in tallies):
                    clients[0].send(b"warm-%d" % k)
                    k += 1
                    await anyio.sleep(0.05)
                victim = nodes[0]
                expected = {b"c%d-%d" % (i, j) for i in range(CLIENTS) for j in range(PER_CLIENT)}
                for j in range(PER_CLIENT):
                    for i, client in enumerate(clients):
                        assert client.send(b"c%d-%d" % (i, j))
                    if j == PER_CLIENT // 2:
                        victim.kill()  # SIGKILL, mid-traffic
                    await anyio.sleep(0.01)
                with anyio.move_on_after(40):
                    while not all(expected <= set(t.data()) for t in tallies):
                        await anyio.sleep(0.05)
                outcome = [check(t, expected) for t in tallies]
                tg.cancel_scope.cancel()
        assert proxy.connections[victim.node_id] >= 2
        assert sum(proxy.connections.values()) >= CLIENTS + 2  # two clients reconnected
        republished = set()
        for tally, counts in zip(tallies, outcome, strict=True):
            republished |= {d.partition(b"-")[0] for d, c in Counter(tally.data()).items()
                            if c > 1 and not d.startswith(b"warm")}
            assert counts["lost"] == 0, outcome
            assert counts["same_position_twice"] == 0, outcome
            assert counts["positions_not_increasing"] == 0, outcome
            assert counts["out_of_order"] == 0, outcome
            # Client -> server across a crash is at least once (docs/cluster.md): a message
            # the dead node had handed to its app but whose seq it had not yet saved is sent
            # again by the client and handed to the app on the new node. Only senders of the
            # killed node, each such message once more at most, all receivers alike.
            assert counts["republished_twice"] == 0, outcome
            assert counts["republished"] == outcome[0]["republished"], outcome
        victims = {b"c%d" % i for i in range(CLIENTS) if i % 3 == 0}  # round robin: n0
        assert republished <= victims, (republished, outcome)
    finally:
        for node in nodes:
            node.stop()
