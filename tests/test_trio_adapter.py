"""What only ``sigma_trio`` has, over real sockets on 127.0.0.1: running in a nursery of your
own (``nursery.start(server.serve)`` / ``nursery.start(client.run)``), cancellation, a client
that is not running, and the echo server subprocess. The scenarios both adapters share are in
``test_adapters.py``.

Every test runs under ``trio.fail_after`` and waits on events, never on sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import sigma_trio.server
from sigma_core.client import ConnectionStatus
from sigma_core.connection import (
    ClientConnection,
    ConnectionConfig,
    ConnectionState,
    RawMessage,
)
from sigma_core.messages import Data, Hello
from sigma_core.websocket import WebSocketConfig
from sigma_trio import (
    LocalProtocolError,
    Message,
    ServerOptions,
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


def url(server: SigmaSocketServer) -> str:
    return f"ws://127.0.0.1:{server.port}/"


async def next_message(client: SigmaSocketClient) -> Message:
    async for message in client:
        return message
    raise AssertionError("the client stopped before a message arrived")


PLAIN = ConnectionConfig(envelope=False, websocket=WebSocketConfig.plain(), heartbeat_interval=0)


async def open_raw(port: int, *, config: ConnectionConfig, hello: Hello | None = None
                   ) -> tuple[trio.SocketStream, ClientConnection]:
    """A hand-driven client connection over a raw socket, up to OPEN."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = ClientConnection(host=f"127.0.0.1:{port}", config=config, hello=hello,
                            now=trio.current_time())
    await stream.send_all(b"".join(conn.data_to_send()))
    while conn.state is not ConnectionState.OPEN:
        data = await stream.receive_some(65536)
        assert data, "the server closed during the handshake"
        conn.receive_data(data, trio.current_time())
        out = conn.data_to_send()
        if out:
            await stream.send_all(b"".join(out))
    return stream, conn


# ----------------------------------------------------------------------------- running


@pytest.mark.parametrize("one_reader", [True, False],
                         ids=["one reader task (epoll)", "a task per connection (no epoll)"])
async def test_serve_and_run_in_your_own_nursery(one_reader: bool,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Also where ``select.epoll`` is missing: then each plain connection has its own task."""
    monkeypatch.setattr(sigma_trio.server, "_HAVE_EPOLL", one_reader)
    with trio.fail_after(10):
        server = SigmaSocketServer(options())
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            assert port == server.port != 0
            clients = [SigmaSocketClient(url(server), **FAST) for _ in range(3)]
            for client in clients:
                await nursery.start(client.run)
            assert len(server.get_connected_clients()) == 3
            assert (server._reactor is not None) is one_reader
            server.broadcast(b"to all")
            for client in clients:
                assert (await next_message(client)).data == b"to all"
            received = []
            server.on("message", lambda session, data, *_: received.append(data))
            assert clients[0].send(b"up")
            while not received:
                await trio.sleep(0.01)
            assert received == [b"up"]
            async with trio.open_nursery() as leavers:
                for client in clients:
                    leavers.start_soon(client.disconnect)
            assert [c.get_status() for c in clients] == [ConnectionStatus.DISCONNECTED] * 3
            await server.stop()
            assert await nursery.start(server.serve) == port  # serves again, same port
            await server.stop()


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


async def test_a_flood_starves_neither_the_other_tasks_nor_a_stop() -> None:
    """The reader task reads what arrives while it works without waking through trio, but only
    for a bounded amount per wake-up: a client that sends faster than the server reads (a thread
    writing one big buffer of messages) does not keep the other tasks from running, and the
    server stops in time meanwhile."""
    total = 30_000
    ticks: list[int] = []
    received = 0

    def on_message(*_: object) -> None:
        nonlocal received
        received += 1

    async def tick() -> None:
        while True:
            await trio.sleep(0.002)
            ticks.append(received)

    with trio.fail_after(20):
        server = SigmaSocketServer(options(shutdown_timeout=0.5))
        server.on("message", on_message)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(server.serve)
            assert server._reactor is not None
            stream, conn = await open_raw(port, config=ConnectionConfig(heartbeat_interval=0),
                                          hello=Hello())  # (OPEN: welcomed)
            for seq in range(1, total + 1):
                conn.send(Data(seq=seq, payload=b"x" * 100))
            flood = b"".join(conn.data_to_send())
            writer = socket.socket(fileno=os.dup(stream.socket.fileno()))
            writer.settimeout(15)  # (not setblocking: the descriptors share O_NONBLOCK)
            nursery.start_soon(tick)

            async def drain() -> None:  # the server's acks: read and dropped
                with trio.move_on_after(15), suppress(trio.BrokenResourceError):
                    while await stream.receive_some(65536):
                        pass  # (until the server's stop resets the connection)

            nursery.start_soon(drain)
            try:
                await trio.to_thread.run_sync(writer.sendall, flood, abandon_on_cancel=True)
                while received < total:
                    await trio.sleep(0.01)
            finally:
                writer.close()
            # Ticks while the server was reading the flood: it yielded to the ticker.
            assert len([r for r in ticks if 0 < r < total]) >= 3, ticks
            # Stopping while a flood is read: the stop is not held up by it.
            for seq in range(total + 1, 2 * total + 1):
                conn.send(Data(seq=seq, payload=b"x" * 100))
            second = b"".join(conn.data_to_send())

            async def flood_again() -> None:
                with suppress(trio.BrokenResourceError):
                    await stream.send_all(second)

            nursery.start_soon(flood_again)
            while received == total:
                await trio.sleep(0.001)
            with trio.fail_after(3):
                await server.stop()
            nursery.cancel_scope.cancel()
        await stream.aclose()


def test_the_pump_reads_trios_clock_in_one_call() -> None:
    """Under trio's own clock the pump reads ``perf_counter`` and adds trio's offset (no Python
    frames per read); under any other (a MockClock) it reads the run's clock itself."""

    async def default_clock() -> None:
        clock, offset = sigma_trio.server._pump_clock()
        assert clock is time.perf_counter
        before = trio.current_time()
        assert before <= clock() + offset <= trio.current_time()

    async def mock_clock() -> None:
        clock, offset = sigma_trio.server._pump_clock()
        assert (clock, offset) == (trio.current_time, 0.0)
        await trio.sleep(5)  # (autojump: at once)
        assert clock() == trio.current_time() >= 5

    trio.run(default_clock)
    trio.run(mock_clock, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_the_servers_times_are_trios_and_the_wall_clocks() -> None:
    """The hub's times are trio's (``connected_at`` against ``trio.current_time()``) and the
    messages it stamps carry the wall clock, whichever clock the pump reads."""
    with trio.fail_after(10):
        async with SigmaSocketServer(options()) as server, \
                SigmaSocketClient(url(server), **FAST) as client:
            (session,) = server.get_connected_clients()
            assert 0 <= trio.current_time() - session.connected_at < 5
            server.send_to_client(session, b"stamped")
            message = await next_message(client)
            assert message.data == b"stamped"
            assert abs(message.timestamp_ms - time.time() * 1000) < 5000


async def test_connect_requires_a_running_client() -> None:
    with trio.fail_after(10), pytest.raises(LocalProtocolError, match="not running"):
        await SigmaSocketClient("ws://127.0.0.1:9/").connect()


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
