"""``SigmaSocketServer``: the hub (:class:`sigma_core.hub.Hub`) served on trio sockets.

One task reads every plain-TCP connection: the sockets sit in one level-triggered epoll set of
the server's own (:class:`_Reactor`), which trio waits on as a single file descriptor; each wake-up
reads every ready socket once and feeds :meth:`Hub.receive_data`, so a connection costs no task, no
coroutine and no trio registration of its own, and one wake-up serves every connection that is
ready. (Where ``select.epoll`` is missing, and over TLS, each connection has its own task.) Output
is written by
whichever task produced it, straight to the socket (a plain TCP socket is owned as a non-blocking
stdlib socket): nothing that produces output awaits, and a broadcast is one ``send`` per socket.
What the kernel does not take goes to a writer task started for that connection only then;
while it holds more than 64 KiB the hub is told to hold the connection's output
(``pause_writing``), so a slow consumer piles up in the core, which cuts it past
``outgoing_high_water``. Over TLS every write goes through that writer (``SSLStream.send_all``).
Aborting or closing a connection closes its socket, which wakes its tasks. One timer task wakes
the hub at :meth:`Hub.next_deadline`. The loop after every input (events to the listeners, output
to the sockets, the timer kept no later than the hub's deadline) is the core's compiled
:class:`~sigma_core.pump.ServerPump`, shared with sigma_asyncio.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from sigma_asyncio._heap import heap_trimmer
from sigma_core.api import EventEmitter, ServerCommands, ServerOptions, server_event_dispatcher
from sigma_core.engine import EngineLink
from sigma_core.errors import LocalProtocolError
from sigma_core.hub import CloseAction, Hub
from sigma_core.logs import ERROR, PeerNames, peer_host, peer_port
from sigma_core.pump import ServerPump

from ._entropy import SystemEntropy
from ._nursery import OwnNursery

if TYPE_CHECKING:
    from sigma_auth import ServerAuth

__all__ = ["SigmaSocketServer"]

_log = logging.getLogger("sigma_trio.server")

#: Bytes handed to a writer and not yet written past which the hub holds the connection's output.
_OUTBOX_HIGH_WATER = 64 * 1024
_RECEIVE_SIZE = 65536
#: accept(2) errors that mean "overloaded": wait and accept again (as trio.serve_listeners does).
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: One reader task for every plain socket needs epoll (Linux); elsewhere a task per connection.
_HAVE_EPOLL = hasattr(select, "epoll") and hasattr(os, "eventfd")
#: Passes over the ready sockets per trio wake-up of the reader: after a pass it asks its epoll set
#: again (timeout 0) and reads what arrived meanwhile, without going through trio's run loop, up
#: to this many passes and while less than ``_BYTES_PER_WAKEUP`` was read since the wake-up; then
#: it waits through trio again, which lets the other tasks run (and a cancellation arrive).
_PASSES_PER_WAKEUP = 8
_BYTES_PER_WAKEUP = 64 * 1024


def _pump_clock() -> tuple[Callable[[], float], float]:
    """trio's clock for the pump, as ``(clock, offset)``: ``clock() + offset`` is
    ``trio.current_time()``, read in one C call where it can be. trio's default clock is
    ``time.perf_counter()`` plus a fixed offset, and ``trio.current_time()`` reaches it through
    three Python frames, twice per echoed message (a read, a send); with that clock (checked by
    reading both) the pump reads ``perf_counter`` and adds the offset, so the hub's times stay
    trio's. Any other clock (``trio.testing.MockClock``) is read as is."""
    clock = trio.lowlevel.current_clock()
    offset = getattr(clock, "offset", None)
    if type(clock).__name__ == "SystemClock" and isinstance(offset, float):
        before = time.perf_counter()
        now = clock.current_time()
        if before + offset <= now <= time.perf_counter() + offset:
            return time.perf_counter, offset
    return trio.current_time, 0.0


