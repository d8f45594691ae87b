"""Hostile input over real sockets on 127.0.0.1, on both backends: each attack checks the exact
refusal the attacker sees (an HTTP status line, or the code in the server's close frame), and
that a well-behaved client of the same server keeps getting its echoes meanwhile.

The attacker's bytes are built by hand here (HTTP upgrade, masked client frames), not by the
library, so that the server's parser is what is being tested.
"""

from __future__ import annotations

import base64
import gc
import logging
import os
import struct
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from functools import cache, partial
from typing import Any

import anyio
import flatbuffers
import pytest
from adapters_support import (
    BACKENDS,
    DEADLINE,
    LOCAL,
    Client,
    Server,
    any_server,
    connected_client,
    next_message,
    server_logger,
    serving,
    url,
)
from anyio.abc import SocketStream
from asgi_support import ASGIServer
from test_connection import _unknown_envelope as unknown_envelope

from sigma_core import codec
from sigma_core._wire import Ack as w_ack
from sigma_core._wire import Envelope as w_envelope
from sigma_core._wire import Hello as w_hello
from sigma_core._wire import StreamPosition as w_stream_position
from sigma_core._wire import TopicPosition as w_topic_position
from sigma_core._wire.Body import Body as w_body
from sigma_core.client import ConnectionStatus
from sigma_core.errors import CloseCode
from sigma_core.hub import Session
from sigma_core.messages import (
    Data,
    Hello,
    Ping,
    StreamPosition,
    Subscribe,
    TopicPosition,
    Unsubscribe,
    Welcome,
)

pytestmark = pytest.mark.anyio

OP_TEXT, OP_BINARY, OP_CLOSE = 0x1, 0x2, 0x8


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


# ----------------------------------------------------------------------------- raw attacker


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One masked client frame (RFC 6455 §5.2); ``rsv`` is ORed into the first byte."""
    head = bytearray([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    mask = os.urandom(4)
    head += mask
    return bytes(head) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Raw:
    """A bare TCP connection to the server with a receive buffer."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def fill(self) -> bool:
        """Read more; False at EOF (or reset)."""
        try:
            chunk = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            return False
        self.buffer += chunk
        return True

    async def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not await self.fill():
                raise AssertionError(f"connection ended with {bytes(self.buffer)!r} buffered")
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read_until_eof(self) -> bytes:
        while await self.fill():
            pass
        out = bytes(self.buffer)
        self.buffer.clear()
        return out

    async def http_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            if not await self.fill():
                raise AssertionError(f"no HTTP head, got {bytes(self.buffer)!r}")
        end = self.buffer.index(b"\r\n\r\n") + 4
        head = bytes(self.buffer[:end])
        del self.buffer[:end]
        return head

    async def frame(self) -> tuple[int, bytes]:
        """One server frame (unmasked): (opcode, payload)."""
        b0, b1 = await self.read_exact(2)
        assert not b1 & 0x80, "server frames are not masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.read_exact(8))
        return b0 & 0x0F, await self.read_exact(n)

    async def close_code(self) -> int:
        """Skip frames up to the server's close frame; its 2-byte code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == OP_CLOSE:
                assert len(payload) >= 2, payload
                code: int = struct.unpack("!H", payload[:2])[0]
                return code

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def send_binary(self, payload: bytes) -> None:
        await self.send(client_frame(OP_BINARY, payload))

    async def envelope(self) -> Any:
        """The next binary message, decoded (skipping anything else but a close)."""
        while True:
            opcode, payload = await self.frame()
            assert opcode != OP_CLOSE, f"closed: {payload!r}"
            if opcode == OP_BINARY:
                return codec.decode(payload)


@asynccontextmanager
async def raw(server: Server) -> AsyncIterator[Raw]:
    async with await anyio.connect_tcp(LOCAL, server.port) as stream:
        yield Raw(stream)


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET / HTTP/1.1\r\nHost: {LOCAL}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sigma.v1\r\n\r\n").encode()


@asynccontextmanager
async def upgraded(server: Server) -> AsyncIterator[Raw]:
    """A raw connection after a valid 101 with subprotocol sigma.v1 (no Hello yet)."""
    async with raw(server) as conn:
        await conn.send(upgrade_request(server.port))
        head = await conn.http_head()
        assert head.startswith(b"HTTP/1.1 101 "), head
        assert b"sigma.v1" in head.lower(), head
        yield conn


@asynccontextmanager
async def welcomed(server: Server, hello: Hello | None = None
                   ) -> AsyncIterator[tuple[Raw, Welcome]]:
    async with upgraded(server) as conn:
        await conn.send_binary(codec.encode(hello or Hello()))
        welcome = await conn.envelope()
        assert isinstance(welcome, Welcome), welcome
        yield conn, welcome


def status_line(head: bytes) -> bytes:
    return head.split(b"\r\n", 1)[0]


# ----------------------------------------------------------------------------- bystander


@asynccontextmanager
async def echo_server(backend: str, client_options: dict[str, Any] | None = None,
                      **options: Any) -> AsyncIterator[tuple[Server, Client]]:
    """A server that echoes every message to its sender, and a well-behaved client of it."""
    async with serving(backend, **options) as server:
        def echo(session: Session, data: bytes, topic: str) -> None:
            server.send_to_client(session, data)

        server.on("message", echo)
        async with connected_client(backend, url(server), **(client_options or {})) as client:
            await assert_echo(client, b"before")
            yield server, client


async def assert_echo(client: Client, data: bytes) -> None:
    assert client.send(data)
    message = await next_message(client)
    assert message.data == data


async def during(client: Client, attack: Callable[[], Awaitable[None]]) -> None:
    """Run ``attack`` while the bystander keeps echoing; then one more echo after it."""
    done = anyio.Event()

    async def run_attack() -> None:
        try:
            await attack()
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_attack)
        n = 0
        while not done.is_set():
            n += 1
            await assert_echo(client, b"during-%d" % n)
            await anyio.sleep(0.05)
    await assert_echo(client, b"after")


# ----------------------------------------------------------------------------- the log


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture, anyio_backend: str) -> pytest.LogCaptureFixture:
    """Captures the server's log at every level."""
    caplog.set_level(logging.DEBUG, logger=server_logger(anyio_backend))
    return caplog


