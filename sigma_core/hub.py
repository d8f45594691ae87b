"""The server: sessions, topics, replay, presence, limits and stats — sans-IO.

Theory of operation
-------------------
The adapter accepts a socket and calls :meth:`Hub.open_connection` for a ``conn_id``; from then on
it feeds bytes (:meth:`Hub.receive_data`), reports the socket's end
(:meth:`Hub.connection_lost`), wakes the hub at :meth:`Hub.next_deadline` (:meth:`Hub.handle_timer`)
and, after every call, writes what :meth:`Hub.flush` returns (closing sockets it marks). The app
reads :meth:`Hub.events_received` and calls the commands (:meth:`Hub.publish`,
:meth:`Hub.broadcast`, :meth:`Hub.send_to`, :meth:`Hub.subscribe`, ...).

A **session** outlives connections: it holds the resume token, the subscriptions (with the
position each started at), and the highest client sequence received. When its connection ends it
is *detached*, and expires ``session_ttl`` seconds later unless a connection resumes it.

Every server→client message is published to a **topic** in the backplane — a room, ``$all`` (the
implicit broadcast topic, every session is subscribed) or the session's ``$inbox`` — so it has a
position and sits in bounded history. A resuming client sends its positions; for each subscribed
topic the hub replays what followed, in order, *before* anything live, or reports the topic
``FAILED`` with the lost range (see docs/design.md).
"""

from __future__ import annotations

import builtins
import enum
import heapq
import hmac
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, NamedTuple, TypeAlias, cast

from . import codec
from .backplane import HistoryEntry, HistoryLimits, MemoryEngine, ReplayGap, new_tuple
from .codec._fast import encode_ack, encode_ack_frame
from .codec._fast import encode_data_frame as encode_frame
from .codec._fast import encode_data_parts as encode_parts
from .connection import (
    AnyConnectionEvent,
    Closed,
    ConnectionConfig,
    ConnectionState,
    DataBatch,
    DataFields,
    EnvelopeReceived,
    HandshakeRequest,
    HelloReceived,
    HttpRequest,
    HttpResponse,
    InboxAckPosition,
    ServerConnection,
    fan_out,
)
from .drain import spread_times
from .engine import (
    Append,
    Appended,
    DeleteSession,
    DropTopic,
    EngineFailed,
    EngineRequest,
    EngineResult,
    ExternalEngineConfig,
    Heads,
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
    RecordError,
    Route,
    SaveSession,
    SessionLoaded,
    SessionRecord,
    SessionSaved,
    StopReceiving,
    decode_session_record,
    encode_session_record,
    token_digest,
)
from .entropy import Entropy
from .errors import CloseCode, ErrorCode, LocalProtocolError, RemoteProtocolError
from .message_socket import MessageSocket
from .messages import (
    ENVELOPE_OVERHEAD,
    PROTOCOL_VERSION,
    Ack,
    Data,
    Error,
    Goodbye,
    Hello,
    Limits,
    Presence,
    PresenceAction,
    RecoveryStatus,
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
from .metrics import HubMetrics
from .proxies import TrustedProxies
from .ratelimit import RateLimit, TokenBucket

# Builds a NamedTuple (HistoryEntry, StreamPosition) from a tuple of all its fields, skipping
# the Python-level __new__ that typing.NamedTuple generates: one of each per message.
_tuple_new: Final = tuple.__new__
# (A C static in the compiled build, not a module-dict lookup per message.)
_ENVELOPE_OVERHEAD: Final = ENVELOPE_OVERHEAD
#: The inbox's wire topic's size in the envelope (ASCII).
_INBOX_TOPIC_SIZE: Final = 6
# The classes built or tested per message, as C statics too (an imported class is read from
# the module's dict at every use: ~130 instructions each).
_HistoryEntry: Final = HistoryEntry
_StreamPosition: Final = StreamPosition
# (encode_frame and connection's read_client_data are imported by name, not read off the codec
# package: compiled, a call to a function the build knows is a direct C call; through a module
# attribute it is a Python-level call, its keyword arguments parsed on every message.)

__all__ = [
    "BROADCAST_TOPIC",
    "INBOX_TOPIC",
    "AuthAccept",
    "AuthRefuse",
    "AuthRequest",
    "ClientConnected",
    "ClientDisconnected",
    "ClientErrorReceived",
    "ClientMessage",
    "CloseAction",
    "ClusterPresence",
    "ConnectionRejected",
    "EngineRecordRejected",
    "HookFailed",
    "Hub",
    "HubConfig",
    "HubEvent",
    "PresenceChanged",
    "PublishFailed",
    "ServerStats",
    "Session",
    "SessionExpired",
    "TopicLost",
    "TopicMessage",
    "TopicWatched",
]

# (Final: compiled, a constant or a C static instead of a module-dict lookup per use.)
BROADCAST_TOPIC: Final = "$all"
INBOX_TOPIC: Final = "$inbox"
_RESERVED_PREFIX: Final = "$"
_INBOX_KEY: Final = "$inbox:"
_NOBODY: Final[frozenset[str]] = frozenset()
_OPEN: Final = ConnectionState.OPEN
_CLOSED: Final = ConnectionState.CLOSED
_HELLO: Final = ConnectionState.HELLO


class CloseAction(enum.IntEnum):
    """What :meth:`Hub.flush` asks the adapter to do with a socket after writing its chunks.
    Falsy only for ``NONE``, so ``if action:`` means "close it one way or the other"."""

    #: Keep the socket open.
    NONE = 0
    #: Close gracefully: let the written bytes (the close frame) drain first.
    CLOSE = 1
    #: Drop it now (``transport.abort()``): a slow consumer that cannot drain, or a socket that
    #: did not finish closing within ``close_timeout``.
    ABORT = 2


# ----------------------------------------------------------------------------- config


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRequest:
    """What the authentication hook sees: the Hello and the HTTP upgrade request."""

    hello: Hello
    path: str
    headers: tuple[tuple[str, str], ...]
    #: Wall-clock seconds since the epoch when the Hello arrived (for token expiry checks).
    now: float = 0.0
    #: The hub's own clock at that moment (the ``now`` the adapter passed).
    monotonic: float = 0.0
    #: The session being refreshed when this is a token refresh on an open connection
    #: (``hello.auth_token`` holds the new token); None for a Hello.
    refreshing: Session | None = None

    def header(self, name: str) -> str | None:
        """First value of a header (names compare case-insensitively)."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def origin(self) -> str | None:
        return self.header("origin")

    def __repr__(self) -> str:
        # Header values may be credentials (Authorization, Cookie): names only. The Hello's
        # repr leaves out its tokens.
        names = ", ".join(k for k, _ in self.headers)
        return f"AuthRequest(path={self.path!r}, headers=[{names}], hello={self.hello!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthAccept:
    """Let the client in; ``identity`` and ``metadata`` are kept on its session.

    The rest is what a token may carry (see ``sigma_auth``): ``channels`` are subscribed on
    connect (past the topic limit or the permission they are skipped); ``topics``, when not
    None, is the permission: a topic name, or a prefix ending in ``*``, per allowed topic
    (checked before ``authorize_subscribe``); ``rate_limit`` replaces
    ``HubConfig.identity_rate_limit`` for this identity; ``expires_at`` (wall-clock seconds)
    is when the credentials expire: told to the client in Welcome, which refreshes before then,
    else the connection is closed ``credentials_grace`` seconds later with 4010.
    """

    identity: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    topics: tuple[str, ...] | None = None
    rate_limit: RateLimit | None = None
    expires_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthRefuse:
    """Keep the client out: it gets Goodbye(AUTH_FAILED, message) and close 4005 (clients do
    not retry). With ``retry_after`` (seconds) the refusal is temporary (credentials could not
    be checked yet, e.g. JWKS keys unavailable): Goodbye(AUTH_UNAVAILABLE, message,
    reconnect_after_ms) and close 1013, and the client retries."""

    message: str = "authentication failed"
    retry_after: float | None = None


AuthHook = Callable[[AuthRequest], AuthAccept | AuthRefuse]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubConfig:
    """Server-side limits and policies. Durations in seconds, sizes in bytes."""

    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    history: HistoryLimits = field(default_factory=HistoryLimits)
    #: A detached session is forgotten this long after its last connection ended.
    session_ttl: float = 300.0
    #: Upgrades beyond this many open connections are refused with HTTP 503.
    max_connections: int = 10_000
    #: Fresh sessions beyond this many are refused (Goodbye LIMIT_EXCEEDED, close 1013).
    max_sessions: int = 100_000
    #: Topics a session may hold, not counting ``$all`` and ``$inbox``.
    max_topics_per_session: int = 100
    #: Longest topic name in UTF-8 bytes.
    max_topic_length: int = 256
    #: Advertised to clients: unacknowledged messages they may have in flight.
    max_unacked: int = 1000
    #: Bytes held in the core for a connection whose socket is paused (send buffer full)
    #: beyond which it is a slow consumer (closed with 4007;
    #: its session stays resumable).
    outgoing_high_water: int = 4 << 20
    #: Ack after this many client messages, or ``ack_delay`` after the first unacked one.
    ack_every: int = 32
    ack_delay: float = 0.05
    #: Send ``Presence`` envelopes to a topic's subscribers when members join or leave.
    presence_notifications: bool = False
    #: Called with each Hello (after the upgrade); None admits everyone.
    authenticate: AuthHook | None = None
    #: Answers plain HTTP GET/HEAD requests on the WebSocket's port (a web app and its socket
    #: on one port); None refuses them with 400. Runs synchronously: keep it quick.
    http_handler: Callable[[HttpRequest], HttpResponse] | None = None
    #: Called when a client asks to subscribe: False refuses with Error(SUBSCRIBE_DENIED).
    #: Server-side :meth:`Hub.subscribe` is not checked. None allows every valid topic.
    authorize_subscribe: Callable[[Session, str], bool] | None = None
    #: When set, an upgrade whose Origin header is not in it is refused with HTTP 403
    #: (browsers always send Origin; other clients may omit it and are then refused too).
    #: Compared without regard to letter case (an origin is scheme, host and port).
    allowed_origins: tuple[str, ...] | None = None
    #: Resume token length. 32 bytes = 256 bits from the injected entropy.
    resume_token_bytes: int = 32
    #: Seconds between sweeps that drop history entries older than ``history.max_age``.
    trim_interval: float = 10.0
    #: Per-connection limits on client Data (messages/s, bytes/s; disabled by default),
    #: advertised in Welcome.limits. Exceeding them closes with 4008 (RATE_LIMITED): the
    #: session stays resumable and the refused message is resent after the resume.
    rate_limit: RateLimit = field(default_factory=RateLimit)
    #: The same limits shared by all connections of one identity (``AuthAccept.identity``;
    #: an ``AuthAccept.rate_limit`` replaces it for that identity). Welcome.limits advertises
    #: the tighter of the two; exceeding either closes with 4008.
    identity_rate_limit: RateLimit = field(default_factory=RateLimit)
    #: Seconds a connection stays open past ``AuthAccept.expires_at`` without a token refresh
    #: before it is closed with 4010 (TOKEN_EXPIRED).
    credentials_grace: float = 30.0
    #: The payload serializer's name (``sigma_core.serializers``): a Hello that names another
    #: ("" counts as "raw") is refused with 4011 (SERIALIZER_MISMATCH).
    serializer: str = "raw"
    #: History bytes one connection may be replayed in all (its Hello's topics and its
    #: Subscribes together). A topic whose replay would pass it is reported ``FAILED`` (all or
    #: nothing per topic) and continues from the live head.
    max_replay_bytes: int = 16 << 20
    #: Replay is handed to the socket in pieces of about this many bytes, the next piece only
    #: once the previous one was taken (and never while the socket is paused). Capped at
    #: ``outgoing_high_water``.
    replay_batch_bytes: int = 256 << 10
    #: Positions one Hello may carry (a client sends one per topic it holds, plus ``$all`` and
    #: ``$inbox``). More closes the connection with 4009 (LIMIT_EXCEEDED). 0: derived,
    #: ``max_topics_per_session + 2``.
    max_hello_positions: int = 0
    #: Sessions (connected or awaiting resume) one peer address may hold; a fresh session past
    #: it is refused with close 1013 and a retry hint. 0 disables the cap.
    max_sessions_per_peer: int = 1000
    #: Fresh sessions one peer address may open per second (a token bucket holding
    #: ``new_session_burst_per_peer``); past it, close 1013 with a retry hint. 0 disables it.
    new_sessions_per_peer_per_second: float = 20.0
    new_session_burst_per_peer: int = 200
    #: Reverse proxies (IP addresses or networks, e.g. ``("127.0.0.1", "10.0.0.0/8")``) whose
    #: sockets carry the client's address in ``X-Forwarded-For``: the per-peer limits then
    #: count the client, not the proxy (see :mod:`sigma_core.proxies`). Empty: the socket's
    #: own address always (the header is ignored).
    trusted_proxies: tuple[str, ...] = ()
    #: Sockets that have not completed the WebSocket upgrade (or an HTTP request) held at
    #: once; a socket accepted past it is dropped at once (no bytes read).
    max_pending_handshakes: int = 1000
    #: Longest ``ClientInfo`` string (name, version, platform) a Hello may carry, in characters;
    #: longer closes with 4009 (LIMIT_EXCEEDED).
    max_client_info_length: int = 256
    #: Entries in ``ClientInfo.metadata`` a Hello may carry, and the total characters of its
    #: keys and values; more closes with 4009 (LIMIT_EXCEEDED).
    max_client_metadata_entries: int = 32
    max_client_metadata_chars: int = 4096

    def hello_positions_limit(self) -> int:
        """Positions a Hello may carry under this configuration."""
        return self.max_hello_positions or self.max_topics_per_session + 2

    def welcome_size_bound(self) -> int:
        """Bytes a Welcome can take at most under these limits (every topic of a full session,
        each with a recovery record, plus ``$all`` and ``$inbox``); framing included."""
        per_topic = self.max_topic_length + 64  # TopicRecovery: string, struct, 3 longs, vtable
        return (self.max_topics_per_session + 2) * per_topic + self.resume_token_bytes + 256

    def __post_init__(self) -> None:
        for name in ("max_connections", "max_sessions", "max_topics_per_session",
                     "max_topic_length", "max_unacked", "outgoing_high_water", "ack_every",
                     "max_replay_bytes", "replay_batch_bytes", "max_pending_handshakes",
                     "max_client_info_length", "max_client_metadata_entries",
                     "max_client_metadata_chars", "new_session_burst_per_peer"):
            if getattr(self, name) < 1:
                raise ValueError(f"HubConfig.{name} must be >= 1")
        for name in ("max_hello_positions", "max_sessions_per_peer"):
            if getattr(self, name) < 0:
                raise ValueError(f"HubConfig.{name} must be >= 0 (0: see its documentation)")
        TrustedProxies(self.trusted_proxies)  # raises ValueError naming a bad entry
        rate = self.new_sessions_per_peer_per_second
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError("HubConfig.new_sessions_per_peer_per_second must be finite and "
                             ">= 0 (0 disables it)")

        for name in ("session_ttl", "ack_delay", "trim_interval", "credentials_grace"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"HubConfig.{name} must be finite and >= 0")
        if self.resume_token_bytes < 16:
            raise ValueError("HubConfig.resume_token_bytes must be >= 16 (128 bits)")
        if self.resume_token_bytes > 256:
            raise ValueError("HubConfig.resume_token_bytes must be <= 256")
        # A Welcome lists every topic of a session; it must fit in one message.
        welcome_max = self.welcome_size_bound()
        if self.connection.websocket.max_message_size < welcome_max:
            raise ValueError(
                f"max_message_size {self.connection.websocket.max_message_size} is too small "
                f"for a Welcome listing max_topics_per_session={self.max_topics_per_session} "
                f"topics of up to {self.max_topic_length} bytes (needs >= {welcome_max}): "
                "raise it or lower the topic limits")


# ----------------------------------------------------------------------------- sessions


#: The metadata of every session that has none: one shared empty dict (a server holds thousands
#: of sessions, most without metadata). The hub never changes a session's dict in place: new
#: metadata replaces it (see :meth:`Session.metadata`'s note).
_NO_METADATA: dict[str, str] = {}
#: A single node's ``$inbox`` subscription start while it is the inbox's first position (its
#: epoch, offset 0): epoch 0 is never a stream's, so it cannot be taken for a real position. Only
#: the subscription dicts that sessions share hold it (see :meth:`Hub._new_session`).
_INBOX_FROM_START: Final = StreamPosition(0, 0)


class Session:
    """A client's session as the app sees it (read its attributes; don't assign them, nor change
    the dicts they hold: ``metadata`` of a session without any is one dict all of them share)."""

    __slots__ = (
        "_ack_due",
        "_acked_seq",
        "_conn",
        "_digest",
        "_presence_stale",
        "_save_again",
        "_saved_seq",
        "_saving",
        "_token",
        "_version",
        "client_version",
        "conn_id",
        "connected_at",
        "credentials_expire_at",
        "expires_at",
        "id",
        "identity",
        "last_activity",
        "last_seq",
        "metadata",
        "peer",
        "subscriptions",
        "topic_permission",
    )

    def __init__(self, session_id: str, token: bytes, now: float) -> None:
        self.id = session_id
        #: The address (host, no port) of the connection that created the session.
        self.peer = ""
        self._token = token
        self.identity = ""
        self.metadata: dict[str, str] = _NO_METADATA
        self.client_version = ""
        #: topic -> the position the subscription started at (replay floor). On a single node
        #: ``$inbox`` reads ``StreamPosition(0, 0)`` while it starts at the inbox's first
        #: message, and sessions that joined between two broadcasts share one dict until one
        #: of them subscribes to a room (don't change it).
        self.subscriptions: dict[str, StreamPosition] = {}
        #: Highest contiguous client sequence received.
        self.last_seq = 0
        self._acked_seq = 0
        self._ack_due = math.inf
        # Cluster (external engine) bookkeeping: the record's version this node wrote last,
        # the client sequence the engine holds, one save in flight (and one more owed).
        self._digest = b""
        self._version = 0
        self._saved_seq = 0
        self._saving = False
        self._save_again = False
        #: Identity or metadata changed since this node wrote the session's presence info:
        #: the next presence refresh writes it again (otherwise it sends the id only).
        self._presence_stale = False
        self.conn_id: int | None = None
        #: The connection of ``conn_id`` (the fan-out's shortcut).
        self._conn: ServerConnection | None = None
        self.connected_at = now
        self.last_activity = now
        self.expires_at = math.inf
        #: Topics this session may subscribe to (names, or prefixes ending in ``*``); None:
        #: no restriction beyond ``authorize_subscribe``. From ``AuthAccept.topics``.
        self.topic_permission: tuple[str, ...] | None = None
        #: Wall-clock seconds when its credentials expire (``AuthAccept.expires_at``).
        self.credentials_expire_at: float | None = None

    def may_use_topic(self, topic: str) -> bool:
        """Whether ``topic_permission`` allows ``topic``."""
        allowed = self.topic_permission
        if allowed is None:
            return True
        for pattern in allowed:
            if pattern.endswith("*"):
                if topic.startswith(pattern[:-1]):
                    return True
            elif topic == pattern:
                return True
        return False

    @property
    def connected(self) -> bool:
        return self.conn_id is not None

    def __repr__(self) -> str:  # never shows the resume token
        return f"<Session {self.id} {'connected' if self.connected else 'detached'}>"


# ----------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class HubEvent:
    """Base of every event the hub emits."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConnected(HubEvent):
    session: Session
    conn_id: int
    resumed: bool
    #: Why a resume attempt became a fresh session ("" otherwise).
    fresh_reason: str = ""
    #: Topics whose history could not be replayed to this client.
    failed_topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientMessage(HubEvent):
    session: Session
    seq: int
    topic: str
    payload: bytes
    timestamp_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientDisconnected(HubEvent):
    """A connection that had a session ended. The session lives on (resumable) unless
    ``session_ended``."""

    session: Session
    conn_id: int
    code: int
    reason: str
    cause: RemoteProtocolError | None
    session_ended: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionRejected(HubEvent):
    """A connection ended before it had a session (refused upgrade, auth, limits, garbage)."""

    conn_id: int
    code: int
    reason: str
    cause: RemoteProtocolError | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionExpired(HubEvent):
    session: Session


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceChanged(HubEvent):
    topic: str
    session: Session
    action: PresenceAction


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientErrorReceived(HubEvent):
    session: Session
    error: Error
    #: False past the first ``_LOGGED_CLIENT_ERRORS`` of a connection: the log takes it at
    #: DEBUG, so a client repeating Error envelopes cannot flood the INFO log.
    loud: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterPresence(HubEvent):
    """The answer to :meth:`Hub.request_presence`: ``topic``'s members on every node (empty,
    with ``failed`` saying why, when the engine could not answer)."""

    topic: str
    members: frozenset[str]
    failed: str = ""
    #: Session id -> that member's identity (``AuthAccept.identity``; "" when its node stored
    #: none or its entry is unreadable), for every member.
    identities: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicMessage(HubEvent):
    """A message of a topic the app watches (:meth:`Hub.watch`), published on *any* node:
    every node's hub emits the same messages of the topic in the same (position) order, each
    once — the app's server-side subscription. ``history`` marks the messages the watch began
    with (the last ``history`` ones published before it)."""

    topic: str
    position: StreamPosition
    payload: bytes
    timestamp_ms: int
    history: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicLost(HubEvent):
    """Offsets ``lost_from..lost_to`` (``lost_to`` 0: unknown, another epoch) of a watched
    topic never reached this node and are gone from history (a cluster engine that lost its
    data, a failover); the watch goes on from ``position``. The app resyncs what it derived
    from the topic."""

    topic: str
    lost_from: int
    lost_to: int
    position: StreamPosition


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicWatched(HubEvent):
    """A :meth:`Hub.watch` is in place: its history (if any was asked) came before this event,
    live messages follow it; ``position`` is where history ended. With ``failed`` (the cluster
    engine could not answer) the watch was not set up: call ``watch`` again later."""

    topic: str
    position: StreamPosition
    failed: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishFailed(HubEvent):
    """With an external engine: a publish the engine did not confirm (``reason``: "timeout",
    "engine unavailable", the engine's error). It may still have been stored (a timeout): if
    so it is delivered everywhere once, with its position; the app decides whether to
    publish again (an app-level id in the payload lets receivers drop a second copy)."""

    topic: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRecordRejected(HubEvent):
    """Something read back from the cluster engine was corrupt or foreign (a session record,
    a history entry): the resume became a fresh session, or the range was reported lost.
    ``what`` names it, ``reason`` says what was wrong. Log it: it means a bug or tampering."""

    what: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HookFailed(HubEvent):
    """An application hook (``authenticate``, ``authorize_subscribe``) raised. The client was
    refused (close 1011 / Error SUBSCRIBE_DENIED) and the hub carried on."""

    hook: str
    error: builtins.Exception  # (qualified: mypyc resolves dataclass annotations by name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStats:
    """The original's fields plus what a resumable protocol needs watched."""

    connected_clients: int
    total_connections: int
    messages_received: int
    messages_sent: int
    #: Seconds since the hub was created.
    uptime: float
    #: Mean smoothed heartbeat RTT over open connections, in seconds (0.0 if none measured).
    average_latency: float
    bytes_received: int
    bytes_sent: int
    sessions: int
    resumes: int
    failed_resumes: int
    failed_recoveries: int
    slow_consumer_disconnects: int
    duplicates_dropped: int
    rate_limited_disconnects: int
    #: Cluster (external engine) figures; 0 / True on a single node. All node-local.
    #: Whether the engine is reachable (``Hub.engine_status``).
    engine_up: bool = True
    #: Engine requests that failed, timed out or could not be sent (engine down, max_pending).
    engine_failures: int = 0
    #: Hellos and subscriptions refused because the engine was unavailable or saturated.
    engine_refusals: int = 0
    #: Messages from the engine dropped as already delivered (continuity check).
    cross_node_duplicates: int = 0
    #: Ranges reported lost to subscribers because neither delivery nor history had them.
    lost_ranges: int = 0
    #: Session records and history entries read back corrupt or foreign.
    rejected_records: int = 0