async def _in_thread(call: Any) -> Any:
    # abandon_on_cancel: stopping the server does not wait for a hung JWKS fetch.
    return await trio.to_thread.run_sync(call, abandon_on_cancel=True)


_LINGER_ZERO = struct.pack("ii", 1, 0)


def _peer_address(stream: trio.abc.Stream) -> tuple[str, int | None]:
    """(host, port): the host for the hub's per-peer limits, both for the log."""
    # An SSLStream wraps the SocketStream that has the socket.
    inner = getattr(stream, "transport_stream", stream)
    sock = getattr(inner, "socket", None)
    try:
        address = sock.getpeername() if sock is not None else None
    except OSError:  # already gone
        address = None
    return peer_host(address), peer_port(address)


def _recv(sock: socket.socket, buffer: memoryview) -> bytes | None:
    """What the socket holds, or None if nothing yet. The exception stays in this short-lived
    frame: raised in the connection's task, it would give that long-lived frame a frame object
    (a quarter KiB per connection)."""
    try:
        return buffer[:sock.recv_into(buffer)].tobytes()
    except BlockingIOError:
        return None


class _Peer:
    """One accepted connection. Output goes straight to the socket with a ``send`` that does not
    wait; only what the kernel does not take waits in ``outbox`` for a writer task, started
    then and gone once the outbox is empty. Over TLS every write goes through that task."""

    __slots__ = ("closed", "closing", "host", "id", "outbox", "paused", "port", "queued",
                 "reactor", "sock", "tls", "writing")

    def __init__(self, conn_id: int, sock: socket.socket | None,
                 tls: trio.SSLStream[trio.SocketStream] | None) -> None:
        self.id = conn_id
        #: The reactor that reads this socket (None: the connection's own task reads it).
        self.reactor: _Reactor | None = None
        #: The plain TCP socket, non-blocking (None over TLS).
        self.sock = sock
        self.tls = tls
        if sock is not None:
            sock.setblocking(False)
        #: Made when the kernel first leaves something over, gone when the writer is done
        #: (None meanwhile: most connections never need one; a list is 56 bytes each).
        self.outbox: list[bytes] | None = None
        #: Bytes in the outbox plus the batch being written.
        self.queued = 0
        self.paused = False
        #: The hub said close after writing what is queued.
        self.closing = False
        #: A writer task owns the output until the outbox is empty.
        self.writing = False
        self.closed = False
        #: The peer's address for the log (PeerNames formats it when a line needs it).
        self.host = ""
        self.port: int | None = None

    def close(self, *, reset: bool = False) -> None:
        """Close the socket now; a task waiting on it wakes with ``ClosedResourceError``.
        ``reset``: with a TCP reset (SO_LINGER 0), not a FIN queued behind what the kernel
        still holds: a cut slow consumer would otherwise read up to a whole socket buffer of
        stale data before learning of the cut, and the kernel would keep that buffer."""
        if self.closed:
            return
        self.closed = True
        sock = self.sock if self.sock is not None else (
            self.tls.transport_stream.socket if self.tls is not None else None)
        if sock is None:
            return
        if reset:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        if self.reactor is not None:
            self.reactor.forget(self)  # before the descriptor goes (and may be reused)
        if self.sock is not None:
            trio.lowlevel.notify_closing(self.sock)  # wakes a writer task waiting on it
        sock.close()


