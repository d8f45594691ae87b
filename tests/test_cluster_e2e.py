"""End to end with real sockets: nodes of one adapter sharing one real redis-server through
``sigma_redis.RedisEngine`` (``ServerOptions(engine=...)``), on asyncio and on trio.

Rooms span nodes (a message published on one node reaches subscribers on the others, once, in
order, both ways), and a client whose node is gone resumes on another node with its session,
nothing lost and nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
from adapters_support import (
    Client,
    Server,
    hosting,
    make_client,
    make_server,
    proxy_to,
    url,
)
from redis_support import RedisServer, running_redis

from sigma_core.api import Message
from sigma_redis import RedisEngine, RedisEngineConfig

pytestmark = pytest.mark.anyio
DEADLINE = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@asynccontextmanager
async def node(backend: str, redis: RedisServer, **options: Any) -> AsyncIterator[Server]:
    engine = RedisEngine(RedisEngineConfig(url=redis.url, health_interval=0.1))
    server = make_server(backend, engine=engine, **options)
    async with server:
        with anyio.fail_after(10):
            while not engine.is_ready():
                await anyio.sleep(0.02)
        yield server


async def collect(client: Client, topic: str, count: int, into: list[Message]) -> None:
    async for message in client:
        if message.topic == topic:
            into.append(message)
            if len(into) >= count:
                return


async def test_rooms_span_nodes_both_ways(anyio_backend: str, redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            nodes = [await stack.enter_async_context(node(anyio_backend, redis))
                     for _ in range(3)]
            clients = []
            for n in nodes:
                client = make_client(anyio_backend, url(n))
                await stack.enter_async_context(client)
                client.subscribe("room")
                clients.append(client)
            # Wait until every node receives the room (its subscription is in place).
            for n in nodes:
                while not any("room" in s.subscriptions for s in n.get_connected_clients()):
                    await anyio.sleep(0.02)
            await anyio.sleep(0.2)
            received: list[list[Message]] = [[] for _ in clients]
            async with anyio.create_task_group() as tg:
                for client, into in zip(clients, received, strict=True):
                    tg.start_soon(collect, client, "room", 6, into)
                for i in range(2):
                    for k, n in enumerate(nodes):
                        n.publish("room", b"from node %d #%d" % (k, i))
                        await anyio.sleep(0.01)
            expected = [b"from node %d #%d" % (k, i) for i in range(2) for k in range(3)]
            for into in received:
                assert [m.data for m in into] == expected
                offsets = [m.position.offset for m in into]
                assert offsets == sorted(set(offsets))  # once each, in position order


async def test_client_resumes_on_another_node_with_nothing_lost(
        anyio_backend: str, redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with node(anyio_backend, redis) as b, hosting(
                anyio_backend, engine=RedisEngine(RedisEngineConfig(url=redis.url))) as host:
            a = host.server
            async with proxy_to(a.port) as proxy:
                client = make_client(anyio_backend, proxy.url)
                async with client:
                    client.subscribe("room")
                    while not any("room" in s.subscriptions for s in a.get_connected_clients()):
                        await anyio.sleep(0.02)
                    await anyio.sleep(0.2)
                    got: list[Message] = []
                    b.publish("room", b"1")
                    b.publish("room", b"2")
                    await collect(client, "room", 2, got)
                    session = client.get_session()
                    assert session is not None
                    # Node a goes away; b takes messages meanwhile; the proxy sends the
                    # client's next connection to b.
                    proxy.target_port = b.port
                    await host.stop()
                    b.publish("room", b"3")
                    b.publish("room", b"4")
                    await collect(client, "room", 4, got)
                    assert [m.data for m in got] == [b"1", b"2", b"3", b"4"]
                    after = client.get_session()
                    assert after is not None
                    assert after.id == session.id  # resumed, not a fresh session
