"""``SigmaSocketServer`` on asyncio: an ``asyncio.Protocol`` per socket feeding one sans-IO hub.

Every call into the :class:`~sigma_core.hub.Hub` (bytes, socket end, timer, app command) is
followed by :meth:`SigmaSocketServer._after_core`, which is the core's compiled
:class:`~sigma_core.pump.ServerPump`: dispatch ``hub.events_received()`` to the listeners, write
what ``hub.flush(now)`` returns, keep the one ``call_at`` timer no later than the hub's next
deadline. A read is one call: ``pump.data_received(conn_id, data)``. Backpressure is the
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
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sigma_core.api import EventEmitter, ServerCommands, ServerOptions, server_event_dispatcher
from sigma_core.engine import EngineLink
from sigma_core.hub import CloseAction, Hub
from sigma_core.logs import PeerNames, peer_host, peer_port
from sigma_core.pump import ServerPump

from ._entropy import SystemEntropy
from ._heap import heap_trimmer

if TYPE_CHECKING:
    from sigma_auth import ServerAuth

__all__ = ["SigmaSocketServer"]

_log = logging.getLogger("sigma_asyncio.server")

class _Protocol(asyncio.Protocol):
    """One accepted socket. Moves bytes and transport state into the hub; nothing else."""

    __slots__ = ("_conn_id", "_host", "_port", "_server")

    def __init__(self, server: SigmaSocketServer) -> None:
        self._server = server
        self._conn_id = 0
        #: The peer's address for the log (PeerNames formats it when a line needs it).
        self._host = ""
        self._port: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        hub = server._require_hub()
        address = transport.get_extra_info("peername")
        self._host, self._port = peer_host(address), peer_port(address)
        self._conn_id = hub.open_connection(server._loop.time(), self._host)
        server._peers[self._conn_id] = transport  # type: ignore[assignment]
        server._after_core()

    def data_received(self, data: bytes) -> None:
        # The per-read path: one call into the compiled pump (bound once per start()).
        self._server._data_received(self._conn_id, data)

    def connection_lost(self, exc: Exception | None) -> None:
        server = self._server
        server._peers.pop(self._conn_id, None)
        server._leaving[self._conn_id] = self  # its address, for the log of its end
        server._require_hub().connection_lost(self._conn_id, server._loop.time())
        server._after_core()
        server._leaving.pop(self._conn_id, None)
        if not server._peers and server._all_closed is not None:
            server._all_closed.set()

    def pause_writing(self) -> None:
        # Called from inside transport.write() (so from _after_core): no output to move.
        self._server._require_hub().pause_writing(self._conn_id)

    def resume_writing(self) -> None:
        self._server._require_hub().resume_writing(self._conn_id)
        self._server._after_core()


class _BufferedProtocol(_Protocol, asyncio.BufferedProtocol):
    """:class:`_Protocol` reading into the server's one receive buffer: on asyncio's own event
    loops. Their ``data_received`` path allocates a ``max_size`` (256 KiB) bytes object per
    read, which glibc serves with ``mmap`` and shrinks with ``mremap`` and ``munmap``: three
    system calls and a page fault per read, most of the plain loop's fixed cost per read with
    one message per read. ``recv_into`` the shared buffer instead, then one copy of what was
    read. The buffer is shared by every connection of the server: asyncio calls
    ``get_buffer``, reads and calls ``buffer_updated`` in one go, and the core keeps no
    reference to what it is handed (it gets ``bytes``)."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._server._read_view

    def buffer_updated(self, nbytes: int) -> None:
        server = self._server
        server._data_received(self._conn_id, bytes(server._read_view[:nbytes]))


