"""One SigmaSockets connection (one socket), client or server role, sans-IO.

Theory of operation
-------------------
A connection owns a :class:`~sigma_core.websocket.WebSocket` (RFC 6455 on wsproto) and speaks the
envelope protocol over its binary messages::

    HANDSHAKE --upgrade ok--> HELLO --Hello/Welcome--> OPEN --close()--> CLOSING --> CLOSED
        |                       |                        |                             ^
        +--- refused / timeout -+---- error / timeout ---+------ peer close, EOF, dead-+

* ``HANDSHAKE``: the HTTP upgrade. The server surfaces :class:`HandshakeRequest` so the layer above
  (the hub's limits and auth hook) calls :meth:`ServerConnection.accept_handshake` or
  :meth:`ServerConnection.reject_handshake`.
* ``HELLO``: the client sent ``Hello`` and waits for ``Welcome``; the server surfaced
  :class:`HelloReceived` and waits for :meth:`ServerConnection.welcome` (or ``refuse``).
* ``OPEN``: envelopes flow. Heartbeats run here: each side sends ``Ping`` every
  ``heartbeat_interval`` and answers ``Ping`` with ``Pong``; the RTT is measured on the pinger's own
  clock. *Any* received byte proves the peer alive, so a link busy with data is never declared
  dead; silence for ``heartbeat_timeout`` closes with 4003 (HEARTBEAT_TIMEOUT).
* ``CLOSING``: our close frame is out; the peer's reply (or ``close_timeout``) ends it.
* ``CLOSED``: terminal. :class:`Closed` was emitted exactly once.

Inputs are bytes (:meth:`Connection.receive_data`), commands, and timers
(:meth:`Connection.handle_timer`, due at :meth:`Connection.next_deadline`). Outputs are the
eager event list (:meth:`Connection.events_received`), :meth:`Connection.data_to_send` and the
explicit :attr:`Connection.transport_should_close`.

Two output queues. ``Ping`` and ``Pong`` are order-independent, so they go to a priority
queue that :meth:`data_to_send` drains before the ordered queue of everything else: a heartbeat
is never stuck behind a data backlog that the core still holds (an adapter only pulls data while
its transport is writable). :attr:`Connection.buffered_amount` is the size of the ordered queue,
which the hub compares with its high-water mark to find slow consumers.

After the handshake the receive path never raises for peer misbehaviour: it queues the right
close, records the cause, and emits :class:`Closed`.

Messages before the end. When one read holds whole messages followed by the peer's close frame
or by a frame that fails the connection, the WebSocket layer holds that end (see
:mod:`sigma_core.websocket`): :meth:`receive_data` surfaces the messages with the connection
still open, so the application can answer them. The next call into the connection after that
(:meth:`data_to_send`, :meth:`receive_data`, :meth:`handle_timer`, :meth:`close`, or an
:meth:`events_received` that finds nothing else) acts on it: the close frame goes out after the
answers, :class:`Closed` is emitted and :attr:`transport_should_close` is set. Drivers follow
``receive_data`` -> ``while events := events_received(): handle`` -> ``data_to_send`` (and
check :attr:`transport_should_close` after it). The result does not depend on how the bytes were
chunked. A connection failed by this layer (bad envelope, :meth:`abort`) drops a held end, which
came later in the stream.

Message mode: a server connection may sit on a :class:`~sigma_core.message_socket.MessageSocket`
instead of a framed WebSocket (``ServerConnection(config, now=..., transport=socket)``), for an
ASGI server that does the handshake and framing itself. Whole messages come in through
:meth:`Connection.receive_message` and the peer's close through :meth:`Connection.receive_close`;
:meth:`data_to_send` returns one payload per message (no frame headers, the queued objects
themselves) and the buffered amount counts them the same way. Everything above the WebSocket
layer (states, heartbeats, Hello/Welcome, limits, the hub) is unchanged.

Plain mode (``ConnectionConfig(envelope=False)``) is the same machine without the envelope layer:
``HANDSHAKE -> OPEN`` directly, whole WebSocket messages surface as :class:`RawMessage` and go out
with :meth:`Connection.send_raw`. The adapters' RFC 6455 echo servers run on it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, cast

from . import codec
from ._framer import server_binary_frame
from .codec._readers import _INBOX, read_client_data, read_client_frame, read_inbox_ack
from .errors import (
    CloseCode,
    DecodeError,
    ErrorCode,
    LocalProtocolError,
    RemoteProtocolError,
    UnknownMessageType,
)
from .message_socket import MessageSocket
from .messages import (
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
    TopicPosition,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from .metrics import Histogram
from .websocket import (
    Closed as WsClosed,
)
from .websocket import (
    HandshakeAccepted,
    HandshakeFailed,
    HandshakeRequest,
    HttpRequest,
    HttpResponse,
    MessageReceived,
    Role,
    WebSocket,
    WebSocketConfig,
    WebSocketEvent,
    WebSocketState,
)

__all__ = [
    "AnyConnectionEvent",
    "ClientConnection",
    "Closed",
    "Connection",
    "ConnectionConfig",
    "ConnectionEvent",
    "ConnectionState",
    "EnvelopeReceived",
    "HandshakeFailed",
    "HandshakeRequest",
    "HelloReceived",
    "HttpRequest",
    "HttpResponse",
    "RawMessage",
    "Role",
    "ServerConnection",
    "Welcomed",
    "fan_out",
]

SUBPROTOCOL = "sigma.v1"

_PRIORITY_TYPES = (Ping, Pong)


class ConnectionState(enum.Enum):
    HANDSHAKE = "handshake"
    HELLO = "hello"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# (Final: compiled, each is a C static; ``ConnectionState.OPEN`` is a module-dict lookup and an
# attribute read on every use.)
_HANDSHAKE: Final = ConnectionState.HANDSHAKE
_HELLO: Final = ConnectionState.HELLO
_OPEN: Final = ConnectionState.OPEN
_CLOSING: Final = ConnectionState.CLOSING
_CLOSED: Final = ConnectionState.CLOSED

#: Every state change a connection makes, in one place (h11's rule): the code changes state only
#: through ``Connection._enter``, which refuses a change this table does not list. The module
#: docstring's diagram and docs/design.md's table say the same (tests/test_connection.py checks
#: the table against docs/design.md and drives every state through the commands and inputs).
_TRANSITIONS: Final[dict[ConnectionState, frozenset[ConnectionState]]] = {
    # upgrade done (HELLO; OPEN at once in plain mode), refused, timed out or dropped
    _HANDSHAKE: frozenset({_HELLO, _OPEN, _CLOSED}),
    # Hello/Welcome done; close() or refuse() (CLOSING); error, timeout or EOF
    _HELLO: frozenset({_OPEN, _CLOSING, _CLOSED}),
    # close(); peer close, EOF, error, silence
    _OPEN: frozenset({_CLOSING, _CLOSED}),
    # the peer's close frame, EOF or close_timeout
    _CLOSING: frozenset({_CLOSED}),
    _CLOSED: frozenset(),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """Per-connection settings. Durations are seconds on the caller's clock.

    ``heartbeat_interval`` 0 disables pings (the peer's pings are still answered) and with it
    dead-peer detection. ``wall_clock_offset`` is added to ``now`` to stamp ``*_ms`` wire
    timestamps (adapters pass ``time.time() - time.monotonic()`` so ``now`` can stay monotonic).
    """

    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)
    envelope: bool = True
    heartbeat_interval: float = 25.0
    heartbeat_timeout: float = 60.0
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    wall_clock_offset: float = 0.0

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "heartbeat_timeout", "handshake_timeout",
                     "close_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ConnectionConfig.{name} must be a finite number >= 0, "
                                 f"got {value!r}")
        if self.heartbeat_interval and self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError("ConnectionConfig.heartbeat_timeout must exceed heartbeat_interval "
                             f"({self.heartbeat_timeout} <= {self.heartbeat_interval})")
        if self.envelope and self.websocket.allow_text:
            raise ValueError("the envelope protocol is binary: WebSocketConfig.allow_text must "
                             "be False when envelope=True")


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEvent:
    """Base of every event a connection emits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HelloReceived(ConnectionEvent):
    """Server: the client's ``Hello``. Answer with ``welcome()`` or ``refuse()``."""

    hello: Hello


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcomed(ConnectionEvent):
    """Client: the server's ``Welcome``; the connection is ``OPEN``."""

    welcome: Welcome


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeReceived(ConnectionEvent):
    """An envelope in the ``OPEN`` state (heartbeats and ``Goodbye`` are handled internally)."""

    body: Body


@dataclass(frozen=True, slots=True, kw_only=True)
class RawMessage(ConnectionEvent):
    """Plain mode: one whole WebSocket message."""

    data: bytes | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Closed(ConnectionEvent):
    """The connection is over; emitted exactly once.

    ``code``/``reason`` are the WebSocket close code and reason (sent by whoever closed first;
    1006 when the transport ended without one). ``cause`` is set when the peer misbehaved or
    went silent. ``goodbye`` is the peer's ``Goodbye`` if one arrived (it carries the
    reconnect hint).
    """

    code: int
    reason: str
    clean: bool
    initiated_locally: bool
    cause: RemoteProtocolError | None = None
    goodbye: Goodbye | None = None


# The hot path's way to build EnvelopeReceived(body=Data(...)) for a client's Data: bare objects,
# then their slots (the frozen dataclasses' keyword __init__ costs twice as much, and the codec
# has checked every value). EnvelopeReceived.__new__ is object.__new__ in Python; compiled by
# mypyc, the class's own (object.__new__ refuses a native class).
_new = object.__new__
_new_envelope_received = EnvelopeReceived.__new__
_set_body = vars(EnvelopeReceived)["body"].__set__
_set_seq = Data.__dict__["seq"].__set__
_set_topic = Data.__dict__["topic"].__set__
_set_payload = Data.__dict__["payload"].__set__
_set_timestamp = Data.__dict__["timestamp_ms"].__set__
_set_position = Data.__dict__["position"].__set__


def _data_received(seq: int, topic: str, payload: bytes, timestamp_ms: int) -> EnvelopeReceived:
    data = _new(Data)
    _set_seq(data, seq)
    _set_topic(data, topic)
    _set_payload(data, payload)
    _set_timestamp(data, timestamp_ms)
    _set_position(data, None)
    event = _new_envelope_received(EnvelopeReceived)
    _set_body(event, data)
    return event


#: What :meth:`Connection.events_received` returns: our events, plus the WebSocket layer's
#: handshake events passed through unchanged.
AnyConnectionEvent: TypeAlias = ConnectionEvent | HandshakeRequest | HandshakeFailed | HttpRequest

#: A client's ``Data`` read on the fast path, as ``codec.read_client_data`` returns it:
#: ``(seq, topic, payload, timestamp_ms)``. Queued as is among the events (no ``Data`` and no
#: ``EnvelopeReceived`` built per message); :meth:`Connection.events_received` turns it into
#: ``EnvelopeReceived(body=Data(...))``, the hub reads it directly (``_take_events``).
DataFields: TypeAlias = tuple[int, str, bytes, int]

#: A client's ``$inbox`` acknowledgement read on the fast path (``codec.read_inbox_ack``): the
#: position of its ``Ack(positions=(TopicPosition("$inbox", position),))``, queued as is among
#: the events (no ``Ack``, ``TopicPosition`` or ``EnvelopeReceived`` built);
#: :meth:`Connection.events_received` turns it into that event, the hub reads the position.
InboxAckPosition: TypeAlias = StreamPosition


_T = TypeVar("_T")


def _appended(queue: list[_T] | None, item: _T) -> list[_T]:
    """``queue`` with ``item`` added (a new list for a queue that was None: empty)."""
    if queue is None:
        return [item]
    queue.append(item)
    return queue


def _extended(queue: list[_T] | None, items: Sequence[_T]) -> list[_T]:
    if queue is None:
        return list(items)
    queue.extend(items)
    return queue


# ----------------------------------------------------------------------------- machine


class Connection:
    """What both roles share; use :class:`ServerConnection` or :class:`ClientConnection`."""

    role: ClassVar[Role]

    # Slotted like the WebSocket below it: a server holds one per socket, and a __dict__ per
    # connection would triple an idle connection's size in the pure-Python build (mypyc's
    # native classes have no __dict__ either way).
    __slots__ = ("_buffered", "_close_deadline", "_created", "_events", "_fast_data",
                 "_fast_frames", "_held", "_interval", "_last_received", "_max_message_size",
                 "_next_ping", "_ordered", "_paused", "_peer_goodbye", "_ping_id", "_priority",
                 "_priority_bytes", "_reading_paused", "_state", "_timeout", "_transport_close",
                 "_ws", "bytes_received", "config", "heartbeats_received", "heartbeats_sent",
                 "rtt", "rtt_samples", "unknown_messages")

    def __init__(self, ws: WebSocket, config: ConnectionConfig, now: float) -> None:
        self._ws = ws
        self.config = config
        self._state = _HANDSHAKE  # the initial state
        # The queues are None while empty (an idle connection keeps none: a list object is 56
        # bytes, and a server holds thousands of idle connections).
        self._events: list[AnyConnectionEvent | DataFields | InboxAckPosition] | None = None
        self._priority: list[bytes] | None = None
        self._ordered: list[bytes] | None = None
        self._buffered = 0
        self._priority_bytes = 0
        self._transport_close = False
        self._created = now
        self._last_received = now
        self._next_ping = math.inf
        self._ping_id = 0
        self._close_deadline = math.inf
        self._max_message_size = config.websocket.max_message_size
        self._interval = config.heartbeat_interval
        self._timeout = config.heartbeat_timeout
        #: The adapter stopped reading (its app is not taking messages): silence is ours.
        self._reading_paused = False
        self._peer_goodbye: Goodbye | None = None
        #: Smoothed heartbeat round-trip time in seconds (None until the first Pong).
        self.rtt: float | None = None
        #: Where each raw RTT sample is also counted (the hub's metrics), if anywhere.
        self.rtt_samples: Histogram | None = None
        #: Bytes received on the wire once open.
        self.bytes_received = 0
        #: Envelopes of a message type this version does not know, ignored.
        self.unknown_messages = 0
        #: Ping and Pong envelopes received (answered here; the hub rate-limits them).
        self.heartbeats_received = 0
        #: Ping and Pong envelopes sent (a client session charges them to its pacing).
        self.heartbeats_sent = 0
        self._fast_frames = False
        #: Server with envelopes: client Data may take the fast path (_process_ws_events).
        self._fast_data = False
        self._paused = False
        self._held: list[WebSocketEvent | DataFields] | None = None

    # -- properties

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def transport_should_close(self) -> bool:
        """True once the adapter should close the socket after flushing :meth:`data_to_send`."""
        return self._transport_close

    @property
    def buffered_amount(self) -> int:
        """Bytes queued and not yet taken by :meth:`data_to_send`: the ordered (data) queue,
        the priority queue (heartbeats) and the WebSocket layer's own replies (pongs to
        WebSocket pings) alike: everything a paused socket makes the core hold."""
        return self._buffered + self._priority_bytes

    @property
    def pending_events(self) -> bool:
        """Whether :meth:`events_received` has something to return (e.g. the ``Closed`` that
        :meth:`data_to_send` produced by acting on a held close)."""
        return self._events is not None

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    # -- outputs

    def events_received(self) -> list[AnyConnectionEvent]:
        """Drain and return the events produced since the last call.

        A call that finds nothing acts on the WebSocket's held end (see the module docstring), so
        ``while events := conn.events_received(): ...`` sees the ``Closed`` it causes."""
        events = self._take_events()
        for i, event in enumerate(events):
            if type(event) is tuple:
                # A client's Data from the fast path: the event it stands for.
                seq, topic, payload, timestamp_ms = cast(DataFields, event)
                events[i] = _data_received(seq, topic, payload, timestamp_ms)
            elif type(event) is StreamPosition:
                # A client's $inbox Ack from the fast path (InboxAckPosition).
                events[i] = EnvelopeReceived(body=Ack(positions=(
                    TopicPosition(topic=_INBOX, position=event),)))
        return events  # type: ignore[return-value]

    def _take_events(self) -> list[AnyConnectionEvent | DataFields | InboxAckPosition]:
        """:meth:`events_received` for the hub: a client's ``Data`` from the fast path comes as
        its :data:`DataFields` tuple, not as an event object built per message."""
        self._release_held()
        if self._events is None:
            self._settle_ws(self._last_received)
        events, self._events = self._events, None
        return events if events is not None else []

    def data_to_send(self) -> list[bytes]:
        """Drain the bytes to write: our heartbeats first, then everything else in order.

        Acts on the WebSocket's held end first: its close frame goes after what the application
        sent, and ``Closed`` / :attr:`transport_should_close` are set when this returns."""
        ws = self._ws
        # (The WebSocket's slots are read directly: this runs for every socket a broadcast
        # reaches, and mostly finds nothing held and nothing written by the WebSocket layer.)
        if self._held or ws._held_end is not None or ws._output:
            self._release_held()
            self._settle_ws(self._last_received)
            # What the WebSocket layer wrote on its own (a close reply, a pong to a WebSocket
            # ping) stays in order behind what was queued before it (RFC 6455 §5.5.1).
            self._pull_ws(priority=False)
        ordered = self._ordered
        out = self._priority
        if out is not None:
            self._priority = None
            self._priority_bytes = 0
            if ordered is not None:
                out += ordered
        elif ordered is not None:
            out = ordered  # handed over as is
        else:
            return []
        self._ordered = None
        self._buffered = 0
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called (None: no timer needed)."""
        if self._state is _CLOSED:
            return None
        if self._state is _CLOSING:
            return self._close_deadline
        if self._state is not _OPEN:
            return self._created + self.config.handshake_timeout
        if not self._interval:
            return None
        if self._reading_paused:
            return self._next_ping
        return min(self._next_ping, self._last_received + self._timeout)

    # -- inputs

    def receive_data(self, data: bytes | bytearray | memoryview | None, now: float) -> None:
        """Feed bytes from the transport; ``None`` means the transport reached EOF."""
        self._release_held()
        self._settle_ws(now)
        if self._state is _CLOSED:
            return
        if data:
            self._last_received = now
            if self._state is _OPEN:
                self.bytes_received += len(data)
        ws = self._ws
        ws.receive_data(data)
        if ws._output and self._state is not _HANDSHAKE:
            # Its replies (pongs to WebSocket pings) join the ordered queue now, counted in
            # buffered_amount, instead of piling up unseen while the socket is paused.
            self._pull_ws(priority=False)
        self._process_ws_events(ws.events_received(), now)

    def receive_message(self, data: bytes | str, now: float) -> None:
        """Message mode: one whole message from the transport (see the module docstring)."""
        ws = self._message_socket()
        self._release_held()
        self._settle_ws(now)
        if self._state is _CLOSED:
            return
        self._last_received = now
        if self._state is _OPEN:
            self.bytes_received += len(data)
        ws.receive_message(data)
        self._process_ws_events(ws.events_received(), now)

    def receive_close(self, code: int, reason: str, now: float) -> None:
        """Message mode: the peer closed with ``code`` (the transport ran the closing
        handshake)."""
        ws = self._message_socket()
        self._release_held()
        self._settle_ws(now)
        if self._state is _CLOSED:
            return
        if code in (CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE):
            # Not every server passes the peer's close code on (hypercorn reports 1006 for every
            # close it did not start, uvicorn 1005 for a dropped TCP connection): a peer that
            # said Goodbye first closed normally; otherwise the transport just ended (1006).
            if self._peer_goodbye is None:
                ws.receive_data(None)
                self._process_ws_events(ws.events_received(), now)
                return
            code = CloseCode.NORMAL_CLOSURE
        ws.receive_close(code, reason)
        self._process_ws_events(ws.events_received(), now)

    def _message_socket(self) -> MessageSocket:
        ws = self._ws
        if not isinstance(ws, MessageSocket):
            raise LocalProtocolError("receive_message()/receive_close() need a MessageSocket "
                                     "transport; feed bytes with receive_data()")
        return ws

    def handle_timer(self, now: float) -> None:
        """Run whatever timers are due at ``now`` (calling early or late is harmless)."""
        self._release_held()
        self._settle_ws(now)
        state = self._state
        if state is _CLOSED:
            return
        if state is _CLOSING:
            if now >= self._close_deadline:
                self._ws.abort()
                self._process_ws_events(self._ws.events_received(), now)
            return
        if state is not _OPEN:
            if now >= self._created + self.config.handshake_timeout:
                if state is _HANDSHAKE:
                    # No WebSocket yet to carry a close frame: a server answers a request begun
                    # and not finished with 408; a socket that never spoke is just dropped.
                    self._ws.expire_handshake("HTTP request not complete within the handshake "
                                              f"timeout ({self.config.handshake_timeout:g} s)")
                    self._pull_ws(priority=False)
                    self._process_ws_events(self._ws.events_received(), now)
                else:
                    self._fail(RemoteProtocolError("no Hello/Welcome within the handshake "
                                                   "timeout", code=CloseCode.HELLO_TIMEOUT), now)
            return
        interval = self._interval
        if not interval:
            return
        if now >= self._last_received + self._timeout and not self._reading_paused:
            self._fail(RemoteProtocolError(
                f"nothing received for {now - self._last_received:.1f} s (heartbeat timeout "
                f"{self._timeout:g} s)", code=CloseCode.HEARTBEAT_TIMEOUT), now)
            return
        if now >= self._next_ping:
            self._ping_id = (self._ping_id + 1) & 0xFFFFFFFF
            self._send_body(Ping(id=self._ping_id, timestamp_ms=self._wall_ms(now)))
            self._next_ping = now + interval

    # -- commands

    def set_reading_paused(self, paused: bool, now: float) -> None:
        """The adapter stopped (``True``) or resumed reading the socket, because its
        application is not taking messages (back-pressure). While paused the heartbeat timeout
        does not run: the peer's silence is ours. Pings still go out; on resuming, silence is
        counted from ``now``."""
        self._reading_paused = paused
        if not paused and now > self._last_received:
            self._last_received = now

    def send(self, body: Body) -> None:
        """Queue one envelope. Raises LocalProtocolError unless the connection is ``OPEN``."""
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send {type(body).__name__}: connection is "
                                     f"{self._state.value}")
        self._send_body(body)

    def send_encoded(self, envelope: bytes) -> None:
        """Queue an already encoded envelope (a broadcast is encoded once for all recipients)."""
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send: connection is {self._state.value}")
        self._send_envelope_bytes(envelope)

    def send_frame(self, frame: bytes, payload_size: int) -> bool:
        """Queue a pre-built server frame (see :func:`server_binary_frame`) if this connection
        can carry it verbatim; return False (nothing queued) when it cannot (extension
        negotiated, client role) so the caller falls back to :meth:`send_encoded`."""
        queued = self.offer_frame(frame, payload_size)
        if queued is None:
            raise LocalProtocolError(f"cannot send: connection is {self._state.value}")
        return queued

    def send_frame_parts(self, header: bytes, envelope: bytes) -> bool:
        """:meth:`send_frame` of the frame ``header + envelope`` given in its two pieces
        (``codec._fast.encode_data_parts``: the envelope is the object history keeps, so the
        frame costs no second copy of the payload). Behind other output the pieces are queued
        as they are (the socket writes the queue in one ``writelines``, or one join); as the
        only output they are joined (one chunk: one plain write). False (nothing queued) when
        this connection cannot carry the frame verbatim (the caller sends the envelope with
        :meth:`send_encoded`)."""
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send: connection is {self._state.value}")
        if not self._fast_frames:
            return False
        if self._ws._state is not WebSocketState.OPEN:
            return True  # the peer's close is being processed: nothing may follow it
        size = len(envelope)
        if size > self._max_message_size:
            raise LocalProtocolError(f"message of {size} bytes exceeds "
                                     f"max_message_size {self._max_message_size}")
        ordered = self._ordered
        if ordered is None:
            self._ordered = [header + envelope]
        else:
            ordered.append(header)
            ordered.append(envelope)
        self._buffered += len(header) + size
        return True

    # fan_out() below inlines this method's common case (reading _state, _fast_frames and the
    # WebSocket's _state, appending to _ordered and _buffered): keep the two in step.
    def offer_frame(self, frame: bytes, payload_size: int) -> bool | None:
        """:meth:`send_frame` for a fan-out, where connections that are not ``OPEN`` are
        skipped: None (nothing queued) when this one is not ``OPEN``; otherwise True when
        queued, False when this connection cannot carry the frame verbatim. One call per
        recipient of a broadcast, so it reads the WebSocket's state slot directly (the layer is
        ours; its property costs a call)."""
        if self._state is not _OPEN:
            return None
        if not self._fast_frames:
            return False
        if self._ws._state is not WebSocketState.OPEN:
            return True  # the peer's close is being processed: nothing may follow it
        if payload_size > self._max_message_size:
            raise LocalProtocolError(f"message of {payload_size} bytes exceeds "
                                     f"max_message_size {self._max_message_size}")
        ordered = self._ordered
        if ordered is None:
            self._ordered = [frame]
        else:
            ordered.append(frame)
        self._buffered += len(frame)
        return True

    def send_raw(self, data: bytes | bytearray | memoryview | str) -> None:
        """Plain mode: send one WebSocket message (text if ``data`` is a str)."""
        if self.config.envelope:
            raise LocalProtocolError("send_raw() is for plain mode; use send() for envelopes")
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send: connection is {self._state.value}")
        if self._ws.state is WebSocketState.OPEN:
            self._ws.send_message(data)
            self._pull_ws(priority=False)

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "", *,
              goodbye: Goodbye | None = None, now: float) -> None:
        """Start the closing handshake after everything already queued (graceful).

        ``goodbye`` is sent first when the connection is ``OPEN`` (the peer learns why and when
        to come back). Idempotent once closing or closed.
        """
        if self._state in (_CLOSING, _CLOSED):
            return
        if self._state is _HANDSHAKE:
            self._ws.abort()
            self._process_ws_events(self._ws.events_received(), now)
            return
        if goodbye is not None and self._state is _OPEN and self.config.envelope:
            self._send_body(goodbye)
        if self._ws.state is WebSocketState.OPEN:
            self._ws.close(int(code), reason)
            self._pull_ws(priority=False)
        self._enter(_CLOSING)
        self._close_deadline = now + self.config.close_timeout
        # A close frame or failure the WebSocket held behind messages ends it now (after ours).
        self._process_ws_events(self._ws.events_received(), now)

    def abort(self, code: CloseCode, reason: str, now: float) -> None:
        """Close now, dropping queued data: for a slow consumer, a takeover, a refusal.

        A ``Goodbye`` and the close frame still go out (first in line), but nothing queued
        before them does. ``Closed.cause`` stays None: the peer did nothing wrong.
        """
        self._fail(RemoteProtocolError(reason, code=code), now, record_cause=False)

    # -- internals

    def _wall_ms(self, now: float) -> int:
        return max(0, int((now + self.config.wall_clock_offset) * 1000))

    def _send_body(self, body: Body, *, priority: bool | None = None) -> None:
        if priority is None:
            priority = isinstance(body, _PRIORITY_TYPES)
        if type(body) is Ping or type(body) is Pong:
            self.heartbeats_sent += 1
        self._send_envelope_bytes(codec.encode(body), priority=priority)

    def _send_envelope_bytes(self, envelope: bytes, priority: bool = False) -> None:
        if self._ws.state is not WebSocketState.OPEN:
            # The peer's close frame arrived in the same read as what we are answering (it is
            # held until the app has seen the earlier events): nothing may follow our reply.
            return
        if self._fast_frames:
            if len(envelope) > self.config.websocket.max_message_size:
                raise LocalProtocolError(f"message of {len(envelope)} bytes exceeds "
                                         f"max_message_size "
                                         f"{self.config.websocket.max_message_size}")
            frame = server_binary_frame(envelope)
            if priority:
                self._priority = _appended(self._priority, frame)
                self._priority_bytes += len(frame)
            else:
                self._ordered = _appended(self._ordered, frame)
                self._buffered += len(frame)
            return
        self._ws.send_message(envelope)
        self._pull_ws(priority=priority)

    def _pull_ws(self, *, priority: bool) -> None:
        chunks = self._ws.data_to_send(settle=False)
        if not chunks:
            return
        if priority:
            self._priority = _extended(self._priority, chunks)
            self._priority_bytes += sum(map(len, chunks))
        else:
            self._ordered = _extended(self._ordered, chunks)
            self._buffered += sum(map(len, chunks))

    def _settle_ws(self, now: float) -> None:
        # The WebSocket's end held behind messages (module docstring): act on it now, its close
        # frame behind what was queued meanwhile.
        if self._ws.settle():
            self._pull_ws(priority=False)
            self._process_ws_events(self._ws.events_received(), now)

    def _release_held(self) -> None:
        held = self._held
        if self._paused or held is None:
            return
        self._held = None
        self._process_ws_events(held, self._last_received)

    def _process_ws_events(
        self, events: Sequence[WebSocketEvent | DataFields], now: float
    ) -> None:
        fast_data = self._fast_data
        # (Iterated as objects: compiled, an item typed as the union is checked against it, and
        # one narrowed to DataFields is unpacked into a native tuple and packed into a new
        # tuple object again; the hot item, a DataFields tuple, is queued as it is.)
        for index, item in enumerate(cast("Sequence[object]", events)):
            state = self._state
            if state is _CLOSED:
                return
            if self._paused:
                # Server between Hello and welcome(): what the client pipelined waits, so the
                # events are the same however the bytes were chunked.
                self._held = _extended(self._held, events[index:])
                return
            if type(item) is tuple:
                # DataFields the frame parser read (read_binary_with, set on entering OPEN):
                # what the MessageReceived branch below makes of the same message.
                if state is _OPEN:
                    self._emit(cast(Any, item))
                continue  # CLOSING: dropped, as a message is
            event = cast(WebSocketEvent, item)
            if type(event) is MessageReceived:
                if fast_data and state is _OPEN:
                    # The hot path: a client's Data as our encoders lay it out, read at fixed
                    # offsets (codec.read_client_data). It gives what _on_envelope would: the
                    # same event, which the server emits for Data once OPEN. Anything else
                    # (another message, another layout, anything malformed) comes back None and
                    # goes to _on_envelope, which accepts it or fails with its close code.
                    data = event.data
                    fields = read_client_data(data) if type(data) is bytes else None
                    if fields is not None:
                        # Queued as the tuple it is: events_received() builds the event.
                        self._emit(cast(Any, fields))
                        continue
                    # A reference client's $inbox Ack, read the same way (codec.read_inbox_ack):
                    # its position queued as is (InboxAckPosition), what _on_envelope would
                    # emit as EnvelopeReceived(body=Ack(...)).
                    position = read_inbox_ack(data) if type(data) is bytes else None
                    if position is not None:
                        self._emit(cast(Any, position))
                        continue
                if state is _CLOSING:
                    continue
                if self.config.envelope:
                    self._on_envelope(event.data, now)
                else:
                    self._emit(RawMessage(data=event.data))
            elif isinstance(event, WsClosed):
                self._finish(Closed(code=event.code, reason=event.reason, clean=event.clean,
                                    initiated_locally=event.initiated_locally, cause=event.cause,
                                    goodbye=self._peer_goodbye))
            elif isinstance(event, HandshakeRequest | HttpRequest):
                self._emit(event)
            elif isinstance(event, HandshakeAccepted):
                self._on_ws_open(now)
            elif isinstance(event, HandshakeFailed):
                self._emit(event)
                self._finish(Closed(code=CloseCode.ABNORMAL_CLOSURE,
                                    reason=f"handshake failed: HTTP {event.status} {event.reason}",
                                    clean=False, initiated_locally=self.role is Role.SERVER))
            # PingReceived / PongReceived: the WebSocket layer answered; liveness is counted
            # on bytes, so nothing more to do.
        if self._ws.transport_should_close and self._state is not _CLOSED \
                and not self._paused:
            self._transport_close = True

    def _on_ws_open(self, now: float) -> None:
        """The upgrade completed (both roles)."""
        # Without compression configured no extension can have been negotiated, so our frames
        # are plain RFC 6455 frames and may be built by hand (and shared across connections).
        # (A MessageSocket's transport frames for itself: it is handed the envelopes.)
        self._fast_frames = self.role is Role.SERVER and not self.config.websocket.compression \
            and not isinstance(self._ws, MessageSocket)
        self._last_received = now
        if not self.config.envelope:
            self._enter_open(now)
        else:
            self._enter(_HELLO)

    def _enter_open(self, now: float) -> None:
        self._enter(_OPEN)
        ws = self._ws
        if self._fast_data and type(ws) is WebSocket:
            # The frame parser reads a client's Data as it parses its frame: the DataFields
            # tuple comes out of the WebSocket layer (see _process_ws_events), no
            # MessageReceived per message.
            ws.read_binary_with(read_client_frame)
        self._last_received = now
        if self._interval:
            self._next_ping = now + self._interval

    def _on_envelope(self, data: bytes | str, now: float) -> None:
        if isinstance(data, str):  # pragma: no cover - the WebSocket layer refuses text (1003)
            self._fail(RemoteProtocolError("text message", code=CloseCode.UNSUPPORTED_DATA), now)
            return
        try:
            body = codec.decode(data)
        except UnknownMessageType:
            # A newer peer's message type: ignored, per the schema's evolution rules.
            self.unknown_messages += 1
            return
        except DecodeError as exc:
            self._fail(exc, now)
            return
        if isinstance(body, Ping):
            self.heartbeats_received += 1
            if self._state is _OPEN:
                self._send_body(Pong(id=body.id, echo_timestamp_ms=body.timestamp_ms,
                                     timestamp_ms=self._wall_ms(now)))
                return
        elif isinstance(body, Pong):
            self.heartbeats_received += 1
            if self._state is _OPEN:
                sample = max(0.0, (self._wall_ms(now) - body.echo_timestamp_ms) / 1000)
                self.rtt = sample if self.rtt is None else self.rtt + (sample - self.rtt) / 8
                if self.rtt_samples is not None:
                    self.rtt_samples.observe(sample)
                return
        elif isinstance(body, Goodbye):
            self._peer_goodbye = body
            return
        self._on_body(body, now)

    def _on_body(self, body: Body, now: float) -> None:
        raise NotImplementedError

    def _unexpected(self, body: Body, now: float) -> None:
        self._fail(RemoteProtocolError(
            f"unexpected {type(body).__name__} from the "
            f"{'client' if self.role is Role.SERVER else 'server'} in state {self._state.value}",
            code=CloseCode.UNEXPECTED_MESSAGE), now)

    def _fail(self, error: RemoteProtocolError, now: float, *, record_cause: bool = True) -> None:
        """Close at once with ``error.code``: queued data is dropped, the close frame goes first,
        and we do not wait for the peer's reply (RFC 6455 §7.1.7, "fail the connection")."""
        if self._state is _CLOSED:
            return
        # An end the WebSocket held behind messages came later in the stream than what fails
        # here: dropped, as it would be had it arrived in a later read.
        self._ws.settle(discard=True)
        self._ordered = None
        self._buffered = 0
        self._ws.data_to_send()  # anything the WebSocket layer still held is dropped too
        if self._ws.state is WebSocketState.OPEN:
            if self.config.envelope and self._state is _OPEN:
                self._send_body(Goodbye(code=_ERROR_FOR_CLOSE.get(error.code, ErrorCode.UNKNOWN),
                                        reason=error.reason), priority=True)
            self._ws.close(int(error.code), error.reason)
            self._pull_ws(priority=True)
        self._ws.abort(int(error.code), error.reason)
        self._ws.events_received()
        self._finish(Closed(code=error.code, reason=error.reason, clean=False,
                            initiated_locally=True, cause=error if record_cause else None,
                            goodbye=self._peer_goodbye))

    def _enter(self, state: ConnectionState) -> None:
        """The one place the state changes: checked against ``_TRANSITIONS``."""
        if state not in _TRANSITIONS[self._state]:
            msg = f"connection state {self._state.name} -> {state.name} is not in _TRANSITIONS"
            raise AssertionError(msg)
        self._state = state

    def _finish(self, closed: Closed) -> None:
        self._enter(_CLOSED)
        self._transport_close = True
        self._emit(closed)

    def _emit(self, event: AnyConnectionEvent | DataFields | InboxAckPosition) -> None:
        events = self._events
        if events is None:
            self._events = [event]
        else:
            events.append(event)


