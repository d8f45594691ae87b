"""The connection layer: handshake, Hello/Welcome, envelopes, heartbeats, closing, limits."""

from __future__ import annotations

import itertools
import random
import re
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma_core import codec
from sigma_core.connection import (
    AnyConnectionEvent,
    ClientConnection,
    Closed,
    ConnectionConfig,
    ConnectionState,
    EnvelopeReceived,
    HandshakeFailed,
    HandshakeRequest,
    HelloReceived,
    RawMessage,
    ServerConnection,
    Welcomed,
)
from sigma_core.errors import CloseCode, ErrorCode, LocalProtocolError
from sigma_core.messages import (
    Ack,
    Body,
    Data,
    Error,
    Goodbye,
    Hello,
    Ping,
    Pong,
    Presence,
    Refresh,
    Refreshed,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from sigma_core.websocket import WebSocketConfig

CONFIG = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0,
                          handshake_timeout=3.0, close_timeout=2.0)


class Pair:
    """A client and a server connection wired back to back, with a clock set by assignment."""

    def __init__(self, config: ConnectionConfig = CONFIG, *, accept: bool = True,
                 welcome: bool = True, hello: Hello | None = None,
                 client_config: ConnectionConfig | None = None) -> None:
        self.now = 0.0
        self.client = ClientConnection(host="example.test", path="/ws", hello=hello,
                                       config=client_config or config, now=self.now)
        self.server = ServerConnection(config, now=self.now)
        self.client_events: list[AnyConnectionEvent] = []
        self.server_events: list[AnyConnectionEvent] = []
        self.auto_accept = accept
        self.auto_welcome = welcome
        self.pump()

    def pump(self) -> None:
        for _ in range(100):
            moved = False
            for src, dst in ((self.client, self.server), (self.server, self.client)):
                data = b"".join(src.data_to_send())
                if data:
                    moved = True
                    dst.receive_data(data, self.now)
                if src.transport_should_close and src.state is ConnectionState.CLOSED \
                        and dst.state is not ConnectionState.CLOSED:
                    pass
            for ev in self.server.events_received():
                self.server_events.append(ev)
                if isinstance(ev, HandshakeRequest) and self.auto_accept:
                    self.server.accept_handshake()
                    moved = True
                if isinstance(ev, HelloReceived) and self.auto_welcome:
                    self.server.welcome(Welcome(session_id="s1", resume_token=b"t" * 32,
                                                heartbeat_interval_ms=5000,
                                                heartbeat_timeout_ms=12000), self.now)
                    moved = True
            self.client_events.extend(self.client.events_received())
            if not moved:
                return
        raise AssertionError("pump did not settle")

    def tick(self, now: float) -> None:
        self.now = now
        for conn in (self.client, self.server):
            deadline = conn.next_deadline()
            if deadline is not None and deadline <= now:
                conn.handle_timer(now)
        self.pump()

    def run_until(self, end: float, step: float = 0.5) -> None:
        t = self.now
        while t < end:
            t = min(end, t + step)
            self.tick(t)

    def closed(self, side: str) -> Closed:
        events = self.client_events if side == "client" else self.server_events
        found = [e for e in events if isinstance(e, Closed)]
        assert len(found) == 1, events
        return found[0]


def test_handshake_hello_welcome_and_data_both_ways() -> None:
    pair = Pair(hello=Hello(auth_token="secret"))
    assert pair.client.state is ConnectionState.OPEN
    assert pair.server.state is ConnectionState.OPEN
    assert pair.client.subprotocol == "sigma.v1"
    hello = [e for e in pair.server_events if isinstance(e, HelloReceived)]
    assert hello[0].hello.auth_token == "secret"
    welcomed = [e for e in pair.client_events if isinstance(e, Welcomed)]
    assert welcomed[0].welcome.session_id == "s1"

    pair.client.send(Data(seq=1, topic="chat", timestamp_ms=5, payload=b"up"))
    pair.server.send(Data(topic="chat", position=StreamPosition(7, 1), payload=b"down"))
    pair.server.send(Ack(seq=1))
    pair.pump()
    got_server = [e.body for e in pair.server_events if isinstance(e, EnvelopeReceived)]
    got_client = [e.body for e in pair.client_events if isinstance(e, EnvelopeReceived)]
    assert isinstance(got_server[0], Data)
    assert bytes(got_server[0].payload) == b"up"
    assert got_server[0].seq == 1
    assert isinstance(got_client[0], Data)
    assert bytes(got_client[0].payload) == b"down"
    assert got_client[0].position == StreamPosition(7, 1)
    assert got_client[1] == Ack(seq=1)


