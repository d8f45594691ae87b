"""sigma_core.pump.ServerPump: the adapters' per-read path, driven without sockets.

A real client connection (sigma_core.connection.ClientConnection) talks to a hub through the
pump; the "transport" records what the pump writes and the "timer" records what it arms. Runs
compiled and pure (scripts/test.sh runs the core tests both ways).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from sigma_core.api import EventEmitter, ServerCommands, ServerOptions, server_event_dispatcher
from sigma_core.connection import ClientConnection, EnvelopeReceived
from sigma_core.entropy import SeededEntropy
from sigma_core.errors import LocalProtocolError
from sigma_core.hub import RELEASE_DEFER, RELEASE_SLICE, ClientMessage, CloseAction, Hub, Session
from sigma_core.messages import Ack, Data, Hello, TopicPosition
from sigma_core.pump import ServerPump
from sigma_core.serializers import JSON


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed: CloseAction | None = None

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, chunks: list[bytes]) -> None:
        self.writes.append(b"".join(chunks))


class Rig:
    """A hub, its pump, one client connection through it."""

    def __init__(self, serializer: Any = None, skip_ids: int = 0, **options: Any) -> None:
        self.now = 100.0
        self.opts = opts = ServerOptions(**({"serializer": serializer} if serializer else {}),
                                         **options)
        self.hub = Hub(opts.hub_config(), entropy=SeededEntropy(1), now=self.now)
        for _ in range(skip_ids):  # sockets that came and went before this one
            self.hub.connection_lost(self.hub.open_connection(self.now), self.now)
        self.emitter = EventEmitter(logger=logging.getLogger("test_pump"), owner="test")
        self.peers: dict[int, Transport] = {}
        self.armed: list[float] = []
        self.clock_reads = 0
        self.pump = ServerPump(
            self.hub, emitter=self.emitter, peers=self.peers,
            dispatch=server_event_dispatcher(self.emitter, logging.getLogger("t"), {},
                                             opts.serializer),
            link=None, clock=self._clock, arm=self.armed.append, close=self._close,
            serializer=opts.serializer)
        self.pump.running = True
        hello = Hello(serializer=serializer.name) if serializer else None
        self.client = ClientConnection(host="example", hello=hello, now=self.now)
        self.conn_id = self.hub.open_connection(self.now, "127.0.0.1")
        self.transport = self.peers[self.conn_id] = Transport()
        self.pump.after_core()
        self.exchange()  # upgrade, Hello, Welcome

    def _clock(self) -> float:
        self.clock_reads += 1
        return self.now

    def _close(self, peer: Transport, action: CloseAction) -> None:
        peer.closed = action

    def exchange(self) -> list[Any]:
        """Client bytes to the pump, the pump's writes back to the client, until quiet; the
        client's events."""
        events: list[Any] = []
        for _ in range(10):
            out = b"".join(self.client.data_to_send())
            if out:
                self.pump.data_received(self.conn_id, out)
            back = b"".join(self.transport.writes)
            self.transport.writes.clear()
            if back:
                self.client.receive_data(back, self.now)
            events += self.client.events_received()
            if not out and not back:
                return events
        raise AssertionError("no quiet after 10 rounds")

    def send(self, *payloads: bytes, first_seq: int = 1) -> None:
        for i, payload in enumerate(payloads):
            self.client.send(Data(seq=first_seq + i, payload=payload))


def data_payloads(events: list[Any]) -> list[bytes]:
    return [bytes(e.body.payload) for e in events
            if isinstance(e, EnvelopeReceived) and isinstance(e.body, Data)]


def test_an_echo_leaves_in_one_write_per_read() -> None:
    rig = Rig()
    got: list[tuple[Session, bytes, str]] = []

    def on_message(session: Session, payload: bytes, topic: str) -> None:
        got.append((session, payload, topic))
        rig.hub.send_to(session.id, payload, rig.now)
        rig.pump.after_core()  # what a command does: lands in the running call

    rig.emitter.on("message", on_message)
    rig.send(b"a", b"b", b"c")
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    assert [(p, t) for _, p, t in got] == [(b"a", ""), (b"b", ""), (b"c", "")]
    assert all(isinstance(s, Session) for s, _, _ in got)
    assert len(rig.transport.writes) == 1  # three echoes, one write
    rig.client.receive_data(rig.transport.writes.pop(), rig.now)
    assert data_payloads(rig.client.events_received()) == [b"a", b"b", b"c"]


