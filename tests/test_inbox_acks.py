"""Client acknowledgements of ``$inbox`` positions (protocol.md §7, "Inbox acknowledgements"):
the server lets go of the inbox messages a client holds, and of nothing else.

Through the simulator (client core, hub, network), on a virtual clock: a few virtual seconds each.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from sigma_core import codec
from sigma_core.backplane import HistoryEntry, HistoryLimits, MemoryEngine, ReplayGap
from sigma_core.client import ClientConfig, ConnectionStatus, ReconnectPolicy, RecoveryFailed
from sigma_core.connection import ConnectionConfig, ServerConnection
from sigma_core.engine import Route
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import RELEASE_DEFER, RELEASE_SLICE, HubConfig
from sigma_core.messages import Ack, StreamPosition, TopicPosition
from sigma_core.testing import SimClient, Simulation

HB = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0)


def client(sim: Simulation, *, inbox_ack_every: int = 32,
           inbox_ack_delay: float = 1.0) -> SimClient:
    config = ClientConfig(url="ws://sim.invalid/",
                          reconnect=ReconnectPolicy(max_attempts=None, initial_delay=0.1),
                          inbox_ack_every=inbox_ack_every, inbox_ack_delay=inbox_ack_delay)
    alice = sim.add_client(config)
    sim.run_until(lambda: alice.connected)
    return alice


def held(sim: Simulation, alice: SimClient) -> list[int]:
    """The offsets the hub still keeps in alice's inbox history."""
    engine = sim.hub._engine
    stream = engine._streams.get("$inbox:" + alice.session.session_id)
    return [] if stream is None or not stream.entries else [e.offset for e in stream.entries]


def send_raw(sim: Simulation, alice: SimClient, body: Ack) -> None:
    conn = alice.session._conn
    assert conn is not None
    conn.send(body)
    sim._pump_client(alice)
    sim.run(0.5)


def test_acknowledged_inbox_messages_leave_the_history() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim)
    sid = alice.session.session_id
    sim.hub.send_to(sid, b"r1", sim.now)
    sim.hub.send_to(sid, b"r2", sim.now)
    sim.run(0.2)  # delivered, the Ack not due yet (inbox_ack_delay 1 s)
    assert alice.payloads("$inbox") == [b"r1", b"r2"]
    assert held(sim, alice) == [1, 2]
    sim.run(1.5)
    assert held(sim, alice) == []
    # The session goes on numbering after what it let go of, and a resume replays nothing twice.
    sim.hub.send_to(sid, b"r3", sim.now)
    sim.run(0.2)
    sim.cut(alice)
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(2)
    assert alice.payloads("$inbox") == [b"r1", b"r2", b"r3"]
    assert [m.position.offset for m in alice.messages("$inbox")] == [1, 2, 3]
    assert held(sim, alice) == []  # r3 acknowledged after the resume


def test_inbox_ack_every_acknowledges_without_waiting() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=2, inbox_ack_delay=60.0)
    for i in range(5):
        sim.hub.send_to(alice.session.session_id, b"m%d" % i, sim.now)
    sim.run(0.2)
    assert len(alice.payloads("$inbox")) == 5
    assert held(sim, alice) == [5]  # 1..4 acknowledged in two Acks; the fifth waits


def test_resume_replays_what_was_not_acknowledged() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim)
    sid = alice.session.session_id
    sim.hub.send_to(sid, b"seen", sim.now)
    sim.run(2)
    assert held(sim, alice) == []
    sim.isolate(alice)
    sim.hub.send_to(sid, b"missed", sim.now)  # never reaches alice before the cut
    sim.run(0.5)
    sim.cut(alice)
    sim.heal(alice)
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(0.5)
    assert alice.payloads("$inbox") == [b"seen", b"missed"]
    assert alice.session.duplicates_dropped == 0
    assert alice.of_type(RecoveryFailed) == []


def test_a_client_that_never_acknowledges_keeps_todays_behaviour() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=0)
    sim.hub.send_to(alice.session.session_id, b"r1", sim.now)
    sim.run(5)
    assert alice.payloads("$inbox") == [b"r1"]
    assert held(sim, alice) == [1]  # until history's limits drop it
    assert alice.session.status is ConnectionStatus.CONNECTED


