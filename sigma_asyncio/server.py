"""``SigmaSocketServer`` on asyncio: an ``asyncio.Protocol`` per socket feeding one sans-IO hub.

Every call into the :class:`~sigma_core.hub.Hub` (bytes, socket end, timer, app command) is
followed by :meth:`SigmaSocketServer._after_core`: write what ``hub.flush(now)`` returns, dispatch
``hub.events_received()`` to the listeners, re-arm the one ``call_at`` timer. Backpressure is the
transport's: ``pause_writing``/``resume_writing`` go to the hub, which holds output meanwhile and
cuts a consumer that stays slow past ``outgoing_high_water``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import struct
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from sigma_core.api import EventEmitter, Listener, ServerOptions, emit_server_event
from sigma_core.engine import EngineLink
from sigma_core.errors import LocalProtocolError
from sigma_core.hub import ClientMessage, CloseAction, Hub, ServerStats, Session
from sigma_core.logs import format_peer, hub_log_entry, peer_host
from sigma_core.logs import write as write_log
from sigma_core.messages import StreamPosition

from ._entropy import SystemEntropy

__all__ = ["SigmaSocketServer"]

_log = logging.getLogger("sigma_asyncio.server")

ClientRef = Session | str
Exclude = ClientRef | Iterable[ClientRef] | None


class _Protocol(asyncio.Protocol):
    """One accepted socket. Moves bytes and transport state into the hub; nothing else."""

    __slots__ = ("_conn_id", "_server")

    def __init__(self, server: SigmaSocketServer) -> None:
        self._server = server
        self._conn_id = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        hub = server._require_hub()
        address = transport.get_extra_info("peername")
        self._conn_id = hub.open_connection(server._loop.time(), peer_host(address))
        server._transports[self._conn_id] = transport  # type: ignore[assignment]
        server._peers[self._conn_id] = format_peer(address)
        server._after_core()

    def data_received(self, data: bytes) -> None:
        # The per-read path: the hub exists (connection_made needed it); its bound methods and
        # the loop's clock are kept on the server, not looked up per read.
        server = self._server
        server._receive_data(self._conn_id, data, server._clock())
        server._after_core()

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        server._transports.pop(self._conn_id, None)
        server._require_hub().connection_lost(self._conn_id, server._loop.time())
        server._after_core()
        server._peers.pop(self._conn_id, None)
        if not server._transports and server._all_closed is not None:
            server._all_closed.set()

    def pause_writing(self) -> None:
        # Called from inside transport.write() (so from _after_core): no output to move.
        self._server._require_hub().pause_writing(self._conn_id)

    def resume_writing(self) -> None:
        self._server._require_hub().resume_writing(self._conn_id)
        self._server._after_core()


class SigmaSocketServer:
    """A SigmaSockets server on asyncio.

    ``SigmaSocketServer(ServerOptions(...))`` or ``SigmaSocketServer(host=..., port=..., ...)``
    (keywords override the fields of a given ``ServerOptions``). ``await start()`` /
    ``await stop()``, or ``async with server:``. Callbacks: ``on("connection", cb)`` and the
    others :func:`sigma_core.api.server_callbacks` names.
    """

    def __init__(self, options: ServerOptions | None = None, /, **overrides: Any) -> None:
        if options is None:
            options = ServerOptions(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **overrides)
        self.options = options
        self._logger = options.logger if options.logger is not None else _log
        self._emitter = EventEmitter(on_listener_error=self._report)
        self._hub: Hub | None = None
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._server: asyncio.Server | None = None
        self._transports: dict[int, asyncio.Transport] = {}
        #: conn_id -> the peer's address, for the log.
        self._peers: dict[int, str] = {}
        self._all_closed: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        #: Bound once per start(): the hub's receive_data and the loop's time (per read).
        self._receive_data: Any = None
        self._clock: Any = None
        self._busy = False
        self._running = False  # from start() until stop() has finished
        self._port = options.port
        #: The external engine's driver task and the link feeding it (None: in-memory engine).
        self._engine_link: EngineLink | None = None
        self._engine_task: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound port (the configured one before :meth:`start`)."""
        return self._port

    @property
    def hub(self) -> Hub | None:
        """The sans-IO hub (None before the first :meth:`start`)."""
        return self._hub

    async def start(self) -> None:
        """Bind and accept. After :meth:`stop`, starting again keeps the hub (sessions and
        history survive) and rebinds the same port.

        Raises:
            OSError: the address could not be bound (in use, not permitted).
        """
        if self._server is not None:
            return
        self._loop = loop = asyncio.get_running_loop()
        if self._hub is None:
            now = loop.time()
            self._hub = Hub(self.options.hub_config(wall_clock_offset=time.time() - now),
                            entropy=SystemEntropy(), now=now,
                            engine=self.options.external_engine())
        driver = self.options.engine
        if driver is not None and self._engine_task is None:
            self._engine_link = EngineLink(self._hub, driver, loop.time, self._after_core)
            self._engine_task = asyncio.ensure_future(driver.run(self._engine_link))
        self._receive_data, self._clock = self._hub.receive_data, loop.time
        self._server = await loop.create_server(
            lambda: _Protocol(self), self.options.host, self._port, ssl=self.options.ssl,
            # The TLS handshake is part of the handshake: bounded by the same timeout.
            ssl_handshake_timeout=self.options.handshake_timeout if self.options.ssl else None)
        self._port = self._server.sockets[0].getsockname()[1]
        self._running = True
        self._rearm()

    async def stop(self) -> None:
        """Graceful stop: no new sockets, every client gets Goodbye (with the
        ``shutdown_reconnect_after`` hint) and close 1001, spread over ``shutdown_spread``
        seconds; sockets still open after ``shutdown_timeout`` are aborted."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        hub = self._require_hub()
        hint = int(self.options.shutdown_reconnect_after * 1000)
        if self.options.shutdown_spread > 0:
            hub.drain(self._loop.time(), window=self.options.shutdown_spread,
                      reconnect_after_ms=hint)
        else:
            hub.shutdown(self._loop.time(), reconnect_after_ms=hint)
        self._after_core()
        if not await self._wait_closed(self.options.shutdown_timeout):
            for transport in list(self._transports.values()):
                _reset(transport)
            await self._wait_closed(1.0)
        await server.wait_closed()
        self._running = False
        task, self._engine_task = self._engine_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    async def _wait_closed(self, timeout: float) -> bool:
        if not self._transports:
            return True
        self._all_closed = event = asyncio.Event()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._all_closed = None
        return True

    async def __aenter__(self) -> SigmaSocketServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    # ------------------------------------------------------------------ callbacks

    def on(self, event: str, listener: Listener) -> Listener:
        """Register ``listener`` for ``event``; returns it (usable as a decorator)."""
        return self._emitter.on(event, listener)

    def off(self, event: str, listener: Listener) -> None:
        """Remove ``listener`` from ``event``."""
        self._emitter.off(event, listener)

    # ------------------------------------------------------------------ commands

    def send_to_client(self, client: ClientRef, data: bytes) -> bool:
        """Send to one client's inbox (replayed if it is away); False if no such session.

        Raises:
            LocalProtocolError: the server was never started, or the message is larger than
                ``max_message_size`` allows.
        """
        hub = self._require_hub()
        session_id = _id(client)
        if hub.get_session(session_id) is None:
            return False
        hub.send_to(session_id, data, self._loop.time())
        self._after_core()
        return True

    def broadcast(self, data: bytes, exclude: Exclude = None) -> None:
        """Send to every client except ``exclude`` (an id, a session, or several).

        Raises:
            LocalProtocolError: the server was never started, or the message is larger than
                ``max_message_size`` allows.
        """
        self._require_hub().broadcast(data, self._loop.time(), exclude=_ids(exclude))
        self._after_core()

    def publish(self, topic: str, data: bytes, exclude: Exclude = None) -> StreamPosition:
        """Publish to a topic's subscribers; returns the message's position.

        Raises:
            LocalProtocolError: the server was never started; ``topic`` is empty, longer than
                256 bytes or reserved (starts with ``$``, other than ``$all``); or the message
                is larger than ``max_message_size`` allows.
        """
        position = self._require_hub().publish(topic, data, self._loop.time(),
                                               exclude=_ids(exclude))
        self._after_core()
        return position

    def subscribe(self, client: ClientRef, topic: str) -> None:
        """Subscribe a client to ``topic`` from the server side.

        Raises:
            LocalProtocolError: the server was never started; no such session; ``topic`` is
                empty, too long or reserved; or the session already holds ``max_topics_per_session``
                topics.
        """
        self._require_hub().subscribe(_id(client), topic, self._loop.time())
        self._after_core()

    def unsubscribe(self, client: ClientRef, topic: str) -> None:
        """Remove a client's subscription to ``topic``.

        Raises:
            LocalProtocolError: the server was never started, no such session, or ``topic`` is
                reserved.
        """
        self._require_hub().unsubscribe(_id(client), topic, self._loop.time())
        self._after_core()

    def watch(self, topic: str, history: int = 0) -> None:
        """Subscribe the app to ``topic`` from the server side: every message published to it,
        on this node or (cluster engine) any node, fires ``topic_message(TopicMessage)`` in
        position order, each once; the last ``history`` ones first (``history`` True), then
        ``topic_watched(TopicWatched)``, then live ones (see ``Hub.watch``).

        Raises:
            LocalProtocolError: the server was never started, ``topic`` is empty, too long or
                reserved, or ``history`` is negative.
        """
        self._require_hub().watch(topic, self._loop.time(), history=history)
        self._after_core()

    def unwatch(self, topic: str) -> None:
        """Stop watching ``topic`` (a topic not watched is ignored).

        Raises:
            LocalProtocolError: the server was never started.
        """
        self._require_hub().unwatch(topic, self._loop.time())
        self._after_core()

    def request_presence(self, topic: str) -> None:
        """Ask for ``topic``'s subscribers on every node: the answer fires
        ``cluster_presence(ClusterPresence)`` (at once on the in-memory engine).

        Raises:
            LocalProtocolError: the server was never started.
        """
        self._require_hub().request_presence(topic, self._loop.time())
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
        session_id = _id(client)
        if hub.get_session(session_id) is not None:
            hub.disconnect(session_id, self._loop.time(), reason=reason, end_session=end_session)
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
        return self._require_hub().stats(self._loop.time())

    # ------------------------------------------------------------------ plumbing

    def _require_hub(self) -> Hub:
        if self._hub is None:
            raise LocalProtocolError("the server has not been started")
        return self._hub

    def _after_core(self) -> None:
        # A listener may call a command, which lands here again: the running call picks up
        # its output, so events keep their order. Events go out before the output is written:
        # what a listener sends in answer then leaves in the same flush as the hub's own
        # output (one write per read for an echo); a connection's bytes keep their order
        # either way (the core queues them per connection).
        if self._busy:
            return
        hub = self._require_hub()
        transports = self._transports
        emit = self._emitter.emit
        logger, peers = self._logger, self._peers
        link = self._engine_link
        self._busy = True
        try:
            while True:
                if link is not None:
                    link.pump()
                events = hub.events_received()
                for event in events:
                    if type(event) is not ClientMessage:  # messages are never logged
                        write_log(logger, hub_log_entry(event, peers))
                    emit_server_event(emit, event)
                out = hub.flush(self._loop.time())
                for conn_id, chunks, action in out:
                    transport = transports.get(conn_id)
                    if transport is None:
                        continue
                    if chunks:
                        if len(chunks) == 1:
                            transport.write(chunks[0])
                        else:
                            transport.writelines(chunks)
                    if action is CloseAction.ABORT:
                        _reset(transport)
                    elif action:
                        transport.close()
                if not out and not events:
                    break
        finally:
            self._busy = False
        self._rearm()

    def _rearm(self) -> None:
        if not self._running or self._hub is None:
            return
        deadline = self._hub.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        # The loop may fire a hair early (clock resolution): never let the core see time
        # before the deadline it asked for, or it would ask again at once.
        when = self._timer_at or 0.0
        self._timer = self._timer_at = None
        self._require_hub().handle_timer(max(self._loop.time(), when))
        self._after_core()

    def _report(self, exc: BaseException) -> None:
        self._loop.call_exception_handler({
            "message": "exception in a SigmaSocketServer listener", "exception": exc})


_LINGER_ZERO = struct.pack("ii", 1, 0)


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP reset (SO_LINGER 0), not a FIN behind whatever the kernel still holds
    for the peer: a slow consumer would otherwise read up to the whole socket buffer of stale
    data before learning it was cut, and the kernel would keep that buffer meanwhile."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


def _id(client: ClientRef) -> str:
    return client if isinstance(client, str) else client.id


def _ids(exclude: Exclude) -> frozenset[str]:
    if exclude is None:
        return frozenset()
    if isinstance(exclude, str | Session):
        return frozenset((_id(exclude),))
    return frozenset(_id(c) for c in exclude)
