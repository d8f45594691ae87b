"""docs/protocol.md read as a third-party implementer would: a client written from the document
alone (the upgrade and the masked frames by hand, envelopes with the codec) checks the server's
side of each MUST it relies on, on both adapters over real sockets on 127.0.0.1.

§4.2 Welcome of a new session, §3 the file identifier of every S→C envelope, §7 the client
sequence rules and when Acks come (by count at once; a duplicate schedules one; a gap is
Goodbye + 4001; a slow sender's Ack rides in the same write as the server's reply), §5 resume
and Goodbye(NORMAL), §8 the refusals of Subscribe/Unsubscribe with the request id echoed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from adapters_support import DEADLINE, Server, serving
from test_hostile_input import OP_BINARY, OP_CLOSE, Raw, client_frame, raw, upgraded

from sigma_core import codec
from sigma_core.errors import CloseCode, ErrorCode
from sigma_core.hub import Session
from sigma_core.messages import (
    Ack,
    ClientInfo,
    Data,
    Error,
    Goodbye,
    Hello,
    Limits,
    Ping,
    Pong,
    RecoveryStatus,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


class Peer(Raw):
    """A raw connection after the 101 that counts its recv() calls, so a test can tell which
    S→C messages came in the bytes of one read."""

    def __init__(self, raw: Raw) -> None:
        super().__init__(raw.stream)
        self.buffer = raw.buffer
        self.reads = 0

    async def fill(self) -> bool:
        self.reads += 1
        return await super().fill()

    async def message(self) -> tuple[int, bytes, int]:
        """(opcode, payload, the recv() whose bytes completed it)."""
        opcode, payload = await self.frame()
        return opcode, payload, self.reads

    async def envelope(self) -> tuple[Any, int]:
        opcode, payload, read = await self.message()
        if opcode == OP_CLOSE:
            raise AssertionError(f"closed: {payload!r}")
        assert opcode == OP_BINARY, opcode
        assert payload[4:8] == b"SGM1", payload[:8]  # §3: every envelope has the identifier
        return codec.decode(payload), read

    async def send_all(self, *messages: Any) -> None:
        """One write holding one masked frame per envelope."""
        await self.send(b"".join(client_frame(OP_BINARY, codec.encode(m)) for m in messages))

    async def close_after_goodbye(self) -> tuple[Goodbye, int]:
        """The Goodbye that must come immediately before the close frame, and its code."""
        goodbye, _ = await self.envelope()
        assert isinstance(goodbye, Goodbye), goodbye
        opcode, payload, _ = await self.message()
        assert opcode == OP_CLOSE, (opcode, payload)
        code: int = struct.unpack("!H", payload[:2])[0]
        return goodbye, code


@asynccontextmanager
async def peer(server: Server, hello: Hello | None = None) -> AsyncIterator[tuple[Peer, Welcome]]:
    async with upgraded(server) as raw:
        p = Peer(raw)
        await p.send_all(hello or Hello())
        welcome, _ = await p.envelope()
        assert isinstance(welcome, Welcome), welcome
        yield p, welcome


async def test_a_new_session_and_the_client_sequence_rules(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, peer(server) as (p, welcome):
            # §4.2/§5.1: a new session's Welcome, with the documented defaults.
            assert re.fullmatch(r"[0-9a-f]{24}", welcome.session_id)
            assert len(welcome.resume_token) == 32
            assert (welcome.resumed, welcome.fresh_reason, welcome.last_received_seq) == (
                False, "", 0)
            assert [(r.topic, r.status) for r in welcome.recovery] == [
                ("$all", RecoveryStatus.FRESH), ("$inbox", RecoveryStatus.FRESH)]
            assert all(r.position is not None for r in welcome.recovery)
            assert (welcome.heartbeat_interval_ms, welcome.heartbeat_timeout_ms) == (
                25_000, 60_000)
            assert welcome.limits == Limits(max_message_size=1 << 20, max_unacked=1000,
                                            max_topics=100)
            assert welcome.serializer == "raw"

            # §7: ack_every (32) messages get their Ack at once (one write, nothing echoed).
            await p.send_all(*(Data(seq=s, payload=b"m%d" % s) for s in range(1, 33)))
            ack, _ = await p.envelope()
            assert ack == Ack(seq=32)
            # A duplicate (and seq 0, always one) is dropped without an error, and an Ack is
            # scheduled: the next Ack says 33, the duplicates changed nothing.
            await p.send_all(Data(seq=5, payload=b"again"), Data(seq=0), Data(seq=33))
            ack, _ = await p.envelope()
            assert ack == Ack(seq=33)
            # A gap: Goodbye(UNEXPECTED_MESSAGE) + close 4001; the session survives.
            await p.send_all(Data(seq=35))
            goodbye, code = await p.close_after_goodbye()
            assert (goodbye.code, code) == (ErrorCode.UNEXPECTED_MESSAGE,
                                            CloseCode.UNEXPECTED_MESSAGE)
            assert "sequence gap" in goodbye.reason
        # (a fresh server: the session above is gone with it)

        async with serving(anyio_backend) as server:
            received: list[bytes] = []
            server.on("message", lambda session, data, topic: received.append(data))
            async with peer(server) as (p, welcome):
                await p.send_all(*(Data(seq=s, payload=b"%d" % s) for s in (1, 2, 3)))
                ack, _ = await p.envelope()  # by the timer, ack_delay (50 ms) later
                assert ack == Ack(seq=3)
                await p.send_all(Data(seq=5))
                await p.close_after_goodbye()
            # §5.2/§7: a resume is told the last contiguous seq; the app got each one once.
            resume = Hello(session_id=welcome.session_id, resume_token=welcome.resume_token)
            async with peer(server, resume) as (p, again):
                assert (again.resumed, again.last_received_seq, again.fresh_reason) == (
                    True, 3, "")
                await p.send_all(Data(seq=3, payload=b"dup"), Data(seq=4, payload=b"4"))
                ack, _ = await p.envelope()
                assert ack == Ack(seq=4)
                # §4.5: a client's Goodbye(NORMAL) ends the session at once.
                await p.send_all(Goodbye(code=ErrorCode.NORMAL))
            assert received == [b"1", b"2", b"3", b"4"]
            async with peer(server, resume) as (p, fresh):
                assert not fresh.resumed
                assert fresh.fresh_reason.startswith("session could not be resumed")
                assert fresh.last_received_seq == 0
            # §5.1: an id without a token is a failed resume, not a plain new session.
            async with peer(server, Hello(session_id=welcome.session_id)) as (p, half):
                assert not half.resumed
                assert half.fresh_reason


async def test_a_slow_senders_ack_rides_in_the_same_write_as_the_reply(anyio_backend: str
                                                                      ) -> None:
    """§7: messages `ack_delay` / 8 (6.25 ms) or more apart are acknowledged in the same write as
    the server's output to that client in the same turn (here the echo), not 50 ms later."""
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            def echo(session: Session, data: bytes, topic: str) -> None:
                server.send_to_client(session, data)

            server.on("message", echo)
            async with peer(server) as (p, _):
                for seq in (1, 2, 3):
                    await anyio.sleep(0.02)  # the pace of a slow sender (> 6.25 ms apart)
                    await p.send_all(Data(seq=seq, payload=b"ping %d" % seq))
                    first, read_1 = await p.envelope()
                    second, read_2 = await p.envelope()
                    got = {type(first): first, type(second): second}
                    assert got[Ack] == Ack(seq=seq), (first, second)
                    assert got[Data].payload == b"ping %d" % seq
                    assert got[Data].topic == "$inbox"
                    # One write from the server: both were in the bytes of one recv().
                    assert read_1 == read_2, (first, second)


