"""python-socketio (AsyncServer on aiohttp, default event loop): echo, and broadcast to a room.

    python bench/servers/socketio_server.py --port 9001 [--uvloop]

The Python library with rooms and acks that users would otherwise pick. WebSocket transport only
(no long-polling upgrade dance), Socket.IO protocol 5 over Engine.IO 4, at ``/socket.io/``. Every
client joins the room ``all`` on connect. An ``echo`` event with binary data (one Socket.IO binary
packet: a text frame ``451-["echo",{"_placeholder":true,"num":0}]`` and the payload as a binary
frame) is emitted back to its sender; ``BCAST <n>`` as its data emits the 1 KiB payload ``n``
times to the room ``all`` instead (``sio.emit(..., room="all")``: python-socketio encodes the
packet once per emit and writes it to each member).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._common

import asyncio

import socketio  # type: ignore[import-not-found, unused-ignore]
from aiohttp import web  # type: ignore[import-not-found, unused-ignore]

from servers._common import PAYLOAD, broadcast_count, parse_args, raise_nofile, ready

ROOM = "all"


async def main(host: str, port: int) -> None:
    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"],
                               logger=False, engineio_logger=False)
    app = web.Application()
    sio.attach(app)

    @sio.event  # type: ignore[misc, unused-ignore]
    async def connect(sid: str, environ: dict[str, object]) -> None:
        await sio.enter_room(sid, ROOM)

    @sio.on("echo")  # type: ignore[misc, unused-ignore]
    async def echo(sid: str, data: bytes) -> None:
        n = broadcast_count(data)
        if n is None:
            await sio.emit("echo", data, to=sid)
        else:
            for _ in range(n):
                await sio.emit("echo", PAYLOAD, room=ROOM)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    ready(server.sockets[0].getsockname()[1])  # type: ignore[union-attr, unused-ignore]
    await asyncio.Event().wait()


if __name__ == "__main__":
    use_uvloop = "--uvloop" in sys.argv
    if use_uvloop:
        sys.argv.remove("--uvloop")
    args = parse_args(__doc__ or "")
    raise_nofile()
    if use_uvloop:
        import uvloop

        uvloop.run(main(args.host, args.port))
    else:
        asyncio.run(main(args.host, args.port))
