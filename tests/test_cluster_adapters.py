"""Both adapters drive an engine that answers asynchronously (what the Redis engine's anyio
driver does): two servers share one engine, a client on one gets what the other publishes,
with the sans-IO hub's requests and results carried by ``EngineLink``."""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
import pytest
from adapters_support import BACKENDS, DEADLINE, make_client, make_server, next_message, url

from sigma_core.backplane import MemoryEngine
from sigma_core.engine import (
    EngineInputs,
    EngineRequest,
    ExternalEngineConfig,
    HistoryEntry,
    Receive,
    StopReceiving,
)
from sigma_core.entropy import SeededEntropy


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


class SharedEngine:
    """A memory engine reached over an asynchronous hop, shared by the drivers of several
    servers in one test (a stand-in for Redis)."""

    def __init__(self) -> None:
        self.store = MemoryEngine(SeededEntropy(11))
        self.store.on_append = self._published
        self.drivers: list[Driver] = []

    def _published(self, topic: str, entry: HistoryEntry) -> None:
        for driver in self.drivers:
            if topic in driver.receiving:
                driver.queue.send_nowait(("message", topic, entry))


class Driver:
    """An anyio driver: requests are answered after a yield to the event loop."""

    def __init__(self, engine: SharedEngine) -> None:
        self.engine = engine
        self.receiving: set[str] = set()
        self.queue, self._items = anyio.create_memory_object_stream[Any](math.inf)
        engine.drivers.append(self)

    def submit(self, requests: list[EngineRequest]) -> None:
        for request in requests:
            self.queue.send_nowait(("request", request))

    async def run(self, inputs: EngineInputs) -> None:
        try:
            async with self._items:
                async for item in self._items:
                    await anyio.sleep(0)  # the round trip
                    if item[0] == "message":
                        inputs.engine_message(item[1], item[2])
                        continue
                    request = item[1]
                    if isinstance(request, Receive):
                        self.receiving.add(request.topic)
                    elif isinstance(request, StopReceiving):
                        self.receiving.discard(request.topic)
                    inputs.engine_result(self.engine.store.execute(request, time.time()))
        finally:
            self.queue.close()


def cluster_server(backend: str, engine: SharedEngine, name: str) -> Any:
    return make_server(backend, engine=Driver(engine),
                       engine_config=ExternalEngineConfig(node_id=name))


@pytest.mark.anyio
async def test_a_client_on_one_server_gets_what_another_server_publishes(
        anyio_backend: str) -> None:
    engine = SharedEngine()
    with anyio.fail_after(DEADLINE):
        async with cluster_server(anyio_backend, engine, "a") as a, \
                cluster_server(anyio_backend, engine, "b") as b, \
                make_client(anyio_backend, url(a)) as alice:
            b.broadcast(b"from b")
            message = await next_message(alice)
            assert message.data == b"from b"
            assert a.get_stats().engine_up


@pytest.mark.anyio
async def test_the_app_watches_a_topic_both_servers_publish_to(anyio_backend: str) -> None:
    """``server.watch``: each server's app hears every message of the topic, from either
    server, in position order, the same sequence on both; ``request_presence`` answers."""
    engine = SharedEngine()
    heard: dict[str, list[tuple[int, bytes]]] = {"a": [], "b": []}
    watched: dict[str, list[int]] = {"a": [], "b": []}
    with anyio.fail_after(DEADLINE):
        async with cluster_server(anyio_backend, engine, "a") as a, \
                cluster_server(anyio_backend, engine, "b") as b:
            a.publish("room", b"before")
            for name, server in (("a", a), ("b", b)):
                server.on("topic_message", lambda e, n=name: heard[n].append(
                    (e.position.offset, e.payload)))
                server.on("topic_watched", lambda e, n=name: watched[n].append(
                    e.position.offset))
            while not engine.store.head("room", create=False).offset:
                await anyio.sleep(0.01)
            a.watch("room", history=1)
            b.watch("room", history=1)
            while not (watched["a"] and watched["b"]):
                await anyio.sleep(0.01)
            for i in range(4):
                (a if i % 2 else b).publish("room", b"m%d" % i)
            while len(heard["a"]) < 5 or len(heard["b"]) < 5:
                await anyio.sleep(0.01)
            assert heard["a"] == heard["b"]
            assert heard["a"][0] == (1, b"before")  # the history asked for
            assert [o for o, _ in heard["a"]] == [1, 2, 3, 4, 5]
            answers: list[Any] = []
            a.on("cluster_presence", answers.append)
            a.request_presence("room")
            while not answers:
                await anyio.sleep(0.01)
            assert answers[0].topic == "room"
            assert not answers[0].failed
            a.unwatch("room")
            b.publish("room", b"unheard by a")
            while len(heard["b"]) < 6:
                await anyio.sleep(0.01)
            assert len(heard["a"]) == 5
