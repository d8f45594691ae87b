"""``max_replay_bytes`` holds whatever engine the history comes from (docs/hardening.md, "Cost
model"): the same Hello, asking for whole topic histories from offset 0, against a hub on the
memory engine, a hub on an external engine answering from a ``MemoryEngine`` (the cluster
seam, inline), and a hub on the Redis engine (a real redis-server). Each replays at most
``max_replay_bytes`` to the connection, reports the same topics FAILED, and never reads from
the engine more than the cap per topic."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator

import anyio
import pytest
from redis_support import RedisServer, running_redis
from test_amplification import Attacker
from test_redis_engine import harness

from sigma_core.backplane import MemoryEngine
from sigma_core.connection import ConnectionConfig
from sigma_core.engine import EngineResult, ExternalEngineConfig, RangeRead, ReadRange
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import ClientConnected, Hub, HubConfig
from sigma_core.messages import Hello, StreamPosition, TopicPosition

KiB, MiB = 1 << 10, 1 << 20
CAP = 1 * MiB
PAYLOAD = b"r" * (8 * KiB)
#: Topic -> history bytes. "big" alone is over the cap; a and b fit; c would pass it.
HISTORY = {"big": 3 * MiB, "a": 400 * KiB, "b": 400 * KiB, "c": 400 * KiB}
_runs = itertools.count(1)


def config(wall_clock_offset: float = 0.0) -> HubConfig:
    # (Redis ages history by the real clock: the hub's wall clock must be today's.)
    return HubConfig(max_replay_bytes=CAP,
                     connection=ConnectionConfig(wall_clock_offset=wall_clock_offset))


class Outcome:
    def __init__(self, attacker: Attacker, read_bytes: dict[str, int]) -> None:
        connected = [e for e in attacker.hub.events_received() if isinstance(e, ClientConnected)]
        assert len(connected) == 1
        self.failed = set(connected[0].failed_topics)
        self.out = attacker.out
        self.read_bytes = read_bytes


def check(outcome: Outcome) -> None:
    assert {t.split("-")[-1] for t in outcome.failed} == {"big", "c"}
    # a and b replayed (800 KiB with framing), never more than the cap.
    assert 800 * KiB <= outcome.out <= CAP + 64 * KiB, outcome.out


def check_reads(read_bytes: dict[str, int]) -> None:
    # The engine is not read past the cap (plus the batch that crossed it) for any topic:
    # "big" stops early instead of being read whole and then refused.
    batch = ExternalEngineConfig(node_id="n").read_batch_bytes
    assert max(read_bytes.values()) <= CAP + batch, read_bytes
    big = next(v for k, v in read_bytes.items() if k.endswith("big"))
    assert big < HISTORY["big"], read_bytes


def test_memory_engine() -> None:
    hub = Hub(config(), entropy=SeededEntropy(7), now=0.0)
    for topic, size in HISTORY.items():
        for _ in range(size // len(PAYLOAD)):
            hub.publish(topic, PAYLOAD, 0.0)
    epochs = {t: hub._engine.head(t).epoch for t in HISTORY}
    attacker = Attacker(hub)
    attacker.send(Hello(positions=tuple(
        TopicPosition(topic=t, position=StreamPosition(epochs[t], 0)) for t in HISTORY)))
    attacker.run_timers()
    check(Outcome(attacker, {}))


class InlineEngine:
    """An external engine answering at once from a MemoryEngine; counts the history bytes
    each topic's reads returned."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = MemoryEngine(SeededEntropy(3))
        self.read_bytes: dict[str, int] = {}

    def execute(self, request: object) -> EngineResult:
        result = self.store.execute(request, 0.0)  # type: ignore[arg-type]
        self.count(request, result)
        return result

    def count(self, request: object, result: EngineResult) -> None:
        if isinstance(request, ReadRange) and isinstance(result, RangeRead):
            self.read_bytes[request.topic] = self.read_bytes.get(request.topic, 0) + sum(
                e.size for e in result.entries)

    def pump(self, attacker: Attacker | None = None) -> None:
        for _ in range(10_000):
            requests = self.hub.engine_requests()
            if not requests:
                break
            for request in requests:
                self.hub.engine_result(self.execute(request), 0.0)
            if attacker is not None:
                attacker.drain()


def external_hub(wall_clock_offset: float = 0.0) -> Hub:
    return Hub(config(wall_clock_offset), entropy=SeededEntropy(7), now=0.0,
               engine=ExternalEngineConfig(node_id="n"))


def run_external(hub: Hub, pump: Callable[[Attacker | None], None],
                 topics: dict[str, str]) -> Attacker:
    for name, size in HISTORY.items():
        for _ in range(size // len(PAYLOAD)):
            hub.publish(topics[name], PAYLOAD, 0.0)
            pump(None)
    attacker = Attacker(hub)
    pump(attacker)
    return attacker


def test_external_engine_inline() -> None:
    hub = external_hub()
    engine = InlineEngine(hub)
    topics = {name: name for name in HISTORY}
    attacker = run_external(hub, engine.pump, topics)
    epochs = {t: engine.store.head(t).epoch for t in HISTORY}
    attacker.send(Hello(positions=tuple(
        TopicPosition(topic=t, position=StreamPosition(epochs[t], 0)) for t in HISTORY)))
    for _ in range(100):
        engine.pump(attacker)
        attacker.run_timers()
    outcome = Outcome(attacker, engine.read_bytes)
    check(outcome)
    check_reads(engine.read_bytes)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_engine(anyio_backend: str, redis: RedisServer) -> None:
    run = next(_runs)
    topics = {name: f"budget{run}-{name}" for name in HISTORY}
    hub = external_hub(time.time())
    read_bytes: dict[str, int] = {}
    with anyio.fail_after(60):
        async with harness(redis.url) as h:

            async def pump(attacker: Attacker | None) -> None:
                for _ in range(10_000):
                    requests = hub.engine_requests()
                    if not requests:
                        return
                    for request in requests:
                        result = await h.call(request)
                        if isinstance(request, ReadRange) and isinstance(result, RangeRead):
                            read_bytes[request.topic] = read_bytes.get(request.topic, 0) \
                                + sum(e.size for e in result.entries)
                        hub.engine_result(result, 0.0)
                    if attacker is not None:
                        attacker.drain()

            for name, size in HISTORY.items():
                for _ in range(size // len(PAYLOAD)):
                    hub.publish(topics[name], PAYLOAD, 0.0)
                    await pump(None)
            epochs = {}
            for name, topic in topics.items():
                entry = (await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                                after=StreamPosition(0, 0), max_count=1,
                                                max_bytes=1)))
                assert isinstance(entry, RangeRead)
                epochs[name] = entry.head.epoch
            attacker = Attacker(hub)
            await pump(attacker)
            attacker.send(Hello(positions=tuple(
                TopicPosition(topic=topics[n], position=StreamPosition(epochs[n], 0))
                for n in HISTORY)))
            for _ in range(100):
                await pump(attacker)
                attacker.run_timers()
            check(Outcome(attacker, read_bytes))
            check_reads(read_bytes)