async def test_subscription_refusals_echo_the_request_id(anyio_backend: str) -> None:
    """§8: each refusal is an Error with its code and the request's id; the connection stays."""
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, peer(server) as (p, _):
            asks: list[tuple[Any, ErrorCode]] = [
                (Subscribe(topic="", request_id=1), ErrorCode.INVALID_TOPIC),
                (Subscribe(topic="$all", request_id=2), ErrorCode.INVALID_TOPIC),
                (Subscribe(topic="x" * 257, request_id=3), ErrorCode.INVALID_TOPIC),
                (Unsubscribe(topic="never-joined", request_id=4), ErrorCode.NOT_SUBSCRIBED),
                (Unsubscribe(topic="$inbox", request_id=5), ErrorCode.NOT_SUBSCRIBED),
            ]
            await p.send_all(*(ask for ask, _ in asks))
            for ask, code in asks:
                error, _ = await p.envelope()
                assert isinstance(error, Error), error
                assert (error.code, error.request_id, error.retryable) == (
                    code, ask.request_id, False)
            # 256 bytes of UTF-8 is a valid room name (é is two bytes).
            room = "é" * 128
            await p.send_all(Subscribe(topic=room, request_id=6))
            subscribed, _ = await p.envelope()
            assert isinstance(subscribed, Subscribed)
            assert subscribed.request_id == 6
            assert (subscribed.recovery.topic, subscribed.recovery.status) == (
                room, RecoveryStatus.FRESH)


