"""Fuzz targets for the sans-IO core: each takes ``data: bytes`` and enforces the fuzz contract.

The contract (docs: ``/work/shared/STYLE.md``, "Fuzz contract"): any input is either accepted or
rejected with a documented error; anything else is a bug. Each target catches exactly the
errors its API documents for bad input and lets everything else escape: an exception out of a
target (including a failed ``assert`` on an invariant) is a *finding*.

The targets need no fuzzing engine. ``fuzz/atheris_main.py`` runs them under atheris
(libFuzzer); ``tests/test_fuzz_targets.py`` runs the committed seeds and a bounded hypothesis
search over them in CI. ``fuzz/make_seeds.py`` writes the seeds with the encoders at the end of
this module, so the input formats below are defined in one place.

Input formats
-------------
``codec``
    The whole input is one envelope.
``server_connection`` / ``client_connection``
    ``flags | n | size_1 .. size_n | stream``: the stream (what the peer sends) is fed in chunks
    of ``size_i + 1`` bytes (``n`` is taken mod 16), the rest as one last chunk. ``flags``:

    * bits 0-1: the :class:`ConnectionConfig` (``_CONFIGS``: default, small limits,
      permessage-deflate, default);
    * bit 2: server: reject the upgrade (403) instead of accepting it; client: a valid 101
      response, made by a real :class:`ServerConnection` from the client's own request, goes in
      front of the first chunk (so half the inputs get past the handshake to the framing and
      envelope layers);
    * bit 3: server: refuse the Hello instead of welcoming it; client (with bit 2): the 101 is
      fed alone, and the same real server's answer to the client's Hello, a Welcome, goes in
      front of the first chunk instead;
    * bit 4: the clock advances 1 s before each chunk, and timers run;
    * bit 5: end of stream after the last chunk;
    * bit 6: afterwards, jump to each next deadline (up to 6 times) and run the timers;
    * bit 7: close locally: the server after the first envelope, the client as soon as it is
      in HELLO (before the Welcome).
``hub`` / ``client_session``
    ``flags | op*``, a little script of operations; see :func:`hub` and :func:`client_session`
    for the op codes. Byte strings in ops are ``len (u16, big-endian) | bytes``.
"""

from __future__ import annotations

