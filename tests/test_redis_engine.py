"""The Redis engine driver against a real redis-server, on asyncio and on trio: the data model
(keys hash-tagged per topic, stream ids = offsets, meta hash), publish-with-position through
pub/sub, history bounds, NOSCRIPT reloads, fencing by replication id on a real primary/replica
failover, garbage in Redis, and Redis going away and coming back."""

from __future__ import annotations

import gc
import itertools
import logging
import math
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from redis_support import RedisServer, free_port, running_redis

from sigma_core.backplane import HistoryLimits
from sigma_core.engine import (
    Append,
    Appended,
    DeleteSession,
    Done,
    DropTopic,
    EngineFailed,
    EngineRequest,
    EngineResult,
    Heads,
    HistoryEntry,
    LoadSession,
    PresenceMembers,
    PresenceRead,
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
    StopReceiving,
    TouchSession,
)
from sigma_core.messages import StreamPosition
from sigma_redis import RedisEngine, RedisEngineConfig, parse_message

pytestmark = pytest.mark.anyio
DEADLINE = 15.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


class Harness:
    """Runs a RedisEngine and collects what it calls back, like an adapter would."""

    def __init__(self, engine: RedisEngine) -> None:
        self.engine = engine
        self.results: dict[int, EngineResult] = {}
        self.messages: list[tuple[str, HistoryEntry]] = []
        self.statuses: list[tuple[bool, str]] = []
        self._next = 0
        self._changed = anyio.Event()

    # EngineInputs
    def engine_result(self, result: EngineResult) -> None:
        self.results[result.request_id] = result
        self._poke()

    def engine_message(self, topic: str, entry: HistoryEntry) -> None:
        self.messages.append((topic, entry))
        self._poke()

    def engine_status(self, up: bool, reason: str) -> None:
        self.statuses.append((up, reason))
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def rid(self) -> int:
        self._next += 1
        return self._next

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        with anyio.fail_after(timeout):
            while not predicate():  # type: ignore[operator]
                await self._changed.wait()

    async def call(self, request: EngineRequest, timeout: float = 5.0) -> EngineResult:
        self.engine.submit([request])
        await self.wait_for(lambda: request.request_id in self.results, timeout)
        return self.results.pop(request.request_id)

    async def ready(self) -> None:
        await self.wait_for(self.engine.is_ready, 10.0)


@asynccontextmanager
async def harness(url: str, *, ready: bool = True, **options: object
                  ) -> AsyncIterator[Harness]:
    """A running engine on ``url`` (``ready``: once Redis answered)."""
    config = RedisEngineConfig(url=url, request_timeout=1.0, health_interval=0.1,
                               **options)  # type: ignore[arg-type]
    h = Harness(RedisEngine(config))
    async with anyio.create_task_group() as tg:
        tg.start_soon(h.engine.run, h)
        if ready:
            await h.ready()
        yield h
        tg.cancel_scope.cancel()


_topic_counter = itertools.count(1)


def fresh_topic(name: str) -> str:
    return f"{name}-{next(_topic_counter)}"


async def append(h: Harness, topic: str, envelope: bytes, route: Route | None = None,
                 wall_time: float | None = None) -> StreamPosition:
    result = await h.call(Append(request_id=h.rid(), topic=topic, envelope=envelope,
                                 wall_time=time.time() if wall_time is None else wall_time,
                                 route=route))
    assert isinstance(result, Appended), result
    return result.position