_ERROR_FOR_CLOSE: dict[int, ErrorCode] = {
    CloseCode.BAD_ENVELOPE: ErrorCode.BAD_ENVELOPE,
    CloseCode.UNEXPECTED_MESSAGE: ErrorCode.UNEXPECTED_MESSAGE,
    CloseCode.HELLO_TIMEOUT: ErrorCode.UNEXPECTED_MESSAGE,
    CloseCode.HEARTBEAT_TIMEOUT: ErrorCode.HEARTBEAT_TIMEOUT,
    CloseCode.UNSUPPORTED_VERSION: ErrorCode.UNSUPPORTED_VERSION,
    CloseCode.AUTH_FAILED: ErrorCode.AUTH_FAILED,
    CloseCode.SESSION_TAKEN_OVER: ErrorCode.SESSION_TAKEN_OVER,
    CloseCode.SLOW_CONSUMER: ErrorCode.SLOW_CONSUMER,
    CloseCode.RATE_LIMITED: ErrorCode.RATE_LIMITED,
    CloseCode.TOKEN_EXPIRED: ErrorCode.TOKEN_EXPIRED,
    CloseCode.LIMIT_EXCEEDED: ErrorCode.LIMIT_EXCEEDED,
    CloseCode.GOING_AWAY: ErrorCode.SHUTTING_DOWN,
}


