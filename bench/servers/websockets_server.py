"""websockets (asyncio implementation, default event loop): plain echo; broadcast with
``websockets.asyncio.server.broadcast``.

    python bench/servers/websockets_server.py --port 9001
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._common

import asyncio

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from servers._common import PAYLOAD, broadcast_count, parse_args, raise_nofile, ready


async def main(host: str, port: int) -> None:
    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                n = broadcast_count(message)  # type: ignore[arg-type]
                if n is None:
                    await ws.send(message)
                else:
                    connections = ws.server.connections
                    for _ in range(n):
                        broadcast(connections, PAYLOAD)
        except ConnectionClosed:  # the load generator drops its sockets without a close frame
            pass

    async with serve(handler, host, port) as server:
        ready(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    raise_nofile()
    asyncio.run(main(args.host, args.port))
