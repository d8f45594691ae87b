"""A minimal RESP2 client on an anyio stream, owned by the engine's receiver: pub/sub
subscribers (``SUBSCRIBE``, or ``SSUBSCRIBE`` per shard on Redis Cluster), and the few
one-shot questions the engine asks on a connection of its own (``INFO server`` to check what
kind of server a URL names, ``CLUSTER SLOTS``, Sentinel's ``get-master-addr-by-name``).

Why not coredis' ``PubSub``: it reads the socket eagerly into an unbounded in-process buffer,
and when its connection closes without an error it stops without telling (no resubscription).
Here the socket is read only as fast as messages are handed to the hub, so a node that cannot
keep up leaves the backlog in Redis, where ``client-output-buffer-limit pubsub`` bounds it (Redis
then drops the connection; the receiver reconnects, resubscribes, and the hub's heads check
reads what was missed from history). Every read has a deadline (``idle_timeout``: a PING is
sent after half of it without traffic).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import anyio
import anyio.abc

from ._url import Endpoint, parse_target

__all__ = ["ChannelMoved", "Connection", "ProtocolError", "Redirected", "ReplyError",
           "Subscriber", "ask", "parse_url"]


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


class Connection:
    """One connection to one server: ``connect``, then ``request`` (one command, one reply;
    an error reply is returned as a :class:`ReplyError`, not raised)."""

    def __init__(self, endpoint: Endpoint, *, connect_timeout: float,
                 idle_timeout: float) -> None:
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._buffer = bytearray()

    async def connect(self) -> None:
        ep = self.endpoint
        with anyio.fail_after(self._connect_timeout):
            if ep.port == 0:
                self._stream = await anyio.connect_unix(ep.host)
            elif ep.tls:
                self._stream = await anyio.connect_tcp(
                    ep.host, ep.port, ssl_context=ssl.create_default_context())
            else:
                self._stream = await anyio.connect_tcp(ep.host, ep.port)
            if ep.password is not None:
                auth = (b"AUTH", ep.username.encode(), ep.password.encode()) if ep.username \
                    else (b"AUTH", ep.password.encode())
                await self._stream.send(_command(*auth))
                reply = await self._read_reply()
                if reply != b"OK":
                    raise ConnectionError(f"{ep} refused AUTH: {reply}")

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def request(self, *args: bytes) -> object:
        """Send one command and return its reply (within ``connect_timeout``)."""
        assert self._stream is not None
        with anyio.fail_after(self._connect_timeout):
            await self._stream.send(_command(*args))
            return await self._read_reply()

    # ------------------------------------------------------------------ RESP2

    async def _fill(self) -> None:
        # The deadline is here, around the socket read, so that a timeout never interrupts a
        # reply half parsed: after half the idle time a PING, after the other half an error.
        assert self._stream is not None
        pinged = False
        while True:
            with anyio.move_on_after(self._idle_timeout / 2):
                try:
                    data = await self._stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError,
                        anyio.ClosedResourceError):
                    raise ConnectionError(f"{self.endpoint} closed the connection") from None
                self._buffer += data
                return
            if pinged:
                raise TimeoutError(f"{self.endpoint} silent for {self._idle_timeout} s")
            await self._stream.send(_command(b"PING"))
            pinged = True

    async def _line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 2]
                return line
            if len(self._buffer) > 1 << 16:
                raise ProtocolError("RESP line too long")
            await self._fill()

    async def _read_reply(self) -> object:
        line = await self._line()
        if not line:
            raise ProtocolError("empty RESP line")
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            return ReplyError(rest.decode(errors="replace"))
        try:
            size = int(rest)
        except ValueError:
            raise ProtocolError(f"bad RESP length {rest!r:.40}") from None
        if kind == b"$":
            if size < 0:
                return None
            while len(self._buffer) < size + 2:
                await self._fill()
            data = bytes(self._buffer[:size])
            del self._buffer[:size + 2]
            return data
        if kind == b"*":
            if size < 0:
                return None  # the null array (Sentinel: an unknown service)
            return [await self._read_reply() for _ in range(size)]
        raise ProtocolError(f"unknown RESP type {kind!r}")


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
        assert self._stream is not None
        event = self._acks[channel] = anyio.Event()
        await self._stream.send(_command(self._verbs[0] if subscribe else self._verbs[1],
                                         channel))
        with anyio.fail_after(self._connect_timeout):
            await event.wait()
        if subscribe:
            self._subscribed.add(channel)
        else:
            self._subscribed.discard(channel)

    async def serve(self) -> None:
        """Read until the connection fails (raises ``ConnectionError`` — :class:`Redirected`
        and :class:`ChannelMoved` among them — ``OSError``, ``TimeoutError`` or ``anyio``
        stream errors)."""
        assert self._stream is not None
        message, subscribed, unsubscribed = self._kinds
        while True:
            reply = await self._read_reply()
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
                    continue
            elif kind in (subscribed, unsubscribed) and len(reply) == 3 and \
                    isinstance(reply[1], bytes):
                channel = reply[1]
                event = self._acks.pop(channel, None)
                if event is not None:
                    event.set()
                elif kind == unsubscribed and channel in self._subscribed:
                    raise ChannelMoved(f"{self.endpoint} ended the subscription of {channel!r}"
                                       f" (its slot moved)")
                continue
            elif kind == b"pong" or reply == [b"pong", b""]:
                continue
            raise ProtocolError(f"unexpected pub/sub reply {reply!r:.80}")
