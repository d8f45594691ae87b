"""A node drains with its goodbyes spread over a window, and its clients resume their sessions
on the other nodes with nothing lost (both adapters, real sockets, the nodes sharing one real
redis-server through ``sigma_redis.RedisEngine``). A relay in front of the nodes plays the load
balancer: once the drained node is no longer ready it sends new connections to the others
(alternating between them). The nginx test (tests/test_deploy_nginx.py) runs the same through
the shipped nginx config.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
from adapters_support import BACKENDS, Host, Recorder, Server, make_client, make_server, proxy_to
from redis_support import RedisServer, running_redis

from sigma_core.client import ConnectionStatus
from sigma_redis import RedisEngine, RedisEngineConfig

pytestmark = pytest.mark.anyio

CLIENTS = 12
WINDOW = 1.5
TIMEOUT = 8.0
ROOM = "room"


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@asynccontextmanager
async def hosted(backend: str, redis: RedisServer, tg: Any,
                 **options: Any) -> AsyncIterator[Server]:
    engine = RedisEngine(RedisEngineConfig(url=redis.url, health_interval=0.1))
    server = make_server(backend, engine=engine, **options)
    await Host(server, tg).start()
    with anyio.fail_after(10):
        while not engine.is_ready():
            await anyio.sleep(0.02)
    yield server


# coredis leaves anyio memory streams unclosed when a node's engine connection ends with its
# server (the same marker as tests/test_cluster_e2e.py; seen as a flaky unraisable warning).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_drain_spreads_goodbyes_and_clients_resume_on_the_other_nodes(
        anyio_backend: str, redis: RedisServer) -> None:
    goodbyes: list[float] = []
    sent: list[bytes] = []
    with anyio.fail_after(40):
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            node_a = await stack.enter_async_context(hosted(
                anyio_backend, redis, tg, shutdown_spread=WINDOW, shutdown_timeout=TIMEOUT,
                shutdown_reconnect_after=0.05))
            node_b = await stack.enter_async_context(hosted(anyio_backend, redis, tg))
            node_c = await stack.enter_async_context(hosted(anyio_backend, redis, tg))
            proxy = await stack.enter_async_context(proxy_to(node_a.port))
            clients: list[Any] = []
            got: list[list[bytes]] = []
            for _ in range(CLIENTS):
                client = make_client(anyio_backend, proxy.url)
                received: list[bytes] = []

                def on_message(data: bytes, message_id: int, timestamp: int, topic: str,
                               into: list[bytes] = received) -> None:
                    if topic == ROOM:
                        into.append(data)

                def on_goodbye(code: int, reason: str) -> None:
                    goodbyes.append(anyio.current_time())
                    # The load balancer spreads the returning clients over the other nodes.
                    proxy.target_port = node_b.port if len(goodbyes) % 2 else node_c.port

                client.on("message", on_message)
                client.on("disconnection", on_goodbye)
                await stack.enter_async_context(client)
                client.subscribe(ROOM)
                clients.append(client)
                got.append(received)
            events = [Recorder(c, "session_reset", "recovery_failed") for c in clients]
            assert len(node_a.get_connected_clients()) == CLIENTS
            while sum(ROOM in s.subscriptions for s in node_a.get_connected_clients()) \
                    < CLIENTS:
                await anyio.sleep(0.02)
            await anyio.sleep(0.2)  # node a receives the room from Redis
            sessions = [c.get_session().id for c in clients]

            def publish(n: int) -> None:
                for _ in range(n):
                    data = b"#%d" % len(sent)
                    sent.append(data)
                    node_b.publish(ROOM, data)

            publish(5)
            while any(len(g) < len(sent) for g in got):
                await anyio.sleep(0.02)

            # Messages keep coming on node b while node a says goodbye to its clients.
            publishing = True

            async def keep_publishing() -> None:
                while publishing:
                    publish(1)
                    await anyio.sleep(0.05)

            tg.start_soon(keep_publishing)
            started = anyio.current_time()
            await node_a.stop()
            took = anyio.current_time() - started
            while len(node_b.get_connected_clients()) + len(node_c.get_connected_clients()) \
                    < CLIENTS:
                await anyio.sleep(0.02)
            while not all(c.get_status() is ConnectionStatus.CONNECTED for c in clients):
                await anyio.sleep(0.02)
            publishing = False
            publish(3)  # after everyone is back
            while any(len(g) < len(sent) for g in got):
                await anyio.sleep(0.02)
            resumed = [c.get_session().id for c in clients]
            on_b = len(node_b.get_connected_clients())
            on_c = len(node_c.get_connected_clients())
            # The clients go first: with their nodes stopped they would reconnect through the
            # relay while it is torn down, and an accept cancelled as a connection arrives
            # fails inside asyncio (CPython 3.11: InvalidStateError from sock_accept's
            # callback), which failed this test once.
            for client in clients:
                await client.disconnect()
            await node_b.stop()
            await node_c.stop()
            tg.cancel_scope.cancel()
    total = len(sent)
    assert total > 5 + 10  # the publisher ran through the drain
    # Every client resumed its own session on node b or c: no reset, no failed recovery...
    assert resumed == sessions
    assert all(not e.order for e in events), [e.order for e in events]
    # ...and got every message, once each, in order, across the move.
    for received in got:
        assert received == sent
    assert on_b + on_c == CLIENTS
    assert on_b > 0
    assert on_c > 0
    assert len(goodbyes) >= CLIENTS
    first = goodbyes[:CLIENTS]
    # Spread: one goodbye every WINDOW / CLIENTS seconds, not all at once...
    assert first[-1] - first[0] >= WINDOW * (CLIENTS - 1) / CLIENTS * 0.8
    per_half_window = max(sum(1 for t in first if t0 <= t < t0 + WINDOW / 2) for t0 in first)
    assert per_half_window <= CLIENTS // 2 + 1
    # ...and the node is gone as soon as its clients are, not at its timeout.
    assert WINDOW * 0.8 <= took < TIMEOUT - 2
