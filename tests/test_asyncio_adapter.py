"""The asyncio adapter over real sockets on 127.0.0.1: what a user of ``sigma_asyncio`` sees.

Every waiting test runs under ``asyncio.timeout(DEADLINE)``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

import sigma_asyncio
from sigma_asyncio import (
    ClientSession,
    ConnectionFailed,
    ConnectionStatus,
    Message,
    ReconnectInfo,
    RecoveryFailedError,
    SessionLostError,
    SigmaSocketClient,
    SigmaSocketServer,
)
from sigma_core import codec
from sigma_core.client import RecoveryFailed, SessionReset
from sigma_core.connection import ClientConnection, ConnectionState
from sigma_core.errors import CloseCode
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest
from sigma_core.messages import Data, Hello, Welcome

LOCAL = "127.0.0.1"
DEADLINE = 10.0
#: Reconnect quickly in tests (the defaults wait up to a second, then longer).
FAST: dict[str, Any] = {"reconnect_interval": 0.02, "max_reconnect_delay": 0.1}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[SigmaSocketServer]:
    async with SigmaSocketServer(host=LOCAL, port=0, shutdown_reconnect_after=0.02) as srv:
        yield srv


def url(server: SigmaSocketServer, scheme: str = "ws") -> str:
    return f"{scheme}://{LOCAL}:{server.port}/"


class Recorder:
    """Records the callbacks of a server or client and lets a test await them."""

    def __init__(self, target: SigmaSocketServer | SigmaSocketClient, *names: str) -> None:
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in names}
        self._changed = asyncio.Event()
        for name in names:
            target.on(name, partial(self._record, name))

    def _record(self, name: str, *args: Any) -> None:
        self.calls[name].append(args)
        self._changed.set()

    async def wait(self, name: str, count: int = 1,
                   where: Callable[..., bool] | None = None) -> tuple[Any, ...]:
        """The ``count``-th call of ``name`` (matching ``where``), once it has happened."""
        while True:
            matching = [a for a in self.calls[name] if where is None or where(*a)]
            if len(matching) >= count:
                return matching[count - 1]
            self._changed.clear()
            await self._changed.wait()


@contextlib.asynccontextmanager
async def connected(server: SigmaSocketServer,
                    **options: Any) -> AsyncIterator[SigmaSocketClient]:
    async with SigmaSocketClient(url(server), **options) as client:
        yield client


async def next_message(client: SigmaSocketClient) -> Message:
    async for message in client:
        return message
    raise AssertionError("the message stream ended")


def session_of(server: SigmaSocketServer, client: SigmaSocketClient) -> ClientSession:
    info = client.get_session()
    assert info is not None
    session = server.get_client(info.id)
    assert session is not None
    return session


@contextlib.asynccontextmanager
async def raw_client(port: int, *,
                     rcvbuf: int | None = None) -> AsyncIterator[
                         tuple[ClientConnection, asyncio.StreamWriter]]:
    """A SigmaSockets client made of the core's ClientConnection over a bare socket, welcomed,
    that reads nothing more unless the test does: for misbehaving on purpose."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await loop.sock_connect(sock, (LOCAL, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    try:
        conn = ClientConnection(host=f"{LOCAL}:{port}", hello=Hello(), now=loop.time())
        writer.writelines(conn.data_to_send())
        while conn.state is not ConnectionState.OPEN:
            conn.receive_data(await reader.read(65536) or None, loop.time())
            writer.writelines(conn.data_to_send())
        yield conn, writer
    finally:
        writer.transport.abort()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# ----------------------------------------------------------------------------- basics