async def test_append_assigns_positions_and_history_reads_from_exclusive_start(
        redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            topic = fresh_topic("room")
            positions = [await append(h, topic, b"m%d" % i) for i in range(1, 6)]
            epoch = positions[0].epoch
            assert epoch != 0
            assert positions == [StreamPosition(epoch, i) for i in range(1, 6)]
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 2), max_count=10,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert read.gap is None
            assert read.head == StreamPosition(epoch, 5)
            assert [(e.offset, e.envelope) for e in read.entries] == [
                (3, b"m3"), (4, b"m4"), (5, b"m5")]
            assert abs(read.entries[0].time - time.time()) < 60
            # The data model, as docs/cluster.md describes it.
            assert redis.command("TYPE", f"sigma:{{{topic}}}:s") == "stream"
            assert redis.command("HGET", f"sigma:{{{topic}}}:m", "o") == "5"
            assert redis.command("HGET", f"sigma:{{{topic}}}:m", "e") == str(epoch)
            ids = redis.command("XRANGE", f"sigma:{{{topic}}}:s", "-", "+")
            assert "3-0" in ids
            # Paced: max_count and max_bytes (beyond the first) bound one read.
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 0), max_count=2,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert [e.offset for e in read.entries] == [1, 2]
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 0), max_count=10,
                                          max_bytes=1))
            assert isinstance(read, RangeRead)
            assert [e.offset for e in read.entries] == [1]
            # Up to date: nothing, no gap.
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 5), max_count=10,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert read.entries == ()
            assert read.gap is None
            # Another epoch or a position from the future: gap, nothing usable.
            for after in (StreamPosition(epoch + 1, 2), StreamPosition(epoch, 9)):
                read = await h.call(ReadRange(request_id=h.rid(), topic=topic, after=after,
                                              max_count=10, max_bytes=1 << 20))
                assert isinstance(read, RangeRead)
                assert read.gap == ReplayGap(after.offset + 1, 0)


async def test_heads_create_or_report_missing_topics(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            known, unknown = fresh_topic("known"), fresh_topic("unknown")
            pos = await append(h, known, b"x")
            heads = await h.call(ReadHeads(request_id=h.rid(), topics=(known, unknown),
                                           create=False))
            assert isinstance(heads, Heads)
            assert heads.heads == ((known, pos), (unknown, StreamPosition(0, 0)))
            heads = await h.call(ReadHeads(request_id=h.rid(), topics=(unknown,)))
            assert isinstance(heads, Heads)
            created = heads.heads[0][1]
            assert created.epoch != 0
            assert created.offset == 0
            # The created epoch is kept: the next append continues it.
            assert await append(h, unknown, b"y") == StreamPosition(created.epoch, 1)
            # Many topics (more than one script call holds) in one request.
            many = tuple(fresh_topic("many") for _ in range(300))
            heads = await h.call(ReadHeads(request_id=h.rid(), topics=(known, *many)))
            assert isinstance(heads, Heads)
            assert [t for t, _ in heads.heads] == [known, *many]
            assert heads.heads[0][1] == pos
            epochs = {p.epoch for _, p in heads.heads[1:]}
            assert len(epochs) == 300
            assert 0 not in epochs


async def test_history_is_trimmed_by_count_bytes_and_age_with_exact_gaps(
        redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        limits = HistoryLimits(max_count=3, max_bytes=1000, max_age=0)
        async with harness(redis.url, history=limits) as h:
            topic = fresh_topic("trim")
            for i in range(1, 7):
                pos = await append(h, topic, b"%d" % i)
            epoch = pos.epoch
            assert redis.command("XLEN", f"sigma:{{{topic}}}:s") == "3"
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 1), max_count=10,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert read.gap == ReplayGap(2, 3)  # 4, 5, 6 are held; 2..3 are gone
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(epoch, 3), max_count=10,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert [e.envelope for e in read.entries] == [b"4", b"5", b"6"]
        async with harness(redis.url, history=HistoryLimits(max_count=0, max_bytes=10,
                                                            max_age=0)) as h:
            topic = fresh_topic("bytes")
            for _ in range(5):
                pos = await append(h, topic, b"abcd")
            # 10 bytes hold two 4-byte envelopes.
            assert redis.command("XLEN", f"sigma:{{{topic}}}:s") == "2"
            assert redis.command("HGET", f"sigma:{{{topic}}}:m", "b") == "8"
        async with harness(redis.url, history=HistoryLimits(max_count=0, max_bytes=0,
                                                            max_age=60)) as h:
            topic = fresh_topic("age")
            now = time.time()
            await append(h, topic, b"old", wall_time=now - 120)
            pos = await append(h, topic, b"new", wall_time=now)
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(pos.epoch, 0), max_count=10,
                                          max_bytes=1 << 20))
            assert isinstance(read, RangeRead)
            assert read.gap == ReplayGap(1, 1)
            ttl = int(redis.command("PTTL", f"sigma:{{{topic}}}:s"))
            assert 0 < ttl <= 60_000  # an idle topic's history expires with max_age