class _Reactor:
    """The reads of every plain-TCP connection, for one task (:meth:`SigmaSocketServer._react`).

    The sockets are in an epoll set of our own, level-triggered, registered once when accepted:
    trio waits on the set's descriptor (one ``epoll_ctl`` and one wake-up per pass, whatever the
    number of ready connections), then ``poll(0)`` says which sockets are ready. A socket closed
    anywhere (:meth:`_Peer.close`) leaves the set at once and is queued in ``ended``; a close
    made while the task waits wakes it through an ``eventfd`` in the same set, so the
    connection's end reaches the hub without a task per connection to notice it."""

    __slots__ = ("by_fd", "ended", "epoll", "waiting", "wake_fd", "woken")

    def __init__(self) -> None:
        self.epoll = select.epoll()
        #: Written to wake the task when a connection ends while it waits.
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.epoll.register(self.wake_fd, select.EPOLLIN)
        #: descriptor -> the connection reading from it.
        self.by_fd: dict[int, _Peer] = {}
        #: Connections closed and not yet reported to the hub, in the order they closed.
        self.ended: list[_Peer] = []
        #: The task is parked on the set (a close must wake it).
        self.waiting = False
        #: The eventfd holds a wake-up not yet read.
        self.woken = False

    def add(self, peer: _Peer) -> None:
        sock = peer.sock
        assert sock is not None
        fd = sock.fileno()
        self.by_fd[fd] = peer
        self.epoll.register(fd, select.EPOLLIN)
        peer.reactor = self

    def forget(self, peer: _Peer) -> None:
        sock = peer.sock
        assert sock is not None
        fd = sock.fileno()
        if self.by_fd.get(fd) is peer:
            del self.by_fd[fd]
            with suppress(OSError, ValueError):
                self.epoll.unregister(fd)
        self.ended.append(peer)
        if self.waiting and not self.woken:
            self.woken = True
            os.eventfd_write(self.wake_fd, 1)

    def close(self) -> None:
        self.epoll.close()
        os.close(self.wake_fd)


