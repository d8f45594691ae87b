"""What only ``sigma_asyncio`` has, over real sockets on 127.0.0.1: the client running in the
background from a bare ``connect()``, uvloop (``sigma_asyncio.run``) and the echo server
subprocess. The scenarios both adapters share are in ``test_adapters.py``.

Every waiting test runs under ``asyncio.timeout(DEADLINE)``; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