# The direction tables: the bodies a client may send once OPEN (a server closes with 4002
# UNEXPECTED_MESSAGE on anything else), and those a server may send. By class, so that a
# misspelt or renamed message type is an error at import and in mypy, not a silent miss.
_CLIENT_SENDS: Final[frozenset[type[Body]]] = frozenset(
    {Data, Ack, Subscribe, Unsubscribe, Error, Refresh})
_SERVER_SENDS: Final[frozenset[type[Body]]] = frozenset(
    {Data, Ack, Subscribed, Unsubscribed, Presence, Error, Refreshed})


def fan_out(conns: list[ServerConnection], frame: bytes, envelope: bytes, queued: set[int],
            high_water: int) -> tuple[int, list[ServerConnection]]:
    """Queue one published message on every ``OPEN`` connection of ``conns`` (the hot loop of a
    broadcast, once per recipient).

    ``frame`` is ``envelope`` in one unmasked server frame (RFC 6455 §5.2), the same bytes for
    every socket: a connection without an extension queues it as is (what
    :meth:`Connection.offer_frame` does, inlined: a fifth of a broadcast's cost was the call);
    the others frame the envelope their way. The size was checked when the message was
    published, against the same limit. Connections that are not ``OPEN`` are skipped.

    Adds the :attr:`ServerConnection.id` of each connection that got the message to ``queued``
    and returns how many did, with those whose buffered output now exceeds ``high_water`` (the
    caller decides whether they are slow consumers)."""
    length = len(frame)
    size = len(envelope)
    conn_open = _OPEN
    ws_open = WebSocketState.OPEN
    crowded: list[ServerConnection] = []
    sent = 0
    for conn in conns:
        if conn._state is not conn_open:
            continue
        if conn._fast_frames and conn._ws._state is ws_open:
            ordered = conn._ordered
            if ordered is None:
                conn._ordered = [frame]
            else:
                ordered.append(frame)
            conn._buffered += length
        elif not conn.offer_frame(frame, size):
            conn.send_encoded(envelope)
        sent += 1
        queued.add(conn.id)
        if conn._buffered > high_water:
            crowded.append(conn)
    return sent, crowded


