"""What a session keeps on a single node (issue 20, memory): sessions that join between two
broadcasts share one subscription dict, made a session's own at its first change, with the same
behaviour as one dict each; after traffic, what history released is counted and the heap it
leaves free is handed back (``Hub.heap_trim``) once a burst of releases is over."""

from __future__ import annotations

import gc
import sys
import types

from sigma_core.backplane import HistoryEntry, HistoryLimits, MemoryEngine
from sigma_core.client import ClientConfig, ReconnectPolicy, SubscribedEvent
from sigma_core.connection import ConnectionConfig
from sigma_core.engine import Route
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import HEAP_TRIM_AFTER, HEAP_TRIM_QUIET, HubConfig
from sigma_core.messages import StreamPosition
from sigma_core.testing import SimClient, Simulation

HB = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0)


def client(sim: Simulation) -> SimClient:
    c = sim.add_client(ClientConfig(url="ws://sim.invalid/", reconnect=ReconnectPolicy(
        max_attempts=None, initial_delay=0.1)))
    sim.run_until(lambda: c.connected)
    return c


def test_sessions_share_their_default_subscriptions_until_one_changes() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice, bob = client(sim), client(sim)
    sa = sim.hub._sessions[alice.session.session_id]
    sb = sim.hub._sessions[bob.session.session_id]
    assert sa.subscriptions is sb.subscriptions
    assert set(sa.subscriptions) == {"$all", "$inbox"}
    sim.hub.broadcast(b"moves the head", sim.now)
    carol = client(sim)
    sc = sim.hub._sessions[carol.session.session_id]
    assert sc.subscriptions is not sa.subscriptions  # joined at another $all head
    alice.subscribe("room")
    sim.run_until(lambda: bool(alice.of_type(SubscribedEvent)))
    assert sa.subscriptions is not sb.subscriptions
    assert set(sa.subscriptions) == {"$all", "$inbox", "room"}
    assert set(sb.subscriptions) == {"$all", "$inbox"}
    # Its own dict holds the inbox's real first position: the epoch the client was given.
    assert sa.subscriptions["$inbox"] == StreamPosition(
        alice.session.positions["$inbox"].epoch, 0)


def test_a_resume_without_an_inbox_position_replays_the_inbox_from_its_start() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice, bob = client(sim), client(sim)
    sim.cut(alice)
    for word in (b"one", b"two"):
        sim.hub.send_to(alice.session.session_id, word, sim.now)
    del alice.session.positions["$inbox"]  # a client that does not report it
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(0.5)
    assert alice.payloads("$inbox") == [b"one", b"two"]
    assert bob.payloads("$inbox") == []


def acking_client(sim: Simulation, every: int = 32) -> SimClient:
    c = sim.add_client(ClientConfig(url="ws://sim.invalid/", reconnect=ReconnectPolicy(
        max_attempts=None, initial_delay=0.1), inbox_ack_every=every, inbox_ack_delay=1.0))
    sim.run_until(lambda: c.connected)
    return c


def test_released_bytes_counts_every_way_history_lets_go() -> None:
    engine = MemoryEngine(SeededEntropy(1), HistoryLimits(max_count=2, max_age=10.0))

    def add(topic: str, now: float) -> None:
        engine.append(topic, lambda e, o: HistoryEntry(e, o, now, b"x" * 10, Route()))

    for _ in range(3):
        add("t", 0.0)
    assert engine.released_bytes == 10  # over max_count
    head = engine.head("t")
    assert engine.release_upto("t", StreamPosition(head.epoch, 2)) == 1
    assert engine.released_bytes == 20  # acknowledged
    add("t", 5.0)
    engine.trim(12.0)
    assert engine.released_bytes == 30  # aged out (the entry of time 0)
    add("u", 12.0)
    engine.drop("u")
    assert engine.released_bytes == 40  # dropped with its stream
    engine.trim(100.0)
    assert engine.released_bytes == 50
    assert not engine._holding
    add("t", 100.0)  # the holding list made anew still serves the age limit
    engine.trim(200.0)
    assert engine.released_bytes == 60
    assert engine.read_after("t", engine.head("t"), 200.0) == []