def logged(caplog: pytest.LogCaptureFixture, backend: str, *needles: str) -> logging.LogRecord:
    """The server's record (INFO or above: visible at an ordinary level) whose message holds
    every needle, and the attacker's address."""
    messages = []
    for record in caplog.records:
        if record.name == server_logger(backend):
            message = record.getMessage()
            messages.append(message)
            if all(n in message for n in (*needles, f"from {LOCAL}:")) \
                    and record.levelno >= logging.INFO:
                return record
    raise AssertionError(f"nothing logged with {needles}: {messages}")


# ----------------------------------------------------------------------------- attacks
#
# Each attack is one connection that checks the refusal it gets. The tests below run each
# alongside a bystander; test_memory_returns_to_its_baseline runs them all, many times.

Attack = Callable[[Server], Coroutine[Any, Any, None]]


async def expect_status(server: Server, data: bytes, status: bytes) -> None:
    async with raw(server) as conn:
        # The answer may come (and the socket close) before we finished sending.
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send(data)
        head = await conn.http_head()
        if isinstance(server, ASGIServer):  # the ASGI server writes the reason phrase, or none
            assert status_line(head)[:12] == status[:12], head
        else:
            assert status_line(head) == status, head
        await conn.read_until_eof()


async def garbage_http(server: Server) -> None:
    await expect_status(server, bytes(range(256)) * 4, b"HTTP/1.1 400 Bad Request")


def tls_client_hello() -> bytes:
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + b"\x00\x00")
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


async def tls_on_plain_port(server: Server) -> None:
    await expect_status(server, tls_client_hello(), b"HTTP/1.1 400 Bad Request")


async def oversized_head(server: Server) -> None:
    request = upgrade_request(0)
    padding = b"X-Padding: " + b"a" * (17 * 1024) + b"\r\n"
    await expect_status(server, request[:-2] + padding + b"\r\n",
                        b"HTTP/1.1 431 Request Header Fields Too Large")


