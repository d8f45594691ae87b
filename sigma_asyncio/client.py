"""``SigmaSocketClient`` on asyncio: one sans-IO :class:`sigma_core.client.ClientSession`
driven by protocol callbacks, one ``call_at`` timer, and a task per socket being opened.

The core decides everything (when to connect, reconnect, resume, give up); this module opens
and closes sockets when told (``OpenTransport`` / ``CloseTransport``), moves bytes, and turns
core events into callbacks, the ``connect()`` result and the ``async for`` stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl as _ssl
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

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
    PayloadDecodeError,
    TokenRefreshError,
)
from sigma_core.logs import client_log_entry
from sigma_core.logs import write as write_log

from ._entropy import SystemEntropy

__all__ = ["SigmaSocketClient"]

_log = logging.getLogger("sigma_asyncio.client")


class _ClientProtocol(asyncio.Protocol):
    """The socket of one connection attempt; reports to the core quoting that attempt."""

    __slots__ = ("_attempt", "_client", "_transport")

    def __init__(self, client: SigmaSocketClient, attempt: int) -> None:
        self._client = client
        self._attempt = attempt
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        client = self._client
        self._transport = transport  # type: ignore[assignment]
        if self._attempt != client._attempt:  # superseded while opening
            transport.close()
            return
        client._transport = self._transport
        client._reading_paused = False
        client._core().transport_opened(self._attempt, client._loop.time())
        client._after_core()

    def data_received(self, data: bytes) -> None:
        client = self._client
        client._core().receive_data(self._attempt, data, client._loop.time())
        client._after_core()

    def eof_received(self) -> None:
        client = self._client
        client._core().receive_data(self._attempt, None, client._loop.time())
        client._after_core()

    def connection_lost(self, exc: Exception | None) -> None:
        client = self._client
        if client._transport is self._transport:
            client._transport = None
        client._core().transport_closed(self._attempt, client._loop.time())
        client._after_core()
        if client._transport_lost is not None and client._transport is None:
            client._transport_lost.set()


class SigmaSocketClient(ClientCommands):
    """A SigmaSockets client on asyncio.

    ``SigmaSocketClient("ws://host:port/", **ClientOptions fields)`` or
    ``SigmaSocketClient(ClientOptions(...))``. ``await connect()`` / ``await disconnect()``, or
    ``async with``; ``async for message in client`` yields :class:`~sigma_core.api.Message`.

    The ``async for`` stream is a queue of at most ``max_queued_messages`` (1000): while it is
    full the client stops reading its socket until the app takes messages (nothing is dropped;
    the server's ``outgoing_high_water`` decides how long it waits). Messages are queued once
    ``async for`` has begun, or while no ``message`` listener is registered: an app that only
    registers a ``message`` callback queues nothing and never stalls. ``max_queued_messages=0``:
    no queue at all.
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
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._attempt = 0
        self._opener: asyncio.Task[None] | None = None
        self._transport: asyncio.Transport | None = None
        self._transport_lost: asyncio.Event | None = None
        self._ssl_context: _ssl.SSLContext | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._busy = False
        self._connected: asyncio.Future[None] | None = None
        self._messages: asyncio.Queue[Message | None] = asyncio.Queue()
        #: The socket is not being read because the queue is full (back-pressure).
        self._reading_paused = False
        #: ``async for`` has begun: every message is queued from then on (before it, only while
        #: no ``message`` listener is registered, so a callback-only app never fills the queue).
        self._iterated = False
        #: The "nothing iterates" warning was logged (it is said once).
        self._warned = False
        #: The last run is over (disconnected or gave up): ``async for`` ends once drained.
        self._ended = False

    # ------------------------------------------------------------------ lifecycle

    def _core(self) -> ClientSession:
        session = self._session
        if session is None:
            self._loop = loop = asyncio.get_running_loop()
            now = loop.time()
            config = self.options.client_config(wall_clock_offset=time.time() - now)
            self._session = session = ClientSession(config, entropy=SystemEntropy())
        return session

    async def connect(self) -> None:
        """Connect and return once the server welcomed us.

        Raises:
            ConnectionFailed: the client gave up first (attempts exhausted, authentication
                refused) or was disconnected meanwhile.
        """
        core = self._core()
        if core.status is ConnectionStatus.CONNECTED:
            return
        if self._connected is None or self._connected.done():
            self._connected = self._loop.create_future()
        waiter = self._connected
        self._ended = False
        core.connect(self._loop.time())
        self._after_core()
        await waiter

    async def disconnect(self) -> None:
        """Goodbye and close: the server ends the session. Status becomes DISCONNECTED and
        ``async for`` ends."""
        if self._session is None:
            return
        if self._opener is not None:
            self._opener.cancel()
        self._session.disconnect(self._loop.time())
        self._after_core()
        if self._transport is not None:
            self._transport_lost = event = asyncio.Event()
            try:
                await asyncio.wait_for(event.wait(), self.options.close_timeout)
            except TimeoutError:
                if self._transport is not None:
                    self._transport.abort()
            finally:
                self._transport_lost = None

    async def __aenter__(self) -> SigmaSocketClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.disconnect()

    async def __aiter__(self) -> AsyncIterator[Message]:
        """Messages as they arrive; ends when the client is disconnected or gives up.

        Raises:
            LocalProtocolError: ``max_queued_messages`` is 0 (callbacks only).
        """
        self._begin_iterating()
        while True:
            if self._ended and self._messages.empty():
                return
            message = await self._messages.get()
            if self._reading_paused:
                self._update_reading()
            if message is not None:
                yield message
            elif self.get_status() in (ConnectionStatus.DISCONNECTED, ConnectionStatus.ERROR):
                return
            # else: the end mark of an earlier run, followed by a new connect(): go on

    @property
    def queued_messages(self) -> int:
        """Messages received and not yet taken by ``async for`` (at most
        ``max_queued_messages`` plus one socket read: the client stops reading at the bound)."""
        return self._messages.qsize()

    # ------------------------------------------------------------------ plumbing

    def _now(self) -> float:
        return self._loop.time()

    def _after_core(self) -> None:
        if self._busy:  # a listener called a command: the running call picks it up
            return
        core = self._core()
        emit = self._emitter.emit
        logger = self._logger
        self._busy = True
        try:
            while True:
                self._write(core.data_to_send())
                events = core.events_received()
                if not events:
                    break
                for event in events:
                    write_log(logger, client_log_entry(event))
                    decoded = self._handle(event)
                    for name, args in client_callbacks(event, decoded):
                        emit(name, *args)
        finally:
            self._busy = False
        self._update_reading()
        self._rearm()

    def _write(self, chunks: list[bytes]) -> None:
        if chunks and self._transport is not None:
            self._transport.writelines(chunks)

    def _update_reading(self) -> None:
        """Back-pressure: stop reading once ``max_queued_messages`` wait for the app (while
        connected: a new socket reads until its Welcome), read on once it took them to half."""
        limit = self.options.max_queued_messages
        transport = self._transport
        if not limit or transport is None:
            return
        queued = self._messages.qsize()
        if self._reading_paused:
            if queued <= limit // 2 or self._core().status is not ConnectionStatus.CONNECTED:
                self._reading_paused = False
                transport.resume_reading()
                self._core().set_reading_paused(False, self._loop.time())
                self._rearm()
        elif queued >= limit and self._core().status is ConnectionStatus.CONNECTED:
            self._reading_paused = True
            transport.pause_reading()
            self._core().set_reading_paused(True, self._loop.time())
            self._warn_if_unread(queued)

    def _handle(self, event: object) -> Message | PayloadDecodeError | None:
        if isinstance(event, MessageReceived):
            decoded = decode_message(event, self.options.serializer)
            if isinstance(decoded, Message) and self._queues_messages():
                self._messages.put_nowait(decoded)
            return decoded
        if isinstance(event, TokenNeeded):
            get_token = self.options.get_token
            if get_token is not None:
                self._loop.create_task(self._refresh(get_token))
        elif isinstance(event, OpenTransport):
            self._attempt = event.attempt
            self._opener = self._loop.create_task(self._open(event))
        elif isinstance(event, CloseTransport):
            if event.attempt != self._attempt:
                return None
            if self._opener is not None:
                self._opener.cancel()
            transport = self._transport
            if transport is not None:
                self._write(self._core().data_to_send())
                transport.close()
        elif isinstance(event, StatusChanged):
            if event.status is ConnectionStatus.CONNECTED:
                self._resolve(None)
            elif event.status is ConnectionStatus.DISCONNECTED:
                self._resolve(ConnectionFailed("disconnected before the server welcomed us"))
                self._end_stream()
        elif isinstance(event, GaveUp):
            self._resolve(ConnectionFailed(event.reason))
            self._end_stream()
        return None

    async def _refresh(self, get_token: Any) -> None:
        try:
            token = await fetch_token(get_token)
        except TokenRefreshError as exc:
            self._emitter.emit("error", exc)
            return
        self._core().refresh_token(token, self._loop.time())
        self._after_core()

    def _end_stream(self) -> None:
        self._ended = True
        self._messages.put_nowait(None)  # wakes an iterator waiting for the next message

    def _resolve(self, error: ConnectionFailed | None) -> None:
        waiter, self._connected = self._connected, None
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

    async def _open(self, event: OpenTransport) -> None:
        context: _ssl.SSLContext | None = None
        if event.secure:
            if self._ssl_context is None:
                self._ssl_context = self.options.ssl or _ssl.create_default_context()
            context = self._ssl_context
        try:
            await self._loop.create_connection(
                lambda: _ClientProtocol(self, event.attempt), event.host, event.port,
                ssl=context, server_hostname=event.host if event.secure else None)
        except OSError as exc:
            self._core().transport_failed(event.attempt, self._loop.time(), str(exc) or repr(exc))
            self._after_core()
        finally:
            if self._opener is asyncio.current_task():
                self._opener = None

    def _rearm(self) -> None:
        deadline = self._core().next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        when = self._timer_at or 0.0  # never show the core a time before its deadline
        self._timer = self._timer_at = None
        self._core().handle_timer(max(self._loop.time(), when))
        self._after_core()
