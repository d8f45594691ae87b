"""Hostile input over real sockets on 127.0.0.1, on both backends: each attack checks the exact
refusal the attacker sees (an HTTP status line, or the code in the server's close frame), and
that a well-behaved client of the same server keeps getting its echoes meanwhile.

The attacker's bytes are built by hand here (HTTP upgrade, masked client frames), not by the
library, so that the server's parser is what is being tested.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import pytest
from adapters_support import (
    BACKENDS,
    DEADLINE,
    LOCAL,
    Client,
    Server,
    connected_client,
    next_message,
    serving,
    url,
)
from anyio.abc import SocketStream

from sigma_core import codec
from sigma_core.errors import CloseCode
from sigma_core.hub import Session
from sigma_core.messages import Hello, Welcome

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
async def echo_server(backend: str, **options: Any) -> AsyncIterator[tuple[Server, Client]]:
    """A server that echoes every message to its sender, and a well-behaved client of it."""
    async with serving(backend, **options) as server:
        def echo(session: Session, data: bytes, topic: str) -> None:
            server.send_to_client(session, data)

        server.on("message", echo)
        async with connected_client(backend, url(server)) as client:
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


# ----------------------------------------------------------------------------- HTTP stage


async def test_garbage_instead_of_http_gets_400(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            async def attack() -> None:
                async with raw(server) as conn:
                    await conn.send(bytes(range(256)) * 4)
                    head = await conn.http_head()
                    assert status_line(head) == b"HTTP/1.1 400 Bad Request", head
                    await conn.read_until_eof()

            await during(client, attack)


async def test_tls_client_hello_on_plain_port_gets_400(anyio_backend: str) -> None:
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + b"\x00\x00")
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    client_hello = b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            async def attack() -> None:
                async with raw(server) as conn:
                    await conn.send(client_hello)
                    head = await conn.http_head()
                    assert status_line(head) == b"HTTP/1.1 400 Bad Request", head
                    await conn.read_until_eof()

            await during(client, attack)


async def test_slowloris_gets_408_at_the_handshake_timeout(anyio_backend: str) -> None:
    request = upgrade_request(0)
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, handshake_timeout=1.0) as (server, client):
            async def attack() -> None:
                async with raw(server) as conn:
                    started = anyio.current_time()

                    async def dribble() -> None:
                        for byte in request[:-1]:  # never the final "\n"
                            try:
                                await conn.send(bytes([byte]))
                            except (anyio.BrokenResourceError, ConnectionError):
                                return
                            await anyio.sleep(0.2)

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(dribble)
                        head = await conn.http_head()
                        elapsed = anyio.current_time() - started
                        body = await conn.read_until_eof()
                        tg.cancel_scope.cancel()
                    assert status_line(head) == b"HTTP/1.1 408 Request Timeout", head
                    assert b"\r\nConnection: close\r\n" in head
                    assert body == b"HTTP request not complete within the handshake timeout " \
                                   b"(1 s)", body
                    assert elapsed >= 0.9, elapsed  # not before the timeout

            await during(client, attack)


async def test_oversized_http_head_gets_431(anyio_backend: str) -> None:
    request = upgrade_request(0)
    padding = b"X-Padding: " + b"a" * (17 * 1024) + b"\r\n"
    oversized = request[:-2] + padding + b"\r\n"
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            async def attack() -> None:
                async with raw(server) as conn:
                    # The answer may come (and the socket close) before we finished sending.
                    with suppress(anyio.BrokenResourceError, ConnectionError):
                        await conn.send(oversized)
                    head = await conn.http_head()
                    assert status_line(head) == b"HTTP/1.1 431 Request Header Fields Too Large", \
                        head
                    await conn.read_until_eof()

            await during(client, attack)


# ----------------------------------------------------------------------------- WebSocket stage


async def _expect_close(server: Server, client: Client, payload: bytes | None, frame: bytes | None,
                        expected: int) -> None:
    async def attack() -> None:
        async with upgraded(server) as conn:
            with suppress(anyio.BrokenResourceError, ConnectionError):
                await conn.send(frame if frame is not None else client_frame(OP_BINARY,
                                                                             payload or b""))
            assert await conn.close_code() == expected

    await during(client, attack)


async def test_data_before_hello_closes_4001(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            await _expect_close(server, client, codec.encode_data(seq=1, payload=b"x"), None,
                                CloseCode.UNEXPECTED_MESSAGE)


async def test_garbage_envelope_closes_4000(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            await _expect_close(server, client, b"\xde\xad\xbe\xef" * 8, None,
                                CloseCode.BAD_ENVELOPE)


async def test_wrong_file_identifier_closes_4000(anyio_backend: str) -> None:
    envelope = codec.encode(Hello())
    assert envelope[4:8] == codec.FILE_IDENTIFIER
    forged = envelope[:4] + b"XXXX" + envelope[8:]
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            await _expect_close(server, client, forged, None, CloseCode.BAD_ENVELOPE)


async def test_text_frame_closes_1003(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            await _expect_close(server, client, None, client_frame(OP_TEXT, b"hello"),
                                CloseCode.UNSUPPORTED_DATA)


async def test_message_over_max_size_closes_1009(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        # 4096 alone is refused (ValueError: too small for a Welcome listing 100 topics of
        # 256 bytes, needs >= 32928): lower the topic limit so that it is accepted.
        async with echo_server(anyio_backend, max_message_size=4096,
                               max_topics_per_session=4) as (server, client):
            await _expect_close(server, client, os.urandom(5000), None,
                                CloseCode.MESSAGE_TOO_BIG)


async def test_reserved_bit_closes_1002(anyio_backend: str) -> None:
    frame = client_frame(OP_BINARY, codec.encode(Hello()), rsv=0x40)  # RSV1, no extension
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            await _expect_close(server, client, None, frame, CloseCode.PROTOCOL_ERROR)


# ----------------------------------------------------------------------------- session stage


async def test_wrong_resume_token_gets_a_fresh_session(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend) as (server, client):
            info = client.get_session()
            assert info is not None
            victim = info.id
            hello = Hello(session_id=victim, resume_token=os.urandom(32))

            async def attack() -> None:
                async with welcomed(server, hello) as (_, welcome):
                    assert not welcome.resumed
                    assert welcome.fresh_reason != ""
                    assert welcome.session_id != victim
                    assert server.get_client(victim) is not None

            await during(client, attack)
            after = client.get_session()
            assert after is not None
            assert after.id == victim
            session = server.get_client(victim)
            assert session is not None


async def test_flood_past_rate_limit_closes_4008(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with echo_server(anyio_backend, max_messages_per_second=5) as (server, client):
            async def attack() -> None:
                async with welcomed(server) as (conn, _):
                    flood = b"".join(client_frame(OP_BINARY,
                                                  codec.encode_data(seq=n, payload=b"x"))
                                     for n in range(1, 51))
                    with suppress(anyio.BrokenResourceError, ConnectionError):
                        await conn.send(flood)
                    assert await conn.close_code() == CloseCode.RATE_LIMITED

            await during(client, attack)
