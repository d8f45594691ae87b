"""aiohttp (default event loop): plain echo; broadcast by a loop over ``send_bytes``.

    python bench/servers/aiohttp_server.py --port 9001

aiohttp 3.14 has no synchronous send: ``await ws.send_bytes()`` writes the frame to the
transport synchronously and only suspends when the transport is paused (its buffer above the
high-water mark), so the broadcast loop below awaits each send but does not yield to the event
loop between them while the clients keep up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._common

import asyncio
import contextlib

from aiohttp import WSMsgType, web  # type: ignore[import-not-found, unused-ignore]

from servers._common import PAYLOAD, broadcast_count, parse_args, raise_nofile, ready

CLIENTS: set[web.WebSocketResponse] = set()


async def handler(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    CLIENTS.add(ws)
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.BINARY:
                continue
            n = broadcast_count(msg.data)
            if n is None:
                await ws.send_bytes(msg.data)
                continue
            targets = list(CLIENTS)
            for _ in range(n):
                for client in targets:
                    if not client.closed:
                        with contextlib.suppress(ConnectionError):
                            await client.send_bytes(PAYLOAD)
    finally:
        CLIENTS.discard(ws)
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    assert server is not None
    ready(server.sockets[0].getsockname()[1])  # type: ignore[union-attr, unused-ignore]
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    raise_nofile()
    asyncio.run(main(args.host, args.port))
