"""What only ``sigma_asyncio`` has, over real sockets on 127.0.0.1: the client running in the
background from a bare ``connect()``, uvloop (``sigma_asyncio.run``) and the echo server
subprocess. The scenarios both adapters share are in ``test_adapters.py``.

Every waiting test runs under ``asyncio.timeout(DEADLINE)``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

import sigma_asyncio
from sigma_asyncio import ConnectionStatus, Message, SigmaSocketClient, SigmaSocketServer

LOCAL = "127.0.0.1"
DEADLINE = 10.0
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def url(server: SigmaSocketServer) -> str:
    return f"ws://{LOCAL}:{server.port}/"


async def next_message(client: SigmaSocketClient) -> Message:
    async for message in client:
        return message
    raise AssertionError("the message stream ended")


@pytest.mark.anyio
async def test_connect_and_disconnect_without_async_with() -> None:
    """``connect()`` starts the client in the background, ``disconnect()`` ends it, and
    ``connect()`` again starts a fresh session whose messages the stream yields."""
    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0) as server:
        client = SigmaSocketClient(url(server))
        await client.connect()
        assert client.get_status() is ConnectionStatus.CONNECTED
        first = client.get_session()
        assert first is not None
        server.broadcast(b"hello")
        assert (await next_message(client)).data == b"hello"

        await client.disconnect()
        assert client.get_status() is ConnectionStatus.DISCONNECTED
        assert [m async for m in client] == []

        await client.connect()
        second = client.get_session()
        assert second is not None
        assert second.id != first.id
        assert not second.resumed
        server.broadcast(b"again")
        assert (await next_message(client)).data == b"again"
        await client.disconnect()


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
                SigmaSocketServer(host=LOCAL, port=0) as server, \
                SigmaSocketClient(url(server)) as client:
            server.broadcast(b"on uvloop")
            message = await next_message(client)
            return type(asyncio.get_running_loop()).__module__, message.data

    module, data = sigma_asyncio.run(scenario())
    assert module.startswith("uvloop")
    assert data == b"on uvloop"


@pytest.mark.anyio
async def test_a_one_in_flight_echo_makes_one_write_and_arms_no_timer_per_message(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Workload (a)'s shape over real sockets: one client, 300 sequential round trips. Per
    message the server makes one socket write (its reply; an acknowledgement rides in it) and
    arms its timer at most a few times in all, not per message: the per-read costs
    docs/benchmarks.md measures ("Session 9: latency p50"), held without a clock."""
    from asyncio import selector_events

    server_writes = 0
    server_port = 0
    inside = False  # Python 3.11's writelines joins and calls write: one write, counted once
    transport_cls: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009
    write, writelines = transport_cls.write, transport_cls.writelines

    def counted(transport: Any) -> None:
        nonlocal server_writes
        if not inside and transport.get_extra_info("sockname")[1] == server_port:
            server_writes += 1

    def write_counted(self: Any, data: Any) -> None:
        counted(self)
        write(self, data)

    def writelines_counted(self: Any, chunks: Any) -> None:
        nonlocal inside
        counted(self)
        inside = True
        try:
            writelines(self, chunks)
        finally:
            inside = False

    monkeypatch.setattr(transport_cls, "write", write_counted)
    monkeypatch.setattr(transport_cls, "writelines", writelines_counted)
    loop = asyncio.get_running_loop()
    arms = 0
    call_at = loop.call_at

    def call_at_counted(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
        nonlocal arms
        if isinstance(getattr(callback, "__self__", None), SigmaSocketServer):
            arms += 1
        return call_at(when, callback, *args, **kw)

    monkeypatch.setattr(loop, "call_at", call_at_counted)
    round_trips = 300
    async with asyncio.timeout(DEADLINE), \
            SigmaSocketServer(host=LOCAL, port=0) as server:
        server_port = server.port
        server.on("message", lambda client, data, topic: server.send_to_client(client, data))
        async with SigmaSocketClient(url(server)) as client:
            replies = aiter(client)
            client.send(b"warm-up")
            assert (await anext(replies)).data == b"warm-up"
            writes_before, arms_before, started = server_writes, arms, loop.time()
            for i in range(round_trips):
                payload = b"%d" % i
                client.send(payload)
                assert (await anext(replies)).data == payload
            writes, armed = server_writes - writes_before, arms - arms_before
            windows = (loop.time() - started) / 0.05  # the hub's ack_delay (50 ms)
    # The client's Acks ride in the replies (one by count every 32 messages here); an ack
    # timer that comes due between two messages may write one Ack on its own.
    assert round_trips <= writes <= round_trips + windows + 1, (writes, windows)
    # The timer follows the ack windows (armed for one, again when it fires) and the turns
    # that release what the client's inbox Acks let go (32 entries a turn), not messages.
    assert armed <= round_trips / 16 + 2 * windows + 2, (armed, windows)
