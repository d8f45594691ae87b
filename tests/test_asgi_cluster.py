"""``SigmaASGIApp`` on the Redis cluster engine, end to end: two nodes of
``examples/fastapi_app/cluster.py`` on one real redis-server, one under uvicorn (asyncio) and one
under hypercorn's trio worker, as real servers (subprocesses on free ports, killed by PID).

Rooms span the nodes (each message once, in the same order everywhere), a client whose node
stops resumes its session on the other with nothing lost either way, presence is cluster-wide,
and sigma_ops' ``/readyz`` follows Redis' reachability."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import httpx
import pytest
from adapters_support import (
    LOCAL,
    Client,
    Recorder,
    connected_client,
    proxy_to,
)
from redis_support import RedisServer, free_port, running_redis

from sigma_core.api import Message

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 60.0
APP = "examples.fastapi_app.cluster:app"
COMMANDS: dict[str, list[str]] = {
    "uvicorn": ["-m", "uvicorn", APP, "--host", LOCAL, "--port", "{port}", "--loop", "asyncio",
                "--log-level", "warning"],
    "hypercorn-trio": ["-m", "hypercorn", APP, "--bind", f"{LOCAL}:{{port}}", "-k", "trio",
                       "--graceful-timeout", "2"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Node:
    def __init__(self, name: str, port: int, process: anyio.abc.Process) -> None:
        self.name = name
        self.port = port
        self.process = process
        self.http = httpx.AsyncClient(base_url=f"http://{LOCAL}:{port}", timeout=10)

    def ws(self, port: int | None = None) -> str:
        return f"ws://{LOCAL}:{port or self.port}/ws"

    async def publish(self, room: str, data: bytes) -> None:
        answer = await self.http.post(f"/rooms/{room}/messages", content=data)
        assert answer.status_code == 200, answer.text

    async def presence(self, room: str) -> set[str]:
        answer = await self.http.get(f"/rooms/{room}/presence")
        assert answer.status_code == 200, answer.text
        return set(answer.json()["members"])

    async def readyz(self) -> tuple[int, str]:
        answer = await self.http.get("/readyz")
        return answer.status_code, answer.text.strip()


@asynccontextmanager
async def node(name: str, redis: RedisServer, node_id: str) -> AsyncIterator[Node]:
    """One node under a real server; yields once its ``/readyz`` says ready (Redis answered)."""
    port = free_port()
    command = [sys.executable, *(a.format(port=port) for a in COMMANDS[name])]
    env = {**os.environ, "SIGMASOCKETS_REDIS_URL": redis.url, "SIGMASOCKETS_NODE_ID": node_id}
    # Its own process group: hypercorn runs the app in a child process (multiprocessing, with
    # a resource tracker), which a kill of the parent alone would leave running.
    process = await anyio.open_process(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                       stdout=None, stderr=None, start_new_session=True)
    result = Node(name, port, process)
    try:
        with anyio.fail_after(30):  # a cold start of a server on a loaded machine
            while True:
                try:
                    if (await result.readyz())[0] == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, f"{name} exited"
                await anyio.sleep(0.1)
        yield result
    finally:
        with anyio.CancelScope(shield=True):
            await result.http.aclose()
            if process.returncode is None:
                process.kill()
            await process.wait()
            with contextlib.suppress(ProcessLookupError):  # the group, by the leader's PID
                os.killpg(process.pid, signal.SIGKILL)
            await process.aclose()


async def collect(client: Client, topic: str, count: int, into: list[Message]) -> None:
    async for message in client:
        if message.topic == topic:
            into.append(message)
            if len(into) >= count:
                return


async def nothing_more(client: Client, topic: str, wait: float = 0.5) -> None:
    """No further message of ``topic`` arrives within ``wait`` (no duplicate)."""
    extra: list[Message] = []
    with anyio.move_on_after(wait):
        await collect(client, topic, 1, extra)
    assert extra == []


async def subscribed(client: Client, topic: str, *nodes: Node, members: int) -> None:
    """``client`` subscribed to ``topic``, and every node sees ``members`` members (so each
    node receives the room from Redis before anything is published to it)."""
    log = Recorder(client, "subscribed")
    client.subscribe(topic)
    await log.wait("subscribed")
    for n in nodes:
        while len(await n.presence(topic)) < members:
            await anyio.sleep(0.05)
    await anyio.sleep(0.3)  # the nodes' channel subscriptions in Redis


async def test_rooms_span_an_asyncio_and_a_trio_node(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(node("uvicorn", redis, "a"))
            b = await stack.enter_async_context(node("hypercorn-trio", redis, "b"))
            on_a = await stack.enter_async_context(connected_client("asyncio", a.ws()))
            on_b = await stack.enter_async_context(connected_client("asyncio", b.ws()))
            await subscribed(on_a, "span", a, b, members=1)
            await subscribed(on_b, "span", a, b, members=2)
            got_a: list[Message] = []
            got_b: list[Message] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, on_a, "span", 8, got_a)
                tg.start_soon(collect, on_b, "span", 8, got_b)
                for i in range(3):
                    await a.publish("span", b"rest a%d" % i)
                    await b.publish("span", b"rest b%d" % i)
                assert on_a.send(b"client on a", "span")  # published by node a's listener
                assert on_b.send(b"client on b", "span")
            sent = {b"rest a%d" % i for i in range(3)} | {b"rest b%d" % i for i in range(3)}
            sent |= {b"client on a", b"client on b"}
            # Every message once, on both nodes' clients in the same order (Redis' offsets,
            # consecutive), and each node's own messages in the order it published them.
            assert {m.data for m in got_a} == sent
            assert [(m.data, m.position) for m in got_a] == [(m.data, m.position) for m in got_b]
            offsets = [m.position.offset for m in got_a]
            assert offsets == list(range(offsets[0], offsets[0] + 8))
            data = [m.data for m in got_a]
            for origin in (b"rest a", b"rest b"):
                mine = [d for d in data if d.startswith(origin)]
                assert mine == sorted(mine)
            await nothing_more(on_a, "span")
            await nothing_more(on_b, "span", 0.0)


async def test_a_client_resumes_on_the_other_node_after_its_node_stops(
        redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(node("uvicorn", redis, "a"))
            b = await stack.enter_async_context(node("hypercorn-trio", redis, "b"))
            proxy = await stack.enter_async_context(proxy_to(a.port))
            client = await stack.enter_async_context(
                connected_client("asyncio", b.ws(proxy.port)))
            log = Recorder(client, "disconnection", "reconnecting")
            await subscribed(client, "away", a, b, members=1)
            got: list[Message] = []
            await b.publish("away", b"1")
            await b.publish("away", b"2")
            await collect(client, "away", 2, got)
            before = client.get_session()
            assert before is not None
            # Node a stops (SIGTERM: the server closes its WebSockets, the lifespan stops the
            # app); the client's next connection goes to b, which takes messages meanwhile.
            proxy.refusing = True
            proxy.target_port = b.port
            a.process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                await a.process.wait()
            await log.wait("disconnection")
            await b.publish("away", b"3")
            await b.publish("away", b"4")
            # Sent while away: kept by the client, sent again after the resume, and handed to
            # node b's listener, which publishes it.
            assert client.send(b"sent while away", "away")
            proxy.refusing = False
            await collect(client, "away", 5, got)
            assert [m.data for m in got] == [b"1", b"2", b"3", b"4", b"sent while away"]
            after = client.get_session()
            assert after is not None
            assert (after.id, after.resumed) == (before.id, True)
            await nothing_more(client, "away")


async def test_presence_spans_the_nodes(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(node("uvicorn", redis, "a"))
            b = await stack.enter_async_context(node("hypercorn-trio", redis, "b"))
            on_a = await stack.enter_async_context(connected_client("asyncio", a.ws()))
            on_b = await stack.enter_async_context(connected_client("asyncio", b.ws()))
            await subscribed(on_a, "lobby", a, b, members=1)
            await subscribed(on_b, "lobby", a, b, members=2)
            ids = set()
            for client in (on_a, on_b):
                session = client.get_session()
                assert session is not None
                ids.add(session.id)
            assert await a.presence("lobby") == ids
            assert await b.presence("lobby") == ids
            # The member on b leaves: node a's view follows (the leave is written through).
            on_b.unsubscribe("lobby")
            stay = ids - {on_b.get_session().id}  # type: ignore[union-attr]
            while await a.presence("lobby") != stay:
                await anyio.sleep(0.05)
            assert await b.presence("lobby") == stay


async def test_readyz_follows_redis(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with node("hypercorn-trio", redis, "b") as b, node("uvicorn", redis, "a") as a:
            for n in (a, b):
                assert await n.readyz() == (200, "ready")
                assert (await n.http.get("/livez")).status_code == 200
                metrics = (await n.http.get("/metrics")).text
                assert "sigmasockets_engine_up 1.0" in metrics
            redis.pause()  # Redis stops answering: both nodes become unready
            try:
                for n in (a, b):
                    while (await n.readyz())[0] != 503:
                        await anyio.sleep(0.1)
                    assert await n.readyz() == (503, "cluster engine unreachable")
                    assert (await n.http.get("/livez")).status_code == 200
            finally:
                redis.resume()
            for n in (a, b):
                while (await n.readyz())[0] != 200:
                    await anyio.sleep(0.1)