def test_close_handshake_initiated_by_client_with_goodbye() -> None:
    pair = Pair()
    pair.client.close(CloseCode.NORMAL_CLOSURE, "bye",
                      goodbye=Goodbye(code=ErrorCode.NORMAL, reason="bye"), now=pair.now)
    assert pair.client.state is ConnectionState.CLOSING
    pair.pump()
    server_closed = pair.closed("server")
    client_closed = pair.closed("client")
    assert (server_closed.code, server_closed.reason) == (1000, "bye")
    assert server_closed.goodbye == Goodbye(code=ErrorCode.NORMAL, reason="bye")
    assert server_closed.clean
    assert client_closed.clean
    assert client_closed.initiated_locally
    assert not server_closed.initiated_locally
    assert pair.server.transport_should_close
    assert pair.client.transport_should_close


def test_close_handshake_initiated_by_server() -> None:
    pair = Pair()
    pair.server.close(CloseCode.GOING_AWAY, "restart",
                      goodbye=Goodbye(code=ErrorCode.SHUTTING_DOWN, reconnect_after_ms=1500),
                      now=pair.now)
    pair.pump()
    closed = pair.closed("client")
    assert closed.code == CloseCode.GOING_AWAY
    assert closed.goodbye is not None
    assert closed.goodbye.reconnect_after_ms == 1500
    assert pair.closed("server").clean


def test_close_waits_for_queued_data() -> None:
    pair = Pair()
    for i in range(3):
        pair.server.send(Data(topic="t", position=StreamPosition(1, i + 1), payload=b"x"))
    pair.server.close(now=pair.now)
    pair.pump()
    datas = [e for e in pair.client_events if isinstance(e, EnvelopeReceived)]
    assert len(datas) == 3
    assert pair.closed("client").clean


def test_close_timeout_drops_the_socket() -> None:
    pair = Pair()
    pair.client.close(now=pair.now)
    pair.client.data_to_send()  # the close frame is lost: the server never answers
    pair.now = 1.9
    pair.client.handle_timer(pair.now)
    assert pair.client.state is ConnectionState.CLOSING
    pair.now = 2.0
    pair.client.handle_timer(pair.now)
    closed = pair.client.events_received()[-1]
    assert isinstance(closed, Closed)
    assert not closed.clean
    assert pair.client.transport_should_close


def test_eof_is_an_abnormal_closure() -> None:
    pair = Pair()
    pair.server.receive_data(None, pair.now)
    closed = pair.server.events_received()[-1]
    assert isinstance(closed, Closed)
    assert closed.code == CloseCode.ABNORMAL_CLOSURE
    assert not closed.clean


def test_heartbeats_measure_rtt_and_keep_an_idle_link_alive() -> None:
    pair = Pair()
    pair.run_until(60.0)
    assert pair.client.state is ConnectionState.OPEN
    assert pair.server.state is ConnectionState.OPEN
    # In-memory pair: zero transit time, so the smoothed RTT is exactly zero.
    assert pair.client.rtt == 0.0
    assert pair.server.rtt == 0.0


def test_silent_peer_declared_dead_within_the_bound() -> None:
    pair = Pair()
    # The client goes silent: nothing it sends arrives any more.
    t = 0.0
    closed_at = None
    while t < 30 and closed_at is None:
        t += 0.25
        pair.server.handle_timer(t)
        pair.client.data_to_send()  # dropped on the floor
        pair.server.data_to_send()
        if pair.server.state is ConnectionState.CLOSED:
            closed_at = t
    assert closed_at is not None
    assert 12.0 <= closed_at <= 12.25  # heartbeat_timeout, to within one timer tick
    closed = next(e for e in pair.server.events_received() if isinstance(e, Closed))
    assert closed.code == CloseCode.HEARTBEAT_TIMEOUT
    assert closed.cause is not None
    assert closed.cause.code == CloseCode.HEARTBEAT_TIMEOUT
    assert pair.server.next_deadline() is None