# One ClientMessage per client message: built as a bare object with its slots set (the frozen
# dataclass's keyword __init__ costs twice as much; the values come checked from the codec).
# ClientMessage.__new__ is object.__new__ in Python; compiled by mypyc, the class's own.
_new_client_message = ClientMessage.__new__
_CLIENT_MESSAGE_SLOTS = tuple(vars(ClientMessage)[name].__set__
                              for name in ("session", "seq", "topic", "payload", "timestamp_ms"))


#: A client's message as the hub queues it among its events: ``(session, seq, topic, payload,
#: timestamp_ms)``, a plain tuple instead of a :class:`ClientMessage` built per message.
#: :meth:`Hub.events_received` turns it into the ``ClientMessage``; the adapters' pump
#: (:mod:`sigma_core.pump`) reads it as is (``Hub._take_events``) and hands the listeners the
#: session, the payload and the topic.
MessageFields: TypeAlias = tuple[Session, int, str, bytes, int]


class MessageRun:
    """A run of one session's messages as the hub queues it among its events: the fields of
    each message of a read's run (``connection.DataBatch``: ``(seq, topic, payload,
    timestamp_ms)`` tuples, in order) that the hub accepted, with their session. One object for
    the run where :data:`MessageFields` is a tuple per message; when every message of the run
    is accepted, ``fields`` is the very list the connection handed up.
    :meth:`Hub.events_received` turns each into its ``ClientMessage``; the adapters' pump reads
    the fields as they are."""

    __slots__ = ("fields", "session")

    def __init__(self, session: Session, fields: list[DataFields]) -> None:
        self.session = session
        self.fields = fields


def _client_message(session: Session, seq: int, topic: str, payload: bytes,
                    timestamp_ms: int) -> ClientMessage:
    event = _new_client_message(ClientMessage)
    set_session, set_seq, set_topic, set_payload, set_timestamp = _CLIENT_MESSAGE_SLOTS
    set_session(event, session)
    set_seq(event, seq)
    set_topic(event, topic)
    set_payload(event, payload)
    set_timestamp(event, timestamp_ms)
    return event


# ----------------------------------------------------------------------------- hub


class _Conn:
    __slots__ = (
        "accepted",
        "backlog",
        "backlog_bytes",
        "backlog_keys",
        "buckets",
        "client_errors",
        "close_action",
        "conn",
        "handshaking",
        "heartbeats_charged",
        "http",
        "id",
        "opened",
        "paused",
        "peer",
        "pump_due",
        "replayed",
        "request",
        "scheduled",
        "session",
    )

    def __init__(self, conn_id: int, conn: ServerConnection, peer: str) -> None:
        #: The connection's id as one int object, kept boxed (Any: compiled, an ``int`` field
        #: is a native int, boxed afresh at every use as a key). The key of ``Hub._conns``, the
        #: sessions' ``conn_id``, what ``_dirty`` holds and ``flush`` looks up: the dict and
        #: set lookups find it by identity. Ids above 256 are not CPython's cached small ints, so
        #: at 1,000 connections a fresh box per use cost an allocation, and each lookup an int
        #: comparison reading the stored key's object (a cache miss), several times a read.
        self.id: Any = conn_id
        self.opened = 0.0
        self.conn = conn
        self.peer = peer
        self.paused = False
        self.http = False
        #: Not yet past the upgrade (counted against ``max_pending_handshakes``).
        self.handshaking = True
        #: The authenticate hook's acceptance of its Hello, while a cluster engine loads the
        #: session (applied to the session when it is built).
        self.accepted: AuthAccept | None = None
        #: The replay cursor: history entries owed to this connection, handed to the socket in
        #: pieces of ``replay_batch_bytes`` as it drains (see :meth:`Hub._pump_backlog`). While
        #: it is not empty, live messages of the topics in ``backlog_keys`` queue behind it.
        self.backlog: deque[bytes] | None = None
        self.backlog_bytes = 0
        #: None until the first replay that goes through the backlog (most never do).
        self.backlog_keys: set[str] | None = None
        self.pump_due = False
        #: History bytes replayed (or queued for replay) on this connection so far.
        self.replayed = 0
        #: Heartbeats (Ping/Pong envelopes) already charged to the rate limit.
        self.heartbeats_charged = 0
        self.client_errors = 0
        self.close_action = CloseAction.NONE
        #: (messages, bytes) token buckets when rate limits are on.
        self.buckets: tuple[TokenBucket | None, TokenBucket | None] | None = None
        self.session: Session | None = None
        self.request: HandshakeRequest | None = None
        self.scheduled = math.inf


_Buckets = tuple[TokenBucket | None, TokenBucket | None]


def _ms(wall: float | None) -> int:
    """Wall-clock seconds as the wire's ms (0: never)."""
    return 0 if wall is None else max(1, int(wall * 1000))


def _buckets(limit: RateLimit, now: float) -> _Buckets:
    per_msg, per_byte = limit.messages_per_second, limit.bytes_per_second
    return (TokenBucket(per_msg, per_msg * limit.burst, now) if per_msg else None,
            TokenBucket(per_byte, per_byte * limit.burst, now) if per_byte else None)


def _take(buckets: _Buckets, size: int, now: float) -> bool:
    messages, octets = buckets
    if messages is not None and not messages.take(1, now):
        return False
    return octets is None or octets.take(size, now)


#: Error envelopes of one connection logged at INFO; the rest go to DEBUG.
_LOGGED_CLIENT_ERRORS = 10

_HTTP_500 = HttpResponse(status=500, headers=(("content-type", "text/plain"),),
                         body=b"internal server error")

_TimerKind = Literal["conn", "ack", "expire", "trim", "reap", "replay", "drain", "engine", "heads",
                     "presence", "credentials", "heap"]

#: A client's ``$inbox`` Ack lets go of the history it acknowledges a slice at a time, each
#: slice after output was written: one right after the write of the read that carried the Ack
#: (:meth:`Hub.after_write`, called by the socket adapters' pump), one after each read that
#: follows, and one per timer turn when no read comes (``RELEASE_DEFER``; a driver that never
#: calls ``after_write`` releases in timer turns alone, one at once after the other:
#: :meth:`Hub.next_deadline`). A timer turn's slice is this many entries; a read's slice this
#: many more than the inbox messages published since the last slice, so that under traffic the
#: acknowledged history goes at least as fast as inboxes grow (a read carrying 64 echoes frees
#: up to 96, never fewer than it made: "Session 9: the release keeps pace"). Freeing 128
#: acknowledged 1 KiB replies at once took ~35 µs, and every message that came in meanwhile
#: waited for it (the p99 of docs/benchmarks.md's workload (a), "Session 8: latency (a)"); a
#: timer turn per Ack cost a loop iteration and a wake-up per Ack ("Session 9: the cost per
#: read").
RELEASE_SLICE = 32
#: What a read's slice (:meth:`Hub.after_write`) leaves is due in a timer turn this long after
#: the latest read (seconds; as long as ``ack_delay``'s default): under traffic the next reads
#: take it, a slice each after their own writes, and the adapter's timer is not re-armed for it.
RELEASE_DEFER = 0.05

#: ``Hub.heap_trim`` runs once history has released this many envelope bytes since its last
#: run (1 MiB: below it the heap a trim could return is not worth the walk)...
HEAP_TRIM_AFTER = 1 << 20
#: ... and no release came for this long (a burst of acknowledgements is over; under steady
#: traffic the freed heap is reused at once, and trimming it would only fault it back in),
#: or at the latest ``trim_interval`` after the threshold was passed.
HEAP_TRIM_QUIET = 0.1


def _presence_info(session: Session) -> bytes:
    """A member's info in the engine's presence: its identity and metadata (JSON)."""
    return json.dumps({"identity": session.identity, "metadata": session.metadata},
                      sort_keys=True, separators=(",", ":")).encode()


def _ignore(result: EngineResult, now: float) -> None:
    """The continuation of a request whose result needs nothing done (failures are counted
    where results come in)."""


class _Recovered(NamedTuple):
    """One topic of a recovery through the engine: the outcome, the envelopes replayed to the
    session alone, and the entries to feed through the node's tracker after it."""

    outcome: TopicRecovery
    envelopes: list[bytes]
    key: str
    feed: list[HistoryEntry]


