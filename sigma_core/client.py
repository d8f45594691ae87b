"""The client side: a session that survives reconnects, as a sans-IO state machine.

Theory of operation
-------------------
:class:`ClientSession` never opens a socket. It asks its adapter to, with :class:`OpenTransport`
events (each carrying an ``attempt`` number), and the adapter reports back with
:meth:`ClientSession.transport_opened`, :meth:`ClientSession.receive_data`,
:meth:`ClientSession.transport_closed` or :meth:`ClientSession.transport_failed`, quoting that
number (reports about an older attempt are ignored). :class:`CloseTransport` asks it to close the
current socket after flushing :meth:`ClientSession.data_to_send`. Timers as everywhere:
:meth:`ClientSession.next_deadline` / :meth:`ClientSession.handle_timer`.

Statuses (the original's ``ConnectionStatus``)::

    DISCONNECTED --connect()--> CONNECTING --Welcome--> CONNECTED
                                    |                       |
                                    +----- lost/failed -----+--> RECONNECTING --Welcome--> CONNECTED
                                                                     |
                                                     attempts exhausted / refused --> ERROR

Reconnects wait ``rng() * min(max_delay, initial_delay * multiplier**n)`` ("full jitter", so a
restarted server is not hit by every client at once), raised to at least a server Goodbye's
``reconnect_after_ms``.

Delivery, client to server: every :meth:`ClientSession.send` gets the next sequence number and
stays in a bounded buffer until the server acknowledges it; while disconnected the buffer keeps
filling (up to ``max_pending``, then :class:`BufferFullError`). After each Welcome everything the
server has not received is sent again, in order. Server to client: the session remembers the
last position per topic; a resume hands them to the server, and a message at or before a known
position is a duplicate and dropped. A resume that became a fresh session, and every topic that
could not be recovered, is an explicit event: never silent.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import codec
from .connection import (
    AnyConnectionEvent,
    ClientConnection,
    Closed,
    ConnectionConfig,
    ConnectionState,
    EnvelopeReceived,
    Welcomed,
)
from .entropy import Entropy
from .errors import CloseCode, ErrorCode, LocalProtocolError, RemoteProtocolError
from .messages import (
    ENVELOPE_OVERHEAD,
    Ack,
    Body,
    ClientInfo,
    Data,
    Error,
    Goodbye,
    Hello,
    Presence,
    RecoveryStatus,
    Refresh,
    Refreshed,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)

#: The reserved topics every session holds.
_SERVER_TOPICS = frozenset(("$all", "$inbox"))
# What one more TopicPosition adds to an encoded Hello besides its name's UTF-8 bytes, at least
# and at most (FlatBuffers: the string's length prefix, NUL and padding, the table's offsets
# and 16-byte position, the vector slot, alignment; tests/test_amplification.py checks them).
_POSITION_COST_MIN = 8
_POSITION_COST_MAX = 72

__all__ = [
    "ENVELOPE_OVERHEAD",
    "BufferFullError",
    "ClientConfig",
    "ClientEvent",
    "ClientSession",
    "CloseTransport",
    "Connected",
    "ConnectionStatus",
    "Disconnected",
    "ErrorReceived",
    "GaveUp",
    "MessageReceived",
    "OpenTransport",
    "PresenceReceived",
    "ReconnectPolicy",
    "Reconnecting",
    "RecoveryFailed",
    "SessionReset",
    "StatusChanged",
    "SubscribedEvent",
    "TokenNeeded",
    "UnsubscribedEvent",
    "parse_url",
]



class ConnectionStatus(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"


class BufferFullError(LocalProtocolError):
    """``send()`` while ``max_pending`` messages already wait for an acknowledgement."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter. ``max_attempts`` None retries forever."""

    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = 10

    def __post_init__(self) -> None:
        if not (0 < self.initial_delay <= self.max_delay and math.isfinite(self.max_delay)):
            raise ValueError("ReconnectPolicy needs 0 < initial_delay <= max_delay < inf")
        if self.multiplier < 1:
            raise ValueError("ReconnectPolicy.multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("ReconnectPolicy.max_attempts must be >= 1 or None")

    def ceiling(self, attempt: int) -> float:
        """The upper bound of the delay before reconnect attempt ``attempt`` (1-based)."""
        exponent = min(attempt - 1, 64)
        return min(self.max_delay, self.initial_delay * self.multiplier ** exponent)

    def delay(self, attempt: int, rng: float, floor: float = 0.0) -> float:
        """Delay before attempt ``attempt`` given a uniform ``rng`` in [0, 1)."""
        return floor + rng * self.ceiling(attempt)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Client settings. ``url`` is ``ws://host[:port]/path`` or ``wss://...``."""

    url: str
    reconnect: ReconnectPolicy = field(default_factory=ReconnectPolicy)
    connection: ConnectionConfig = field(
        default_factory=lambda: ConnectionConfig(heartbeat_interval=30.0,
                                                 heartbeat_timeout=70.0))
    #: Messages sent but not yet acknowledged (including those queued while offline).
    max_pending: int = 1000
    #: How long opening the socket may take before the attempt counts as failed.
    connect_timeout: float = 10.0
    auth_token: str = ""
    client_info: ClientInfo | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    #: The payload serializer's name, sent in the Hello ("" for "raw": nothing sent).
    serializer: str = ""
    #: The app can supply new tokens (a ``get_token`` callback): the session asks for one
    #: (:class:`TokenNeeded`) ``refresh_margin`` seconds before the credentials the Welcome
    #: announced expire (at most halfway), and after a close for expired or refused
    #: credentials instead of giving up. False: such a close ends the session's attempts.
    refresh_tokens: bool = False
    refresh_margin: float = 30.0
    #: Send client Data no faster than this share of the rate limits the Welcome advertises
    #: (``Limits.max_messages_per_second``/``max_bytes_per_second``), leaving room for network
    #: jitter; 0 turns pacing off (the server then closes with 4008 past its limits).
    pace: float = 0.9
    #: Acknowledge ``$inbox`` messages to the server (a C→S ``Ack`` carrying the ``$inbox``
    #: position, protocol.md §7) once this many arrived since the last such Ack, or
    #: ``inbox_ack_delay`` seconds after the first of them, whichever comes first, so that the
    #: server can let go of what this client holds; 0 never acknowledges (the server then keeps
    #: them until its history limits drop them, as for a client that predates inbox acks).
    inbox_ack_every: int = 128
    inbox_ack_delay: float = 1.0

    def __post_init__(self) -> None:
        parse_url(self.url)
        if self.inbox_ack_every < 0:
            raise ValueError("ClientConfig.inbox_ack_every must be >= 0")
        if not (math.isfinite(self.inbox_ack_delay) and self.inbox_ack_delay >= 0):
            raise ValueError("ClientConfig.inbox_ack_delay must be finite and >= 0")
        if not (math.isfinite(self.refresh_margin) and self.refresh_margin >= 0):
            raise ValueError("ClientConfig.refresh_margin must be finite and >= 0")
        if not 0 <= self.pace <= 1:
            raise ValueError("ClientConfig.pace must be within 0..1")
        if self.max_pending < 1:
            raise ValueError("ClientConfig.max_pending must be >= 1")
        if not (math.isfinite(self.connect_timeout) and self.connect_timeout > 0):
            raise ValueError("ClientConfig.connect_timeout must be > 0")


def parse_url(url: str) -> tuple[bool, str, int, str]:
    """``(secure, host, port, path_with_query)`` of a ws:// or wss:// URL; ValueError if not."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {url!r}")
    secure = parts.scheme == "wss"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return secure, parts.hostname, port, path


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientEvent:
    """Base of every event a client session emits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenTransport(ClientEvent):
    """Adapter: open a socket (TLS if ``secure``) and report with ``attempt``."""

    attempt: int
    host: str
    port: int
    secure: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseTransport(ClientEvent):
    """Adapter: flush ``data_to_send()``, then close the socket of ``attempt``."""

    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged(ClientEvent):
    status: ConnectionStatus
    previous: ConnectionStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(ClientEvent):
    """A Welcome arrived. ``resumed`` False with a ``fresh_reason`` means the old session is
    gone (a :class:`SessionReset` precedes this event)."""

    session_id: str
    resumed: bool
    fresh_reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReset(ClientEvent):
    """The server could not resume our session and started a fresh one. Messages we had not
    seen acknowledged (``resent``) were sent again under the new session: the old server may or
    may not have processed them."""

    old_session_id: str
    new_session_id: str
    reason: str
    resent: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryFailed(ClientEvent):
    """Messages on ``topic`` will never arrive: offsets ``lost_from..lost_to`` of the client's
    epoch (``lost_to`` 0: unknown, the epoch is gone). Delivery continues after ``position``.
    Resync the topic's state."""

    topic: str
    lost_from: int
    lost_to: int
    position: StreamPosition | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(ClientEvent):
    topic: str
    position: StreamPosition
    payload: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribedEvent(ClientEvent):
    topic: str
    recovery: TopicRecovery
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribedEvent(ClientEvent):
    topic: str
    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceReceived(ClientEvent):
    presence: Presence


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReceived(ClientEvent):
    """The server reported an error (a refused subscription, say); the connection goes on."""

    error: Error


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(ClientEvent):
    """A connection ended. ``will_reconnect`` tells whether a :class:`Reconnecting` follows."""

    code: int
    reason: str
    cause: RemoteProtocolError | None
    goodbye: Goodbye | None
    will_reconnect: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(ClientEvent):
    attempt: int
    max_attempts: int | None
    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenNeeded(ClientEvent):
    """Ask the app for a new token (``get_token``) and hand it to
    :meth:`ClientSession.refresh_token`. ``reason``: ``"refresh"`` (the credentials expire
    soon; the connection stays open), or ``"reconnect"`` (the connection was closed for
    expired or refused credentials; the session reconnects once it has the token)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GaveUp(ClientEvent):
    """No more reconnects: attempts exhausted, or the server refused us for good. ``reason``
    says which and ends with the last failure (e.g. "HTTP 503 ..."); ``last_code`` and
    ``last_reason`` are that failure's close code and reason."""

    reason: str
    last_code: int = 0
    last_reason: str = ""


# ----------------------------------------------------------------------------- machine


class _Pending:
    __slots__ = ("payload", "seq", "timestamp_ms", "topic")

    def __init__(self, seq: int, topic: str, payload: bytes, timestamp_ms: int) -> None:
        self.seq = seq
        self.topic = topic
        self.payload = payload
        self.timestamp_ms = timestamp_ms


# Reconnecting would not help: refused for good, or another connection now owns the session
# (taking it back would start a tug of war between the two).
#: A control envelope waiting for the pacing: ("subscribe" | "unsubscribe", topic, request
#: id) or ("refresh", token, 0).
_Control = tuple[str, str, int]

_FATAL_GOODBYES = frozenset({ErrorCode.AUTH_FAILED, ErrorCode.UNSUPPORTED_VERSION,
                             ErrorCode.SESSION_TAKEN_OVER, ErrorCode.SERIALIZER_MISMATCH})


class ClientSession:
    """One logical client: keeps its session, positions and unacked sends across sockets."""

    def __init__(self, config: ClientConfig, *, entropy: Entropy) -> None:
        self.config = config
        self._entropy = entropy
        self._secure, self._host, self._port, self._path = parse_url(config.url)
        self._status = ConnectionStatus.DISCONNECTED
        self._events: list[ClientEvent] = []
        self._conn: ClientConnection | None = None
        self._now = 0.0  # the latest ``now`` an input brought (for work done in data_to_send)
        # Last bytes of a connection we let go of (its close frame), still to be written.
        self._leftover: list[bytes] = []
        self._attempt_id = 0
        self._transport_up = False
        self._attempt_deadline = math.inf
        self._reconnect_at = math.inf
        self._failures = 0  # consecutive failed attempts since the last Welcome
        self._goodbye_floor = 0.0
        self._wanted = False  # the app wants to be connected
        # session
        self.session_id = ""
        self._token = b""
        self.positions: dict[str, StreamPosition] = {}
        self.subscriptions: set[str] = set()
        # Unsubscribed by the app, not yet confirmed by the server.
        self._unsubscribing: set[str] = set()
        self._requests: dict[int, tuple[str, bool]] = {}  # request_id -> (topic, subscribe?)
        # topic -> id of the app's latest (un)subscribe request still unanswered. The server
        # answers in order, so only the answer to the latest request decides the topic's state;
        # answers to superseded requests are ignored.
        self._latest: dict[str, int] = {}
        self._next_request = 1
        # Fast paths of the server-side room budget (_unasked_over_budget): an upper bound of
        # the resuming Hello's size for today's topics, and a lower bound with the set sizes it
        # was taken at; both keyed by the session id and token lengths the Hello carries.
        self._hello_upper: tuple[int, int, int] | None = None
        self._hello_lower: tuple[int, int, int, int, int, int] | None = None
        # client -> server
        self._pending: deque[_Pending] = deque()
        self._next_seq = 1
        self._sent_upto = 0  # highest seq written on the current connection
        self._max_unacked = config.max_pending
        # The server's limit once a Welcome said it, our own until then.
        self._max_message_size = config.connection.websocket.max_message_size
        #: Highest client sequence the server acknowledged.
        self.last_acked_seq = 0
        #: Duplicates dropped on receipt (a replay overlapping what had arrived).
        self.duplicates_dropped = 0
        #: ``now`` of the last Welcome, and whether it resumed the session.
        self.connected_at: float | None = None
        self.resumed = False
        self._check_hello_fits(None)  # an auth token or client info too large for any Hello
        # credentials: the token the next Hello carries, when to ask for a new one, whether
        # the app gave a new one since the last refusal (a second refusal then gives up)
        self.auth_token = config.auth_token
        self.credentials_expire_ms = 0
        self._refresh_at = math.inf
        self._awaiting_token = False
        self._token_fresh = False
        # pacing to Welcome.limits: [rate, tokens, updated_ms, capacity] per messages and bytes,
        # or None
        self._pace_msgs: list[float] | None = None
        self._pace_bytes: list[float] | None = None
        self._pace_at = math.inf
        #: Subscribe/Unsubscribe/Refresh waiting for the pacing (sent before waiting Data).
        self._paced_control: deque[_Control] = deque()
        #: ``heartbeats_sent`` of the connection already charged to the pacing.
        self._heartbeats_charged = 0
        self._server_skew_ms = 0
        # $inbox acknowledgements: messages delivered since the last inbox Ack (this
        # session), when the next Ack is due, and inbox Acks sent not yet charged to the
        # pacing (the server counts every envelope).
        self._inbox_unacked = 0
        self._inbox_ack_at = math.inf
        self._acks_owed = 0

    # ------------------------------------------------------------------ properties

    @property
    def status(self) -> ConnectionStatus:
        return self._status

    @property
    def pending_count(self) -> int:
        """Messages sent (or queued) and not yet acknowledged."""
        return len(self._pending)

    @property
    def rtt(self) -> float | None:
        return self._conn.rtt if self._conn is not None else None

    # ------------------------------------------------------------------ outputs

    def events_received(self) -> list[ClientEvent]:
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        out, self._leftover = self._leftover, []
        conn = self._conn
        if conn is not None:
            out.extend(conn.data_to_send())
            if conn.pending_events:  # a held close was acted on: its Closed is ours to handle
                self._process(self._now)
                out.extend(self.data_to_send())
        return out

    def next_deadline(self) -> float | None:
        deadline = min(self._attempt_deadline, self._reconnect_at, self._refresh_at,
                       self._pace_at, self._inbox_ack_at)
        if self._conn is not None:
            conn_deadline = self._conn.next_deadline()
            if conn_deadline is not None:
                deadline = min(deadline, conn_deadline)
        return None if deadline == math.inf else deadline

    # ------------------------------------------------------------------ app commands

    def connect(self, now: float) -> None:
        """Start connecting (no-op if already connected or trying)."""
        if self._status not in (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR):
            return
        self._wanted = True
        self._failures = 0
        self._set_status(ConnectionStatus.CONNECTING)
        self._open(now)

    def disconnect(self, now: float, reason: str = "client disconnect") -> None:
        """Leave for good: Goodbye(NORMAL) ends the session on the server; unacknowledged
        messages are dropped. ``connect()`` afterwards starts a fresh session."""
        self._wanted = False
        opening = self._attempt_deadline != math.inf
        self._reconnect_at = self._attempt_deadline = math.inf
        conn = self._conn
        if conn is not None and conn.state is ConnectionState.OPEN:
            conn.close(CloseCode.NORMAL_CLOSURE, reason,
                       goodbye=Goodbye(code=ErrorCode.NORMAL, reason=reason), now=now)
            self._events.append(CloseTransport(attempt=self._attempt_id))
        elif conn is not None or self._transport_up or opening:
            # Also while the socket is still opening: the adapter cancels it.
            self._events.append(CloseTransport(attempt=self._attempt_id))
        self._release_conn()
        self._attempt_id += 1  # whatever the old socket reports from now on is stale
        self._transport_up = False
        self._forget_session()
        self._set_status(ConnectionStatus.DISCONNECTED)

    def send(self, payload: bytes | bytearray | memoryview, now: float, *,
             topic: str = "") -> int:
        """Queue a message for the server; returns its sequence number.

        Delivered exactly once, in order, across reconnects, as long as the session survives.

        Raises:
            BufferFullError: ``max_pending`` messages await acknowledgement (nothing queued).
            LocalProtocolError: the message could never be accepted (larger than the server's
                ``max_message_size`` less :data:`ENVELOPE_OVERHEAD`).
        """
        self._now = now
        size = len(payload) + len(topic.encode("utf-8", "surrogatepass")) + ENVELOPE_OVERHEAD
        if size > self._max_message_size:
            raise LocalProtocolError(f"message of {len(payload)} bytes is too large: the "
                                     f"limit is {self._max_message_size - ENVELOPE_OVERHEAD} "
                                     "bytes of payload and topic")
        if len(self._pending) >= self.config.max_pending:
            raise BufferFullError(f"{len(self._pending)} messages await acknowledgement "
                                  f"(max_pending={self.config.max_pending}); retry after acks")
        item = _Pending(self._next_seq, topic, bytes(payload), self._wall_ms(now))
        self._next_seq += 1
        self._pending.append(item)
        self._transmit()
        return item.seq

    def refresh_token(self, token: str, now: float) -> None:
        """The app's new token (answer to :class:`TokenNeeded`, or unasked): sent at once over
        an open connection (``Refresh``), and used by every later Hello. A session waiting
        for a token to reconnect reconnects now.

        Raises:
            LocalProtocolError: ``token`` is empty.
        """
        if not token:
            raise LocalProtocolError("refresh_token needs a token")
        self.auth_token = token
        self._token_fresh = True
        self._refresh_at = math.inf
        conn = self._conn
        if conn is not None and conn.state is ConnectionState.OPEN:
            self._send_control(("refresh", token, 0))
        elif self._awaiting_token and self._wanted:
            self._awaiting_token = False
            self._reconnect_at = now

    def subscribe(self, topic: str, now: float) -> int:
        """Subscribe to ``topic`` (sent now, or on the next connection); returns the request
        id that the Subscribed / Error answer quotes.

        Raises:
            LocalProtocolError: ``topic`` is empty or reserved (starts with ``$``), or the Hello
                that resumes the session would no longer fit in the server's ``max_message_size``
                with it.
        """
        if not topic or topic.startswith("$"):
            raise LocalProtocolError(f"invalid topic name {topic!r}")
        if topic not in self.subscriptions:
            self._hello_upper = (self._check_hello_fits(topic), *self._hello_key())
            self._hello_lower = None
        self.subscriptions.add(topic)
        self._unsubscribing.discard(topic)
        return self._request(topic, subscribe=True)

    def unsubscribe(self, topic: str, now: float) -> int:
        """Stop receiving ``topic``: nothing more is delivered for it from this call on. Sent
        now, or after the next Welcome; the topic's position is kept until the server confirms,
        so a resume in between does not replay the topic from the start.

        Raises:
            LocalProtocolError: not subscribed to ``topic``.
        """
        if topic not in self.subscriptions:
            raise LocalProtocolError(f"not subscribed to {topic!r}")
        self.subscriptions.discard(topic)
        self._unsubscribing.add(topic)
        return self._request(topic, subscribe=False)

    # ------------------------------------------------------------------ adapter inputs

    def transport_opened(self, attempt: int, now: float) -> None:
        """The socket of ``attempt`` is connected: the upgrade request goes out."""
        if attempt != self._attempt_id or self._conn is not None or not self._wanted:
            return
        self._transport_up = True
        self._attempt_deadline = math.inf
        self._conn = ClientConnection(
            host=self._host if self._port in (80, 443) else f"{self._host}:{self._port}",
            path=self._path, hello=self._hello(), config=self.config.connection,
            extra_headers=self.config.extra_headers, now=now)

    def transport_failed(self, attempt: int, now: float, reason: str = "") -> None:
        """The socket of ``attempt`` could not be opened (refused, DNS, TLS...)."""
        if attempt != self._attempt_id or self._transport_up \
                or self._attempt_deadline == math.inf:
            return  # stale, already open, or no attempt under way
        self._attempt_deadline = math.inf
        self._attempt_id += 1  # anything else reported about this attempt is stale
        self._lost(now, code=CloseCode.ABNORMAL_CLOSURE, reason=reason or "connect failed",
                   cause=None, goodbye=None)

    def receive_data(self, attempt: int, data: bytes | bytearray | memoryview | None,
                     now: float) -> None:
        """Bytes from the socket of ``attempt`` (None: EOF)."""
        conn = self._conn
        if attempt != self._attempt_id or conn is None:
            return
        conn.receive_data(data, now)
        self._process(now)

    def set_reading_paused(self, paused: bool, now: float) -> None:
        """The adapter stopped (``True``) or resumed reading the current socket because the
        application is not taking messages (its receive queue is full): while paused, silence
        from the server is not a heartbeat timeout (pings still go out). A new socket starts
        unpaused."""
        if self._conn is not None:
            self._conn.set_reading_paused(paused, now)

    def transport_closed(self, attempt: int, now: float) -> None:
        """The socket of ``attempt`` is closed (by us or the peer)."""
        if attempt != self._attempt_id:
            return
        was_up, self._transport_up = self._transport_up, False
        if self._conn is not None:
            self._conn.receive_data(None, now)
            self._process(now)
        elif not was_up:
            self.transport_failed(attempt, now, "closed before it opened")

    def handle_timer(self, now: float) -> None:
        if now >= self._attempt_deadline:
            self._attempt_deadline = math.inf
            self._events.append(CloseTransport(attempt=self._attempt_id))
            self._attempt_id += 1
            self._transport_up = False
            self._lost(now, code=CloseCode.ABNORMAL_CLOSURE,
                       reason=f"connect timed out after {self.config.connect_timeout:g} s",
                       cause=None, goodbye=None)
        if now >= self._reconnect_at:
            self._reconnect_at = math.inf
            self._open(now)
        if now >= self._refresh_at:
            self._refresh_at = math.inf
            self._events.append(TokenNeeded(reason="refresh"))
        if now >= self._pace_at:
            self._pace_at = math.inf
            self._now = now
            self._transmit()
        if now >= self._inbox_ack_at:
            self._send_inbox_ack()
        if self._conn is not None:
            self._conn.handle_timer(now)
            self._process(now)

    # ------------------------------------------------------------------ internals

    def _wall_ms(self, now: float) -> int:
        # Rounded to the microsecond first: 1.001 s is 1000.9999999999999 ms in binary.
        return max(0, math.floor(round((now + self.config.connection.wall_clock_offset) * 1000, 6)))

    def _set_status(self, status: ConnectionStatus) -> None:
        if status is not self._status:
            previous, self._status = self._status, status
            self._events.append(StatusChanged(status=status, previous=previous))

    def _open(self, now: float) -> None:
        self._attempt_id += 1
        self._transport_up = False
        self._attempt_deadline = now + self.config.connect_timeout
        self._events.append(OpenTransport(attempt=self._attempt_id, host=self._host,
                                          port=self._port, secure=self._secure))

    def _check_hello_fits(self, topic: str | None) -> int:
        """Refuse a subscription that would make our resuming Hello (one position per
        subscribed topic) larger than the message size limit: the server would close every
        connection attempt with 1009, and the session could never come back. Returns the
        Hello's size (an upper bound: every position at its largest)."""
        size, count = self._worst_hello_size(topic)
        if size > self._max_message_size:
            if topic is None:
                raise LocalProtocolError(
                    f"the Hello would be {size} bytes, over the {self._max_message_size}-byte "
                    "message limit: auth_token or client info too large")
            raise LocalProtocolError(
                f"cannot subscribe to {topic!r}: with {count} streams the Hello that resumes "
                f"this session would be {size} bytes, over the {self._max_message_size}-byte "
                "message limit; unsubscribe from some topics or use shorter names")
        return size

    def _worst_hello_size(self, topic: str | None) -> tuple[int, int]:
        """(size, number of positions) of the resuming Hello with ``topic`` added, every
        position at its largest."""
        topics = self.subscriptions | self._unsubscribing | self.positions.keys() | {"$all",
                                                                                   "$inbox"}
        if topic is not None:
            topics.add(topic)
        worst = StreamPosition(0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
        hello = Hello(session_id=self.session_id or "x" * 32, resume_token=self._token or bytes(64),
                      positions=tuple(TopicPosition(topic=t, position=worst) for t in topics),
                      last_acked_seq=0xFFFFFFFFFFFFFFFF, auth_token=self.config.auth_token,
                      client=self.config.client_info)
        return len(codec.encode(hello)), len(topics)

    def _hello(self) -> Hello:
        return Hello(
            session_id=self.session_id, resume_token=self._token,
            positions=tuple(TopicPosition(topic=t, position=p)
                            for t, p in self.positions.items()),
            last_acked_seq=self.last_acked_seq, auth_token=self.auth_token,
            client=self.config.client_info,
            serializer="" if self.config.serializer == "raw" else self.config.serializer)

    def _request(self, topic: str, *, subscribe: bool) -> int:
        request_id = self._next_request
        self._next_request = (self._next_request % 0xFFFFFFFF) + 1
        self._requests[request_id] = (topic, subscribe)
        self._latest[topic] = request_id
        self._send_control(("subscribe" if subscribe else "unsubscribe", topic, request_id))
        return request_id

    def _send_control(self, item: _Control) -> None:
        """Send a Subscribe, Unsubscribe or Refresh over the open connection (nothing
        otherwise): now, or in turn when the server's rate limits (Welcome.limits) are paced,
        before any Data that waits (the server counts every envelope)."""
        conn = self._conn
        if conn is None or conn.state is not ConnectionState.OPEN:
            return
        if self._pace_msgs is None:
            conn.send(self._control_body(item))
            return
        self._paced_control.append(item)
        self._transmit()

    def _control_body(self, item: _Control) -> Body:
        kind, text, request_id = item
        if kind == "subscribe":  # the position as it is when it leaves
            return Subscribe(topic=text, request_id=request_id,
                             position=self.positions.get(text))
        if kind == "unsubscribe":
            return Unsubscribe(topic=text, request_id=request_id)
        return Refresh(token=text)

    def _transmit(self) -> None:
        """Send the paced control envelopes, then pending messages not yet written on this
        connection, within the server's unacked limit and its rate limits."""
        conn = self._conn
        if conn is None or conn.state is not ConnectionState.OPEN:
            return
        limit = self.last_acked_seq + self._max_unacked
        pacing = self._pace_msgs is not None or self._pace_bytes is not None
        control = self._paced_control
        while control:
            if pacing and not self._paced(0):
                return
            conn.send(self._control_body(control.popleft()))
        for item in self._pending:
            if item.seq <= self._sent_upto:
                continue
            if item.seq > limit:
                break
            if pacing and not self._paced(len(item.payload)):
                break
            conn.send(Data(topic=item.topic, seq=item.seq, timestamp_ms=item.timestamp_ms,
                           payload=item.payload))
            self._sent_upto = item.seq

    def _paced(self, size: int) -> bool:
        """Whether a message of ``size`` bytes may go now under the advertised rate limits;
        if not, ``_pace_at`` is when it may. Time is counted in whole milliseconds (the same
        arithmetic as the TypeScript client, so both pace alike: tests/test_differential.py)."""
        now_ms = round(self._now * 1000)
        wait_ms = 0
        # Heartbeats (Ping, Pong) are never held back, but the server counts them: they are
        # charged when sent since the last look, and may put the message bucket in debt.
        conn = self._conn
        sent = conn.heartbeats_sent if conn is not None else self._heartbeats_charged
        owed, self._heartbeats_charged = sent - self._heartbeats_charged, sent
        owed += self._acks_owed  # inbox Acks, sent like heartbeats without waiting
        self._acks_owed = 0
        for bucket, amount in ((self._pace_msgs, 1.0), (self._pace_bytes, float(size))):
            if bucket is None:
                continue
            rate, tokens, updated_ms, capacity = bucket
            tokens = min(capacity, tokens + (now_ms - updated_ms) * rate / 1000)
            if bucket is self._pace_msgs:
                tokens -= owed
            bucket[1], bucket[2] = tokens, now_ms
            need = min(amount, capacity)
            if tokens < need:
                wait_ms = max(wait_ms, math.ceil((need - tokens) * 1000 / rate), 1)
        if wait_ms:
            self._pace_at = min(self._pace_at, (now_ms + wait_ms) / 1000)
            return False
        for bucket, amount in ((self._pace_msgs, 1.0), (self._pace_bytes, float(size))):
            if bucket is not None:
                bucket[1] -= amount
        return True

    def _process(self, now: float) -> None:
        self._now = now
        conn = self._conn
        if conn is None:
            return
        # Drain until empty: the empty call acts on a close held behind messages.
        while events := conn.events_received():
            if self._dispatch(conn, events, now):
                return

    def _dispatch(self, conn: ClientConnection, events: list[AnyConnectionEvent],
                  now: float) -> bool:
        """Handle one batch of connection events; True once the connection is gone."""
        for event in events:
            if isinstance(event, EnvelopeReceived):
                if conn.state is ConnectionState.OPEN:
                    self._on_body(event.body, now)
            elif isinstance(event, Welcomed):
                self._on_welcome(event.welcome, now)
            elif isinstance(event, Closed):
                self._events.append(CloseTransport(attempt=self._attempt_id))
                self._release_conn()
                self._attempt_id += 1
                self._transport_up = False
                self._lost(now, code=event.code, reason=event.reason, cause=event.cause,
                           goodbye=event.goodbye)
                return True
            # HandshakeFailed is followed by Closed, which carries the status in its reason.
        return False

    def _on_welcome(self, welcome: Welcome, now: float) -> None:
        old_session = self.session_id
        if welcome.resumed:
            self._drop_acked(welcome.last_received_seq)
        else:
            # A new session numbers from 1: renumber what the old one never acknowledged.
            resent = len(self._pending)
            for i, item in enumerate(self._pending, start=1):
                item.seq = i
            self._next_seq = resent + 1
            self.last_acked_seq = 0
            if old_session:
                self._events.append(SessionReset(old_session_id=old_session,
                                                 new_session_id=welcome.session_id,
                                                 reason=welcome.fresh_reason, resent=resent))
        self.session_id = welcome.session_id
        self._token = welcome.resume_token
        self._token_fresh = False
        # The server's clock against ours, to place a later Refreshed's expiry.
        self._server_skew_ms = welcome.server_time_ms - self._wall_ms(now) \
            if welcome.server_time_ms else 0
        self._on_credentials(welcome.credentials_expire_ms, welcome.server_time_ms, now)
        pace = self.config.pace
        limits = welcome.limits
        now_ms = float(round(now * 1000))
        # [rate, tokens, updated_ms, capacity]. Capacity: one second's worth, less two
        # messages kept for the heartbeats (a Ping and a Pong may leave at any moment, never
        # held back; charged once sent).
        self._pace_msgs = self._pace_bytes = None
        if limits is not None and pace and limits.max_messages_per_second:
            rate = limits.max_messages_per_second * pace
            capacity = max(min(rate, 1.0), rate - 2)
            self._pace_msgs = [rate, capacity, now_ms, capacity]
        if limits is not None and pace and limits.max_bytes_per_second:
            rate = limits.max_bytes_per_second * pace
            self._pace_bytes = [rate, rate, now_ms, rate]
        self._pace_at = math.inf
        # Heartbeats sent before this Welcome are not the new limits' business.
        self._heartbeats_charged = self._conn.heartbeats_sent if self._conn is not None else 0
        self._acks_owed = 0
        self._paced_control.clear()
        if welcome.limits is not None:
            if welcome.limits.max_unacked:
                self._max_unacked = min(self.config.max_pending, welcome.limits.max_unacked)
            if welcome.limits.max_message_size:
                self._max_message_size = min(self.config.connection.websocket.max_message_size,
                                             welcome.limits.max_message_size)
        self._sent_upto = self.last_acked_seq
        # What the server holds now, against what the app wants (see _reconcile).
        pending_subscribe = {topic for topic, rid in self._latest.items()
                             if self._requests.get(rid, ("", False))[1]}
        server_topics: set[str] = set()
        for recovery in welcome.recovery:
            if recovery.topic in self._unsubscribing:
                self._update_position(recovery)  # kept until the server confirms
            elif not self._apply_recovery(recovery):
                continue
            if not recovery.topic.startswith("$"):
                server_topics.add(recovery.topic)
        self._failures = 0
        self._goodbye_floor = 0.0
        self.connected_at = now
        self.resumed = welcome.resumed
        if not welcome.resumed:
            self._inbox_unacked = 0  # the old inbox is gone
        elif self._inbox_unacked and self._inbox_ack_at == math.inf:
            # Inbox messages that arrived after the last Ack, before the link dropped: the
            # server still keeps them (an Ack, not a Hello, lets them go).
            self._inbox_ack_at = now + self.config.inbox_ack_delay
        self._set_status(ConnectionStatus.CONNECTED)
        self._events.append(Connected(session_id=welcome.session_id, resumed=welcome.resumed,
                                      fresh_reason=welcome.fresh_reason))
        self._reconcile(server_topics, pending_subscribe)
        self._transmit()

    def _on_credentials(self, expire_ms: int, server_time_ms: int, now: float) -> None:
        """Schedule the TokenNeeded for credentials expiring at ``expire_ms`` (server wall
        clock; measured against the server's own time, so the client's clock does not
        matter)."""
        self.credentials_expire_ms = expire_ms
        self._refresh_at = math.inf
        if not expire_ms or not self.config.refresh_tokens:
            return
        # In whole ms, as the TypeScript client computes it.
        remaining_ms = max(0, expire_ms - server_time_ms) if server_time_ms else 0
        wait_ms = max(remaining_ms - round(self.config.refresh_margin * 1000), remaining_ms // 2)
        self._refresh_at = now + wait_ms / 1000

    def _reconcile(self, server_topics: set[str], pending_subscribe: set[str]) -> None:
        """After a Welcome, bring the server's topics in line with the app's requests.

        Requests unanswered when the link dropped are lost; they are made again from what the
        app wants now. A topic the app wants but the server lacks is asked for again if our
        Subscribe never got through; if the server dropped it while we were away (it was
        confirmed and nothing was pending), the server's Unsubscribed, which follows the
        Welcome, says so. A topic the app left but the server still holds is left again.
        """
        self._requests.clear()
        self._latest.clear()
        for topic in sorted(self.subscriptions - server_topics):
            if topic in pending_subscribe or topic not in self.positions:
                self.positions.pop(topic, None)
                self._request(topic, subscribe=True)
        for topic in sorted(self._unsubscribing):
            if topic in server_topics:
                self._request(topic, subscribe=False)
            else:
                self._unsubscribing.discard(topic)
                self.positions.pop(topic, None)

    def _update_position(self, recovery: TopicRecovery) -> None:
        """protocol.md §6.4: a Failed recovery or a position in another epoch replaces the
        stored position; Recovered and Fresh only move it forward (their replay may overlap
        what has already arrived, and is deduplicated against the stored position)."""
        position = recovery.position
        if position is None:
            return
        known = self.positions.get(recovery.topic)
        if recovery.status is not RecoveryStatus.FAILED and known is not None \
                and known.epoch == position.epoch and known.offset >= position.offset:
            return
        self.positions[recovery.topic] = position

    @staticmethod
    def _foreign_reserved(topic: str) -> bool:
        """A ``$`` topic other than ``$all`` and ``$inbox``: no client subscribes to one, so a
        server (or anything on a plain ``ws://`` path) naming it is ignored; its position is
        never kept, and the resuming Hello never carries it."""
        return topic.startswith("$") and topic not in _SERVER_TOPICS

    def _unasked_over_budget(self, topic: str) -> bool:
        """A room the client never subscribed to (nor asked to, nor is leaving) that the server
        announces (a server-side subscription in a Welcome, or a ``Subscribed`` with request id
        0) and that would make the resuming Hello too large for the message limit: ignored like
        a foreign ``$`` topic, so a server (or anything on a plain ``ws://`` path) cannot make
        the session unable to resume. Rooms within the budget are kept as subscriptions."""
        if topic.startswith("$") or topic in self.subscriptions or topic in self._unsubscribing:
            return False
        # The answer is always that of _check_hello_fits; the bounds below (kept as rooms come
        # and go) only spare encoding a whole Hello per room: at most one more
        # TopicPosition costs between _POSITION_COST_MIN and _POSITION_COST_MAX bytes plus
        # its name.
        name = len(topic.encode())
        limit = self._max_message_size
        key = self._hello_key()
        upper = self._hello_upper
        if upper is not None and upper[1:] == key \
                and upper[0] + name + _POSITION_COST_MAX <= limit:
            self._hello_upper = (upper[0] + name + _POSITION_COST_MAX, *key)
            self._hello_lower = None
            return False
        lower = self._hello_lower
        if lower is not None and lower[1:3] == key and len(self.subscriptions) >= lower[3] \
                and len(self._unsubscribing) >= lower[4] and len(self.positions) >= lower[5] \
                and lower[0] + name + _POSITION_COST_MIN > limit:
            return True
        size, _ = self._worst_hello_size(topic)
        if size > limit:
            self._hello_lower = (size - name - _POSITION_COST_MAX, *key,
                                 len(self.subscriptions), len(self._unsubscribing),
                                 len(self.positions))
            return True
        self._hello_upper = (size, *key)
        self._hello_lower = None
        return False

    def _hello_key(self) -> tuple[int, int]:
        return len(self.session_id), len(self._token)

    def _apply_recovery(self, recovery: TopicRecovery) -> bool:
        """Apply a topic's recovery; False if the topic was ignored (see
        :meth:`_foreign_reserved` and :meth:`_unasked_over_budget`)."""
        topic = recovery.topic
        if self._foreign_reserved(topic) or self._unasked_over_budget(topic):
            return False
        self._update_position(recovery)
        if not topic.startswith("$") and topic not in self._unsubscribing:
            self.subscriptions.add(topic)
        if recovery.status is RecoveryStatus.FAILED:
            self._events.append(RecoveryFailed(topic=topic, lost_from=recovery.lost_from,
                                               lost_to=recovery.lost_to,
                                               position=recovery.position))
        return True

    def _on_body(self, body: object, now: float) -> None:
        if isinstance(body, Data):
            position = body.position
            if position is None:
                return  # a server never sends this; nothing to place it by
            topic = body.topic
            if self._foreign_reserved(topic):
                return
            if topic not in self.subscriptions and not topic.startswith("$"):
                # Unsubscribed by the app: the server has not processed it yet.
                if topic in self.positions:
                    self.positions[topic] = position
                return
            known = self.positions.get(topic)
            if known is not None and known.epoch == position.epoch \
                    and position.offset <= known.offset:
                self.duplicates_dropped += 1
                return
            self.positions[topic] = position
            self._events.append(MessageReceived(topic=topic, position=position,
                                                payload=bytes(body.payload),
                                                timestamp_ms=body.timestamp_ms))
            if topic == "$inbox" and self.config.inbox_ack_every:
                self._inbox_unacked += 1
                if self._inbox_unacked >= self.config.inbox_ack_every:
                    self._send_inbox_ack()
                elif self._inbox_ack_at == math.inf:
                    self._inbox_ack_at = now + self.config.inbox_ack_delay
        elif isinstance(body, Ack):
            self._drop_acked(body.seq)
            self._transmit()
        elif isinstance(body, Subscribed):
            recovery = body.recovery
            topic = recovery.topic
            self._requests.pop(body.request_id, None)
            if not self._is_answer(topic, body.request_id, subscribed=True):
                return
            if not self._apply_recovery(recovery):
                return
            self._events.append(SubscribedEvent(topic=topic, recovery=recovery,
                                                request_id=body.request_id))
        elif isinstance(body, Unsubscribed):
            topic = body.topic
            self._requests.pop(body.request_id, None)
            if not self._is_answer(topic, body.request_id, subscribed=False):
                return
            self.subscriptions.discard(topic)
            self._unsubscribing.discard(topic)
            self.positions.pop(topic, None)
            self._events.append(UnsubscribedEvent(topic=topic, request_id=body.request_id))
        elif isinstance(body, Error):
            request = self._requests.pop(body.request_id, None)
            if request is not None and self._latest.get(request[0]) == body.request_id:
                del self._latest[request[0]]
                if request[1]:  # a refused subscription
                    self.subscriptions.discard(request[0])
                else:  # an Unsubscribe the server could not honour: done anyway
                    self._unsubscribing.discard(request[0])
                    self.positions.pop(request[0], None)
            self._events.append(ErrorReceived(error=body))
        elif isinstance(body, Presence):
            self._events.append(PresenceReceived(presence=body))
        elif isinstance(body, Refreshed):
            self._on_credentials(body.credentials_expire_ms,
                                 self._wall_ms(now) + self._server_skew_ms, now)

    def _send_inbox_ack(self) -> None:
        """Tell the server how far this client holds its ``$inbox`` (protocol.md §7): it may
        let go of those messages. Sent at once like a heartbeat (an ``Ack`` is a few dozen
        bytes and at most one per ``inbox_ack_every`` messages or ``inbox_ack_delay``),
        and charged to the pacing before the next paced envelope."""
        self._inbox_unacked = 0
        self._inbox_ack_at = math.inf
        conn = self._conn
        position = self.positions.get("$inbox")
        if conn is None or conn.state is not ConnectionState.OPEN or position is None:
            return
        conn.send(Ack(positions=(TopicPosition(topic="$inbox", position=position),)))
        self._acks_owed += 1

    def _is_answer(self, topic: str, request_id: int, *, subscribed: bool) -> bool:
        """Whether a Subscribed/Unsubscribed decides ``topic``'s state: the answer to the
        latest request, or a server-initiated change (request 0) with nothing pending."""
        latest = self._latest.get(topic)
        if request_id == 0:
            if latest is not None:
                return False  # our pending request is processed after it and will answer
            return not subscribed or topic not in self._unsubscribing
        if request_id != latest:
            return False  # superseded: a later request of ours will be answered
        del self._latest[topic]
        return True

    def _drop_acked(self, seq: int) -> None:
        pending = self._pending
        while pending and pending[0].seq <= seq:
            pending.popleft()
        self.last_acked_seq = max(self.last_acked_seq, seq)

    def _lost(self, now: float, *, code: int, reason: str, cause: RemoteProtocolError | None,
              goodbye: Goodbye | None) -> None:
        """The current attempt or connection is over: schedule the next one, or give up."""
        self._refresh_at = self._pace_at = self._inbox_ack_at = math.inf
        fatal = goodbye is not None and goodbye.code in _FATAL_GOODBYES
        credentials = goodbye is not None and goodbye.code in (ErrorCode.TOKEN_EXPIRED,
                                                               ErrorCode.AUTH_FAILED)
        if credentials and self._wanted and self.config.refresh_tokens \
                and not self._token_fresh:
            # Expired or refused credentials, and the app can get new ones: ask once, and
            # reconnect when it answers (refresh_token), never with the old token.
            self._events.append(Disconnected(code=code, reason=reason, cause=cause,
                                             goodbye=goodbye, will_reconnect=True))
            self._awaiting_token = True
            self._reconnect_at = math.inf
            self._set_status(ConnectionStatus.RECONNECTING)
            self._events.append(TokenNeeded(reason="reconnect"))
            return
        fatal = fatal or (goodbye is not None and goodbye.code == ErrorCode.TOKEN_EXPIRED)
        if goodbye is not None and goodbye.code == ErrorCode.NORMAL and self._wanted:
            # The server ended our session on purpose (a kick): coming back would undo it.
            self._events.append(Disconnected(code=code, reason=reason, cause=cause,
                                             goodbye=goodbye, will_reconnect=False))
            self._wanted = False
            self._reconnect_at = self._attempt_deadline = math.inf
            self._forget_session()
            self._set_status(ConnectionStatus.DISCONNECTED)
            return
        if goodbye is not None and goodbye.reconnect_after_ms:
            self._goodbye_floor = goodbye.reconnect_after_ms / 1000
        self._failures += 1
        policy = self.config.reconnect
        exhausted = policy.max_attempts is not None and self._failures > policy.max_attempts
        will_reconnect = self._wanted and not fatal and not exhausted
        self._events.append(Disconnected(code=code, reason=reason, cause=cause,
                                         goodbye=goodbye, will_reconnect=will_reconnect))
        if not self._wanted:
            return
        if not will_reconnect:
            self._wanted = False
            self._set_status(ConnectionStatus.ERROR)
            why = (goodbye.reason if fatal and goodbye is not None
                   else f"gave up after {policy.max_attempts} reconnect attempts "
                   f"(last: {reason or code})")
            self._events.append(GaveUp(reason=why, last_code=code, last_reason=reason))
            return
        delay = policy.delay(self._failures, self._entropy.random(), self._goodbye_floor)
        self._reconnect_at = now + delay
        self._set_status(ConnectionStatus.RECONNECTING)
        self._events.append(Reconnecting(attempt=self._failures,
                                         max_attempts=policy.max_attempts, delay=delay))

    def _release_conn(self) -> None:
        # Unsent requests are sent again after the next Welcome (_reconcile); a token
        # rides in the next Hello.
        self._paced_control.clear()
        self._inbox_ack_at = math.inf  # due again after the next (resumed) Welcome
        if self._conn is not None:
            self._leftover.extend(self._conn.data_to_send())
            self._conn = None

    def _forget_session(self) -> None:
        self.session_id = ""
        self._token = b""
        self.positions.clear()
        self._unsubscribing.clear()
        self._latest.clear()
        self._pending.clear()
        self._requests.clear()
        self._next_seq = 1
        self._sent_upto = 0
        self.last_acked_seq = 0
        self._inbox_unacked = 0
        self._awaiting_token = False
        self._refresh_at = math.inf
        self.credentials_expire_ms = 0