def test_reading_paused_for_back_pressure_is_not_a_silent_peer() -> None:
    # The adapter stopped reading (its app is not taking messages): 30 s of the server's
    # silence is its own doing, not a dead peer; pings still go out. Once reading resumes,
    # silence counts from then.
    pair = Pair()
    pair.client.set_reading_paused(True, 0.0)
    sent = 0
    t = 0.0
    while t < 30:
        t += 0.25
        pair.client.handle_timer(t)
        sent += len(b"".join(pair.client.data_to_send()))
    assert pair.client.state is ConnectionState.OPEN
    assert sent > 0  # its heartbeat pings
    pair.client.set_reading_paused(False, 30.0)
    assert pair.client.next_deadline() is not None
    pair.client.handle_timer(41.0)
    states = [pair.client.state]
    pair.client.handle_timer(42.25)  # heartbeat_timeout (12 s) after resuming
    states.append(pair.client.state)
    assert states == [ConnectionState.OPEN, ConnectionState.CLOSED]


def test_next_deadline_is_exact() -> None:
    pair = Pair()
    assert pair.server.next_deadline() == 5.0  # first ping
    pair.tick(5.0)
    # the ping went out and its pong came back at t=5, so the next thing is the next ping
    assert pair.server.next_deadline() == 10.0


def test_busy_link_is_not_declared_dead_though_pongs_never_come() -> None:
    """Data flowing proves liveness: a peer too busy to answer pings is not dead."""
    pair = Pair()
    t = 0.0
    while t < 40:
        t += 1.0
        pair.server.handle_timer(t)
        # the client keeps sending data; the server's pings never reach it (dropped below),
        # so no Pong ever comes back: only data arrives
        pair.client.send(Data(seq=int(t), payload=b"busy"))
        for frame in pair.client.data_to_send():
            pair.server.receive_data(frame, t)
        pair.server.data_to_send()
        assert pair.server.rtt is None
    assert pair.server.state is ConnectionState.OPEN


def test_pings_overtake_queued_data() -> None:
    pair = Pair()
    for i in range(50):
        pair.server.send(Data(topic="t", position=StreamPosition(1, i + 1), payload=b"z" * 1000))
    assert pair.server.buffered_amount > 50_000
    pair.server.handle_timer(5.0)  # ping due
    frames = pair.server.data_to_send()
    assert isinstance(codec.decode(frames[0][2:]), Ping)
    assert pair.server.buffered_amount == 0


def test_handshake_timeout_closes_with_4002_when_no_hello() -> None:
    pair = Pair(welcome=False)
    assert pair.server.state is ConnectionState.HELLO
    pair.tick(3.0)
    closed = pair.closed("server")
    assert closed.code == CloseCode.HELLO_TIMEOUT
    assert pair.closed("client").code == CloseCode.HELLO_TIMEOUT


def test_handshake_timeout_mid_request_answers_408() -> None:
    server = ServerConnection(CONFIG, now=0.0)
    server.receive_data(b"GET / HTTP/1.1\r\n", 0.0)
    assert server.next_deadline() == 3.0
    server.handle_timer(3.0)
    response = b"".join(server.data_to_send())
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nConnection: close\r\n" in response
    assert response.endswith(b"\r\n\r\nHTTP request not complete within the handshake timeout "
                             b"(3 s)")
    events = server.events_received()
    assert isinstance(events[0], HandshakeFailed)
    assert events[0].status == 408
    assert isinstance(events[1], Closed)
    assert "HTTP 408" in events[1].reason
    assert server.state is ConnectionState.CLOSED
    assert server.transport_should_close


def test_handshake_timeout_before_any_byte_drops_socket_silently() -> None:
    server = ServerConnection(CONFIG, now=0.0)
    server.handle_timer(3.0)
    assert server.data_to_send() == []
    [closed] = server.events_received()
    assert isinstance(closed, Closed)
    assert closed.code == CloseCode.ABNORMAL_CLOSURE
    assert server.state is ConnectionState.CLOSED
    assert server.transport_should_close