@pytest.mark.anyio
async def test_send_and_receive_both_ways(server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE):
        events = Recorder(server, "connection", "message", "disconnection")
        client = SigmaSocketClient(url(server))
        client_events = Recorder(client, "connection", "message")
        assert client.get_status() is ConnectionStatus.DISCONNECTED
        assert client.get_session() is None
        await client.connect()
        assert client.get_status() is ConnectionStatus.CONNECTED
        (session,) = await events.wait("connection")
        info = client.get_session()
        assert info is not None
        assert info.id == session.id
        assert not info.resumed
        assert server.get_connected_clients() == [session]

        assert client.send(b"up")
        assert await events.wait("message") == (session, b"up", "")

        assert server.send_to_client(session, b"down-1")
        assert server.send_to_client(session.id, b"down-2")
        assert not server.send_to_client("no-such-session", b"lost")
        first = await next_message(client)
        assert (first.data, first.topic, first.message_id) == (b"down-1", "$inbox", 1)
        data, message_id, _, topic = await client_events.wait("message", 2)
        assert (data, message_id, topic) == (b"down-2", 2, "$inbox")

        stats = server.get_stats()
        assert (stats.connected_clients, stats.messages_received, stats.messages_sent) \
            == (1, 1, 2)

        # The stream holds the second message, then ends with the disconnect.
        await client.disconnect()
        assert [m.data async for m in client] == [b"down-2"]
        assert client.get_status() is ConnectionStatus.DISCONNECTED
        assert [s for (s,) in client_events.calls["connection"]] == [
            ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED,
            ConnectionStatus.DISCONNECTED]
        _, reason = await events.wait("disconnection")
        assert reason.startswith("normal_closure")
        assert server.get_client(session.id) is None  # a clean disconnect ends the session


@pytest.mark.anyio
async def test_send_while_offline_is_bounded_and_delivered_on_connect(
        server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE):
        events = Recorder(server, "message")
        client = SigmaSocketClient(url(server), max_pending=2)
        assert client.send(b"1")
        assert client.send(b"2")
        assert not client.send(b"3")  # BufferFullError becomes False
        await client.connect()
        await events.wait("message", 2)
        assert [data for _, data, _ in events.calls["message"]] == [b"1", b"2"]
        await client.disconnect()


@pytest.mark.anyio
async def test_broadcast_excludes_the_given_clients(server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE), \
            connected(server) as a, connected(server) as b, connected(server) as c:
        sa, sb = session_of(server, a), session_of(server, b)
        server.broadcast(b"not-a", exclude=sa)
        server.broadcast(b"only-c", exclude=[sa, sb.id])
        server.broadcast(b"all")
        assert [(await next_message(a)).data] == [b"all"]
        assert [(await next_message(b)).data for _ in range(2)] == [b"not-a", b"all"]
        assert [(await next_message(c)).data for _ in range(3)] == [b"not-a", b"only-c", b"all"]


@pytest.mark.anyio
async def test_topics_reach_their_subscribers_only(server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE), connected(server) as a, connected(server) as b:
        a_events, b_events = Recorder(a, "subscribed"), Recorder(b, "subscribed")
        server.subscribe(session_of(server, a), "room")
        assert await a_events.wait("subscribed") == ("room",)
        b.subscribe("lobby")
        assert await b_events.wait("subscribed") == ("lobby",)

        position = server.publish("room", b"r1")
        server.publish("lobby", b"l1")
        server.broadcast(b"end")
        got_a = [await next_message(a) for _ in range(2)]
        assert [(m.topic, m.data) for m in got_a] == [("room", b"r1"), ("$all", b"end")]
        assert got_a[0].position == position
        got_b = [await next_message(b) for _ in range(2)]
        assert [(m.topic, m.data) for m in got_b] == [("lobby", b"l1"), ("$all", b"end")]

        server.unsubscribe(session_of(server, a), "room")
        server.publish("room", b"r2")
        server.broadcast(b"end2")
        assert (await next_message(a)).data == b"end2"


# ----------------------------------------------------------------------------- restarts


@pytest.mark.anyio
async def test_graceful_stop_says_going_away_and_client_reconnects() -> None:
    async with asyncio.timeout(DEADLINE):
        server = SigmaSocketServer(host=LOCAL, port=0, shutdown_reconnect_after=0.05)
        server_events = Recorder(server, "disconnection")
        await server.start()
        client = SigmaSocketClient(url(server), max_reconnect_attempts=None, **FAST)
        events = Recorder(client, "disconnection", "reconnecting")
        await client.connect()
        await server.stop()
        code, _ = await events.wait("disconnection")
        assert code == CloseCode.GOING_AWAY
        (info,) = await events.wait("reconnecting")
        assert isinstance(info, ReconnectInfo)
        assert info.attempt == 1
        assert info.next_retry_in >= 0.05
        _, reason = await server_events.wait("disconnection")
        assert reason.startswith("going_away")
        assert client.get_status() is ConnectionStatus.RECONNECTING
        await client.disconnect()
        assert client.get_status() is ConnectionStatus.DISCONNECTED


