"""What both adapters share: their configuration, callback registry and message type.

``sigma_asyncio`` and ``sigma_trio`` expose the same classes with the same options; the options
are defined once here and turned into the core's configs (:class:`~sigma_core.hub.HubConfig`,
:class:`~sigma_core.client.ClientConfig`), so the two adapters cannot drift apart. Nothing here
does I/O.

Defaults follow the original TypeScript SigmaSockets where it had one, in Python units (seconds,
not milliseconds). Where we differ, the field's comment says why.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .backplane import HistoryLimits
from .client import (
    BufferFullError,
    ClientConfig,
    ClientEvent,
    ClientSession,
    ConnectionStatus,
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
    LocalProtocolError,
    PayloadDecodeError,
    RecoveryFailedError,
    ServerError,
    SessionLostError,
    TokenRefreshError,
)
from .hub import (
    AuthAccept,
    AuthHook,
    AuthRefuse,
    AuthRequest,
    ClientConnected,
    ClientDisconnected,
    ClientErrorReceived,
    ClientMessage,
    ClusterPresence,
    ConnectionRejected,
    HookFailed,
    Hub,
    HubConfig,
    HubEvent,
    PresenceChanged,
    ServerStats,
    Session,
    SessionExpired,
    TopicLost,
    TopicMessage,
    TopicWatched,
)
from .logs import WARNING, Logger, PeerNames, hub_log_entry, listener_error_entry
from .logs import write as write_log
from .messages import ClientInfo, PresenceAction, StreamPosition
from .ratelimit import RateLimit
from .serializers import RAW, Serializer, check_name, encode_payload
from .websocket import HttpRequest, HttpResponse, WebSocketConfig

if TYPE_CHECKING:
    import ssl

    from sigma_auth import Claims, JwtConfig

__all__ = [
    "CLIENT_EVENTS",
    "CLOSE_TIMEOUT",
    "SERVER_EVENTS",
    "ClientCommands",
    "ClientOptions",
    "ClientRef",
    "EventEmitter",
    "Exclude",
    "HttpRequest",
    "HttpResponse",
    "Message",
    "ReconnectInfo",
    "ServerCommands",
    "ServerOptions",
    "SessionInfo",
    "client_callbacks",
    "decode_message",
    "fetch_token",
    "server_callbacks",
    "session_id_of",
    "session_ids_of",
]

#: The default of ``ServerOptions.close_timeout`` and ``ClientOptions.close_timeout``, in
#: seconds: how long a closing socket has to finish its closing handshake (RFC 6455 §7.1.1)
#: before it is dropped, on every adapter alike.
CLOSE_TIMEOUT = 5.0


#: Every event a server fires (:func:`server_callbacks`; ``error`` also for a listener that
#: raised): ``on``/``off`` with any other name raise ``ValueError``, so a misspelt event fails
#: at once instead of never firing.
SERVER_EVENTS: frozenset[str] = frozenset({
    "connection", "message", "disconnection", "session_expired", "presence", "rejected",
    "client_error", "error", "topic_message", "topic_watched", "topic_lost", "cluster_presence"})
#: Every event a client fires (:func:`client_callbacks`); ``on``/``off`` refuse any other name.
CLIENT_EVENTS: frozenset[str] = frozenset({
    "connection", "message", "reconnecting", "disconnection", "error", "recovery_failed",
    "session_reset", "subscribed", "unsubscribed", "presence"})


def _known_event(event: str, known: frozenset[str], side: str) -> str:
    if event not in known:
        raise ValueError(f"unknown {side} event {event!r}: one of {', '.join(sorted(known))}")
    return event


def _check_options(options: object, non_negative: tuple[str, ...],
                   positive: tuple[str, ...] = ()) -> None:
    """The options whose core field has another name (``session_timeout`` is the hub's
    ``session_ttl``, ``rate_pacing`` the client's ``pace``, ...), checked here so that the
    ``ValueError`` names the option the app passed, not the core's field.

    Raises:
        ValueError: one of them is not a finite number (>= 0, or > 0 for ``positive``).
    """
    kind = type(options).__name__
    for name in non_negative + positive:
        value = getattr(options, name)
        low_ok = value > 0 if name in positive else value >= 0
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not (math.isfinite(value) and low_ok):
            bound = "> 0" if name in positive else ">= 0"
            raise ValueError(f"{kind}.{name} must be a finite number {bound}, got {value!r}")


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
    #: Seconds a socket the server closes has to finish the closing handshake (our close
    #: frame out, the client's back, the TCP close) before it is dropped; also how long
    #: ``stop()`` waits for the sockets it reset past ``shutdown_timeout`` to go.
    close_timeout: float = CLOSE_TIMEOUT
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
    #: The same limits for all connections of one identity together (an authenticated
    #: ``Session.identity``; a token's ``rate`` claim replaces them for its identity). Welcome
    #: advertises the tighter of both, and clients pace themselves to it.
    identity_max_messages_per_second: float = 0.0
    identity_max_bytes_per_second: float = 0.0
    #: JWT authentication (``sigma_auth.JwtConfig``; ``pip install sigmasockets[jwt]``): the
    #: Hello's ``auth_token`` must be a valid token. Exclusive with ``authenticate``.
    jwt: JwtConfig | None = None
    #: With ``jwt``: called with the request and the verified ``sigma_auth.Claims``; its
    #: answer is the decision (None: accept with what the claims say).
    jwt_then: Callable[[AuthRequest, Claims], AuthAccept | AuthRefuse] | None = None
    #: Seconds a connection stays open after its credentials expired (token ``exp``) without a
    #: refresh; then it is closed with 4010 (TOKEN_EXPIRED).
    credentials_grace: float = 30.0
    #: Wraps the hook the server decides with (the one built from ``jwt``, or
    #: ``authenticate``; None when neither is set): ``sigma_ops`` admits its dashboard viewers
    #: this way, around the app's own rules, JWT or not.
    wrap_authenticate: Callable[[AuthHook | None], AuthHook] | None = None
    #: How payloads are encoded (``send_to_client``/``broadcast``/``publish`` take values) and
    #: decoded (the ``message`` callback gets values): ``sigma_core.serializers.RAW`` (bytes,
    #: the default), ``JSON``, ``MsgpackSerializer()`` or your own. Its name is advertised in
    #: the handshake; clients with another serializer are refused at connect time.
    serializer: Serializer = RAW
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
    #: Reverse proxies (addresses or networks, e.g. ``("127.0.0.1", "10.0.0.0/8")``) whose
    #: ``X-Forwarded-For`` names the client: behind nginx or a load balancer the per-peer
    #: limits above then count each client, not the proxy. Empty (the default): the socket's
    #: address; the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
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
        if self.jwt is not None and self.authenticate is not None:
            raise ValueError("set jwt or authenticate, not both (to check more than the token, "
                             "set jwt_then)")
        if self.shutdown_spread > self.shutdown_timeout:
            raise ValueError(f"shutdown_spread ({self.shutdown_spread}) must be <= "
                             f"shutdown_timeout ({self.shutdown_timeout})")
        _check_options(self, ("session_timeout", "max_messages_per_second",
                              "max_bytes_per_second", "identity_max_messages_per_second",
                              "identity_max_bytes_per_second"))
        self.hub_config()  # validates everything else, with the core's messages

    def hub_config(self, wall_clock_offset: float = 0.0,
                   authenticate: AuthHook | None = None) -> HubConfig:
        """The core configuration these options stand for (``authenticate``: the hook the
        adapter built from ``jwt``, used instead of the ``authenticate`` option)."""
        return HubConfig(
            connection=ConnectionConfig(
                websocket=WebSocketConfig(max_message_size=self.max_message_size,
                                          compression=self.compression_enabled),
                heartbeat_interval=self.heartbeat_interval,
                heartbeat_timeout=self.heartbeat_timeout,
                handshake_timeout=self.handshake_timeout,
                close_timeout=self.close_timeout,
                wall_clock_offset=wall_clock_offset),
            history=self.history,
            session_ttl=self.session_timeout,
            max_connections=self.max_connections,
            max_sessions=self.max_sessions,
            max_topics_per_session=self.max_topics_per_session,
            outgoing_high_water=self.outgoing_high_water,
            presence_notifications=self.presence_notifications,
            authenticate=(self.wrap_authenticate(authenticate or self.authenticate)
                          if self.wrap_authenticate is not None
                          else authenticate or self.authenticate),
            credentials_grace=self.credentials_grace,
            identity_rate_limit=RateLimit(
                messages_per_second=self.identity_max_messages_per_second,
                bytes_per_second=self.identity_max_bytes_per_second),
            authorize_subscribe=self.authorize_subscribe,
            rate_limit=RateLimit(messages_per_second=self.max_messages_per_second,
                                 bytes_per_second=self.max_bytes_per_second),
            http_handler=self.http_handler,
            serializer=check_name(self.serializer.name),
            max_replay_bytes=self.max_replay_bytes,
            max_sessions_per_peer=self.max_sessions_per_peer,
            new_sessions_per_peer_per_second=self.new_sessions_per_peer_per_second,
            max_pending_handshakes=self.max_pending_handshakes,
            trusted_proxies=tuple(self.trusted_proxies),
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
    #: How payloads are encoded (``send`` takes values) and decoded (messages carry values);
    #: must be the server's (see ``ServerOptions.serializer``): its name goes in the Hello,
    #: and a server with another one refuses the connection (close 4011, no retry).
    serializer: Serializer = RAW
    #: Called for a new token (``str``, or an awaitable of one) before the credentials the
    #: server announced expire, and after a close for expired credentials (the client then
    #: reconnects with the new token instead of giving up). None: tokens are not refreshed.
    get_token: Callable[[], Any] | None = None
    #: Seconds before the credentials expire to ask ``get_token`` (at most halfway).
    token_refresh_margin: float = 30.0
    #: Share of the server's advertised rate limits the client paces every envelope the
    #: server counts to (requests and messages wait, heartbeats are charged; 0: no pacing).
    rate_pacing: float = 0.9
    #: Acknowledge ``$inbox`` messages to the server after this many, or ``inbox_ack_delay``
    #: seconds after the first unacknowledged one, so it can drop its copies at once instead of
    #: keeping them for replay until its history limits (docs/protocol.md §7, "Inbox
    #: acknowledgements"); 0: never.
    inbox_ack_every: int = 128
    inbox_ack_delay: float = 1.0
    #: Seconds a socket the client lets go of (``disconnect()``, a lost or replaced connection)
    #: has to write its last bytes and see the server close first (RFC 6455 §7.1.1) before it
    #: is dropped; ``disconnect()`` returns within it.
    close_timeout: float = CLOSE_TIMEOUT
    #: Where lost connections, reconnects and session resets are logged (see
    #: :mod:`sigma_core.logs`); None: ``logging.getLogger("sigma_asyncio.client")`` or
    #: ``"sigma_trio.client"``.
    logger: Logger | None = None

    def __post_init__(self) -> None:
        queued = self.max_queued_messages
        if isinstance(queued, bool) or not isinstance(queued, int) or queued < 0:
            raise ValueError(f"max_queued_messages must be an int >= 0, got {queued!r}")
        _check_options(self, ("token_refresh_margin", "rate_pacing"),
                       positive=("reconnect_interval", "max_reconnect_delay"))
        if self.rate_pacing > 1:
            raise ValueError(f"ClientOptions.rate_pacing must be within 0..1, got "
                             f"{self.rate_pacing!r}")
        attempts = self.max_reconnect_attempts
        if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)
                                     or attempts < 1):
            raise ValueError("ClientOptions.max_reconnect_attempts must be an int >= 1 or None "
                             f"(retry forever), got {attempts!r}")
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
                close_timeout=self.close_timeout,
                wall_clock_offset=wall_clock_offset),
            max_pending=self.max_pending,
            connect_timeout=self.connect_timeout,
            auth_token=self.auth_token,
            client_info=self.client_info,
            extra_headers=self.extra_headers,
            serializer=check_name(self.serializer.name),
            refresh_tokens=self.get_token is not None,
            refresh_margin=self.token_refresh_margin,
            pace=self.rate_pacing,
            inbox_ack_every=self.inbox_ack_every,
            inbox_ack_delay=self.inbox_ack_delay,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message received by a client (what ``async for message in client`` yields).

    ``data`` is the payload as the client's serializer decoded it: ``bytes`` with the default
    raw serializer, a JSON value with ``JSON``, and so on."""

    data: Any
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
#: A client as the server's commands take it: its :class:`~sigma_core.hub.Session` or its id.
ClientRef: TypeAlias = Session | str
#: Who a broadcast or publish leaves out: one client, several, or nobody (None).
Exclude: TypeAlias = ClientRef | Iterable[ClientRef] | None


def session_id_of(client: ClientRef) -> str:
    """The session id a :data:`ClientRef` stands for."""
    return client if isinstance(client, str) else client.id


def session_ids_of(exclude: Exclude) -> frozenset[str]:
    """The session ids an :data:`Exclude` stands for (empty for None)."""
    if exclude is None:
        return frozenset()
    if isinstance(exclude, str | Session):
        return frozenset((session_id_of(exclude),))
    return frozenset(session_id_of(c) for c in exclude)


class EventEmitter:
    """``on`` / ``off`` / ``emit`` as in the original. A listener that raises does not stop the
    others, nor the connection that fired the event: the exception, with a note naming the
    event (``exc.__notes__``), goes to the ``error`` listeners; when there are none (or an
    ``error`` listener raised) it is logged at ERROR on ``logger`` with the event's name
    (``sigma_callback``, and ``sigma_listener_of``: ``owner``) and handed to ``on_listener_error``.
    Every adapter's servers and clients report through this one path."""

    def __init__(self, on_listener_error: Callable[[BaseException], None] | None = None, *,
                 logger: Logger | None = None, owner: str = "") -> None:
        # Tuples, replaced on on()/off(): emit() iterates one as it was when the event fired
        # (a listener may add or remove listeners) without copying it for every event.
        self._listeners: dict[str, tuple[Listener, ...]] = {}
        self._on_listener_error = on_listener_error
        self._logger = logger
        self._owner = owner

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
                self._listener_raised(event, exc)

    def _listener_raised(self, event: str, exc: Exception) -> None:
        exc.add_note(f"raised by a {self._owner or 'SigmaSockets'} {event!r} listener")
        if event != "error" and self._listeners.get("error"):
            self.emit("error", exc)
            return
        if self._logger is not None:
            write_log(self._logger, listener_error_entry(self._owner, event, exc))
        if self._on_listener_error is not None:
            self._on_listener_error(exc)


# ----------------------------------------------------------------------------- commands
#
# The application's commands, written once: every adapter's server (sigma_asyncio, sigma_trio,
# sigma_asgi) and client (sigma_asyncio, sigma_trio) inherits them, and supplies only its
# clock (``_now``), its hub or session, and ``_after_core`` (write the output, fire the
# callbacks, re-arm the timer).


class ServerCommands:
    """What an application tells a server, and asks it. Mixed into every adapter's server."""

    __slots__ = ()
    options: ServerOptions
    _hub: Hub | None
    _emitter: EventEmitter
    #: The adapter's clock (the event loop's time, the timebase of the hub).
    _now: Callable[[], float]

    def _after_core(self) -> None:
        raise NotImplementedError

    def _require_hub(self) -> Hub:
        if self._hub is None:
            raise LocalProtocolError("the server has not been started")
        return self._hub

    @property
    def hub(self) -> Hub | None:
        """The sans-IO hub (None before the server first started)."""
        return self._hub

    def on(self, event: str, listener: Listener) -> Listener:
        """Register ``listener`` for ``event`` (:func:`server_callbacks` names them); returns
        it (usable as a decorator). A listener that raises is reported (:class:`EventEmitter`);
        the connection that fired the event is kept.

        Raises:
            ValueError: ``event`` is not one of :data:`SERVER_EVENTS`.
        """
        return self._emitter.on(_known_event(event, SERVER_EVENTS, "server"), listener)

    def off(self, event: str, listener: Listener) -> None:
        """Remove ``listener`` from ``event`` (unknown listeners are ignored).

        Raises:
            ValueError: ``event`` is not one of :data:`SERVER_EVENTS`.
        """
        self._emitter.off(_known_event(event, SERVER_EVENTS, "server"), listener)

    def send_to_client(self, client: ClientRef, data: Any) -> bool:
        """Send ``data`` (bytes, or a value for ``options.serializer``) to one client's inbox
        (replayed if it is away); False if no such session.

        Raises:
            LocalProtocolError: the server was never started, the serializer cannot encode
                ``data``, or the message is larger than ``max_message_size`` allows.
        """
        hub = self._require_hub()
        # (session_id_of and encode_payload inlined for the common case: this runs once per
        # message an echo or a chat sends.)
        session_id = client if isinstance(client, str) else client.id
        if hub.get_session(session_id) is None:
            return False
        serializer = self.options.serializer
        payload = data if serializer is RAW and type(data) is bytes \
            else encode_payload(serializer, data)
        hub.send_to(session_id, payload, self._now())
        self._after_core()
        return True

    def broadcast(self, data: Any, exclude: Exclude = None) -> None:
        """Send ``data`` (bytes, or a value for ``options.serializer``) to every client except
        ``exclude`` (an id, a session, or several).

        Raises:
            LocalProtocolError: the server was never started, the serializer cannot encode
                ``data``, or the message is larger than ``max_message_size`` allows.
        """
        payload = encode_payload(self.options.serializer, data)
        self._require_hub().broadcast(payload, self._now(), exclude=session_ids_of(exclude))
        self._after_core()

    def publish(self, topic: str, data: Any, exclude: Exclude = None) -> StreamPosition:
        """Publish ``data`` (bytes, or a value for ``options.serializer``) to a topic's
        subscribers; returns the message's position (``StreamPosition(0, 0)`` with an external
        cluster engine, which assigns positions when it appends: a ``watch`` on the topic sees
        each message with its position).

        Raises:
            LocalProtocolError: the server was never started; the serializer cannot encode
                ``data``; ``topic`` is empty, longer than 256 bytes or reserved (starts with
                ``$``, other than ``$all``); or the message is larger than ``max_message_size``
                allows.
        """
        payload = encode_payload(self.options.serializer, data)
        position = self._require_hub().publish(topic, payload, self._now(),
                                               exclude=session_ids_of(exclude))
        self._after_core()
        return position

    def subscribe(self, client: ClientRef, topic: str) -> None:
        """Subscribe a client to ``topic`` from the server side (the client is told).

        Raises:
            LocalProtocolError: the server was never started; no such session; ``topic`` is
                empty, too long or reserved; or the session already holds
                ``max_topics_per_session`` topics.
        """
        self._require_hub().subscribe(session_id_of(client), topic, self._now())
        self._after_core()

    def unsubscribe(self, client: ClientRef, topic: str) -> None:
        """Remove a client's subscription to ``topic`` (the client is told).

        Raises:
            LocalProtocolError: the server was never started, no such session, or ``topic`` is
                reserved.
        """
        self._require_hub().unsubscribe(session_id_of(client), topic, self._now())
        self._after_core()

    def watch(self, topic: str, history: int = 0) -> None:
        """Subscribe the app to ``topic`` from the server side: every message published to it,
        on this node or (cluster engine) any node, fires ``topic_message(TopicMessage)`` in
        position order, each once; the last ``history`` ones first, then
        ``topic_watched(TopicWatched)``, then live ones (see ``Hub.watch``).

        Raises:
            LocalProtocolError: the server was never started, ``topic`` is empty, too long or
                reserved, or ``history`` is negative.
        """
        self._require_hub().watch(topic, self._now(), history=history)
        self._after_core()

    def unwatch(self, topic: str) -> None:
        """Stop watching ``topic`` (a topic not watched is ignored).

        Raises:
            LocalProtocolError: the server was never started.
        """
        self._require_hub().unwatch(topic, self._now())
        self._after_core()

    def request_presence(self, topic: str) -> None:
        """Ask for ``topic``'s subscribers on every node: the answer fires
        ``cluster_presence(ClusterPresence)`` (at once on the in-memory engine).

        Raises:
            LocalProtocolError: the server was never started.
        """
        self._require_hub().request_presence(topic, self._now())
        self._after_core()

    def disconnect_client(self, client: ClientRef, reason: str = "", *,
                          end_session: bool = True) -> None:
        """Close a client's connection (close 1000). ``end_session`` (a kick): the session ends
        and the client does not come back; otherwise it reconnects and resumes. Unknown ids
        are ignored.

        Raises:
            LocalProtocolError: the server was never started.
        """
        hub = self._require_hub()
        session_id = session_id_of(client)
        if hub.get_session(session_id) is not None:
            hub.disconnect(session_id, self._now(), reason=reason, end_session=end_session)
            self._after_core()

    def get_client(self, session_id: str) -> Session | None:
        """The session with this id (connected or awaiting resume), or None."""
        return self._hub.get_session(session_id) if self._hub is not None else None

    def get_connected_clients(self) -> list[Session]:
        """Sessions that currently have a connection."""
        return self._hub.connected_sessions() if self._hub is not None else []

    def get_stats(self) -> ServerStats:
        """Counters and gauges (see :class:`~sigma_core.hub.ServerStats`).

        Raises:
            LocalProtocolError: the server was never started.
        """
        return self._require_hub().stats(self._now())

    def presence(self, topic: str) -> frozenset[str]:
        """Ids of the sessions subscribed to ``topic`` (empty for an unknown topic).

        Raises:
            LocalProtocolError: the server was never started.
        """
        return self._require_hub().presence(topic)

    #: The commands that change or read the hub's state (what ``sigma_asgi`` runs on its
    #: event loop when called from a worker thread).
    _HUB_COMMANDS = ("send_to_client", "broadcast", "publish", "subscribe", "unsubscribe",
                     "watch", "unwatch", "request_presence", "disconnect_client", "get_stats",
                     "presence")


class ClientCommands:
    """What an application tells a client, and asks it. Mixed into every adapter's client."""

    __slots__ = ("_iterated", "_warned")
    options: ClientOptions
    _session: ClientSession | None
    _emitter: EventEmitter
    _logger: Logger
    # _iterated: ``async for`` has begun: every message is queued from then on (before it,
    # only while no ``message`` listener is registered, so a callback-only app never fills
    # the queue). _warned: the "nothing iterates" warning was logged (it is said once).
    _iterated: bool
    _warned: bool

    def _begin_iterating(self) -> None:
        """``async for`` starts.

        Raises:
            LocalProtocolError: ``max_queued_messages`` is 0 (callbacks only).
        """
        if not self.options.max_queued_messages:
            raise LocalProtocolError("max_queued_messages=0: messages reach the `message` "
                                     "callback only, there is nothing to iterate over")
        self._iterated = True

    def _queues_messages(self) -> bool:
        """Whether a message received now joins the ``async for`` queue."""
        return bool(self.options.max_queued_messages) and (
            self._iterated or not self._emitter.has_listeners("message"))

    def _warn_if_unread(self, queued: int) -> None:
        """Reading paused on a full queue: say so once when nothing iterates."""
        if not self._iterated and not self._warned:
            self._warned = True
            self._logger.log(WARNING,
                "SigmaSocketClient: %d messages wait for `async for` and nothing iterates: "
                "reading paused until the app takes them (iterate, register a `message` "
                "listener, or set max_queued_messages=0)", queued)

    def _core(self) -> ClientSession:
        """The sans-IO session, made on first use."""
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def _after_core(self) -> None:
        raise NotImplementedError

    def send(self, data: Any, topic: str = "") -> bool:
        """Queue ``data`` (bytes, or a value for ``options.serializer``) for the server
        (delivered once, in order, across reconnects). False, and nothing queued, while
        ``max_pending`` messages await acknowledgement.

        Raises:
            LocalProtocolError: the serializer cannot encode ``data``, or the message could
                never be accepted: larger than the server's ``max_message_size`` less the
                envelope's overhead.
        """
        payload = encode_payload(self.options.serializer, data)
        try:
            self._core().send(payload, self._now(), topic=topic)
        except BufferFullError:
            return False
        self._after_core()
        return True

    def subscribe(self, topic: str) -> None:
        """Subscribe to ``topic`` (now, or on the next connection); the ``subscribed``
        callback confirms it.

        Raises:
            LocalProtocolError: ``topic`` is empty or reserved (starts with ``$``), or the Hello
                that resumes the session would no longer fit in ``max_message_size`` with it.
        """
        self._core().subscribe(topic, self._now())
        self._after_core()

    def unsubscribe(self, topic: str) -> None:
        """Leave ``topic``.

        Raises:
            LocalProtocolError: not subscribed to ``topic``.
        """
        self._core().unsubscribe(topic, self._now())
        self._after_core()

    def get_status(self) -> ConnectionStatus:
        """The current :class:`~sigma_core.client.ConnectionStatus`: DISCONNECTED,
        CONNECTING, CONNECTED, RECONNECTING or ERROR (gave up)."""
        session = self._session
        return session.status if session is not None else ConnectionStatus.DISCONNECTED

    def get_session(self) -> SessionInfo | None:
        """The session as of the last Welcome; None before the first one."""
        core = self._session
        if core is None or not core.session_id or core.connected_at is None:
            return None
        offset = core.config.connection.wall_clock_offset
        return SessionInfo(id=core.session_id, resumed=core.resumed,
                           connected_at=core.connected_at + offset, pending=core.pending_count)

    @property
    def session(self) -> ClientSession | None:
        """The sans-IO core (None before first use)."""
        return self._session

    def on(self, event: str, listener: Listener) -> Listener:
        """Register ``listener`` for ``event`` (:func:`client_callbacks` names them); returns
        it (usable as a decorator). A listener that raises is reported (:class:`EventEmitter`);
        the connection is kept.

        Raises:
            ValueError: ``event`` is not one of :data:`CLIENT_EVENTS`.
        """
        return self._emitter.on(_known_event(event, CLIENT_EVENTS, "client"), listener)

    def off(self, event: str, listener: Listener) -> None:
        """Remove ``listener`` from ``event`` (unknown listeners are ignored).

        Raises:
            ValueError: ``event`` is not one of :data:`CLIENT_EVENTS`.
        """
        self._emitter.off(_known_event(event, CLIENT_EVENTS, "client"), listener)


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


def server_callbacks(event: HubEvent, serializer: Serializer = RAW
                     ) -> list[tuple[str, tuple[Any, ...]]]:
    """The callbacks a hub event fires on a ``SigmaSocketServer``:

    ``connection(client)``, ``message(client, data, topic: str)`` (``data`` decoded by
    ``serializer``; a payload it cannot decode fires ``error(PayloadDecodeError)`` instead),
    ``disconnection(client, reason: str)`` (reason names the close code),
    ``session_expired(client)``, ``presence(topic, client, joined: bool)``,
    ``rejected(conn_id, reason)`` for connections refused before they had a session,
    ``client_error(client, Error)``, and ``error(exception)`` when an app hook raised. The
    server-side subscriptions (``watch``): ``topic_message(TopicMessage)``,
    ``topic_watched(TopicWatched)``, ``topic_lost(TopicLost)``; and
    ``cluster_presence(ClusterPresence)``, the answer to ``request_presence``.
    """
    if isinstance(event, ClientMessage):
        if serializer is RAW:
            return [("message", (event.session, event.payload, event.topic))]
        try:
            value = serializer.decode(event.payload)
        except Exception as exc:  # the serializer's verdict on a peer's bytes
            return [("error", (PayloadDecodeError(
                serializer.name, str(exc) or type(exc).__name__, data=event.payload,
                topic=event.topic, seq=event.seq, session=event.session),))]
        return [("message", (event.session, value, event.topic))]
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


def decode_message(event: MessageReceived,
                   serializer: Serializer = RAW) -> Message | PayloadDecodeError:
    """The :class:`Message` a received message is for the app, decoded by ``serializer``, or
    the error to report for it (the connection's other traffic is unaffected)."""
    value: Any = event.payload
    if serializer is not RAW:
        try:
            value = serializer.decode(event.payload)
        except Exception as exc:  # the serializer's verdict on a peer's bytes
            return PayloadDecodeError(serializer.name, str(exc) or type(exc).__name__,
                                      data=event.payload, topic=event.topic,
                                      message_id=event.position.offset)
    return Message(data=value, topic=event.topic, position=event.position,
                   timestamp_ms=event.timestamp_ms)


def emit_server_event(emit: Callable[..., None], event: HubEvent,
                      serializer: Serializer = RAW) -> None:
    """``emit(name, *args)`` for each callback :func:`server_callbacks` names for ``event``:
    the same calls, without building the list for a raw message (the per-message path of both
    adapters)."""
    if type(event) is ClientMessage and serializer is RAW:
        emit("message", event.session, event.payload, event.topic)
        return
    for name, args in server_callbacks(event, serializer):
        emit(name, *args)


def server_event_dispatcher(emitter: EventEmitter, logger: Logger,
                            addresses: Mapping[int, str] | PeerNames,
                            serializer: Serializer = RAW) -> Callable[[HubEvent], None]:
    """What a socket adapter does with each hub event (``ServerPump``'s ``dispatch``): its log
    line (:func:`sigma_core.logs.hub_log_entry`; messages are never logged), then the callbacks
    :func:`emit_server_event` fires."""
    emit = emitter.emit

    def dispatch(event: HubEvent) -> None:
        if type(event) is not ClientMessage:
            write_log(logger, hub_log_entry(event, addresses))
        emit_server_event(emit, event, serializer)

    return dispatch


def client_callbacks(event: ClientEvent, decoded: Message | PayloadDecodeError | None = None
                     ) -> list[tuple[str, tuple[Any, ...]]]:
    """The callbacks a client-session event fires on a ``SigmaSocketClient``:

    ``connection(status: ConnectionStatus)`` on every status change, ``message(data,
    message_id: int, timestamp_ms: int, topic: str)`` (``data`` as ``decoded`` by
    :func:`decode_message`; one that could not be decoded fires ``error(PayloadDecodeError)``
    instead), ``reconnecting(ReconnectInfo)``,
    ``error(SigmaError)`` (gave up, recovery failed, session reset, server error reports),
    ``recovery_failed(RecoveryFailed)``, ``session_reset(SessionReset)``,
    ``disconnection(code: int, reason: str)``, ``subscribed(topic)``, ``unsubscribed(topic)``,
    ``presence(Presence)``.
    """
    if isinstance(event, MessageReceived):
        if decoded is None:
            decoded = decode_message(event)
        if isinstance(decoded, PayloadDecodeError):
            return [("error", (decoded,))]
        return [("message", (decoded.data, event.position.offset, event.timestamp_ms,
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


async def fetch_token(get_token: Callable[[], Any]) -> str:
    """Call the app's ``get_token`` (plain or async) for a :class:`TokenNeeded`; both adapters
    run this in a task of their own and hand the result to ``ClientSession.refresh_token``.

    Raises:
        SigmaError: ``get_token`` raised or returned something else than a non-empty ``str``
            (the adapter reports it as an ``error`` event; the connection is then closed by
            the server when the credentials expire).
    """
    try:
        token = get_token()
        if inspect.isawaitable(token):
            token = await token
    except Exception as exc:  # the app's callback
        raise TokenRefreshError(f"get_token raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(token, str) or not token:
        raise TokenRefreshError(f"get_token must return a non-empty str, not "
                                f"{type(token).__name__}")
    return token


def _close_text(code: int, reason: str) -> str:
    try:
        name = CloseCode(code).name.lower()
    except ValueError:
        name = str(code)
    return f"{name}: {reason}" if reason else name
