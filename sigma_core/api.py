"""What both adapters share: their configuration, callback registry and message type.

``sigma_asyncio`` and ``sigma_trio`` expose the same classes with the same options; the options
are defined once here and turned into the core's configs (:class:`~sigma_core.hub.HubConfig`,
:class:`~sigma_core.client.ClientConfig`), so the two adapters cannot drift apart. Nothing here
does I/O.

Defaults follow the original TypeScript SigmaSockets where it had one, in Python units (seconds,
not milliseconds). Where we differ, the field's comment says why.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .backplane import HistoryLimits
from .client import (
    ClientConfig,
    ClientEvent,
    Disconnected,
    ErrorReceived,
    GaveUp,
    MessageReceived,
    PresenceReceived,
    Reconnecting,
    ReconnectPolicy,
    RecoveryFailed,
    SessionReset,
    StatusChanged,
    SubscribedEvent,
    UnsubscribedEvent,
)
from .connection import ConnectionConfig
from .engine import EngineDriver, ExternalEngineConfig
from .errors import (
    CloseCode,
    ConnectionFailed,
    RecoveryFailedError,
    ServerError,
    SessionLostError,
)
from .hub import (
    AuthHook,
    ClientConnected,
    ClientDisconnected,
    ClientErrorReceived,
    ClientMessage,
    ClusterPresence,
    ConnectionRejected,
    HookFailed,
    HubConfig,
    HubEvent,
    PresenceChanged,
    Session,
    SessionExpired,
    TopicLost,
    TopicMessage,
    TopicWatched,
)
from .logs import Logger
from .messages import ClientInfo, PresenceAction, StreamPosition
from .ratelimit import RateLimit
from .websocket import HttpRequest, HttpResponse, WebSocketConfig

if TYPE_CHECKING:
    import ssl

__all__ = [
    "ClientOptions",
    "EventEmitter",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "ReconnectInfo",
    "ServerOptions",
    "SessionInfo",
    "client_callbacks",
    "server_callbacks",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """Everything a ``SigmaSocketServer`` can be told.

    Raises:
        ValueError: a value is out of range (the message names the field), checked when the
            options are built.
    """

    #: Original default; bind "127.0.0.1" to stay off the network.
    host: str = "0.0.0.0"
    #: 0 picks a free port (read it back from ``server.port``).
    port: int = 8080
    max_connections: int = 10_000
    #: Seconds between server pings. The original's ``heartbeatInterval`` (60 s) was really a
    #: timeout; here the two are separate: ping every 25 s, declare dead after 60 s of silence.
    heartbeat_interval: float = 25.0
    heartbeat_timeout: float = 60.0
    #: A disconnected client's session is kept this long for it to resume (original: 300 s).
    session_timeout: float = 300.0
    #: permessage-deflate (RFC 7692), negotiated when the client offers it. Off by default:
    #: compressing costs more CPU than it saves on small real-time messages.
    compression_enabled: bool = False
    #: A server-side ``ssl.SSLContext`` for wss://; None serves plain ws://.
    ssl: ssl.SSLContext | None = None
    #: Largest message (whole envelope) accepted from a client; larger closes with 1009.
    max_message_size: int = 1 << 20
    #: Replay history kept per topic.
    history: HistoryLimits = field(default_factory=HistoryLimits)
    max_sessions: int = 100_000
    max_topics_per_session: int = 100
    #: Output held for a client whose socket is full before it is cut as a slow consumer.
    outgoing_high_water: int = 4 << 20
    #: Seconds a new socket has to finish the upgrade and the Hello.
    handshake_timeout: float = 10.0
    #: Seconds graceful shutdown waits for clients to drain and close.
    shutdown_timeout: float = 5.0
    #: Delay suggested to clients in the shutdown Goodbye (they add jitter).
    shutdown_reconnect_after: float = 1.0
    #: Seconds over which ``stop()`` spreads its Goodbyes, one connection after another, so
    #: the clients do not all reconnect elsewhere at once (0: all at once). At most
    #: ``shutdown_timeout``, which still bounds the whole stop.
    shutdown_spread: float = 0.0
    #: Called with each Hello and the HTTP request; None admits everyone.
    authenticate: AuthHook | None = None
    #: When set, upgrades whose Origin header is not listed are refused with HTTP 403.
    allowed_origins: Sequence[str] | None = None
    #: Send Presence envelopes to a topic's members when someone joins or leaves.
    presence_notifications: bool = False
    #: Per-connection limits on what a client sends (0: unlimited), a second's worth of burst;
    #: past them the connection closes with 4008 and the client resumes after its backoff.
    max_messages_per_second: float = 0.0
    max_bytes_per_second: float = 0.0
    #: Called when a client asks to subscribe (and for the topics a fresh session takes over
    #: from its Hello): False refuses with Error(SUBSCRIBE_DENIED). None allows all.
    authorize_subscribe: Callable[[Session, str], bool] | None = None
    #: Answers plain HTTP GET/HEAD on the same port (serve a web app beside its WebSocket);
    #: None refuses non-WebSocket requests with 400.
    http_handler: Callable[[HttpRequest], HttpResponse] | None = None
    #: Where refusals, protocol violations, limits, failed resumes and hook failures are
    #: logged (see :mod:`sigma_core.logs`); None: ``logging.getLogger("sigma_asyncio.server")``
    #: or ``"sigma_trio.server"``. ``sigma_core.logs.NULL_LOGGER`` logs nothing.
    logger: Logger | None = None
    #: Hardening limits (docs/hardening.md, "Cost model"): history bytes replayed to one
    #: connection in all (past it a topic is reported FAILED); sessions one peer address may
    #: hold and open per second (close 1013 past them; 0 disables); sockets still in their
    #: upgrade at once (more are dropped at accept).
    max_replay_bytes: int = 16 << 20
    max_sessions_per_peer: int = 1000
    new_sessions_per_peer_per_second: float = 20.0
    max_pending_handshakes: int = 1000
    #: Several nodes: the cluster engine's driver (e.g. the Redis engine's), run by the server
    #: in its task group; None keeps everything in this process's memory (the default).
    engine: EngineDriver | None = None
    #: This node's settings for ``engine`` (node id, bounds, timeouts); None with an engine
    #: means ``ExternalEngineConfig(node_id="node")``.
    engine_config: ExternalEngineConfig | None = None

    def external_engine(self) -> ExternalEngineConfig | None:
        """The hub's engine settings (None: the in-memory engine)."""
        if self.engine is None:
            return None
        return self.engine_config or ExternalEngineConfig(node_id="node")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        for name in ("shutdown_timeout", "shutdown_reconnect_after", "shutdown_spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0")
        if self.shutdown_spread > self.shutdown_timeout:
            raise ValueError(f"shutdown_spread ({self.shutdown_spread}) must be <= "
                             f"shutdown_timeout ({self.shutdown_timeout})")
        self.hub_config()  # validates everything else, with the core's messages

    def hub_config(self, wall_clock_offset: float = 0.0) -> HubConfig:
        """The core configuration these options stand for."""
        return HubConfig(
            connection=ConnectionConfig(
                websocket=WebSocketConfig(max_message_size=self.max_message_size,
                                          compression=self.compression_enabled),
                heartbeat_interval=self.heartbeat_interval,
                heartbeat_timeout=self.heartbeat_timeout,
                handshake_timeout=self.handshake_timeout,
                wall_clock_offset=wall_clock_offset),
            history=self.history,
            session_ttl=self.session_timeout,
            max_connections=self.max_connections,
            max_sessions=self.max_sessions,
            max_topics_per_session=self.max_topics_per_session,
            outgoing_high_water=self.outgoing_high_water,
            presence_notifications=self.presence_notifications,
            authenticate=self.authenticate,
            authorize_subscribe=self.authorize_subscribe,
            rate_limit=RateLimit(messages_per_second=self.max_messages_per_second,
                                 bytes_per_second=self.max_bytes_per_second),
            http_handler=self.http_handler,
            max_replay_bytes=self.max_replay_bytes,
            max_sessions_per_peer=self.max_sessions_per_peer,
            new_sessions_per_peer_per_second=self.new_sessions_per_peer_per_second,
            max_pending_handshakes=self.max_pending_handshakes,
            allowed_origins=(tuple(self.allowed_origins)
                             if self.allowed_origins is not None else None),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """Everything a ``SigmaSocketClient`` can be told.

    Raises:
        ValueError: a value is out of range, or ``url`` is not a ``ws://`` or ``wss://`` URL
            with a host (the message says which), checked when the options are built.
    """

    url: str
    #: First reconnect delay ceiling in seconds (original: 1000 ms); doubles per attempt up to
    #: ``max_reconnect_delay``, each delay drawn uniformly below it (full jitter).
    reconnect_interval: float = 1.0
    max_reconnect_delay: float = 30.0
    #: None retries forever (original default: 10).
    max_reconnect_attempts: int | None = 10
    #: Client pings (original: 30 s). The server's Welcome may shorten it.
    heartbeat_interval: float = 30.0
    heartbeat_timeout: float = 70.0
    #: Accepted for parity with the original, and has no effect: how long a session survives
    #: is the server's ``session_timeout`` alone (a late resume gets an explicit SessionReset).
    session_timeout: float = 300.0
    #: Messages kept until acknowledged (including those sent while offline); ``send`` returns
    #: False beyond it.
    max_pending: int = 1000
    #: Messages received and not yet taken by ``async for``. Once the queue holds this many,
    #: the client stops reading its socket (back-pressure: TCP pushes back on the server, whose
    #: ``outgoing_high_water`` decides) and reads on once the app has taken it down to half;
    #: nothing is dropped. What one socket read already carried still joins the queue, so it
    #: can pass the bound by one read (at most 256 KiB). Messages join the queue once
    #: ``async for`` has begun, or while no ``message`` listener is registered: a client that
    #: only registers a ``message`` callback queues nothing and never stalls. ``0``: no queue
    #: at all -- messages reach the ``message`` callback only and ``async for`` raises
    #: ``LocalProtocolError``.
    max_queued_messages: int = 1000
    max_message_size: int = 1 << 20
    connect_timeout: float = 10.0
    auth_token: str = ""
    client_info: ClientInfo | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    compression_enabled: bool = False
    #: A client-side ``ssl.SSLContext`` for wss:// (None: the system's default context).
    ssl: ssl.SSLContext | None = None
    #: Where lost connections, reconnects and session resets are logged (see
    #: :mod:`sigma_core.logs`); None: ``logging.getLogger("sigma_asyncio.client")`` or
    #: ``"sigma_trio.client"``.
    logger: Logger | None = None

    def __post_init__(self) -> None:
        if self.max_queued_messages < 0:
            raise ValueError(f"max_queued_messages must be >= 0, got {self.max_queued_messages}")
        self.client_config()

    def client_config(self, wall_clock_offset: float = 0.0) -> ClientConfig:
        return ClientConfig(
            url=self.url,
            reconnect=ReconnectPolicy(initial_delay=self.reconnect_interval,
                                      max_delay=max(self.max_reconnect_delay,
                                                    self.reconnect_interval),
                                      max_attempts=self.max_reconnect_attempts),
            connection=ConnectionConfig(
                websocket=WebSocketConfig(max_message_size=self.max_message_size,
                                          compression=self.compression_enabled),
                heartbeat_interval=self.heartbeat_interval,
                heartbeat_timeout=self.heartbeat_timeout,
                wall_clock_offset=wall_clock_offset),
            max_pending=self.max_pending,
            connect_timeout=self.connect_timeout,
            auth_token=self.auth_token,
            client_info=self.client_info,
            extra_headers=self.extra_headers,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message received by a client (what ``async for message in client`` yields)."""

    data: bytes
    topic: str
    #: The original's message id: the message's position in its topic.
    position: StreamPosition
    timestamp_ms: int

    @property
    def message_id(self) -> int:
        return self.position.offset


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionInfo:
    """What ``SigmaSocketClient.get_session()`` returns (the original's ``getSession()``)."""

    id: str
    #: Whether the last Welcome resumed the session (False: a fresh one).
    resumed: bool
    #: Wall-clock time (seconds since the epoch) of the last Welcome.
    connected_at: float
    #: Client messages sent and not yet acknowledged.
    pending: int


Listener = Callable[..., Any]


class EventEmitter:
    """``on`` / ``off`` / ``emit`` as in the original. A listener that raises does not stop the
    others: the exception goes to the ``error`` listeners (or ``on_listener_error``)."""

    def __init__(self, on_listener_error: Callable[[BaseException], None] | None = None) -> None:
        # Tuples, replaced on on()/off(): emit() iterates one as it was when the event fired
        # (a listener may add or remove listeners) without copying it for every event.
        self._listeners: dict[str, tuple[Listener, ...]] = {}
        self._on_listener_error = on_listener_error

    def on(self, event: str, listener: Listener) -> Listener:
        """Register ``listener`` for ``event``; returns it (so it works as a decorator)."""
        self._listeners[event] = (*self._listeners.get(event, ()), listener)
        return listener

    def off(self, event: str, listener: Listener) -> None:
        """Remove ``listener``; a listener that was never registered is ignored."""
        listeners = self._listeners.get(event)
        if listeners and listener in listeners:
            index = listeners.index(listener)
            self._listeners[event] = listeners[:index] + listeners[index + 1:]

    def listeners(self, event: str) -> list[Listener]:
        return list(self._listeners.get(event, ()))

    def has_listeners(self, event: str) -> bool:
        """Whether any listener is registered for ``event`` (no copy)."""
        return bool(self._listeners.get(event))

    def emit(self, event: str, *args: Any) -> None:
        for listener in self._listeners.get(event, ()):
            try:
                listener(*args)
            except Exception as exc:  # a user callback: report, keep going
                if event != "error" and self._listeners.get("error"):
                    self.emit("error", exc)
                elif self._on_listener_error is not None:
                    self._on_listener_error(exc)


# ----------------------------------------------------------------------------- event mapping
#
# Both adapters turn core events into the same named callbacks through these two functions, so
# the listener signatures are defined once.


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectInfo:
    """Argument of the client's ``reconnecting`` callback (the original's object)."""

    attempt: int
    max_attempts: int | None
    #: Seconds until the attempt (the original's ``nextRetryIn``, in ms there).
    next_retry_in: float


def server_callbacks(event: HubEvent) -> list[tuple[str, tuple[Any, ...]]]:
    """The callbacks a hub event fires on a ``SigmaSocketServer``:

    ``connection(client)``, ``message(client, data: bytes, topic: str)``,
    ``disconnection(client, reason: str)`` (reason names the close code),
    ``session_expired(client)``, ``presence(topic, client, joined: bool)``,
    ``rejected(conn_id, reason)`` for connections refused before they had a session,
    ``client_error(client, Error)``, and ``error(exception)`` when an app hook raised. The
    server-side subscriptions (``watch``): ``topic_message(TopicMessage)``,
    ``topic_watched(TopicWatched)``, ``topic_lost(TopicLost)``; and
    ``cluster_presence(ClusterPresence)``, the answer to ``request_presence``.
    """
    if isinstance(event, ClientMessage):
        return [("message", (event.session, event.payload, event.topic))]
    if isinstance(event, ClientConnected):
        return [("connection", (event.session,))]
    if isinstance(event, ClientDisconnected):
        return [("disconnection", (event.session, _close_text(event.code, event.reason)))]
    if isinstance(event, SessionExpired):
        return [("session_expired", (event.session,))]
    if isinstance(event, PresenceChanged):
        return [("presence", (event.topic, event.session,
                              event.action is PresenceAction.JOIN))]
    if isinstance(event, ConnectionRejected):
        return [("rejected", (event.conn_id, _close_text(event.code, event.reason)))]
    if isinstance(event, ClientErrorReceived):
        return [("client_error", (event.session, event.error))]
    if isinstance(event, HookFailed):
        return [("error", (event.error,))]
    if isinstance(event, TopicMessage):
        return [("topic_message", (event,))]
    if isinstance(event, TopicWatched):
        return [("topic_watched", (event,))]
    if isinstance(event, TopicLost):
        return [("topic_lost", (event,))]
    if isinstance(event, ClusterPresence):
        return [("cluster_presence", (event,))]
    return []


def emit_server_event(emit: Callable[..., None], event: HubEvent) -> None:
    """``emit(name, *args)`` for each callback :func:`server_callbacks` names for ``event``:
    the same calls, without building the list for a message (the per-message path of both
    adapters)."""
    if type(event) is ClientMessage:
        emit("message", event.session, event.payload, event.topic)
        return
    for name, args in server_callbacks(event):
        emit(name, *args)


def client_callbacks(event: ClientEvent) -> list[tuple[str, tuple[Any, ...]]]:
    """The callbacks a client-session event fires on a ``SigmaSocketClient``:

    ``connection(status: ConnectionStatus)`` on every status change, ``message(data: bytes,
    message_id: int, timestamp_ms: int, topic: str)``, ``reconnecting(ReconnectInfo)``,
    ``error(SigmaError)`` (gave up, recovery failed, session reset, server error reports),
    ``recovery_failed(RecoveryFailed)``, ``session_reset(SessionReset)``,
    ``disconnection(code: int, reason: str)``, ``subscribed(topic)``, ``unsubscribed(topic)``,
    ``presence(Presence)``.
    """
    if isinstance(event, MessageReceived):
        return [("message", (event.payload, event.position.offset, event.timestamp_ms,
                             event.topic))]
    if isinstance(event, StatusChanged):
        return [("connection", (event.status,))]
    if isinstance(event, Reconnecting):
        return [("reconnecting", (ReconnectInfo(attempt=event.attempt,
                                                max_attempts=event.max_attempts,
                                                next_retry_in=event.delay),))]
    if isinstance(event, GaveUp):
        return [("error", (ConnectionFailed(event.reason),))]
    if isinstance(event, RecoveryFailed):
        return [("recovery_failed", (event,)),
                ("error", (RecoveryFailedError(
                    f"messages lost on topic {event.topic!r} (offsets {event.lost_from}.."
                    f"{event.lost_to or '?'}); resync it"),))]
    if isinstance(event, SessionReset):
        return [("session_reset", (event,)),
                ("error", (SessionLostError(f"session {event.old_session_id} could not be "
                                            f"resumed: {event.reason}"),))]
    if isinstance(event, ErrorReceived):
        return [("error", (ServerError(event.error.code, event.error.message),))]
    if isinstance(event, Disconnected):
        return [("disconnection", (event.code, event.reason))]
    if isinstance(event, SubscribedEvent):
        return [("subscribed", (event.topic,))]
    if isinstance(event, UnsubscribedEvent):
        return [("unsubscribed", (event.topic,))]
    if isinstance(event, PresenceReceived):
        return [("presence", (event.presence,))]
    return []


def _close_text(code: int, reason: str) -> str:
    try:
        name = CloseCode(code).name.lower()
    except ValueError:
        name = str(code)
    return f"{name}: {reason}" if reason else name
