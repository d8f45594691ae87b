"""The trio adapter over real sockets on 127.0.0.1: what a user of ``sigma_trio`` would notice.

Every test runs under ``trio.fail_after`` and waits on events, never on sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from sigma_core.client import ConnectionStatus, SessionReset
from sigma_core.connection import (
    ClientConnection,
    ConnectionConfig,
    ConnectionState,
    RawMessage,
)
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest
from sigma_core.messages import Data
from sigma_core.websocket import WebSocketConfig
from sigma_trio import (
    ClientSession,
    ConnectionFailed,
    LocalProtocolError,
    Message,
    ReconnectInfo,
    RecoveryFailedError,
    ServerOptions,
    SessionLostError,
    SigmaSocketClient,
    SigmaSocketServer,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
#: Reconnect quickly and for ever: the tests bound the time themselves.
FAST = {"reconnect_interval": 0.05, "max_reconnect_delay": 0.2, "max_reconnect_attempts": None}


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


def options(**overrides: Any) -> ServerOptions:
    settings: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "shutdown_timeout": 2.0,
                                "shutdown_reconnect_after": 0.05}
    settings.update(overrides)
    return ServerOptions(**settings)


def url(server: SigmaSocketServer, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/"


class Log:
    """Callback arguments as they arrive, and a way to wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, ...]] = []
        self._changed = trio.Event()

    def recorder(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.items.append((name, *args))
            self._changed.set()
            self._changed = trio.Event()
        return record

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [item[1:] for item in self.items if item[0] == name]

    def names(self) -> list[str]:
        return [item[0] for item in self.items]

    async def until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()


def watch(target: SigmaSocketServer | SigmaSocketClient, *names: str) -> Log:
    log = Log()
    for name in names:
        target.on(name, log.recorder(name))
    return log


async def next_message(client: SigmaSocketClient) -> Message:
    async for message in client:
        return message
    raise AssertionError("the client stopped before a message arrived")


def server_session(server: SigmaSocketServer, client: SigmaSocketClient) -> ClientSession:
    info = client.get_session()
    assert info is not None
    session = server.get_client(info.id)
    assert session is not None
    return session


PLAIN = ConnectionConfig(envelope=False, websocket=WebSocketConfig.plain(), heartbeat_interval=0)


async def open_raw(port: int, *, config: ConnectionConfig, receive_buffer: int = 0
                   ) -> tuple[trio.SocketStream, ClientConnection]:
    """A hand-driven client connection over a raw socket, up to OPEN (Welcome received)."""
    sock = trio.socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    await sock.connect(("127.0.0.1", port))
    stream = trio.SocketStream(sock)
    conn = ClientConnection(host=f"127.0.0.1:{port}", config=config, now=trio.current_time())
    await stream.send_all(b"".join(conn.data_to_send()))
    while conn.state is not ConnectionState.OPEN:
        data = await stream.receive_some(65536)
        assert data, "the server closed during the handshake"
        conn.receive_data(data, trio.current_time())
        out = conn.data_to_send()
        if out:
            await stream.send_all(b"".join(out))
    return stream, conn


# ----------------------------------------------------------------------------- basics


async def test_connect_send_and_receive_both_ways() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server:
            events = watch(server, "connection", "message", "disconnection")
            async with SigmaSocketClient(url(server), **FAST) as client:
                assert client.get_status() is ConnectionStatus.CONNECTED
                info = client.get_session()
                assert info is not None
                assert not info.resumed
                await events.until(lambda: bool(events.of("connection")))
                (session,), = events.of("connection")
                assert session.id == info.id
                assert server.get_connected_clients() == [session]

                client_log = watch(client, "message")
                assert client.send(b"ping", topic="chat")
                await events.until(lambda: bool(events.of("message")))
                assert events.of("message") == [(session, b"ping", "chat")]

                assert server.send_to_client(session, b"pong")
                assert not server.send_to_client("no-such-session", b"lost")
                message = await next_message(client)
                assert (message.data, message.topic) == (b"pong", "$inbox")
                assert client_log.of("message") == [
                    (b"pong", message.message_id, message.timestamp_ms, "$inbox")]
                stats = server.get_stats()
                assert (stats.connected_clients, stats.messages_received) == (1, 1)
            assert client.get_status() is ConnectionStatus.DISCONNECTED
            await events.until(lambda: bool(events.of("disconnection")))
            assert events.of("disconnection")[0][1].startswith("normal_closure")
            assert server.get_connected_clients() == []
        assert [m async for m in client] == []  # the run is over: iteration ends


async def test_iteration_ends_on_disconnect_after_buffered_messages() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, trio.open_nursery() as nursery:
            client = SigmaSocketClient(url(server), **FAST)
            await nursery.start(client.run)
            server.broadcast(b"one")
            server.broadcast(b"two")
            received = []
            async for message in client:
                received.append(message.data)
                if len(received) == 2:
                    await client.disconnect()
            assert received == [b"one", b"two"]
            assert client.get_status() is ConnectionStatus.DISCONNECTED


async def test_send_returns_false_when_max_pending_unacknowledged() -> None:
    with trio.fail_after(10):
        client = SigmaSocketClient("ws://127.0.0.1:9/", max_pending=2)
        assert client.send(b"1")
        assert client.send(b"2")
        assert not client.send(b"3")  # queued offline, never acknowledged: the buffer is full
        assert client.get_session() is None


async def test_body_exception_propagates_unwrapped() -> None:
    async def body() -> None:
        async with SigmaSocketServer(options()) as server, \
                SigmaSocketClient(url(server), **FAST):
            raise KeyError("from the body")

    with trio.fail_after(10), pytest.raises(KeyError):
        await body()


async def test_cancelling_the_block_stops_server_and_client() -> None:
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with SigmaSocketServer(options()) as server, \
                    SigmaSocketClient(url(server), **FAST) as client:
                scope.cancel()
                await trio.sleep_forever()
        assert scope.cancelled_caught
        assert client.get_status() is ConnectionStatus.DISCONNECTED
        assert server.get_connected_clients() == []


async def test_connect_requires_a_running_client() -> None:
    with trio.fail_after(10), pytest.raises(LocalProtocolError, match="not running"):
        await SigmaSocketClient("ws://127.0.0.1:9/").connect()


# ----------------------------------------------------------------------------- fan-out


async def test_broadcast_with_exclusion_across_three_clients() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, \
                SigmaSocketClient(url(server), **FAST) as alice, \
                SigmaSocketClient(url(server), **FAST) as bob, \
                SigmaSocketClient(url(server), **FAST) as carol:
            server.broadcast(b"not for alice", exclude=server_session(server, alice))
            server.broadcast(b"not for bob or carol", exclude=[
                server_session(server, bob), server_session(server, carol).id])
            server.broadcast(b"everyone")
            assert [(await next_message(alice)).data for _ in range(2)] == [
                b"not for bob or carol", b"everyone"]
            for client in (bob, carol):
                assert [(await next_message(client)).data for _ in range(2)] == [
                    b"not for alice", b"everyone"]


async def test_topics_server_subscribe_and_publish() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, \
                SigmaSocketClient(url(server), **FAST) as member, \
                SigmaSocketClient(url(server), **FAST) as outsider:
            joined = watch(member, "subscribed")
            server.subscribe(server_session(server, member), "room")
            await joined.until(lambda: joined.of("subscribed") == [("room",)])
            server.publish("room", b"in the room")
            server.broadcast(b"everyone")
            first = await next_message(member)
            assert (first.data, first.topic, first.message_id) == (b"in the room", "room", 1)
            assert (await next_message(member)).data == b"everyone"
            assert (await next_message(outsider)).data == b"everyone"

            # and from the client side
            outsider_joined = watch(outsider, "subscribed")
            outsider.subscribe("room")
            await outsider_joined.until(lambda: bool(outsider_joined.of("subscribed")))
            server.publish("room", b"second", exclude=server_session(server, member))
            message = await next_message(outsider)
            assert (message.data, message.topic) == (b"second", "room")


async def test_broadcast_to_fifty_clients() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, trio.open_nursery() as nursery:
            clients = [SigmaSocketClient(url(server), **FAST) for _ in range(50)]
            for client in clients:
                await nursery.start(client.run)
            assert len(server.get_connected_clients()) == 50
            server.broadcast(b"to all")
            got = []

            async def receive(client: SigmaSocketClient) -> None:
                got.append((await next_message(client)).data)

            async with trio.open_nursery() as receivers:
                for client in clients:
                    receivers.start_soon(receive, client)
            assert got == [b"to all"] * 50
            async with trio.open_nursery() as leavers:
                for client in clients:
                    leavers.start_soon(client.disconnect)


# ----------------------------------------------------------------------------- restarts


async def test_restart_on_same_port_resumes_the_session() -> None:
    with trio.fail_after(10):
        server = SigmaSocketServer(options())
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            received = watch(server, "message")
            async with SigmaSocketClient(url(server), **FAST) as client:
                log = watch(client, "connection", "disconnection", "reconnecting")
                session_id = server_session(server, client).id
                await server.stop()
                await log.until(lambda: bool(log.of("reconnecting")))
                assert client.send(b"sent while the server was down")
                assert await nursery.start(server.serve) == port
                await client.connect()
                info = client.get_session()
                assert info is not None
                assert (info.id, info.resumed) == (session_id, True)
                await received.until(lambda: bool(received.of("message")))
                assert received.of("message")[0][1] == b"sent while the server was down"
            await server.stop()


async def test_graceful_stop_says_going_away_then_client_reconnects() -> None:
    with trio.fail_after(10):
        server = SigmaSocketServer(options(shutdown_reconnect_after=0.2))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            async with SigmaSocketClient(url(server), **FAST) as client:
                log = watch(client, "disconnection", "reconnecting")
                await server.stop()
                await log.until(lambda: bool(log.of("reconnecting")))
                assert log.names()[:2] == ["disconnection", "reconnecting"]
                code, reason = log.of("disconnection")[0]
                assert code == 1001
                assert "shutting down" in reason
                info: ReconnectInfo = log.of("reconnecting")[0][0]
                assert info.attempt == 1
                assert info.next_retry_in >= 0.2  # the server's hint, plus jitter
                assert client.get_status() is ConnectionStatus.RECONNECTING


async def test_fresh_server_reports_session_reset() -> None:
    with trio.fail_after(10):
        first = SigmaSocketServer(options())
        async with trio.open_nursery() as nursery:
            port = await nursery.start(first.serve)
            async with SigmaSocketClient(url(first), **FAST) as client:
                log = watch(client, "session_reset", "error")
                old_id = server_session(first, client).id
                await first.stop()
                async with SigmaSocketServer(options(port=port)):  # no memory of the session
                    await log.until(lambda: bool(log.of("session_reset")) and bool(
                        log.of("error")))
                    (reset,), = log.of("session_reset")
                    assert isinstance(reset, SessionReset)
                    assert reset.old_session_id == old_id
                    # SessionLostError, and a RecoveryFailedError per topic whose history is gone
                    errors = [type(e) for (e,) in log.of("error")]
                    assert errors[0] is SessionLostError
                    assert set(errors[1:]) <= {RecoveryFailedError}
                    await client.connect()
                    info = client.get_session()
                    assert info is not None
                    assert (info.id, info.resumed) == (reset.new_session_id, False)


# ----------------------------------------------------------------------------- TLS, limits, auth


async def test_tls_round_trip() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with trio.fail_after(10):
        async with SigmaSocketServer(options(ssl=server_context)) as server:
            server.on("message", lambda client, data, topic: server.send_to_client(
                client, data[::-1]))
            async with SigmaSocketClient(url(server, "wss"), ssl=client_context,
                                         **FAST) as client:
                assert client.send(b"secure")
                assert (await next_message(client)).data == b"eruces"


async def test_max_connections_refuses_with_http_503() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options(max_connections=1)) as server, \
                SigmaSocketClient(url(server), **FAST):
            with pytest.raises(ConnectionFailed, match="503"):
                async with SigmaSocketClient(url(server), reconnect_interval=0.05,
                                             max_reconnect_attempts=1):
                    pass