def test_a_connection_id_above_256_is_one_object_in_the_hubs_lookups() -> None:
    """Compiled, a native int is boxed afresh each time it is used as a dict or set key, and
    ids above 256 are not CPython's cached small ints: every use was an allocation, every
    lookup an int comparison reading the stored key (at 1,000 connections, several per read).
    The hub keeps one object per connection id: its table's key, the session's ``conn_id``
    and the ids its flush looks up are that object (found by identity); a message still
    reaches the client."""
    rig = Rig(skip_ids=300)
    assert rig.conn_id > 256
    (session,) = rig.hub.sessions.values()
    (key,) = (k for k in rig.hub._conns if k == rig.conn_id)
    assert session.conn_id == rig.conn_id
    assert session.conn_id is key
    rig.hub.send_to(session.id, b"x", rig.now)
    out = rig.hub.flush(rig.now)
    assert [conn_id for conn_id, _, _ in out] == [rig.conn_id]
    rig.client.receive_data(b"".join(out[0][1]), rig.now)
    assert data_payloads(rig.client.events_received()) == [b"x"]


def test_a_read_with_an_echo_is_one_pass_one_clock_read_one_write() -> None:
    """The fixed cost per read: the read's time serves the hub's input and its flush, and the
    echo a listener sends from inside the ``message`` callback leaves in that one flush (its
    command re-entering the pump does not read the clock or flush again)."""
    rig = Rig()

    def on_message(session: Session, payload: bytes, topic: str) -> None:
        rig.hub.send_to(session.id, payload, rig.now)
        rig.pump.after_core()

    rig.emitter.on("message", on_message)
    for n in range(1, 51):  # past an ack_every (32): the Ack joins the echo's write
        rig.send(b"m%d" % n, first_seq=n)
        reads = rig.clock_reads
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        assert rig.clock_reads - reads == 1
        assert len(rig.transport.writes) == 1
        rig.client.receive_data(rig.transport.writes.pop(), rig.now)
        events = rig.client.events_received()
        assert data_payloads(events) == [b"m%d" % n]
        acks = [e.body.seq for e in events
                if isinstance(e, EnvelopeReceived) and isinstance(e.body, Ack)]
        assert acks == ([32] if n == 32 else [])


def test_an_echo_from_send_to_client_is_stamped_at_the_read_and_reads_no_clock() -> None:
    """``send_to_client`` from inside the ``message`` callback (the adapters bind the pump's)
    sends at the time of the pass it runs in, the time its flush uses: the echo's
    ``timestamp_ms`` is the read's, however late the clock reads by then, and the read costs
    one clock read; outside a pass it reads the clock (as the commands do)."""
    rig = Rig()
    start_ms = int(rig.now * 1000)
    rig.emitter.on("message", lambda session, payload, topic: rig.pump.send_to_client(
        session, payload))
    for n in range(1, 4):
        rig.send(b"m%d" % n, first_seq=n)
        read_at = rig.now = 100.0 + n
        reads = rig.clock_reads
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        rig.now += 0.5  # (a listener that took long: not what the echo is stamped with)
        assert rig.clock_reads - reads == 1
        assert len(rig.transport.writes) == 1
        rig.client.receive_data(rig.transport.writes.pop(), rig.now)
        (echo,) = [e.body for e in rig.client.events_received()
                   if isinstance(e, EnvelopeReceived) and isinstance(e.body, Data)]
        assert (bytes(echo.payload), echo.timestamp_ms) == (b"m%d" % n, int(read_at * 1000))
    assert rig.pump.send_to_client(next(iter(rig.hub.sessions)), b"outside")
    (echo,) = [e.body for e in rig.exchange()
               if isinstance(e, EnvelopeReceived) and isinstance(e.body, Data)]
    assert echo.timestamp_ms == int(rig.now * 1000) > start_ms