class _Gather:
    """Topics of one recovery still waiting for the engine, and the first failure."""

    __slots__ = ("failed", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.failed = ""


def _pos(outcome: TopicRecovery) -> StreamPosition:
    return outcome.position if outcome.position is not None else StreamPosition(0, 0)


class _Tracker:
    """One engine topic this node receives: where its delivery stands (see _topic_in)."""

    __slots__ = ("epoch", "filling", "held", "last", "receiving")

    def __init__(self, epoch: int, last: int) -> None:
        self.epoch = epoch
        self.last = last
        #: Receive was confirmed (False: not yet, or it failed: asked again by the heads
        #: check; meanwhile the heads check fills in what is appended).
        self.receiving = False
        #: Early messages (offset -> entry) waiting for a hole before them to be filled.
        self.held: dict[int, HistoryEntry] = {}
        self.filling = False


class _Watch:
    """A topic the app watches (Hub.watch): live messages wait in ``held`` while its history
    is being read, so the app gets history first, then live, in position order."""

    __slots__ = ("held", "ready")

    def __init__(self) -> None:
        self.ready = False
        self.held: list[HubEvent] = []


def _identity(info: bytes) -> str:
    """The identity in a presence member's info (see _presence_info); "" if unreadable."""
    try:
        doc = json.loads(info)
    except (ValueError, UnicodeDecodeError):
        return ""
    identity = doc.get("identity") if isinstance(doc, dict) else None
    return identity if isinstance(identity, str) else ""


class Hub:
    """All server state of one process. See the module docstring for the call protocol."""

    def __init__(self, config: HubConfig | None = None, *, entropy: Entropy, now: float,
                 engine: MemoryEngine | ExternalEngineConfig | None = None) -> None:
        self.config = config or HubConfig()
        origins = self.config.allowed_origins
        self._origins = None if origins is None else frozenset(o.lower() for o in origins)
        self._conn_config = self.config.connection
        if self.config.http_handler is not None:
            self._conn_config = replace(self._conn_config, websocket=replace(
                self._conn_config.websocket, serve_http=True))
        self._entropy = entropy
        # The memory engine serves a single node inline (the hot path calls it directly). With
        # an ExternalEngineConfig the hub emits requests (engine_requests) and takes results
        # (engine_result): the cluster paths.
        self._external = engine if isinstance(engine, ExternalEngineConfig) else None
        # Its own engine on a single node: inboxes are streams from their first message (this
        # hub never appends to an inbox it dropped, see sigma_core.backplane).
        self._engine = engine if isinstance(engine, MemoryEngine) \
            else MemoryEngine(entropy, self.config.history, lazy_inboxes=self._external is None)
        self._node_id = self._external.node_id if self._external is not None else ""
        self._outbox: list[EngineRequest] = []
        self._pending: dict[int, Callable[[EngineResult, float], None]] = {}
        #: request id -> when it times out, in request order (the timeout is one constant, so
        #: this is also deadline order): one "engine" timer, for the oldest, is armed at a
        #: time, not one per request (each would wake the adapter for nothing when answered).
        self._pending_due: dict[int, float] = {}
        self._engine_timer_due = math.inf
        self._next_request_id = 1
        self._engine_up = True
        self._engine_down_reason = ""
        self._trackers: dict[str, _Tracker] = {}
        #: Topics the app watches (server-side subscriptions: TopicMessage events).
        self._watches: dict[str, _Watch] = {}
        #: The adaptive heads check: the current interval and when the next check is due.
        self._heads_wait = 0.0
        self._heads_due = math.inf
        self._max_replay = self.config.history.max_count or 100_000
        self._engine_failures = 0
        self._engine_refusals = 0
        self._cross_duplicates = 0
        self._lost_ranges = 0
        self._bad_records = 0
        self._bad_entries = 0
        self._started = now
        self._now = now  # the latest ``now`` an input brought (a replay turn is due at it)
        #: Called (no arguments) to hand the heap that released history leaves free back to the
        #: OS: the adapters set glibc's ``malloc_trim(0)`` where it exists (None: never). It
        #: runs from :meth:`handle_timer` once ``HEAP_TRIM_AFTER`` bytes of history were
        #: released since its last run and then ``HEAP_TRIM_QUIET`` passed without a release
        #: (at the latest ``trim_interval`` after the threshold was passed).
        self.heap_trim: Callable[[], object] | None = None
        self._heap_mark = 0  # engine.released_bytes at the last heap_trim
        #: ``$inbox`` histories (engine topic, acknowledged position) to let go of, oldest
        #: first, a slice at a time (``_release_slice``): after a read's write
        #: (:meth:`after_write`) and in timer turns from ``_release_due`` on (inf: none left).
        self._releasing: deque[tuple[str, StreamPosition]] = deque()
        self._release_due = math.inf
        #: ``metrics.publishes[1]`` (inbox messages published) at the last slice, or when the
        #: first release was queued: a read's slice frees as many more (:meth:`after_write`).
        self._release_mark = 0
        self._heap_due = math.inf  # the threshold was passed then (inf: not yet)
        self._last_release = now
        self._conns: dict[int, _Conn] = {}
        self._next_conn_id = 1
        self._sessions: dict[str, Session] = {}
        self._members: dict[str, set[str]] = {BROADCAST_TOPIC: set()}
        #: The subscriptions new sessions share while the $all head stays (_new_session).
        self._shared_subscriptions: dict[str, StreamPosition] | None = None
        self._events: list[HubEvent | MessageFields | MessageRun] = []
        self._dirty: set[int] = set()
        #: Topic key -> ids of connections with a replay backlog on it (live messages of the
        #: topic queue behind their backlog, in order).
        self._replaying: dict[str, set[int]] = {}
        #: Sockets accepted past ``max_pending_handshakes``: dropped at the next flush.
        self._refused: list[int] = []
        self._pending_handshakes = 0
        self._backlog_limit = self.config.max_replay_bytes + self.config.outgoing_high_water
        self._replay_batch = min(self.config.replay_batch_bytes, self.config.outgoing_high_water)
        #: Peer address -> sessions it holds; and its bucket of fresh sessions.
        self._peer_sessions: dict[str, int] = {}
        self._peer_buckets: dict[str, TokenBucket] = {}
        self._proxies = TrustedProxies(self.config.trusted_proxies)
        # Read per message: kept at hand.
        self._max_message_size = self._conn_config.websocket.max_message_size
        self._wall_clock_offset = self._conn_config.wall_clock_offset
        # send_to's last session id (the same str object) and its inbox key: consecutive sends
        # to one session (an echo answering a read's messages, a burst to one client) build and
        # hash the key once. One string more per hub, none per session.
        self._inbox_key_of = ""
        self._inbox_key = _INBOX_KEY
        #: Per-identity limits from AuthAccept.rate_limit (replacing identity_rate_limit), and
        #: the buckets shared by an identity's connections (kept while it has a session).
        self._identity_limits: dict[str, RateLimit] = {}
        self._identity_buckets: dict[str, tuple[RateLimit, _Buckets]] = {}
        self._identity_limits_on = (self.config.identity_rate_limit.enabled
                                    or self.config.authenticate is not None)
        #: Any rate limit to charge an envelope to (the connection's or its identity's).
        self._limits_on = self.config.rate_limit.enabled or self._identity_limits_on
        self._max_unacked = self.config.max_unacked
        self._ack_every = self.config.ack_every
        #: A client whose messages come at least this far apart (``ack_delay`` / 8) has its
        #: ack ride with the server's own output to it in the same flush (its echo or reply)
        #: instead of from the ack timer, which would fire alone (a wake-up and a write of
        #: its own) before the next message; with no output for it, the timer is set as
        #: usual. So does any client whose pending ack timer falls due before its next
        #: message at its pace (the timer then finds nothing). Not with an external engine
        #: (acks wait for its save there).
        self._ack_ride_gap = self.config.ack_delay / 8 if self._external is None else math.inf
        #: Sessions whose ack may ride with this turn's output (their ``_ack_due`` set), and
        #: whether their ack timer is set already: :meth:`flush` acks them with their output,
        #: else sets the timer of those without one.
        self._ack_riders: list[tuple[Session, bool]] = []
        self._timers: list[tuple[float, int, _TimerKind, object]] = []
        self._timer_seq = 0
        # (An external engine trims its own history.)
        self._next_trim = now + self.config.trim_interval \
            if self.config.trim_interval and self._external is None else 0.0
        if self._next_trim:
            self._push_timer(self._next_trim, "trim", None)
        if self._external is not None:
            self._heads_wait = self._external.heads_interval
            self._heads_due = now + self._heads_wait
            self._push_timer(self._heads_due, "heads", None)
            self._push_timer(now + self._external.presence_ttl / 3, "presence", None)
        rate = self.config.rate_limit
        self._limits = Limits(
            max_message_size=self.config.connection.websocket.max_message_size,
            max_unacked=self.config.max_unacked,
            max_topics=self.config.max_topics_per_session,
            max_messages_per_second=math.ceil(rate.messages_per_second),
            max_bytes_per_second=math.ceil(rate.bytes_per_second),
        )
        # stats
        self._total_connections = 0
        self._messages_received = 0
        self._messages_sent = 0
        self._bytes_sent = 0
        self._bytes_received_closed = 0
        self._resumes = 0
        self._failed_resumes = 0
        self._failed_recoveries = 0
        self._slow_consumers = 0
        self._rate_limited = 0
        self._duplicates = 0
        #: Distributions and counts by reason for exporters (see sigma_core.metrics).
        self.metrics = HubMetrics()
        #: (goodbye hint in ms, reason) once :meth:`drain` began: new upgrades get 503.
        self._drain: tuple[int, str] | None = None

    # ------------------------------------------------------------------ adapter side

    def open_connection(self, now: float, peer: str = "") -> int:
        """A socket was accepted; returns the id to use for it from now on. ``peer`` is the
        remote address (host only: the per-peer session limits count by it; "" for unknown).

        Past ``max_pending_handshakes`` sockets still in their upgrade, the new one is dropped
        at the next :meth:`flush` (``ABORT``) and reported as :class:`ConnectionRejected`."""
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        self._total_connections += 1
        if self._pending_handshakes >= self.config.max_pending_handshakes:
            self.metrics.refused["handshake_limit"] += 1
            self._refused.append(conn_id)
            self._events.append(ConnectionRejected(
                conn_id=conn_id, code=CloseCode.TRY_AGAIN_LATER,
                reason=f"{self.config.max_pending_handshakes} sockets are already in their "
                "handshake (max_pending_handshakes)", cause=None))
            return conn_id
        self._pending_handshakes += 1
        conn = ServerConnection(self._conn_config, now=now)
        conn.id = conn_id
        rec = _Conn(conn_id, conn, peer)
        rec.opened = now
        rec.conn.rtt_samples = self.metrics.heartbeat_rtt_seconds
        self._conns[rec.id] = rec
        self._schedule_conn(rec)
        return conn_id

    def open_message_connection(self, request: HandshakeRequest, now: float,
                                peer: str = "") -> int:
        """Message mode (an ASGI server did the upgrade and frames the messages): like
        :meth:`open_connection`, for the request the server parsed. The upgrade is decided at
        once (limits, Origin, subprotocol): read :meth:`message_socket` for the answer to give
        the server. Then feed :meth:`receive_message`; :meth:`flush` returns one payload per
        message (see :mod:`sigma_core.message_socket`). ``peer`` is the client's host, as for
        :meth:`open_connection` (the per-peer session limits count by it)."""
        conn_id = self._next_conn_id
        self._next_conn_id += 1
        transport = MessageSocket(request, self._conn_config.websocket)
        conn = ServerConnection(self._conn_config, now=now, transport=transport)
        conn.id = conn_id
        rec = _Conn(conn_id, conn, peer)
        # The ASGI server did the upgrade: this socket never counts as a pending handshake.
        rec.handshaking = False
        rec.opened = now
        rec.conn.rtt_samples = self.metrics.heartbeat_rtt_seconds
        self._conns[rec.id] = rec
        self._total_connections += 1
        self._process(rec, now)
        return conn_id

    def message_socket(self, conn_id: int) -> MessageSocket | None:
        """The :class:`MessageSocket` below a message-mode connection (None otherwise)."""
        rec = self._conns.get(conn_id)
        transport = rec.conn._ws if rec is not None else None
        return transport if isinstance(transport, MessageSocket) else None

    def receive_message(self, conn_id: int, data: bytes | str, now: float) -> None:
        """Message mode: one whole message arrived on ``conn_id``."""
        rec = self._conns.get(conn_id)
        if rec is None:
            return
        rec.conn.receive_message(data, now)
        self._process(rec, now)

    def receive_data(self, conn_id: int, data: bytes | bytearray | memoryview, now: float) -> None:
        """Bytes arrived on ``conn_id``."""
        rec = self._conns.get(conn_id)
        if rec is None:
            return
        conn = rec.conn
        conn.receive_data(data, now)
        self._process(rec, now)
        if self._limits_on and conn.heartbeats_received != rec.heartbeats_charged:
            self._charge_heartbeats(rec, now)
        if rec.paused:  # pongs (envelope and WebSocket) pile up behind a paused socket too
            self._check_high_water(rec, now)

    def connection_lost(self, conn_id: int, now: float, *, code: int | None = None,
                        reason: str = "") -> None:
        """The socket is gone (EOF, reset, or closed by the adapter after ``flush``). Message
        mode: ``code``/``reason`` are the peer's close (None: it just went away, 1006)."""
        rec = self._conns.pop(conn_id, None)
        if rec is None:
            return
        if rec.conn.state is not _CLOSED:
            if code is not None and isinstance(rec.conn._ws, MessageSocket):
                rec.conn.receive_close(code, reason, now)
            else:
                rec.conn.receive_data(None, now)
            self._process(rec, now)
        self._handshake_over(rec)
        self._drop_backlog(rec)
        self._bytes_received_closed += rec.conn.bytes_received
        self._dirty.discard(conn_id)

    def pause_writing(self, conn_id: int) -> None:
        """The socket's send buffer is full: hold output for ``conn_id`` in the core. While
        paused, output piling up past ``outgoing_high_water`` makes it a slow consumer."""
        rec = self._conns.get(conn_id)
        if rec is not None:
            rec.paused = True

    def resume_writing(self, conn_id: int) -> None:
        """The socket drained: the next :meth:`flush` hands over what was held."""
        rec = self._conns.get(conn_id)
        if rec is not None and rec.paused:
            rec.paused = False
            self._dirty.add(conn_id)
            if rec.backlog:
                self._schedule_pump(rec)

    def handle_timer(self, now: float) -> None:
        """Run every timer due at ``now``."""
        self._now = now
        timers = self._timers
        # Timers set while these run (a replay turn due "now") wait for the next call: the
        # adapter writes what this one produced first.
        last = self._timer_seq
        heap = False
        while timers and timers[0][0] <= now and timers[0][1] <= last:
            when, _, kind, key = heapq.heappop(timers)
            if kind == "conn":
                rec = self._conns.get(key)  # type: ignore[call-overload]
                if rec is not None and rec.scheduled == when:
                    rec.scheduled = math.inf
                    rec.conn.handle_timer(now)
                    self._process(rec, now)
            elif kind == "ack":
                session = self._sessions.get(key)  # type: ignore[call-overload]
                if session is not None and session._ack_due <= now:
                    if session.last_seq == session._acked_seq and self._external is None:
                        session._ack_due = math.inf  # acked by count since: nothing to say
                    else:
                        self._send_ack(session, now)
            elif kind == "replay":
                rec = self._conns.get(key)  # type: ignore[call-overload]
                if rec is not None:
                    rec.pump_due = False
                    if not rec.paused:
                        self._pump_backlog(rec, now)
            elif kind == "engine":
                if when == self._engine_timer_due:
                    self._engine_timeouts(now)
            elif kind == "presence":
                ext = self._external
                assert ext is not None
                if self._engine_up:
                    self._refresh_presence(now)
                self._push_timer(now + ext.presence_ttl / 3, "presence", None)
            elif kind == "heads":
                if when != self._heads_due:
                    continue  # superseded by an earlier check (see _heads_soon)
                if self._engine_up:
                    self._check_heads(now)
                self._heads_due = now + self._heads_wait
                self._push_timer(self._heads_due, "heads", None)
            elif kind == "reap":
                rec = self._conns.get(key)  # type: ignore[call-overload]
                if rec is not None:  # asked to close close_timeout ago, still not gone
                    rec.close_action = CloseAction.ABORT
                    self._dirty.add(rec.id)
            elif kind == "credentials":
                rec = self._conns.get(key)  # type: ignore[call-overload]
                if rec is not None:
                    self._credentials_due(rec, now)
            elif kind == "expire":
                session = self._sessions.get(key)  # type: ignore[call-overload]
                if session is not None and session.conn_id is None \
                        and session.expires_at <= now:
                    if self._external is not None:
                        # The engine expires the record itself (its ttl); the session may
                        # have moved to another node meanwhile: only forget it here.
                        if not session._saving:
                            self._forget_locally(session, now)
                    else:
                        self._end_session(session, now)
                        self._events.append(SessionExpired(session=session))
            elif kind == "drain":
                rec = self._conns.get(key)  # type: ignore[call-overload]
                if rec is not None and self._drain is not None:
                    self._say_goodbye(rec, now, *self._drain)
            elif kind == "heap":
                heap = True  # after the others: see _heap_timer
            else:
                released = self._engine.released_bytes
                self._engine.trim(now + self._wall_clock_offset)
                if self._engine.released_bytes != released:
                    self._history_released(now)
                self._forget_idle_peers(now)
                self._next_trim = now + self.config.trim_interval
                self._push_timer(self._next_trim, "trim", None)
        if self._release_due <= now:  # no read took the rest: a slice a turn, at once
            self._release_due = now if self._release_slice(now) else math.inf
        if heap:
            self._heap_timer(now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next run (None: nothing scheduled)."""
        due = self._release_due  # inf: no release left for a timer turn
        if self._timers:
            due = min(due, self._timers[0][0])
        if self._ack_riders:  # read before the flush that sets their timers: theirs count
            riders = min(session._ack_due for session, _ in self._ack_riders)
            due = min(due, riders)
        return None if due == math.inf else due

    def after_write(self, now: float) -> None:
        """The driver has written what :meth:`flush` returned after a read: let go of one slice
        of the ``$inbox`` history the reads' Acks acknowledged, in the same turn, its reply
        already out — ``RELEASE_SLICE`` entries more than the inbox messages published since
        the last slice, so the release keeps pace with the traffic; what is left goes a slice
        after each next read, or per timer turn once no read came for ``RELEASE_DEFER``
        (:meth:`next_deadline`). Optional: without it every slice waits for a timer turn."""
        if self._releasing:
            published = self.metrics.publishes[1]
            grown = published - self._release_mark
            self._release_mark = published
            # The next reads take the rest, a slice each after their own writes; a timer turn
            # only when none comes for RELEASE_DEFER (no wake-up of its own under traffic).
            self._release_due = now + RELEASE_DEFER \
                if self._release_slice(now, RELEASE_SLICE + grown) else math.inf

    def flush(self, now: float) -> list[tuple[int, list[bytes], CloseAction]]:
        """``(conn_id, chunks, action)`` for every connection with something to do: write
        ``chunks`` in order, then close the socket as ``action`` says (see :class:`CloseAction`).
        A socket told to close that is still there ``close_timeout`` later is reported again
        with ``ABORT``. ``now`` is the time of the call (a held close acted on here is handled
        at it)."""
        out: list[tuple[int, list[bytes], CloseAction]] = []
        if self._refused:
            out.extend((conn_id, [], CloseAction.ABORT) for conn_id in self._refused)
            self._refused.clear()
        if self._ack_riders:
            self._ride_acks(now)
        # (The ids as the objects the set holds, _Conn.id's: not unboxed and boxed again.)
        dirty: set[Any]
        dirty, self._dirty = self._dirty, set()
        conns = self._conns
        bytes_sent = 0
        for conn_id in dirty:
            rec = conns.get(conn_id)
            if rec is None:
                continue
            if rec.paused and not rec.conn.transport_should_close:
                self._dirty.add(conn_id)  # held until resume_writing()
                continue
            conn = rec.conn
            chunks = conn.data_to_send()
            if conn.pending_events:  # a held close was acted on: handle its Closed
                self._process(rec, now)
                chunks += conn.data_to_send()
                self._dirty.discard(conn_id)
            # (Compiled, a native loop: ``sum(map(len, chunks))`` boxed every length into an
            # int object and added objects, ~200 instructions a chunk. One chunk, the common
            # case of a broadcast's recipients, without the loop.)
            if len(chunks) == 1:
                bytes_sent += len(chunks[0])
            else:
                for chunk in chunks:
                    bytes_sent += len(chunk)
            out.append((conn_id, chunks, rec.close_action))
        self._bytes_sent += bytes_sent
        return out

    def events_received(self) -> list[HubEvent]:
        """Drain the events for the application."""
        events: list[HubEvent] = []
        for event in self._take_events():
            if type(event) is MessageRun:
                session = event.session
                for seq, topic, payload, timestamp_ms in event.fields:
                    events.append(_client_message(session, seq, topic, payload, timestamp_ms))
            elif isinstance(event, tuple):
                session, seq, topic, payload, timestamp_ms = event
                events.append(_client_message(session, seq, topic, payload, timestamp_ms))
            else:
                events.append(cast(HubEvent, event))
        return events

    def _take_events(self) -> list[HubEvent | MessageFields | MessageRun]:
        """:meth:`events_received` for the adapters' pump: a client's message comes as its
        :data:`MessageFields` tuple, a run of them as a :class:`MessageRun`, not as a
        ``ClientMessage`` built per message."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ app commands

    def publish(self, topic: str, payload: bytes | bytearray | memoryview, now: float, *,
                exclude: Iterable[str] = (), only: Iterable[str] | None = None) -> StreamPosition:
        """Publish ``payload`` to ``topic``: kept in history, sent to every subscriber
        (minus ``exclude``; only those in ``only`` when given). Encoded once. Returns the
        message's position in the topic; with an external cluster engine the engine assigns
        it later (the append is a request), so the return value is ``StreamPosition(0, 0)``
        and the position reaches subscribers and ``watch`` listeners with the message.

        Raises:
            LocalProtocolError: ``topic`` is empty, longer than ``max_topic_length`` or reserved
                (starts with ``$``, other than ``$all``), or the message would not fit in
                ``max_message_size``.
        """
        if topic.startswith(_RESERVED_PREFIX) and topic != BROADCAST_TOPIC:
            raise LocalProtocolError(f"cannot publish to reserved topic {topic!r} (use send_to "
                                     f"for a session's inbox)")
        self._check_topic(topic)
        return self._publish(topic, topic, payload, now, frozenset(exclude),
                             None if only is None else frozenset(only))

    def broadcast(self, payload: bytes | bytearray | memoryview, now: float, *,
                  exclude: Iterable[str] = ()) -> StreamPosition:
        """Send to every session (the ``$all`` topic), except those in ``exclude``.

        Raises:
            LocalProtocolError: the message would not fit in ``max_message_size``.
        """
        return self._publish(BROADCAST_TOPIC, BROADCAST_TOPIC, payload, now,
                             frozenset(exclude) if exclude else _NOBODY, None)

    def send_where(self, predicate: Callable[[Session], bool],
                   payload: bytes | bytearray | memoryview, now: float) -> StreamPosition:
        """Selective routing: broadcast to the sessions for which ``predicate`` is true.

        Raises:
            LocalProtocolError: the message would not fit in ``max_message_size``.
        """
        only = frozenset(s.id for s in self._sessions.values() if predicate(s))
        return self._publish(BROADCAST_TOPIC, BROADCAST_TOPIC, payload, now, _NOBODY, only)

    def send_to(self, session_id: str, payload: bytes | bytearray | memoryview,
                now: float) -> StreamPosition:
        """Send to one session through its inbox (replayed if it is disconnected). With an
        external engine the session may live on any node: an id this node does not hold is
        appended all the same (an id of no session is then not detected).

        Raises:
            LocalProtocolError: no session ``session_id`` (single node), the message would not
                fit in ``max_message_size``, or the cluster engine is unavailable.
        """
        session = self._sessions.get(session_id)
        if session is None and self._external is None:
            raise LocalProtocolError(f"no session {session_id!r}")
        if session_id is self._inbox_key_of:
            key = self._inbox_key
        else:
            key = self._inbox_key = _INBOX_KEY + session_id
            self._inbox_key_of = session_id
        if session is None or self._external is not None:
            return self._publish(key, INBOX_TOPIC, payload, now, _NOBODY, None)
        entry = self._publish_inbox(key, payload, now, session)
        # The entry's own int objects (a tuple read as objects: not unboxed and boxed again).
        fields = cast("tuple[object, ...]", entry)
        return new_tuple(_StreamPosition, fields[0], fields[1])  # type: ignore[no-any-return]

    def _send_inbox(self, session: Session, payload: bytes | bytearray | memoryview,
                    now: float) -> None:
        """:meth:`send_to` of a session the caller holds (``ServerPump.send_to_client`` looked
        it up): not looked up again by its id, and no position built to be dropped. The same
        checks, errors, history, delivery and metrics (the same code: :meth:`_publish_inbox`)."""
        session_id = session.id
        if session_id is self._inbox_key_of:
            key = self._inbox_key
        else:
            key = self._inbox_key = _INBOX_KEY + session_id
            self._inbox_key_of = session_id
        if self._external is not None:
            self._publish(key, INBOX_TOPIC, payload, now, _NOBODY, None)
        else:
            self._publish_inbox(key, payload, now, session)

    def subscribe(self, session_id: str, topic: str, now: float) -> None:
        """Subscribe a session to a topic from the server side (it is told with Subscribed).

        Raises:
            LocalProtocolError: no session ``session_id``; ``topic`` is empty, too long or
                reserved; or the session already holds ``max_topics_per_session`` topics.
        """
        session = self._session(session_id)
        self._check_topic(topic)
        if topic.startswith(_RESERVED_PREFIX):
            raise LocalProtocolError(f"{topic!r} is reserved")
        if topic in session.subscriptions:
            return
        if len(session.subscriptions) - 2 >= self.config.max_topics_per_session:
            raise LocalProtocolError(f"session {session_id} already holds "
                                     f"{self.config.max_topics_per_session} topics")
        if self._external is not None:
            # Answered (Subscribed, request 0) once the engine gave the topic's head.
            self._subscribe_external(None, session, topic, None, 0, now)
            return
        head = self._add_subscription(session, topic)
        rec = self._rec_of(session)
        if rec is not None:  # (if it is closing, the resume's Welcome reports the topic)
            self._send(rec, Subscribed(recovery=TopicRecovery(
                topic=topic, status=RecoveryStatus.FRESH, position=head)), now)

    def unsubscribe(self, session_id: str, topic: str, now: float) -> None:
        """Remove a subscription from the server side (the client is told with Unsubscribed).

        Raises:
            LocalProtocolError: no session ``session_id``, or ``topic`` is reserved.
        """
        session = self._session(session_id)
        if topic.startswith(_RESERVED_PREFIX):
            raise LocalProtocolError(f"{topic!r} is reserved")
        if topic not in session.subscriptions:
            return
        self._remove_subscription(session, topic, now)
        rec = self._rec_of(session)
        if rec is not None:
            self._send(rec, Unsubscribed(topic=topic), now)
        if self._external is not None:
            self._save(session, now)

    def watch(self, topic: str, now: float, *, history: int = 0) -> None:
        """Subscribe the app itself to ``topic`` (a server-side subscription): from now on
        every message published to it — on this node or, with a cluster engine, on any node —
        comes as a :class:`TopicMessage` event, in position order, each once, the same
        sequence on every node. The last ``history`` messages published before (as many as
        history still holds) come first, marked ``history``; then :class:`TopicWatched`; then
        live messages. A range that cannot be delivered (gone from history) is reported with
        :class:`TopicLost`. The topic stays received by this node (and its history kept)
        while watched, subscribers or not. Watching a watched topic does nothing.

        Raises:
            LocalProtocolError: ``topic`` is empty, too long or reserved (starts with ``$``),
                or ``history`` is negative.
        """
        self._check_topic(topic)
        if topic.startswith(_RESERVED_PREFIX):
            raise LocalProtocolError(f"{topic!r} is reserved: watch a topic of your own")
        if history < 0:
            raise LocalProtocolError(f"history must be >= 0, got {history}")
        if topic in self._watches:
            return
        watch = self._watches[topic] = _Watch()
        if self._external is None:
            head = self._engine.head(topic)
            start = StreamPosition(head.epoch, max(0, head.offset - history))
            while start.offset < head.offset:
                got = self._engine.read_after(topic, start, now)
                if isinstance(got, ReplayGap):
                    if not got.lost_to:
                        break
                    start = StreamPosition(head.epoch, got.lost_to)
                    continue
                for entry in got:
                    self._watched(topic, watch, entry, True)
                break
            self._watch_ready(topic, watch, head)
            return
        tracker = self._trackers.get(topic)
        if tracker is not None:
            self._watch_history(topic, watch, StreamPosition(tracker.epoch, tracker.last),
                                history, now)
            return

        def headed(result: EngineResult, at: float) -> None:
            if self._watches.get(topic) is not watch:
                return
            if not isinstance(result, Heads) or not result.heads:
                reason = result.reason if isinstance(result, EngineFailed) else "bad answer"
                self._watch_failed(topic, reason, at)
                return
            head = result.heads[0][1]
            current = self._trackers.get(topic)
            if current is None:
                current = self._receive(topic, head, at)
            self._watch_history(topic, watch, StreamPosition(current.epoch, current.last),
                                history, at)

        if not self._ask(lambda rid: ReadHeads(request_id=rid, topics=(topic,)), headed, now):
            self._watch_failed(topic, str(self._engine_unavailable()), now)

    def unwatch(self, topic: str, now: float) -> None:
        """Stop watching ``topic`` (no more :class:`TopicMessage` events for it); a topic not
        watched is ignored."""
        if self._watches.pop(topic, None) is None or self._members.get(topic):
            return
        if self._external is not None:
            self._stop_receiving(topic, now)
        else:
            self._engine.release(topic)

    @property
    def watched(self) -> frozenset[str]:
        """The topics the app watches."""
        return frozenset(self._watches)

    def _watch_history(self, topic: str, watch: _Watch, upto: StreamPosition, history: int,
                       now: float) -> None:
        """Read the ``history`` entries up to ``upto`` for a new watch, then make it ready."""
        ext = self._external
        assert ext is not None
        if not history or upto.offset == 0:
            self._watch_ready(topic, watch, upto)
            return

        def read(after: StreamPosition, at: float) -> None:
            def answered(result: EngineResult, t: float) -> None:
                if self._watches.get(topic) is not watch:
                    return
                if not isinstance(result, RangeRead):
                    reason = result.reason if isinstance(result, EngineFailed) else "bad answer"
                    self._watch_failed(topic, reason, t)
                    return
                if result.gap is not None:
                    gap = result.gap
                    if gap.lost_to and gap.lost_to < upto.offset \
                            and result.head.epoch == upto.epoch:
                        read(StreamPosition(upto.epoch, gap.lost_to), t)  # history starts later
                    else:
                        self._watch_ready(topic, watch, upto)
                    return
                last = after.offset
                for entry in result.entries:
                    if entry.offset > upto.offset:
                        break
                    checked = self._checked_envelope(topic, entry)
                    if isinstance(checked, str):
                        self._bad_entries += 1
                        self._events.append(EngineRecordRejected(
                            what=f"history entry {topic}@{entry.offset}", reason=checked))
                    else:
                        self._watched(topic, watch, _tuple_new(HistoryEntry, (
                            entry.epoch, entry.offset, entry.time, checked[1], entry.route)),
                            True)
                    last = entry.offset
                if result.entries and last < upto.offset:
                    read(StreamPosition(upto.epoch, last), t)
                else:
                    self._watch_ready(topic, watch, upto)

            if not self._ask(lambda rid: ReadRange(
                    request_id=rid, topic=topic, after=after, max_count=ext.read_batch_count,
                    max_bytes=ext.read_batch_bytes), answered, at):
                self._watch_failed(topic, str(self._engine_unavailable()), at)

        read(StreamPosition(upto.epoch, max(0, upto.offset - history)), now)

    def _watched(self, topic: str, watch: _Watch, entry: HistoryEntry, history: bool) -> None:
        """Emit (or hold, while the watch's history is read) one message of a watched topic;
        ``entry.envelope`` holds the position already."""
        body = codec.decode(entry.envelope)
        assert type(body) is Data
        event = TopicMessage(topic=topic, position=StreamPosition(entry.epoch, entry.offset),
                             payload=bytes(body.payload), timestamp_ms=body.timestamp_ms,
                             history=history)
        if watch.ready or history:
            self._events.append(event)
        else:
            watch.held.append(event)

    def _watch_ready(self, topic: str, watch: _Watch, position: StreamPosition) -> None:
        watch.ready = True
        self._events.append(TopicWatched(topic=topic, position=position))
        held, watch.held = watch.held, []
        self._events.extend(held)

    def _watch_failed(self, topic: str, reason: str, now: float) -> None:
        watch = self._watches.pop(topic, None)
        if watch is None:
            return
        self._events.append(TopicWatched(topic=topic, position=StreamPosition(0, 0),
                                         failed=reason))
        if not self._members.get(topic):
            self._stop_receiving(topic, now)

    def disconnect(self, session_id: str, now: float, *, reason: str = "",
                   end_session: bool = True) -> None:
        """Close a session's connection with close 1000.

        With ``end_session`` (a kick) the session is forgotten at once and the client is told
        with Goodbye(NORMAL), which stops it from reconnecting. Without, only the connection
        goes: the session stays resumable and the client reconnects and resumes.

        Raises:
            LocalProtocolError: no session ``session_id``.
        """
        session = self._session(session_id)
        rec = self._rec_of(session)
        if rec is not None:
            goodbye = Goodbye(code=ErrorCode.NORMAL, reason=reason) if end_session else None
            rec.conn.close(CloseCode.NORMAL_CLOSURE, reason, goodbye=goodbye, now=now)
            self._process(rec, now)
        if end_session:
            self._end_session(session, now)

    def shutdown(self, now: float, *, reconnect_after_ms: int = 1000,
                 reason: str = "server shutting down") -> None:
        """Graceful stop: every open connection gets Goodbye(SHUTTING_DOWN, hint) and close
        1001 after what is queued. Sessions are kept (with an external engine another node resumes
        them). Call :meth:`flush` and keep feeding bytes until the sockets close."""
        for rec in list(self._conns.values()):
            self._say_goodbye(rec, now, reconnect_after_ms, reason)

    def drain(self, now: float, *, window: float, reconnect_after_ms: int = 1000,
              reason: str = "server draining") -> None:
        """:meth:`shutdown` spread over ``window`` seconds (see :mod:`sigma_core.drain`): from
        now on upgrades are refused with 503, and the open connections get Goodbye
        (SHUTTING_DOWN, ``reconnect_after_ms``) and close 1001 one after another, evenly over
        the window, as :meth:`handle_timer` reaches their turn. ``is_draining`` stays True."""
        self._drain = (reconnect_after_ms, reason)
        recs = list(self._conns.values())
        for rec, when in zip(recs, spread_times(len(recs), now, window), strict=True):
            if when <= now:
                self._say_goodbye(rec, now, reconnect_after_ms, reason)
            else:
                self._push_timer(when, "drain", rec.id)

    @property
    def is_draining(self) -> bool:
        return self._drain is not None

    def _say_goodbye(self, rec: _Conn, now: float, reconnect_after_ms: int, reason: str) -> None:
        if rec.conn.state is _OPEN:
            self.metrics.drained += 1
            rec.conn.close(CloseCode.GOING_AWAY, reason, now=now, goodbye=Goodbye(
                code=ErrorCode.SHUTTING_DOWN, reason=reason,
                reconnect_after_ms=reconnect_after_ms))
        else:
            rec.conn.close(CloseCode.GOING_AWAY, reason, now=now)
        self._process(rec, now)

    # ------------------------------------------------------------------ queries

    def get_session(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    @property
    def sessions(self) -> Mapping[str, Session]:
        return self._sessions

    def connected_sessions(self) -> list[Session]:
        return [s for s in self._sessions.values() if s.conn_id is not None]

    def presence(self, topic: str) -> frozenset[str]:
        """Ids of the sessions subscribed to ``topic`` *on this node* (node-local; with an
        external engine see :meth:`request_presence` for the whole cluster)."""
        return frozenset(self._members.get(topic, ()))

    def request_presence(self, topic: str, now: float) -> None:
        """Ask the engine for ``topic``'s members on every node; the answer comes as a
        :class:`ClusterPresence` event. Members of a node that stopped refreshing them (it
        crashed) drop out ``ExternalEngineConfig.presence_ttl`` after its last refresh. With
        the memory engine the event comes at once with :meth:`presence`. ``$all`` is not
        tracked cluster-wide (it would list every session)."""
        if self._external is None:
            members = self.presence(topic)
            self._events.append(ClusterPresence(
                topic=topic, members=members,
                identities={sid: self._sessions[sid].identity for sid in members}))
            return

        def answered(result: EngineResult, at: float) -> None:
            if isinstance(result, PresenceMembers):
                self._events.append(ClusterPresence(
                    topic=topic, members=frozenset(m for m, _ in result.members),
                    identities={m: _identity(info) for m, info in result.members}))
            else:
                reason = result.reason if isinstance(result, EngineFailed) else "bad answer"
                self._events.append(ClusterPresence(topic=topic, members=frozenset(),
                                                    failed=reason))

        if not self._ask(lambda rid: PresenceRead(request_id=rid, topic=topic), answered, now):
            self._events.append(ClusterPresence(topic=topic, members=frozenset(),
                                                failed=str(self._engine_unavailable())))

    def _refresh_presence(self, now: float) -> None:
        """Push the expiry of every local member of every topic (their entries expire
        otherwise): member ids only, one request per topic; their info went with their join
        (and goes again, once, after a resume changed their identity or metadata)."""
        ext = self._external
        assert ext is not None
        sessions = self._sessions
        stale = [s for s in sessions.values() if s._presence_stale]
        for topic, members in self._members.items():
            if topic == BROADCAST_TOPIC or not members:
                continue
            if stale:
                joins = tuple((s.id, _presence_info(s)) for s in stale if s.id in members)
                if joins:
                    self._join_presence(topic, joins, ext.presence_ttl, now)
            ids = tuple(sorted(sid for sid in members
                               if sid in sessions and not sessions[sid]._presence_stale))
            if ids:
                self._refresh_topic_presence(topic, ids, ext.presence_ttl, now)
        for session in stale:
            session._presence_stale = False

    def _refresh_topic_presence(self, topic: str, ids: tuple[str, ...], ttl: float,
                                now: float) -> None:
        """Members the engine no longer holds (expired while this node could not reach it,
        removed by hand) are joined again with their info."""

        def refreshed(result: EngineResult, at: float) -> None:
            if not isinstance(result, PresenceMissing):
                return  # (a failure is counted in engine_result; the next refresh retries)
            local = self._members.get(topic, ())
            joins = tuple((sid, _presence_info(self._sessions[sid])) for sid in result.members
                          if sid in local and sid in self._sessions)
            if joins:
                self._join_presence(topic, joins, ttl, at)

        if not self._ask(lambda rid: PresenceRefresh(request_id=rid, topic=topic, members=ids,
                                                     ttl=ttl), refreshed, now):
            self._engine_failures += 1

    def _join_presence(self, topic: str, joins: tuple[tuple[str, bytes], ...], ttl: float,
                       now: float) -> None:
        self._tell(lambda rid: PresenceUpdate(request_id=rid, topic=topic, joins=joins,
                                              ttl=ttl), now)

    def connection_count(self) -> int:
        return len(self._conns)

    def stats(self, now: float) -> ServerStats:
        rtts = [r.conn.rtt for r in self._conns.values() if r.conn.rtt is not None]
        return ServerStats(
            connected_clients=sum(1 for s in self._sessions.values() if s.conn_id is not None),
            total_connections=self._total_connections,
            messages_received=self._messages_received,
            messages_sent=self._messages_sent,
            uptime=now - self._started,
            average_latency=sum(rtts) / len(rtts) if rtts else 0.0,
            bytes_received=self._bytes_received_closed
            + sum(r.conn.bytes_received for r in self._conns.values()),
            bytes_sent=self._bytes_sent,
            sessions=len(self._sessions),
            resumes=self._resumes,
            failed_resumes=self._failed_resumes,
            failed_recoveries=self._failed_recoveries,
            slow_consumer_disconnects=self._slow_consumers,
            duplicates_dropped=self._duplicates,
            rate_limited_disconnects=self._rate_limited,
            engine_up=self._engine_up,
            engine_failures=self._engine_failures,
            engine_refusals=self._engine_refusals,
            cross_node_duplicates=self._cross_duplicates,
            lost_ranges=self._lost_ranges,
            rejected_records=self._bad_records + self._bad_entries,
        )

    # ------------------------------------------------------------------ internals: I/O

    def _process(self, rec: _Conn, now: float) -> None:
        self._now = now
        conn = rec.conn
        # welcome() releases what the client pipelined behind its Hello: keep draining.
        while events := conn._take_events():
            self._dispatch(rec, events, now)
        self._dirty.add(rec.id)
        if conn.transport_should_close and not rec.close_action:
            rec.close_action = CloseAction.CLOSE
            self._push_timer(now + self.config.connection.close_timeout, "reap", rec.id)
        self._schedule_conn(rec)

    def _dispatch(self, rec: _Conn,
                  events: list[AnyConnectionEvent | DataFields | DataBatch | InboxAckPosition],
                  now: float) -> None:
        conn = rec.conn
        for event in events:
            if type(event) is list:
                # A run of client Data from the connection's fast path (connection.DataBatch):
                # each what the DataFields branch below does with one.
                session = rec.session
                if session is None or session.conn_id != rec.id:
                    continue  # taken over by another connection in this batch
                # The accepted ones, queued as one MessageRun: the run's own list while every
                # one is accepted (_on_data queues no hub event of its own, so the order of
                # the hub's events is the same as with one MessageFields per message).
                kept: list[DataFields] | None = None
                for index, fields in enumerate(event):
                    seq, topic, payload, timestamp_ms = fields
                    if self._on_data(rec, session, seq, topic, payload, timestamp_ms, now):
                        if kept is not None:
                            kept.append(fields)
                    elif kept is None:
                        kept = event[:index]
                if kept is None:
                    self._events.append(MessageRun(session, event))
                elif kept:
                    self._events.append(MessageRun(session, kept))
            elif isinstance(event, tuple):
                session = rec.session
                if session is None or session.conn_id != rec.id:
                    continue  # taken over by another connection in this batch
                if type(event) is _StreamPosition:
                    # A client's $inbox Ack from the connection's fast path, as its position
                    # (connection.InboxAckPosition): what an EnvelopeReceived of that Ack gets
                    # below (the same state check and rate limit), no Ack built.
                    if conn.state is not _OPEN:
                        continue
                    if self._limits_on and not self._within_rate(rec, 0, now):
                        self._refuse_rate(rec, now)
                    else:
                        self._on_inbox_ack(session, event, now)
                    continue
                # A client's Data from the connection's fast path, as its fields.
                seq, topic, payload, timestamp_ms = cast(DataFields, event)
                if self._on_data(rec, session, seq, topic, payload, timestamp_ms, now):
                    self._events.append((session, seq, topic, payload, timestamp_ms))
            elif type(event) is EnvelopeReceived:
                session = rec.session
                if session is None or session.conn_id != rec.id:
                    continue  # taken over by another connection in this batch
                body = event.body
                if type(body) is Data:
                    # Even if a later frame of the same read closed the connection: the client
                    # sent it, and after a normal Goodbye it would never be resent.
                    view = body.payload
                    if self._on_data(rec, session, body.seq, body.topic, view,
                                     body.timestamp_ms, now):
                        # (decode's payload is a view of the read: a copy of its own)
                        self._events.append((session, body.seq, body.topic,
                                             view if type(view) is bytes else bytes(view),
                                             body.timestamp_ms))
                elif conn.state is not _OPEN:
                    continue  # closed earlier in this batch: requests are not answered
                elif self._limits_on and not self._within_rate(rec, 0, now):
                    # Every envelope type counts, not just Data, against the identity's
                    # limits too (docs/auth.md).
                    self._refuse_rate(rec, now)
                elif isinstance(body, Subscribe):
                    self._on_subscribe(rec, session, body, now)
                elif isinstance(body, Unsubscribe):
                    self._on_unsubscribe(rec, session, body, now)
                elif isinstance(body, Error):
                    rec.client_errors += 1
                    self._events.append(ClientErrorReceived(
                        session=session, error=body,
                        loud=rec.client_errors <= _LOGGED_CLIENT_ERRORS))
                elif isinstance(body, Refresh):
                    self._on_refresh(rec, session, body, now)
                elif type(body) is Ack:
                    self._on_client_ack(session, body, now)
            elif isinstance(event, HelloReceived):
                self._on_hello(rec, event.hello, now)
            elif isinstance(event, HandshakeRequest):
                self._handshake_over(rec)
                rec.request = event
                if self._proxies:
                    rec.peer = self._proxies.client_address(rec.peer, event.headers)
                origins = self._origins
                origin = next((v for k, v in event.headers if k == "origin"), None)
                if len(self._conns) > self.config.max_connections:
                    self.metrics.refused["connection_limit"] += 1
                    conn.reject_handshake(503, "server is at its connection limit "
                                          f"({self.config.max_connections}); retry later")
                elif origins is not None and (origin is None or origin.lower() not in origins):
                    self.metrics.refused["origin"] += 1
                    conn.reject_handshake(403, f"origin {origin!r} is not allowed")
                elif self._drain is not None:
                    self.metrics.refused["draining"] += 1
                    conn.reject_handshake(503, "server is draining; connect to another node")
                else:
                    conn.accept_handshake()
            elif isinstance(event, HttpRequest):
                self._handshake_over(rec)
                self._on_http(rec, event)
            elif isinstance(event, Closed):
                self._on_closed(rec, event, now)

    def _on_client_ack(self, session: Session, ack: Ack, now: float) -> None:
        """A client's Ack: its ``$inbox`` position says which of the session's inbox messages
        it holds, and those leave the inbox's history (nobody else reads it; a resume replays
        only what follows the client's position). Another epoch than the inbox's, or an offset
        beyond its head, releases nothing, and so does any other topic (advisory: rooms and
        ``$all`` are read by many) and ``seq`` (protocol.md §7). With an external engine the
        engine's own history limits bound the inbox instead (nothing is trimmed there)."""
        if self._external is not None:
            return
        for reported in ack.positions:
            if reported.topic == INBOX_TOPIC:
                self._release_inbox(session, reported.position, now)

    def _release_inbox(self, session: Session, position: StreamPosition, now: float) -> None:
        """The session's ``$inbox`` history up to ``position`` goes after this read's output, a
        slice at a time (``RELEASE_SLICE``: :meth:`after_write` after this and the next reads,
        timer turns when no read comes; every way an inbox Ack comes in ends here). Due at
        ``now`` for a driver that never calls ``after_write``."""
        if not self._releasing:
            self._release_due = now
            self._release_mark = self.metrics.publishes[1]
        self._releasing.append((_INBOX_KEY + session.id, position))

    def _release_slice(self, now: float, budget: int = RELEASE_SLICE) -> bool:
        """One slice of the releases acknowledged by ``$inbox`` Acks: at most ``budget``
        entries (a stale or bogus position releases nothing). Returns whether any is left (the
        caller says when the next slice is due)."""
        releasing = self._releasing
        engine = self._engine
        released = 0
        while releasing and budget:
            topic, position = releasing[0]
            count = engine.release_upto(topic, position, budget)
            released += count
            budget -= count
            # Fewer than asked for: nothing of this one is left; as many: ask (an Ack of
            # exactly a slice needs no turn more to find that out).
            if budget or not engine.releasable(topic, position):
                releasing.popleft()
        if released:
            self._history_released(now)
        return bool(releasing)

    def _on_inbox_ack(self, session: Session, position: StreamPosition, now: float) -> None:
        """:meth:`_on_client_ack` for an ``Ack`` of the ``$inbox`` position alone (a reference
        client's, read on the connection's fast path)."""
        if self._external is None:
            self._release_inbox(session, position, now)

    def _history_released(self, now: float) -> None:
        """History entries left memory: once ``HEAP_TRIM_AFTER`` bytes have since the last
        heap trim, one is due when releases pause (``HEAP_TRIM_QUIET``; see ``heap_trim``)."""
        self._last_release = now
        if self.heap_trim is not None and self._heap_due == math.inf \
                and self._engine.released_bytes - self._heap_mark >= HEAP_TRIM_AFTER:
            self._heap_due = now
            self._push_timer(now + HEAP_TRIM_QUIET, "heap", None)

    def _heap_timer(self, now: float) -> None:
        quiet_from = self._last_release + HEAP_TRIM_QUIET
        if now < quiet_from and now < self._heap_due + self.config.trim_interval:
            self._push_timer(quiet_from, "heap", None)  # releases go on: wait for a pause
            return
        if self._dirty or self._events:
            # Output or events of this turn wait for the flush after it: the trim (~0.7 ms
            # for a 27 MiB heap) takes a turn of its own, the next one.
            self._push_timer(now, "heap", None)
            return
        self._heap_due = math.inf
        self._heap_mark = self._engine.released_bytes
        trim = self.heap_trim
        if trim is not None:
            trim()

    def _on_http(self, rec: _Conn, request: HttpRequest) -> None:
        handler = self.config.http_handler
        assert handler is not None  # serve_http is only on with a handler
        rec.http = True
        try:
            response = handler(request)
        except Exception as exc:  # the app's handler: contain it, answer 500, report
            self._events.append(HookFailed(hook="http_handler", error=exc))
            response = _HTTP_500
        try:
            rec.conn.respond_http(response)
        except LocalProtocolError as exc:  # e.g. a header with CR/LF: never written
            self._events.append(HookFailed(hook="http_handler", error=exc))
            rec.conn.respond_http(_HTTP_500)

    def _send(self, rec: _Conn, body: object, now: float) -> None:
        if rec.conn.state is not _OPEN:
            return  # closing: the session learns the rest when it resumes
        rec.conn.send(body)  # type: ignore[arg-type]
        self._dirty.add(rec.id)
        self._check_high_water(rec, now)

    def _deliver(self, rec: _Conn, envelope: bytes) -> None:
        """Queue a message from history (a replay): framed for this connection."""
        rec.conn.send_encoded(envelope)
        self._messages_sent += 1
        self._dirty.add(rec.id)

    def _deliver_frame(self, rec: _Conn, frame: bytes, envelope: bytes) -> None:
        """Queue a just-published message: its shared frame when the connection takes it
        (behind the replay still owed to it, in order, if there is one)."""
        if rec.backlog:
            rec.backlog.append(envelope)
            rec.backlog_bytes += len(envelope)
            return
        conn = rec.conn
        if not conn.send_frame(frame, len(envelope)):
            conn.send_encoded(envelope)
        self._messages_sent += 1
        self._dirty.add(rec.id)

    def _deliver_parts(self, rec: _Conn, header: bytes, envelope: bytes) -> None:
        """:meth:`_deliver_frame` of a frame in its two pieces (``header + envelope``: see
        ``ServerConnection.send_frame_parts``)."""
        if rec.backlog:
            rec.backlog.append(envelope)
            rec.backlog_bytes += len(envelope)
            return
        conn = rec.conn
        if not conn.send_frame_parts(header, envelope):
            conn.send_encoded(envelope)
        self._messages_sent += 1
        self._dirty.add(rec.id)

    def _check_high_water(self, rec: _Conn, now: float) -> None:
        # Only a paused socket makes output pile up: an unpaused one takes it all at flush().
        # A replay backlog holds owed history (at most max_replay_bytes); live messages that
        # queue behind it past outgoing_high_water make a slow consumer too.
        if ((rec.paused and rec.conn.buffered_amount > self.config.outgoing_high_water)
                or rec.backlog_bytes > self._backlog_limit) \
                and rec.conn.state is _OPEN:
            self._slow_consumers += 1
            rec.conn.abort(CloseCode.SLOW_CONSUMER,
                           f"outgoing buffer passed {self.config.outgoing_high_water} bytes",
                           now)
            # Its socket is full: the close frame would never drain. Drop it.
            rec.close_action = CloseAction.ABORT
            self._process(rec, now)

    def _schedule_conn(self, rec: _Conn) -> None:
        deadline = rec.conn.next_deadline()
        if deadline is not None and deadline < rec.scheduled:
            rec.scheduled = deadline
            self._push_timer(deadline, "conn", rec.id)

    def _push_timer(self, when: float, kind: _TimerKind, key: object) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, key))

    # ------------------------------------------------------------------ internals: protocol

    def _on_hello(self, rec: _Conn, hello: Hello, now: float) -> None:
        conn = rec.conn
        # The upgrade request is kept for the authentication hook only: a connection holds one
        # Hello, so it goes now (its headers are most of an idle connection's memory otherwise).
        request, rec.request = rec.request, None
        if hello.protocol_version != PROTOCOL_VERSION:
            self.metrics.refused["protocol_version"] += 1
            conn.refuse(CloseCode.UNSUPPORTED_VERSION, ErrorCode.UNSUPPORTED_VERSION,
                        f"protocol version {hello.protocol_version} is not supported "
                        f"(this server speaks {PROTOCOL_VERSION})", now)
            return
        serializer = hello.serializer or "raw"
        if serializer != self.config.serializer:
            self.metrics.refused["serializer_mismatch"] += 1
            conn.refuse(CloseCode.SERIALIZER_MISMATCH, ErrorCode.SERIALIZER_MISMATCH,
                        f"serializer mismatch: this server uses {self.config.serializer!r}, "
                        f"the client {serializer[:40]!r}", now)
            return
        problem = self._hello_problem(hello)
        if problem is not None:
            self.metrics.refused["hello_limit"] += 1
            conn.refuse(CloseCode.LIMIT_EXCEEDED, ErrorCode.LIMIT_EXCEEDED, problem, now)
            return
        identity, metadata = "", _NO_METADATA
        accepted: AuthAccept | None = None
        if self.config.authenticate is not None:
            decision = self._authenticate(AuthRequest(
                hello=hello, path=request.path if request else "/",
                headers=request.headers if request else (),
                now=now + self._wall_clock_offset, monotonic=now))
            if not isinstance(decision, AuthAccept):
                self._refuse_auth(conn, decision, now)
                return
            accepted = decision
            identity, metadata = decision.identity, \
                (dict(decision.metadata) if decision.metadata else _NO_METADATA)
        if self._external is not None:
            rec.accepted = accepted
            self._hello_external(rec, hello, identity, metadata, now)
            return

        session: Session | None = None
        fresh_reason = ""
        if hello.session_id or hello.resume_token:
            candidate = self._sessions.get(hello.session_id)
            # Same work whether or not the id exists: no timing oracle for valid ids.
            expected = candidate._token if candidate is not None else bytes(
                self.config.resume_token_bytes)
            token_ok = hmac.compare_digest(expected, hello.resume_token)
            if candidate is not None and token_ok and identity and candidate.identity \
                    and identity != candidate.identity:
                # The token is right but the authentication hook says someone else: a resume
                # never changes whose session it is.
                fresh_reason = "session could not be resumed: it belongs to another identity"
                self._failed_resumes += 1
            elif candidate is not None and token_ok:
                session = candidate
            else:
                fresh_reason = "session could not be resumed: unknown, expired or wrong token"
                self._failed_resumes += 1

        resumed = session is not None
        if session is None:
            if len(self._sessions) >= self.config.max_sessions:
                self.metrics.refused["session_limit"] += 1
                conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.LIMIT_EXCEEDED,
                            f"server holds its maximum of {self.config.max_sessions} sessions",
                            now, reconnect_after_ms=5000)
                return
            problem = self._peer_session_problem(rec.peer, now)
            if problem is not None:
                self.metrics.refused["peer_limit"] += 1
                conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.LIMIT_EXCEEDED, problem, now,
                            reconnect_after_ms=5000)
                return
            session = self._new_session(now)
            session.identity, session.metadata = identity, metadata
            session.peer = rec.peer
            self._peer_sessions[rec.peer] = self._peer_sessions.get(rec.peer, 0) + 1
        else:
            self._resumes += 1
            old = self._rec_of(session)
            if old is not None:
                old.conn.abort(CloseCode.SESSION_TAKEN_OVER,
                               "session resumed by another connection", now)
                self._process(old, now)
            if identity:
                session.identity = identity
            if metadata:
                session.metadata = {**session.metadata, **metadata}
            if identity or metadata:
                session._presence_stale = True
        if hello.client is not None:
            session.client_version = hello.client.version
        if accepted is not None:
            self._apply_credentials(session, accepted)

        positions = {p.topic: p.position for p in hello.positions}
        new_members: list[str] = []
        # A fresh session takes over the client's topics: the client keeps its rooms across
        # a server restart, and learns per topic whether anything was lost. The token's
        # channels are subscribed on every connect (fresh or resumed).
        wanted = [*(positions if not resumed else ()),
                  *(accepted.channels if accepted is not None else ())]
        for topic in wanted:
            if (topic not in session.subscriptions
                    and not topic.startswith(_RESERVED_PREFIX) and self._valid_topic(topic)
                    and len(session.subscriptions) - 2 < self.config.max_topics_per_session
                    and self._may_subscribe(session, topic)):
                self._add_subscription(session, topic)
                new_members.append(topic)

        recovery: list[TopicRecovery] = []
        replay: list[tuple[str, list[HistoryEntry]]] = []
        failed: list[str] = []
        for topic, held in list(session.subscriptions.items()):
            key = _INBOX_KEY + session.id if topic == INBOX_TOPIC else topic
            start = self._inbox_start(session) if held is _INBOX_FROM_START else held
            client_pos = positions.get(topic)
            outcome, entries = self._recover(rec, session, key, topic, client_pos, start, now)
            recovery.append(outcome)
            if outcome.status is RecoveryStatus.FAILED:
                failed.append(topic)
            if entries:
                replay.append((key, entries))
        stale = [t for t in positions if t not in session.subscriptions]

        session.conn_id = rec.id
        session._conn = rec.conn
        session.expires_at = math.inf
        session.connected_at = session.last_activity = now
        rec.session = session
        session._acked_seq = session.last_seq
        session._ack_due = math.inf
        cfg = self.config.connection
        conn.welcome(Welcome(
            session_id=session.id, resume_token=session._token, resumed=resumed,
            recovery=tuple(recovery), last_received_seq=session.last_seq,
            heartbeat_interval_ms=int(cfg.heartbeat_interval * 1000),
            heartbeat_timeout_ms=int(cfg.heartbeat_timeout * 1000),
            limits=self._limits_for(session),
            server_time_ms=int((now + cfg.wall_clock_offset) * 1000),
            fresh_reason=fresh_reason, credentials_expire_ms=_ms(session.credentials_expire_at),
            serializer=self.config.serializer), now)
        self._schedule_credentials(rec, session)
        for key, entries in replay:
            self._queue_replay(rec, key, [e.envelope for e in entries], now)
        metrics = self.metrics
        metrics.handshake_seconds.observe(now - rec.opened)
        if resumed:
            metrics.replayed_messages.observe(sum(len(entries) for _, entries in replay))
        for topic in stale:
            conn.send(Unsubscribed(topic=topic))
        self._dirty.add(rec.id)
        self._events.append(ClientConnected(session=session, conn_id=rec.id, resumed=resumed,
                                            fresh_reason=fresh_reason,
                                            failed_topics=tuple(failed)))
        for topic in new_members:
            self._presence(topic, session, PresenceAction.JOIN, now)
        self._check_high_water(rec, now)

    def _authenticate(self, request: AuthRequest) -> AuthAccept | AuthRefuse | None:
        """The app's hook, contained: None when it raised (reported as HookFailed)."""
        hook = self.config.authenticate
        assert hook is not None
        try:
            return hook(request)
        except Exception as exc:  # the app's hook: contain it, refuse, report
            self._events.append(HookFailed(hook="authenticate", error=exc))
            return None

    def _refuse_auth(self, conn: ServerConnection, decision: AuthRefuse | None,
                     now: float) -> None:
        refused = self.metrics.refused
        if decision is None:
            refused["auth_error"] += 1
            conn.refuse(CloseCode.INTERNAL_ERROR, ErrorCode.UNKNOWN,
                        "authentication failed: internal error", now, reconnect_after_ms=5000)
        elif decision.retry_after is not None:
            refused["auth_unavailable"] += 1
            conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.AUTH_UNAVAILABLE, decision.message,
                        now, reconnect_after_ms=max(1, int(decision.retry_after * 1000)))
        else:
            refused["auth_failed"] += 1
            conn.refuse(CloseCode.AUTH_FAILED, ErrorCode.AUTH_FAILED, decision.message, now)

    def _apply_credentials(self, session: Session, accepted: AuthAccept) -> None:
        session.topic_permission = accepted.topics
        session.credentials_expire_at = accepted.expires_at
        if accepted.rate_limit is not None and session.identity:
            self._identity_limits[session.identity] = accepted.rate_limit

    def _identity_limit(self, session: Session) -> RateLimit | None:
        if not session.identity:
            return None
        limit = self._identity_limits.get(session.identity, self.config.identity_rate_limit)
        return limit if limit.enabled else None

    def _limits_for(self, session: Session) -> Limits:
        """Welcome.limits for ``session``: the tighter of the connection's and its identity's
        rate limits (0: unlimited)."""
        limit = self._identity_limit(session)
        if limit is None:
            return self._limits
        base = self._limits

        def tighter(a: int, b: float) -> int:
            b_int = math.ceil(b) if b else 0
            return min(a, b_int) if a and b_int else a or b_int

        return replace(base,
                       max_messages_per_second=tighter(base.max_messages_per_second,
                                                       limit.messages_per_second),
                       max_bytes_per_second=tighter(base.max_bytes_per_second,
                                                    limit.bytes_per_second))

    def _schedule_credentials(self, rec: _Conn, session: Session) -> None:
        expires = session.credentials_expire_at
        if expires is not None:
            when = expires - self._wall_clock_offset + self.config.credentials_grace
            self._push_timer(when, "credentials", rec.id)

    def _on_refresh(self, rec: _Conn, session: Session, refresh: Refresh, now: float) -> None:
        """A new token on the open connection: verified like a Hello's, for the same
        identity; accepted extends the credentials (Refreshed), refused closes with 4005,
        not checkable yet answers Error(AUTH_UNAVAILABLE) (the client retries)."""
        if self.config.authenticate is None:
            self._send(rec, Error(code=ErrorCode.UNEXPECTED_MESSAGE,
                                  message="this server does not use credentials"), now)
            return
        decision = self._authenticate(AuthRequest(
            hello=Hello(session_id=session.id, auth_token=refresh.token), path="/",
            headers=(), now=now + self._wall_clock_offset, monotonic=now,
            refreshing=session))
        if decision is None or (isinstance(decision, AuthRefuse)
                                and decision.retry_after is not None):
            self._send(rec, Error(code=ErrorCode.AUTH_UNAVAILABLE, retryable=True,
                                  message=decision.message if decision is not None
                                  else "authentication failed: internal error"), now)
            return
        if isinstance(decision, AuthRefuse) or (
                session.identity and decision.identity != session.identity):
            message = decision.message if isinstance(decision, AuthRefuse) \
                else "the new token is for another identity"
            rec.conn.abort(CloseCode.AUTH_FAILED, message, now)
            self._process(rec, now)
            return
        self._apply_credentials(session, decision)
        if decision.metadata:
            session.metadata = {**session.metadata, **decision.metadata}
        self._schedule_credentials(rec, session)
        self._send(rec, Refreshed(credentials_expire_ms=_ms(session.credentials_expire_at)),
                   now)

    def _credentials_due(self, rec: _Conn, now: float) -> None:
        session = rec.session
        if session is None or session.conn_id != rec.id \
                or rec.conn.state is not _OPEN:
            return
        expires = session.credentials_expire_at
        if expires is None or \
                expires - self._wall_clock_offset + self.config.credentials_grace > now:
            return  # refreshed since the timer was set
        rec.conn.abort(CloseCode.TOKEN_EXPIRED, "credentials expired and were not refreshed",
                       now)
        self._process(rec, now)

    def _recover(self, rec: _Conn, session: Session, key: str, topic: str,
                 client_pos: StreamPosition | None, start: StreamPosition,
                 now: float) -> tuple[TopicRecovery, list[HistoryEntry]]:
        """Work out what a (re)attaching session is owed on one topic. What would take the
        connection past ``max_replay_bytes`` is reported FAILED (all or nothing per topic)."""
        position = client_pos if client_pos is not None else start
        if client_pos is None and start.offset == 0 and start.epoch == 0:
            head = self._engine.head(key)
            return TopicRecovery(topic=topic, status=RecoveryStatus.FRESH, position=head), []
        result = self._engine.read_after(key, position, now + self._wall_clock_offset)
        if not isinstance(result, ReplayGap) and result:
            size = sum(e.size for e in result)
            if rec.replayed + size > self.config.max_replay_bytes:
                # Over this connection's replay budget: as if history no longer held it.
                result = ReplayGap(position.offset + 1, result[-1].offset)
            else:
                rec.replayed += size
        if isinstance(result, ReplayGap):
            self._failed_recoveries += 1
            head = self._engine.head(key)
            # All-or-nothing: continue from the live head. Everything after the client's
            # position up to the head is lost to it, including what history still holds.
            self._own_subscriptions(session)[topic] = head
            lost_from, lost_to = result.lost_from, head.offset if result.lost_to else 0
            if position.epoch == head.epoch and position.offset > head.offset:
                # Beyond the head in the same epoch (the stream lost its tail): the client's
                # head+1..offset are not ours, and the live stream numbers those offsets anew.
                lost_from, lost_to = head.offset + 1, position.offset
            if lost_to >= lost_from > 0:
                self.metrics.lost_messages += lost_to - lost_from + 1
            return TopicRecovery(topic=topic, status=RecoveryStatus.FAILED, position=head,
                                 lost_from=lost_from, lost_to=lost_to), []
        sid = session.id
        entries = [e for e in result if e.reaches(sid)]
        status = RecoveryStatus.RECOVERED if client_pos is not None else RecoveryStatus.FRESH
        # ``position`` is where the client stands *before* the replayed messages arrive.
        return TopicRecovery(topic=topic, status=status, position=position,
                             replayed=len(entries)), entries

    def _on_data(self, rec: _Conn, session: Session, seq: int, topic: str,
                 payload: bytes | bytearray | memoryview, timestamp_ms: int, now: float) -> bool:
        """A client's ``Data``: its seq, ack and rate-limit bookkeeping. True when it is taken
        (the next seq, within the limits): the caller queues it for the application, in order
        (this queues no hub event of its own). False: a duplicate (acknowledged again), or
        refused (the connection closed with its code)."""
        previous = session.last_activity
        session.last_activity = now
        if seq <= session.last_seq:
            self._duplicates += 1
            if self._limits_on and rec.conn.state is _OPEN \
                    and not self._within_rate(rec, len(payload), now):
                # A duplicate is an envelope like any other (protocol.md §5.4): resending
                # old seqs (or seq 0) must not get around the rate limits.
                self._refuse_rate(rec, now)
                return False
            self._schedule_ack(session, now)
            return False
        if rec.conn.state is not _OPEN and seq != session.last_seq + 1:
            return False  # we already closed it; the client resends after resuming
        if seq != session.last_seq + 1:
            rec.conn.abort(CloseCode.UNEXPECTED_MESSAGE,
                           f"sequence gap: got {seq} after {session.last_seq}", now)
            return False
        if self._limits_on and not self._within_rate(rec, len(payload), now):
            self._refuse_rate(rec, now)
            return False
        if seq - session._acked_seq > self._max_unacked:
            # The client may only run max_unacked ahead of the last ack we sent (Welcome.limits).
            rec.conn.abort(CloseCode.LIMIT_EXCEEDED,
                           f"more than max_unacked={self.config.max_unacked} messages "
                           "unacknowledged", now)
            return False
        session.last_seq = seq
        self._messages_received += 1
        if seq - session._acked_seq >= self._ack_every:
            # Acked by count: the ack timer, if set, stays for what comes next (it fires no
            # later than ack_delay after the first message since the last timed ack, so
            # before ack_delay after any later one): one timer per session and ack_delay,
            # not one per ack_every messages.
            self._send_ack(session, now, by_count=True)
        elif session._ack_due == math.inf:
            if now - previous >= self._ack_ride_gap:
                # A slow sender: the ack timer would fire before its next message. Let the
                # ack ride with this turn's output to it (flush decides; same deadline).
                session._ack_due = now + self.config.ack_delay
                self._ack_riders.append((session, False))
            else:
                self._schedule_ack(session, now)
        elif self._ack_ride_gap != math.inf and now + (now - previous) >= session._ack_due:
            # The timer is set and falls due before this sender's next message at its pace:
            # it would fire alone. The ack rides with this turn's output if there is any (the
            # timer then finds nothing to say); if not, the timer stays as it is.
            self._ack_riders.append((session, True))
        return True

    def _within_rate(self, rec: _Conn, size: int, now: float) -> bool:
        if rec.buckets is None:
            rec.buckets = _buckets(self.config.rate_limit, now)
        if not _take(rec.buckets, size, now):
            return False
        session = rec.session
        if session is None or not self._identity_limits_on:
            return True
        limit = self._identity_limit(session)
        if limit is None:
            return True
        buckets = self._identity_buckets.get(session.identity)
        if buckets is None or buckets[0] is not limit:
            buckets = self._identity_buckets[session.identity] = (limit,
                                                                  _buckets(limit, now))
        return _take(buckets[1], size, now)

    def _refuse_rate(self, rec: _Conn, now: float) -> None:
        self._rate_limited += 1
        limits = self._limits if rec.session is None else self._limits_for(rec.session)
        rec.conn.abort(CloseCode.RATE_LIMITED,
                       "client sent faster than its rate limit "
                       f"({limits.max_messages_per_second} msgs/s, "
                       f"{limits.max_bytes_per_second} bytes/s)", now)

    def _charge_heartbeats(self, rec: _Conn, now: float) -> None:
        """Ping/Pong envelopes (answered inside the connection) count against the message
        rate like every other envelope."""
        count = rec.conn.heartbeats_received
        delta, rec.heartbeats_charged = count - rec.heartbeats_charged, count
        if rec.conn.state is not _OPEN or rec.session is None:
            return
        for _ in range(delta):  # (each one also to the identity's buckets)
            if not self._within_rate(rec, 0, now):
                self._refuse_rate(rec, now)
                self._process(rec, now)
                return

    def _schedule_ack(self, session: Session, now: float) -> None:
        if session._ack_due == math.inf:
            session._ack_due = now + self.config.ack_delay
            self._push_timer(session._ack_due, "ack", session.id)

    def _ride_acks(self, now: float) -> None:
        """The acks that may ride (``_on_data``): sent now if their connection has output in
        this flush (the Ack goes in the same write), else left to the ack timer — set here,
        at the deadline the message gave, for a slow sender that has none yet."""
        riders, self._ack_riders = self._ack_riders, []
        for session, timed in riders:
            due = session._ack_due
            if due == math.inf:
                continue  # acked or reset meanwhile (a takeover, a detach)
            if session.last_seq == session._acked_seq:
                if not timed:
                    session._ack_due = math.inf  # acked by count since: nothing to say
                continue  # (a set timer stays: it acknowledges what comes before it fires)
            rec = self._rec_of(session)
            # (The application's output to the connection: its ordered queue, non-empty.)
            if rec is not None and rec.conn.state is _OPEN and rec.conn._ordered is not None:
                self._send_ack(session, now)
            elif not timed:
                self._push_timer(due, "ack", session.id)

    def _send_ack(self, session: Session, now: float, by_count: bool = False) -> None:
        if not by_count or self._external is not None:
            session._ack_due = math.inf
        if self._external is not None:
            self._save(session, now)  # acked once the engine holds it (_ack_saved)
            return
        rec = self._rec_of(session)
        if rec is None or rec.conn.state is not _OPEN:
            return
        session._acked_seq = seq = session.last_seq
        # The Ack's frame by its fixed layout (codec.encode_ack_frame: the generic encoder's
        # bytes, framed, tests/test_codec.py), not an Ack object built (~4,800 instructions, a
        # frozen dataclass) and encoded by the generic builder (~5,000) per acknowledgement;
        # the envelope alone where the connection frames its own (an extension, message mode).
        conn = rec.conn
        frame, header = encode_ack_frame(seq)
        if not conn.send_frame(frame, len(frame) - header):
            conn.send_encoded(encode_ack(seq))
        self._dirty.add(rec.id)

    def _on_subscribe(self, rec: _Conn, session: Session, sub: Subscribe, now: float) -> None:
        topic = sub.topic
        problem = self._topic_problem(topic)
        if problem is None and topic.startswith(_RESERVED_PREFIX):
            problem = f"topic names starting with {_RESERVED_PREFIX!r} are reserved"
        if problem is not None:
            self._send(rec, Error(code=ErrorCode.INVALID_TOPIC, message=problem,
                                  request_id=sub.request_id), now)
            return
        joined = topic not in session.subscriptions
        if joined and not self._may_subscribe(session, topic):
            self._send(rec, Error(code=ErrorCode.SUBSCRIBE_DENIED,
                                  message=f"not allowed to subscribe to {topic!r}",
                                  request_id=sub.request_id), now)
            return
        if not joined:
            # Already held: its messages are on their way (live, or in this connection's
            # replay); replaying again would only repeat them. Nothing is re-read.
            self._send(rec, Subscribed(request_id=sub.request_id, recovery=TopicRecovery(
                topic=topic, status=RecoveryStatus.RECOVERED, position=None)), now)
            return
        if len(session.subscriptions) - 2 >= self.config.max_topics_per_session:
            self._send(rec, Error(code=ErrorCode.TOO_MANY_TOPICS,
                                  message=f"at most {self.config.max_topics_per_session} "
                                  "topics per session", request_id=sub.request_id), now)
            return
        if self._external is not None:
            self._subscribe_external(rec, session, topic, sub.position, sub.request_id, now)
            return
        start = self._add_subscription(session, topic)
        outcome, entries = self._recover(rec, session, topic, topic, sub.position, start, now)
        rec.conn.send(Subscribed(request_id=sub.request_id, recovery=outcome))
        if entries:
            self._queue_replay(rec, topic, [e.envelope for e in entries], now)
        self._dirty.add(rec.id)
        if joined:
            self._presence(topic, session, PresenceAction.JOIN, now)
        self._check_high_water(rec, now)

    def _on_unsubscribe(self, rec: _Conn, session: Session, unsub: Unsubscribe,
                        now: float) -> None:
        topic = unsub.topic
        if topic.startswith(_RESERVED_PREFIX) or topic not in session.subscriptions:
            self._send(rec, Error(code=ErrorCode.NOT_SUBSCRIBED,
                                  message=f"not subscribed to {topic!r}",
                                  request_id=unsub.request_id), now)
            return
        self._remove_subscription(session, topic, now)
        self._send(rec, Unsubscribed(request_id=unsub.request_id, topic=topic), now)
        if self._external is not None:
            self._save(session, now)

    def _on_closed(self, rec: _Conn, closed: Closed, now: float) -> None:
        self._handshake_over(rec)
        self._drop_backlog(rec)
        session = rec.session
        if session is None:
            if rec.http:
                return  # a plain HTTP request, answered: not a refused WebSocket
            self.metrics.rejected_connections += 1
            self._events.append(ConnectionRejected(conn_id=rec.id, code=closed.code,
                                                   reason=closed.reason, cause=closed.cause))
            return
        if session.conn_id != rec.id:
            return  # taken over: the session already belongs to another connection
        session.conn_id = None
        session._conn = None
        goodbye = closed.goodbye
        ended = (goodbye is not None and goodbye.code == ErrorCode.NORMAL) \
            or session.id not in self._sessions  # disconnect(end_session=True) got there first
        self._events.append(ClientDisconnected(session=session, conn_id=rec.id,
                                               code=closed.code, reason=closed.reason,
                                               cause=closed.cause, session_ended=ended))
        if ended:
            self._end_session(session, now)
        elif session.id in self._sessions:
            session.expires_at = now + self.config.session_ttl
            self._push_timer(session.expires_at, "expire", session.id)
            if self._external is not None:
                self._save(session, now)  # the record now expires session_ttl from here

    # ------------------------------------------------------------------ cluster: engine I/O

    def engine_requests(self) -> list[EngineRequest]:
        """Drain the requests for the external engine's driver (always empty with the memory
        engine). Call after every call into the hub, like :meth:`flush`."""
        out, self._outbox = self._outbox, []
        return out

    def engine_result(self, result: EngineResult, now: float) -> None:
        """The driver's answer to a request (by ``request_id``). A result for a request that
        timed out already, or that this hub never sent, is ignored."""
        waiting = self._pending.pop(result.request_id, None)
        if waiting is None:
            return
        self._pending_due.pop(result.request_id, None)
        if isinstance(result, EngineFailed):
            self._engine_failures += 1
        waiting(result, now)

    def engine_message(self, topic: str, entry: HistoryEntry, now: float) -> None:
        """A message appended to ``topic`` (an engine topic this node receives), from any node.
        Checked for continuity and delivered once, in position order (see docs/design.md)."""
        tracker = self._trackers.get(topic)
        if tracker is None:
            return  # not received here (any more)
        self._topic_in(topic, tracker, entry, now)

    def engine_status(self, up: bool, reason: str, now: float) -> None:
        """The driver lost (``up`` False) or regained the engine. While it is down, what needs
        the engine is refused with "cluster engine unavailable: <reason>"."""
        self._engine_up = up
        self._engine_down_reason = reason or "engine unavailable"
        if up:
            # Catch up at once: whatever was appended while we could not hear it.
            self._check_heads(now)
            self._heads_soon(now)

    @property
    def engine_up(self) -> bool:
        return self._engine_up

    def _engine_unavailable(self) -> str | None:
        """Why new work that needs the engine must be refused now, or None."""
        if not self._engine_up:
            return f"cluster engine unavailable: {self._engine_down_reason}"
        ext = self._external
        if ext is not None and len(self._pending) >= ext.max_pending:
            return (f"cluster engine unavailable: {ext.max_pending} requests already waiting "
                    "(max_pending)")
        return None

    def _ask(self, make: Callable[[int], EngineRequest],
             then: Callable[[EngineResult, float], None], now: float) -> bool:
        """Send a request; ``then(result, now)`` runs on its result (or its timeout). False,
        with nothing sent, when the engine is down or max_pending requests wait already."""
        ext = self._external
        assert ext is not None
        if self._engine_unavailable() is not None:
            return False
        rid = self._next_request_id
        self._next_request_id += 1
        request = make(rid)
        self._pending[rid] = then
        due = self._pending_due[rid] = now + ext.request_timeout
        self._outbox.append(request)
        if self._engine_timer_due == math.inf:
            self._engine_timer_due = due
            self._push_timer(due, "engine", None)
        return True

    def _tell(self, make: Callable[[int], EngineRequest], now: float) -> None:
        """A request whose result does not matter beyond its failure (counted)."""
        if not self._ask(make, _ignore, now):
            self._engine_failures += 1

    def _engine_timeouts(self, now: float) -> None:
        """Requests without a result ``request_timeout`` after they were sent fail
        ("timeout"), oldest first; the timer is armed again for the oldest still waiting."""
        self._engine_timer_due = math.inf
        due_by = self._pending_due
        while due_by:
            request_id, due = next(iter(due_by.items()))
            if due > now:
                if due < self._engine_timer_due:
                    self._engine_timer_due = due
                    self._push_timer(due, "engine", None)
                return
            del due_by[request_id]
            waiting = self._pending.pop(request_id, None)
            if waiting is not None:
                self._engine_failures += 1  # (counted here: EngineFailed made up, not received)
                waiting(EngineFailed(request_id=request_id, reason="timeout"), now)

    # ------------------------------------------------------------------ cluster: topics

    def _receive(self, key: str, start: StreamPosition, now: float) -> _Tracker:
        """Make sure this node receives ``key``; a new tracker starts at ``start``."""
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = _Tracker(start.epoch, start.offset)
            self._ask_receive(key, tracker, now)
        return tracker

    def _ask_receive(self, key: str, tracker: _Tracker, now: float) -> None:
        def answered(result: EngineResult, at: float) -> None:
            if isinstance(result, EngineFailed):
                tracker.receiving = False
            elif self._trackers.get(key) is tracker:
                tracker.receiving = True

        tracker.receiving = True  # asked; reset below if it could not be sent
        if not self._ask(lambda rid: Receive(request_id=rid, topic=key), answered, now):
            self._engine_failures += 1
            tracker.receiving = False

    def _stop_receiving(self, key: str, now: float) -> None:
        if key in self._watches:
            return  # the app still watches it
        if self._trackers.pop(key, None) is not None:
            self._tell(lambda rid: StopReceiving(request_id=rid, topic=key), now)

    def _topic_in(self, key: str, tracker: _Tracker, entry: HistoryEntry, now: float) -> None:
        """Continuity per topic: deliver ``entry`` if it is the next one, hold it if it is
        early (and fill the hole), drop it if it is old; another epoch is a reported loss."""
        if entry.epoch != tracker.epoch:
            self._topic_lost(key, tracker, tracker.last + 1, 0,
                             StreamPosition(entry.epoch, entry.offset - 1), now)
        if entry.offset <= tracker.last:
            self._cross_duplicates += 1
            return
        if entry.offset > tracker.last + 1:
            ext = self._external
            assert ext is not None
            if len(tracker.held) < ext.max_held_per_topic:
                tracker.held[entry.offset] = entry
            self._fill(key, tracker, now)
            self._heads_soon(now)  # deliveries are being lost: check the quiet topics too
            return
        self._deliver_tracked(key, tracker, entry, now)
        held = tracker.held
        while held:
            nxt = held.pop(tracker.last + 1, None)
            if nxt is None:
                break
            self._deliver_tracked(key, tracker, nxt, now)

    def _deliver_tracked(self, key: str, tracker: _Tracker, entry: HistoryEntry,
                         now: float) -> None:
        tracker.last = entry.offset
        checked = self._checked_envelope(key, entry)
        if isinstance(checked, str):
            self._bad_entries += 1
            self._events.append(EngineRecordRejected(what=f"history entry {key}@{entry.offset}",
                                                     reason=checked))
            self._topic_lost(key, tracker, entry.offset, entry.offset,
                             StreamPosition(entry.epoch, entry.offset), now)
            return
        frame, envelope = checked
        watches = self._watches
        if watches:
            watch = watches.get(key)
            if watch is not None:
                self._watched(key, watch, _tuple_new(HistoryEntry, (
                    entry.epoch, entry.offset, entry.time, envelope, entry.route)), False)
        sent_before = self._messages_sent
        if key.startswith(_INBOX_KEY):
            session = self._sessions.get(key[len(_INBOX_KEY):])
            if session is not None and session.conn_id is not None:
                rec = self._conns[session.conn_id]
                if rec.conn.state is _OPEN:
                    self._deliver_frame(rec, frame, envelope)
                    if rec.paused:
                        self._check_high_water(rec, now)
            self.metrics.deliveries[1] += self._messages_sent - sent_before
            return
        members = self._members.get(key)
        if members:
            # The stored envelope carries the placeholder position (0, 0) the publishing node
            # appended: connections that cannot take the shared frame (message mode under
            # ASGI, permessage-deflate) and replay backlogs get the envelope with the position.
            self._fan_out(key, members, entry._replace(envelope=envelope), frame, now)
            self.metrics.deliveries[0 if key == BROADCAST_TOPIC else 2] += \
                self._messages_sent - sent_before

    def _checked_envelope(self, key: str, entry: HistoryEntry) -> tuple[bytes, bytes] | str:
        """``entry``'s envelope as this hub sends it (position filled in), framed; or why it is
        unusable (not a Data envelope, another topic)."""
        try:
            body = codec.decode(entry.envelope)
        except Exception as exc:  # bytes from the engine: verified like bytes from a socket
            return f"envelope does not decode: {exc}"
        if type(body) is not Data:
            return f"envelope holds {type(body).__name__}, not Data"
        wire_topic = INBOX_TOPIC if key.startswith(_INBOX_KEY) else key
        if body.topic != wire_topic:
            return f"envelope is for topic {body.topic!r}, not {wire_topic!r}"
        frame, header = encode_frame(topic=wire_topic, epoch=entry.epoch, offset=entry.offset,
                                     timestamp_ms=body.timestamp_ms, payload=body.payload)
        return frame, frame[header:]

    def _fill(self, key: str, tracker: _Tracker, now: float) -> None:
        """Read the hole after ``tracker.last`` from history (one read at a time)."""
        if tracker.filling:
            return
        ext = self._external
        assert ext is not None
        after = StreamPosition(tracker.epoch, tracker.last)

        def filled(result: EngineResult, at: float) -> None:
            tracker.filling = False
            if self._trackers.get(key) is not tracker:
                return
            if isinstance(result, EngineFailed):
                return  # the next message or heads check tries again
            assert isinstance(result, RangeRead)
            if result.gap is not None:
                gap = result.gap
                if gap.lost_to and result.head.epoch == tracker.epoch:
                    # History starts after the hole: exactly lost_from..lost_to are gone;
                    # what follows is read and delivered.
                    self._topic_lost(key, tracker, gap.lost_from, gap.lost_to,
                                     StreamPosition(tracker.epoch, gap.lost_to), at)
                    self._fill(key, tracker, at)
                    return
                # Another epoch: the engine lost this stream's past (a failover, a reset).
                self._topic_lost(key, tracker, tracker.last + 1, 0, result.head, at)
                self._drain_held(key, tracker, at)
                return
            for entry in result.entries:
                if self._trackers.get(key) is not tracker:
                    return
                self._topic_in(key, tracker, entry, at)
            if tracker.held or (result.head.epoch == tracker.epoch
                                and result.head.offset > tracker.last):
                self._fill(key, tracker, at)

        tracker.filling = self._ask(lambda rid: ReadRange(
            request_id=rid, topic=key, after=after, max_count=ext.read_batch_count,
            max_bytes=ext.read_batch_bytes), filled, now)

    def _drain_held(self, key: str, tracker: _Tracker, now: float) -> None:
        held = tracker.held
        for offset in sorted(held):
            entry = held.pop(offset)
            if offset > tracker.last:
                tracker.last = offset - 1
                self._deliver_tracked(key, tracker, entry, now)

    def _topic_lost(self, key: str, tracker: _Tracker, lost_from: int, lost_to: int,
                    resume_at: StreamPosition, now: float) -> None:
        """Offsets ``lost_from..lost_to`` (0: unknown end, another epoch) of ``key`` never
        reached this node and history no longer has them: every local subscriber is told
        (``Subscribed`` with status FAILED and the range), and delivery goes on from
        ``resume_at``."""
        self._lost_ranges += 1
        if resume_at.epoch != tracker.epoch:
            tracker.held.clear()
        tracker.epoch = resume_at.epoch
        tracker.last = resume_at.offset
        if key.startswith(_INBOX_KEY):
            session = self._sessions.get(key[len(_INBOX_KEY):])
            targets = [session] if session is not None else []
            wire = INBOX_TOPIC
        else:
            targets = [self._sessions[s] for s in self._members.get(key, ())
                       if s in self._sessions]
            wire = key
        watch = self._watches.get(key)
        if watch is not None:
            event = TopicLost(topic=key, lost_from=lost_from, lost_to=lost_to,
                              position=resume_at)
            if watch.ready:
                self._events.append(event)
            else:
                watch.held.append(event)
        for session in targets:
            self._own_subscriptions(session)[wire] = resume_at
            self._failed_recoveries += 1
            rec = self._rec_of(session)
            if rec is not None:
                self._send(rec, Subscribed(recovery=TopicRecovery(
                    topic=wire, status=RecoveryStatus.FAILED, position=resume_at,
                    lost_from=lost_from, lost_to=lost_to)), now)

    def _heads_soon(self, now: float) -> None:
        """Something was or may have been missed: checks at ``heads_interval`` again."""
        ext = self._external
        assert ext is not None
        self._heads_wait = ext.heads_interval
        if self._heads_due > now + ext.heads_interval:
            self._heads_due = now + ext.heads_interval
            self._push_timer(self._heads_due, "heads", None)

    def _check_heads(self, now: float) -> None:
        """The periodic position check: a head past what this node delivered means a message
        that never arrived (dropped between nodes); read it from history."""
        keys = tuple(self._trackers)
        if not keys:
            return
        for key in keys:
            tracker = self._trackers[key]
            if not tracker.receiving:
                self._ask_receive(key, tracker, now)

        def compared(result: EngineResult, at: float) -> None:
            if not isinstance(result, Heads):
                return
            behind = False
            for key, head in result.heads:
                tracker = self._trackers.get(key)
                if tracker is None:
                    continue
                if head.epoch not in (tracker.epoch, 0):
                    behind = True
                    self._topic_lost(key, tracker, tracker.last + 1, 0, head, at)
                elif head.offset > tracker.last:
                    # (Also a message on its way when the heads were read: cheap to ask.)
                    behind = True
                    self._fill(key, tracker, at)
            if behind:
                self._heads_soon(at)
            else:
                ext = self._external
                assert ext is not None
                self._heads_wait = min(self._heads_wait * 2, ext.heads_interval_max)

        self._ask(lambda rid: ReadHeads(request_id=rid, topics=keys, create=False), compared,
                  now)

    # ------------------------------------------------------------------ cluster: recovery

    def _recover_topics(self, session: Session,
                        wants: list[tuple[str, StreamPosition | None, StreamPosition | None]],
                        done: Callable[[list[_Recovered] | str, float],
                                       None], now: float, rec: _Conn | None = None) -> None:
        """Work out, through the engine, what a (re)attaching session is owed on each topic of
        ``wants`` ``(topic, client position, subscription start)``; ``done`` gets, in order,
        each topic's outcome and the envelopes to replay (read in bounded batches, all or
        nothing per topic), or why the engine could not answer. As with the memory engine, a
        topic whose replay would take the connection (``rec``, else the session's) past
        ``max_replay_bytes`` is FAILED, and a topic is not read past that many bytes. The
        session is made a member and its topics received before ``done`` runs, so nothing
        live slips between the replay and the first live message, and nothing comes twice."""
        ext = self._external
        assert ext is not None
        sid = session.id
        keys = [self._key(session, topic) for topic, _, _ in wants]
        results: list[tuple[TopicRecovery, list[HistoryEntry]] | None] = [None] * len(wants)
        read_bytes = [0] * len(wants)
        max_replay_bytes = self.config.max_replay_bytes
        state = _Gather(len(wants))

        def finish(at: float) -> None:
            if state.failed:
                done(state.failed, at)
                return
            # This node may have delivered past what was read meanwhile (live messages to
            # other local subscribers): read on, so the replay reaches the live stream.
            lagging = []
            for i, key in enumerate(keys):
                result = results[i]
                assert result is not None
                outcome, entries = result
                if outcome.status is RecoveryStatus.FAILED:
                    continue
                end = entries[-1].position if entries else _pos(outcome)
                tracker = self._trackers.get(key)
                if tracker is not None and tracker.epoch == end.epoch \
                        and tracker.last > end.offset:
                    lagging.append((i, outcome, end, entries))
            if lagging:
                state.left = len(lagging)
                for i, outcome, end, entries in lagging:
                    results[i] = None
                    read(i, outcome.topic, keys[i], _pos(outcome), outcome.status, end,
                         entries, at)
                return
            out: list[_Recovered] = []
            target = rec if rec is not None else self._rec_of(session)
            for (topic, _, _), key, result in zip(wants, keys, results, strict=True):
                assert result is not None
                outcome, entries = result
                envelopes: list[bytes] = []
                end = _pos(outcome)
                if entries and target is not None:
                    size = sum(e.size for e in entries)
                    if target.replayed + size > max_replay_bytes:
                        # Over this connection's replay budget: as if history no longer held
                        # it (all or nothing), continuing from the last entry read.
                        last = entries[-1]
                        lost_from, lost_to = end.offset + 1, last.offset
                        self.metrics.lost_messages += lost_to - lost_from + 1
                        end = StreamPosition(last.epoch, last.offset)
                        outcome = TopicRecovery(topic=topic, status=RecoveryStatus.FAILED,
                                                position=end, lost_from=lost_from,
                                                lost_to=lost_to)
                        entries = []
                    else:
                        target.replayed += size
                # What this node already delivered to its other members is replayed to this
                # session alone; what lies beyond goes through the topic's tracker after the
                # Welcome (to every local member, this session included), so no member misses
                # it and nobody gets it twice.
                tracker = self._trackers.get(key)
                feed: list[HistoryEntry] = []
                if tracker is not None and entries and entries[0].epoch == tracker.epoch:
                    feed = [e for e in entries if e.offset > tracker.last]
                    entries = [e for e in entries if e.offset <= tracker.last]
                for entry in entries:
                    checked = self._checked_envelope(key, entry)
                    if isinstance(checked, str):
                        self._bad_entries += 1
                        self._events.append(EngineRecordRejected(
                            what=f"history entry {key}@{entry.offset}", reason=checked))
                        outcome = TopicRecovery(topic=topic, status=RecoveryStatus.FAILED,
                                                position=end, lost_from=entry.offset,
                                                lost_to=entry.offset)
                        envelopes = []
                        break
                    if entry.reaches(sid):
                        envelopes.append(checked[1])
                if outcome.status is RecoveryStatus.FAILED:
                    self._failed_recoveries += 1
                    feed = []
                elif entries or feed:
                    last = (feed or entries)[-1]
                    end = StreamPosition(last.epoch, last.offset)
                self._own_subscriptions(session)[topic] = end
                self._receive(key, end, at)  # a new tracker starts where the replay ends
                if topic != INBOX_TOPIC:
                    self._members.setdefault(topic, set()).add(sid)
                out.append(_Recovered(outcome, envelopes, key, feed))
            done(out, at)

        def recovered(i: int, outcome: TopicRecovery, entries: list[HistoryEntry],
                      at: float) -> None:
            results[i] = (outcome, entries)
            state.left -= 1
            if state.left == 0:
                finish(at)

        def failed(reason: str, at: float) -> None:
            if not state.failed:
                state.failed = reason
            state.left -= 1
            if state.left == 0:
                finish(at)

        def read(i: int, topic: str, key: str, start: StreamPosition, status: RecoveryStatus,
                 position: StreamPosition, got: list[HistoryEntry], at: float) -> None:
            def answered(result: EngineResult, t: float) -> None:
                if isinstance(result, EngineFailed):
                    failed(result.reason, t)
                    return
                if not isinstance(result, RangeRead):
                    failed(f"unexpected answer {type(result).__name__}", t)
                    return
                tracker = self._trackers.get(key)
                live = StreamPosition(tracker.epoch, tracker.last) if tracker else result.head
                if result.gap is not None:
                    head = live if tracker is not None else result.head
                    lost_to = head.offset if result.gap.lost_to else 0
                    recovered(i, TopicRecovery(topic=topic, status=RecoveryStatus.FAILED,
                                               position=head, lost_from=result.gap.lost_from,
                                               lost_to=lost_to), [], t)
                    return
                got.extend(result.entries)
                read_bytes[i] += sum(e.size for e in result.entries)
                last = got[-1].offset if got else position.offset
                target = result.head.offset
                if tracker is not None and tracker.epoch == position.epoch:
                    target = max(target, tracker.last)
                if read_bytes[i] > max_replay_bytes:
                    # More than any connection may be replayed: nothing (all or nothing), and
                    # no more read from the engine.
                    recovered(i, TopicRecovery(
                        topic=topic, status=RecoveryStatus.FAILED,
                        position=StreamPosition(position.epoch, target),
                        lost_from=start.offset + 1, lost_to=target), [], t)
                    return
                if result.entries and last < target and len(got) < self._max_replay:
                    read(i, topic, key, start, status, StreamPosition(position.epoch, last),
                         got, t)
                    return
                if last < target:
                    # More than a replay may hold: all or nothing, so nothing.
                    recovered(i, TopicRecovery(
                        topic=topic, status=RecoveryStatus.FAILED,
                        position=StreamPosition(position.epoch, target),
                        lost_from=start.offset + 1, lost_to=target), [], t)
                    return
                recovered(i, TopicRecovery(topic=topic, status=status, position=start), got, t)

            if not self._ask(lambda rid: ReadRange(
                    request_id=rid, topic=key, after=position, max_count=ext.read_batch_count,
                    max_bytes=ext.read_batch_bytes), answered, at):
                failed(str(self._engine_unavailable()), at)

        heads_needed = [i for i, (_, client_pos, start) in enumerate(wants)
                        if client_pos is None and (start is None or start == (0, 0))]

        def reads(at: float) -> None:
            for i, (topic, client_pos, start) in enumerate(wants):
                if i in heads_needed:
                    continue
                position = client_pos if client_pos is not None else start
                assert position is not None
                read(i, topic, keys[i], position, RecoveryStatus.RECOVERED, position, [], at)

        if heads_needed:
            head_keys = tuple(keys[i] for i in heads_needed)

            def headed(result: EngineResult, at: float) -> None:
                if not isinstance(result, Heads):
                    reason = result.reason if isinstance(result, EngineFailed) \
                        else "unexpected answer"
                    for _ in heads_needed:
                        failed(reason, at)
                    reads(at)
                    return
                heads = dict(result.heads)
                for i in heads_needed:
                    key = keys[i]
                    tracker = self._trackers.get(key)
                    position = StreamPosition(tracker.epoch, tracker.last) if tracker \
                        else heads.get(key, StreamPosition(0, 0))
                    recovered(i, TopicRecovery(topic=wants[i][0], status=RecoveryStatus.FRESH,
                                               position=position), [], at)
                reads(at)

            if not self._ask(lambda rid: ReadHeads(request_id=rid, topics=head_keys),
                             headed, now):
                done(str(self._engine_unavailable()), now)
                return
        else:
            reads(now)

    def _feed(self, result: list[_Recovered], now: float) -> None:
        """After a replay: the entries this node had not delivered yet go through the
        topic's tracker (to every local member, in order, once)."""
        for recovered in result:
            tracker = self._trackers.get(recovered.key)
            if tracker is None:
                continue
            for entry in recovered.feed:
                self._topic_in(recovered.key, tracker, entry, now)

    def _key(self, session: Session, topic: str) -> str:
        return _INBOX_KEY + session.id if topic == INBOX_TOPIC else topic

    # ------------------------------------------------------------------ cluster: sessions

    def _record(self, session: Session, version: int, expires_at: float) -> bytes:
        return encode_session_record(SessionRecord(
            session_id=session.id, token_digest=session._digest, version=version,
            node=self._node_id, identity=session.identity,
            metadata=tuple(sorted(session.metadata.items())),
            client_version=session.client_version,
            subscriptions=tuple(session.subscriptions.items()), last_seq=session.last_seq,
            expires_at=expires_at))

    def _save(self, session: Session, now: float) -> None:
        """Write the session through to the engine (one write in flight per session; changes
        meanwhile are coalesced into the next). Acks wait for it."""
        if session._saving:
            session._save_again = True
            return
        detached = session.conn_id is None
        ttl = self.config.session_ttl if detached else math.inf
        wall = now + self._wall_clock_offset
        version = session._version + 1
        seq = session.last_seq
        record = self._record(session, version, wall + ttl)
        sid = session.id

        def saved(result: EngineResult, at: float) -> None:
            session._saving = False
            if isinstance(result, SessionSaved):
                if not result.stored:
                    self._session_moved(session, at)
                    return
                session._saved_seq = max(session._saved_seq, seq)
                self._ack_saved(session)
            # acks wait: the next save (or ack timer) retries
            elif session._ack_due == math.inf and (
                    session.last_seq > session._acked_seq or detached):
                self._schedule_ack(session, at)
            if session._save_again and self._sessions.get(sid) is session:
                session._save_again = False
                self._save(session, at)

        session._version = version
        session._saving = True
        if not self._ask(lambda rid: SaveSession(request_id=rid, session_id=sid, record=record,
                                                 version=version, ttl=ttl), saved, now):
            session._saving = False
            session._version = version - 1
            self._engine_failures += 1
            # The engine is down or saturated: try again with the next ack timer, so the
            # client's messages are acknowledged once the engine holds them.
            if session.last_seq > session._acked_seq or detached:
                self._schedule_ack(session, now)

    def _ack_saved(self, session: Session) -> None:
        rec = self._rec_of(session)
        if rec is None or rec.conn.state is not _OPEN:
            return
        if session._saved_seq > session._acked_seq:
            session._acked_seq = session._saved_seq
            rec.conn.send(Ack(seq=session._saved_seq))
            self._dirty.add(rec.id)

    def _session_moved(self, session: Session, now: float) -> None:
        """The engine holds a newer record of ``session``: another node took it over. This node
        lets go of it (its connection is closed with 4006) without touching the engine."""
        rec = self._rec_of(session)
        if self._sessions.get(session.id) is session:
            self._forget_locally(session, now)
        if rec is not None and rec.conn.state is not _CLOSED:
            rec.conn.abort(CloseCode.SESSION_TAKEN_OVER,
                           "session resumed on another node", now)
            self._process(rec, now)

    def _forget_locally(self, session: Session, now: float) -> None:
        for topic in list(session.subscriptions):
            members = self._members.get(topic)
            if members is not None and topic != INBOX_TOPIC:
                members.discard(session.id)
                if not members and topic != BROADCAST_TOPIC:
                    del self._members[topic]
                    self._stop_receiving(topic, now)
        self._stop_receiving(_INBOX_KEY + session.id, now)
        del self._sessions[session.id]
        self._release_peer(session)

    def _refuse_unavailable(self, rec: _Conn, reason: str, now: float) -> None:
        self._engine_refusals += 1
        self.metrics.refused["engine_unavailable"] += 1
        rec.conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.UNKNOWN, reason, now,
                        reconnect_after_ms=1000)
        self._process(rec, now)

    def _hello_external(self, rec: _Conn, hello: Hello, identity: str,
                        metadata: dict[str, str], now: float) -> None:
        unavailable = self._engine_unavailable()
        if unavailable is not None:
            self._refuse_unavailable(rec, unavailable, now)
            return
        if not (hello.session_id or hello.resume_token):
            self._hello_fresh(rec, hello, identity, metadata, "", now)
            return
        sid = hello.session_id

        def loaded(result: EngineResult, at: float) -> None:
            if self._conns.get(rec.id) is not rec or rec.conn.state is not _HELLO:
                return  # the connection went away meanwhile
            if isinstance(result, EngineFailed) or not isinstance(result, SessionLoaded):
                reason = result.reason if isinstance(result, EngineFailed) else "bad answer"
                self._refuse_unavailable(rec, f"cluster engine unavailable: {reason}", at)
                return
            fresh_reason = "session could not be resumed: unknown, expired or wrong token"
            record: SessionRecord | None = None
            if result.record is not None:
                try:
                    record = decode_session_record(result.record, sid)
                except RecordError as exc:
                    self._bad_records += 1
                    self._events.append(EngineRecordRejected(what=f"session record {sid}",
                                                             reason=str(exc)))
                    fresh_reason = f"session could not be resumed: stored record unusable ({exc})"
            if record is not None and not hmac.compare_digest(
                    record.token_digest, token_digest(hello.resume_token)):
                record = None
            elif record is not None and identity and record.identity \
                    and identity != record.identity:
                # The token is right but the authentication hook says someone else: a resume
                # never changes whose session it is (as on the memory engine, _on_hello).
                fresh_reason = "session could not be resumed: it belongs to another identity"
                record = None
            if record is None:
                self._failed_resumes += 1
                self._hello_fresh(rec, hello, identity, metadata, fresh_reason, at)
                return
            self._hello_resume(rec, hello, record, identity, metadata, at)

        if not self._ask(lambda rid: LoadSession(request_id=rid, session_id=sid), loaded, now):
            self._refuse_unavailable(rec, str(self._engine_unavailable()), now)

    def _hello_fresh(self, rec: _Conn, hello: Hello, identity: str, metadata: dict[str, str],
                     fresh_reason: str, now: float) -> None:
        if len(self._sessions) >= self.config.max_sessions:
            self.metrics.refused["session_limit"] += 1
            rec.conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.LIMIT_EXCEEDED,
                            f"this node holds its maximum of {self.config.max_sessions} "
                            "sessions", now, reconnect_after_ms=5000)
            self._process(rec, now)
            return
        problem = self._peer_session_problem(rec.peer, now)
        if problem is not None:  # the same per-address caps as on the memory engine
            self.metrics.refused["peer_limit"] += 1
            rec.conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.LIMIT_EXCEEDED, problem, now,
                            reconnect_after_ms=5000)
            self._process(rec, now)
            return
        while True:
            session_id = self._entropy.token_bytes(12).hex()
            if session_id not in self._sessions:
                break
        session = Session(session_id, self._entropy.token_bytes(self.config.resume_token_bytes),
                          now)
        session._digest = token_digest(session._token)
        session.identity, session.metadata = identity, metadata
        session.peer = rec.peer
        self._peer_sessions[rec.peer] = self._peer_sessions.get(rec.peer, 0) + 1
        if hello.client is not None:
            session.client_version = hello.client.version
        if rec.accepted is not None:
            self._apply_credentials(session, rec.accepted)
        wants: list[tuple[str, StreamPosition | None, StreamPosition | None]] = [
            (BROADCAST_TOPIC, None, None), (INBOX_TOPIC, None, None)]
        self._add_wants(rec, session, wants, [(tp.topic, tp.position) for tp in hello.positions])
        self._sessions[session_id] = session  # counted against max_sessions meanwhile
        self._attach_external(rec, session, hello, wants, False, fresh_reason, now)

    def _hello_resume(self, rec: _Conn, hello: Hello, record: SessionRecord, identity: str,
                      metadata: dict[str, str], now: float) -> None:
        session = self._sessions.get(record.session_id)
        if session is not None:
            old = self._rec_of(session)
            if old is not None:
                old.conn.abort(CloseCode.SESSION_TAKEN_OVER,
                               "session resumed by another connection", now)
                self._process(old, now)
        else:
            if len(self._sessions) >= self.config.max_sessions:
                self.metrics.refused["session_limit"] += 1
                rec.conn.refuse(CloseCode.TRY_AGAIN_LATER, ErrorCode.LIMIT_EXCEEDED,
                                f"this node holds its maximum of {self.config.max_sessions} "
                                "sessions", now, reconnect_after_ms=5000)
                self._process(rec, now)
                return
            session = Session(record.session_id, hello.resume_token, now)
            self._sessions[session.id] = session
        session._digest = record.token_digest
        session._token = hello.resume_token
        session._version = max(session._version, record.version)
        session.identity = identity or record.identity
        session.metadata = {**dict(record.metadata), **metadata} \
            if record.metadata or metadata else _NO_METADATA
        session._presence_stale = True  # (the info its old node wrote may differ)
        session.client_version = hello.client.version if hello.client is not None \
            else record.client_version
        session.last_seq = max(session.last_seq, record.last_seq)
        session._saved_seq = max(session._saved_seq, record.last_seq)
        positions = {p.topic: p.position for p in hello.positions}
        starts = dict(record.subscriptions)
        wants: list[tuple[str, StreamPosition | None, StreamPosition | None]] = [
            (topic, positions.get(topic), start) for topic, start in starts.items()]
        for topic in (BROADCAST_TOPIC, INBOX_TOPIC):
            if topic not in starts:
                wants.append((topic, positions.get(topic), None))
        if rec.accepted is not None:
            self._apply_credentials(session, rec.accepted)
        self._add_wants(rec, session, wants, [])
        self._resumes += 1
        self._attach_external(rec, session, hello, wants, True, "", now)

    def _add_wants(self, rec: _Conn, session: Session,
                   wants: list[tuple[str, StreamPosition | None, StreamPosition | None]],
                   positions: list[tuple[str, StreamPosition | None]]) -> None:
        """Add the Hello's ``positions`` (a fresh session takes over the client's topics) and
        the token's channels to the topics a session recovers through the engine, as far as
        the topic limit and the permissions allow."""
        channels = rec.accepted.channels if rec.accepted is not None else ()
        for topic, position in [*positions, *((c, None) for c in channels)]:
            if (not topic.startswith(_RESERVED_PREFIX) and self._valid_topic(topic)
                    and len(wants) - 2 < self.config.max_topics_per_session
                    and all(w[0] != topic for w in wants)
                    and self._may_subscribe(session, topic)):
                wants.append((topic, position, None))

    def _attach_external(self, rec: _Conn, session: Session, hello: Hello,
                         wants: list[tuple[str, StreamPosition | None, StreamPosition | None]],
                         resumed: bool, fresh_reason: str, now: float) -> None:
        sid = session.id
        # Topics the session joins with this connect, those without a start of its own (all of
        # a fresh session's; on a resume, the token's channels its record did not hold): their
        # members are told (presence JOIN).
        joined = frozenset(topic for topic, _, start in wants
                           if start is None and not topic.startswith(_RESERVED_PREFIX))

        def recovered(result: list[_Recovered] | str,
                      at: float) -> None:
            alive = self._conns.get(rec.id) is rec and rec.conn.state is _HELLO
            if isinstance(result, str) or not alive:
                if session.conn_id is None and self._sessions.get(sid) is session:
                    self._forget_locally(session, at)
                if alive:
                    self._refuse_unavailable(rec, str(result), at)
                return
            self._welcome_external(rec, session, hello, result, resumed, fresh_reason, joined,
                                   at)

        self._recover_topics(session, wants, recovered, now, rec)

    def _welcome_external(self, rec: _Conn, session: Session, hello: Hello,
                          result: list[_Recovered], resumed: bool,
                          fresh_reason: str, joined: frozenset[str], now: float) -> None:
        conn = rec.conn
        positions = {p.topic for p in hello.positions}
        stale = [t for t in positions if t not in session.subscriptions]
        session.conn_id = rec.id
        session._conn = conn
        session.expires_at = math.inf
        session.connected_at = session.last_activity = now
        rec.session = session
        session._acked_seq = session._saved_seq
        session.last_seq = max(session.last_seq, session._saved_seq)
        session._ack_due = math.inf
        cfg = self.config.connection
        failed = [r.outcome.topic for r in result
                  if r.outcome.status is RecoveryStatus.FAILED]
        conn.welcome(Welcome(
            session_id=session.id, resume_token=session._token, resumed=resumed,
            recovery=tuple(r.outcome for r in result), last_received_seq=session._saved_seq,
            heartbeat_interval_ms=int(cfg.heartbeat_interval * 1000),
            heartbeat_timeout_ms=int(cfg.heartbeat_timeout * 1000),
            limits=self._limits_for(session),
            server_time_ms=int((now + cfg.wall_clock_offset) * 1000),
            fresh_reason=fresh_reason, credentials_expire_ms=_ms(session.credentials_expire_at),
            serializer=self.config.serializer), now)
        rec.accepted = None
        self._schedule_credentials(rec, session)
        for recovered in result:
            if recovered.envelopes:
                self._queue_replay(rec, recovered.key, recovered.envelopes, now)
        for topic in stale:
            conn.send(Unsubscribed(topic=topic))
        self._dirty.add(rec.id)
        self._feed(result, now)
        self._save(session, now)
        self._events.append(ClientConnected(session=session, conn_id=rec.id, resumed=resumed,
                                            fresh_reason=fresh_reason,
                                            failed_topics=tuple(failed)))
        for recovered in result:
            topic = recovered.outcome.topic
            if topic in joined:
                self._presence(topic, session, PresenceAction.JOIN, now)
        self._process(rec, now)
        self._check_high_water(rec, now)

    def _subscribe_external(self, rec: _Conn | None, session: Session, topic: str,
                            client_pos: StreamPosition | None, request_id: int,
                            now: float) -> None:
        unavailable = self._engine_unavailable()
        if unavailable is not None:
            if rec is not None:
                self._send(rec, Error(code=ErrorCode.UNKNOWN, message=unavailable,
                                      request_id=request_id), now)
                return
            raise LocalProtocolError(unavailable)
        joined = topic not in session.subscriptions
        start = None if joined else session.subscriptions[topic]
        sid = session.id

        def recovered(result: list[_Recovered] | str,
                      at: float) -> None:
            if self._sessions.get(sid) is not session:
                return
            target = self._rec_of(session)
            if isinstance(result, str):
                if target is not None:
                    self._send(target, Error(code=ErrorCode.UNKNOWN, message=result,
                                             request_id=request_id), at)
                return
            outcome, envelopes = result[0].outcome, result[0].envelopes
            if target is not None and target.conn.state is _OPEN:
                target.conn.send(Subscribed(request_id=request_id, recovery=outcome))
                if envelopes:
                    self._queue_replay(target, result[0].key, envelopes, at)
                self._dirty.add(target.id)
            self._feed(result, at)
            if target is not None:
                self._check_high_water(target, at)
            self._save(session, at)
            if joined:
                self._presence(topic, session, PresenceAction.JOIN, at)

        self._recover_topics(session, [(topic, client_pos, start)], recovered, now, rec)

    def _publish_external(self, key: str, wire_topic: str,
                          payload: bytes | bytearray | memoryview, wall: float,
                          timestamp_ms: int, route: Route | None, now: float) -> None:
        """Append through the engine; local subscribers get the message when its position is
        known (the result, or the engine's delivery, whichever comes first)."""
        unavailable = self._engine_unavailable()
        if unavailable is not None:
            raise LocalProtocolError(unavailable)
        # Position placeholders: the engine assigns it; _checked_envelope fills it in.
        envelope = codec.encode_data(topic=wire_topic, epoch=0, offset=0,
                                     timestamp_ms=timestamp_ms, payload=payload)

        def appended(result: EngineResult, at: float) -> None:
            if isinstance(result, EngineFailed):
                self._events.append(PublishFailed(topic=wire_topic, reason=result.reason))
                return
            if not isinstance(result, Appended):
                return
            tracker = self._trackers.get(key)
            if tracker is not None:
                self._topic_in(key, tracker, HistoryEntry(
                    result.position.epoch, result.position.offset, wall, envelope, route), at)

        self._ask(lambda rid: Append(request_id=rid, topic=key, envelope=envelope,
                                     wall_time=wall, route=route), appended, now)

    # ------------------------------------------------------------------ internals: state

    def _publish(self, key: str, wire_topic: str, payload: bytes | bytearray | memoryview,
                 now: float, exclude: frozenset[str],
                 only: frozenset[str] | None) -> StreamPosition:
        """Append to ``key``'s stream and deliver (a session's inbox in the memory engine:
        :meth:`_publish_inbox`; here only through an external engine)."""
        max_size = self._max_message_size
        # (The inbox's topic is ASCII: compiled, isascii() is a Python-level method call.)
        is_inbox = wire_topic == INBOX_TOPIC
        topic_size = len(wire_topic) if is_inbox or wire_topic.isascii() \
            else len(wire_topic.encode("utf-8", "surrogatepass"))
        if len(payload) + topic_size + _ENVELOPE_OVERHEAD > max_size:
            raise LocalProtocolError(f"message of {len(payload)} bytes is too large for "
                                     f"max_message_size {max_size}")
        wall = now + self._wall_clock_offset
        timestamp_ms = int(wall * 1000)
        route = None if only is None and not exclude else Route(exclude, only)
        if self._external is not None:
            self._publish_external(key, wire_topic, payload, wall, timestamp_ms, route, now)
            # (Deliveries are counted when the message comes back: _deliver_tracked.)
            self.metrics.publishes[0 if key == BROADCAST_TOPIC
                                   else 1 if wire_topic == INBOX_TOPIC else 2] += 1
            return StreamPosition(0, 0)

        # Envelope and frame in one buffer: the frame goes to every socket as is, history keeps
        # the envelope. (The memory engine's append in two steps: no closure and no Python-level
        # call per message.)
        engine = self._engine
        stream = engine.stream_for_append(key)
        epoch, offset = stream.epoch, stream.last_offset + 1
        frame, header = encode_frame(topic=wire_topic, epoch=epoch, offset=offset,
                                     timestamp_ms=timestamp_ms, payload=payload)
        # HistoryEntry(epoch, offset, ...) without its Python-level __new__ (nor, compiled, the
        # intermediate tuple of tuple.__new__: backplane.new_tuple).
        entry: HistoryEntry = new_tuple(_HistoryEntry, epoch, offset, wall, frame[header:], route)
        engine.commit_append(key, stream, entry)
        sent_before = self._messages_sent
        kind = 0 if key == BROADCAST_TOPIC else 2
        members = self._members.get(key)
        watches = self._watches
        watch = watches.get(key) if watches else None
        if not members and key != BROADCAST_TOPIC and watch is None:
            self._engine.release(key)  # nobody holds it: forgotten once history ages
        if members:
            self._fan_out(key, members, entry, frame, now)
        if watch is not None:
            self._events.append(TopicMessage(
                topic=key, position=new_tuple(_StreamPosition, epoch, offset),
                payload=bytes(payload), timestamp_ms=timestamp_ms))
        # (Compiled, ``counts[kind] = counts[kind] + 1`` adds native ints; ``+=`` on a list
        # item goes through PyNumber_InPlaceAdd on boxed ones.)
        metrics = self.metrics
        counts = metrics.publishes
        counts[kind] = counts[kind] + 1
        delivered = self._messages_sent - sent_before
        if delivered:
            counts = metrics.deliveries
            counts[kind] = counts[kind] + delivered
        # The entry's own int objects (a tuple read as objects: not unboxed and boxed again).
        fields = cast("tuple[object, ...]", entry)
        return new_tuple(_StreamPosition, fields[0], fields[1])  # type: ignore[no-any-return]

    def _publish_inbox(self, key: str, payload: bytes | bytearray | memoryview, now: float,
                       session: Session) -> HistoryEntry:
        """:meth:`_publish` of a message to ``session``'s inbox (``key``) in the memory engine
        (an external engine's goes through :meth:`_publish`): kept in the inbox's history,
        queued on the session's connection when it is ``OPEN`` (behind a replay it is owed),
        counted. Returns the history entry."""
        max_size = self._max_message_size
        if len(payload) + _INBOX_TOPIC_SIZE + _ENVELOPE_OVERHEAD > max_size:
            raise LocalProtocolError(f"message of {len(payload)} bytes is too large for "
                                     f"max_message_size {max_size}")
        wall = now + self._wall_clock_offset
        timestamp_ms = int(wall * 1000)
        engine = self._engine
        stream = engine.stream_for_append(key)
        epoch, offset = stream.epoch, stream.last_offset + 1
        # The envelope history keeps is the one the socket writes, behind its frame header:
        # one copy of the payload, not a frame and then its envelope sliced out of it.
        header, envelope = encode_parts(topic=INBOX_TOPIC, epoch=epoch, offset=offset,
                                        timestamp_ms=timestamp_ms, payload=payload)
        entry: HistoryEntry = new_tuple(_HistoryEntry, epoch, offset, wall, envelope, None)
        engine.commit_append(key, stream, entry)
        sent_before = self._messages_sent
        conn_id = session.conn_id
        if conn_id is not None:
            rec = self._conns[conn_id]
            if rec.conn.state is _OPEN:
                self._deliver_parts(rec, header, envelope)
                if rec.paused:
                    self._check_high_water(rec, now)
        metrics = self.metrics
        counts = metrics.publishes
        counts[1] = counts[1] + 1
        delivered = self._messages_sent - sent_before
        if delivered:
            counts = metrics.deliveries
            counts[1] = counts[1] + delivered
        return entry

    # ------------------------------------------------------------------ internals: replay cursor

    def _queue_replay(self, rec: _Conn, key: str, envelopes: list[bytes], now: float) -> None:
        """Owe ``envelopes`` (history of topic ``key``, read from the engine) to ``rec``. A
        replay that fits in one batch on an idle connection is written at once; anything else
        goes to the connection's backlog, which :meth:`_pump_backlog` hands to the socket a
        batch at a time as it drains. Live messages of ``key`` then queue behind it, so the
        order is kept."""
        size = sum(len(e) for e in envelopes)
        if not rec.backlog and size + rec.conn.buffered_amount <= self._replay_batch:
            for envelope in envelopes:
                self._deliver(rec, envelope)
            return
        backlog = rec.backlog
        if backlog is None:
            backlog = rec.backlog = deque()
        backlog.extend(envelopes)
        rec.backlog_bytes += size
        keys = rec.backlog_keys
        if keys is None:
            keys = rec.backlog_keys = set()
        keys.add(key)
        self._replaying.setdefault(key, set()).add(rec.id)
        self._pump_backlog(rec, now)

    def _pump_backlog(self, rec: _Conn, now: float) -> None:
        """Move backlog to the connection until ``replay_batch_bytes`` are queued for the
        socket; the rest waits for the next turn (a timer due at once, so the adapter writes
        in between) or, while the socket is paused, for :meth:`resume_writing`."""
        backlog = rec.backlog
        if not backlog or rec.paused or rec.conn.state is not _OPEN:
            return
        batch = self._replay_batch
        conn = rec.conn
        while backlog and conn.buffered_amount < batch:
            envelope = backlog.popleft()
            rec.backlog_bytes -= len(envelope)
            self._deliver(rec, envelope)
        self._dirty.add(rec.id)
        if backlog:
            if not rec.paused:
                self._schedule_pump(rec)
        else:
            self._drop_backlog(rec)

    def _schedule_pump(self, rec: _Conn) -> None:
        if not rec.pump_due:
            rec.pump_due = True
            self._push_timer(self._now, "replay", rec.id)

    def _drop_backlog(self, rec: _Conn) -> None:
        """The backlog is done (or the connection is): live messages flow directly again."""
        for key in rec.backlog_keys or ():
            waiting = self._replaying.get(key)
            if waiting is not None:
                waiting.discard(rec.id)
                if not waiting:
                    del self._replaying[key]
        rec.backlog_keys = None
        rec.backlog = None
        rec.backlog_bytes = 0

    def _queue_behind_replay(self, members: Iterable[str], waiting: set[int],
                             entry: HistoryEntry, now: float) -> list[str]:
        """A live message of a topic some connections are still being replayed: theirs goes
        to the end of their backlog; returns the other members (written as usual)."""
        rest = []
        sessions, conns = self._sessions, self._conns
        for sid in members:
            conn_id = sessions[sid].conn_id
            if conn_id is not None and conn_id in waiting:
                rec = conns[conn_id]
                if entry.reaches(sid) and rec.backlog:
                    rec.backlog.append(entry.envelope)
                    rec.backlog_bytes += entry.size
                    self._check_high_water(rec, now)
                    continue
                if rec.backlog:
                    continue
            rest.append(sid)
        return rest

    def _fan_out(self, key: str, targets: Iterable[str], entry: HistoryEntry, frame: bytes,
                 now: float) -> None:
        """Queue a published message of topic ``key`` on the open connections of ``targets``
        (the loop itself is :func:`~sigma_core.connection.fan_out`, beside ``offer_frame``);
        connections still being replayed that topic get it at the end of their backlog."""
        waiting = self._replaying.get(key)
        if waiting:
            targets = self._queue_behind_replay(targets, waiting, entry, now)
        if entry.route is not None:
            targets = [sid for sid in targets if entry.reaches(sid)]
        sessions = self._sessions
        conns = [conn for sid in targets if (conn := sessions[sid]._conn) is not None]
        sent, crowded = fan_out(conns, frame, entry.envelope, self._dirty,
                                self.config.outgoing_high_water)
        self._messages_sent += sent
        for conn in crowded:
            rec = self._conns.get(conn.id)
            if rec is not None and rec.paused:
                self._check_high_water(rec, now)

    def _new_session(self, now: float) -> Session:
        while True:
            session_id = self._entropy.token_bytes(12).hex()
            if session_id not in self._sessions:
                break
        session = Session(session_id, self._entropy.token_bytes(self.config.resume_token_bytes),
                          now)
        self._sessions[session_id] = session
        if self._external is None and self._engine.lazy_inboxes:
            # $all from its head and $inbox from its first message: one dict shared by every
            # session that joins before the next broadcast moves the head (a dict is ~0.2 KiB
            # of an idle session), made its own on its first change (_own_subscriptions).
            head = self._engine.head(BROADCAST_TOPIC)
            shared = self._shared_subscriptions
            if shared is None or shared[BROADCAST_TOPIC] is not head:
                shared = self._shared_subscriptions = {BROADCAST_TOPIC: head,
                                                       INBOX_TOPIC: _INBOX_FROM_START}
            session.subscriptions = shared
            self._members[BROADCAST_TOPIC].add(session_id)
            return session
        self._add_subscription(session, BROADCAST_TOPIC)
        self._add_subscription(session, INBOX_TOPIC)
        return session

    def _own_subscriptions(self, session: Session) -> dict[str, StreamPosition]:
        """The session's subscription dict, made its own first if it is a shared one."""
        subs = session.subscriptions
        if subs.get(INBOX_TOPIC) is _INBOX_FROM_START:
            subs = session.subscriptions = dict(subs)
            subs[INBOX_TOPIC] = self._inbox_start(session)
        return subs

    def _inbox_start(self, session: Session) -> StreamPosition:
        """The first position of the session's inbox (its epoch, offset 0)."""
        return StreamPosition(self._engine.head(_INBOX_KEY + session.id, create=False).epoch, 0)

    def _add_subscription(self, session: Session, topic: str) -> StreamPosition:
        key = _INBOX_KEY + session.id if topic == INBOX_TOPIC else topic
        head = self._engine.head(key)
        self._own_subscriptions(session)[topic] = head
        if topic != INBOX_TOPIC:
            self._members.setdefault(topic, set()).add(session.id)
        return head

    def _remove_subscription(self, session: Session, topic: str, now: float) -> None:
        del self._own_subscriptions(session)[topic]
        members = self._members.get(topic)
        if members is not None:
            members.discard(session.id)
            if not members and topic != BROADCAST_TOPIC:
                del self._members[topic]
                if self._external is not None:
                    self._stop_receiving(topic, now)
                elif topic not in self._watches:
                    self._engine.release(topic)
        self._presence(topic, session, PresenceAction.LEAVE, now)

    def _end_session(self, session: Session, now: float) -> None:
        if self._sessions.get(session.id) is not session:
            return
        for topic in [t for t in session.subscriptions if not t.startswith(_RESERVED_PREFIX)]:
            self._remove_subscription(session, topic, now)
        self._members[BROADCAST_TOPIC].discard(session.id)
        if self._external is not None:
            sid, inbox = session.id, _INBOX_KEY + session.id
            self._stop_receiving(inbox, now)
            self._tell(lambda rid: DeleteSession(request_id=rid, session_id=sid), now)
            self._tell(lambda rid: DropTopic(request_id=rid, topic=inbox), now)
        else:
            self._engine.drop(_INBOX_KEY + session.id)
        del self._sessions[session.id]
        identity = session.identity
        # (A scan, only for identities that hold limits or buckets: their last session frees
        # them.)
        if identity and (identity in self._identity_limits
                         or identity in self._identity_buckets) and not any(
                s.identity == identity for s in self._sessions.values()):
            self._identity_limits.pop(identity, None)
            self._identity_buckets.pop(identity, None)
        session.expires_at = now
        self._release_peer(session)

    def _release_peer(self, session: Session) -> None:
        """``session`` no longer counts against its address's ``max_sessions_per_peer``."""
        held = self._peer_sessions.get(session.peer, 0) - 1
        if held > 0:
            self._peer_sessions[session.peer] = held
        else:
            self._peer_sessions.pop(session.peer, None)

    def _presence(self, topic: str, session: Session, action: PresenceAction,
                  now: float | None) -> None:
        self._events.append(PresenceChanged(topic=topic, session=session, action=action))
        ext = self._external
        if ext is not None and now is not None and topic != BROADCAST_TOPIC:
            sid, ttl = session.id, ext.presence_ttl
            if action is PresenceAction.JOIN:
                joins = ((sid, _presence_info(session)),)
                self._tell(lambda rid: PresenceUpdate(request_id=rid, topic=topic, joins=joins,
                                                      ttl=ttl), now)
            else:
                self._tell(lambda rid: PresenceUpdate(request_id=rid, topic=topic,
                                                      leaves=(sid,), ttl=ttl), now)
        if not self.config.presence_notifications:
            return
        body = codec.encode(Presence(topic=topic, session_id=session.id, action=action,
                                     metadata=session.metadata))
        for sid in self._members.get(topic, ()):
            if sid == session.id:
                continue
            rec = self._rec_of(self._sessions[sid])
            if rec is not None and rec.conn.state is _OPEN:
                rec.conn.send_encoded(body)
                self._dirty.add(rec.id)

    def _handshake_over(self, rec: _Conn) -> None:
        if rec.handshaking:
            rec.handshaking = False
            self._pending_handshakes -= 1

    def _hello_problem(self, hello: Hello) -> str | None:
        """Why a Hello is over the limits on what one Hello may make the server hold or send
        (None if it is not)."""
        limit = self.config.hello_positions_limit()
        if len(hello.positions) > limit:
            return (f"Hello carries {len(hello.positions)} positions; at most {limit} "
                    "(max_topics_per_session + $all + $inbox)")
        client = hello.client
        if client is not None:
            longest = self.config.max_client_info_length
            for name in ("name", "version", "platform"):
                if len(getattr(client, name)) > longest:
                    return f"ClientInfo.{name} is longer than {longest} characters"
            metadata = client.metadata
            if len(metadata) > self.config.max_client_metadata_entries:
                return (f"ClientInfo.metadata has {len(metadata)} entries; at most "
                        f"{self.config.max_client_metadata_entries}")
            chars = sum(len(k) + len(v) for k, v in metadata.items())
            if chars > self.config.max_client_metadata_chars:
                return (f"ClientInfo.metadata holds {chars} characters; at most "
                        f"{self.config.max_client_metadata_chars}")
        return None

    def _peer_session_problem(self, peer: str, now: float) -> str | None:
        """Why ``peer`` may not open another session now (None if it may). An unknown
        address ("": the adapter could not tell, or a test driving the hub) is not limited."""
        if not peer:
            return None
        cap = self.config.max_sessions_per_peer
        if cap and self._peer_sessions.get(peer, 0) >= cap:
            return f"this address holds its maximum of {cap} sessions (max_sessions_per_peer)"
        rate = self.config.new_sessions_per_peer_per_second
        if rate:
            bucket = self._peer_buckets.get(peer)
            if bucket is None:
                bucket = self._peer_buckets[peer] = TokenBucket(
                    rate, self.config.new_session_burst_per_peer, now)
            if not bucket.take(1, now):
                return (f"this address opens sessions faster than {rate:g} per second "
                        "(new_sessions_per_peer_per_second)")
        return None

    def _forget_idle_peers(self, now: float) -> None:
        """Drop the session buckets that have refilled (at each trim): they hold nothing a
        fresh bucket would not."""
        for peer, bucket in list(self._peer_buckets.items()):
            bucket.take(0, now)
            if bucket.tokens >= bucket.capacity:
                del self._peer_buckets[peer]

    def _may_subscribe(self, session: Session, topic: str) -> bool:
        if not session.may_use_topic(topic):
            return False
        check = self.config.authorize_subscribe
        if check is None:
            return True
        try:
            return bool(check(session, topic))
        except Exception as exc:  # the app's hook: contain it, deny, report
            self._events.append(HookFailed(hook="authorize_subscribe", error=exc))
            return False

    def _rec_of(self, session: Session) -> _Conn | None:
        return self._conns.get(session.conn_id) if session.conn_id is not None else None

    def _session(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise LocalProtocolError(f"no session {session_id!r}")
        return session

    def _topic_problem(self, topic: str) -> str | None:
        if not topic:
            return "topic name is empty"
        if len(topic.encode("utf-8", "surrogatepass")) > self.config.max_topic_length:
            return f"topic name longer than {self.config.max_topic_length} bytes"
        return None

    def _valid_topic(self, topic: str) -> bool:
        return self._topic_problem(topic) is None

    def _check_topic(self, topic: str) -> None:
        problem = self._topic_problem(topic)
        if problem is not None:
            raise LocalProtocolError(problem)