async def test_append_publishes_with_position_to_receiving_nodes(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as a, harness(redis.url) as b:
            topic, other = fresh_topic("shared"), fresh_topic("other")
            assert isinstance(await b.call(Receive(request_id=b.rid(), topic=topic)), Done)
            route = Route(exclude=frozenset({"s1"}))
            p1 = await append(a, topic, b"hello", route=route)
            p2 = await append(a, topic, b"world")
            await append(a, other, b"not received")
            await b.wait_for(lambda: len(b.messages) >= 2)
            assert [(t, e.epoch, e.offset, e.envelope, e.route) for t, e in b.messages] == [
                (topic, p1.epoch, 1, b"hello", route), (topic, p2.epoch, 2, b"world", None)]
            assert a.messages == []  # a never asked to receive
            assert isinstance(await b.call(StopReceiving(request_id=b.rid(), topic=topic)),
                              Done)
            await append(a, topic, b"after stop")
            # A later append on a topic b still receives proves the one above was not sent.
            assert isinstance(await b.call(Receive(request_id=b.rid(), topic=other)), Done)
            await append(a, other, b"marker")
            await b.wait_for(lambda: len(b.messages) >= 3)
            assert [e.envelope for _, e in b.messages[2:]] == [b"marker"]


async def test_sessions_compare_and_set_with_ttl(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            sid = fresh_topic("sess")
            saved = await h.call(SaveSession(request_id=h.rid(), session_id=sid,
                                             record=b"v1", version=1, ttl=math.inf))
            assert isinstance(saved, SessionSaved)
            assert saved.stored
            stale = await h.call(SaveSession(request_id=h.rid(), session_id=sid,
                                             record=b"old", version=1, ttl=math.inf))
            assert isinstance(stale, SessionSaved)
            assert not stale.stored
            await h.call(SaveSession(request_id=h.rid(), session_id=sid, record=b"v2",
                                     version=2, ttl=30))
            loaded = await h.call(LoadSession(request_id=h.rid(), session_id=sid))
            assert isinstance(loaded, SessionLoaded)
            assert loaded.record == b"v2"
            key = f"sigma:session:{{{sid}}}"
            assert 0 < int(redis.command("PTTL", key)) <= 30_000
            assert isinstance(await h.call(TouchSession(request_id=h.rid(), session_id=sid,
                                                        ttl=math.inf)), Done)
            assert redis.command("PTTL", key) == "-1"
            await h.call(DeleteSession(request_id=h.rid(), session_id=sid))
            loaded = await h.call(LoadSession(request_id=h.rid(), session_id=sid))
            assert isinstance(loaded, SessionLoaded)
            assert loaded.record is None


async def test_presence_is_cluster_wide_and_expires(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as a, harness(redis.url) as b:
            topic = fresh_topic("presence")
            await a.call(PresenceUpdate(request_id=a.rid(), topic=topic,
                                        joins=(("alice", b"{}"),), ttl=30))
            await b.call(PresenceUpdate(request_id=b.rid(), topic=topic,
                                        joins=(("bob", b"b"),), ttl=0.3))
            read = await a.call(PresenceRead(request_id=a.rid(), topic=topic))
            assert isinstance(read, PresenceMembers)
            assert sorted(read.members) == [("alice", b"{}"), ("bob", b"b")]
            await anyio.sleep(0.5)  # bob's node stopped refreshing: he is gone
            read = await a.call(PresenceRead(request_id=a.rid(), topic=topic))
            assert isinstance(read, PresenceMembers)
            assert read.members == (("alice", b"{}"),)
            await a.call(PresenceUpdate(request_id=a.rid(), topic=topic, leaves=("alice",)))
            read = await a.call(PresenceRead(request_id=a.rid(), topic=topic))
            assert isinstance(read, PresenceMembers)
            assert read.members == ()


async def test_drop_topic_forgets_stream_and_meta(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            topic = fresh_topic("$inbox:x")
            first = await append(h, topic, b"a")
            assert isinstance(await h.call(DropTopic(request_id=h.rid(), topic=topic)), Done)
            assert redis.command("EXISTS", f"sigma:{{{topic}}}:m") == "0"
            again = await append(h, topic, b"b")
            assert again.offset == 1
            assert again.epoch != first.epoch


async def test_scripts_are_reloaded_after_script_flush(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            topic = fresh_topic("noscript")
            await append(h, topic, b"1")
            redis.command("SCRIPT", "FLUSH")
            assert (await append(h, topic, b"2")).offset == 2


async def test_garbage_in_redis_fails_explicitly_and_logs(
        redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sigma_redis")
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url) as h:
            # A foreign key of the wrong type under the meta name.
            topic = fresh_topic("foreign")
            redis.command("SET", f"sigma:{{{topic}}}:m", "not ours")
            result = await h.call(Append(request_id=h.rid(), topic=topic, envelope=b"x",
                                         wall_time=1.0))
            assert isinstance(result, EngineFailed)
            assert "not a hash" in result.reason
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                          after=StreamPosition(5, 1), max_count=5,
                                          max_bytes=100))
            assert isinstance(read, RangeRead)
            assert read.gap == ReplayGap(2, 0)
            assert redis.command("GET", f"sigma:{{{topic}}}:m") == "not ours"  # untouched
            heads = await h.call(ReadHeads(request_id=h.rid(), topics=(fresh_topic("ok"), topic)))
            assert isinstance(heads, EngineFailed)
            assert "not a hash" in heads.reason
            # A hash that is not a sigma meta hash.
            topic2 = fresh_topic("foreignhash")
            redis.command("HSET", f"sigma:{{{topic2}}}:m", "owner", "someone else")
            result = await h.call(Append(request_id=h.rid(), topic=topic2, envelope=b"x",
                                         wall_time=1.0))
            assert isinstance(result, EngineFailed)
            assert "not a sigma topic meta hash" in result.reason
            # A truncated stream entry (its envelope field gone): explicit gap from there.
            topic3 = fresh_topic("truncated")
            pos = None
            for i in range(3):
                pos = await append(h, topic3, b"%d" % i)
            assert pos is not None
            redis.command("XDEL", f"sigma:{{{topic3}}}:s", "2-0")
            redis.command("XADD", f"sigma:{{{topic3}}}:s", "NOMKSTREAM", "4-0", "t", "1")
            read = await h.call(ReadRange(request_id=h.rid(), topic=topic3,
                                          after=StreamPosition(pos.epoch, 1), max_count=5,
                                          max_bytes=1000))
            assert isinstance(read, RangeRead)
            assert read.gap is not None
            assert read.gap.lost_from == 2
            # A session key of the wrong type.
            sid = fresh_topic("sid")
            redis.command("LPUSH", f"sigma:session:{{{sid}}}", "junk")
            loaded = await h.call(LoadSession(request_id=h.rid(), session_id=sid))
            assert isinstance(loaded, EngineFailed)
            assert "corrupt" in loaded.reason
            saved = await h.call(SaveSession(request_id=h.rid(), session_id=sid, record=b"r",
                                             version=1, ttl=5))
            assert isinstance(saved, EngineFailed)
            # A malformed pub/sub message on a received channel is dropped with a log line.
            topic4 = fresh_topic("junkpub")
            await h.call(Receive(request_id=h.rid(), topic=topic4))
            redis.command("PUBLISH", f"sigma:{{{topic4}}}:c", "garbage")
            await append(h, topic4, b"fine")
            await h.wait_for(lambda: len(h.messages) >= 1)
            assert [e.envelope for _, e in h.messages] == [b"fine"]
            assert h.engine.data_errors >= 4
    text = caplog.text
    assert "not a hash" in text
    assert "malformed message" in text


def test_parse_message_refuses_garbage() -> None:
    assert parse_message(b"5 7 1500 0 env") == HistoryEntry(5, 7, 1.5, b"env", None)
    entry = parse_message(b'5 7 1500 8 {"x":[]}env')
    assert entry.route == Route()
    assert entry.envelope == b"env"
    for bad in (b"", b"x y z w v", b"0 1 1 0 e", b"1 0 1 0 e", b"1 1 1 99 e",
                b"1 1 1 3 abcenv"):
        with pytest.raises(ValueError, match=r"."):
            parse_message(bad)


# coredis leaves the anyio memory streams of a connection it lost unclosed (ResourceWarning when
# they are collected): collected here, inside the tests that break connections, so the warning
# is not charged to a later test.
_LEAKY = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@_LEAKY
async def test_redis_down_fails_fast_reports_not_ready_and_recovers(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sigma_redis")
    with tempfile.TemporaryDirectory() as tmp, anyio.fail_after(30):
        server = RedisServer(Path(tmp)).start()
        try:
            async with harness(server.url) as h:
                topic = fresh_topic("outage")
                await h.call(Receive(request_id=h.rid(), topic=topic))
                first = await append(h, topic, b"before")
                server.kill()
                await h.wait_for(lambda: not h.engine.is_ready(), 5)
                assert h.statuses[-1][0] is False
                result = await h.call(Append(request_id=h.rid(), topic=topic,
                                             envelope=b"during", wall_time=1.0))
                assert isinstance(result, EngineFailed)
                assert "unavailable" in result.reason or "timeout" in result.reason
                server.start()
                await h.wait_for(h.engine.is_ready, 10)
                assert h.statuses[-1] == (True, "")
                # No persistence: the topic restarts with a new epoch (explicitly lost).
                after = await append(h, topic, b"after")
                assert after.epoch != first.epoch
                assert after.offset == 1
                # The pub/sub connection came back and resubscribed on its own.
                await h.wait_for(lambda: any(e.envelope == b"after" for _, e in h.messages),
                                 10)
        finally:
            server.stop()
            gc.collect()
    assert "cluster engine unavailable" in caplog.text
    assert "cluster engine reachable" in caplog.text


@_LEAKY
async def test_slow_redis_times_out_without_stalling_the_loop() -> None:
    with tempfile.TemporaryDirectory() as tmp, anyio.fail_after(30):
        server = RedisServer(Path(tmp)).start()
        try:
            async with harness(server.url) as h:
                topic = fresh_topic("slow")
                await append(h, topic, b"1")
                server.pause()  # SIGSTOP: Redis accepts bytes but never answers
                ticks = 0

                async def ticker() -> None:
                    nonlocal ticks
                    while True:
                        await anyio.sleep(0.01)
                        ticks += 1
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ticker)
                    result = await h.call(Append(request_id=h.rid(), topic=topic,
                                                 envelope=b"2", wall_time=1.0), timeout=5)
                    tg.cancel_scope.cancel()
                assert isinstance(result, EngineFailed)
                assert "timeout" in result.reason
                assert ticks >= 20  # the loop kept running while Redis hung
                assert not h.engine.is_ready()
                server.resume()
                await h.wait_for(h.engine.is_ready, 10)
                # Same server, same replication id: the epoch goes on.
                third = await append(h, topic, b"3")
                assert third.offset >= 2
        finally:
            server.stop()
            gc.collect()


async def test_queue_bound_fails_excess_requests_at_once(redis: RedisServer) -> None:
    with anyio.fail_after(DEADLINE):
        async with harness(redis.url, max_queued=2) as h:
            topic = fresh_topic("bound")
            requests = [Append(request_id=h.rid(), topic=topic, envelope=b"x", wall_time=1.0)
                        for _ in range(5)]
            h.engine.submit(requests)
            await h.wait_for(lambda: all(r.request_id in h.results for r in requests))
            outcomes = [h.results[r.request_id] for r in requests]
            failed = [o for o in outcomes if isinstance(o, EngineFailed)]
            assert len(failed) == 3
            assert all("queue full" in f.reason for f in failed)
            assert sum(isinstance(o, Appended) for o in outcomes) == 2


def _replica_caught_up(primary: RedisServer, replica: RedisServer) -> bool:
    info = replica.command("INFO", "replication")
    if "master_link_status:up" not in info:
        return False
    offset = {line.split(":")[0]: line.split(":")[1]
              for line in info.splitlines() if ":" in line}.get("slave_repl_offset")
    primary_info = primary.command("INFO", "replication")
    wanted = {line.split(":")[0]: line.split(":")[1]
              for line in primary_info.splitlines() if ":" in line}["master_repl_offset"]
    return offset == wanted


@_LEAKY
@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced"])
async def test_failover_that_lost_acked_writes_starts_a_new_epoch(fenced: bool) -> None:
    """A real primary and replica: writes acknowledged on the primary, the primary killed
    before the replica has them, the replica promoted with REPLICAOF NO ONE and the engine
    moved to it. Fenced (the default), every topic the promotion may have cut gets a new epoch:
    a client holding offset 5 learns it lost its history, and no offset is handed out twice.
    Unfenced (the anchors' behaviour, kept as the contrast), offset 4 is reused for another
    message."""
    with tempfile.TemporaryDirectory() as tmp_p, tempfile.TemporaryDirectory() as tmp_r, \
            anyio.fail_after(60):
        primary = RedisServer(Path(tmp_p)).start()
        replica = RedisServer(Path(tmp_r), replica_of=primary.port).start()
        try:
            topic = fresh_topic("failover")
            # The replica's first full sync draws the primary a new master_replid (Redis does
            # so when it creates its replication backlog): wait for it before the first write,
            # or that write's epoch is fenced off by the sync itself.
            with anyio.fail_after(10):
                while not _replica_caught_up(primary, replica):
                    await anyio.sleep(0.05)
            async with harness(primary.url, fence_replication_id=fenced) as h:
                for i in range(1, 4):
                    pos = await append(h, topic, b"replicated %d" % i)
                with anyio.fail_after(10):
                    while not _replica_caught_up(primary, replica):
                        await anyio.sleep(0.05)
                # The replication link breaks (the replica is pointed at a port nobody serves:
                # SIGSTOP would not do, the kernel buffers the stream for it meanwhile).
                replica.command("REPLICAOF", "127.0.0.1", str(free_port()))
                acked = [await append(h, topic, b"acked, then lost %d" % i) for i in (4, 5)]
                assert [p.offset for p in acked] == [4, 5]
                epoch = pos.epoch
                primary.kill()
            assert replica.command("REPLICAOF", "NO", "ONE") == "OK"
            async with harness(replica.url, fence_replication_id=fenced) as h:
                # A client that saw offset 5 resumes on a node of the promoted replica.
                read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                              after=StreamPosition(epoch, 5), max_count=10,
                                              max_bytes=1 << 20))
                assert isinstance(read, RangeRead)
                new = await append(h, topic, b"written after the failover")
                if fenced:
                    assert read.gap == ReplayGap(6, 0)  # explicit: the epoch is gone
                    assert new.epoch != epoch
                    assert new.offset == 1
                    old = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                                 after=StreamPosition(epoch, 3), max_count=10,
                                                 max_bytes=1 << 20))
                    assert isinstance(old, RangeRead)
                    assert old.gap == ReplayGap(4, 0)
                else:
                    # What fencing prevents: the same epoch now ends at 3 (the client's 4 and 5
                    # are gone without a word) and offset 4 names another message.
                    assert read.head == StreamPosition(epoch, 3)
                    assert new == StreamPosition(epoch, 4)
        finally:
            replica.stop()
            primary.stop()
            gc.collect()


