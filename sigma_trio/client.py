"""``SigmaSocketClient``: the client session (:class:`sigma_core.client.ClientSession`) on trio.

The core decides when to connect, reconnect and close; this module opens the sockets it asks for
(:class:`~sigma_core.client.OpenTransport`, one task per attempt with a reader and a writer),
closes them when told (:class:`~sigma_core.client.CloseTransport`) and wakes the session at
its deadline. Everything runs in a nursery: ``async with client:`` opens one, or run it in yours
with ``await nursery.start(client.run)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import trio

from sigma_core.api import (
    ClientCommands,
    ClientOptions,
    EventEmitter,
    Message,
    client_callbacks,
)
from sigma_core.client import (
    ClientSession,
    CloseTransport,
    ConnectionStatus,
    GaveUp,
    MessageReceived,
    OpenTransport,
    StatusChanged,
)
from sigma_core.errors import ConnectionFailed, LocalProtocolError
from sigma_core.logs import client_log_entry
from sigma_core.logs import write as write_log

from ._entropy import SystemEntropy
from ._nursery import OwnNursery

__all__ = ["SigmaSocketClient"]

_log = logging.getLogger("sigma_trio.client")

_RECEIVE_SIZE = 65536
_ENDED = (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR)


class _Link:
    """The socket of one connection attempt."""

    __slots__ = ("attempt", "closing", "eof", "outbox", "scope", "stream", "wake")

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt
        self.stream: trio.abc.Stream | None = None
        self.outbox: list[bytes] = []
        #: CloseTransport arrived: write what is queued, then close.
        self.closing = False
        self.eof = trio.Event()
        self.wake = trio.Event()
        self.scope = trio.CancelScope()


class SigmaSocketClient(OwnNursery, ClientCommands):
    """A SigmaSockets client: ``SigmaSocketClient("ws://host:port/", **options)`` or
    ``SigmaSocketClient(ClientOptions(...))``.

    Run it with ``async with SigmaSocketClient(url) as client:`` (connects on enter, raising
    :class:`ConnectionFailed` if the session gives up first; disconnects on exit) or
    ``await nursery.start(client.run)`` (same, in your nursery). ``await client.connect()``
    waits until a *running* client is connected (e.g. while it reconnects).

    ``async for message in client`` yields every :class:`~sigma_core.api.Message` received
    during a run and ends when the run ends (disconnect or give-up). The buffer behind it is
    unbounded: messages are kept until iterated, so a client that only uses the ``message``
    callback and runs for long should drain it or mind its memory. A client belongs to one
    ``trio.run``.
    """

    def __init__(self, url_or_options: str | ClientOptions, /, **overrides: Any) -> None:
        if isinstance(url_or_options, ClientOptions):
            options = (dataclasses.replace(url_or_options, **overrides) if overrides
                       else url_or_options)
        else:
            options = ClientOptions(url=url_or_options, **overrides)
        self.options = options
        self._logger = options.logger if options.logger is not None else _log
        self._emitter = EventEmitter(logger=self._logger, owner="SigmaSocketClient")
        self._session: ClientSession | None = None
        self._wall_clock_offset = 0.0
        self._ssl_context = options.ssl
        self._links: dict[int, _Link] = {}
        self._current: _Link | None = None
        self._timer = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Event()
        self._links_idle = trio.Event()
        self._done = trio.Event()
        self._messages_in, self._messages = trio.open_memory_channel[Message](math.inf)
        self._gave_up = ""
        self._in_core = False
        self._again = False
        self._cm: AbstractAsyncContextManager[trio.Nursery] | None = None

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Connect, report ``started`` once connected and keep the session going (reconnects
        included) until :meth:`disconnect` or the session gives up. Cancelling it disconnects
        at once.

        Raises:
            ConnectionFailed: the session gave up before the first connection.
            LocalProtocolError: the client is already running.
        """
        if self._nursery is not None:
            raise LocalProtocolError("this SigmaSocketClient is already running")
        session = self._core()
        if self._done.is_set():  # a previous run closed the message channel
            self._messages_in, self._messages = trio.open_memory_channel[Message](math.inf)
        self._done = trio.Event()
        self._gave_up = ""
        connected = False
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._run_timer, session)
                session.connect(trio.current_time())
                self._after_core()
                connected = await self._wait_connected()
                if connected:
                    task_status.started()
                    while session.status not in _ENDED:
                        await self._changed.wait()
                if self._links:
                    self._links_idle = trio.Event()
                    await self._links_idle.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            if session.status not in _ENDED:  # cancelled: leave for good
                session.disconnect(trio.current_time())
                self._after_core()
            self._messages_in.close()
            self._done.set()
        if not connected:
            raise ConnectionFailed(self._failure())

    async def connect(self) -> None:
        """Wait until the running client is connected.

        Raises:
            ConnectionFailed: the session gave up first.
            LocalProtocolError: the client is not running.
        """
        if self._nursery is None:
            raise LocalProtocolError("the client is not running: use `async with client:` or "
                                     "`await nursery.start(client.run)`")
        if not await self._wait_connected():
            raise ConnectionFailed(self._failure())

    async def disconnect(self) -> None:
        """Leave: Goodbye and close (the server ends the session); waits until the socket is
        closed and :meth:`run` has returned. Status becomes DISCONNECTED."""
        session = self._session
        if session is None:
            return
        session.disconnect(trio.current_time())
        self._after_core()
        if self._nursery is not None:
            await self._done.wait()

    async def _main(self, *, task_status: Any) -> None:
        await self.run(task_status=task_status)

    async def _end(self) -> None:
        await self.disconnect()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages

    # ------------------------------------------------------------------ core plumbing

    def _core(self) -> ClientSession:
        session = self._session
        if session is None:
            self._wall_clock_offset = time.time() - trio.current_time()
            session = self._session = ClientSession(
                self.options.client_config(wall_clock_offset=self._wall_clock_offset),
                entropy=SystemEntropy())
        return session

    def _now(self) -> float:
        return trio.current_time()

    def _failure(self) -> str:
        return self._gave_up or "disconnected before the server welcomed us"

    async def _wait_connected(self) -> bool:
        session = self._core()
        while True:
            if session.status is ConnectionStatus.CONNECTED:
                return True
            if session.status in _ENDED:
                return False
            await self._changed.wait()

    def _after_core(self) -> None:
        """Carry out what the session asked for, fire callbacks, write, re-arm the timer.
        A callback that calls a command re-enters here: the outer call loops instead."""
        if self._in_core:
            self._again = True
            return
        session = self._core()
        emit = self._emitter.emit
        logger = self._logger
        self._in_core = True
        try:
            again = True
            while again:
                self._again = False
                for event in session.events_received():
                    write_log(logger, client_log_entry(event))
                    if isinstance(event, MessageReceived):
                        self._queue_message(event)
                    elif isinstance(event, OpenTransport):
                        self._open(event)
                    elif isinstance(event, CloseTransport):
                        self._close(event.attempt, session.data_to_send())
                    elif isinstance(event, StatusChanged):
                        self._changed.set()
                        self._changed = trio.Event()
                    elif isinstance(event, GaveUp):
                        self._gave_up = event.reason
                    for name, args in client_callbacks(event):
                        emit(name, *args)
                link = self._current
                if link is not None:
                    data = session.data_to_send()
                    if data:
                        link.outbox.extend(data)
                        link.wake.set()
                again = self._again
        finally:
            self._in_core = False
        deadline = session.next_deadline()
        self._timer.deadline = math.inf if deadline is None else deadline

    def _queue_message(self, event: MessageReceived) -> None:
        # Closed: not running, or the iterator was closed; the callbacks still see it.
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self._messages_in.send_nowait(Message(data=event.payload, topic=event.topic,
                                                  position=event.position,
                                                  timestamp_ms=event.timestamp_ms))

    async def _run_timer(self, session: ClientSession) -> None:
        while True:
            deadline = session.next_deadline()
            self._timer = trio.CancelScope(deadline=math.inf if deadline is None else deadline)
            with self._timer:
                await trio.sleep_forever()
            session.handle_timer(trio.current_time())
            self._after_core()

    # ------------------------------------------------------------------ sockets

    def _open(self, event: OpenTransport) -> None:
        if self._nursery is None:
            return
        link = self._links[event.attempt] = _Link(event.attempt)
        self._nursery.start_soon(self._run_link, link, event.host, event.port, event.secure)

    def _close(self, attempt: int, chunks: list[bytes]) -> None:
        link = self._links.get(attempt)
        if link is None:
            return
        link.outbox.extend(chunks)
        link.closing = True
        link.wake.set()
        link.scope.deadline = trio.current_time() + self.options.close_timeout
        if self._current is link:
            self._current = None
        if link.stream is None:
            link.scope.cancel()  # still connecting: abandon the attempt

    async def _run_link(self, link: _Link, host: str, port: int, secure: bool) -> None:
        session = self._core()
        try:
            with link.scope:
                try:
                    stream = await self._open_stream(host, port, secure)
                except (OSError, trio.BrokenResourceError) as exc:
                    # A failed TLS handshake is a bare BrokenResourceError: its cause says why.
                    session.transport_failed(link.attempt, trio.current_time(),
                                             str(exc) or str(exc.__cause__ or "")
                                             or type(exc).__name__)
                    self._after_core()
                    return
                link.stream = stream
                try:
                    self._current = link
                    session.transport_opened(link.attempt, trio.current_time())
                    self._after_core()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._write_link, link, stream)
                        await self._read_link(session, link, stream)
                finally:
                    await trio.aclose_forcefully(stream)
        finally:
            del self._links[link.attempt]
            if self._current is link:
                self._current = None
            if not self._links:
                self._links_idle.set()

    async def _open_stream(self, host: str, port: int, secure: bool) -> trio.abc.Stream:
        tcp = await trio.open_tcp_stream(host, port)
        if not secure:
            return tcp
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        tls = trio.SSLStream(tcp, self._ssl_context, server_hostname=host,
                             https_compatible=True)
        try:
            await tls.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(tls)
            raise
        return tls

    async def _read_link(self, session: ClientSession, link: _Link,
                         stream: trio.abc.Stream) -> None:
        attempt = link.attempt
        while True:
            try:
                data = await stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._transport_lost(session, link)
                return
            session.receive_data(attempt, data, trio.current_time())
            self._after_core()

    async def _write_link(self, link: _Link, stream: trio.abc.Stream) -> None:
        outbox = link.outbox
        try:
            while True:
                if not outbox:
                    if link.closing:
                        break
                    await link.wake.wait()
                    link.wake = trio.Event()
                    continue
                batch = b"".join(outbox)
                outbox.clear()
                await stream.send_all(batch)
            await link.eof.wait()  # the server closes first (RFC 6455 §7.1.1)
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._transport_lost(self._core(), link)
        link.scope.cancel()

    def _transport_lost(self, session: ClientSession, link: _Link) -> None:
        link.eof.set()
        session.transport_closed(link.attempt, trio.current_time())
        self._after_core()
        if not link.closing:  # the session no longer cares about this attempt
            link.scope.cancel()