def test_bytes_sent_counts_every_byte_written() -> None:
    """``stats().bytes_sent`` is what the sockets were handed: a read of 40 echoes (the first
    one frame, the rest in pieces, an Ack by count among them) and a lone one."""
    rig = Rig()
    rig.emitter.on("message", lambda session, payload, topic: rig.pump.send_to_client(
        session, payload))
    before = rig.hub.stats(rig.now).bytes_sent
    rig.send(*[b"x" * (i * 37) for i in range(1, 41)])
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    rig.send(b"lone", first_seq=41)
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    written = b"".join(rig.transport.writes)
    assert rig.hub.stats(rig.now).bytes_sent - before == len(written)
    rig.client.receive_data(written, rig.now)
    events = rig.client.events_received()
    assert data_payloads(events) == [b"x" * (i * 37) for i in range(1, 41)] + [b"lone"]
    assert [e.body.seq for e in events
            if isinstance(e, EnvelopeReceived) and isinstance(e.body, Ack)] == [32]


class ReenteringTransport(Transport):
    """A transport whose first write makes the application send again (as a callback run by
    the transport, e.g. on ``resume_writing``, would): that output must not wait for the
    next read."""

    def __init__(self, rig: Rig) -> None:
        super().__init__()
        self.rig = rig
        self.reentered = False

    def write(self, data: bytes) -> None:
        super().write(data)
        if not self.reentered:
            self.reentered = True
            session = next(iter(self.rig.hub.sessions.values()))
            self.rig.hub.send_to(session.id, b"from the write", self.rig.now)
            self.rig.pump.after_core()


def test_output_sent_during_the_writes_leaves_before_the_read_returns() -> None:
    rig = Rig()
    def echo(session: Session, payload: bytes, topic: str) -> None:
        rig.hub.send_to(session.id, payload, rig.now)
        rig.pump.after_core()

    rig.emitter.on("message", echo)
    rig.transport = rig.peers[rig.conn_id] = ReenteringTransport(rig)
    rig.send(b"ping")
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    assert len(rig.transport.writes) == 2  # the echo, then what the write sent
    rig.client.receive_data(b"".join(rig.transport.writes), rig.now)
    assert data_payloads(rig.client.events_received()) == [b"ping", b"from the write"]


def test_a_raising_listener_is_reported_and_the_others_still_run() -> None:
    rig = Rig()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def bad(session: Session, payload: bytes, topic: str) -> None:
        raise RuntimeError("boom")

    rig.emitter.on("message", bad)
    rig.emitter.on("message", lambda s, p, t: seen.append(p))
    rig.emitter.on("error", errors.append)
    rig.send(b"x")
    rig.exchange()
    assert seen == [b"x"]
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "raised by a test 'message' listener" in errors[0].__notes__


def test_a_serializer_gets_the_decoded_value_and_the_hub_still_gives_client_messages() -> None:
    rig = Rig(serializer=JSON)
    got: list[Any] = []
    rig.emitter.on("message", lambda session, value, topic: got.append(value))
    rig.send(b'{"n": 1}')
    rig.exchange()
    assert got == [{"n": 1}]
    # Without the pump the hub's public events are ClientMessage objects, as always.
    rig.send(b'{"n": 2}', first_seq=2)
    rig.hub.receive_data(rig.conn_id, b"".join(rig.client.data_to_send()), rig.now)
    messages = [e for e in rig.hub.events_received() if isinstance(e, ClientMessage)]
    assert [(m.seq, m.payload, m.topic) for m in messages] == [(2, b'{"n": 2}', "")]


def test_the_timer_is_armed_only_when_the_deadline_comes_earlier() -> None:
    rig = Rig()
    first = list(rig.armed)
    assert first
    assert first[-1] == rig.hub.next_deadline()
    # Reads push the heartbeat deadlines later and schedule acks: many reads, few arms.
    for n in range(1, 201):
        rig.now += 0.001
        rig.send(b"m", first_seq=n)
        rig.exchange()
    assert len(rig.armed) - len(first) < 10
    assert all(b < a for a, b in zip(rig.armed, rig.armed[1:], strict=False))  # only earlier
    # The timer fires at what was armed; a deadline since moved later is found not due, and
    # the timer is armed again at the hub's next deadline.
    rig.now = rig.pump.armed_at
    rig.pump.on_timer()
    deadline = rig.hub.next_deadline()
    assert deadline is not None
    assert deadline > rig.now
    assert rig.pump.armed_at == deadline == rig.armed[-1]