def test_a_stale_foreign_or_bogus_ack_releases_nothing() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=0)
    sid = alice.session.session_id
    for i in range(3):
        sim.hub.send_to(sid, b"m%d" % i, sim.now)
    sim.run(0.5)
    inbox = alice.session.positions["$inbox"]
    assert held(sim, alice) == [1, 2, 3]
    for body in (
        # another epoch (a stale ack from an ended session's inbox): nothing
        Ack(positions=(TopicPosition(topic="$inbox", position=StreamPosition(
            inbox.epoch ^ 1, 3)),)),
        # beyond the head: ignored, not a protocol error
        Ack(positions=(TopicPosition(topic="$inbox", position=StreamPosition(
            inbox.epoch, 99)),)),
        # other topics and seq: advisory, ignored
        Ack(seq=7, positions=(TopicPosition(topic="$all", position=inbox),
                              TopicPosition(topic="room", position=inbox))),
    ):
        send_raw(sim, alice, body)
        assert held(sim, alice) == [1, 2, 3]
        assert alice.session.status is ConnectionStatus.CONNECTED
    send_raw(sim, alice, Ack(positions=(TopicPosition(
        topic="$inbox", position=StreamPosition(inbox.epoch, 2)),)))
    assert held(sim, alice) == [3]


def test_an_ack_never_releases_another_sessions_inbox() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=0)
    bob = client(sim, inbox_ack_every=0)
    sim.hub.send_to(bob.session.session_id, b"for bob", sim.now)
    sim.run(0.5)
    # Alice quotes Bob's inbox position: it is another epoch than her own inbox's.
    send_raw(sim, alice, Ack(positions=(TopicPosition(
        topic="$inbox", position=bob.session.positions["$inbox"]),)))
    assert held(sim, bob) == [1]


def test_memory_engine_release_upto() -> None:
    engine = MemoryEngine(SeededEntropy(1))
    for _ in range(3):
        engine.append("t", lambda e, o: HistoryEntry(e, o, 0.0, b"x" * 10, Route()))
    head = engine.head("t")
    assert engine.release_upto("t", StreamPosition(head.epoch + 1, 2)) == 0
    assert engine.release_upto("t", StreamPosition(head.epoch, 4)) == 0
    assert engine.release_upto("t", StreamPosition(head.epoch, 2)) == 2
    rest = engine.read_after("t", StreamPosition(head.epoch, 2), 0.0)
    assert isinstance(rest, list)
    assert [e.offset for e in rest] == [3]
    gap = engine.read_after("t", StreamPosition(head.epoch, 1), 0.0)
    assert isinstance(gap, ReplayGap)
    assert (gap.lost_from, gap.lost_to) == (2, 2)
    assert engine.release_upto("t", head) == 1
    assert engine.read_after("t", head, 0.0) == []
    assert engine.head("t") == head  # positions go on from the head
    assert engine.release_upto("missing", head) == 0


def test_resume_from_before_an_ack_reports_the_loss() -> None:
    """A client that restored an old position (a copy of its state from before an Ack) learns
    that what it acknowledged is gone: Failed, never a partial replay."""
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim)
    sid = alice.session.session_id
    before = dict(alice.session.positions)
    sim.hub.send_to(sid, b"r1", sim.now)
    sim.run(2)
    assert held(sim, alice) == []
    sim.cut(alice)
    alice.session.positions = dict(before)
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    failed = alice.of_type(RecoveryFailed)
    assert [(r.topic, r.lost_from, r.lost_to) for r in failed] == [("$inbox", 1, 1)]


# -- the fast reader of a reference client's $inbox Ack (codec.read_inbox_ack) against decode()

U64 = st.integers(0, 2**64 - 1)
positions = st.builds(StreamPosition, epoch=U64, offset=U64)
topics = st.sampled_from(["$inbox", "$inboy", "$inbox2", "$inbo", "", "$all", "room", "é$inbox"])
ack_layouts = st.builds(
    Ack,
    seq=st.one_of(st.just(0), U64),
    positions=st.lists(st.builds(TopicPosition, topic=topics, position=positions),
                       max_size=3).map(tuple),
)


def expect_inbox_ack_agrees(buf: bytes) -> StreamPosition | None:
    """read_inbox_ack either defers (None) or gives exactly what decode reads."""
    position = codec.read_inbox_ack(buf)
    if position is not None:
        # (a DecodeError here: the fast reader accepted what decode refuses)
        assert codec.decode(buf) == Ack(positions=(TopicPosition(topic="$inbox",
                                                                 position=position),))
        assert type(position) is StreamPosition
    return position


@settings(max_examples=300, deadline=None)
@given(position=positions, other=ack_layouts, cut=st.integers(1, 104),
       flips=st.lists(st.tuples(st.integers(0, 103), st.integers(0, 7)), min_size=1, max_size=3))