async def test_pipelining_heartbeats_inbox_acks_and_a_failed_resume(anyio_backend: str) -> None:
    """§4.2 (what follows the Hello waits for the Welcome; Unsubscribed for listed rooms not
    taken), §9 (every Ping answered, its timestamp echoed), §7 (an inbox Ack beyond the head is
    ignored, not an error), §5.2 (a failed resume takes the listed rooms over, each topic's loss
    reported), §8 (the topic limit is an Error, not a close)."""
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, authorize_subscribe=lambda session, topic:
                           topic != "forbidden") as server:
            received: list[bytes] = []
            server.on("message", lambda session, data, topic: received.append(data))
            async with upgraded(server) as raw:
                p = Peer(raw)
                # Hello and a Data in one write: the Data is held until the Welcome is sent.
                await p.send_all(Hello(), Data(seq=1, payload=b"pipelined"))
                welcome, _ = await p.envelope()
                assert isinstance(welcome, Welcome)
                ack, _ = await p.envelope()
                assert ack == Ack(seq=1)
                assert received == [b"pipelined"]
                inbox = next(r for r in welcome.recovery if r.topic == "$inbox")
                assert inbox.position is not None
                # An inbox Ack far beyond the head: ignored, the connection stays; a Ping is
                # answered with its id and timestamp echoed.
                beyond = StreamPosition(inbox.position.epoch, inbox.position.offset + 999)
                await p.send_all(Ack(positions=(TopicPosition(topic="$inbox", position=beyond),)),
                                 Ping(id=7, timestamp_ms=123_456))
                pong, _ = await p.envelope()
                assert isinstance(pong, Pong)
                assert (pong.id, pong.echo_timestamp_ms) == (7, 123_456)
                assert pong.timestamp_ms > 1_600_000_000_000  # the server's wall clock, in ms
                # 100 rooms are allowed (Limits.max_topics), the 101st is refused.
                await p.send_all(*(Subscribe(topic=f"r{i}", request_id=i + 1)
                                   for i in range(101)))
                for i in range(100):
                    subscribed, _ = await p.envelope()
                    assert isinstance(subscribed, Subscribed)
                    assert subscribed.request_id == i + 1
                refused, _ = await p.envelope()
                assert isinstance(refused, Error)
                assert (refused.code, refused.request_id) == (ErrorCode.TOO_MANY_TOPICS, 101)
                await p.send_all(Subscribe(topic="forbidden", request_id=200))
                denied, _ = await p.envelope()
                assert isinstance(denied, Error)
                assert (denied.code, denied.request_id) == (ErrorCode.SUBSCRIBE_DENIED, 200)

            # A resume that cannot match, listing rooms and old positions: a new session that
            # takes over the allowed rooms; every topic reports its loss; the refused room is
            # answered with Unsubscribed (request_id 0) after the Welcome.
            old = StreamPosition(12345, 3)
            listed = ("$all", "$inbox", "lobby", "forbidden")
            hello = Hello(session_id="0" * 24, resume_token=b"\x01" * 32,
                          positions=tuple(TopicPosition(topic=t, position=old) for t in listed))
            async with peer(server, hello) as (p, welcome):
                assert not welcome.resumed
                assert welcome.fresh_reason == (
                    "session could not be resumed: unknown, expired or wrong token")
                outcome = {r.topic: (r.status, r.lost_from, r.lost_to) for r in welcome.recovery}
                assert outcome == dict.fromkeys(("$all", "$inbox", "lobby"),
                                                (RecoveryStatus.FAILED, 4, 0))
                unsubscribed, _ = await p.envelope()
                assert unsubscribed == Unsubscribed(topic="forbidden", request_id=0)