def test_the_heap_is_trimmed_once_a_burst_of_acknowledged_replies_is_over() -> None:
    sim = Simulation(HubConfig(connection=HB))
    trims: list[float] = []
    sim.hub.heap_trim = lambda: trims.append(sim.now)
    alice, bob = acking_client(sim), acking_client(sim)
    reply = bytes(32 * 1024)
    n = HEAP_TRIM_AFTER // len(reply) // 2 + 1  # each inbox half, both together past it
    for _ in range(n):
        sim.hub.send_to(alice.session.session_id, reply, sim.now)
        sim.hub.send_to(bob.session.session_id, reply, sim.now)
    sim.run(0.5)
    assert trims == []  # nothing acknowledged yet (every 32: n is below)
    assert sim.hub._engine.released_bytes == 0
    sim.run(1.0)  # the Acks (inbox_ack_delay 1 s), then HEAP_TRIM_QUIET without a release
    assert len(trims) == 1
    assert sim.hub._engine.released_bytes >= HEAP_TRIM_AFTER
    sim.run(30.0)
    assert len(trims) == 1  # nothing released since: no other walk of the heap
    # Nothing a client holds was lost: both got every reply once, and a resume replays none.
    sim.cut(alice)
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(2.0)
    assert len(alice.payloads("$inbox")) == n
    assert len(bob.payloads("$inbox")) == n
    assert alice.session.duplicates_dropped == 0


def test_no_heap_trim_below_the_threshold() -> None:
    sim = Simulation(HubConfig(connection=HB, trim_interval=1.0))
    trims: list[float] = []
    sim.hub.heap_trim = lambda: trims.append(sim.now)
    alice = acking_client(sim)
    for _ in range(3):
        sim.hub.send_to(alice.session.session_id, bytes(1024), sim.now)
    sim.run(20.0)
    assert 0 < sim.hub._engine.released_bytes < HEAP_TRIM_AFTER
    assert trims == []


def test_steady_releases_trim_at_the_latest_a_trim_interval_after_the_threshold() -> None:
    """Releases that never pause (a reply acknowledged every 50 ms): the trim does not wait
    for a pause forever, it runs trim_interval after the threshold was passed."""
    sim = Simulation(HubConfig(connection=HB, trim_interval=10.0))
    trims: list[float] = []
    sim.hub.heap_trim = lambda: trims.append(sim.now)
    alice = acking_client(sim, every=1)
    reply = bytes(16 * 1024)
    passed_at = None
    start = sim.now
    while sim.now < start + 12.0 + HEAP_TRIM_AFTER / len(reply) * 0.05:
        sim.hub.send_to(alice.session.session_id, reply, sim.now)
        sim.run(0.05)
        if passed_at is None and sim.hub._engine.released_bytes >= HEAP_TRIM_AFTER:
            passed_at = sim.now
    assert passed_at is not None
    assert trims
    assert passed_at + 10.0 - 0.1 <= trims[0] <= passed_at + 10.0 + 0.2
    assert trims[0] < sim.now - HEAP_TRIM_QUIET  # before the sends stopped



