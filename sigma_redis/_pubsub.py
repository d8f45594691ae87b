"""A minimal RESP2 client on an anyio stream, owned by the engine's receiver: pub/sub
subscribers (``SUBSCRIBE``, or ``SSUBSCRIBE`` per shard on Redis Cluster), and the few
one-shot questions the engine asks on a connection of its own (``INFO server`` to check what
kind of server a URL names, ``CLUSTER SLOTS``, Sentinel's ``get-master-addr-by-name``).

Why not coredis' ``PubSub``: it reads the socket eagerly into an unbounded in-process buffer,
and when its connection closes without an error it stops without telling (no resubscription).
Here the socket is read only as fast as messages are handed to the hub, so a node that cannot
keep up leaves the backlog in Redis, where ``client-output-buffer-limit pubsub`` bounds it (Redis
then drops the connection; the receiver reconnects, resubscribes, and the hub's heads check
reads what was missed from history). The connection has a deadline (``idle_timeout``: a PING is
sent after half of it without traffic, an error after the other half).

Why not an anyio stream for the subscriber: on asyncio, anyio's ``receive()`` resumes the
transport's reading before each wait and pauses it after (two ``epoll_ctl`` calls per
message) and hands the bytes over by waking the reading task (one more event-loop turn before
the message reaches the hub). On asyncio a plain connection is read in the event loop's
readiness callback instead (:meth:`Subscriber.serve`); on trio, and for TLS, a task reads.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from ._url import Endpoint, parse_target

__all__ = ["ChannelMoved", "Connection", "ProtocolError", "Redirected", "ReplyError",
           "Subscriber", "ask", "connect_socket", "parse_url"]


class ProtocolError(ConnectionError):
    """Redis sent something that is not RESP2 pub/sub."""


class ReplyError(ConnectionError):
    """Redis answered a command with an error."""


class Redirected(ConnectionError):
    """Redis Cluster answered ``MOVED``/``ASK``: the slot of a channel is served elsewhere."""


class ChannelMoved(ConnectionError):
    """Redis Cluster ended a shard channel's subscription itself (``sunsubscribe`` we did not
    ask for): its slot moved to another node (resharding, failover)."""


def parse_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """A single server's URL (``redis://``, ``rediss://``, ``unix://``) as (host or socket
    path, port — 0 for a socket —, username, password, tls). ``ValueError`` for a URL that
    does not name one server (a Redis Cluster or Sentinel URL names several: their servers
    are found at run time, see :mod:`._url`)."""
    target = parse_target(url)
    if target.kind != "standalone":
        raise ValueError(f"{target.kind} URL: no single server to connect to")
    ep = target.endpoints[0]
    return ep.host, ep.port, ep.username, ep.password, ep.tls


def _command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def _running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running this task, or None (trio)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


def parse_reply(buf: bytearray, pos: int) -> tuple[object, int]:
    """One RESP2 reply from ``buf`` at ``pos``: (reply, position after it); raises
    :class:`_Incomplete` when the buffer ends inside it. Simple strings and integers come back
    as their bytes, an error reply as a :class:`ReplyError`, nulls as None."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > 1 << 16:
            raise ProtocolError("RESP line too long")
        raise _Incomplete
    if end == pos:
        raise ProtocolError("empty RESP line")
    kind = buf[pos]
    rest = bytes(buf[pos + 1:end])
    pos = end + 2
    if kind in {43, 58}:  # + :
        return rest, pos
    if kind == 45:  # -
        return ReplyError(rest.decode(errors="replace")), pos
    try:
        size = int(rest)
    except ValueError:
        raise ProtocolError(f"bad RESP length {rest!r:.40}") from None
    if kind == 36:  # $
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos:pos + size]), pos + size + 2
    if kind == 42:  # *
        if size < 0:
            return None, pos  # the null array (Sentinel: an unknown service)
        items = []
        for _ in range(size):
            item, pos = parse_reply(buf, pos)
            items.append(item)
        return items, pos
    raise ProtocolError(f"unknown RESP type {bytes([kind])!r}")


async def send_bytes(stream: anyio.abc.ByteStream | None, sock: socket.socket | None,
                     data: bytes, peer: object) -> None:
    """Send all of ``data`` on ``stream`` (TLS) or else the non-blocking ``sock``, waiting
    while the kernel takes none. ``peer`` names the server in the error when neither is open."""
    if stream is not None:
        await stream.send(data)
        return
    if sock is None:
        raise ConnectionError(f"{peer}: connection closed")
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await anyio.wait_writable(sock)


async def receive_bytes(stream: anyio.abc.ByteStream | None, sock: socket.socket | None,
                        peer: object) -> bytes:
    """What ``stream`` (TLS) or else the non-blocking ``sock`` has, waiting until it has some.

    Raises:
        ConnectionError: the server closed the connection, or neither is open.
    """
    if stream is not None:
        try:
            return await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise ConnectionError(f"{peer} closed the connection") from None
    if sock is None:
        raise ConnectionError(f"{peer}: connection closed")
    while True:
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            await anyio.wait_readable(sock)
            continue
        if not data:
            raise ConnectionError(f"{peer} closed the connection")
        return data