async def test_refusals_come_in_the_documented_order(anyio_backend: str) -> None:
    """§2.2: HTTP syntax and size, the RFC 6455 headers, the subprotocol, the key, then the
    connection limit, the Origin, draining; each answer a plain HTTP response with a text body."""
    def head(*, protocol: str | None = "sigma.v1", key: str = "dGhlIHNhbXBsZSBub25jZQ==",
             version: str = "13", origin: str | None = None) -> bytes:
        lines = ["GET /chat?x=1 HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 f"Sec-WebSocket-Version: {version}"]
        if protocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocol}")
        if origin is not None:
            lines.append(f"Origin: {origin}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def answer(server: Server, request: bytes) -> tuple[bytes, bytes]:
        async with raw(server) as conn:
            await conn.send(request)
            response = await conn.http_head()
            body = await conn.read_until_eof()
        return response.split(b"\r\n", 1)[0], body

    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, allowed_origins=["https://ok.example"],
                           max_connections=1) as server:
            # The version before the subprotocol, the subprotocol before the key, and all of
            # them before the Origin.
            status, _ = await answer(server, head(version="12", protocol=None,
                                                  origin="https://evil.example"))
            assert status == b"HTTP/1.1 426 Upgrade Required"
            status, body = await answer(server, head(protocol="chat.v2", key="short",
                                                     origin="https://evil.example"))
            assert status == b"HTTP/1.1 400 Bad Request"
            assert b"sigma.v1" in body
            status, body = await answer(server, head(key="short", origin="https://evil.example"))
            assert status == b"HTTP/1.1 400 Bad Request"
            assert b"Sec-WebSocket-Key" in body
            status, _ = await answer(server, head(origin="https://evil.example"))
            assert status == b"HTTP/1.1 403 Forbidden"
            # The connection limit (1: the socket asking is the one) comes before the Origin.
            async with raw(server) as holder:
                await holder.send(head(origin="https://ok.example"))
                assert (await holder.http_head()).startswith(b"HTTP/1.1 101 ")
                status, body = await answer(server, head(origin="https://evil.example"))
                assert status == b"HTTP/1.1 503 Service Unavailable"
                assert body == b"server is at its connection limit (1); retry later"


async def test_hellos_the_server_refuses(anyio_backend: str) -> None:
    """§4.2 steps 2-4: each refused Hello gets its Goodbye code, then its close code."""
    long = "x" * 257
    cases = [
        (Hello(protocol_version=2), ErrorCode.UNSUPPORTED_VERSION, CloseCode.UNSUPPORTED_VERSION),
        (Hello(serializer="json"), ErrorCode.SERIALIZER_MISMATCH, CloseCode.SERIALIZER_MISMATCH),
        (Hello(client=ClientInfo(name=long)), ErrorCode.LIMIT_EXCEEDED, CloseCode.LIMIT_EXCEEDED),
        (Hello(client=ClientInfo(metadata={f"k{i}": "v" for i in range(33)})),
         ErrorCode.LIMIT_EXCEEDED, CloseCode.LIMIT_EXCEEDED),
        (Hello(positions=tuple(TopicPosition(topic=f"t{i}", position=StreamPosition(1, 1))
                               for i in range(103))),
         ErrorCode.LIMIT_EXCEEDED, CloseCode.LIMIT_EXCEEDED),
    ]
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            for hello, goodbye_code, close_code in cases:
                async with upgraded(server) as conn:
                    p = Peer(conn)
                    await p.send_all(hello)
                    goodbye, code = await p.close_after_goodbye()
                    assert (goodbye.code, code) == (goodbye_code, close_code), hello
            # At the limits themselves: welcomed.
            at_limits = Hello(client=ClientInfo(name="x" * 256, metadata={
                f"k{i}": "v" for i in range(32)}), positions=tuple(
                TopicPosition(topic=f"t{i}", position=StreamPosition(1, 1)) for i in range(102)))
            async with peer(server, at_limits) as (_, welcome):
                assert not welcome.resumed