import math
import re
import traceback
import tracemalloc
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from sigma_core import codec as _codec
from sigma_core.backplane import HistoryLimits
from sigma_core.client import (
    BufferFullError,
    ClientConfig,
    ClientEvent,
    ClientSession,
    CloseTransport,
    ConnectionStatus,
    Disconnected,
    GaveUp,
    OpenTransport,
    Reconnecting,
    ReconnectPolicy,
    StatusChanged,
)
from sigma_core.connection import (
    AnyConnectionEvent,
    ClientConnection,
    Closed,
    Connection,
    ConnectionConfig,
    ConnectionState,
    EnvelopeReceived,
    HandshakeFailed,
    HandshakeRequest,
    HelloReceived,
    ServerConnection,
    Welcomed,
)
from sigma_core.entropy import SeededEntropy
from sigma_core.errors import (
    CloseCode,
    DecodeError,
    ErrorCode,
    RemoteProtocolError,
    UnknownMessageType,
)
from sigma_core.hub import (
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClientConnected,
    ClientDisconnected,
    ClientMessage,
    CloseAction,
    ConnectionRejected,
    Hub,
    HubConfig,
    HubEvent,
    Session,
)
from sigma_core.messages import (
    Ack,
    ClientInfo,
    Data,
    Error,
    Goodbye,
    Hello,
    Limits,
    Ping,
    Pong,
    Presence,
    RecoveryStatus,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from sigma_core.websocket import WebSocketConfig

__all__ = [
    "FINDINGS",
    "TARGETS",
    "ChunkedInput",
    "Finding",
    "Input",
    "ScriptBuilder",
    "client_connection",
    "client_session",
    "codec",
    "hub",
    "known_findings",
    "run_tolerating",
    "server_connection",
    "signature",
]


# ----------------------------------------------------------------------------- input reading


class Input:
    """Choices read from the front of the fuzz input; reads past the end give zeros/empty."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u16(self) -> int:
        return self.byte() << 8 | self.byte()

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def blob(self) -> bytes:
        """A length-prefixed byte string (u16 length, truncated at the end of the input)."""
        return self.take(self.u16())

    def rest(self) -> bytes:
        return self.take(self.remaining)


def _chunks(inp: Input) -> list[bytes]:
    sizes = [inp.byte() + 1 for _ in range(inp.byte() & 15)]
    stream = inp.rest()
    chunks = []
    at = 0
    for size in sizes:
        if at >= len(stream):
            break
        chunks.append(stream[at : at + size])
        at += size
    if at < len(stream):
        chunks.append(stream[at:])
    return chunks


# ----------------------------------------------------------------------------- configuration

_BASE = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0, handshake_timeout=3.0,
                         close_timeout=2.0)
_CONFIGS = (
    _BASE,
    replace(_BASE, websocket=WebSocketConfig(max_message_size=256, max_handshake_size=512)),
    replace(_BASE, websocket=WebSocketConfig(compression=True)),
    _BASE,
)

F_ALT_HANDSHAKE = 0x04  # server: reject; client: real 101 first
F_ALT_HELLO = 0x08  # server: refuse; client: real Welcome too
F_TICK = 0x10
F_EOF = 0x20
F_LATE = 0x40
F_CLOSE = 0x80

_CLIENT_SENDS = (Data, Ack, Subscribe, Unsubscribe, Error)
_SERVER_SENDS = (Data, Ack, Subscribed, Unsubscribed, Presence, Error)
_WELCOME = Welcome(
    session_id="s1",
    resume_token=b"k" * 32,
    recovery=(
        TopicRecovery(topic="room", status=RecoveryStatus.FAILED, position=StreamPosition(7, 3)),
    ),
    heartbeat_interval_ms=5000,
    heartbeat_timeout_ms=12000,
    limits=Limits(max_message_size=1 << 20, max_unacked=4, max_topics=8),
)
_HELLO = Hello(
    session_id="s0",
    resume_token=b"t" * 8,
    positions=(TopicPosition(topic="room", position=StreamPosition(7, 2)),),
    last_acked_seq=0,
    auth_token="secret",
    client=ClientInfo(name="fuzz", version="1", metadata={"k": "v"}),
)


# ----------------------------------------------------------------------------- amplification

# docs/hardening.md, "Cost model", in numbers: what the server-side targets (server_connection,
# hub) assert of every input. Output: at most OUTPUT_PER_INPUT_BYTE bytes per byte received,
# plus OUTPUT_PER_SOCKET per socket (the HTTP answer, the Welcome, a close frame) and
# OUTPUT_PER_TIMER per socket and timer run (a heartbeat Ping). Memory: what one call into
# the core allocates at its peak is at most ALLOC_PER_INPUT_BYTE per byte it was given, plus
# ALLOC_PER_MESSAGE x max_message_size (one message being collected or inflated), plus
# ALLOC_PER_CALL (the call's own bookkeeping).
OUTPUT_PER_INPUT_BYTE = 4
OUTPUT_PER_SOCKET = 4096
OUTPUT_PER_TIMER = 128
ALLOC_PER_INPUT_BYTE = 64
ALLOC_PER_MESSAGE = 4
ALLOC_PER_CALL = 256 * 1024


class _Allocations:
    """Peak traced allocation of single calls into the core (tracemalloc, started for the
    target's run if nothing traces already)."""

    def __init__(self, max_message_size: int) -> None:
        self.allowance = ALLOC_PER_MESSAGE * max_message_size + ALLOC_PER_CALL
        self._started = False

    def __enter__(self) -> _Allocations:
        if not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            tracemalloc.stop()

    def call(self, nbytes: int, fn: Callable[[], object], what: str) -> None:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        bound = ALLOC_PER_INPUT_BYTE * nbytes + self.allowance
        if peak > bound:
            raise Finding(f"{what}: {nbytes} bytes in, {peak} bytes allocated (bound {bound})",
                          key=f"amplification: memory ({what})")


def _check_output(what: str, out: int, fed: int, sockets: int, timer_runs: int) -> None:
    bound = (OUTPUT_PER_INPUT_BYTE * fed + OUTPUT_PER_SOCKET * sockets
             + OUTPUT_PER_TIMER * sockets * timer_runs)
    if out > bound:
        raise Finding(f"{what}: {fed} bytes in, {out} bytes out (bound {bound})",
                      key=f"amplification: output ({what})")


# ----------------------------------------------------------------------------- codec


def codec(data: bytes) -> None:
    """``decode`` returns a body or raises :class:`DecodeError`; a decoded body re-encodes to an
    envelope that decodes to an equal body; the ``Data``/``Ack`` fast paths agree with the
    generic reader, and the server's fast path for client ``Data`` (``read_client_data``)
    either defers (None) or gives what ``decode`` gives."""
    fields = _codec.read_client_data(data)
    try:
        body = _codec.decode(data)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
    if fields is not None:
        assert error is None, f"read_client_data accepted what decode refuses: {error}"
        assert isinstance(body, Data), f"read_client_data read a {type(body).__name__}"
        assert body.position is None, "read_client_data read a server's Data"
        expected = (body.seq, body.topic, bytes(body.payload), body.timestamp_ms)
        assert fields == expected, f"read_client_data disagrees: {fields!r} != {expected!r}"
    if error is not None:
        refused_by_reader = False
        try:
            _codec._decode_with_reader(data)
        except DecodeError:
            refused_by_reader = True
        unknown = isinstance(error, UnknownMessageType)
        assert refused_by_reader or unknown, f"decode() refused what the reader accepts: {error}"
        return
    assert isinstance(body, _BODY_TYPES), f"decode() returned {type(body).__name__}"
    # Amplification: what decoding allocates grows with the input, never past it. Every
    # vector element is a table of its own (12 bytes or more on the wire), strings count
    # their bytes once.
    elements = _decoded_elements(body)
    assert elements * 12 <= len(data), f"{elements} elements from {len(data)} bytes"
    reference = _codec._decode_with_reader(data)
    assert reference == body, f"fast path and reader disagree: {body!r} != {reference!r}"
    again = _codec.decode(_codec.encode(body))
    assert again == body, f"round trip changed the body: {body!r} -> {again!r}"


def _decoded_elements(body: object) -> int:
    """Vector elements of a decoded body (positions, recovery records, metadata entries)."""
    count = 0
    for name in ("positions", "recovery"):
        value = getattr(body, name, None)
        if isinstance(value, tuple):
            count += len(value)
    client = getattr(body, "client", None)
    if client is not None:
        count += len(client.metadata)
    metadata = getattr(body, "metadata", None)
    if isinstance(metadata, dict):
        count += len(metadata)
    return count


_BODY_TYPES = (Hello, Welcome, Data, Ack, Ping, Pong, Subscribe, Unsubscribe, Subscribed,
               Unsubscribed, Presence, Error, Goodbye)


# ----------------------------------------------------------------------------- connections


class _Watch:
    """Drains a connection after every input and checks the invariants of its outputs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.closed = False
        self.quiet = False  # Closed was seen and the bytes after it were drained

    def drain(self) -> tuple[list[AnyConnectionEvent], bytes]:
        conn = self.conn
        events = conn.events_received()
        assert isinstance(events, list), f"events_received() returned {type(events).__name__}"
        for event in events:
            assert not self.closed, f"{event!r} after Closed"
            if isinstance(event, Closed):
                self.closed = True
                _check_closed(event)
        out = conn.data_to_send()
        assert isinstance(out, list), f"data_to_send() returned {type(out).__name__}"
        for chunk in out:
            assert type(chunk) is bytes, f"data_to_send() gave {type(chunk).__name__}"
        assert not (self.quiet and out), f"bytes queued after Closed: {out!r}"
        self.quiet = self.closed
        self._check_state()
        return events, b"".join(out)

    def _check_state(self) -> None:
        conn = self.conn
        if conn.pending_events:
            return  # data_to_send() acted on a held close: its Closed comes with the next drain
        state = conn.state
        assert (state is ConnectionState.CLOSED) == self.closed, (
            f"state {state.name} but Closed {'was' if self.closed else 'was not'} emitted"
        )
        deadline = conn.next_deadline()
        if self.closed:
            assert conn.transport_should_close, "Closed but transport_should_close is False"
            assert deadline is None, f"Closed but next_deadline() is {deadline}"
        else:
            # Every live state has a timer (handshake, heartbeat or close timeout): a
            # connection without one could wait forever on a silent peer.
            assert deadline is not None, f"state {state.name} without a deadline"
            assert math.isfinite(deadline), f"state {state.name}: deadline {deadline}"
        assert conn.buffered_amount >= 0


def _check_closed(event: Closed) -> None:
    assert isinstance(event.code, int), event
    assert isinstance(event.reason, str), event
    assert event.cause is None or isinstance(event.cause, RemoteProtocolError), event
    assert event.goodbye is None or isinstance(event.goodbye, Goodbye), event


class _Driver:
    """Feeds chunks and timers to one connection; subclasses answer its events."""

    def __init__(self, conn: Connection, flags: int) -> None:
        self.conn = conn
        self.flags = flags
        self.watch = _Watch(conn)
        self.now = 0.0
        self.sent = bytearray()  # everything the connection wrote
        self.log: list[tuple[object, ...]] = []  # what it emitted, for the chunking check
        self.fed = 0  # bytes received
        self.timer_runs = 0
        #: Set to check each receive's peak allocation (the server target does).
        self.allocations: _Allocations | None = None

    def settle(self) -> None:
        for _ in range(16):
            events, out = self.watch.drain()
            self.sent += out
            if not events:
                return
            for event in events:
                self.log.append(_summary(event))
                self.on_event(event)
        raise AssertionError("events keep coming after 16 rounds")

    def on_event(self, event: AnyConnectionEvent) -> None:
        raise NotImplementedError

    def feed(self, chunk: bytes | None) -> None:
        if self.flags & F_TICK:
            self.now += 1.0
            self.timer_runs += 1
            self.conn.handle_timer(self.now)
            self.settle()
        self.fed += len(chunk or b"")
        allocations = self.allocations
        if allocations is None:
            self.conn.receive_data(chunk, self.now)
            self.settle()
        else:
            allocations.call(len(chunk or b""), lambda: self._receive(chunk), "receive_data")

    def _receive(self, chunk: bytes | None) -> None:
        self.conn.receive_data(chunk, self.now)
        self.settle()

    def finish(self) -> None:
        if self.flags & F_EOF:
            self.feed(None)
        if self.flags & F_LATE:
            for _ in range(6):
                deadline = self.conn.next_deadline()
                if deadline is None:
                    break
                self.now = max(self.now, deadline)
                self.timer_runs += 1
                self.conn.handle_timer(self.now)
                self.settle()
        # Closed is final: nothing more comes out, whatever arrives.
        if self.watch.closed:
            self.conn.receive_data(b"\x88\x00late", self.now + 1)
            self.conn.handle_timer(self.now + 1000)
            self.settle()


class _ServerDriver(_Driver):
    conn: ServerConnection

    def __init__(self, conn: ServerConnection, flags: int) -> None:
        super().__init__(conn, flags)
        self.requests = 0
        self.hellos = 0
        self.offset = 0

    def on_event(self, event: AnyConnectionEvent) -> None:
        conn = self.conn
        if isinstance(event, HandshakeRequest):
            self.requests += 1
            assert self.requests == 1, "a second HandshakeRequest"
            assert conn.state is ConnectionState.HANDSHAKE, f"HandshakeRequest in {conn.state}"
            if self.flags & F_ALT_HANDSHAKE:
                conn.reject_handshake(403, "forbidden")
            else:
                conn.accept_handshake()
        elif isinstance(event, HelloReceived):
            self.hellos += 1
            assert self.hellos == 1, "a second HelloReceived"
            assert conn.state is ConnectionState.HELLO, f"HelloReceived in {conn.state}"
            if self.flags & F_ALT_HELLO:
                conn.refuse(CloseCode.AUTH_FAILED, ErrorCode.AUTH_FAILED, "refused", self.now)
            else:
                conn.welcome(_WELCOME, self.now)
        elif isinstance(event, EnvelopeReceived):
            assert isinstance(event.body, _CLIENT_SENDS), f"server surfaced {event.body!r}"
            if conn.state is ConnectionState.OPEN:
                self.offset += 1
                conn.send(Data(topic="room", position=StreamPosition(7, self.offset),
                               payload=b"echo"))
                if self.flags & F_CLOSE:
                    conn.close(goodbye=Goodbye(code=ErrorCode.NORMAL), now=self.now)
        else:
            assert isinstance(event, HandshakeFailed | Closed), f"unexpected event {event!r}"


def server_connection(data: bytes) -> None:
    """A :class:`ServerConnection` fed ``data`` as the client's bytes (see the module doc)."""
    inp = Input(data)
    flags = inp.byte()
    chunks = _chunks(inp)
    log = _run_server(flags, chunks)
    if len(chunks) > 1 and not flags & (F_TICK | F_CLOSE):
        # The reference: the HTTP head alone (bytes pipelined behind it before accept() are
        # bounded separately, by design), then everything else at once.
        stream = b"".join(chunks)
        head = _HEAD_END.search(stream)
        cut = head.end() if head is not None else len(stream)
        _check_chunking(_run_server(flags, [stream[:cut], stream[cut:]]), log)


def _run_server(flags: int, chunks: list[bytes]) -> list[tuple[object, ...]]:
    config = _CONFIGS[flags & 3]
    driver = _ServerDriver(ServerConnection(config, now=0.0), flags)
    driver.settle()
    with _Allocations(config.websocket.max_message_size) as allocations:
        driver.allocations = allocations
        for chunk in chunks:
            if chunk:
                driver.feed(chunk)
        driver.finish()
    # Amplification: what the server wrote (its answers and this driver's one echo per
    # envelope) against what it was sent.
    _check_output("server connection", len(driver.sent), driver.fed, 1, driver.timer_runs + 2)
    return driver.log


_HEAD_END = re.compile(rb"\n\r?\n")


class Finding(AssertionError):
    """A broken invariant that :func:`signature` should name by ``key`` (not by where it was
    detected), so that distinct bugs found by the same check stay distinct."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def _summary(event: AnyConnectionEvent) -> tuple[object, ...]:
    """What must not depend on how the bytes were chunked. Not reasons (they count bytes), and
    not which rule a peer that broke several was failed for: that depends on how much of its
    bytes had arrived (invalid UTF-8 in a text frame is 1007 when seen whole, 1003 when its
    first piece is valid; an overlong, malformed status line 1002 or 1009). That it was failed
    is compared, and everything delivered before."""
    if isinstance(event, Closed):
        if event.cause is not None:
            return ("Closed", "peer failed", event.clean, event.initiated_locally, event.goodbye)
        return ("Closed", event.code, event.clean, event.initiated_locally, event.goodbye)
    if isinstance(event, HandshakeFailed):
        return ("HandshakeFailed", event.status)
    if isinstance(event, HandshakeRequest):
        return ("HandshakeRequest", event.path, event.subprotocols, event.headers)
    if isinstance(event, HelloReceived):
        return ("HelloReceived", event.hello)
    if isinstance(event, Welcomed):
        return ("Welcomed", event.welcome)
    if isinstance(event, EnvelopeReceived):
        return ("EnvelopeReceived", event.body)
    return (type(event).__name__,)


def _kind(summary: tuple[object, ...] | None) -> str:
    if summary is None:
        return "nothing"
    if summary[0] == "Closed":
        return f"Closed({summary[1]})"
    if summary[0] == "EnvelopeReceived":
        return f"EnvelopeReceived({type(summary[1]).__name__})"
    return str(summary[0])


def _check_chunking(reference: list[tuple[object, ...]], got: list[tuple[object, ...]]) -> None:
    """Chunking invariance (STYLE.md): the same bytes give the same events however split."""
    if any(s[0] == "HandshakeFailed" for s in (*reference, *got)):
        return  # rejections answer the first bad byte they see; the pending bound differs
    if reference == got:
        return
    at = next((i for i, (a, b) in enumerate(zip(reference, got, strict=False)) if a != b),
              min(len(reference), len(got)))
    want = reference[at] if at < len(reference) else None
    have = got[at] if at < len(got) else None
    raise Finding(f"chunking changed event {at}: {want!r} became {have!r}",
                  key=f"chunking: {_kind(want)} became {_kind(have)}")


class _ClientDriver(_Driver):
    conn: ClientConnection

    def __init__(self, conn: ClientConnection, flags: int) -> None:
        super().__init__(conn, flags)
        self.welcomed = False
        self.closing = False

    def on_event(self, event: AnyConnectionEvent) -> None:
        conn = self.conn
        if isinstance(event, Welcomed):
            assert not self.welcomed, "a second Welcomed"
            self.welcomed = True
            # Events are eager: a close in the same chunk may already have ended it.
            if conn.state is ConnectionState.OPEN:
                conn.send(Data(topic="room", seq=1, payload=b"hi"))
                conn.send(Subscribe(topic="room", request_id=1))
        elif isinstance(event, EnvelopeReceived):
            body = event.body
            assert isinstance(body, _SERVER_SENDS), f"client surfaced {body!r}"
            if conn.state is ConnectionState.OPEN and isinstance(body, Data) \
                    and body.position is not None:
                conn.send(Ack(positions=(TopicPosition(topic=body.topic,
                                                       position=body.position),)))
        else:
            assert isinstance(event, HandshakeFailed | Closed), f"unexpected event {event!r}"

    def settle(self) -> None:
        super().settle()
        if self.flags & F_CLOSE and not self.closing and self.conn.state is ConnectionState.HELLO:
            self.closing = True
            self.conn.close(CloseCode.GOING_AWAY, "bye", now=self.now)
            super().settle()


def _real_server_reply(
    driver: _ClientDriver, config: ConnectionConfig, *, welcome: bool
) -> bytes:
    """A real server answers the client's request: returns its 101, or (``welcome``) feeds
    the 101, lets the client send its Hello and returns the server's Welcome. The caller puts
    the returned bytes in front of the first chunk: in the same read as what follows."""
    server = ServerConnection(config, now=0.0)
    server.receive_data(bytes(driver.sent), 0.0)
    if not any(isinstance(e, HandshakeRequest) for e in server.events_received()):
        raise AssertionError("a real server did not take the client's upgrade request")
    server.accept_handshake()
    response = b"".join(server.data_to_send())
    if not welcome:
        return response
    mark = len(driver.sent)
    driver.conn.receive_data(response, driver.now)
    driver.settle()
    server.receive_data(bytes(driver.sent[mark:]), 0.0)
    if not any(isinstance(e, HelloReceived) for e in server.events_received()):
        return b""
    server.welcome(_WELCOME, 0.0)
    return b"".join(server.data_to_send())


def client_connection(data: bytes) -> None:
    """A :class:`ClientConnection` fed ``data`` as the server's bytes (see the module doc)."""
    inp = Input(data)
    flags = inp.byte()
    chunks = _chunks(inp)
    log = _run_client(flags, chunks)
    if len(chunks) > 1 and not flags & (F_TICK | F_CLOSE):
        _check_chunking(_run_client(flags, [b"".join(chunks)]), log)


def _run_client(flags: int, chunks: list[bytes]) -> list[tuple[object, ...]]:
    config = _CONFIGS[flags & 3]
    conn = ClientConnection(host="example.test", path="/ws", hello=_HELLO, config=config,
                            now=0.0)
    driver = _ClientDriver(conn, flags)
    driver.settle()
    if flags & F_ALT_HANDSHAKE:
        reply = _real_server_reply(driver, config, welcome=bool(flags & F_ALT_HELLO))
        chunks = [reply + chunks[0], *chunks[1:]] if chunks else [reply]
    for chunk in chunks:
        if chunk:
            driver.feed(chunk)
    driver.finish()
    return driver.log


# ----------------------------------------------------------------------------- hub

#: Origin sent by the seeds' clients (config 1 allows only it).
ORIGIN = "https://app.example"


def _auth(request: AuthRequest) -> AuthAccept | AuthRefuse:
    token = request.hello.auth_token
    if token == "deny":
        return AuthRefuse(message="denied")
    if token == "boom":
        raise RuntimeError("the app's hook failed")  # contained by the hub (HookFailed)
    return AuthAccept(identity=token, metadata={"path": request.path})


def _authorize_subscribe(session: Session, topic: str) -> bool:
    if topic == "boom":
        raise RuntimeError("the app's hook failed")
    return topic != "secret"


_HUB_CONFIGS = (
    HubConfig(
        connection=_CONFIGS[0],
        history=HistoryLimits(max_count=8, max_bytes=2048, max_age=60.0),
        session_ttl=30.0,
        max_topics_per_session=3,
        ack_every=3,
        trim_interval=10.0,
    ),
    HubConfig(
        # Small, but large enough for the hub's own Welcome (~300 bytes with three topics).
        connection=replace(_BASE, websocket=WebSocketConfig(max_message_size=512,
                                                            max_handshake_size=512)),
        history=HistoryLimits(max_count=2, max_bytes=300, max_age=5.0),
        session_ttl=5.0,
        max_connections=1,
        max_sessions=1,
        max_topics_per_session=1,
        max_topic_length=8,
        max_unacked=2,
        outgoing_high_water=256,
        ack_every=1,
        presence_notifications=True,
        authenticate=_auth,
        allowed_origins=(ORIGIN,),
        trim_interval=1.0,
    ),
    HubConfig(
        connection=_CONFIGS[2],
        session_ttl=30.0,
        presence_notifications=True,
        authenticate=_auth,
        authorize_subscribe=_authorize_subscribe,
        trim_interval=0.0,
    ),
    HubConfig(connection=_CONFIGS[0], history=HistoryLimits(max_count=0, max_bytes=0,
                                                             max_age=0.0)),
)

# hub op codes: op = kind << 1 | slot (kinds 0-3 all feed bytes, the common case)
HUB_RECEIVE = 0
HUB_TICK = 4  # + byte: the clock advances byte / 10 s
HUB_DEADLINE = 5  # the clock jumps to next_deadline()
HUB_APP = 6  # + byte: an application command (see _hub_app)
HUB_SOCKET = 7  # op >> 4: 0 pause, 1 resume, 2 connection lost (a new socket takes the slot)


@dataclass
class _HubState:
    hub: Hub
    config: HubConfig
    #: The socket in each of the two slots; None until something arrives on it.
    slots: list[int | None] = field(default_factory=lambda: [None, None])
    live: set[int] = field(default_factory=set)
    opened: int = 0
    now: float = 0.0
    received: int = 0
    flushed: int = 0
    #: Bytes fed to receive_data, timer runs, and whether the application did anything (its
    #: publishes are not the client's cost: output is bounded only without them).
    fed: int = 0
    timer_runs: int = 0
    app: bool = False

    def socket(self, slot: int) -> int:
        """The slot's socket, accepted now if the slot is empty."""
        conn_id = self.slots[slot]
        if conn_id is None:
            conn_id = self.hub.open_connection(self.now)
            assert conn_id not in self.live, f"conn_id {conn_id} reused"
            self.live.add(conn_id)
            self.opened += 1
            self.slots[slot] = conn_id
        return conn_id

    def lost(self, conn_id: int) -> None:
        """The adapter closed the socket (or saw it close) and tells the hub."""
        self.hub.connection_lost(conn_id, self.now)
        self.live.discard(conn_id)
        if conn_id in self.slots:
            self.slots[self.slots.index(conn_id)] = None


class _HubWatch:
    def __init__(self) -> None:
        self.terminal: set[int] = set()
        self.connected: set[int] = set()
        self.seq: dict[Session, int] = {}

    def check(self, events: Iterable[HubEvent], state: _HubState) -> None:
        for event in events:
            if isinstance(event, ClientConnected):
                assert event.conn_id not in self.connected, f"two ClientConnected: {event}"
                assert event.conn_id not in self.terminal, f"ClientConnected after end: {event}"
                self.connected.add(event.conn_id)
            elif isinstance(event, ClientDisconnected | ConnectionRejected):
                assert event.conn_id not in self.terminal, f"a connection ended twice: {event}"
                self.terminal.add(event.conn_id)
                if isinstance(event, ClientDisconnected):
                    assert event.conn_id in self.connected, f"{event} without ClientConnected"
                else:
                    assert event.conn_id not in self.connected, f"{event} after ClientConnected"
            elif isinstance(event, ClientMessage):
                state.received += 1
                expected = self.seq.get(event.session, 0) + 1
                assert event.seq == expected, f"seq {event.seq} delivered, expected {expected}"
                self.seq[event.session] = event.seq
                assert type(event.payload) is bytes


def _hub_flush(state: _HubState) -> None:
    out = state.hub.flush(state.now)
    assert isinstance(out, list)
    seen: set[int] = set()
    for conn_id, chunks, action in out:
        assert conn_id in state.live, f"flush() for unknown or lost conn_id {conn_id}"
        assert conn_id not in seen, f"flush() lists conn_id {conn_id} twice"
        seen.add(conn_id)
        assert isinstance(chunks, list)
        for chunk in chunks:
            assert type(chunk) is bytes, f"flush() gave {type(chunk).__name__}"
            state.flushed += len(chunk)
        assert isinstance(action, CloseAction), f"flush() gave action {action!r}"
        if action:
            state.lost(conn_id)  # what an adapter does: write, close the socket, report it


def _hub_check_stats(state: _HubState) -> None:
    hub = state.hub
    stats = hub.stats(state.now)
    connected = hub.connected_sessions()
    assert stats.connected_clients == len(connected)
    assert stats.connected_clients <= hub.connection_count(), stats
    assert hub.connection_count() == len(state.live), (hub.connection_count(), state.live)
    assert stats.sessions == len(hub.sessions) >= stats.connected_clients
    assert stats.total_connections == state.opened
    assert stats.messages_received == state.received, (stats, state.received)
    assert stats.bytes_sent == state.flushed, (stats.bytes_sent, state.flushed)
    assert stats.uptime >= 0
    assert stats.average_latency >= 0
    for session in connected:
        assert session.conn_id in state.live, f"{session} on a lost connection"
    deadline = hub.next_deadline()
    assert deadline is None or not math.isnan(deadline)


def _hub_app(state: _HubState, choice: int) -> None:
    hub, now = state.hub, state.now
    sessions = list(hub.sessions.values())
    session = sessions[(choice >> 3) % len(sessions)] if sessions else None
    kind = choice & 7
    if kind == 0:
        hub.publish("room", b"pub" * (choice >> 3), now)
    elif kind == 1:
        hub.broadcast(b"all", now, exclude=[session.id] if session else ())
    elif kind == 2 and session is not None:
        hub.send_to(session.id, b"inbox", now)
    elif kind == 3 and session is not None:
        if "news" in session.subscriptions:
            hub.unsubscribe(session.id, "news", now)
        elif len(session.subscriptions) - 2 < state.config.max_topics_per_session:
            hub.subscribe(session.id, "news", now)
    elif kind == 4 and session is not None:
        hub.disconnect(session.id, now, reason="bye", end_session=bool(choice & 8))
    elif kind == 5:
        hub.send_where(lambda s: s.identity != "x", b"where", now)
    elif kind == 6:
        hub.shutdown(now, reconnect_after_ms=choice)
    else:
        hub.publish("news", b"n", now)


def hub(data: bytes) -> None:
    """A :class:`Hub` with two socket slots, driven by a script: ``flags | op*``.

    ``flags & 3`` picks the :class:`HubConfig`. Each op byte: ``slot = op & 1``,
    ``kind = (op >> 1) & 7``; kinds 0-3 feed a length-prefixed chunk to the slot's socket
    (:meth:`Hub.receive_data`), 4 advances the clock by the next byte / 10 s and runs the
    timers, 5 jumps to :meth:`Hub.next_deadline`, 6 runs an application command chosen by the
    next byte, 7 pauses (``op >> 4 == 0``) or resumes (1) the slot's socket or loses it (2, 3).
    A slot's socket is accepted (:meth:`Hub.open_connection`) when an op first needs it, and
    again after it was lost. After every op the hub is flushed as an adapter would (closing,
    and reporting lost, the sockets it marks) and its outputs, events and stats are checked.
    """
    inp = Input(data)
    flags = inp.byte()
    config = _HUB_CONFIGS[flags & 3]
    state = _HubState(Hub(config, entropy=SeededEntropy(7), now=0.0), config)
    with _Allocations(config.connection.websocket.max_message_size) as allocations:
        _run_hub(inp, state, allocations)
    if not state.app:
        _check_output("hub", state.flushed, state.fed, max(state.opened, 1),
                      state.timer_runs + 2)


def _run_hub(inp: Input, state: _HubState, allocations: _Allocations) -> None:
    watch = _HubWatch()
    hub = state.hub
    while inp.remaining:
        op = inp.byte()
        slot = op & 1
        kind = (op >> 1) & 7
        if kind <= 3:
            chunk = inp.blob()
            conn_id = state.socket(slot)
            state.fed += len(chunk)

            def receive(conn_id: int = conn_id, chunk: bytes = chunk) -> None:
                hub.receive_data(conn_id, chunk, state.now)

            allocations.call(len(chunk), receive, "hub.receive_data")
        elif kind == HUB_TICK:
            state.now += inp.byte() / 10
            state.timer_runs += 1
            hub.handle_timer(state.now)
        elif kind == HUB_DEADLINE:
            deadline = hub.next_deadline()
            if deadline is not None:
                state.now = max(state.now, deadline)
            state.timer_runs += 1
            hub.handle_timer(state.now)
        elif kind == HUB_APP:
            state.app = True
            _hub_app(state, inp.byte())
        else:
            conn_id = state.socket(slot)
            action = (op >> 4) & 3
            if action == 0:
                hub.pause_writing(conn_id)
            elif action == 1:
                hub.resume_writing(conn_id)
            else:
                state.lost(conn_id)
        watch.check(hub.events_received(), state)
        _hub_flush(state)
        watch.check(hub.events_received(), state)
        _hub_check_stats(state)


# ----------------------------------------------------------------------------- client session

# client session op codes: op & 7 is the kind, op >> 3 its argument
CS_OPENED = 0  # transport_opened(current attempt)
CS_RECEIVE = 1  # receive_data(current attempt, blob); arg & 1: quote the previous attempt
CS_CLOSED = 2  # transport_closed(current attempt)
CS_FAILED = 3  # transport_failed(current attempt)
CS_TICK = 4  # + byte: the clock advances byte / 10 s, timers run
CS_DEADLINE = 5  # the clock jumps to next_deadline()
CS_APP = 6  # arg: send, subscribe, unsubscribe, disconnect, connect
CS_SERVER = 7  # a real server answers the current attempt: 101 (arg & 1: and a Welcome;
#                arg & 2: resumed; arg & 4: its last reply goes with the next CS_RECEIVE)

_SESSION_CONFIG = ClientConfig(
    url="ws://example.test:8080/ws?room=1",
    reconnect=ReconnectPolicy(initial_delay=0.5, max_delay=4.0, max_attempts=4),
    connection=ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0,
                                handshake_timeout=3.0, close_timeout=2.0),
    max_pending=4,
    connect_timeout=5.0,
    auth_token="secret",
    client_info=ClientInfo(name="fuzz", version="1"),
)


class _SessionWatch:
    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.status = session.status
        self.attempt = 0
        self.attempts: list[int] = []
        self.sent = bytearray()  # bytes written on the current attempt's socket

    def drain(self) -> None:
        session = self.session
        for event in session.events_received():
            self.check(event)
        out = session.data_to_send()
        assert isinstance(out, list)
        for chunk in out:
            assert type(chunk) is bytes, f"data_to_send() gave {type(chunk).__name__}"
        self.sent += b"".join(out)
        assert self.status is session.status, (self.status, session.status)
        assert 0 <= session.pending_count <= session.config.max_pending
        deadline = session.next_deadline()
        assert deadline is None or math.isfinite(deadline), deadline
        if session.status in (ConnectionStatus.CONNECTING, ConnectionStatus.RECONNECTING,
                              ConnectionStatus.CONNECTED):
            # Wanting to be connected with nothing scheduled would wait forever.
            assert deadline is not None, f"{session.status} without a deadline"

    def check(self, event: ClientEvent) -> None:
        assert isinstance(event, ClientEvent), event
        if isinstance(event, StatusChanged):
            assert event.previous is self.status, (event, self.status)
            assert event.status is not event.previous, event
            self.status = event.status
        elif isinstance(event, OpenTransport):
            assert event.attempt > self.attempt, (event, self.attempt)
            self.attempt = event.attempt
            self.attempts.append(event.attempt)
            self.sent.clear()
        elif isinstance(event, CloseTransport):
            assert event.attempt <= self.attempt, (event, self.attempt)
        elif isinstance(event, Disconnected):
            assert event.cause is None or isinstance(event.cause, RemoteProtocolError), event
        elif isinstance(event, Reconnecting):
            assert event.delay >= 0, event
            assert math.isfinite(event.delay), event
        elif isinstance(event, GaveUp):
            assert self.session.status is ConnectionStatus.ERROR


def _session_server(watch: _SessionWatch, now: float, arg: int) -> bytes:
    """A real server answers what the client wrote on the current attempt: the 101, then
    (``arg & 1``) the Welcome (``arg & 2``: resumed). With ``arg & 4`` the last of it is not
    fed but returned, to go in the same read as the next ``CS_RECEIVE``."""
    session = watch.session
    server = ServerConnection(_SESSION_CONFIG.connection, now=now)
    server.receive_data(bytes(watch.sent), now)
    if not any(isinstance(e, HandshakeRequest) for e in server.events_received()):
        return b""  # nothing (or no valid request) written yet
    server.accept_handshake()
    mark = len(watch.sent)
    response = b"".join(server.data_to_send())
    if not arg & 1:
        if arg & 4:
            return response
        session.receive_data(watch.attempt, response, now)
        return b""
    session.receive_data(watch.attempt, response, now)
    watch.drain()
    server.receive_data(bytes(watch.sent[mark:]), now)
    if not any(isinstance(e, HelloReceived) for e in server.events_received()):
        return b""
    resumed = bool(arg & 2)
    server.welcome(Welcome(session_id="s1", resume_token=b"k" * 32, resumed=resumed,
                           last_received_seq=1 if resumed else 0,
                           recovery=_WELCOME.recovery, heartbeat_interval_ms=5000,
                           heartbeat_timeout_ms=12000, limits=_WELCOME.limits), now)
    welcome = b"".join(server.data_to_send())
    if arg & 4:
        return welcome
    session.receive_data(watch.attempt, welcome, now)
    return b""


def _session_app(session: ClientSession, arg: int, now: float) -> None:
    kind = arg & 7
    if kind == 0:
        with suppress(BufferFullError):  # documented: max_pending messages await acks
            session.send(b"m" * (arg >> 3), now, topic="room")
    elif kind == 1:
        session.subscribe("news", now)
    elif kind == 2:
        if "news" in session.subscriptions:
            session.unsubscribe("news", now)
    elif kind == 3:
        session.disconnect(now)
    else:
        session.connect(now)


def client_session(data: bytes) -> None:
    """A :class:`ClientSession` after ``connect()``, driven by a script: ``flags | op*``.

    Each op byte: ``kind = op & 7``, ``arg = op >> 3`` (see the ``CS_*`` constants). The
    adapter inputs always quote the attempt of the latest :class:`OpenTransport` (``CS_RECEIVE``
    with ``arg & 1`` quotes the one before, which must be ignored). ``flags & 1``: subscribe to
    a topic before connecting.
    """
    inp = Input(data)
    flags = inp.byte()
    session = ClientSession(_SESSION_CONFIG, entropy=SeededEntropy(3))
    watch = _SessionWatch(session)
    now = 0.0
    if flags & 1:
        session.subscribe("room", now)
    session.connect(now)
    watch.drain()
    held = b""  # a real server's last reply, for the next CS_RECEIVE's read
    while inp.remaining:
        op = inp.byte()
        kind, arg = op & 7, op >> 3
        attempt = watch.attempt
        if kind == CS_OPENED:
            session.transport_opened(attempt, now)
        elif kind == CS_RECEIVE:
            session.receive_data(attempt - (arg & 1), held + inp.blob(), now)
            held = b""
        elif kind == CS_CLOSED:
            session.transport_closed(attempt, now)
        elif kind == CS_FAILED:
            session.transport_failed(attempt, now, "refused")
        elif kind == CS_TICK:
            now += inp.byte() / 10
            session.handle_timer(now)
        elif kind == CS_DEADLINE:
            deadline = session.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
            session.handle_timer(now)
        elif kind == CS_APP:
            _session_app(session, arg, now)
        else:
            held = _session_server(watch, now, arg)
        watch.drain()


# ----------------------------------------------------------------------------- registry

TARGETS: dict[str, Callable[[bytes], None]] = {
    "codec": codec,
    "server_connection": server_connection,
    "client_connection": client_connection,
    "hub": hub,
    "client_session": client_session,
}


# ----------------------------------------------------------------------------- known findings

#: Reproducers of findings not fixed yet: ``fuzz/findings/<target>/<name>``.
FINDINGS = Path(__file__).resolve().parent / "findings"


def _core_module(filename: str) -> str | None:
    """``.../sigma_core/codec/_checks.py`` -> ``codec._checks``; None outside sigma_core."""
    parts = Path(filename).with_suffix("").parts
    if "sigma_core" not in parts:
        return None
    return ".".join(parts[len(parts) - parts[::-1].index("sigma_core"):])


def signature(exc: BaseException) -> str:
    """A name for the bug behind ``exc`` that does not depend on the input that found it: the
    exception type, where it was raised (the line too, in this file) and the chain of core
    functions it went through (names only, so that edits elsewhere in the core do not change
    it). A :class:`Finding` is named by its key."""
    if isinstance(exc, Finding):
        return exc.key
    frames = traceback.extract_tb(exc.__traceback__)
    core = [f"{module}.{f.name}" for f in frames
            if (module := _core_module(f.filename)) is not None]
    where = "?"
    if frames:
        last = frames[-1]
        where = f"{Path(last.filename).name}:{last.name}"
        if Path(last.filename).resolve() == Path(__file__).resolve():
            where += f":{last.lineno}"
    return f"{type(exc).__name__} at {where} via {' > '.join(core) or '-'}"


def known_findings(target: str) -> dict[str, Path]:
    """Signatures of the findings whose reproducers (``FINDINGS/<target>/*``) still fail."""
    known: dict[str, Path] = {}
    directory = FINDINGS / target
    if not directory.is_dir():
        return known
    for path in sorted(p for p in directory.iterdir() if p.is_file() and p.suffix != ".txt"):
        try:
            TARGETS[target](path.read_bytes())
        except Exception as exc:
            known.setdefault(signature(exc), path)
    return known


def run_tolerating(target: str, data: bytes, known: Iterable[str]) -> None:
    """Run ``target`` on ``data``; a finding already known by its signature is not raised."""
    try:
        TARGETS[target](data)
    except Exception as exc:
        if signature(exc) not in known:
            raise


# ----------------------------------------------------------------------------- encoders


class ChunkedInput:
    """Builds a ``server_connection`` / ``client_connection`` input."""

    @staticmethod
    def encode(stream: bytes, *, flags: int = 0, sizes: Iterable[int] = ()) -> bytes:
        sizes = list(sizes)
        if len(sizes) > 15 or not all(1 <= s <= 256 for s in sizes):
            raise ValueError("at most 15 chunk sizes, each 1..256")
        return bytes([flags, len(sizes), *(s - 1 for s in sizes)]) + stream


class ScriptBuilder:
    """Builds a ``hub`` / ``client_session`` script: ``flags`` then ops."""

    def __init__(self, flags: int = 0) -> None:
        self.data = bytearray([flags])

    def op(self, op: int, *args: int) -> ScriptBuilder:
        self.data += bytes([op, *args])
        return self

    def blob(self, op: int, payload: bytes) -> ScriptBuilder:
        for at in range(0, max(len(payload), 1), 0xFFFF):
            part = payload[at : at + 0xFFFF]
            self.data += bytes([op]) + len(part).to_bytes(2, "big") + part
        return self

    def build(self) -> bytes:
        return bytes(self.data)