@pytest.mark.anyio
async def test_restarted_server_resumes_the_session_and_replays() -> None:
    async with asyncio.timeout(DEADLINE):
        server = SigmaSocketServer(host=LOCAL, port=0, shutdown_reconnect_after=0.02)
        await server.start()
        port = server.port
        client = SigmaSocketClient(url(server), max_reconnect_attempts=None, **FAST)
        events = Recorder(client, "connection")
        await client.connect()
        before = client.get_session()
        assert before is not None
        await server.stop()
        server.broadcast(b"sent-while-down")  # the hub (and its history) outlives the sockets
        await server.start()
        assert server.port == port
        await events.wait("connection", 2, where=lambda s: s is ConnectionStatus.CONNECTED)
        after = client.get_session()
        assert after is not None
        assert after.id == before.id
        assert after.resumed
        assert (await next_message(client)).data == b"sent-while-down"
        await client.disconnect()
        await server.stop()


@pytest.mark.anyio
async def test_fresh_server_reports_session_reset_and_lost_topics() -> None:
    async with asyncio.timeout(DEADLINE):
        first = SigmaSocketServer(host=LOCAL, port=0, shutdown_reconnect_after=0.02)
        await first.start()
        client = SigmaSocketClient(url(first), max_reconnect_attempts=None, **FAST)
        events = Recorder(client, "subscribed", "session_reset", "recovery_failed", "error",
                          "connection")
        await client.connect()
        old = client.get_session()
        assert old is not None
        client.subscribe("room")
        await events.wait("subscribed")
        first.publish("room", b"r1")
        assert (await next_message(client)).data == b"r1"
        await first.stop()

        async with SigmaSocketServer(host=LOCAL, port=first.port):  # memory lost
            (reset,) = await events.wait("session_reset")
            assert isinstance(reset, SessionReset)
            assert reset.old_session_id == old.id
            (lost,) = await events.wait("recovery_failed", where=lambda e: e.topic == "room")
            assert isinstance(lost, RecoveryFailed)
            await events.wait("error", where=lambda e: isinstance(e, SessionLostError))
            await events.wait("error", where=lambda e: isinstance(e, RecoveryFailedError))
            new = client.get_session()
            assert new is not None
            assert new.id != old.id
            assert not new.resumed
            await client.disconnect()


# ----------------------------------------------------------------------------- TLS, limits, auth


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.mark.anyio
async def test_wss_round_trip(ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(LOCAL).configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0, ssl=server_ctx) as server:
        events = Recorder(server, "message")
        async with SigmaSocketClient(url(server, "wss"), ssl=client_ctx) as client:
            client.send(b"secret")
            assert (await events.wait("message"))[1] == b"secret"
            server.broadcast(b"also secret")
            assert (await next_message(client)).data == b"also secret"
        # The system trust store does not know our CA: the certificate is refused.
        untrusting = SigmaSocketClient(url(server, "wss"), max_reconnect_attempts=1, **FAST)
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.connect()


@pytest.mark.anyio
async def test_connection_limit_refuses_with_503() -> None:
    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0, max_connections=1) as server, \
            connected(server):
        extra = SigmaSocketClient(url(server), max_reconnect_attempts=1, **FAST)
        with pytest.raises(ConnectionFailed, match="503"):
            await extra.connect()
        assert extra.get_status() is ConnectionStatus.ERROR


@pytest.mark.anyio
async def test_auth_hook_accepts_and_refuses() -> None:
    def authenticate(request: AuthRequest) -> AuthAccept | AuthRefuse:
        if request.hello.auth_token == "open sesame":
            return AuthAccept(identity="alice", metadata={"role": "admin"})
        return AuthRefuse(message="bad token")

    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0, authenticate=authenticate) as server:
        events = Recorder(server, "rejected")
        async with connected(server, auth_token="open sesame") as client:
            session = session_of(server, client)
            assert (session.identity, session.metadata) == ("alice", {"role": "admin"})
        refused = SigmaSocketClient(url(server), auth_token="guess", **FAST)
        with pytest.raises(ConnectionFailed, match="bad token"):
            await refused.connect()  # refused for good: no retries
        assert refused.get_status() is ConnectionStatus.ERROR
        _, reason = await events.wait("rejected")
        assert reason == "auth_failed: bad token"


# ----------------------------------------------------------------------------- misbehaving peers