def test_a_due_ack_timer_fires_through_the_pump() -> None:
    rig = Rig()
    rig.send(b"one")
    rig.exchange()
    assert rig.pump.armed_at <= rig.now + rig.hub.config.ack_delay
    rig.now = rig.pump.armed_at
    rig.pump.on_timer()
    rig.client.receive_data(b"".join(rig.transport.writes), rig.now)
    acks = [e.body for e in rig.client.events_received()
            if isinstance(e, EnvelopeReceived) and isinstance(e.body, Ack)]
    assert acks == [Ack(seq=1)]


def test_a_stopped_pump_arms_nothing() -> None:
    rig = Rig()
    rig.pump.running = False
    rig.pump.disarmed()
    before = list(rig.armed)
    rig.send(b"m")
    rig.exchange()
    assert rig.armed == before
    assert rig.pump.armed_at == float("inf")


def test_exactly_one_way_to_hand_output_over() -> None:
    hub = Hub(entropy=SeededEntropy(1), now=0.0)
    with pytest.raises(ValueError, match="exactly one of close= and deliver="):
        ServerPump(hub, emitter=EventEmitter(), dispatch=lambda event: None,
                   peers={}, link=None, clock=lambda: 0.0, arm=lambda when: None)


def test_every_message_is_acked_within_ack_delay_with_one_ack_timer_per_window() -> None:
    """A client sending a message every millisecond: acks by count (every ``ack_every``) and
    by time. Every message is acknowledged no later than ``ack_delay`` after it arrived, and
    the ack timer wakes the server about once per ``ack_delay``, not once per ``ack_every``
    messages (an ack by count leaves the pending timer for what comes after it)."""
    rig = Rig()
    delay = rig.hub.config.ack_delay
    received_at: dict[int, float] = {}
    acked_at: dict[int, float] = {}
    fired = 0

    def collect() -> None:
        if rig.transport.writes:
            rig.client.receive_data(b"".join(rig.transport.writes), rig.now)
            rig.transport.writes.clear()
        for event in rig.client.events_received():
            if isinstance(event, EnvelopeReceived) and isinstance(event.body, Ack):
                for seq in range(len(acked_at) + 1, event.body.seq + 1):
                    acked_at[seq] = rig.now

    def advance(to: float) -> None:
        nonlocal fired
        while rig.pump.armed_at <= to:
            rig.now = rig.pump.armed_at
            rig.pump.on_timer()
            fired += 1
            collect()
        rig.now = to

    start = rig.now
    for seq in range(1, 501):  # 0.5 s
        rig.send(b"m", first_seq=seq)
        received_at[seq] = rig.now
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        collect()
        advance(rig.now + 0.001)
    advance(rig.now + 2 * delay)
    assert sorted(acked_at) == sorted(received_at)
    late = {seq: acked_at[seq] - at for seq, at in received_at.items()
            if acked_at[seq] - at > delay + 1e-9}
    assert late == {}
    # ~10 ack windows in 0.5 s (an ack by count every 32 ms would make ~16 timers).
    assert fired <= (rig.now - start) / delay + 3