async def test_auth_hook_accepts_and_refuses() -> None:
    def authenticate(request: AuthRequest) -> AuthAccept | AuthRefuse:
        if request.hello.auth_token == "open sesame":
            return AuthAccept(identity="alice", metadata={"role": "admin"})
        return AuthRefuse(message="wrong password")

    with trio.fail_after(10):
        async with SigmaSocketServer(options(authenticate=authenticate)) as server:
            async with SigmaSocketClient(url(server), auth_token="open sesame",
                                         **FAST) as client:
                session = server_session(server, client)
                assert (session.identity, session.metadata) == ("alice", {"role": "admin"})
            log = Log()
            intruder = SigmaSocketClient(url(server), auth_token="guess", **FAST)
            intruder.on("error", log.recorder("error"))
            with pytest.raises(ConnectionFailed, match="wrong password"):
                async with intruder:
                    pass  # pragma: no cover - refused
            assert intruder.get_status() is ConnectionStatus.ERROR
            assert [type(e) for (e,) in log.of("error")] == [ConnectionFailed]


# ----------------------------------------------------------------------------- bad peers


async def test_slow_consumer_is_cut_while_others_keep_receiving() -> None:
    chunk = bytes(16 * 1024)
    with trio.fail_after(10):
        async with SigmaSocketServer(options(outgoing_high_water=64 * 1024)) as server, \
                SigmaSocketClient(url(server), **FAST) as reader:
            gone = watch(server, "disconnection")
            stream, _ = await open_raw(server.port, config=ConnectionConfig(),
                                       receive_buffer=4096)
            async with stream:  # it never reads again
                received = 0
                sent = 0
                while not gone.of("disconnection"):
                    for _ in range(2):
                        server.broadcast(chunk)
                    sent += 2
                    while received < sent:
                        message = await next_message(reader)
                        assert len(message.data) == len(chunk)
                        received += 1
                (session, reason), = gone.of("disconnection")
                assert reason.startswith("slow_consumer")
                assert session.id != server_session(server, reader).id
                assert server.get_stats().slow_consumer_disconnects == 1
                server.broadcast(b"still here")
                assert (await next_message(reader)).data == b"still here"
                while await stream.receive_some(65536):  # the server closed the socket
                    pass