def test_the_inbox_ack_reader_reads_what_decode_reads(
    position: StreamPosition, other: Ack, cut: int, flips: list[tuple[int, int]]
) -> None:
    # The reference clients' Ack (any position, stale epoch and beyond any head included) is
    # read by the fast reader; every other Ack layout, a truncated or bit-flipped one, defers
    # or reads the same as decode.
    wire = codec.encode(Ack(positions=(TopicPosition(topic="$inbox", position=position),)))
    assert expect_inbox_ack_agrees(wire) == position
    other_wire = codec.encode(other)
    read = expect_inbox_ack_agrees(other_wire)
    is_reference = other.seq == 0 and len(other.positions) == 1 \
        and other.positions[0].topic == "$inbox"
    assert (read is not None) == is_reference
    assert expect_inbox_ack_agrees(wire[:-cut]) is None
    flipped = bytearray(wire)
    for at, bit in flips:
        flipped[at] ^= 1 << bit
    # (flips inside the position's 16 bytes are another position, read as decode reads it)
    expect_inbox_ack_agrees(bytes(flipped))


def test_an_inbox_ack_reaches_the_hub_as_its_position_and_the_app_as_the_ack() -> None:
    # A server connection queues a reference client's $inbox Ack as its position
    # (connection.InboxAckPosition, no Ack built) for the hub; events_received() gives the
    # application exactly the event decode() would (EnvelopeReceived of the Ack).
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=0)
    sid = alice.session.session_id
    sim.hub.send_to(sid, b"m", sim.now)
    sim.run(0.5)
    inbox = alice.session.positions["$inbox"]
    rec = next(iter(sim.hub._conns.values()))
    conn = rec.conn
    assert isinstance(conn, ServerConnection)
    ack = Ack(positions=(TopicPosition(topic="$inbox", position=inbox),))
    conn.receive_data(_masked(codec.encode(ack)), sim.now)
    taken = conn._take_events()
    assert taken == [inbox]
    assert type(taken[0]) is StreamPosition
    conn.receive_data(_masked(codec.encode(ack)), sim.now)
    events = conn.events_received()
    assert len(events) == 1
    assert events[0].body == ack  # type: ignore[union-attr]


def _masked(payload: bytes, key: bytes = b"\x11\x22\x33\x44") -> bytes:
    """A client's masked binary frame (RFC 6455 5.2, 5.3) carrying ``payload``."""
    n = len(payload)
    head = bytes([0x82, 0x80 | n]) if n < 126 else bytes([0x82, 0xFE]) + n.to_bytes(2, "big")
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def test_inbox_acks_count_against_the_rate_limit_like_every_envelope() -> None:
    # The fast path (a reference $inbox Ack) and the general one (an Ack of another topic) are
    # charged alike: 40 of either in a burst close a connection limited to 20 msgs/s with 4008.
    from sigma_core.errors import CloseCode
    from sigma_core.hub import ClientDisconnected
    from sigma_core.ratelimit import RateLimit

    for topic in ("$inbox", "$all"):
        sim = Simulation(HubConfig(connection=HB,
                                   rate_limit=RateLimit(messages_per_second=20, burst=1.0)))
        alice = client(sim, inbox_ack_every=0)
        sim.hub.send_to(alice.session.session_id, b"m", sim.now)
        sim.run(0.5)
        position = alice.session.positions["$inbox"]
        conn = alice.session._conn
        assert conn is not None
        for _ in range(40):
            conn.send(Ack(positions=(TopicPosition(topic=topic, position=position),)))
        sim._pump_client(alice)
        sim.run(0.5)
        cut = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
        assert [e.code for e in cut] == [CloseCode.RATE_LIMITED], topic