def test_data_before_hello_closes_with_4001() -> None:
    # Make the client skip its Hello by injecting a Data envelope straight into the socket.
    raw = ClientConnection(host="h", config=CONFIG, now=0.0)
    server = ServerConnection(CONFIG, now=0.0)
    server.receive_data(b"".join(raw.data_to_send()), 0.0)
    server.accept_handshake()
    raw.receive_data(b"".join(server.data_to_send()), 0.0)
    raw.data_to_send()  # the Hello: discard it
    raw._state = ConnectionState.OPEN  # white-box: pretend we are open to send Data
    raw.send(Data(seq=1, payload=b"early"))
    server.receive_data(b"".join(raw.data_to_send()), 0.0)
    closed = next(e for e in server.events_received() if isinstance(e, Closed))
    assert closed.code == CloseCode.UNEXPECTED_MESSAGE


def test_garbage_envelope_closes_with_4000() -> None:
    pair = Pair()
    pair.client._ws.send_message(b"definitely not a flatbuffer")
    pair.client._pull_ws(priority=False)
    pair.pump()
    closed = pair.closed("server")
    assert closed.code == CloseCode.BAD_ENVELOPE
    assert closed.cause is not None
    assert pair.closed("client").code == CloseCode.BAD_ENVELOPE


def test_wrong_direction_message_closes_with_4001() -> None:
    pair = Pair()
    pair.client.send(Subscribed(recovery=TopicRecovery(topic="x")))  # only servers send this
    pair.pump()
    assert pair.closed("server").code == CloseCode.UNEXPECTED_MESSAGE
    pair2 = Pair()
    pair2.server.send(Subscribe(topic="x"))  # only clients send this
    pair2.pump()
    assert pair2.closed("client").code == CloseCode.UNEXPECTED_MESSAGE


def test_second_hello_closes_with_4001() -> None:
    pair = Pair()
    pair.client.send(Hello())
    pair.pump()
    assert pair.closed("server").code == CloseCode.UNEXPECTED_MESSAGE


def test_oversized_message_closes_with_1009() -> None:
    config = ConnectionConfig(websocket=WebSocketConfig(max_message_size=512))
    pair = Pair(config, client_config=CONFIG)  # the client allows more than the server
    with pytest.raises(LocalProtocolError):
        pair.server.send(Data(topic="t", payload=b"x" * 600))
    pair.client.send(Data(seq=1, payload=b"x" * 600))
    pair.pump()
    assert pair.closed("server").code == CloseCode.MESSAGE_TOO_BIG


def test_refuse_sends_goodbye_and_close_code() -> None:
    pair = Pair(welcome=False)
    pair.server.refuse(CloseCode.AUTH_FAILED, ErrorCode.AUTH_FAILED, "bad token", pair.now)
    pair.pump()
    closed = pair.closed("client")
    assert closed.code == CloseCode.AUTH_FAILED
    assert closed.goodbye == Goodbye(code=ErrorCode.AUTH_FAILED, reason="bad token")


def test_reject_handshake_reports_http_status() -> None:
    pair = Pair(accept=False)
    pair.server.reject_handshake(503, "full")
    pair.pump()
    failed = [e for e in pair.client_events if isinstance(e, HandshakeFailed)]
    assert failed[0].status == 503
    assert pair.client.state is ConnectionState.CLOSED
    assert pair.server.transport_should_close


def test_abort_drops_queue_but_sends_goodbye_and_close() -> None:
    pair = Pair()
    for i in range(5):
        pair.server.send(Data(topic="t", position=StreamPosition(1, i + 1), payload=b"q"))
    pair.server.abort(CloseCode.SLOW_CONSUMER, "too slow", pair.now)
    pair.pump()
    closed = pair.closed("client")
    assert closed.code == CloseCode.SLOW_CONSUMER
    assert closed.goodbye is not None
    assert closed.goodbye.code == ErrorCode.SLOW_CONSUMER
    assert not [e for e in pair.client_events if isinstance(e, EnvelopeReceived)]
    assert pair.closed("server").cause is None


def test_commands_in_wrong_state_raise_local_errors() -> None:
    pair = Pair(welcome=False)
    with pytest.raises(LocalProtocolError):
        pair.server.send(Ack(seq=1))
    with pytest.raises(LocalProtocolError):
        pair.server.accept_handshake()
    pair.server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), pair.now)
    with pytest.raises(LocalProtocolError):
        pair.server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), pair.now)
    with pytest.raises(LocalProtocolError):
        pair.server.send_raw(b"plain only")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        ConnectionConfig(heartbeat_interval=10, heartbeat_timeout=5)
    with pytest.raises(ValueError, match="allow_text"):
        ConnectionConfig(websocket=WebSocketConfig.plain())
    with pytest.raises(ValueError, match="close_timeout"):
        ConnectionConfig(close_timeout=float("nan"))