async def test_connection_cut_mid_frame_does_not_disturb_others() -> None:
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, \
                SigmaSocketClient(url(server), **FAST) as bystander:
            gone = watch(server, "disconnection")
            stream, conn = await open_raw(server.port, config=ConnectionConfig())
            conn.send(Data(topic="", seq=1, timestamp_ms=0, payload=bytes(1000)))
            frame = b"".join(conn.data_to_send())
            await stream.send_all(frame[:len(frame) // 2])
            await stream.aclose()
            await gone.until(lambda: bool(gone.of("disconnection")))
            assert gone.of("disconnection")[0][1].startswith("abnormal_closure")
            assert server.get_stats().messages_received == 0
            server.broadcast(b"unaffected")
            assert (await next_message(bystander)).data == b"unaffected"
            assert bystander.send(b"and talking")
            heard = watch(server, "message")
            await heard.until(lambda: bool(heard.of("message")))


# ----------------------------------------------------------------------------- echo server


async def _read_port(stdout: trio.abc.ReceiveStream) -> int:
    line = b""
    while not line.endswith(b"\n"):
        data = await stdout.receive_some(256)
        assert data, "the echo server exited before printing its port"
        line += data
    text = line.decode()
    assert text.startswith("listening on ws://127.0.0.1:"), text
    return int(text.rstrip().rstrip("/").rsplit(":", 1)[1])


async def _echo(stream: trio.SocketStream, conn: ClientConnection,
                messages: list[bytes | str]) -> list[bytes | str]:
    for message in messages:
        conn.send_raw(message)
    await stream.send_all(b"".join(conn.data_to_send()))
    echoed: list[bytes | str] = []
    while len(echoed) < len(messages):
        data = await stream.receive_some(65536)
        assert data
        conn.receive_data(data, trio.current_time())
        echoed += [e.data for e in conn.events_received() if isinstance(e, RawMessage)]
    return echoed


async def test_echo_server_subprocess_echoes_and_stops_on_sigterm() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "sigma_trio.echo", "--port", "0"], cwd=ROOT,
        stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        with trio.fail_after(10):
            port = await _read_port(process.stdout)
            stream, conn = await open_raw(port, config=PLAIN)
            async with stream:
                assert await _echo(stream, conn, ["héllo", b"\x00\x01binary\xff"]) == [
                    "héllo", b"\x00\x01binary\xff"]
                big = bytes(range(256)) * 1024
                assert await _echo(stream, conn, [big]) == [big]
        os.kill(process.pid, signal.SIGTERM)
        with trio.fail_after(5):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:  # pragma: no cover - only when failing
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()