async def open_transport(endpoint: Endpoint
                         ) -> tuple[socket.socket | None, anyio.abc.ByteStream | None]:
    """``(sock, None)``: a non-blocking socket of our own to ``endpoint``; over TLS
    ``(None, stream)``, an anyio TLS stream (see :func:`send_bytes`, :func:`receive_bytes`)."""
    if endpoint.tls:
        return None, await anyio.connect_tcp(endpoint.host, endpoint.port,
                                             ssl_context=ssl.create_default_context())
    return await connect_socket(endpoint), None


async def connect_socket(endpoint: Endpoint) -> socket.socket:
    """A connected non-blocking socket to ``endpoint`` (TCP with ``TCP_NODELAY``, or Unix)."""
    if endpoint.port == 0:
        targets: list[tuple[int, int, Any]] = [(socket.AF_UNIX, 0, endpoint.host)]
    else:
        targets = [(family, proto, address) for family, _, proto, _, address in
                   await anyio.getaddrinfo(endpoint.host, endpoint.port,
                                           type=socket.SOCK_STREAM)]
    failure: OSError = OSError(f"{endpoint}: no address")
    for family, proto, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        try:
            sock.setblocking(False)
            error = sock.connect_ex(address)
            if error in (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
                await anyio.wait_writable(sock)
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, f"{endpoint}: {os.strerror(error)}")
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
        except BaseException:
            sock.close()
            raise
    raise failure


class Connection:
    """One connection to one server: ``connect``, then ``request`` (one command, one reply;
    an error reply is returned as a :class:`ReplyError`, not raised).

    A plain TCP or Unix connection is a non-blocking socket of its own (no stream object
    between it and the event loop: see :class:`Subscriber`); TLS goes through an anyio
    stream. Both feed the same parser."""

    def __init__(self, endpoint: Endpoint, *, connect_timeout: float,
                 idle_timeout: float) -> None:
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._sock: socket.socket | None = None
        self._stream: anyio.abc.ByteStream | None = None
        self._buffer = bytearray()
        #: asyncio: the loop whose readiness callback reads the socket (Subscriber.serve).
        self._reading: asyncio.AbstractEventLoop | None = None

    def _stop_reading(self) -> None:
        """Unregister the socket from the event loop before it is closed (a closed descriptor
        left registered would confuse the loop when its number is reused)."""
        loop, self._reading = self._reading, None
        if loop is not None and self._sock is not None:
            loop.remove_reader(self._sock.fileno())

    async def connect(self) -> None:
        ep = self.endpoint
        with anyio.fail_after(self._connect_timeout):
            self._sock, self._stream = await open_transport(ep)
            if ep.password is not None:
                auth = (b"AUTH", ep.username.encode(), ep.password.encode()) if ep.username \
                    else (b"AUTH", ep.password.encode())
                await self._send(_command(*auth))
                reply = await self._read_reply()
                if reply != b"OK":
                    raise ConnectionError(f"{ep} refused AUTH: {reply}")

    async def aclose(self) -> None:
        self._stop_reading()
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def request(self, *args: bytes) -> object:
        """Send one command and return its reply (within ``connect_timeout``)."""
        with anyio.fail_after(self._connect_timeout):
            await self._send(_command(*args))
            return await self._read_reply()

    # ------------------------------------------------------------------ bytes

    async def _send(self, data: bytes) -> None:
        await send_bytes(self._stream, self._sock, data, self.endpoint)

    async def _receive(self) -> bytes:
        return await receive_bytes(self._stream, self._sock, self.endpoint)

    async def _read_reply(self) -> object:
        while True:
            try:
                reply, end = parse_reply(self._buffer, 0)
            except _Incomplete:
                self._buffer += await self._receive()
                continue
            del self._buffer[:end]
            return reply


async def ask(endpoint: Endpoint, *args: bytes, timeout: float) -> object:
    """One command on a connection of its own (connect, ask, close), within ``timeout``."""
    conn = Connection(endpoint, connect_timeout=timeout, idle_timeout=max(2.0, 2 * timeout))
    try:
        await conn.connect()
        return await conn.request(*args)
    finally:
        with anyio.CancelScope(shield=True):
            await conn.aclose()