def test_plain_mode_echo() -> None:
    config = ConnectionConfig(websocket=WebSocketConfig.plain(), envelope=False,
                              heartbeat_interval=0)
    pair = Pair(config)
    assert pair.server.state is ConnectionState.OPEN
    pair.client.send_raw("héllo")
    pair.client.send_raw(b"\x00\x01")
    pair.pump()
    got = [e.data for e in pair.server_events if isinstance(e, RawMessage)]
    assert got == ["héllo", b"\x00\x01"]
    assert pair.server.next_deadline() is None


# ----------------------------------------------------------------------------- chunking


def _scripted_server_bytes() -> bytes:
    """Everything a client sends in one scripted session, as the server receives it."""
    fresh = ClientConnection(host="example.test", path="/ws", config=CONFIG, now=0.0)
    server = ServerConnection(CONFIG, now=0.0)
    wire = bytearray()
    out = b"".join(fresh.data_to_send())
    wire += out
    server.receive_data(out, 0.0)
    server.accept_handshake()
    fresh.receive_data(b"".join(server.data_to_send()), 0.0)
    hello = b"".join(fresh.data_to_send())
    wire += hello
    server.receive_data(hello, 0.0)
    server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), 0.0)
    fresh.receive_data(b"".join(server.data_to_send()), 0.0)
    for i in range(1, 6):
        fresh.send(Data(seq=i, topic="t", payload=bytes([i]) * (i * 300)))
    fresh.send(Subscribe(topic="room", request_id=3))
    fresh.close(now=0.0)
    wire += b"".join(fresh.data_to_send())
    return bytes(wire)


def _server_events_for(chunks: list[bytes]) -> list[object]:
    server = ServerConnection(CONFIG, now=0.0)
    events: list[object] = []
    for chunk in chunks:
        server.receive_data(chunk, 0.0)
        while batch := server.events_received():
            _convert(server, batch, events)
    return events


def _convert(server: ServerConnection, batch: list[AnyConnectionEvent],
             events: list[object]) -> None:
    for ev in batch:
        if isinstance(ev, HandshakeRequest):
            server.accept_handshake()
            events.append(("handshake", ev.path))
        elif isinstance(ev, HelloReceived):
            server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), 0.0)
            events.append(ev)
        elif isinstance(ev, EnvelopeReceived) and isinstance(ev.body, Data):
            events.append(("data", ev.body.seq, bytes(ev.body.payload)))
        else:
            events.append(ev)


WIRE = _scripted_server_bytes()
WHOLE = _server_events_for([WIRE])


def test_chunking_whole_stream_gives_the_expected_events() -> None:
    kinds = [type(e).__name__ if not isinstance(e, tuple) else e[0] for e in WHOLE]
    assert kinds == ["handshake", "HelloReceived", "data", "data", "data", "data", "data",
                     "EnvelopeReceived", "Closed"]


def test_chunking_byte_by_byte_gives_the_same_events() -> None:
    assert _server_events_for([WIRE[i:i + 1] for i in range(len(WIRE))]) == WHOLE


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(WIRE) - 1), max_size=40))
def test_chunking_random_splits_give_the_same_events(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(WIRE)]
    chunks = [WIRE[a:b] for a, b in itertools.pairwise(points)]
    assert _server_events_for(chunks) == WHOLE


def test_chunking_random_splits_seeded() -> None:
    rng = random.Random(4)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(WIRE)), 25))
        points = [0, *cuts, len(WIRE)]
        chunks = [WIRE[a:b] for a, b in itertools.pairwise(points)]
        assert _server_events_for(chunks) == WHOLE


def _unknown_envelope(body_type: int = 200) -> bytes:
    """A well-formed envelope whose body is a union member from a future version."""
    import flatbuffers

    builder = flatbuffers.Builder(64)
    builder.StartObject(1)
    builder.PrependUint32Slot(0, 7, 0)  # the future message has a field of its own
    body = builder.EndObject()
    builder.StartObject(2)
    builder.PrependUint8Slot(0, body_type, 0)
    builder.PrependUOffsetTRelativeSlot(1, body, 0)
    builder.Finish(builder.EndObject(), file_identifier=b"SGM1")
    return bytes(builder.Output())