class SigmaSocketServer(ServerCommands):
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
        self._emitter = EventEmitter(logger=self._logger, owner="SigmaSocketServer")
        self._hub: Hub | None = None
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._server: asyncio.Server | None = None
        #: conn_id -> the connection's transport.
        self._peers: dict[int, asyncio.Transport] = {}
        #: conn_id -> a connection whose socket is gone, while its end is logged.
        self._leaving: dict[int, _Protocol] = {}
        #: conn_id -> the peer's address, for the log.
        self._addresses = PeerNames(self._address_of)
        self._all_closed: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: The hub's per-read path and after-core loop (sigma_core.pump), from the first start().
        self._pump: ServerPump | None = None
        #: Bound once per start(): the pump's data_received (per read).
        self._data_received: Any = None
        #: The receive buffer of _BufferedProtocol (asyncio's own loops), from start().
        self._read_view = memoryview(b"")
        self._running = False  # from start() until stop() has finished
        self._port = options.port
        #: Keeps JWKS keys fresh (ServerOptions.jwt with a jwks_url), for the hub's life.
        self._jwks_task: asyncio.Task[None] | None = None
        self._auth: ServerAuth | None = None
        #: The external engine's driver task and the link feeding it (None: in-memory engine).
        self._engine_link: EngineLink | None = None
        self._engine_task: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound port (the configured one before :meth:`start`)."""
        return self._port

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
            if self.options.jwt is not None:
                from sigma_auth import server_auth
                self._auth = server_auth(self.options)
            hook = self._auth.hook if self._auth is not None else None
            self._hub = Hub(self.options.hub_config(wall_clock_offset=time.time() - now,
                                                    authenticate=hook),
                            entropy=SystemEntropy(), now=now,
                            engine=self.options.external_engine())
            self._hub.heap_trim = heap_trimmer()
        driver = self.options.engine
        if driver is not None and self._engine_task is None:
            self._engine_link = EngineLink(self._hub, driver, loop.time, self._after_core)
            self._engine_task = asyncio.ensure_future(driver.run(self._engine_link))
        serializer = self.options.serializer
        self._pump = ServerPump(
            self._hub, emitter=self._emitter, peers=self._peers,
            dispatch=server_event_dispatcher(self._emitter, self._logger, self._addresses,
                                             serializer),
            link=self._engine_link, clock=loop.time, arm=self._arm, close=_act,
            serializer=serializer)
        self._data_received = self._pump.data_received
        # The commands' per-message calls (send_to_client: the clock, then the pump) go
        # straight to the loop's clock and the compiled pump, without a Python frame each.
        self._now = loop.time  # type: ignore[method-assign]
        self._after_core = self._pump.after_core  # type: ignore[method-assign]
        if type(self).send_to_client is ServerCommands.send_to_client:  # not overridden
            self.send_to_client = self._pump.send_to_client  # type: ignore[method-assign]
        protocol: type[_Protocol] = _Protocol
        if _buffered_reads(loop):
            protocol = _BufferedProtocol
            if not self._read_view:
                self._read_view = memoryview(bytearray(_READ_BUFFER))
        self._server = await loop.create_server(
            lambda: protocol(self), self.options.host, self._port, ssl=self.options.ssl,
            # The TLS handshake is part of the handshake: bounded by the same timeout.
            ssl_handshake_timeout=self.options.handshake_timeout if self.options.ssl else None)
        self._port = self._server.sockets[0].getsockname()[1]
        if self._auth is not None and self._auth.jwks is not None:
            self._jwks_task = loop.create_task(self._auth.refresh_keys(
                clock=loop.time, sleep=asyncio.sleep, in_thread=asyncio.to_thread,
                logger=self._logger))
        self._running = True
        self._pump.running = True
        self._after_core()

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
            for transport in list(self._peers.values()):
                _reset(transport)
            await self._wait_closed(self.options.close_timeout)
        await server.wait_closed()
        if self._jwks_task is not None:
            self._jwks_task.cancel()
            self._jwks_task = None
        self._running = False
        if self._pump is not None:
            self._pump.running = False
        task, self._engine_task = self._engine_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pump is not None:
            self._pump.disarmed()

    async def _wait_closed(self, timeout: float) -> bool:
        if not self._peers:
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

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> float:
        return self._loop.time()

    def _address_of(self, conn_id: int) -> tuple[str, int | None] | None:
        transport = self._peers.get(conn_id)
        protocol = transport.get_protocol() if transport is not None \
            else self._leaving.get(conn_id)
        if not isinstance(protocol, _Protocol):
            return None
        return protocol._host, protocol._port

    def _after_core(self) -> None:
        # Events, output and the timer: the compiled pump (sigma_core.pump.ServerPump). A
        # listener's command that lands here while it runs is picked up by the running call.
        pump = self._pump
        if pump is None:
            self._require_hub()  # never started: the command's error
            return
        pump.after_core()

    def _arm(self, when: float) -> None:
        # The pump asks only for an earlier time than the one set (see ServerPump).
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        assert self._pump is not None
        self._pump.on_timer()


#: The receive buffer on asyncio's own loops (their transports' own read size, ``max_size``).
_READ_BUFFER = 256 * 1024


def _buffered_reads(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether sockets read into the server's buffer (:class:`_BufferedProtocol`): on asyncio's
    own loops. uvloop hands ``data_received`` a bytes object of the size read, which costs
    less than the two Python calls of ``get_buffer`` and ``buffer_updated``."""
    return type(loop).__module__.startswith("asyncio.")


def _act(transport: asyncio.Transport, action: CloseAction) -> None:
    """What the hub's flush says to do with a socket once its bytes are written."""
    if action is CloseAction.ABORT:
        _reset(transport)
    else:
        transport.close()


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

