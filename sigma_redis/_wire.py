"""The batcher's own Redis connection: one pipelined request/reply stream on anyio.

Why not a coredis pipeline for the batcher: every round trip through coredis' connection
crosses two extra tasks (its writer task, its reader task) and a per-request event — three
more event-loop turns and ~125 µs more CPU per round trip than one stream written and read by
the batcher itself (measured: docs/benchmarks.md, "where the added latency went"). The batcher
has one pipeline in flight at a time, so it needs none of that machinery: it packs its commands
(:class:`Pipe`), writes them in one send and reads exactly as many replies, parsed by coredis'
RESP parser (``coredis.parser.Parser``, compiled; errors come back as coredis' exception
instances: ``NoScriptError``, ``WrongTypeError``, ``ResponseError``). Commands other than the
batcher's (health pings, ``SCRIPT LOAD``) still go through coredis.

Any failure, timeout or cancellation while a pipeline is on the wire leaves the stream in an
unknown state: the connection is closed and the next pipeline opens a new one.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from coredis.parser import NotEnoughData, Parser

from ._pubsub import open_transport, parse_url, receive_bytes, send_bytes
from ._url import Endpoint

__all__ = ["Pipe", "Wire"]


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


def pack(*args: Any) -> bytes:
    """One command in RESP2 (an array of bulk strings)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = _arg(arg)
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class Pipe:
    """The commands of one pipeline, in order; each method returns the index of its reply.
    The same method names and arguments as the coredis pipeline the request plans were written
    for."""

    __slots__ = ("commands",)

    def __init__(self) -> None:
        self.commands: list[bytes] = []

    def _add(self, *args: Any) -> int:
        self.commands.append(pack(*args))
        return len(self.commands) - 1

    def evalsha(self, sha: bytes, *, keys: list[str], args: list[Any] | None = None) -> int:
        return self._add(b"EVALSHA", sha, len(keys), *keys, *(args or ()))

    def delete(self, keys: list[str]) -> int:
        return self._add(b"DEL", *keys)

    def hget(self, key: str, field: str) -> int:
        return self._add(b"HGET", key, field)

    def persist(self, key: str) -> int:
        return self._add(b"PERSIST", key)

    def pexpire(self, key: str, milliseconds: int) -> int:
        return self._add(b"PEXPIRE", key, milliseconds)


class Wire:
    """One connection to the Redis of ``url`` (``redis://``, ``rediss://``, ``unix://``;
    user, password and database number from the URL).

    A plain TCP or Unix connection is a non-blocking socket of its own, so a pipeline can be
    written synchronously (:meth:`send_now`) by the code that has it ready — the engine's
    ``submit``, when nothing else is in flight — without waiting for a task to be scheduled;
    :meth:`finish` then reads the replies. TLS goes through an anyio stream (``send_now``
    declines)."""

    def __init__(self, url: str, *, connect_timeout: float) -> None:
        host, port, user, password, tls = parse_url(url)
        self._endpoint = Endpoint(host, port, user, password, tls)
        path = urlsplit(url).path.strip("/")
        self._db = int(path) if path.isdigit() and not url.startswith("unix:") else 0
        self._connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._stream: anyio.abc.ByteStream | None = None
        self._unsent = b""
        self._parser = Parser()

    @property
    def is_open(self) -> bool:
        return self._sock is not None or self._stream is not None

    @property
    def can_send_now(self) -> bool:
        """Open, on a socket of its own (not TLS), nothing of an earlier pipeline unsent."""
        return self._sock is not None and not self._unsent

    async def open(self) -> None:
        ep = self._endpoint
        with anyio.fail_after(self._connect_timeout):
            self._sock, self._stream = await open_transport(ep)
            self._parser = Parser()
            self._unsent = b""
            try:
                hello = []
                if ep.password is not None:
                    hello.append(pack(b"AUTH", *([ep.username] if ep.username else []),
                                      ep.password))
                if self._db:
                    hello.append(pack(b"SELECT", self._db))
                if hello:
                    for reply in await self.execute(hello):
                        if isinstance(reply, Exception):
                            raise ConnectionError(f"Redis refused the connection: {reply}")
            except BaseException:
                await self.close()
                raise

    def _close_now(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    async def close(self) -> None:
        self._close_now()
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    def send_now(self, data: bytes) -> None:
        """Write ``data`` (one pipeline) now, without waiting (:attr:`can_send_now` must be
        true); what the socket does not take at once is written by :meth:`finish`. An
        ``OSError`` closes the connection (nothing of ``data`` was sent then)."""
        sock = self._sock
        assert sock is not None
        assert not self._unsent
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._close_now()
            raise
        self._unsent = data[sent:]

    async def finish(self, count: int) -> list[Any]:
        """The replies of the pipeline :meth:`send_now` wrote (``count`` commands), after
        writing what it left; closed if anything goes wrong on the way."""
        try:
            if self._unsent:
                data, self._unsent = self._unsent, b""
                await self._send(data)
            return await self._replies(count)
        except BaseException:
            await self.close()
            raise

    async def execute(self, commands: list[bytes]) -> list[Any]:
        """Send ``commands`` (packed) in one write; their replies in order (an error reply as
        its exception instance). The stream is closed if anything goes wrong on the way."""
        if not self.is_open:
            raise ConnectionError("the batcher's Redis connection is closed")
        try:
            await self._send(b"".join(commands))
            return await self._replies(len(commands))
        except BaseException:
            await self.close()
            raise

    async def _send(self, data: bytes) -> None:
        await send_bytes(self._stream, self._sock, data, self._endpoint)

    async def _receive(self) -> bytes:
        return await receive_bytes(self._stream, self._sock, self._endpoint)

    async def _replies(self, count: int) -> list[Any]:
        replies: list[Any] = []
        parser = self._parser
        while len(replies) < count:
            parsed = parser.parse(decode=False)
            if isinstance(parsed, NotEnoughData):
                parser.feed(await self._receive())
                continue
            replies.append(parsed[1])
        return replies
