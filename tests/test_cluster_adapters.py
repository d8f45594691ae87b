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
