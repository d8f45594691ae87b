"""The engine contract: the same tests, unchanged, against the in-memory engine
(``sigma_core.backplane.MemoryEngine``, answering inline) and the Redis engine
(``sigma_redis.RedisEngine`` on a real redis-server, and on a real Redis Cluster of three
primaries: ``redis+cluster://``). What a hub may rely on from any engine:
positions, all-or-nothing bounded reads, heads, dropping, session compare-and-set with expiry,
cluster presence, routes stored with messages, and appends delivered with their position to the
nodes receiving the topic."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from redis_support import RedisClusterServers, RedisServer, running_redis, running_redis_cluster
from test_redis_engine import Harness

from sigma_core.backplane import HistoryLimits, MemoryEngine
from sigma_core.engine import (
    Append,
    Appended,
    DeleteSession,
    Done,
    DropTopic,
    EngineRequest,
    EngineResult,
    Heads,
    HistoryEntry,
    LoadSession,
    PresenceMembers,
    PresenceMissing,
    PresenceRead,
    PresenceRefresh,
    PresenceUpdate,
    RangeRead,
    ReadHeads,
    ReadRange,
    Receive,
    ReplayGap,
    Route,
    SaveSession,
    SessionLoaded,
    SessionSaved,
    TouchSession,
)
from sigma_core.entropy import SeededEntropy
from sigma_core.messages import StreamPosition
from sigma_redis import RedisEngine, RedisEngineConfig

pytestmark = pytest.mark.anyio
LIMITS = HistoryLimits(max_count=4, max_bytes=1 << 20, max_age=300)
_ids = itertools.count(1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Engine:
    """One engine under test, as a hub on one node sees it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, HistoryEntry]] = []

    async def call(self, request: EngineRequest) -> EngineResult:
        raise NotImplementedError

    async def delivered(self, count: int) -> None:
        raise NotImplementedError


class Memory(Engine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = MemoryEngine(SeededEntropy(7), LIMITS)
        self.receiving: set[str] = set()
        self.engine.on_append = self._on_append

    def _on_append(self, topic: str, entry: HistoryEntry) -> None:
        if topic in self.receiving:
            self.messages.append((topic, entry))

    async def call(self, request: EngineRequest) -> EngineResult:
        if isinstance(request, Receive):
            self.receiving.add(request.topic)
        return self.engine.execute(request, time.time())

    async def delivered(self, count: int) -> None:
        assert len(self.messages) >= count


class Redis(Engine):
    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.harness = harness
        self.messages = harness.messages

    async def call(self, request: EngineRequest) -> EngineResult:
        return await self.harness.call(request)

    async def delivered(self, count: int) -> None:
        await self.harness.wait_for(lambda: len(self.messages) >= count)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServers]:
    with running_redis_cluster(masters=3) as servers:
        yield servers