async def slowloris(server: Server) -> None:
    """Dribbles an upgrade request, never its final byte, until the server answers 408."""
    timeout = server.options.handshake_timeout
    request = upgrade_request(0)
    async with raw(server) as conn:
        started = anyio.current_time()

        async def dribble() -> None:
            for byte in request[:-1]:  # never the final "\n"
                try:
                    await conn.send(bytes([byte]))
                except (anyio.BrokenResourceError, ConnectionError):
                    return
                await anyio.sleep(timeout / 5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(dribble)
            head = await conn.http_head()
            elapsed = anyio.current_time() - started
            body = await conn.read_until_eof()
            tg.cancel_scope.cancel()
        assert status_line(head) == b"HTTP/1.1 408 Request Timeout", head
        assert b"\r\nConnection: close\r\n" in head
        assert body == f"HTTP request not complete within the handshake timeout " \
                       f"({timeout:g} s)".encode(), body
        assert elapsed >= timeout / 2, elapsed  # at the timeout, not at once (loose: the
        # server's clock starts at accept, ours once the connect returned, on a busy machine)


async def expect_close(server: Server, frame: bytes, expected: int) -> None:
    async with upgraded(server) as conn:
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send(frame)
        assert await conn.close_code() == expected


async def data_before_hello(server: Server) -> None:
    await expect_close(server, client_frame(OP_BINARY, codec.encode_data(seq=1, payload=b"x")),
                       CloseCode.UNEXPECTED_MESSAGE)


async def garbage_envelope(server: Server) -> None:
    await expect_close(server, client_frame(OP_BINARY, b"\xde\xad\xbe\xef" * 8),
                       CloseCode.BAD_ENVELOPE)


async def wrong_file_identifier(server: Server) -> None:
    envelope = codec.encode(Hello())
    assert envelope[4:8] == codec.FILE_IDENTIFIER
    forged = envelope[:4] + b"XXXX" + envelope[8:]
    await expect_close(server, client_frame(OP_BINARY, forged), CloseCode.BAD_ENVELOPE)


async def text_frame(server: Server) -> None:
    await expect_close(server, client_frame(OP_TEXT, b"hello"), CloseCode.UNSUPPORTED_DATA)


async def message_over_max_size(server: Server) -> None:
    await expect_close(server, client_frame(OP_BINARY, os.urandom(5000)),
                       CloseCode.MESSAGE_TOO_BIG)


async def reserved_bit(server: Server) -> None:
    frame = client_frame(OP_BINARY, codec.encode(Hello()), rsv=0x40)  # RSV1, no extension
    await expect_close(server, frame, CloseCode.PROTOCOL_ERROR)


def wrong_resume_token(victim: str) -> Attack:
    """Claims ``victim``'s session with a made-up token: gets a fresh session instead."""
    async def attack(server: Server) -> None:
        hello = Hello(session_id=victim, resume_token=os.urandom(32))
        async with welcomed(server, hello) as (_, welcome):
            assert not welcome.resumed
            assert welcome.fresh_reason != ""
            assert welcome.session_id != victim
            assert server.get_client(victim) is not None

    return attack


async def flood(server: Server) -> None:
    async with welcomed(server) as (conn, _):
        frames = b"".join(client_frame(OP_BINARY, codec.encode_data(seq=n, payload=b"x"))
                          for n in range(1, 51))
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send(frames)
        assert await conn.close_code() == CloseCode.RATE_LIMITED


async def garbage_inside_http(server: Server) -> None:
    """A request that starts well and goes bad inside its head."""
    await expect_status(server, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                b"\x00\xff\xfe not a header line \x01\r\n\r\n",
                        b"HTTP/1.1 400 Bad Request")


async def invalid_utf8(server: Server) -> None:
    """A close frame whose reason is not UTF-8 (text frames are refused earlier, with 1003)."""
    frame = client_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye \xff\xfe")
    await expect_close(server, frame, CloseCode.INVALID_FRAME_PAYLOAD_DATA)


async def huge_frame_header(server: Server) -> None:
    """Only the head of a frame announcing 1 TiB: refused at once, nothing waited for."""
    header = bytes([0x80 | OP_BINARY, 0x80 | 127]) + struct.pack("!Q", 1 << 40) + b"\0" * 4
    await expect_close(server, header, CloseCode.MESSAGE_TOO_BIG)


async def truncated_envelope(server: Server) -> None:
    envelope = codec.encode(Hello(session_id="s" * 20, auth_token="t" * 20))
    await expect_close(server, client_frame(OP_BINARY, envelope[:-12]), CloseCode.BAD_ENVELOPE)


async def offsets_out_of_bounds(server: Server) -> None:
    """A Data envelope after the Welcome whose root offset points past its end."""
    envelope = bytearray(codec.encode_data(seq=1, payload=b"x" * 64))
    envelope[0:4] = struct.pack("<I", len(envelope) + 1000)
    async with welcomed(server) as (conn, _):
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send_binary(bytes(envelope))
        assert await conn.close_code() == CloseCode.BAD_ENVELOPE


async def unknown_union_member(server: Server) -> None:
    """A message type from a newer peer is ignored (protocol rule), not fatal: the Data
    behind it is still echoed."""
    async with welcomed(server) as (conn, _):
        await conn.send_binary(unknown_envelope())
        await conn.send_binary(codec.encode_data(seq=1, payload=b"still here"))
        message = await conn.envelope()
        while not isinstance(message, Data):
            message = await conn.envelope()
        assert bytes(message.payload) == b"still here"


def aliased_positions(n: int, *, ack: bool = False) -> bytes:
    """A Hello (or Ack) envelope whose ``positions`` vector points ``n`` times at one
    TopicPosition table: legal FlatBuffers, refused by the decoder (it would decode to ``n``
    objects from a few bytes each)."""
    b = flatbuffers.Builder(1024)
    topic = b.CreateString(b"t")
    w_topic_position.Start(b)
    w_topic_position.AddPosition(b, w_stream_position.CreateStreamPosition(b, 1, 0))
    w_topic_position.AddTopic(b, topic)
    table = w_topic_position.End(b)
    b.StartVector(4, n, 4)
    for _ in range(n):
        b.PrependUOffsetTRelative(table)
    vector = b.EndVector()
    if ack:
        w_ack.Start(b)
        w_ack.AddPositions(b, vector)
        body, body_type = w_ack.End(b), w_body.Ack
    else:
        w_hello.Start(b)
        w_hello.AddPositions(b, vector)
        body, body_type = w_hello.End(b), w_body.Hello
    w_envelope.Start(b)
    w_envelope.AddBody(b, body)
    w_envelope.AddBodyType(b, body_type)
    b.Finish(w_envelope.End(b), file_identifier=codec.FILE_IDENTIFIER)
    return bytes(b.Output())


@cache
def _attack_bytes(name: str) -> bytes:
    """Built once: building them inside the memory loop would stall the event loop (tracing)."""
    if name == "shared_tables":
        return client_frame(OP_BINARY, aliased_positions(900))
    return client_frame(OP_BINARY, b"ab", fin=False) + b"".join(
        client_frame(0x0, b"ab", fin=False) for _ in range(1100))


async def shared_tables(server: Server) -> None:
    """A Hello whose positions all point at one table (cheap to send, costly to decode)."""
    await expect_close(server, _attack_bytes("shared_tables"), CloseCode.BAD_ENVELOPE)


async def tiny_fragments(server: Server) -> None:
    """A message in 2-byte fragments, more of them than max_fragments (1,024)."""
    await expect_close(server, _attack_bytes("tiny_fragments"), CloseCode.POLICY_VIOLATION)


async def too_many_positions(server: Server) -> None:
    """A Hello with more positions than a session may hold topics (+ $all, $inbox)."""
    hello = Hello(positions=tuple(TopicPosition(topic=f"t{i}", position=StreamPosition(1, 0))
                                  for i in range(40)))
    await expect_close(server, client_frame(OP_BINARY, codec.encode(hello)),
                       CloseCode.LIMIT_EXCEEDED)


async def topic_churn(server: Server) -> None:
    """Subscribes to and leaves a few fresh topics: their streams must not outlive it."""
    async with welcomed(server) as (conn, _):
        for i in range(2):
            name = os.urandom(6).hex()
            await conn.send_binary(codec.encode(Subscribe(topic=name, request_id=2 * i + 1)))
            await conn.send_binary(codec.encode(Unsubscribe(topic=name, request_id=2 * i + 2)))
        for _ in range(4):
            await conn.envelope()  # Subscribed, Unsubscribed, twice


# The issue-12 attacks run by test_memory_returns_to_its_baseline (the hub-level bounds are in
# test_amplification.py): each is refused or bounded, and must leave nothing behind.

#: The topic with history that replay_hello asks for from offset 0 (published by the test).
HISTORY_TOPIC = "history"


def replay_hello(epoch: int) -> Attack:
    """A fresh session's Hello asking for a topic's whole history from offset 0: takes the
    Welcome and leaves with the replay (paced, at most max_replay_bytes) unread."""
    async def attack(server: Server) -> None:
        hello = Hello(positions=(TopicPosition(topic=HISTORY_TOPIC,
                                               position=StreamPosition(epoch, 0)),))
        async with welcomed(server, hello) as (conn, welcome):
            assert welcome.recovery
            await conn.envelope()  # the first replayed message

    return attack


def resubscribe(epoch: int) -> Attack:
    """Subscribes to a topic with history from offset 0, then again and again while it holds
    it: the first replays (paced), the others answer Subscribed and replay nothing."""
    async def attack(server: Server) -> None:
        async with welcomed(server) as (conn, _):
            for i in range(3):
                await conn.send_binary(codec.encode(Subscribe(
                    topic=HISTORY_TOPIC, position=StreamPosition(epoch, 0), request_id=i + 1)))
            for _ in range(3):
                await conn.envelope()

    return attack


async def session_churn(server: Server) -> None:
    """Fresh sessions from one address, one after the other, each left at once."""
    for _ in range(3):
        async with welcomed(server):
            pass


async def ping_flood(server: Server) -> None:
    """Pings (envelopes and WebSocket pings) sent without reading a Pong: past the rate
    limit the connection is closed (4008); the Pongs count toward the high-water mark."""
    async with welcomed(server) as (conn, _):
        frames = b"".join(client_frame(OP_BINARY, codec.encode(Ping(id=n, timestamp_ms=0)))
                          + client_frame(0x9, b"p" * 100) for n in range(30))
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send(frames)
        assert await conn.close_code() == CloseCode.RATE_LIMITED


@cache
def _deflate_bomb() -> bytes:
    import zlib

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(64 << 20)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return client_frame(OP_BINARY, bomb[:-4], rsv=0x40)


async def deflate_bomb(server: Server) -> None:
    """64 MiB of zeros in a 64 KB compressed frame: inflating stops at max_message_size."""
    bomb = _deflate_bomb()  # (built before the upgrade: the handshake timeout runs)
    async with raw(server) as conn:
        await conn.send(upgrade_request(server.port).replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
        head = await conn.http_head()
        assert b"permessage-deflate" in head, head
        with suppress(anyio.BrokenResourceError, ConnectionError):
            await conn.send(bomb)
        assert await conn.close_code() == CloseCode.MESSAGE_TOO_BIG


# Options some attacks need: a Welcome listing 4 topics fits in 4096 bytes (the default 100
# topics would not), and a rate limit to pass.
SMALL_MESSAGES: dict[str, Any] = {"max_message_size": 4096, "max_topics_per_session": 4}
RATE_LIMITED: dict[str, Any] = {"max_messages_per_second": 5}


# ----------------------------------------------------------------------------- the attacks


class Case:
    """One attack of the table below: the coroutine that runs it against the server, the
    server's options, what the server logs about it (with the attacker's address), and what
    must not be in that record (bytes the peer sent)."""

    def __init__(self, run: Attack, *logged_needles: str,
                 options: dict[str, Any] | None = None, not_logged: tuple[str, ...] = ()
                 ) -> None:
        self.run = run
        self.logged = logged_needles
        self.options = options or {}
        self.not_logged = not_logged


async def run_attack(anyio_backend: str, server_log: pytest.LogCaptureFixture,
                     attack: Case) -> None:
    """The attack against an echo server whose client keeps echoing throughout (``during``),
    then the server's log record about it."""
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, **attack.options) as (server, client):
            await during(client, partial(attack.run, server))
    if attack.logged:
        record = logged(server_log, anyio_backend, *attack.logged)
        for needle in attack.not_logged:
            assert needle not in record.getMessage()


#: Attacks on the native adapters' HTTP and WebSocket stages (the ASGI server does those).
NATIVE_ATTACKS = {
    "shared_tables_in_a_hello_close_4000": Case(shared_tables, options=SMALL_MESSAGES),
    "more_fragments_than_max_fragments_close_1008": Case(tiny_fragments),
    "a_hello_with_too_many_positions_closes_4009": Case(too_many_positions,
                                                           options=SMALL_MESSAGES),
    "garbage_instead_of_http_gets_400": Case(garbage_http, "HTTP 400",
                                               "malformed HTTP request line"),
    # "not an HTTP request", or "malformed HTTP request line" if the random bytes hold a "\n"
    "tls_client_hello_on_plain_port_gets_400": Case(tls_on_plain_port, "HTTP 400",
                                                      "HTTP request"),
    "slowloris_gets_408_at_the_handshake_timeout": Case(
        slowloris, "HTTP 408", "within the handshake timeout (1 s)",
        options={"handshake_timeout": 1.0}),
    "oversized_http_head_gets_431": Case(oversized_head, "HTTP 431",
                                           "HTTP head larger than 16384 bytes"),
    "reserved_bit_closes_1002": Case(reserved_bit, "1002 protocol_error", "Reserved bit"),
    # bytes the peer sent are not logged
    "garbage_inside_the_http_head_gets_400": Case(garbage_inside_http, "HTTP 400",
                                                    not_logged=("\\xff", "not a header")),
    "invalid_utf8_closes_1007": Case(invalid_utf8, "1007"),
    "frame_announcing_a_huge_length_closes_1009_at_its_head": Case(
        huge_frame_header, "1009 message_too_big", str(1 << 40)),
}

#: Attacks on the envelope stage, the same on every server (native and ASGI).
ENVELOPE_ATTACKS = {
    "data_before_hello_closes_4001": Case(data_before_hello, "4001 unexpected_message",
                                            "unexpected Data"),
    "garbage_envelope_closes_4000": Case(garbage_envelope, "4000 bad_envelope"),
    # bytes the peer sent are not logged
    "wrong_file_identifier_closes_4000": Case(wrong_file_identifier, "4000 bad_envelope",
                                                "not a SigmaSockets envelope",
                                                not_logged=("XXXX",)),
    "text_frame_closes_1003": Case(text_frame, "1003 unsupported_data", "text"),
    # 4096 alone is refused (ValueError: too small for a Welcome listing 100 topics of 256
    # bytes, needs >= 32928): lower the topic limit so that it is accepted.
    "message_over_max_size_closes_1009": Case(message_over_max_size, "1009 message_too_big",
                                                "4096", options=SMALL_MESSAGES),
    "truncated_envelope_closes_4000": Case(truncated_envelope, "4000 bad_envelope"),
    "envelope_offsets_out_of_bounds_close_4000": Case(offsets_out_of_bounds,
                                                        "4000 bad_envelope"),
    "unknown_union_member_is_ignored_and_the_connection_goes_on": Case(unknown_union_member),
}


@pytest.mark.parametrize("name", list(NATIVE_ATTACKS))
async def test_native_attack(anyio_backend: str, server_log: pytest.LogCaptureFixture,
                             name: str) -> None:
    await run_attack(anyio_backend, server_log, NATIVE_ATTACKS[name])


@any_server
@pytest.mark.parametrize("name", list(ENVELOPE_ATTACKS))
async def test_envelope_attack(anyio_backend: str, server_log: pytest.LogCaptureFixture,
                               name: str) -> None:
    await run_attack(anyio_backend, server_log, ENVELOPE_ATTACKS[name])


async def test_subscribe_churn_leaves_no_streams_behind(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            assert server.hub is not None
            streams = len(server.hub._engine)
            await during(client, partial(topic_churn, server))
            # Its four topics are gone (they used to stay for good); its session awaits resume
            # (session_timeout), and its inbox, never sent to, is no stream (only a key).
            assert len(server.hub._engine) == streams



ALLOWED = "https://chat.example"


def origin_request(port: int, origin: str | None) -> bytes:
    request = upgrade_request(port)
    if origin is None:
        return request
    return request[:-2] + f"Origin: {origin}\r\n\r\n".encode()


@any_server
async def test_origin_not_on_the_allow_list_gets_403(
        anyio_backend: str, server_log: pytest.LogCaptureFixture) -> None:
    """With ``allowed_origins`` set, an upgrade from another origin, or with none, is refused
    with 403 (cross-site WebSocket hijacking); one from an allowed origin, in any letter case
    (origins are case-insensitive in scheme and host), is accepted."""
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, allowed_origins=[ALLOWED],
                               client_options={"extra_headers": (("Origin", ALLOWED),)}
                               ) as (server, client):
            async def attack() -> None:
                for origin in ("https://evil.example", None, "null", ALLOWED + ".evil"):
                    await expect_status(server, origin_request(server.port, origin),
                                        b"HTTP/1.1 403 Forbidden")
                async with raw(server) as conn:
                    await conn.send(origin_request(server.port, ALLOWED.upper()))
                    head = await conn.http_head()
                    assert head.startswith(b"HTTP/1.1 101 "), head

            await during(client, attack)
    logged(server_log, anyio_backend, "HTTP 403", "https://evil.example", "not allowed")


# ----------------------------------------------------------------------------- session stage


@any_server
async def test_wrong_resume_token_gets_a_fresh_session(
        anyio_backend: str, server_log: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            info = client.get_session()
            assert info is not None
            victim = info.id
            await during(client, partial(wrong_resume_token(victim), server))
            after = client.get_session()
            assert after is not None
            assert after.id == victim
            session = server.get_client(victim)
            assert session is not None
    logged(server_log, anyio_backend, "resume failed", "wrong token", "fresh session")


@any_server
async def test_resume_with_an_expired_token_gets_a_fresh_session(
        anyio_backend: str, server_log: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, session_timeout=0.3) as (server, client):
            async with welcomed(server) as (_, first):
                session_id, token = first.session_id, first.resume_token
            with anyio.fail_after(5):
                while server.get_client(session_id) is not None:  # expires 0.3 s after
                    await anyio.sleep(0.05)

            async def attack(server: Server) -> None:
                async with welcomed(server, Hello(session_id=session_id,
                                                  resume_token=token)) as (_, welcome):
                    assert not welcome.resumed
                    assert welcome.session_id != session_id
                    assert welcome.fresh_reason != ""

            await during(client, partial(attack, server))
    logged(server_log, anyio_backend, "resume failed", "fresh session")


@any_server
async def test_flood_past_rate_limit_closes_4008(anyio_backend: str,
                                                 server_log: pytest.LogCaptureFixture) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, **RATE_LIMITED) as (server, client):
            await during(client, partial(flood, server))
    record = logged(server_log, anyio_backend, "4008 rate_limited", "5 msgs/s")
    assert record.levelno == logging.WARNING


# ----------------------------------------------------------------------------- secrets


def encodings(secret: bytes) -> set[str]:
    """The ways the first 8 bytes of a token could show up in a log line (so the whole token
    too, whose encodings start with them): bytes repr, hex in both cases, base64 and urlsafe
    base64 (their first 10 characters, the same whether the rest is padded or not)."""
    prefix = secret[:8]
    return {repr(prefix)[2:-1], prefix.hex(), prefix.hex().upper(),
            base64.b64encode(prefix).decode()[:10],
            base64.urlsafe_b64encode(prefix).decode()[:10]}


async def test_resume_tokens_are_never_logged(anyio_backend: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Connect, drop, resume, a failed resume and a takeover with the real token, all at
    DEBUG: no record of either end holds a token in any encoding, nor its first bytes."""
    caplog.set_level(logging.DEBUG)
    tokens: set[bytes] = set()

    def token_of(server: Server, session_id: str) -> bytes:
        session = server.get_client(session_id)
        assert session is not None
        token: bytes = session._token
        tokens.add(token)
        return token

    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)) as client:
            info = client.get_session()
            assert info is not None
            token = token_of(server, info.id)
            reconnected = anyio.Event()

            def on_status(status: ConnectionStatus) -> None:
                if status is ConnectionStatus.CONNECTED:
                    reconnected.set()

            client.on("connection", on_status)
            server.disconnect_client(info.id, end_session=False)  # a drop: the client resumes
            await reconnected.wait()
            again = client.get_session()
            assert again is not None
            assert again.resumed
            assert token_of(server, again.id) == token
            # A near miss (the real token's first 31 bytes, its last one changed) fails; the
            # real one takes over.
            near = token[:-1] + bytes([token[-1] ^ 1])
            async with welcomed(server, Hello(session_id=info.id,
                                              resume_token=near)) as (_, welcome):
                assert not welcome.resumed
                tokens.add(welcome.resume_token)
            async with welcomed(server, Hello(session_id=info.id, resume_token=token)) \
                    as (_, welcome):
                assert welcome.resumed
    needles = set().union(*(encodings(t) for t in tokens))
    records = [r for r in caplog.records if r.name.startswith(("sigma_", "sigma."))]
    assert {r.name for r in records} >= {f"sigma_{anyio_backend}.server",
                                         f"sigma_{anyio_backend}.client"}
    assert any("taken_over" in r.getMessage() or "session_taken_over" in r.getMessage()
               for r in records), [r.getMessage() for r in records]
    for record in records:
        text = record.getMessage() + repr(vars(record))
        leaked = [n for n in needles if n in text]
        assert not leaked, (leaked, text)


# ----------------------------------------------------------------------------- memory


class _FormatAndDrop(logging.Handler):
    """Formats every record (so the log path runs in full) and keeps nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def _attack_logger(backend: str) -> logging.Logger:
    logger = logging.getLogger(f"test_hostile_input.memory.{backend}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # pytest's capture would keep every record
    if not logger.handlers:
        logger.addHandler(_FormatAndDrop())
    return logger


def _hub_counts(server: Server) -> tuple[int, int]:
    hub = server.hub
    assert hub is not None
    return hub.connection_count(), server.get_stats().sessions


#: Rounds of every attack, and the bounds on growth after them: no type of object the garbage
#: collector tracks (connections, sessions, events, containers) grows by more than twice the
#: rounds (a leak of one per attack is 27 per round), and the interpreter holds at most
#: GROWTH_BOUND more memory blocks (``sys.getallocatedblocks``: every object and buffer,
#: whatever its size, counted without tracing anything). Measured: 150-200 blocks on asyncio,
#: 300-400 on trio (anyio's own bookkeeping of the attackers' connects, ~15 a round); a closed
#: connection the hub kept would be ~40 blocks per attack, 13,000 in all.
ROUNDS = 12
GROWTH_BOUND = 800


def _hub_tables(server: Server) -> dict[str, int]:
    """Sizes of the hub's tables that a peer can make grow."""
    hub = server.hub
    assert hub is not None
    return {"streams": len(hub._engine), "replaying": len(hub._replaying),
            "peer sessions": sum(hub._peer_sessions.values()),
            "pending handshakes": hub._pending_handshakes, "members": len(hub._members)}


async def test_memory_returns_to_its_baseline(anyio_backend: str) -> None:
    """Every attack of this file (issue 12's included: replay Hello and re-Subscribe, aliased
    vectors, tiny fragments, too many positions, session churn from one address, topics
    left idle, a ping flood, a deflate bomb), 12 times over: afterwards the hub holds what it
    held before (one bystander's connection and session; the attackers' sessions expired, no
    stream, replay, per-address count or pending handshake left), no kind of object has piled
    up, and the interpreter holds no more memory blocks than before, within a small bound.

    Measured between phases only (the hub's tables, an object census and a block count after
    a settle and a collection): nothing traces allocations while the attacks run, so
    handshakes are not slowed, and the handshake timeout is a generous 2 s."""
    options = {**SMALL_MESSAGES, **RATE_LIMITED, "handshake_timeout": 2.0,
               "session_timeout": 0.2, "compression_enabled": True,
               # Every attacker comes from 127.0.0.1: the per-address rate of fresh sessions
               # (test_amplification's) would refuse the later rounds.
               "new_sessions_per_peer_per_second": 1000.0,
               "logger": _attack_logger(anyio_backend)}
    with anyio.fail_after(120):
        async with echo_server(anyio_backend, **options) as (server, client):
            info = client.get_session()
            assert info is not None
            epoch = server.publish(HISTORY_TOPIC, b"h" * 3000).epoch
            for _ in range(19):
                server.publish(HISTORY_TOPIC, b"h" * 3000)
            attacks: list[Attack] = [
                garbage_http, tls_on_plain_port, oversized_head, slowloris,
                data_before_hello, garbage_envelope, wrong_file_identifier, text_frame,
                message_over_max_size, reserved_bit, wrong_resume_token(info.id), flood,
                garbage_inside_http, invalid_utf8, huge_frame_header, truncated_envelope,
                offsets_out_of_bounds, unknown_union_member,
                # issue 12
                replay_hello(epoch), resubscribe(epoch), shared_tables, tiny_fragments,
                too_many_positions, session_churn, topic_churn, ping_flood, deflate_bomb]

            async def one_round() -> None:
                async with anyio.create_task_group() as tg:
                    for attack in attacks:
                        tg.start_soon(attack, server)

            def census() -> Counter[str]:
                return Counter(type(o).__qualname__ for o in gc.get_objects())

            async def settled() -> tuple[tuple[int, int], dict[str, int], int]:
                """The hub's counts and tables once the attackers' sessions expired, and the
                interpreter's blocks."""
                with anyio.move_on_after(5):  # else the counts below show what stayed
                    while _hub_counts(server) != (1, 1):
                        await anyio.sleep(0.05)
                # Sockets the server closed are gone, and their handshake timers ran out.
                await anyio.sleep(options["handshake_timeout"] + 0.3)
                gc.collect()
                return _hub_counts(server), _hub_tables(server), sys.getallocatedblocks()

            await one_round()  # warm-up: caches, free lists, lazily built tables
            base_counts, base_tables, base_blocks = await settled()
            base_census = census()
            assert base_counts == (1, 1)  # the bystander alone
            for _ in range(ROUNDS):
                await one_round()
            counts, tables, blocks = await settled()
            assert counts == base_counts
            assert tables == base_tables
            growth = blocks - base_blocks
            grown = (census() - base_census).most_common(8)
            assert all(n <= 2 * ROUNDS for _, n in grown), f"objects kept: {grown}"
            assert growth < GROWTH_BOUND, f"{growth} more memory blocks held; objects: {grown}"
            await assert_echo(client, b"still here")
