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
    Recorder,
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

# coredis leaves anyio memory streams unclosed when a node's engine connection ends with its
# server; the garbage collector reports them during whichever test runs next (seen on
# test_rooms_span_nodes_both_ways[trio]): the marker two tests here had, for the whole module.
pytestmark = [pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
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


async def wait_ready(*engines: RedisEngine, ready: bool = True, timeout: float = 15) -> None:
    with anyio.fail_after(timeout):
        while not all(e.is_ready() == ready for e in engines):
            await anyio.sleep(0.02)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # coredis
@pytest.mark.parametrize("persistence", ["none", "aof"])
async def test_redis_restart_outcome_is_the_documented_one(
        anyio_backend: str, persistence: str, caplog: pytest.LogCaptureFixture) -> None:
    """docs/cluster.md, "What each persistence choice guarantees": without persistence the
    session is gone (a fresh session, with the reason) and the room's epoch too (an explicit
    loss); with AOF the session resumes and the room reports the fenced epoch as lost — never a
    silent skip, never a reused offset."""
    import gc
    import logging
    import tempfile
    from pathlib import Path

    caplog.set_level(logging.WARNING, logger="sigma_redis")
    with tempfile.TemporaryDirectory() as tmp, anyio.fail_after(DEADLINE * 2):
        redis = RedisServer(Path(tmp), persistence=persistence).start()
        try:
            engine_a = RedisEngine(RedisEngineConfig(url=redis.url, health_interval=0.1))
            engine_b = RedisEngine(RedisEngineConfig(url=redis.url, health_interval=0.1))
            async with hosting(anyio_backend, engine=engine_a) as a, \
                    hosting(anyio_backend, engine=engine_b) as b:
                await wait_ready(engine_a, engine_b)
                async with proxy_to(a.server.port) as proxy:
                    client = make_client(anyio_backend, proxy.url)
                    events = Recorder(client, "recovery_failed", "session_reset")
                    async with client:
                        client.subscribe("room")
                        while not any("room" in s.subscriptions
                                      for s in a.server.get_connected_clients()):
                            await anyio.sleep(0.02)
                        await anyio.sleep(0.3)
                        got: list[Message] = []
                        b.server.publish("room", b"before")
                        await collect(client, "room", 1, got)
                        session = client.get_session()
                        assert session is not None
                        # Node a is drained (its sessions are written to Redis) and the client
                        # cannot reconnect yet; then Redis restarts.
                        proxy.refusing = True
                        await a.stop()
                        if persistence == "aof":
                            redis.shutdown()  # clean: everything acknowledged is on disk
                        else:
                            redis.kill()
                        await wait_ready(engine_b, ready=False)
                        redis.start()
                        await wait_ready(engine_b)
                        b.server.publish("room", b"lost with the old epoch")
                        proxy.target_port = b.server.port
                        proxy.refusing = False
                        # The room's epoch ended with the restart (gone, or fenced): the client
                        # is told, from the offset after the last one it saw.
                        (lost,) = await events.wait("recovery_failed", 1,
                                                    where=lambda e: e.topic == "room")
                        assert lost.lost_from == 2
                        b.server.publish("room", b"after")
                        await collect(client, "room", 2, got)
                        assert [m.data for m in got] == [b"before", b"after"]
                        assert got[1].position.epoch != got[0].position.epoch
                        after = client.get_session()
                        assert after is not None
                        if persistence == "aof":
                            assert after.id == session.id  # resumed from the AOF
                            assert events.calls["session_reset"] == []
                        else:
                            assert after.id != session.id  # fresh, and told so
                            await events.wait("session_reset", 1)
        finally:
            redis.stop()
            gc.collect()
    assert "cluster engine unavailable" in caplog.text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # coredis
async def test_redis_unreachable_node_serves_what_it_can_and_recovers(
        anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    import gc
    import logging
    import tempfile
    from pathlib import Path

    from sigma_core.errors import LocalProtocolError

    caplog.set_level(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, anyio.fail_after(DEADLINE * 2):
        redis = RedisServer(Path(tmp)).start()
        try:
            engine = RedisEngine(RedisEngineConfig(url=redis.url, health_interval=0.1))
            async with hosting(anyio_backend, engine=engine) as a:
                await wait_ready(engine)
                client = make_client(anyio_backend, url(a.server))
                async with client:
                    client.subscribe("room")
                    while not any("room" in s.subscriptions
                                  for s in a.server.get_connected_clients()):
                        await anyio.sleep(0.02)
                    redis.kill()
                    await wait_ready(engine, ready=False)
                    assert "cluster engine unavailable" in caplog.text
                    # The node keeps serving its open connection (heartbeats, the session)...
                    assert client.get_status().value == "connected"
                    # ...but what needs the engine fails at once, saying why.
                    with pytest.raises(LocalProtocolError, match="cluster engine unavailable"):
                        a.server.publish("room", b"while down")
                    # A new client (a resume or a fresh session) is refused and retries.
                    late = make_client(anyio_backend, url(a.server))
                    reasons = Recorder(late, "disconnection")
                    done = anyio.Event()

                    async def run_late() -> None:
                        async with late:  # returns once connected: after Redis is back
                            await done.wait()

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(run_late)
                        _, reason = await reasons.wait("disconnection", 1)
                        assert "cluster engine unavailable" in reason
                        redis.start()
                        await wait_ready(engine)
                        # Everything comes back by itself: the late client gets in, and
                        # publishing works again.
                        with anyio.fail_after(15):
                            while late.get_status().value != "connected":
                                await anyio.sleep(0.05)
                        late.subscribe("room")
                        while sum("room" in s.subscriptions
                                  for s in a.server.get_connected_clients()) < 2:
                            await anyio.sleep(0.02)
                        await anyio.sleep(0.2)
                        a.server.publish("room", b"back")
                        got: list[Message] = []
                        await collect(late, "room", 1, got)
                        assert [m.data for m in got] == [b"back"]
                        done.set()
        finally:
            redis.stop()
            gc.collect()
