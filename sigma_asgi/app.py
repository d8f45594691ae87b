"""``SigmaASGIApp``: the hub (:class:`sigma_core.hub.Hub`) served through an ASGI 3 server.

The ASGI server does the HTTP upgrade, the framing and the closing handshake; the hub runs in
message mode (:mod:`sigma_core.message_socket`). Per WebSocket scope: the upgrade is decided by
the hub at ``websocket.connect`` (limits, Origin, subprotocol ``sigma.v1``), then one task reads
``receive()``, feeds whole messages to the hub and sends the answer to what it read itself; a
writer task per connection sends what arrives otherwise (broadcasts, timers). What waits in a
connection's outbox (``await send`` waits while the server's transport drains) is counted;
past 64 KiB the hub holds the connection's further output (``pause_writing``) and counts it
against ``outgoing_high_water``: a consumer that stays slow is cut with 4007 as on the native
adapters. Timers: one task wakes the hub at :meth:`Hub.next_deadline`, run by the
lifespan (or ``async with app:``) when the host sends it, else by the connections themselves.
Written on anyio: the same code runs under asyncio servers (uvicorn, hypercorn, granian) and
trio ones (hypercorn's trio worker).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.to_thread
import sniffio

from sigma_asyncio._entropy import SystemEntropy
from sigma_asyncio._heap import heap_trimmer
from sigma_core.api import EventEmitter, ServerCommands, ServerOptions, emit_server_event
from sigma_core.engine import EngineLink
from sigma_core.errors import LocalProtocolError
from sigma_core.hub import (
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClientMessage,
    CloseAction,
    ClusterPresence,
    Hub,
    Session,
)
from sigma_core.logs import format_peer, hub_log_entry
from sigma_core.logs import write as write_log
from sigma_core.message_socket import MessageSocket
from sigma_core.messages import Hello
from sigma_core.serializers import RAW
from sigma_core.websocket import HandshakeRequest, WebSocketState

if TYPE_CHECKING:
    from sigma_auth import ServerAuth

__all__ = ["ASGIApp", "ASGIAuthRequest", "ClusterPresenceError", "SigmaASGIApp", "asgi_scope"]

_log = logging.getLogger("sigma_asgi.server")

Scope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_F = TypeVar("_F", bound=Callable[..., Any])


def _on_loop(method: _F) -> _F:
    """Commands run on the event loop: called from a worker thread of it (FastAPI's and
    Starlette's sync endpoints run in ``anyio.to_thread``), they hop over to it and wait."""

    @functools.wraps(method)
    def command(self: SigmaASGIApp, *args: Any, **kwargs: Any) -> Any:
        if self._loop_thread is None or threading.get_ident() == self._loop_thread:
            return method(self, *args, **kwargs)
        return anyio.from_thread.run_sync(functools.partial(method, self, *args, **kwargs))

    return command  # type: ignore[return-value]

_NO_ENGINE_HOST = (
    "SigmaASGIApp has a cluster engine (ServerOptions.engine) but nothing runs it: the "
    "WebSocket is refused with 503. Serve the app with the lifespan protocol on (uvicorn "
    "--lifespan on), or start it with `async with app:` in the host app's lifespan")

#: Headers the ASGI server handled itself (HandshakeRequest gives host and subprotocols apart).
_HANDLED_HEADERS = frozenset({"host", "sec-websocket-protocol", "sec-websocket-extensions"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ASGIAuthRequest:
    """What the ``authenticate`` hook gets from a :class:`SigmaASGIApp`: everything an
    :class:`~sigma_core.hub.AuthRequest` has (``hello``, ``path``, ``headers``, ``header()``,
    ``origin``), plus the ASGI ``scope`` of the WebSocket, its ``cookies`` and the ``user`` an
    authentication middleware (Starlette's ``AuthenticationMiddleware``, Django's
    ``AuthMiddlewareStack``) put in the scope (None when there is none)."""

    hello: Hello
    path: str
    headers: tuple[tuple[str, str], ...]
    scope: Mapping[str, Any]
    #: As :class:`~sigma_core.hub.AuthRequest`: wall-clock seconds when the Hello arrived, the
    #: hub's clock then, and the session being refreshed (a token refresh; None for a Hello).
    now: float = 0.0
    monotonic: float = 0.0
    refreshing: Session | None = None

    def header(self, name: str) -> str | None:
        """First value of a header (names compare case-insensitively)."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def origin(self) -> str | None:
        return self.header("origin")

    @property
    def cookies(self) -> dict[str, str]:
        """The request's cookies (an unparsable Cookie header gives none)."""
        jar: SimpleCookie = SimpleCookie()
        for name, value in self.headers:
            if name == "cookie":
                try:
                    jar.load(value)
                except CookieError:
                    return {}
        return {key: morsel.value for key, morsel in jar.items()}

    @property
    def user(self) -> Any:
        """``scope["user"]`` (set by an authentication middleware), or None."""
        return self.scope.get("user")


def asgi_scope(request: AuthRequest | ASGIAuthRequest) -> Mapping[str, Any] | None:
    """The ASGI scope behind an ``authenticate`` hook's request (None on the native adapters):
    for hooks shared between a :class:`SigmaASGIApp` and ``SigmaSocketServer``."""
    return request.scope if isinstance(request, ASGIAuthRequest) else None


class ClusterPresenceError(RuntimeError):
    """:meth:`SigmaASGIApp.cluster_presence` got no answer from the cluster engine."""


class _PresenceWaiter:
    __slots__ = ("answer", "done")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.answer: ClusterPresence | None = None


#: Bytes waiting in a connection's outbox past which the hub holds its output (as sigma_trio).
_OUTBOX_HIGH_WATER = 64 * 1024


class _Peer:
    """One accepted WebSocket: what the writer task sends, and what the core decided."""

    __slots__ = ("action", "cancel", "conn_id", "outbox", "paused", "queued", "scope",
                 "socket", "wake", "writing")

    def __init__(self, conn_id: int, scope: Scope, socket: MessageSocket,
                 cancel: anyio.CancelScope) -> None:
        self.conn_id = conn_id
        self.scope = scope
        self.socket = socket
        self.cancel = cancel
        self.outbox: list[bytes] = []
        #: Bytes in the outbox and the batch being sent.
        self.queued = 0
        #: The hub holds this connection's output (queued passed _OUTBOX_HIGH_WATER).
        self.paused = False
        self.action = CloseAction.NONE
        self.wake = anyio.Event()
        #: A task is in ``await send(...)`` for this connection.
        self.writing = False


class SigmaASGIApp(ServerCommands):
    """A SigmaSockets server as an ASGI 3 application.

    ``SigmaASGIApp(ServerOptions(...), app=inner)`` or ``SigmaASGIApp(app=inner, **options)``
    (keywords override the fields of a given ``ServerOptions``; ``host``, ``port`` and ``ssl``
    belong to the ASGI server and are ignored here). ``websocket`` scopes are served; every
    other scope goes to ``app`` (HTTP without an inner app gets 404). The same commands and
    callbacks as ``sigma_asyncio.SigmaSocketServer``: :meth:`on`, :meth:`send_to_client`,
    :meth:`broadcast`, :meth:`publish`, :meth:`subscribe`, :meth:`get_stats`, ...

    Lifecycle: the ASGI ``lifespan`` starts it and stops it gracefully (Goodbye with the
    reconnect hint, close 1001, at most ``shutdown_timeout``); mounted inside another app
    (which does not pass the lifespan on), use ``async with sigma_app:`` in that app's lifespan.
    Without either it starts on the first WebSocket and is never stopped gracefully.
    """

    def __init__(self, options: ServerOptions | None = None, /, *, app: ASGIApp | None = None,
                 **overrides: Any) -> None:
        if options is None:
            options = ServerOptions(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **overrides)
        for name, why in (("ssl", "TLS is the ASGI server's (uvicorn --ssl-certfile, ...)"),
                          ("http_handler", "plain HTTP goes to the inner app (app=...)")):
            if getattr(options, name) is not None:
                raise ValueError(f"SigmaASGIApp does not take ServerOptions.{name}: {why}")
        if options.compression_enabled:
            raise ValueError("SigmaASGIApp does not take ServerOptions.compression_enabled: "
                             "permessage-deflate is the ASGI server's (uvicorn "
                             "--ws-per-message-deflate)")
        self.options = options
        self.app = app
        self._logger = options.logger if options.logger is not None else _log
        self._emitter = EventEmitter(logger=self._logger, owner="SigmaASGIApp")
        self._hub: Hub | None = None
        self._peers: dict[int, _Peer] = {}
        #: conn_id -> the client's address (from the scope), for the log.
        self._addresses: dict[int, str] = {}
        self._busy = False
        self._accepting = False
        #: The scope of the connection whose input the hub is processing (for authenticate).
        self._current_scope: Scope | None = None
        # The hub's timer: one task sleeps until next_deadline(); _after_core wakes it early.
        self._timer_wake = anyio.Event()
        self._timer_at = math.inf
        self._timer_hosted = False  # a lifespan / async-with task runs the timer
        self._timer_running = False
        self._timer_free: anyio.Event | None = None
        self._host_group: anyio.abc.TaskGroup | None = None
        self._drained: anyio.Event | None = None
        #: The event loop's thread (commands from its worker threads hop over to it).
        self._loop_thread: int | None = None
        #: The loop's clock, bound once (anyio.current_time looks the backend up per call).
        self._now: Callable[[], float] = anyio.current_time
        #: The connection whose reader is handing its input to the hub: it sends its own
        #: output itself right after (no writer wake-up for an answer to what it just read).
        self._inline: int | None = None
        #: Feeds the cluster engine's driver (None: the in-memory engine), the same
        #: ``EngineLink`` the native adapters use; the driver runs in the host's task group.
        self._engine_link: EngineLink | None = None
        #: ``ServerOptions.jwt``: the verifier's hook and its JWKS cache (sigma_auth).
        self._auth: ServerAuth | None = None
        self._engine_running = False
        #: Callers of cluster_presence waiting for the engine's answer, per topic, in order.
        self._presence_waiters: dict[str, list[_PresenceWaiter]] = {}

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.app is not None:
            await self.app(scope, receive, send)
        elif kind == "http":
            body = b"not found: this path serves SigmaSockets over WebSocket only"
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = self.app
        if inner is None:
            await self._own_lifespan(receive, send, started=False)
            return

        # Around the inner app's lifespan: we start before it sees the startup and stop before
        # it sees the shutdown (its own resources are still there while clients leave).
        started = inner_answered = False

        async def receive_around() -> ASGIMessage:
            nonlocal started
            message = await receive()
            if message["type"] == "lifespan.startup" and not started:
                started = True
                await self.__aenter__()
            elif message["type"] == "lifespan.shutdown" and started:
                started = False
                await self.__aexit__(None, None, None)
            return message

        async def send_around(message: ASGIMessage) -> None:
            nonlocal inner_answered
            inner_answered = True
            await send(message)

        try:
            await inner(scope, receive_around, send_around)
            if not inner_answered:  # it returned at once: not a lifespan app either
                raise LookupError("the inner app ignored the lifespan scope")
        except Exception:
            if inner_answered:
                raise
            # The inner app does not speak the lifespan protocol (Django's ASGI handler
            # refuses it): we answer it alone.
            self._logger.log(logging.DEBUG, "the inner app does not support the lifespan "
                             "protocol; SigmaASGIApp answers it alone")
            await self._own_lifespan(receive, send, started=started)
        finally:
            if started and self._host_group is not None:
                with anyio.CancelScope(shield=True):
                    await self.__aexit__(None, None, None)

    async def _own_lifespan(self, receive: Receive, send: Send, *, started: bool) -> None:
        if started:
            await send({"type": "lifespan.startup.complete"})
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.__aenter__()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.__aexit__(None, None, None)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def __aenter__(self) -> SigmaASGIApp:
        """Start (create the hub if needed) and run the hub's timer until ``__aexit__``."""
        self._start()
        if self._host_group is None:
            group = anyio.create_task_group()
            await group.__aenter__()
            self._host_group = group
            self._timer_hosted = True
            group.start_soon(self._run_timer)
            if self._engine_link is not None:
                group.start_soon(self._run_engine, self._engine_link)
            auth = self._auth
            if auth is not None and auth.jwks is not None:
                # JWKS fetched in a worker thread: a slow endpoint never blocks the loop (until
                # a fetch succeeds, tokens are refused as retryable: nobody is admitted).
                group.start_soon(functools.partial(
                    auth.refresh_keys, clock=self._clock, sleep=anyio.sleep,
                    in_thread=anyio.to_thread.run_sync, logger=self._logger))
        return self

    async def _run_engine(self, link: EngineLink) -> None:
        self._engine_running = True
        try:
            await link.driver.run(link)
        finally:
            self._engine_running = False

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()
        group, self._host_group = self._host_group, None
        if group is not None:
            group.cancel_scope.cancel()
            self._timer_hosted = False
            await group.__aexit__(None, None, None)

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._now = _loop_clock()
        if self._hub is None:
            now = self._now()
            # (ServerOptions.wrap_authenticate, e.g. sigma_ops, goes around the app's hook.)
            hook: Callable[[AuthRequest], AuthAccept | AuthRefuse] | None = None
            if self.options.jwt is not None:
                from sigma_auth import server_auth

                self._auth = server_auth(self.options)
                hook = self._verify_token
            elif self.options.authenticate is not None:
                hook = self._authenticate
            config = self.options.hub_config(wall_clock_offset=time.time() - now,
                                             authenticate=hook)
            self._hub = Hub(config, entropy=SystemEntropy(), now=now,
                            engine=self.options.external_engine())
            self._hub.heap_trim = heap_trimmer()
            driver = self.options.engine
            if driver is not None:
                self._engine_link = EngineLink(self._hub, driver, self._clock, self._after_core)
        self._accepting = True

    def _clock(self) -> float:
        return self._now()

    async def stop(self) -> None:
        """Graceful stop: refuse new WebSockets, send every client Goodbye (with the
        ``shutdown_reconnect_after`` hint) and close 1001, wait up to ``shutdown_timeout``
        for them to go, then drop the rest. Sessions and history stay (a later start serves
        them again)."""
        if not self._accepting or self._hub is None:
            return
        self._accepting = False
        self._hub.shutdown(self._now(),
                           reconnect_after_ms=int(self.options.shutdown_reconnect_after * 1000))
        self._after_core()
        if self._peers:
            self._drained = anyio.Event()
            with anyio.move_on_after(self.options.shutdown_timeout):
                await self._drained.wait()
            self._drained = None
        for peer in list(self._peers.values()):
            peer.cancel.cancel()

    async def cluster_presence(self, topic: str) -> frozenset[str]:
        """Ids of the sessions subscribed to ``topic`` on every node of the cluster (with
        the in-memory engine: this node's, as :meth:`presence`). A node that crashed keeps
        its members listed until ``ExternalEngineConfig.presence_ttl`` (30 s) after its last
        refresh. ``$all`` is not tracked cluster-wide (always empty).

        Raises:
            LocalProtocolError: the app has not started.
            ClusterPresenceError: the engine did not answer (down, ``max_pending`` requests
                waiting already, ``request_timeout``): the reason is the message.
        """
        hub = self._require_hub()
        waiter = _PresenceWaiter()
        waiters = self._presence_waiters.setdefault(topic, [])
        waiters.append(waiter)
        try:
            hub.request_presence(topic, self._now())
            self._after_core()
            await waiter.done.wait()
        finally:
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters and self._presence_waiters.get(topic) is waiters:
                del self._presence_waiters[topic]
        answer = waiter.answer
        assert answer is not None
        if answer.failed:
            raise ClusterPresenceError(f"cluster presence of {topic!r}: {answer.failed}")
        return answer.members

    def _answer_presence(self, event: ClusterPresence) -> None:
        waiters = self._presence_waiters.get(event.topic)
        if waiters:
            waiter = waiters.pop(0)
            waiter.answer = event
            waiter.done.set()

    # ------------------------------------------------------------------ one WebSocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if self._hub is None:
            self._start()
        hub = self._require_hub()
        if not self._accepting:
            await _refuse(scope, send, 503, "server is shutting down")
            return
        if self._engine_link is not None and not self._engine_running:
            # The driver needs a task that outlives every connection: the lifespan's.
            self._logger.log(logging.ERROR, _NO_ENGINE_HOST)
            await _refuse(scope, send, 503, "cluster engine not running")
            return
        client = scope.get("client")
        conn_id = hub.open_message_connection(_handshake_request(scope), self._now(),
                                              str(client[0]) if client else "")
        self._addresses[conn_id] = format_peer(scope.get("client"))
        socket = hub.message_socket(conn_id)
        assert socket is not None
        if socket.state is not WebSocketState.OPEN:
            status, reason = socket.rejection or (403, "refused")
            hub.connection_lost(conn_id, self._now())
            self._after_core()
            self._addresses.pop(conn_id, None)
            await _refuse(scope, send, status, reason)
            return
        await send({"type": "websocket.accept", "subprotocol": socket.subprotocol})
        async with anyio.create_task_group() as group:
            peer = _Peer(conn_id, scope, socket, group.cancel_scope)
            self._peers[conn_id] = peer
            try:
                group.start_soon(self._write, peer, send)
                if not self._timer_hosted:
                    group.start_soon(self._timer_duty)
                self._after_core()
                await self._read(peer, receive, send)
            finally:
                group.cancel_scope.cancel()
                self._forget(peer)

    async def _read(self, peer: _Peer, receive: Receive, send: Send) -> None:
        hub = self._require_hub()
        receive_message, clock, after_core = hub.receive_message, self._now, self._after_core
        conn_id, scope = peer.conn_id, peer.scope
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                data = message.get("bytes")
                if data is None:
                    data = message.get("text") or ""
                self._current_scope = scope
                self._inline = conn_id
                try:
                    receive_message(conn_id, data, clock())
                    after_core()
                finally:
                    self._current_scope = self._inline = None
                if peer.outbox and not peer.writing and not peer.action:
                    await self._send_batches(peer, send)
            elif kind == "websocket.disconnect":
                code = message.get("code")
                hub.connection_lost(conn_id, self._now(),
                                    code=int(code) if code is not None else None,
                                    reason=message.get("reason") or "")
                self._after_core()
                return

    async def _write(self, peer: _Peer, send: Send) -> None:
        try:
            await self._write_until_closed(peer, send)
        except OSError:
            # The server found the socket gone (uvicorn raises ClientDisconnected, an OSError):
            # its websocket.disconnect follows, or the cancellation below ends the connection.
            peer.cancel.cancel()

    async def _write_until_closed(self, peer: _Peer, send: Send) -> None:
        hub = self._require_hub()
        while True:
            if peer.writing or (not peer.outbox and not peer.action):
                peer.wake = anyio.Event()
                await peer.wake.wait()
                continue
            if peer.action is CloseAction.ABORT:
                # Nothing more can be written in time (a slow consumer, a peer that does not
                # close): leave; the ASGI server drops the connection when the app returns.
                peer.cancel.cancel()
                return
            if peer.outbox:
                await self._send_batches(peer, send)
                continue
            socket = peer.socket
            await send({"type": "websocket.close", "code": socket.close_code,
                        "reason": socket.close_reason})
            # The server now runs the closing handshake and reports websocket.disconnect;
            # a peer that never answers is dropped after close_timeout.
            await anyio.sleep(hub.config.connection.close_timeout)
            peer.cancel.cancel()
            return

    async def _send_batches(self, peer: _Peer, send: Send) -> None:
        """Send what the hub handed over (the writer task, or the reader for an answer to what
        it read); if the hub held output meanwhile, let it hand that over. One ASGI message
        per WebSocket message (ASGI has no batched send); the payload object is the core's."""
        peer.writing = True
        try:
            while peer.outbox and peer.action is not CloseAction.ABORT:
                batch, peer.outbox = peer.outbox, []
                for chunk in batch:
                    await send({"type": "websocket.send", "bytes": chunk})
                    peer.queued -= len(chunk)
        finally:
            peer.writing = False
        if peer.action is CloseAction.ABORT:
            peer.wake.set()
            return
        if peer.paused:
            peer.paused = False
            self._require_hub().resume_writing(peer.conn_id)
            self._after_core()
        if peer.action:
            peer.wake.set()

    def _forget(self, peer: _Peer) -> None:
        hub = self._hub
        if self._peers.pop(peer.conn_id, None) is None:
            return
        if hub is not None:
            hub.connection_lost(peer.conn_id, self._now())
            self._after_core()
        self._addresses.pop(peer.conn_id, None)
        if not self._peers and self._drained is not None:
            self._drained.set()

    # ------------------------------------------------------------------ plumbing

    def _require_hub(self) -> Hub:
        if self._hub is None:
            raise LocalProtocolError("the app has not started (no lifespan and no WebSocket "
                                     "yet): use `async with app:` or serve it first")
        return self._hub

    def _asgi_request(self, request: AuthRequest) -> ASGIAuthRequest:
        scope: Mapping[str, Any] = self._current_scope or {}
        return ASGIAuthRequest(hello=request.hello, path=request.path, headers=request.headers,
                               scope=scope, now=request.now, monotonic=request.monotonic,
                               refreshing=request.refreshing)

    def _authenticate(self, request: AuthRequest) -> AuthAccept | AuthRefuse:
        hook = self.options.authenticate
        assert hook is not None
        return hook(self._asgi_request(request))  # type: ignore[arg-type]

    def _verify_token(self, request: AuthRequest) -> AuthAccept | AuthRefuse:
        """``ServerOptions.jwt``: the token verified as on the native adapters; ``jwt_then``
        sees the :class:`ASGIAuthRequest` (scope, cookies, user) with the claims."""
        auth = self._auth
        assert auth is not None
        assert auth.hook is not None
        return auth.hook(self._asgi_request(request))  # type: ignore[arg-type]

    def _after_core(self) -> None:
        # A listener may call a command, which lands here again: the running call picks up
        # its output, so events keep their order. Events go out before the output is taken
        # (as on the native adapters): what a listener sends in answer leaves in the same
        # flush as the hub's own output.
        if self._busy:
            return
        hub = self._require_hub()
        peers = self._peers
        emit = self._emitter.emit
        logger, names = self._logger, self._addresses
        serializer = self.options.serializer
        link = self._engine_link
        inline = self._inline
        self._busy = True
        try:
            while True:
                if link is not None:
                    link.pump()
                events = hub.events_received()
                for event in events:
                    kind = type(event)
                    if kind is ClientMessage:  # messages are never logged
                        if serializer is RAW:
                            emit("message", event.session,  # type: ignore[attr-defined]
                                 event.payload, event.topic)  # type: ignore[attr-defined]
                        else:  # decoded, or an "error" for that message only
                            emit_server_event(emit, event, serializer)
                    else:
                        if kind is ClusterPresence:  # cluster_presence() awaits these too
                            self._answer_presence(event)  # type: ignore[arg-type]
                        write_log(logger, hub_log_entry(event, names))
                        emit_server_event(emit, event, serializer)
                out = hub.flush(self._now())
                for conn_id, chunks, action in out:
                    peer = peers.get(conn_id)
                    if peer is None:
                        continue
                    if chunks:
                        peer.outbox += chunks
                        peer.queued += len(chunks[0]) if len(chunks) == 1 else sum(
                            map(len, chunks))
                        if peer.queued > _OUTBOX_HIGH_WATER and not peer.paused:
                            # Held in the core from now until the outbox is sent (counted
                            # against outgoing_high_water meanwhile).
                            peer.paused = True
                            hub.pause_writing(conn_id)
                        if conn_id != inline:
                            peer.wake.set()
                    if action:
                        peer.action = max(peer.action, action)
                        peer.wake.set()
                if not out and not events:
                    break
        finally:
            self._busy = False
        deadline = hub.next_deadline()
        if deadline is not None and deadline < self._timer_at:
            self._timer_wake.set()

    async def _run_timer(self) -> None:
        hub = self._require_hub()
        self._timer_running = True
        try:
            while True:
                deadline = hub.next_deadline()
                self._timer_at = math.inf if deadline is None else deadline
                self._timer_wake = anyio.Event()
                with anyio.move_on_after(self._timer_at - self._now()):
                    await self._timer_wake.wait()
                if deadline is not None and self._now() >= deadline:
                    # Never let the core see time before the deadline it asked for.
                    hub.handle_timer(max(self._now(), deadline))
                    self._after_core()
        finally:
            self._timer_running = False
            self._timer_at = math.inf

    async def _timer_duty(self) -> None:
        """Without a lifespan host, the connections keep the hub's timer: one of them runs
        it; when its connection ends another takes over."""
        while not self._timer_hosted:
            if not self._timer_running:
                self._timer_free = free = anyio.Event()
                try:
                    await self._run_timer()
                finally:
                    free.set()
            else:
                free_event = self._timer_free
                if free_event is None:
                    return
                await free_event.wait()



# The commands are sigma_core.api.ServerCommands'; here the ones that touch the hub hop over to
# the event loop when called from one of its worker threads.
for _name in ServerCommands._HUB_COMMANDS:
    setattr(SigmaASGIApp, _name, _on_loop(getattr(ServerCommands, _name)))


def _loop_clock() -> Callable[[], float]:
    """The running loop's clock, as anyio.current_time reads it, without the per-call lookup
    (and, on the stdlib asyncio loop, without its Python method around time.monotonic)."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.current_time
    import asyncio

    loop = asyncio.get_running_loop()
    if type(loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


def _handshake_request(scope: Scope) -> HandshakeRequest:
    headers: list[tuple[str, str]] = []
    host = ""
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        if name == "host":
            host = value
        if name not in _HANDLED_HEADERS:
            headers.append((name, value))
    # The full request path: uvicorn, hypercorn and Starlette's Mount all keep the mount
    # prefix (root_path) in "path" itself.
    path = scope.get("path") or "/"
    query = scope.get("query_string", b"")
    if query:
        path += "?" + bytes(query).decode("latin-1")
    return HandshakeRequest(path=path, headers=tuple(headers),
                            subprotocols=tuple(scope.get("subprotocols") or ()), host=host)


async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
    """Refuse the upgrade: with its HTTP status when the server has the ASGI
    ``websocket.http.response`` extension, else with the 403 the server sends for a close
    before accept."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = reason.encode()
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": reason[:123]})