class SigmaSocketServer(OwnNursery, ServerCommands):
    """A SigmaSockets server. ``SigmaSocketServer(ServerOptions(...))`` or
    ``SigmaSocketServer(host=..., port=..., **options)`` (keywords override ``options``).

    Run it with ``async with server:`` (serves in a nursery of its own until the block ends,
    then stops gracefully) or ``port = await nursery.start(server.serve)`` and
    ``await server.stop()``. A stopped server can serve again; it keeps its sessions (a client
    resumes) and its port. The server belongs to one ``trio.run``.
    """

    def __init__(self, options: ServerOptions | None = None, /, **overrides: Any) -> None:
        if options is None:
            options = ServerOptions(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **overrides)
        self.options = options
        self._port = options.port
        self._logger = options.logger if options.logger is not None else _log
        self._emitter = EventEmitter(logger=self._logger, owner="SigmaSocketServer")
        self._hub: Hub | None = None
        #: conn_id -> the connection's socket and output state.
        self._peers: dict[int, _Peer] = {}
        #: conn_id -> a connection whose socket is gone, while its end is logged.
        self._leaving: dict[int, _Peer] = {}
        #: conn_id -> the peer's address, for the log.
        self._addresses = PeerNames(self._address_of)
        self._timer = trio.CancelScope()
        #: The hub's after-core loop and timer keeping (sigma_core.pump), from the first serve().
        self._pump: ServerPump | None = None
        self._nursery: trio.Nursery | None = None
        self._accept_scope = trio.CancelScope()
        self._drained = trio.Event()
        self._stopped = trio.Event()
        self._cm: AbstractAsyncContextManager[trio.Nursery] | None = None
        #: Every plain socket reads into this buffer, copied out at once: no 64 KiB allocation
        #: per read, cut to size after.
        self._receive_buffer = memoryview(bytearray(_RECEIVE_SIZE))
        #: ServerOptions.jwt set up (its hook, and its JWKS keys refreshed while serving).
        self._auth: ServerAuth | None = None
        #: Feeds the external engine's driver (None: in-memory engine).
        self._engine_link: EngineLink | None = None
        #: Reads the plain-TCP connections while serving (None: not serving, or no epoll here).
        self._reactor: _Reactor | None = None

    # ------------------------------------------------------------------ running

    @property
    def port(self) -> int:
        """The bound port (the configured one before the first :meth:`serve`)."""
        return self._port

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
                    ) -> None:
        """Bind, report the bound port through ``task_status`` and serve until :meth:`stop`
        (or cancellation, which drops every connection at once).

        Raises:
            LocalProtocolError: this server is already serving.
            OSError: the address could not be bound (in use, not permitted).
        """
        if self._nursery is not None:
            raise LocalProtocolError("this SigmaSocketServer is already serving")
        hub = self._hub
        if hub is None:
            now = trio.current_time()
            if self.options.jwt is not None:
                from sigma_auth import server_auth
                self._auth = server_auth(self.options)
            hook = self._auth.hook if self._auth is not None else None
            hub = self._hub = Hub(self.options.hub_config(wall_clock_offset=time.time() - now,
                                                          authenticate=hook),
                                  entropy=SystemEntropy(), now=now,
                                  engine=self.options.external_engine())
            hub.heap_trim = heap_trimmer()
        driver = self.options.engine
        if driver is not None and self._engine_link is None:
            self._engine_link = EngineLink(hub, driver, trio.current_time, self._after_core)
        options = self.options
        if self._pump is None:
            clock, offset = _pump_clock()
            self._pump = ServerPump(
                hub, emitter=self._emitter, peers=self._peers,
                dispatch=server_event_dispatcher(self._emitter, self._logger, self._addresses,
                                                 options.serializer),
                link=self._engine_link, clock=clock, clock_offset=offset, arm=self._arm,
                deliver=self._deliver, serializer=options.serializer)
        # The commands' per-message calls (send_to_client: the clock, then the pump) go
        # straight to trio's clock and the compiled pump, without a Python frame each.
        self._now = trio.current_time  # type: ignore[method-assign]
        self._after_core = self._pump.after_core  # type: ignore[method-assign]
        if type(self).send_to_client is ServerCommands.send_to_client:  # not overridden
            self.send_to_client = self._pump.send_to_client  # type: ignore[method-assign]
        tcp = await trio.open_tcp_listeners(self._port, host=options.host)
        listeners: list[trio.abc.Listener[Any]] = list(tcp)
        if options.ssl is not None:
            listeners = [trio.SSLListener(listener, options.ssl, https_compatible=True)
                         for listener in tcp]
        self._port = tcp[0].socket.getsockname()[1]
        self._stopped = trio.Event()
        self._accept_scope = trio.CancelScope()
        reactor = self._reactor = _Reactor() if _HAVE_EPOLL else None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._run_timer, self._pump)
                if reactor is not None:
                    nursery.start_soon(self._react, reactor)
                if self._auth is not None and self._auth.jwks is not None:
                    nursery.start_soon(partial(
                        self._auth.refresh_keys, clock=trio.current_time, sleep=trio.sleep,
                        in_thread=_in_thread, logger=self._logger))
                if self._engine_link is not None:
                    nursery.start_soon(self._run_engine, self._engine_link)
                nursery.start_soon(self._accept, listeners, nursery)
                task_status.started(self._port)
        finally:
            self._nursery = None
            self._reactor = None
            if reactor is not None:
                reactor.close()
            self._stopped.set()
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def stop(self) -> None:
        """Graceful stop: stop accepting, send every client Goodbye (with the reconnect hint
        ``shutdown_reconnect_after``) and close 1001, spread over ``shutdown_spread`` seconds,
        wait up to ``shutdown_timeout`` for the sockets to close, then drop the rest."""
        nursery = self._nursery
        if nursery is None:
            return
        self._accept_scope.cancel()
        hub = self._require_hub()
        hint = int(self.options.shutdown_reconnect_after * 1000)
        if self.options.shutdown_spread > 0:
            hub.drain(trio.current_time(), window=self.options.shutdown_spread,
                      reconnect_after_ms=hint)
        else:
            hub.shutdown(trio.current_time(), reconnect_after_ms=hint)
        self._after_core()
        if self._peers:
            self._drained = trio.Event()
            with trio.move_on_after(self.options.shutdown_timeout):
                await self._drained.wait()
        for peer in list(self._peers.values()):  # still open after the timeout: reset them
            peer.close(reset=True)
        nursery.cancel_scope.cancel()
        await self._stopped.wait()

    async def _run_engine(self, link: EngineLink) -> None:
        await link.driver.run(link)

    async def _main(self, *, task_status: Any) -> None:
        await self.serve(task_status=task_status)

    async def _end(self) -> None:
        await self.stop()

    # ------------------------------------------------------------------ I/O

    def _now(self) -> float:
        return trio.current_time()

    def _address_of(self, conn_id: int) -> tuple[str, int | None] | None:
        peer = self._peers.get(conn_id) or self._leaving.get(conn_id)
        return None if peer is None else (peer.host, peer.port)

    def _after_core(self) -> None:
        """Fire the callbacks, write what the hub wrote, keep the timer: the compiled pump
        (sigma_core.pump.ServerPump). A callback that calls a command re-enters here: the
        running call loops instead."""
        pump = self._pump
        if pump is None:
            self._require_hub()  # never served: the command's error
            return
        pump.after_core()

    def _deliver(self, peer: _Peer, chunks: list[bytes], action: CloseAction) -> None:
        """One connection's part of a flush: write ``chunks``, then close as ``action`` says."""
        if peer.closed:
            return
        if action is CloseAction.ABORT:
            peer.close(reset=True)  # now, unwritten bytes and all
            return
        if chunks:
            sock = peer.sock
            if sock is not None and not peer.writing and len(chunks) == 1:
                # The common case, inline (a Python frame less per message): one chunk, and the
                # kernel takes it all. The same send as _write's, written twice on purpose (the
                # duplicates tool lists the pair); change both together.
                data = chunks[0]
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    peer.close()  # broken: the reader wakes and reports the loss
                    return
                if sent != len(data):
                    self._queue(peer, data[sent:])
            else:
                self._write(peer, chunks)
        if action and not peer.closing:
            # Once all is written the server closes first (RFC 6455 §7.1.1): now, or by the
            # writer task (which also sends TLS close_notify).
            peer.closing = True
            if peer.tls is None and not peer.writing:
                peer.close()
            elif not peer.writing:
                self._start_writer(peer)

    def _arm(self, when: float) -> None:
        # The pump asks only for an earlier time than the one set (see ServerPump).
        self._timer.deadline = when

    def _write(self, peer: _Peer, chunks: list[bytes]) -> None:
        """Send at once what the socket takes; queue the rest for a writer task."""
        if peer.writing:
            assert peer.outbox is not None
            peer.outbox.extend(chunks)
            peer.queued += sum(map(len, chunks))
        else:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            sock = peer.sock
            if sock is not None:
                try:
                    sent = sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    peer.close()  # broken: the reader wakes and reports the loss
                    return
                if sent == len(data):
                    return
                data = data[sent:]
            self._queue(peer, data)
            return
        self._check_high_water(peer)

    def _queue(self, peer: _Peer, data: bytes) -> None:
        """What the kernel did not take: to a writer task, started now."""
        peer.outbox = [data]
        peer.queued += len(data)
        self._start_writer(peer)
        self._check_high_water(peer)

    def _check_high_water(self, peer: _Peer) -> None:
        if peer.queued > _OUTBOX_HIGH_WATER and not peer.paused:
            peer.paused = True
            self._require_hub().pause_writing(peer.id)

    def _start_writer(self, peer: _Peer) -> None:
        assert self._nursery is not None
        peer.writing = True
        if peer.outbox is None:  # (a TLS close with nothing left to write)
            peer.outbox = []
        self._nursery.start_soon(self._write_loop, peer)

    async def _run_timer(self, pump: ServerPump) -> None:
        pump.running = True
        pump.disarmed()
        pump.after_core()  # arms the timer at the hub's deadline
        try:
            while True:
                self._timer = trio.CancelScope(deadline=pump.armed_at)
                with self._timer:
                    await trio.sleep_forever()
                pump.on_timer()
        finally:
            pump.running = False

    async def _accept(self, listeners: list[trio.abc.Listener[Any]],
                      nursery: trio.Nursery) -> None:
        with self._accept_scope:
            async with trio.open_nursery() as accepting:
                for listener in listeners:
                    accepting.start_soon(self._accept_one, listener, nursery)

    async def _accept_one(self, listener: trio.abc.Listener[Any], nursery: trio.Nursery) -> None:
        # trio.serve_listeners, less its wrapper task frame per connection.
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                self._logger.log(ERROR, "accept failed (%s); retrying in 0.1 s",
                                 os.strerror(exc.errno))
                await trio.sleep(0.1)
            else:
                reactor = self._reactor
                if reactor is not None and isinstance(stream, trio.SocketStream):
                    self._open_plain(stream, reactor)
                else:
                    nursery.start_soon(self._handle, stream, name="sigma_trio connection")

    def _open_plain(self, stream: trio.SocketStream, reactor: _Reactor) -> None:
        """A plain-TCP connection, read by the reactor's task from now on."""
        hub = self._require_hub()
        host, port = _peer_address(stream)
        # Own the stdlib socket, so that any task can write to it without awaiting.
        sock = socket.socket(fileno=stream.socket.detach())
        peer = _Peer(hub.open_connection(trio.current_time(), host), sock, None)
        peer.host, peer.port = host, port
        self._peers[peer.id] = peer
        reactor.add(peer)
        self._after_core()

    async def _react(self, reactor: _Reactor) -> None:
        """Read every ready plain socket once per pass (level-triggered: what a read leaves is
        there on the next pass, after the other connections), and report the connections that
        ended to the hub. After a pass the set is asked again at once (``epoll_wait`` with
        timeout 0): what arrived meanwhile is read without a trio wake-up (one scheduler pass,
        an ``epoll_ctl`` and an ``epoll_wait`` of trio's), up to ``_PASSES_PER_WAKEUP`` passes
        and ``_BYTES_PER_WAKEUP`` bytes (the first pass reads every ready socket once, whatever
        it reads); then, or when nothing is ready, the task waits through trio, so the other
        tasks run and a cancellation arrives. Cancelled (the server stops), it drops the
        connections left."""
        pump = self._pump
        assert pump is not None
        by_fd = reactor.by_fd
        get_peer = by_fd.get
        ended = reactor.ended
        poll = reactor.epoll.poll
        epoll_fd = reactor.epoll.fileno()
        wake_fd = reactor.wake_fd
        buffer = self._receive_buffer
        data_received = pump.data_received
        wait_readable = trio.lowlevel.wait_readable
        passes = range(_PASSES_PER_WAKEUP)
        budget = _BYTES_PER_WAKEUP
        try:
            while True:
                if ended:
                    self._report_ended(ended)
                reactor.waiting = True
                try:
                    await wait_readable(epoll_fd)
                finally:
                    reactor.waiting = False
                taken = 0
                for _ in passes:
                    ready = poll(0)
                    if not ready:
                        break
                    for fd, _ in ready:
                        peer = get_peer(fd)
                        if peer is None:
                            if fd == wake_fd:
                                with suppress(BlockingIOError):
                                    os.eventfd_read(wake_fd)
                                reactor.woken = False
                            continue  # (closed earlier in this pass)
                        # (_recv inline: one frame less per read; this long-lived frame is
                        # the one task's, not one per connection.)
                        try:
                            size = peer.sock.recv_into(buffer)  # type: ignore[union-attr]
                        except BlockingIOError:
                            continue
                        except OSError:
                            peer.close()
                            continue
                        if not size:
                            peer.close()
                            continue
                        taken += size
                        data_received(peer.id, buffer[:size].tobytes())
                    if ended:
                        self._report_ended(ended)
                    if taken >= budget:
                        break
        finally:
            for peer in list(by_fd.values()):
                peer.close()
            self._report_ended(ended)

    def _report_ended(self, ended: list[_Peer]) -> None:
        """Tell the hub about connections the reactor's sockets lost, oldest first (a report
        may close more: they are reported in the same call)."""
        while ended:
            batch = ended.copy()
            ended.clear()
            for peer in batch:
                self._connection_ended(peer)

    def _connection_ended(self, peer: _Peer) -> None:
        conn_id = peer.id
        del self._peers[conn_id]
        self._leaving[conn_id] = peer  # its address, for the log of its end
        self._require_hub().connection_lost(conn_id, trio.current_time())
        self._after_core()
        self._leaving.pop(conn_id, None)
        if not self._peers:
            self._drained.set()

    async def _handle(self, stream: trio.abc.Stream) -> None:
        """The connection's one task: reads, and writes whatever the hub has in answer."""
        hub = self._require_hub()
        host, port = _peer_address(stream)
        if isinstance(stream, trio.SocketStream):
            # Own the stdlib socket, so that any task can write to it without awaiting.
            sock: socket.socket | None = socket.socket(fileno=stream.socket.detach())
            tls = None
        else:
            assert isinstance(stream, trio.SSLStream)
            sock, tls = None, stream
        del stream
        peer = _Peer(hub.open_connection(trio.current_time(), host), sock, tls)
        pump = self._pump
        assert pump is not None
        conn_id = peer.id
        peer.host, peer.port = host, port
        buffer = self._receive_buffer
        self._peers[conn_id] = peer
        self._after_core()
        try:
            while not peer.closed:
                try:
                    if sock is None:
                        data = await tls.receive_some(_RECEIVE_SIZE)  # type: ignore[union-attr]
                    else:
                        data = _recv(sock, buffer)
                except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if data is None:
                    try:
                        await trio.lowlevel.wait_readable(sock)  # type: ignore[arg-type]
                    except trio.ClosedResourceError:
                        break
                    continue
                if not data:
                    break
                size = len(data)
                pump.data_received(conn_id, data)
                del data  # not kept alive by this frame while the connection idles
                if sock is not None and not peer.closed:
                    if size < _RECEIVE_SIZE:
                        # A short read took what the socket had: wait for more instead of
                        # reading it empty (a recv that fails with EAGAIN). Waiting also lets
                        # the other connections in between reads.
                        try:
                            await trio.lowlevel.wait_readable(sock)
                        except trio.ClosedResourceError:
                            break
                    else:
                        await trio.lowlevel.checkpoint()  # the others in between reads
        finally:
            peer.close()
            self._connection_ended(peer)

    async def _write_loop(self, peer: _Peer) -> None:
        """Write what the socket did not take, then hand writing back to :meth:`_write` and
        tell the hub it may write again."""
        outbox = peer.outbox
        assert outbox is not None
        try:
            while outbox:
                batch = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                outbox.clear()
                sock = peer.sock
                if sock is None:
                    await peer.tls.send_all(batch)  # type: ignore[union-attr]
                else:
                    view = memoryview(batch)
                    while view:
                        await trio.lowlevel.wait_writable(sock)
                        with suppress(BlockingIOError):
                            view = view[sock.send(view):]
                peer.queued -= len(batch)
            if peer.closing:
                if peer.tls is not None:
                    await peer.tls.aclose()
                peer.close()
                return
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            peer.close()
            return
        # Only now: resume_writing() below may start the next writer at once.
        peer.outbox = None
        peer.writing = False
        if peer.paused:
            peer.paused = False
            hub = self._require_hub()
            hub.resume_writing(peer.id)
            self._after_core()