class ServerConnection(Connection):
    """The server end of one socket. Feed it the bytes the client sent."""

    role = Role.SERVER

    __slots__ = ("_hello_seen", "id")

    def __init__(self, config: ConnectionConfig | None = None, *, now: float,
                 transport: MessageSocket | None = None) -> None:
        """``transport``: a :class:`MessageSocket` for message mode (see the module docstring;
        it should carry ``config.websocket``); None frames the bytes here."""
        config = config or ConnectionConfig()
        super().__init__(transport if transport is not None
                         else WebSocket(Role.SERVER, config.websocket), config, now)
        self._fast_data = config.envelope
        #: A label for the owner (the hub's ``conn_id``); :func:`fan_out` reports it.
        self.id = 0
        self._hello_seen = False
        if transport is not None:  # its HandshakeRequest (or refusal) is already there
            self._process_ws_events(transport.events_received(), now)

    def accept_handshake(self, *, extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        """Accept the upgrade surfaced as :class:`HandshakeRequest`."""
        if self._state is not _HANDSHAKE:
            raise LocalProtocolError(f"accept_handshake() in state {self._state.value}")
        self._ws.accept(extra_headers=extra_headers)
        self._pull_ws(priority=False)
        # Bytes that followed the request (a pipelined Hello) were parsed by accept(): enter
        # HELLO before handling them.
        self._on_ws_open(self._last_received)
        self._process_ws_events(self._ws.events_received(), self._last_received)

    def respond_http(self, response: HttpResponse) -> None:
        """Answer a plain HTTP request (:class:`HttpRequest`, with ``serve_http``); the
        connection then ends (``Closed`` with 1000, ``transport_should_close``)."""
        if self._state is not _HANDSHAKE:
            raise LocalProtocolError(f"respond_http() in state {self._state.value}")
        self._ws.respond(response)
        self._pull_ws(priority=False)
        self._finish(Closed(code=CloseCode.NORMAL_CLOSURE, reason="plain HTTP request answered",
                            clean=True, initiated_locally=True))

    def reject_handshake(self, status: int, reason: str) -> None:
        """Refuse the upgrade with an HTTP status (e.g. 503 when full, 403 for a bad Origin)."""
        if self._state is not _HANDSHAKE:
            raise LocalProtocolError(f"reject_handshake() in state {self._state.value}")
        self._ws.reject(status, reason)
        self._pull_ws(priority=False)
        self._process_ws_events(self._ws.events_received(), self._created)

    def welcome(self, welcome: Welcome, now: float) -> None:
        """Answer the Hello: the connection becomes ``OPEN``."""
        if self._state is not _HELLO or not self._hello_seen:
            raise LocalProtocolError(f"welcome() in state {self._state.value}")
        self._send_body(welcome)
        self._enter_open(now)
        # What the client pipelined is released at the next call, not inside this one, so the
        # caller finishes its welcome (replay, subscriptions) on an OPEN connection first.
        self._paused = False


    def refuse(self, code: CloseCode, error: ErrorCode, message: str, now: float, *,
               reconnect_after_ms: int = 0) -> None:
        """Answer the Hello with a Goodbye and close (auth refused, unsupported version)."""
        if self._state is not _HELLO:
            raise LocalProtocolError(f"refuse() in state {self._state.value}")
        self._send_body(Goodbye(code=error, reason=message,
                                reconnect_after_ms=reconnect_after_ms))
        if self._ws.state is WebSocketState.OPEN:
            self._ws.close(int(code), message)
            self._pull_ws(priority=False)
        self._enter(_CLOSING)
        self._close_deadline = now + self.config.close_timeout
        self._paused = False  # pipelined messages are dropped (CLOSING); a close frame ends it
        self._process_ws_events(self._ws.events_received(), now)  # a held end (see close())

    def _on_body(self, body: Body, now: float) -> None:
        if self._state is _HELLO:
            if isinstance(body, Hello) and not self._hello_seen:
                self._hello_seen = True
                self._paused = True
                self._emit(HelloReceived(hello=body))
                return
            self._unexpected(body, now)
            return
        if type(body) in _CLIENT_SENDS:
            self._emit(EnvelopeReceived(body=body))
        else:
            self._unexpected(body, now)


class ClientConnection(Connection):
    """The client end of one socket: upgrade, then ``Hello``, then wait for ``Welcome``."""

    role = Role.CLIENT

    __slots__ = ("_hello",)

    def __init__(self, *, host: str, path: str = "/", hello: Hello | None = None,
                 config: ConnectionConfig | None = None,
                 extra_headers: Sequence[tuple[str, str]] = (), now: float) -> None:
        config = config or ConnectionConfig()
        super().__init__(WebSocket.client(host=host, path=path, config=config.websocket,
                                          extra_headers=extra_headers), config, now)
        self._hello = hello if hello is not None else Hello()
        self._pull_ws(priority=False)

    def _on_ws_open(self, now: float) -> None:
        super()._on_ws_open(now)
        if self.config.envelope:
            self._send_body(self._hello)

    def _on_body(self, body: Body, now: float) -> None:
        if self._state is _HELLO:
            if isinstance(body, Welcome):
                # The server's heartbeat settings win: it sized its timeouts for them.
                if body.heartbeat_interval_ms:
                    self._interval = body.heartbeat_interval_ms / 1000
                if body.heartbeat_timeout_ms > body.heartbeat_interval_ms:
                    self._timeout = body.heartbeat_timeout_ms / 1000
                self._enter_open(now)
                self._emit(Welcomed(welcome=body))
                return
            self._unexpected(body, now)
            return
        if type(body) in _SERVER_SENDS:
            self._emit(EnvelopeReceived(body=body))
        else:
            self._unexpected(body, now)