class Commands(ServerCommands):
    """``ServerCommands.send_to_client`` (the Python method every adapter inherits) on a rig."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.options = rig.opts
        self._hub = rig.hub

    def _now(self) -> float:
        return self.rig.now

    def _after_core(self) -> None:
        self.rig.pump.after_core()


def _outcome(call: Any) -> Any:
    try:
        return ("returned", call())
    except Exception as exc:  # the outcome compared, whatever it is
        return ("raised", type(exc), str(exc))


@pytest.mark.parametrize("serializer", [None, JSON])
def test_the_pumps_send_to_client_is_the_commands_send_to_client(serializer: Any) -> None:
    """The compiled ``ServerPump.send_to_client`` the adapters bind at start and the Python
    ``ServerCommands.send_to_client`` it stands for: the same result, error and frames for a
    session, its id, an unknown id, a wrong client, payloads of every kind."""
    rig = Rig(serializer=serializer)
    commands = Commands(rig)
    session = next(iter(rig.hub.sessions.values()))
    big = b"x" * (rig.opts.max_message_size + 1)
    payloads: list[Any] = ([b"bytes", bytearray(b"ba"), memoryview(b"mv"), "text", 7, big]
                           if serializer is None else [{"n": 1}, [1, 2], object(), b"raw"])
    for client in (session, session.id, "no-such-session", 42):
        for data in payloads:
            ours = _outcome(lambda c=client, d=data: rig.pump.send_to_client(c, d))
            got_ours = data_payloads(rig.exchange())
            theirs = _outcome(lambda c=client, d=data: commands.send_to_client(c, d))
            got_theirs = data_payloads(rig.exchange())
            assert ours == theirs, (client, data)
            assert got_ours == got_theirs, (client, data)
            if ours[0] == "raised":
                assert ours[1] in (LocalProtocolError, AttributeError), ours


def _acks_in(rig: Rig, writes: list[bytes]) -> list[int]:
    rig.client.receive_data(b"".join(writes), rig.now)
    return [e.body.seq for e in rig.client.events_received()
            if isinstance(e, EnvelopeReceived) and isinstance(e.body, Ack)]


@pytest.mark.parametrize(("period", "echo"),
                         [(0.02, True), (0.02, False), (0.004, True), (0.001, True)])
def test_acks_ride_with_a_slow_senders_replies_and_stay_within_ack_delay(
        period: float, echo: bool) -> None:
    """A client whose messages come ``ack_delay`` / 8 or more apart (20 ms here, against 50):
    the ack timer would fire alone (a wake-up and a write of its own) before its next message,
    so the hub acknowledges each message in the write of the reply to it instead, and sets no
    ack timer. Without a reply it waits for the timer as before (no extra writes). A faster
    sender (4 or 1 ms apart) is acknowledged by count and timer, not per message, but the
    message that arrives within one period of the timer's deadline carries the ack in its
    reply, so the timer writes alone only after the sender stopped. Always: every message
    acknowledged within ``ack_delay`` of its arrival, one write per read."""
    rig = Rig()
    delay = rig.hub.config.ack_delay
    if echo:
        def on_message(session: Session, payload: bytes, topic: str) -> None:
            rig.hub.send_to(session.id, payload, rig.now)
            rig.pump.after_core()

        rig.emitter.on("message", on_message)
    received_at: dict[int, float] = {}
    acked_at: dict[int, float] = {}
    fired = acks = lone = 0

    def collect() -> None:
        nonlocal acks
        writes = list(rig.transport.writes)
        rig.transport.writes.clear()
        for seq_acked in _acks_in(rig, writes):
            acks += 1
            for seq in range(len(acked_at) + 1, seq_acked + 1):
                acked_at[seq] = rig.now

    def advance(to: float) -> None:
        nonlocal fired, lone
        while rig.pump.armed_at <= to:
            rig.now = rig.pump.armed_at
            rig.pump.on_timer()
            fired += 1
            lone += len(rig.transport.writes)  # what the timer wrote on its own
            collect()
        rig.now = to

    count = 40
    for seq in range(1, count + 1):
        rig.send(b"m", first_seq=seq)
        received_at[seq] = rig.now
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        assert len(rig.transport.writes) == (1 if echo else 0)  # the reply and its ack: one
        collect()
        advance(rig.now + period)
    advance(rig.now + 2 * delay)
    assert sorted(acked_at) == sorted(received_at)
    assert {seq: acked_at[seq] - at for seq, at in received_at.items()
            if acked_at[seq] - at > delay + 1e-9} == {}
    if period >= delay / 8 and echo:
        # The first message came right after the Welcome (no gap yet): its timer was set, the
        # third message's echo (due before the fourth) acks all three, the timer finds
        # nothing; from then on each message's ack rides with its echo and no timer is set.
        assert (fired, lone) == (1, 0)
        assert acks == count - 2
    elif period >= delay / 8:
        assert acks == lone == fired <= count * period / delay + 3  # by the timer, as before
    else:
        assert lone <= 1  # at most the ack of the last messages, after which none came
        assert acks <= count / rig.hub.config.ack_every + count * period / delay + 3


def test_a_riding_acks_deadline_counts_before_the_flush() -> None:
    """Driven without the pump: between ``receive_data`` and ``flush`` a slow sender's pending
    ack is in ``next_deadline()``; a flush with nothing else for the connection sets its timer,
    which acknowledges the message ``ack_delay`` after it arrived."""
    rig = Rig()
    delay = rig.hub.config.ack_delay
    rig.now += 1.0  # long after the Welcome: a slow sender
    rig.send(b"quiet")
    arrived = rig.now
    rig.hub.receive_data(rig.conn_id, b"".join(rig.client.data_to_send()), rig.now)
    assert rig.hub.next_deadline() == pytest.approx(arrived + delay)
    rig.hub.events_received()
    assert all(not chunks for _, chunks, _ in rig.hub.flush(rig.now))
    assert rig.hub.next_deadline() == pytest.approx(arrived + delay)
    rig.now = arrived + delay
    rig.hub.handle_timer(rig.now)
    writes = [b"".join(chunks) for _, chunks, _ in rig.hub.flush(rig.now)]
    assert _acks_in(rig, writes) == [1]


def inbox_held(rig: Rig, sid: str) -> Callable[[], int]:
    """How many entries the session's ``$inbox`` history holds now (a function to call)."""
    stream = f"$inbox:{sid}"

    def held() -> int:
        entries = rig.hub._engine._streams[stream].entries
        return 0 if entries is None else len(entries)

    return held