def test_unknown_message_type_from_a_newer_peer_is_ignored() -> None:
    pair = Pair()
    pair.client._ws.send_message(_unknown_envelope())
    pair.client._pull_ws(priority=False)
    pair.client.send(Data(seq=1, payload=b"after"))
    pair.pump()
    assert pair.server.state is ConnectionState.OPEN
    assert pair.server.unknown_messages == 1
    bodies = [e.body for e in pair.server_events if isinstance(e, EnvelopeReceived)]
    assert [bytes(b.payload) for b in bodies if isinstance(b, Data)] == [b"after"]


# -- the transition table ----------------------------------------------------------------------


def _design_table_transitions() -> dict[str, set[str]]:
    """docs/design.md's Connection table: for each state, the states its "leaves on" column
    names after an arrow."""
    design = (Path(__file__).resolve().parent.parent / "docs" / "design.md").read_text()
    section = design.split("## Connection (`sigma_core/connection.py`)", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isupper():
            table[cells[0]] = set(re.findall(r"→ ([A-Z]+)", cells[2]))
    return table


def test_transition_table_is_the_one_in_the_design_doc() -> None:
    from sigma_core import connection

    code = {state.name: {t.name for t in targets}
            for state, targets in connection._TRANSITIONS.items()}
    assert set(code) == {s.name for s in ConnectionState}
    assert _design_table_transitions() == code


def test_a_state_change_outside_the_table_is_refused() -> None:
    conn = ServerConnection(now=0.0)
    assert conn.state is ConnectionState.HANDSHAKE
    with pytest.raises(AssertionError, match="HANDSHAKE -> CLOSING is not in _TRANSITIONS"):
        conn._enter(ConnectionState.CLOSING)
    assert conn.state is ConnectionState.HANDSHAKE


def test_direction_tables_are_message_classes() -> None:
    # Typed tables: a client may send these once OPEN, a server those (by class, not by name).
    from sigma_core import connection

    assert {Data, Ack, Subscribe, Unsubscribe, Error, Refresh} == connection._CLIENT_SENDS
    assert {Data, Ack, Subscribed, Unsubscribed, Presence, Error, Refreshed} == \
        connection._SERVER_SENDS


def test_every_message_type_has_a_direction() -> None:
    # A message type added to messages.Body must be placed: in a direction table, or among
    # the bodies the connection handles itself (handshake, heartbeats, goodbye).
    from sigma_core import connection

    handled = {Hello, Welcome, Ping, Pong, Goodbye}
    assert connection._CLIENT_SENDS | connection._SERVER_SENDS | handled \
        == set(typing.get_args(Body))


# ------------------------------------------- the server's Data read in the frame parser's pass
#
# Once OPEN, a server connection has its frame parser read a client's Data as it parses the
# frame (WebSocket.read_binary_with(codec.read_client_data)). The reference is the same
# connection with no fast path at all (_fast_data off: every message a MessageReceived, decoded
# by codec.decode in _on_envelope): same events, same bytes sent back, same close code, however
# the bytes are split.

_DIFF_CONFIG = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0,
                                handshake_timeout=3.0, close_timeout=2.0,
                                websocket=WebSocketConfig(max_message_size=4096))
_MASK = b"\x37\xfa\x21\x3d"


def _client_frame(payload: bytes, *, first: int = 0x82, masked: bool = True,
                  length: int | None = None, wide: int = 0) -> bytes:
    """A client frame built by hand: ``length`` overrides the announced length, ``wide`` forces
    a 16-bit (2) or 64-bit (8) length field, ``masked=False`` leaves out the mask."""
    n = len(payload) if length is None else length
    bit = 0x80 if masked else 0
    if wide == 8 or n > 0xFFFF:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    elif wide == 2 or n > 125:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | n))
    if not masked:
        return head + payload
    body = bytes(b ^ _MASK[i & 3] for i, b in enumerate(payload))
    return head + _MASK + body


def _opening() -> bytes:
    """A client's handshake and Hello, as the server receives them."""
    client = ClientConnection(host="example.test", path="/ws", config=_DIFF_CONFIG, now=0.0)
    server = ServerConnection(_DIFF_CONFIG, now=0.0)
    wire = b"".join(client.data_to_send())
    server.receive_data(wire, 0.0)
    server.accept_handshake()
    client.receive_data(b"".join(server.data_to_send()), 0.0)
    return wire + b"".join(client.data_to_send())