def test_an_inbox_ack_lets_go_in_slices_after_the_write_of_the_read_that_carried_it() -> None:
    """Freeing many acknowledged replies at once held up every message that came in meanwhile
    (the p99 of docs/benchmarks.md's workload (a)), and a timer turn per Ack cost a wake-up per
    Ack: the read carrying the Ack frees one slice (RELEASE_SLICE entries) once its output is
    written (``Hub.after_write``, as the adapters' pump calls it); with no read after it, the
    first timer turn comes RELEASE_DEFER later and each frees at most one more slice, the
    following ones at that same instant; none is asked for once all went."""
    sim = Simulation(HubConfig(connection=HB))
    alice = client(sim, inbox_ack_every=0)
    sid = alice.session.session_id
    n = 2 * RELEASE_SLICE + 5
    for i in range(n):
        sim.hub.send_to(sid, b"m%d" % i, sim.now)
    sim.run(0.5)
    assert held(sim, alice) == list(range(1, n + 1))
    conn = alice.session._conn
    assert conn is not None
    conn.send(Ack(positions=(TopicPosition(topic="$inbox",
                                           position=alice.session.positions["$inbox"]),)))
    sim._pump_client(alice)
    while sim._queue:  # the Ack's way to the hub: its read, that read's output written
        when, _, action = heapq.heappop(sim._queue)
        sim.clock.set(max(sim.now, when))
        action()
    assert held(sim, alice) == list(range(RELEASE_SLICE + 1, n + 1))
    left = [len(held(sim, alice))]
    read_at = sim.now
    assert sim.hub.next_deadline() == read_at + RELEASE_DEFER
    sim.clock.set(read_at + RELEASE_DEFER)
    turns = 0
    while (deadline := sim.hub.next_deadline()) is not None and deadline <= sim.now:
        sim.hub.handle_timer(sim.now)
        sim._pump_node(sim.nodes[0])
        left.append(len(held(sim, alice)))
        turns += 1
        assert turns < 10
    assert left == [n - RELEASE_SLICE, n - 2 * RELEASE_SLICE, 0]
    assert alice.session.status is ConnectionStatus.CONNECTED
    # A resume replays nothing it acknowledged, and the numbering goes on.
    sim.hub.send_to(sid, b"after", sim.now)
    sim.run(0.5)
    sim.cut(alice)
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(1.0)
    assert len(alice.payloads("$inbox")) == n + 1
    assert alice.session.duplicates_dropped == 0


def test_memory_engine_release_upto_with_a_limit() -> None:
    engine = MemoryEngine(SeededEntropy(1))
    for _ in range(5):
        engine.append("t", lambda e, o: HistoryEntry(e, o, 0.0, b"x" * 10, Route()))
    head = engine.head("t")
    assert engine.release_upto("t", head, 2) == 2
    assert engine.released_bytes == 20
    assert engine.release_upto("t", head, 2) == 2
    assert engine.release_upto("t", head, 2) == 1
    assert engine.release_upto("t", head, 2) == 0
    assert engine.released_bytes == 50
    assert engine.read_after("t", head, 0.0) == []


def _entry_of(envelope: bytes) -> Callable[[int, int], HistoryEntry]:
    return lambda epoch, offset: HistoryEntry(epoch, offset, 0.0, envelope, None)


@settings(max_examples=200, deadline=None)
@given(max_count=st.integers(0, 12), ops=st.lists(st.tuples(
    st.sampled_from(["append", "release", "release_foreign"]), st.integers(0, 30),
    st.integers(0, 4)), max_size=80))
def test_release_upto_is_the_entry_by_entry_release(
    max_count: int, ops: list[tuple[str, int, int]]
) -> None:
    """``release_upto`` counts what goes by the offsets (contiguous in a stream) rather than
    comparing entry by entry: held to a model that releases one entry at a time, through the
    short (list) and long (deque) forms of a history, the count limit's trim, limits and stale
    positions: the same counts, entries held, bytes held and bytes released."""
    engine = MemoryEngine(SeededEntropy(1), HistoryLimits(max_count=max_count, max_bytes=0,
                                                          max_age=0))
    model: list[tuple[int, int]] = []  # (offset, envelope size) held
    released_bytes = 0
    last = 0
    epoch = engine.head("t").epoch
    for op, a, b in ops:
        if op == "append":
            last += 1
            engine.append("t", _entry_of(b"x" * a))
            model.append((last, a))
            if max_count and len(model) > max_count:
                released_bytes += model.pop(0)[1]
            continue
        offset = a if op == "release" else a + 1
        position = StreamPosition(epoch if op == "release" else epoch + 1, offset)
        acknowledged = op == "release" and offset <= last
        assert engine.releasable("t", position) == (
            acknowledged and bool(model) and model[0][0] <= offset)
        expected = 0
        if acknowledged:
            while model and model[0][0] <= offset and expected != (b or -1):
                released_bytes += model.pop(0)[1]
                expected += 1
        assert engine.release_upto("t", position, b) == expected
        stream = engine._streams["t"]
        assert [e.offset for e in stream.entries or ()] == [o for o, _ in model]
        assert stream.bytes == sum(n for _, n in model)
        assert engine.released_bytes == released_bytes