def test_the_heap_trim_takes_a_turn_of_its_own_when_output_waits() -> None:
    """The trim (~0.7 ms on a large heap) never runs while a reply waits for the turn's flush
    (docs/benchmarks.md, "Session 8: latency (a)"): it moves to the next turn."""
    sim = Simulation(HubConfig(connection=HB))
    waiting: list[int] = []
    sim.hub.heap_trim = lambda: waiting.append(len(sim.hub._dirty) + len(sim.hub._events))
    alice = acking_client(sim, every=1000)  # one Ack, 1 s after the first reply
    sid = alice.session.session_id
    reply = bytes(32 * 1024)
    for _ in range(HEAP_TRIM_AFTER // len(reply) + 1):
        sim.hub.send_to(sid, reply, sim.now)
    sim.run(1.05)  # delivered, acknowledged (inbox_ack_delay 1 s)
    # Released: a slice after the Ack's read, the last entry RELEASE_DEFER later; quiet not over.
    sim.run_until(lambda: not sim.hub._releasing)
    assert sim.hub._engine.released_bytes >= HEAP_TRIM_AFTER
    assert waiting == []
    due = sim.hub._last_release + HEAP_TRIM_QUIET
    assert sim.now < due
    sim.clock.set(due)
    sim.hub.send_to(sid, b"a reply of this turn", due)
    sim.hub.handle_timer(due)
    assert waiting == []  # the reply is written first
    sim._pump_node(sim.nodes[0])
    sim.hub.handle_timer(due)
    assert waiting == [0]
    sim.run(1.0)
    assert alice.payloads("$inbox")[-1] == b"a reply of this turn"
    assert waiting == [0]


def hub_bytes(root: object) -> int:
    """``sys.getsizeof`` over everything ``root`` reaches (types, modules and functions not
    followed): what the hub holds, without the allocator's rounding."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType
                                         | types.BuiltinFunctionType | types.MethodType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def test_an_acknowledged_echo_leaves_little_per_session() -> None:
    """What the hub keeps per session after one 1 KiB reply each, acknowledged: the inbox's
    stream (its epoch, last offset and key), not the reply, its frame, a buffer of the read or
    a container grown for the burst."""
    sim = Simulation(HubConfig(connection=HB))
    clients = [acking_client(sim) for _ in range(100)]
    sim.run(1.0)
    idle = hub_bytes(sim.hub)
    for c in clients:
        sim.hub.send_to(c.session.session_id, bytes(1024), sim.now)
    held = hub_bytes(sim.hub)
    sim.run(2.0)  # delivered, acknowledged (1 s), released
    assert all(len(c.payloads("$inbox")) == 1 for c in clients)
    kept = (hub_bytes(sim.hub) - idle) / len(clients)
    assert (held - idle) / len(clients) > 1024  # the replies, until acknowledged
    assert kept < 256, kept


def test_history_entries_without_a_route_leave_the_cyclic_gc_and_are_still_freed() -> None:
    """A message lives in history until its client acknowledges it (about a second at 1,000
    connections x 1 in flight): with the C helpers built, an entry without a route (a plain
    tuple of ints, a float, bytes) is off the cyclic GC's lists, so young collections do not
    examine and promote it and full collections do not traverse thousands of them; one with a
    route stays tracked. Either way it is read back unchanged and freed by reference counting
    when history lets it go. In a pure-Python install it stays tracked (only collections differ)."""
    speedups: types.ModuleType | None
    try:
        from sigma_core import _speedups as speedups
    except ImportError:
        speedups = None
    engine = MemoryEngine(SeededEntropy(5), HistoryLimits(max_count=0, max_bytes=0))
    payload = b"x" * 100

    def build(route: Route | None) -> object:
        return lambda epoch, offset: HistoryEntry(epoch, offset, 1.5, payload + bytes([offset]),
                                                  route)

    plain = engine.append("room", build(None))  # type: ignore[arg-type]
    routed = engine.append("room", build(Route(frozenset({"s1"}), None)))  # type: ignore[arg-type]
    assert gc.is_tracked(routed)
    assert gc.is_tracked(plain) is (speedups is None)
    got = engine.read_after("room", StreamPosition(plain.epoch, 0), 0.0)
    assert isinstance(got, list)
    assert [(e.offset, e.envelope, e.route) for e in got] == [
        (1, payload + b"\x01", None), (2, payload + b"\x02", Route(frozenset({"s1"}), None))]
    del got
    envelope = plain.envelope
    refs = sys.getrefcount(envelope)
    del plain
    engine.release_upto("room", StreamPosition(routed.epoch, 2))
    assert sys.getrefcount(envelope) == refs - 1  # the entry was freed, its envelope with it
    if speedups is not None:  # the helper itself: only tuples of untracked items
        inner = tuple.__new__(tuple, (3, b"t"))
        speedups.untrack_atomic(inner)
        assert speedups.untrack_atomic((1, 2.0, b"b", "s", None, inner)) is True
        assert speedups.untrack_atomic((1, [2])) is False
        assert speedups.untrack_atomic([1]) is False  # not a tuple: left as it is
        assert speedups.untrack_atomic(5) is True  # nothing to track


def test_the_two_step_append_keeps_the_same_history_as_append() -> None:
    """The hub builds its entries itself (``stream_for_append`` then ``commit_append``: no
    closure per message); ``append(topic, build)`` is the engine's interface. Fed the same
    messages, two engines hold the same positions, entries, trims and released bytes."""
    limits = HistoryLimits(max_count=5, max_bytes=2_000)
    one, two = MemoryEngine(SeededEntropy(9), limits), MemoryEngine(SeededEntropy(9), limits)
    appended: list[tuple[str, HistoryEntry]] = []
    two.on_append = lambda topic, entry: appended.append((topic, entry))
    for i in range(40):
        topic = ("room", "hall")[i % 2]
        payload = bytes([i]) * (i * 37 % 700)
        route = Route(frozenset({"s1"}), None) if i % 7 == 0 else None
        def build(epoch: int, offset: int, p: bytes = payload, r: Route | None = route,
                  w: float = float(i)) -> HistoryEntry:
            return HistoryEntry(epoch, offset, w, p, r)

        got = one.append(topic, build)
        stream = two.stream_for_append(topic)
        entry = HistoryEntry(stream.epoch, stream.last_offset + 1, float(i), payload, route)
        two.commit_append(topic, stream, entry)
        assert entry == got
        assert appended[-1] == (topic, entry)
        for t in ("room", "hall"):
            assert one.head(t) == two.head(t)
            start = StreamPosition(one.head(t).epoch, 0)
            assert one.read_after(t, start, 0.0) == two.read_after(t, start, 0.0)
        assert one.released_bytes == two.released_bytes
    assert one.released_bytes > 0  # the limits trimmed along the way


def test_new_tuple_builds_what_tuple_new_builds() -> None:
    """The hub builds each message's ``HistoryEntry`` and returned ``StreamPosition`` with
    ``backplane.new_tuple`` (C when compiled: no intermediate tuple). It is held to its
    reference, ``tuple.__new__(cls, items)``: same type, items, equality and hash, the
    NamedTuple's fields readable, the GC tracking of a tracked type, and the same TypeError for
    a class that is not a tuple."""
    from sigma_core import backplane

    impls = [backplane._new_tuple_py, backplane.new_tuple]
    try:
        from sigma_core import _speedups
    except ImportError:
        pass
    else:
        assert backplane.new_tuple is _speedups.new_tuple
    route = Route(frozenset({"s1"}), None)
    cases: list[tuple[type[tuple[object, ...]], tuple[object, ...]]] = [
        (HistoryEntry, (7, 2**40, 1.5, b"envelope", None)),
        (HistoryEntry, (2**64 - 1, 0, 0.0, b"", route)),
        (StreamPosition, (3, 4)),
        (tuple, (1, "a", [2])),
        (tuple, ()),
    ]
    for cls, items in cases:
        want: tuple[object, ...] = tuple.__new__(cls, items)
        for impl in impls:
            got: tuple[object, ...] = impl(cls, *items)
            assert type(got) is cls
            assert got == want
            assert all(a is b for a, b in zip(got, items, strict=True))
            if cls is not tuple:  # (an exact tuple of a list is not hashable)
                assert hash(got) == hash(want)
                assert gc.is_tracked(got) is gc.is_tracked(want) is True
    entry = backplane.new_tuple(HistoryEntry, 1, 2, 3.0, b"e", None)
    assert (entry.epoch, entry.offset, entry.time, entry.envelope, entry.route) == (
        1, 2, 3.0, b"e", None)
    for impl in impls:
        for bad in (list, int, object()):
            try:
                impl(bad, 1)  # type: ignore[arg-type]
            except TypeError:
                pass
            else:
                raise AssertionError(f"{impl} accepted {bad!r}")