_OPENING = _opening()

_data_envelopes = st.builds(
    codec.encode_data, topic=st.sampled_from(["", "t", "room/1", "é"]),
    seq=st.integers(0, 2**64 - 1), timestamp_ms=st.sampled_from([0, 1, 2**64 - 1]),
    payload=st.binary(max_size=300))
_other_envelopes = st.sampled_from([
    codec.encode(Ping(id=1, timestamp_ms=2)),
    codec.encode(Subscribe(topic="room", request_id=3)),
    codec.encode(Ack(seq=1)),
    codec.encode(Data(seq=1, topic="t", payload=b"x", position=StreamPosition(1, 2))),
    codec.encode(Hello(protocol_version=1)),  # a second Hello: 4001
])
_frames = st.one_of(
    _data_envelopes.map(_client_frame),
    _other_envelopes.map(_client_frame),
    # A Data cut short (a truncated FlatBuffer: 4000), or with a byte flipped.
    st.tuples(_data_envelopes, st.integers(1, 60)).map(lambda t: _client_frame(t[0][:-t[1]])),
    st.tuples(_data_envelopes, st.integers(0, 80), st.integers(1, 255)).map(
        lambda t: _client_frame(t[0][:t[1] % len(t[0])] + bytes([t[0][t[1] % len(t[0])] ^ t[2]])
                                + t[0][t[1] % len(t[0]) + 1:])),
    _data_envelopes.map(lambda e: _client_frame(e, masked=False)),  # 1002
    _data_envelopes.map(lambda e: _client_frame(e, wide=8)),  # non-minimal length: 1002
    _data_envelopes.map(lambda e: _client_frame(e, length=5000)),  # oversize: 1009
    _data_envelopes.map(lambda e: _client_frame(e, first=0x02)  # fragmented: two frames
                        + _client_frame(b"", first=0x80)),
    _data_envelopes.map(lambda e: _client_frame(e, first=0x81)),  # text: 1003
    st.just(_client_frame(b"hi", first=0x89)),  # a ping
    st.just(_client_frame(b"\x03\xe8", first=0x88)),  # a close frame
)


def _run_server(chunks: list[bytes], *, reader: bool) -> tuple[list[object], bytes, object]:
    server = ServerConnection(_DIFF_CONFIG, now=0.0)
    if not reader:
        server._fast_data = False
    events: list[object] = []
    sent = bytearray()
    for chunk in chunks:
        server.receive_data(chunk, 1.0)
        while batch := server.events_received():
            for ev in batch:
                if isinstance(ev, HandshakeRequest):
                    server.accept_handshake()
                elif isinstance(ev, HelloReceived):
                    server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), 1.0)
                if isinstance(ev, EnvelopeReceived) and isinstance(ev.body, Data):
                    body = ev.body
                    events.append(("data", body.seq, body.topic, bytes(body.payload),
                                   body.timestamp_ms, body.position))
                elif isinstance(ev, Closed):
                    events.append(("closed", ev.code, ev.reason, ev.clean,
                                   type(ev.cause).__name__, str(ev.cause)))
                else:
                    events.append(ev)
        sent += b"".join(server.data_to_send())
    return events, bytes(sent), server.state


@settings(max_examples=120, deadline=None)
@given(frames=st.lists(_frames, min_size=1, max_size=6), cuts=st.lists(st.integers(1, 10**6),
                                                                         max_size=12))
def test_data_read_in_the_parser_equals_the_general_path(frames: list[bytes], cuts: list[int]
                                                         ) -> None:
    wire = _OPENING + b"".join(frames)
    points = [0, *sorted({c % len(wire) for c in cuts} - {0}), len(wire)]
    chunks = [wire[a:b] for a, b in itertools.pairwise(points)]
    reference = _run_server([wire], reader=False)
    assert _run_server([wire], reader=True) == reference
    # Split: the same as the general path split the same way. (Not always the same as the
    # whole stream: a text frame with invalid UTF-8 fails with 1007 when the bad byte is in the
    # frame's first piece, 1003 otherwise — the framer's documented order of checks.)
    assert _run_server(chunks, reader=True) == _run_server(chunks, reader=False)