class Subscriber(Connection):
    """One subscribed connection. ``on_message(channel, data)`` is called for each message, in
    the order Redis sent them. ``sharded``: ``SSUBSCRIBE`` (Redis Cluster's sharded pub/sub,
    Redis >= 7.0) instead of ``SUBSCRIBE``."""

    def __init__(self, endpoint: Endpoint, on_message: Callable[[bytes, bytes], None], *,
                 connect_timeout: float, idle_timeout: float, sharded: bool = False) -> None:
        super().__init__(endpoint, connect_timeout=connect_timeout, idle_timeout=idle_timeout)
        self._on_message = on_message
        self._acks: dict[bytes, anyio.Event] = {}
        self._subscribed: set[bytes] = set()
        if sharded:
            self._verbs = (b"SSUBSCRIBE", b"SUNSUBSCRIBE")
            self._kinds = (b"smessage", b"ssubscribe", b"sunsubscribe")
        else:
            self._verbs = (b"SUBSCRIBE", b"UNSUBSCRIBE")
            self._kinds = (b"message", b"subscribe", b"unsubscribe")

    @property
    def channels(self) -> frozenset[bytes]:
        """The channels this connection is subscribed to (confirmed by Redis)."""
        return frozenset(self._subscribed)

    async def subscribe(self, channel: bytes, *, subscribe: bool = True) -> None:
        """Send (UN)SUBSCRIBE; returns when Redis confirmed (``serve`` must be running)."""
        event = self._acks[channel] = anyio.Event()
        await self._send(_command(self._verbs[0] if subscribe else self._verbs[1], channel))
        with anyio.fail_after(self._connect_timeout):
            await event.wait()
        if subscribe:
            self._subscribed.add(channel)
        else:
            self._subscribed.discard(channel)

    async def serve(self) -> None:
        """Read until the connection fails (raises ``ConnectionError`` — :class:`Redirected`
        and :class:`ChannelMoved` among them — ``OSError`` or ``TimeoutError``).

        On asyncio with a plain socket the event loop calls the subscriber back when the
        socket is readable (one ``epoll_ctl`` for the connection's life): the bytes are read,
        parsed and handed to ``on_message`` in that callback — no task woken, no loop turn
        between Redis' message and the hub. Otherwise (trio, TLS) a loop of reads. Either
        way the socket is read only as fast as messages are handed on (each read's messages
        are delivered before the next read). After ``idle_timeout / 2`` without a byte a
        PING is sent; after as long again an error."""
        loop = _running_asyncio_loop()
        if self._sock is not None and loop is not None:
            await self._serve_callbacks(loop, self._sock)
            return
        pinged = False
        while True:
            data = b""
            with anyio.move_on_after(self._idle_timeout / 2):
                data = await self._receive()
            if data:
                pinged = False
                self._feed(data)
                continue
            if pinged:
                raise TimeoutError(f"{self.endpoint} silent for {self._idle_timeout} s")
            await self._send(_command(b"PING"))
            pinged = True

    async def _serve_callbacks(self, loop: asyncio.AbstractEventLoop,
                               sock: socket.socket) -> None:
        done = anyio.Event()
        failure: list[BaseException] = []
        heard = [time.monotonic()]

        def readable() -> None:
            try:
                data = sock.recv(1 << 16)
                if not data:
                    raise ConnectionError(f"{self.endpoint} closed the connection")
                heard[0] = time.monotonic()
                self._feed(data)
            except BlockingIOError:
                return
            except BaseException as exc:  # handed to serve(), which raises it
                self._stop_reading()
                failure.append(exc)
                done.set()

        loop.add_reader(sock.fileno(), readable)
        self._reading = loop
        try:
            pinged_at: float | None = None
            while True:
                with anyio.move_on_after(self._idle_timeout / 2):
                    await done.wait()
                if failure:
                    raise failure[0]
                if pinged_at is not None:
                    if heard[0] < pinged_at:
                        raise TimeoutError(
                            f"{self.endpoint} silent for {self._idle_timeout} s")
                    pinged_at = None
                now = time.monotonic()
                if now - heard[0] >= self._idle_timeout / 2:
                    pinged_at = now
                    await self._send(_command(b"PING"))
        finally:
            self._stop_reading()

    def _feed(self, data: bytes) -> None:
        """Parse and hand on every complete reply in the buffer after ``data``."""
        buf = self._buffer
        buf += data
        pos = 0
        try:
            while pos < len(buf):
                try:
                    reply, pos = parse_reply(buf, pos)
                except _Incomplete:
                    break
                self._dispatch(reply)
        finally:
            del buf[:pos]

    def _dispatch(self, reply: object) -> None:
        message, subscribed, unsubscribed = self._kinds
        if isinstance(reply, ReplyError):
            text = str(reply)
            if text.startswith(("MOVED ", "ASK ")):
                raise Redirected(f"{self.endpoint}: {text}")
            raise ReplyError(f"{self.endpoint}: Redis error: {text}")
        if not isinstance(reply, list) or not reply:
            raise ProtocolError(f"unexpected pub/sub reply {reply!r:.80}")
        kind = reply[0]
        if kind == message and len(reply) == 3:
            channel, data = reply[1], reply[2]
            if isinstance(channel, bytes) and isinstance(data, bytes):
                self._on_message(channel, data)
                return
        elif kind in (subscribed, unsubscribed) and len(reply) == 3 and \
                isinstance(reply[1], bytes):
            channel = reply[1]
            event = self._acks.pop(channel, None)
            if event is not None:
                event.set()
            elif kind == unsubscribed and channel in self._subscribed:
                raise ChannelMoved(f"{self.endpoint} ended the subscription of {channel!r}"
                                   f" (its slot moved)")
            return
        elif kind == b"pong" or reply == [b"pong", b""]:
            return
        raise ProtocolError(f"unexpected pub/sub reply {reply!r:.80}")
