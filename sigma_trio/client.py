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
    decode_message,
    fetch_token,
)
from sigma_core.client import (
    ClientSession,
    CloseTransport,
    ConnectionStatus,
    GaveUp,
    MessageReceived,
    OpenTransport,
    StatusChanged,
    TokenNeeded,
)
from sigma_core.errors import (
    ConnectionFailed,
    LocalProtocolError,
    PayloadDecodeError,
    TokenRefreshError,
)
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


class _MessageStream:
    """``async for`` over a client's queue (an iterator object, not an async generator: one
    left mid-way needs no closing)."""

    __slots__ = ("_client", "_receive")

    def __init__(self, client: SigmaSocketClient) -> None:
        self._client = client
        self._receive = client._messages

    def __aiter__(self) -> _MessageStream:
        return self

    async def __anext__(self) -> Message:
        try:
            message = await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None
        self._client._took()
        return message


class SigmaSocketClient(OwnNursery, ClientCommands):
    """A SigmaSockets client: ``SigmaSocketClient("ws://host:port/", **options)`` or
    ``SigmaSocketClient(ClientOptions(...))``.

    Run it with ``async with SigmaSocketClient(url) as client:`` (connects on enter, raising
    :class:`ConnectionFailed` if the session gives up first; disconnects on exit) or
    ``await nursery.start(client.run)`` (same, in your nursery). ``await client.connect()``
    waits until a *running* client is connected (e.g. while it reconnects).

    ``async for message in client`` yields every :class:`~sigma_core.api.Message` received
    during a run and ends when the run ends (disconnect or give-up). The buffer behind it holds
    at most ``max_queued_messages`` (1000): while it is full the client stops reading its
    socket until the app takes messages (nothing is dropped; the server's
    ``outgoing_high_water`` decides how long it waits). Messages are queued once ``async for``
    has begun, or while no ``message`` listener is registered: an app that only registers a
    ``message`` callback queues nothing and never stalls. ``max_queued_messages=0``: no queue.
    A client belongs to one ``trio.run``.
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
        #: Set when the app took the queue down to half (or the run ended): reading goes on.
        self._room = trio.Event()
        #: ``async for`` has begun: every message is queued from then on (before it, only while
        #: no ``message`` listener is registered, so a callback-only app never fills the queue).
        self._iterated = False
        #: The "nothing iterates" warning was logged (it is said once).
        self._warned = False
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
            self._room.set()
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
        """Messages as they arrive; ends when the run ends.

        Raises:
            LocalProtocolError: ``max_queued_messages`` is 0 (callbacks only).
        """
        self._begin_iterating()
        return _MessageStream(self)

    def _took(self) -> None:
        """The app took a message: read on once the queue is down to half."""
        if self._messages_in.statistics().current_buffer_used \
                <= self.options.max_queued_messages // 2:
            self._room.set()

    @property
    def queued_messages(self) -> int:
        """Messages received and not yet taken by ``async for`` (at most
        ``max_queued_messages`` plus one socket read: the client stops reading at the bound)."""
        return self._messages_in.statistics().current_buffer_used

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
                    decoded: Message | PayloadDecodeError | None = None
                    if isinstance(event, MessageReceived):
                        decoded = decode_message(event, self.options.serializer)
                        if isinstance(decoded, Message):
                            self._queue_message(decoded)
                    elif isinstance(event, OpenTransport):
                        self._open(event)
                    elif isinstance(event, CloseTransport):
                        self._close(event.attempt, session.data_to_send())
                    elif isinstance(event, StatusChanged):
                        self._changed.set()
                        self._changed = trio.Event()
                        self._room.set()
                    elif isinstance(event, GaveUp):
                        self._gave_up = event.reason
                    elif isinstance(event, TokenNeeded) and self.options.get_token is not None \
                            and self._nursery is not None:
                        self._nursery.start_soon(self._refresh, self.options.get_token)
                    for name, args in client_callbacks(event, decoded):
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

    def _queue_message(self, message: Message) -> None:
        if not self._queues_messages():
            return
        # Closed: not running, or the iterator was closed; the callbacks still see it.
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self._messages_in.send_nowait(message)

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

    async def _refresh(self, get_token: Any) -> None:
        try:
            token = await fetch_token(get_token)
        except TokenRefreshError as exc:
            self._emitter.emit("error", exc)
            return
        self._core().refresh_token(token, trio.current_time())
        self._after_core()

    def _close(self, attempt: int, chunks: list[bytes]) -> None:
        link = self._links.get(attempt)
        if link is None:
            return
        link.outbox.extend(chunks)
        link.closing = True
        link.wake.set()
        self._room.set()
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
            if self._queue_full(session):
                await self._wait_for_room(session, link)
            try:
                data = await stream.receive_some(_RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._transport_lost(session, link)
                return
            session.receive_data(attempt, data, trio.current_time())
            self._after_core()

    def _queue_full(self, session: ClientSession) -> bool:
        limit = self.options.max_queued_messages
        return (bool(limit) and session.status is ConnectionStatus.CONNECTED
                and self._messages_in.statistics().current_buffer_used >= limit)

    async def _wait_for_room(self, session: ClientSession, link: _Link) -> None:
        """Back-pressure: read nothing until the app took the queue down to half (a new
        socket reads until its Welcome)."""
        session.set_reading_paused(True, trio.current_time())
        self._after_core()
        self._warn_if_unread(self._messages_in.statistics().current_buffer_used)
        try:
            # Read on when the app took half, or when this socket is being closed (its close
            # handshake needs the server's answer) or the session left CONNECTED.
            while (not link.closing and session.status is ConnectionStatus.CONNECTED
                   and self._messages_in.statistics().current_buffer_used
                   > self.options.max_queued_messages // 2):
                self._room = trio.Event()
                await self._room.wait()
        finally:
            session.set_reading_paused(False, trio.current_time())
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
