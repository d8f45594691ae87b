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

import ssl
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.abc
from coredis.parser import NotEnoughData, Parser

from ._pubsub import parse_url

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
    user, password and database number from the URL)."""

    def __init__(self, url: str, *, connect_timeout: float) -> None:
        self._address = parse_url(url)
        path = urlsplit(url).path.strip("/")
        self._db = int(path) if path.isdigit() and not url.startswith("unix:") else 0
        self._connect_timeout = connect_timeout
        self._stream: anyio.abc.ByteStream | None = None
        self._parser = Parser()

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    async def open(self) -> None:
        host, port, user, password, tls = self._address
        with anyio.fail_after(self._connect_timeout):
            if port == 0:
                stream: anyio.abc.ByteStream = await anyio.connect_unix(host)
            elif tls:
                stream = await anyio.connect_tcp(host, port,
                                                 ssl_context=ssl.create_default_context())
            else:
                stream = await anyio.connect_tcp(host, port)
            self._stream = stream
            self._parser = Parser()
            try:
                hello = []
                if password is not None:
                    hello.append(pack(b"AUTH", *([user] if user else []), password))
                if self._db:
                    hello.append(pack(b"SELECT", self._db))
                if hello:
                    for reply in await self.execute(hello):
                        if isinstance(reply, Exception):
                            raise ConnectionError(f"Redis refused the connection: {reply}")
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def execute(self, commands: list[bytes]) -> list[Any]:
        """Send ``commands`` (packed) in one write; their replies in order (an error reply as
        its exception instance). The stream is closed if anything goes wrong on the way."""
        stream = self._stream
        if stream is None:
            raise ConnectionError("the batcher's Redis connection is closed")
        try:
            await stream.send(b"".join(commands))
            replies: list[Any] = []
            parser = self._parser
            while len(replies) < len(commands):
                parsed = parser.parse(decode=False)
                if isinstance(parsed, NotEnoughData):
                    try:
                        parser.feed(await stream.receive())
                    except (anyio.EndOfStream, anyio.BrokenResourceError,
                            anyio.ClosedResourceError):
                        raise ConnectionError("Redis closed the connection") from None
                    continue
                replies.append(parsed[1])
            return replies
        except BaseException:
            await self.close()
            raise