class HeldAtWrite(Transport):
    """A transport that notes how many ``$inbox`` entries the hub still held at each write."""

    def __init__(self, held: Any) -> None:
        super().__init__()
        self.held = held
        self.held_at_write: list[int] = []

    def write(self, data: bytes) -> None:
        self.held_at_write.append(self.held())
        super().write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        self.held_at_write.append(self.held())
        super().writelines(chunks)


@pytest.mark.parametrize("extra", [-1, 0, RELEASE_SLICE + 5])
def test_an_inbox_ack_lets_go_of_one_slice_after_each_reads_write(extra: int) -> None:
    """The read carrying a client's ``$inbox`` Ack writes its reply first, then lets go of one
    slice (RELEASE_SLICE entries more than the read published) in the same turn; each read
    after it one more slice, after its own write. No slice asks for a timer turn of its own
    under traffic (no wake-up per Ack); what is left when reads stop goes in timer turns from
    RELEASE_DEFER on."""
    rig = Rig()
    (sid,) = list(rig.hub._sessions)
    held = inbox_held(rig, sid)

    rig.transport = rig.peers[rig.conn_id] = HeldAtWrite(held)
    rig.emitter.on("message", lambda session, payload, topic: rig.pump.send_to_client(
        session, payload))
    n = RELEASE_SLICE + extra
    for i in range(n):
        rig.hub.send_to(sid, b"r%d" % i, rig.now)
    rig.pump.after_core()
    events = rig.exchange()
    positions = [e.body.position for e in events if isinstance(e, EnvelopeReceived)
                 and isinstance(e.body, Data) and e.body.topic == "$inbox"]
    assert len(positions) == n
    assert held() == n
    armed = len(rig.armed)
    last = positions[-1]
    assert last is not None
    rig.client.send(Ack(positions=(TopicPosition(topic="$inbox", position=last),)))
    seq = 1
    rig.send(b"echo me", first_seq=seq)
    rig.transport.held_at_write.clear()
    first_read = rig.now
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    # The echo (an $inbox entry of its own, not acknowledged yet) left before any release.
    assert rig.transport.held_at_write == [n + 1]
    echoes = 1
    per_read = RELEASE_SLICE + 1  # a slice more than the read published (its one echo)
    assert held() == max(n - per_read, 0) + echoes
    # Reads that follow take a slice each, after their own write.
    while held() > echoes:
        before = held()
        rig.now += 0.001
        seq += 1
        rig.send(b"more", first_seq=seq)
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        echoes += 1
        assert rig.transport.held_at_write[-1] == before + 1
        assert held() == max(before - echoes + 1 - per_read, 0) + echoes
    assert seq == -(-n // per_read)  # one read per slice
    # No timer turn was asked for at once: only the Data's ack timer (ack_delay after the
    # first read) and no earlier.
    horizon = min(rig.hub.config.ack_delay, RELEASE_DEFER)
    assert all(when - first_read >= horizon - 1e-9 for when in rig.armed[armed:])


def test_what_a_read_leaves_goes_in_timer_turns_when_no_read_follows() -> None:
    rig = Rig()
    (sid,) = list(rig.hub._sessions)
    held = inbox_held(rig, sid)

    n = 2 * RELEASE_SLICE + 5
    for i in range(n):
        rig.hub.send_to(sid, b"r%d" % i, rig.now)
    rig.pump.after_core()
    events = rig.exchange()
    last = [e.body.position for e in events if isinstance(e, EnvelopeReceived)
            and isinstance(e.body, Data) and e.body.topic == "$inbox"][-1]
    assert last is not None
    rig.client.send(Ack(positions=(TopicPosition(topic="$inbox", position=last),)))
    read_at = rig.now
    rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
    assert held() == n - RELEASE_SLICE
    assert rig.pump.armed_at == rig.hub.next_deadline() == read_at + RELEASE_DEFER
    left = []
    while rig.pump.armed_at <= read_at + RELEASE_DEFER:
        rig.now = rig.pump.armed_at
        rig.pump.on_timer()
        left.append(held())
        assert len(left) < 5
    assert left == [n - 2 * RELEASE_SLICE, 0]
    assert rig.now == read_at + RELEASE_DEFER  # the second turn at once after the first


def test_the_release_keeps_pace_with_reads_that_carry_many_echoes() -> None:
    """Reads of 64 echoes each, the client acknowledging its ``$inbox`` every 128 replies (the
    reference client's default): what the Acks let go of goes as fast as the inbox grows — a
    read's slice frees at least as many entries as the read published — so the history held
    stays at what is in flight and unacknowledged, not growing until the history limit
    (1,000 entries) trims it."""
    rig = Rig()
    (sid,) = list(rig.hub._sessions)
    held = inbox_held(rig, sid)

    rig.emitter.on("message", lambda session, payload, topic: rig.pump.send_to_client(
        session, payload))
    seq, unacked, last = 1, 0, None
    series = []
    for _ in range(100):
        rig.now += 0.001  # reads 1 ms apart: never RELEASE_DEFER without one
        for _ in range(64):
            rig.client.send(Data(seq=seq, payload=b"x" * 100))
            seq += 1
        if unacked >= 128 and last is not None:
            rig.client.send(Ack(positions=(TopicPosition(topic="$inbox", position=last),)))
            unacked = 0
        rig.pump.data_received(rig.conn_id, b"".join(rig.client.data_to_send()))
        rig.client.receive_data(b"".join(rig.transport.writes), rig.now)
        rig.transport.writes.clear()
        for event in rig.client.events_received():
            if isinstance(event, EnvelopeReceived) and isinstance(event.body, Data) \
                    and event.body.topic == "$inbox":
                last = event.body.position
                unacked += 1
        series.append(held())
    assert seq == 6401
    # At most the unacknowledged replies (< 128 + 64) and what the last Ack let go of but the
    # read's slice has not reached yet: bounded, not growing with the reads.
    assert max(series[10:]) <= 128 + 64 + 64, series
    assert max(series[50:]) <= max(series[10:50])


@pytest.mark.parametrize("serializer", [None, JSON])
def test_a_read_carrying_a_run_of_messages_reaches_the_listeners_in_order(serializer: Any) -> None:
    # One read, five messages: the hub hands the pump the run as one object (hub.MessageRun);
    # the listeners still get each message, in order, each looked up at its turn: one that
    # removes itself during the run gets none of the rest.
    rig = Rig(serializer=serializer)
    got: list[Any] = []
    first: list[Any] = []

    def once(session: Session, value: Any, topic: str) -> None:
        first.append(value)
        rig.emitter.off("message", once)

    rig.emitter.on("message", once)
    rig.emitter.on("message", lambda session, value, topic: got.append(value))
    payloads = [b'{"n": %d}' % n for n in range(1, 6)]
    rig.send(*payloads)
    wire = b"".join(rig.client.data_to_send())
    rig.pump.data_received(rig.conn_id, wire)  # one read
    expected: list[Any] = [{"n": n} for n in range(1, 6)] if serializer else payloads
    assert got == expected
    assert first == expected[:1]