@pytest.fixture(params=["memory", "redis", "cluster"])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    if request.param == "memory":
        yield Memory()
        return
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        server: RedisServer = request.getfixturevalue("redis")
        url = server.url
    h = Harness(RedisEngine(RedisEngineConfig(url=url, history=LIMITS,
                                              health_interval=0.1)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.engine.run, h)
        await h.ready()
        yield Redis(h)
        tg.cancel_scope.cancel()


def topic(name: str) -> str:
    return f"{name}-{next(_ids)}"


def rid() -> int:
    return next(_ids)


async def append(engine: Engine, name: str, envelope: bytes,
                 route: Route | None = None) -> StreamPosition:
    result = await engine.call(Append(request_id=rid(), topic=name, envelope=envelope,
                                      wall_time=round(time.time(), 3), route=route))
    assert isinstance(result, Appended)
    return result.position


async def read(engine: Engine, name: str, after: StreamPosition, max_count: int = 0,
               max_bytes: int = 0) -> RangeRead:
    result = await engine.call(ReadRange(request_id=rid(), topic=name, after=after,
                                         max_count=max_count, max_bytes=max_bytes))
    assert isinstance(result, RangeRead)
    return result


async def test_positions_are_contiguous_in_a_fresh_epoch(engine: Engine) -> None:
    name, other = topic("a"), topic("b")
    got = [await append(engine, name, b"%d" % i) for i in range(3)]
    assert got[0].epoch != 0
    assert got == [StreamPosition(got[0].epoch, i) for i in (1, 2, 3)]
    assert (await append(engine, other, b"x")).epoch != got[0].epoch


async def test_bounded_reads_are_all_or_nothing(engine: Engine) -> None:
    name = topic("reads")
    for i in range(1, 7):
        pos = await append(engine, name, b"m%d" % i)
    epoch = pos.epoch
    head = StreamPosition(epoch, 6)
    # max_count 4: 1 and 2 are gone, and a read from 1 says exactly that.
    result = await read(engine, name, StreamPosition(epoch, 0))
    assert result.gap == ReplayGap(1, 2)
    assert result.head == head
    result = await read(engine, name, StreamPosition(epoch, 2))
    assert [e.envelope for e in result.entries] == [b"m3", b"m4", b"m5", b"m6"]
    assert result.gap is None
    assert result.head == head
    assert [e.offset for e in (await read(engine, name, StreamPosition(epoch, 2),
                                          max_count=2)).entries] == [3, 4]
    assert [e.offset for e in (await read(engine, name, StreamPosition(epoch, 2),
                                          max_bytes=5)).entries] == [3, 4]
    assert [e.offset for e in (await read(engine, name, StreamPosition(epoch, 2),
                                          max_bytes=1)).entries] == [3]
    assert (await read(engine, name, head)).entries == ()
    assert (await read(engine, name, head)).gap is None
    assert (await read(engine, name, StreamPosition(epoch + 1, 3))).gap == ReplayGap(4, 0)
    assert (await read(engine, name, StreamPosition(epoch, 9))).gap == ReplayGap(10, 0)
    unknown = await read(engine, topic("never"), StreamPosition(5, 5))
    assert unknown.gap == ReplayGap(6, 0)
    assert unknown.head == StreamPosition(0, 0)


async def test_entries_keep_time_and_route(engine: Engine) -> None:
    name = topic("route")
    route = Route(exclude=frozenset({"s2"}), only=frozenset({"s1", "s3"}))
    before = time.time()
    pos = await append(engine, name, b"routed", route)
    await append(engine, name, b"plain")
    entries = (await read(engine, name, StreamPosition(pos.epoch, 0))).entries
    assert [(e.envelope, e.route) for e in entries] == [(b"routed", route), (b"plain", None)]
    assert entries[0].reaches("s1")
    assert not entries[0].reaches("s2")
    assert abs(entries[0].time - before) < 5


async def test_heads_create_only_when_asked(engine: Engine) -> None:
    known, unknown = topic("known"), topic("unknown")
    pos = await append(engine, known, b"x")
    heads = await engine.call(ReadHeads(request_id=rid(), topics=(known, unknown),
                                        create=False))
    assert isinstance(heads, Heads)
    assert heads.heads == ((known, pos), (unknown, StreamPosition(0, 0)))
    heads = await engine.call(ReadHeads(request_id=rid(), topics=(unknown,), create=True))
    assert isinstance(heads, Heads)
    created = heads.heads[0][1]
    assert created.epoch != 0
    assert created.offset == 0
    assert await append(engine, unknown, b"y") == StreamPosition(created.epoch, 1)


async def test_dropped_topic_restarts_in_a_new_epoch(engine: Engine) -> None:
    name = topic("$inbox:s")
    first = await append(engine, name, b"a")
    assert isinstance(await engine.call(DropTopic(request_id=rid(), topic=name)), Done)
    again = await append(engine, name, b"b")
    assert again.offset == 1
    assert again.epoch != first.epoch
    assert (await read(engine, name, first)).gap == ReplayGap(2, 0)


async def test_session_records_compare_and_set_and_expire(engine: Engine) -> None:
    sid = topic("session")
    loaded = await engine.call(LoadSession(request_id=rid(), session_id=sid))
    assert isinstance(loaded, SessionLoaded)
    assert loaded.record is None
    for version, record, stored in ((1, b"one", True), (1, b"again", False),
                                    (3, b"three", True), (2, b"older", False)):
        saved = await engine.call(SaveSession(request_id=rid(), session_id=sid, record=record,
                                              version=version, ttl=math.inf))
        assert isinstance(saved, SessionSaved)
        assert saved.stored is stored
    loaded = await engine.call(LoadSession(request_id=rid(), session_id=sid))
    assert isinstance(loaded, SessionLoaded)
    assert loaded.record == b"three"
    await engine.call(TouchSession(request_id=rid(), session_id=sid, ttl=0.05))
    if isinstance(engine, Memory):
        engine.engine.trim(time.time() + 1)
    else:
        await anyio.sleep(0.2)
    loaded = await engine.call(LoadSession(request_id=rid(), session_id=sid))
    assert isinstance(loaded, SessionLoaded)
    assert loaded.record is None
    await engine.call(SaveSession(request_id=rid(), session_id=sid, record=b"r", version=1,
                                  ttl=60))
    await engine.call(DeleteSession(request_id=rid(), session_id=sid))
    loaded = await engine.call(LoadSession(request_id=rid(), session_id=sid))
    assert isinstance(loaded, SessionLoaded)
    assert loaded.record is None


async def test_presence_joins_leaves_and_sorts(engine: Engine) -> None:
    name = topic("room")
    await engine.call(PresenceUpdate(request_id=rid(), topic=name,
                                     joins=(("zoe", b"z"), ("amy", b"a")), ttl=30))
    await engine.call(PresenceUpdate(request_id=rid(), topic=name, joins=(("bob", b"b"),),
                                     leaves=("zoe",), ttl=30))
    members = await engine.call(PresenceRead(request_id=rid(), topic=name))
    assert isinstance(members, PresenceMembers)
    assert members.members == (("amy", b"a"), ("bob", b"b"))
    empty = await engine.call(PresenceRead(request_id=rid(), topic=topic("nobody")))
    assert isinstance(empty, PresenceMembers)
    assert empty.members == ()


async def test_presence_refresh_extends_members_by_id_and_names_the_missing(
        engine: Engine) -> None:
    # A node refreshes its members with their ids only: the info written at the join stays,
    # the expiry moves, and a member the engine no longer holds is named (not added) so the
    # node can join it again with its info.
    name = topic("refresh")
    await engine.call(PresenceUpdate(request_id=rid(), topic=name,
                                     joins=(("amy", b"a"), ("bob", b"b")), ttl=0.3))
    refreshed = await engine.call(PresenceRefresh(request_id=rid(), topic=name,
                                                  members=("amy", "zed"), ttl=30))
    assert isinstance(refreshed, PresenceMissing)
    assert refreshed.members == ("zed",)
    if isinstance(engine, Memory):
        now = time.time() + 1
        members = engine.engine.execute(PresenceRead(request_id=rid(), topic=name), now)
    else:
        await anyio.sleep(0.5)
        members = await engine.call(PresenceRead(request_id=rid(), topic=name))
    assert isinstance(members, PresenceMembers)
    assert members.members == (("amy", b"a"),)  # bob expired; zed was never added
    again = await engine.call(PresenceRefresh(request_id=rid(), topic=name,
                                              members=("amy", "bob"), ttl=30))
    assert isinstance(again, PresenceMissing)
    assert again.members == ("bob",)
    # A refresh never shortens an expiry.
    await engine.call(PresenceRefresh(request_id=rid(), topic=name, members=("amy",),
                                      ttl=0.05))
    if not isinstance(engine, Memory):
        await anyio.sleep(0.2)
    kept = await engine.call(PresenceRead(request_id=rid(), topic=name))
    assert isinstance(kept, PresenceMembers)
    assert kept.members == (("amy", b"a"),)


async def test_appends_reach_receiving_nodes_with_their_position(engine: Engine) -> None:
    name, other = topic("live"), topic("quiet")
    assert isinstance(await engine.call(Receive(request_id=rid(), topic=name)), Done)
    first = await append(engine, name, b"one")
    await append(engine, other, b"not received")
    second = await append(engine, name, b"two")
    await engine.delivered(2)
    assert [(t, e.position, e.envelope) for t, e in engine.messages] == [
        (name, first, b"one"), (name, second, b"two")]