async def test_subscriber_reassembles_split_messages_and_pings_when_idle() -> None:
    # The pub/sub connection against a scripted server: a message cut into three writes, two
    # messages in one write — each delivered whole, once, in order (on asyncio from the event
    # loop's read callback, on trio from a reading task: both paths of Subscriber.serve).
    # Then silence: a PING after idle_timeout / 2; the server answers it once, then not
    # again — the subscriber gives up with a TimeoutError after the second ping goes
    # unanswered, rather than waiting forever.
    from sigma_redis._pubsub import Subscriber
    from sigma_redis._url import Endpoint

    def message(data: bytes) -> bytes:
        return b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n" % (len(data), data)

    pings: list[float] = []
    received: list[bytes] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def server(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            assert b"SUBSCRIBE" in await stream.receive()
            await stream.send(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
            first = message(b"one" * 20)
            for part in (first[:5], first[5:40], first[40:]):
                await stream.send(part)
                await anyio.sleep(0.02)
            await stream.send(message(b"two") + message(b"three"))
            while True:
                data = await stream.receive()
                if b"PING" in data:
                    pings.append(time.monotonic())
                    if len(pings) == 1:
                        await stream.send(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")

    subscriber = Subscriber(Endpoint("127.0.0.1", port),
                            lambda channel, data: received.append(data),
                            connect_timeout=2.0, idle_timeout=0.4)
    with anyio.fail_after(10):
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server)
            await subscriber.connect()
            started = time.monotonic()


            async def subscribe_and_wait() -> None:
                async with anyio.create_task_group() as inner:
                    inner.start_soon(subscriber.serve)
                    await subscriber.subscribe(b"ch")
                    await anyio.sleep(5)
            try:
                with pytest.raises(BaseExceptionGroup) as caught:
                    await subscribe_and_wait()
            finally:
                await subscriber.aclose()
            tg.cancel_scope.cancel()
    assert received == [b"one" * 20, b"two", b"three"]
    failure = caught.value.exceptions[0]
    assert isinstance(failure, TimeoutError)
    assert "silent for 0.4 s" in str(failure)
    assert len(pings) == 2
    assert 0.15 < pings[0] - started < 1.0
    assert time.monotonic() - started < 2.5


async def test_idle_engine_writes_a_request_from_submit_in_order_and_survives_a_dead_socket(
        redis: RedisServer) -> None:
    # With nothing in flight, submit() writes the pipeline itself (no event-loop turn before
    # the append leaves); what arrives meanwhile waits for the replies and goes next, in
    # order. A connection that died under the idle engine: the requests stay queued, the
    # batcher opens a new connection, nothing is lost or sent twice.
    async with harness(redis.url) as h:
        topic = fresh_topic("sendnow")
        await append(h, topic, b"0")
        first = Append(request_id=h.rid(), topic=topic, envelope=b"1", wall_time=time.time())
        second = Append(request_id=h.rid(), topic=topic, envelope=b"2", wall_time=time.time())
        h.engine.submit([first])
        assert h.engine._sent is not None  # written already, before any await
        assert not h.engine._queue
        h.engine.submit([second])
        assert list(h.engine._queue) == [second]  # waits for the first pipeline's replies
        await h.wait_for(lambda: second.request_id in h.results)
        offsets = [h.results.pop(r.request_id) for r in (first, second)]
        assert [r.position.offset for r in offsets if isinstance(r, Appended)] == [2, 3]
        wire = h.engine._wire
        assert wire is not None
        assert wire._sock is not None
        wire._sock.close()  # the socket dies while the engine is idle
        third = await h.call(Append(request_id=h.rid(), topic=topic, envelope=b"3",
                                    wall_time=time.time()))
        assert isinstance(third, Appended)
        assert third.position.offset == 4
        read = await h.call(ReadRange(request_id=h.rid(), topic=topic,
                                      after=StreamPosition(third.position.epoch, 0),
                                      max_count=0, max_bytes=0))
        assert isinstance(read, RangeRead)
        assert [e.envelope for e in read.entries] == [b"0", b"1", b"2", b"3"]