def test_data_read_in_the_parser_at_every_byte_boundary() -> None:
    # Three Data (one per layout family), a Ping envelope, a truncated Data: split in two at
    # every byte, the events are those of the whole stream on the general path.
    frames = [
        _client_frame(codec.encode_data(seq=1, topic="t", payload=b"a" * 200)),
        _client_frame(codec.encode_data(seq=2, payload=b"b", timestamp_ms=7)),
        _client_frame(codec.encode(Ping(id=1, timestamp_ms=2))),
        _client_frame(codec.encode_data(seq=3, topic="room/1", payload=b"c" * 3)),
        _client_frame(codec.encode_data(seq=4, topic="t", payload=b"d" * 9)[:-6]),
    ]
    wire = _OPENING + b"".join(frames)
    reference = _run_server([wire], reader=False)
    events = reference[0]
    kinds = [e[0] if isinstance(e, tuple) else type(e).__name__ for e in events]
    assert kinds == ["HandshakeRequest", "HelloReceived", "data", "data", "data", "closed"]
    assert events[-1][1] == CloseCode.BAD_ENVELOPE  # type: ignore[index]
    for cut in range(len(_OPENING), len(wire)):
        chunks = [wire[:cut], wire[cut:]]
        assert _run_server(chunks, reader=True) == _run_server(chunks, reader=False)
        assert _run_server(chunks, reader=True)[0] == reference[0]


def test_the_parser_reads_data_once_open() -> None:
    # The fast path is in effect: the WebSocket layer hands on the DataFields tuple itself.
    server = ServerConnection(_DIFF_CONFIG, now=0.0)
    server.receive_data(_OPENING, 0.0)
    for _ in range(3):
        for ev in server.events_received():
            if isinstance(ev, HandshakeRequest):
                server.accept_handshake()
            elif isinstance(ev, HelloReceived):
                server.welcome(Welcome(session_id="s", resume_token=b"k" * 32), 0.0)
    assert server.state is ConnectionState.OPEN
    ws = server._ws
    ws.receive_data(_client_frame(codec.encode_data(seq=5, topic="t", payload=b"p")))
    events: list[object] = list(ws.events_received())
    assert events == [(5, "t", b"p", 0)]


def test_a_frame_in_two_pieces_is_the_frame_on_the_wire() -> None:
    """``send_frame_parts(header, envelope)`` (a hub's inbox message: the envelope is the object
    its history keeps) writes the bytes ``send_frame`` writes for the joined frame, in order
    with other output and heartbeats; as the only output it is one chunk (one plain write),
    behind other output two (one ``writelines``); the client reads the same messages; a
    message over the limit is refused alike."""
    from sigma_core._framer import server_binary_frame
    from sigma_core.codec._fast import encode_data_parts

    pairs = (Pair(), Pair())
    whole, parts = (pair.server for pair in pairs)
    sent: list[bytes] = []
    for i, size in enumerate((1000, 1000, 10, 70_000, 1000)):
        header, envelope = encode_data_parts(topic="$inbox", epoch=3, offset=i + 1,
                                             timestamp_ms=i, payload=bytes([i]) * size)
        assert whole.send_frame(header + envelope, len(envelope))
        assert parts.send_frame_parts(header, envelope)
        sent.append(envelope)
        if i == 0:
            assert parts.data_to_send() == whole.data_to_send() == [header + envelope]
        if i == 2:
            whole.send(Ack(seq=1))
            parts.send(Ack(seq=1))
    assert whole.buffered_amount == parts.buffered_amount
    chunks = parts.data_to_send()
    assert len(chunks) == 2 * 3 + 1 + 1  # the first piece joined, the Ack, two per message
    wire = b"".join(chunks)
    assert wire == b"".join(whole.data_to_send())
    ack = server_binary_frame(codec.encode(Ack(seq=1)))
    assert wire == b"".join(server_binary_frame(e) for e in sent[1:3]) + ack + b"".join(
        server_binary_frame(e) for e in sent[3:])
    small = Pair(ConnectionConfig(websocket=WebSocketConfig(max_message_size=150)))
    header, envelope = encode_data_parts(topic="$inbox", epoch=3, offset=1, timestamp_ms=0,
                                         payload=b"x" * 200)
    with pytest.raises(LocalProtocolError, match="max_message_size"):
        small.server.send_frame_parts(header, envelope)
    with pytest.raises(LocalProtocolError, match="max_message_size"):
        small.server.send_frame(header + envelope, len(envelope))
