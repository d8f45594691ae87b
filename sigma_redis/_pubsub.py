"""A minimal pub/sub subscriber on an anyio stream (RESP2), owned by the engine's receiver.

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
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

__all__ = ["ProtocolError", "Subscriber", "parse_url"]


class ProtocolError(ConnectionError):
    """Redis sent something that is not RESP2 pub/sub."""


def parse_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """``redis://[user:password@]host[:port][/db]`` (``rediss://``: TLS; ``unix:///path``) as
    (host or path, port, username, password, tls)."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        return parts.path, 0, user, password, False
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
    return parts.hostname or "127.0.0.1", parts.port or 6379, user, password, \
        parts.scheme == "rediss"


def _command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class Subscriber:
    """One subscribed connection. ``on_message(channel, data)`` is called for each message, in
    the order Redis sent them."""

    def __init__(self, url: str, on_message: Callable[[bytes, bytes], None], *,
                 connect_timeout: float, idle_timeout: float) -> None:
        self._address = parse_url(url)
        self._on_message = on_message
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._buffer = bytearray()
        self._acks: dict[bytes, anyio.Event] = {}

    async def connect(self) -> None:
        host, port, user, password, tls = self._address
        with anyio.fail_after(self._connect_timeout):
            if port == 0:
                self._stream = await anyio.connect_unix(host)
            elif tls:
                self._stream = await anyio.connect_tcp(
                    host, port, ssl_context=ssl.create_default_context())
            else:
                self._stream = await anyio.connect_tcp(host, port)
            if password is not None:
                auth = (b"AUTH", user.encode(), password.encode()) if user else \
                    (b"AUTH", password.encode())
                await self._stream.send(_command(*auth))
                reply = await self._read_reply()
                if reply != b"OK":
                    raise ConnectionError(f"Redis refused AUTH: {reply!r}")

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()
            self._stream = None

    async def subscribe(self, channel: bytes, *, subscribe: bool = True) -> None:
        """Send (UN)SUBSCRIBE; returns when Redis confirmed (``serve`` must be running)."""
        assert self._stream is not None
        event = self._acks[channel] = anyio.Event()
        await self._stream.send(_command(b"SUBSCRIBE" if subscribe else b"UNSUBSCRIBE",
                                         channel))
        with anyio.fail_after(self._connect_timeout):
            await event.wait()

    async def serve(self) -> None:
        """Read until the connection fails (raises ``ConnectionError``/``OSError``/
        ``TimeoutError``/``anyio`` stream errors)."""
        assert self._stream is not None
        while True:
            reply = await self._read_reply()
            if not isinstance(reply, list) or not reply:
                raise ProtocolError(f"unexpected pub/sub reply {reply!r:.80}")
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                channel, data = reply[1], reply[2]
                if isinstance(channel, bytes) and isinstance(data, bytes):
                    self._on_message(channel, data)
                    continue
            elif kind in (b"subscribe", b"unsubscribe") and len(reply) == 3:
                event = self._acks.pop(bytes(reply[1]), None)
                if event is not None:
                    event.set()
                continue
            elif kind == b"pong":
                continue
            raise ProtocolError(f"unexpected pub/sub reply {reply!r:.80}")

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
                    raise ConnectionError("Redis closed the pub/sub connection") from None
                self._buffer += data
                return
            if pinged:
                raise TimeoutError(f"Redis pub/sub silent for {self._idle_timeout} s")
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
            raise ConnectionError(f"Redis error: {rest.decode(errors='replace')}")
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self._buffer) < size + 2:
                await self._fill()
            data = bytes(self._buffer[:size])
            del self._buffer[:size + 2]
            return data
        if kind == b"*":
            count = int(rest)
            return [await self._read_reply() for _ in range(max(0, count))]
        raise ProtocolError(f"unknown RESP type {kind!r}")