@pytest.mark.anyio
async def test_slow_consumer_is_cut_while_others_keep_receiving() -> None:
    payload = bytes(64 * 1024)
    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0, outgoing_high_water=256 * 1024) as server, \
            connected(server) as good:
        events = Recorder(server, "connection", "disconnection")
        async with raw_client(server.port, rcvbuf=4096):
            (slow,) = await events.wait("connection")
            sent = 0
            while not events.calls["disconnection"]:
                assert sent < 2000, "the slow consumer was never cut"
                server.broadcast(payload)
                sent += 1
                assert (await next_message(good)).data == payload
            session, reason = events.calls["disconnection"][0]
            assert session is slow
            assert reason.startswith("slow_consumer")
            for _ in range(3):
                server.broadcast(b"still here")
                assert (await next_message(good)).data == b"still here"
            assert server.get_stats().slow_consumer_disconnects == 1
            assert session_of(server, good).connected


@pytest.mark.anyio
async def test_connection_cut_mid_frame_leaves_others_alone(server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE), connected(server) as good:
        events = Recorder(server, "connection", "disconnection", "message")
        async with raw_client(server.port) as (conn, writer):
            (victim,) = await events.wait("connection")
            conn.send(Data(seq=1, payload=bytes(1000)))
            frame = b"".join(conn.data_to_send())
            writer.write(frame[: len(frame) // 2])
            await writer.drain()
        session, reason = await events.wait("disconnection")
        assert session is victim
        assert reason.startswith("abnormal_closure")
        good.send(b"unaffected")
        assert await events.wait("message") == (session_of(server, good), b"unaffected", "")
        server.broadcast(b"fine")
        assert (await next_message(good)).data == b"fine"
        assert len(events.calls["message"]) == 1  # the half message was never delivered


# ----------------------------------------------------------------------------- interop


@pytest.mark.anyio
async def test_websockets_library_speaks_the_envelope_protocol(
        server: SigmaSocketServer) -> None:
    async with asyncio.timeout(DEADLINE):
        events = Recorder(server, "message")
        async with ws_connect(url(server), subprotocols=[Subprotocol("sigma.v1")],
                              proxy=None) as ws:
            assert ws.subprotocol == "sigma.v1"
            await ws.send(codec.encode(Hello()))
            reply = await ws.recv()
            assert isinstance(reply, bytes)
            welcome = codec.decode(reply)
            assert isinstance(welcome, Welcome)
            assert not welcome.resumed
            session = server.get_client(welcome.session_id)
            assert session is not None
            await ws.send(codec.encode(Data(seq=1, payload=b"from websockets")))
            assert await events.wait("message") == (session, b"from websockets", "")
            server.send_to_client(session, b"to websockets")
            raw = await ws.recv()
            assert isinstance(raw, bytes)
            data = codec.decode(raw)
            assert isinstance(data, Data)
            assert (data.topic, bytes(data.payload)) == ("$inbox", b"to websockets")


@pytest.mark.anyio
@pytest.mark.parametrize("flags", [[], ["--no-uvloop"]], ids=["uvloop", "asyncio"])
async def test_echo_server_subprocess(flags: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sigma_asyncio.echo", "--port", "0", *flags,
        stdout=asyncio.subprocess.PIPE, cwd=REPO)
    try:
        async with asyncio.timeout(DEADLINE):
            assert proc.stdout is not None
            line = (await proc.stdout.readline()).decode()
            assert line.startswith(f"listening on ws://{LOCAL}:"), line
            echo_url = line.split()[-1]
            async with ws_connect(echo_url, proxy=None, compression=None) as ws:
                await ws.send("héllo")
                assert await ws.recv() == "héllo"
                await ws.send(b"\x00\xffbinary")
                assert await ws.recv() == b"\x00\xffbinary"
        proc.terminate()
        async with asyncio.timeout(5):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_run_uses_uvloop() -> None:
    async def scenario() -> tuple[str, bytes]:
        async with asyncio.timeout(DEADLINE), \
                SigmaSocketServer(host=LOCAL, port=0) as server, connected(server) as client:
            server.broadcast(b"on uvloop")
            message = await next_message(client)
            return type(asyncio.get_running_loop()).__module__, message.data

    module, data = sigma_asyncio.run(scenario())
    assert module.startswith("uvloop")
    assert data == b"on uvloop"
