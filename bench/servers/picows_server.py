"""picows (Cython) on uvloop: plain echo; broadcast by a loop over ``transport.send``.

    python bench/servers/picows_server.py --port 9001

picows hands over frames, not messages: the load generator never fragments, so every data frame
is a whole message here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._common

import asyncio

import uvloop
from picows import (  # type: ignore[import-not-found, unused-ignore]
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_create_server,
)

from servers._common import PAYLOAD, broadcast_count, parse_args, raise_nofile, ready

CLIENTS: set[WSTransport] = set()
BINARY = WSMsgType.BINARY


class Echo(WSListener):  # type: ignore[misc, unused-ignore]
    def on_ws_connected(self, transport: WSTransport) -> None:
        CLIENTS.add(transport)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        CLIENTS.discard(transport)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type is BINARY:
            data = frame.get_payload_as_memoryview()
            n = broadcast_count(data)
            if n is None:
                transport.send(BINARY, data)
            else:
                targets = list(CLIENTS)
                for _ in range(n):
                    for client in targets:
                        client.send(BINARY, PAYLOAD)
        elif msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()


async def main(host: str, port: int) -> None:
    server = await ws_create_server(lambda _request: Echo(), host, port)
    ready(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    raise_nofile()
    uvloop.run(main(args.host, args.port))
