"""The Redis engine on a real Redis Cluster (three primaries, one replica each, started once
for the module on free ports) and what a wrong URL does. The engine contract suite runs on the
cluster too (tests/test_redis_contract.py, parameter ``cluster``).

Here: the URL forms and their errors; the hash slot against coredis' and Redis' own; topics on
all three shards in one HEADS request (Cluster refuses a script across slots: grouped by slot);
sharded pub/sub delivered per shard; a replica taking its shard over (``CLUSTER FAILOVER
TAKEOVER``) starts a new epoch for that shard's topics and delivery follows the slot; two node
processes (asyncio and trio) on the cluster with a node SIGKILLed and its client resuming on
the other; and a URL naming the wrong kind of deployment: a clear reason, never ready, requests
failing at once, no hang."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack

import anyio
import pytest
from adapters_support import Client, make_client
from redis_support import (
    RedisClusterServers,
    RedisServer,
    running_redis,
    running_redis_cluster,
)
from test_redis_engine import Harness, harness

from bench.cluster_support import Node, round_robin_proxy, start_node
from sigma_core.api import Message
from sigma_core.engine import (
    Append,
    Appended,
    Done,
    EngineFailed,
    Heads,
    RangeRead,
    ReadHeads,
    ReadRange,
    Receive,
    ReplayGap,
)
from sigma_core.messages import StreamPosition
from sigma_redis import DeploymentMismatch, RedisEngine, RedisEngineConfig
from sigma_redis._cluster import SlotMap, hash_slot
from sigma_redis._pubsub import Redirected, Subscriber, parse_url
from sigma_redis._url import Endpoint, parse_target

# coredis leaves anyio memory streams unclosed when a connection ends with its server (the
# killed primary): the collector reports them, as in tests/test_cluster_e2e.py. The module's
# last teardown collects them here, under this filter, not in another module's test.
pytestmark = [pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]
DEADLINE = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", autouse=True)
def _collect_coredis_leftovers() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisClusterServers]:
    with running_redis_cluster(masters=3, replicas=1) as servers:
        yield servers


def shard_topics(cluster: RedisClusterServers, prefix: str) -> dict[int, str]:
    """One topic per primary (by port), named ``<prefix>-<n>``."""
    engine = RedisEngine(RedisEngineConfig(url=cluster.url))
    found: dict[int, str] = {}
    for n in itertools.count():
        name = f"{prefix}-{n}"
        slot = hash_slot(engine.topic_key(name, "m").encode())
        port = cluster.primary_for_slot(slot).port
        found.setdefault(port, name)
        if len(found) == cluster.masters:
            return found
    raise AssertionError("unreachable")


async def append(h: Harness, topic: str, data: bytes) -> StreamPosition:
    result = await h.call(Append(request_id=h.rid(), topic=topic, envelope=data,
                                 wall_time=time.time()))
    assert isinstance(result, Appended), result
    return result.position


# ---------------------------------------------------------------------- URLs, slots


def test_url_forms_name_the_deployment() -> None:
    one = parse_target("redis://:pw@db.example:6380/2")
    assert (one.kind, str(one.endpoints[0]), one.db, one.password) == \
        ("standalone", "db.example:6380", 2, "pw")
    cl = parse_target("rediss+cluster://u:p@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert (cl.kind, cl.tls, cl.username) == ("cluster", True, "u")
    assert [str(e) for e in cl.endpoints] == ["10.0.0.1:7000", "10.0.0.2:6379", "[::1]:7002"]
    se = parse_target("redis+sentinel://s1:26380,s2/mymaster/3")
    assert (se.kind, se.service, se.db) == ("sentinel", "mymaster", 3)
    assert [str(e) for e in se.endpoints] == ["s1:26380", "s2:26379"]
    assert parse_target("unix:///run/redis.sock?db=1").db == 1
    # Credentials as coredis reads them; the sentinels get none (they are the servers').
    assert (parse_target("redis://u@h").username, parse_target("redis://u@h").password) == \
        ("u", None)
    auth = parse_target("redis+sentinel://u:p%40x@s1/svc")
    assert (auth.username, auth.password) == ("u", "p@x")
    assert (auth.endpoints[0].username, auth.endpoints[0].password) == (None, None)
    assert auth.server("10.0.0.7", 6379).password == "p@x"
    # One server's address, for code that connects to exactly one (refused for the others).
    assert parse_url("rediss://u:p@h:1/0") == ("h", 1, "u", "p", True)
    with pytest.raises(ValueError, match="cluster URL: no single server"):
        parse_url("redis+cluster://h:1")


@pytest.mark.parametrize(("url", "says"), [
    ("http://h:1", "unknown scheme"),
    ("redis://a:1,b:2", "a list is for redis+cluster://"),
    ("redis+cluster://h:1/3", "only database 0"),
    ("redis+cluster://h:99999", "bad port"),
    ("redis+cluster://h:1,,h:2", "empty host"),
    ("redis+sentinel://h:26379", "no service name"),
    ("redis+sentinel://h:26379/bad{name}", "bad service name"),
    ("redis+sentinel://h/svc/x", "is not a number"),
    ("redis://h/0?timeout=1", "query parameters"),
])
def test_bad_urls_are_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("+", r"\+")):
        RedisEngineConfig(url=url)


def test_hash_slot_is_coredis_and_redis_cluster_keyslot(cluster: RedisClusterServers) -> None:
    from coredis._utils import hash_slot as coredis_slot  # the reference (private API)

    keys = [b"plain", b"sigma:{room}:m", b"{}x", b"a{b}{c}", b"{", b"x}{y", "é{ü}".encode()]
    for key in keys:
        assert hash_slot(key) == coredis_slot(key)
    server = cluster.servers[0]
    for key in keys[:6]:
        assert hash_slot(key) == int(server.command("CLUSTER", "KEYSLOT", key.decode()))


def test_slot_map_from_cluster_slots() -> None:
    template = parse_target("redis+cluster://:pw@10.0.0.9:7000").endpoints[0]
    reply = [[b"5461", b"16383", [b"10.0.0.2", b"7001", b"id2"], [b"10.0.0.3", b"7002", b"id3"]],
             [b"0", b"5460", [b"", b"7000", b"id1"]]]
    slots = SlotMap.from_reply(reply, template)
    assert str(slots.owner(0)) == "10.0.0.9:7000"  # empty host: where the reply came from
    assert slots.owner(0).password == "pw"  # type: ignore[union-attr]
    assert str(slots.owner(5461)) == "10.0.0.2:7001"
    assert str(slots.owner(16383)) == "10.0.0.2:7001"
    assert [str(e) for e in slots.nodes] == ["10.0.0.9:7000", "10.0.0.2:7001"]
    assert SlotMap.from_reply([[b"0", b"10", [b"h", b"1"]]], template).owner(11) is None
    for garbage in ([], b"ERR", [[b"x", b"1", [b"h", b"1"]]], [[b"0", b"1"]]):
        with pytest.raises(ValueError, match="CLUSTER SLOTS"):
            SlotMap.from_reply(garbage, template)


# ---------------------------------------------------------------------- the engine on Cluster


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_heads_and_delivery_span_every_shard(anyio_backend: str,
                                                  cluster: RedisClusterServers) -> None:
    topics = shard_topics(cluster, f"span-{anyio_backend}")
    names = list(topics.values())
    async with harness(ready=False, url=cluster.url) as h:
        await h.ready()
        for name in names:
            assert isinstance(await h.call(Receive(request_id=h.rid(), topic=name)), Done)
        positions = {name: [await append(h, name, b"%s-%d" % (name.encode(), i))
                            for i in range(3)] for name in names}
        await h.wait_for(lambda: len(h.messages) >= 9)
        for name in names:
            got = [(e.position, e.envelope) for t, e in h.messages if t == name]
            assert got == [(p, b"%s-%d" % (name.encode(), i))
                           for i, p in enumerate(positions[name])]
        # One HEADS request over the three shards (and 300 more topics: many slots, more
        # than one chunk per shard), in the order asked.
        more = [f"none-{i}" for i in range(300)]
        heads = await h.call(ReadHeads(request_id=h.rid(), topics=(*names, *more),
                                       create=False))
        assert isinstance(heads, Heads)
        assert [t for t, _ in heads.heads] == [*names, *more]
        assert [p for _, p in heads.heads[:3]] == [positions[n][-1] for n in names]
        assert all(p == StreamPosition(0, 0) for _, p in heads.heads[3:])
        # One batch across the three shards (coredis splits the pipeline per shard): each
        # topic's appends take offsets in submission order.
        batch = [Append(request_id=h.rid(), topic=names[i % 3], envelope=b"b%d" % i,
                        wall_time=time.time()) for i in range(60)]
        batches = h.engine.batches
        h.engine.submit(batch)
        await h.wait_for(lambda: all(r.request_id in h.results for r in batch))
        assert h.engine.batches - batches <= 2  # one pipeline (or two: the first one sent)
        for k, name in enumerate(names):
            results = [h.results.pop(r.request_id) for r in batch if r.topic == name]
            assert [(r.position.offset if isinstance(r, Appended) else r)
                    for r in results] == list(range(4, 24)), name
            read = await h.call(ReadRange(request_id=h.rid(), topic=name,
                                          after=positions[name][-1], max_count=0,
                                          max_bytes=0))
            assert isinstance(read, RangeRead)
            assert [e.envelope for e in read.entries] == [b"b%d" % i
                                                          for i in range(k, 60, 3)]
        assert h.engine.is_ready()


async def test_sharded_subscriber_on_the_wrong_node_is_redirected(
        cluster: RedisClusterServers) -> None:
    # The receiver's connection to a node that does not own a channel's slot (a stale slot
    # map): Redis answers MOVED, the subscriber raises Redirected (the receiver then asks for
    # the slot map again and resubscribes, keeping the queued subscriptions).
    channel = b"sigma:{moved-probe}:c"
    owner = cluster.primary_for_slot(hash_slot(channel)).port
    other = next(s.port for s in cluster.servers
                 if s.port != owner and s.process and s.process.poll() is None)
    subscriber = Subscriber(Endpoint("127.0.0.1", other), lambda c, d: None,
                            connect_timeout=2.0, idle_timeout=4.0, sharded=True)

    async def subscribe() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(subscriber.serve)
            await subscriber.subscribe(channel)

    await subscriber.connect()
    try:
        with anyio.fail_after(5), pytest.raises(BaseExceptionGroup) as caught:
            await subscribe()
        moved = caught.value.exceptions[0]
        assert isinstance(moved, Redirected)
        assert f"MOVED {hash_slot(channel)} " in str(moved)
    finally:
        await subscriber.aclose()


async def test_scripts_are_loaded_again_on_every_shard_after_noscript(
        cluster: RedisClusterServers) -> None:
    topics = list(shard_topics(cluster, "noscript").values())
    async with harness(ready=False, url=cluster.url) as h:
        await h.ready()
        first = [await append(h, name, b"1") for name in topics]
        for server in cluster.servers:
            assert server.command("SCRIPT", "FLUSH") == "OK"
        # One batch over the three shards: NOSCRIPT, scripts loaded on every primary, the
        # batch sent again — nothing fails, nothing is appended twice.
        batch = [Append(request_id=h.rid(), topic=name, envelope=b"2", wall_time=time.time())
                 for name in topics]
        h.engine.submit(batch)
        await h.wait_for(lambda: all(r.request_id in h.results for r in batch))
        assert [h.results.pop(r.request_id) for r in batch] == [
            Appended(request_id=r.request_id, topic=r.topic,
                     position=StreamPosition(p.epoch, 2)) for r, p in zip(batch, first,
                                                                           strict=True)]
        assert h.engine.is_ready()


async def test_shard_failover_starts_a_new_epoch_and_delivery_follows(
        cluster: RedisClusterServers) -> None:
    # Runs last among the engine tests of this module: it moves one shard to its replica.
    topics = shard_topics(cluster, "failover")
    async with harness(ready=False, url=cluster.url) as h:
        await h.ready()
        for name in topics.values():
            await h.call(Receive(request_id=h.rid(), topic=name))
        before = {name: await append(h, name, b"before") for name in topics.values()}
        await h.wait_for(lambda: len(h.messages) >= 3)
        old_port, moved = next(iter(topics.items()))
        old_primary = next(s for s in cluster.servers if s.port == old_port)
        replica = cluster.replica_of(old_primary)
        assert replica.command("CLUSTER", "FAILOVER", "TAKEOVER") == "OK"
        with anyio.fail_after(DEADLINE):
            while cluster.primary_for_slot(hash_slot(
                    h.engine.topic_key(moved, "m").encode())).port != replica.port:
                await anyio.sleep(0.05)
            # Appends work again on the moved shard (MOVED followed, scripts there).
            while True:
                result = await h.call(Append(request_id=h.rid(), topic=moved,
                                             envelope=b"after", wall_time=time.time()))
                if isinstance(result, Appended):
                    break
                assert isinstance(result, EngineFailed)
                await anyio.sleep(0.1)
        after = result.position
        # The promoted replica has a new replication id: the shard's topic starts a new
        # epoch (offsets from 1), a client resuming from the old one gets an explicit loss.
        assert after.epoch != before[moved].epoch
        assert after.offset == 1
        read = await h.call(ReadRange(request_id=h.rid(), topic=moved, after=before[moved],
                                     max_count=0, max_bytes=0))
        assert isinstance(read, RangeRead)
        assert read.gap == ReplayGap(2, 0)
        assert read.head == after
        # Topics of the other shards keep their epoch.
        for name in topics.values():
            if name != moved:
                assert (await append(h, name, b"after")) == StreamPosition(
                    before[name].epoch, 2)
        # Delivery follows the slot to the new primary: Redis ended the subscription there
        # (sunsubscribe), the receiver asked for the slot map again, resubscribed at the new
        # owner and told the hub to check every head (what was published meanwhile is read
        # from history, not lost).
        with anyio.fail_after(DEADLINE):
            await h.wait_for(lambda: (True, "message delivery reconnected") in h.statuses,
                             DEADLINE)
            for k in itertools.count():
                probe = await append(h, moved, b"probe-%d" % k)
                with anyio.move_on_after(0.5):
                    await h.wait_for(lambda p=probe: any(
                        t == moved and e.position == p for t, e in h.messages), 1.0)
                    break
        assert probe.epoch == after.epoch


async def test_shard_primary_killed_replica_takes_over_engine_recovers(
        cluster: RedisClusterServers) -> None:
    # After the takeover above: a shard's primary SIGKILLed, its replica elected after
    # cluster-node-timeout (1 s here). The engine rebuilds its client from the new slot map
    # (coredis keeps the dead node otherwise), loads the scripts on the new primary, and the
    # shard's topics start new epochs; the other shards' topics keep theirs.
    topics = shard_topics(cluster, "killed")
    async with harness(ready=False, url=cluster.url) as h:
        await h.ready()
        before = {name: await append(h, name, b"before") for name in topics.values()}
        port, victim_topic = next(iter(topics.items()))
        victim = next(s for s in cluster.servers if s.port == port)
        victim.kill()
        killed = time.monotonic()
        with anyio.fail_after(DEADLINE):
            while not isinstance(result := await h.call(Append(
                    request_id=h.rid(), topic=victim_topic, envelope=b"after",
                    wall_time=time.time())), Appended):
                assert isinstance(result, EngineFailed)
                await anyio.sleep(0.1)
        print(f"appends on the killed shard failed for {time.monotonic() - killed:.2f} s")
        assert result.position.epoch != before[victim_topic].epoch
        assert result.position.offset == 1
        for name in topics.values():
            if name != victim_topic:
                assert (await append(h, name, b"after")) == StreamPosition(
                    before[name].epoch, 2)


# ---------------------------------------------------------------------- wrong deployments


@pytest.fixture(scope="module")
def single() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def refused(url: str, says: str) -> None:
    started = time.monotonic()
    async with harness(ready=False, url=url) as h:
        with anyio.fail_after(10):
            while says not in h.engine.status_reason:
                await anyio.sleep(0.05)
        assert not h.engine.is_ready()
        # Requests fail at once with the reason, they do not wait for Redis.
        result = await h.call(Append(request_id=h.rid(), topic="t", envelope=b"x",
                                     wall_time=time.time()), timeout=3)
        assert isinstance(result, EngineFailed)
        assert says in result.reason
    assert time.monotonic() - started < 10


async def test_cluster_url_on_a_single_server_is_refused(single: RedisServer) -> None:
    await refused(f"redis+cluster://127.0.0.1:{single.port}",
                  f"127.0.0.1:{single.port} is a single server (cluster support disabled): "
                  f"use redis://127.0.0.1:{single.port}")
    assert issubclass(DeploymentMismatch, ConnectionError)


async def test_single_server_url_on_a_cluster_node_is_refused(
        cluster: RedisClusterServers) -> None:
    port = next(s.port for s in cluster.servers if s.process and s.process.poll() is None)
    await refused(f"redis://127.0.0.1:{port}/0",
                  f"is a Redis Cluster node: use redis+cluster://127.0.0.1:{port}")


async def test_sentinel_url_on_a_redis_server_is_refused(single: RedisServer) -> None:
    await refused(f"redis+sentinel://127.0.0.1:{single.port}/svc",
                  f"127.0.0.1:{single.port} is not a Sentinel")


# ---------------------------------------------------------------------- two nodes, one dies


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def collect(self, client: Client) -> None:
        async for message in client:
            self.messages.append(message)

    def on(self, topic: str) -> list[bytes]:
        return [m.data for m in self.messages if m.topic == topic]

    async def wait(self, topic: str, data: bytes) -> None:
        with anyio.fail_after(DEADLINE):
            while data not in self.on(topic):
                await anyio.sleep(0.02)


async def test_two_nodes_on_the_cluster_a_node_dies_its_client_resumes(
        cluster: RedisClusterServers) -> None:
    topics = list(shard_topics(cluster, "e2e").values())
    with anyio.fail_after(60):
        a = await anyio.to_thread.run_sync(start_node, "asyncio", cluster.url, "a")
        b = await anyio.to_thread.run_sync(start_node, "trio", cluster.url, "b")
        nodes: list[Node] = [a, b]
        try:
            async with AsyncExitStack() as stack:
                proxy = await stack.enter_async_context(round_robin_proxy(nodes))
                on_a = make_client("asyncio", proxy.url)  # the proxy's first pick: node a
                on_b = make_client("asyncio", f"ws://127.0.0.1:{b.port}/")
                inbox_a, inbox_b = Inbox(), Inbox()
                for client in (on_a, on_b):
                    await stack.enter_async_context(client)
                    for topic in topics:
                        client.subscribe(topic)
                tg = await stack.enter_async_context(anyio.create_task_group())
                tg.start_soon(inbox_a.collect, on_a)
                tg.start_soon(inbox_b.collect, on_b)
                assert proxy.connections == {"a": 1, "b": 0}
                # Warm up: each node receives each topic before counting.
                for topic in topics:
                    for k in itertools.count():
                        on_a.send(b"warm-%d" % k, topic)
                        with anyio.move_on_after(0.5):
                            await inbox_b.wait(topic, b"warm-%d" % k)
                            await inbox_a.wait(topic, b"warm-%d" % k)
                            break
                # Published on node a, received on node b: every shard.
                for topic in topics:
                    for i in range(3):
                        on_a.send(b"a%d" % i, topic)
                for topic in topics:
                    await inbox_b.wait(topic, b"a2")
                session = on_a.get_session()
                assert session is not None
                a.kill()
                # Node b publishes while a's client is away; it resumes on b (the proxy's
                # next live node) and gets everything once, in order.
                for topic in topics:
                    for i in range(3):
                        on_b.send(b"b%d" % i, topic)
                for topic in topics:
                    await inbox_a.wait(topic, b"b2")
                after = on_a.get_session()
                assert after is not None
                assert after.id == session.id  # resumed, not a fresh session
                assert proxy.connections["b"] >= 1
                for inbox in (inbox_a, inbox_b):
                    for topic in topics:
                        got = [d for d in inbox.on(topic) if not d.startswith(b"warm")]
                        positions = [(m.position.epoch, m.position.offset)
                                     for m in inbox.messages if m.topic == topic]
                        # Every message, in order, each position once. What a's client had
                        # sent to the dead node without its ack yet it sends again through
                        # b (client->server is at least once across a node crash,
                        # docs/cluster.md): such a message shows up once more, later, at a
                        # new position — never a b-side one, never twice more.
                        assert list(dict.fromkeys(got)) == [b"a0", b"a1", b"a2", b"b0", b"b1",
                                                            b"b2"], (topic, got)
                        again = got[6:]
                        assert set(again) <= {b"a0", b"a1", b"a2"}, (topic, got)
                        assert len(again) == len(set(again)), (topic, got)
                        assert positions == sorted(set(positions))
                # Both clients see the same messages at the same positions.
                for topic in topics:
                    assert [(m.data, m.position) for m in inbox_a.messages
                            if m.topic == topic and m.data in (b"b0", b"b1", b"b2")] == \
                        [(m.data, m.position) for m in inbox_b.messages
                         if m.topic == topic and m.data in (b"b0", b"b1", b"b2")]
                tg.cancel_scope.cancel()
        finally:
            for n in nodes:
                n.stop()


def test_chat_refuses_a_malformed_redis_url_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.chat.server import parse_config

    config = parse_config(["--redis-url", "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"], env={})
    assert config.redis_url == "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    with pytest.raises(SystemExit) as exit_info:
        parse_config([], env={"SIGMASOCKETS_REDIS_URL": "redis+sentinel://:pw@10.0.0.5:26379"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "SIGMASOCKETS_REDIS_URL: Redis URL 'redis+sentinel://***@10.0.0.5:26379': no " \
        "service name" in err
    assert "pw" not in err
