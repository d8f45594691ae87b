"""A naive wsproto + trio server: plain echo; broadcast awaits each send in turn.

    python bench/servers/trio_naive.py --port 9001

The baseline the issue measures sigma_trio's broadcast against ("a trio server awaiting each
send"): every target gets its own ``wsproto`` frame encoding and an awaited ``send_all``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._common

from functools import partial

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Request,
    TextMessage,
)

from servers._common import PAYLOAD, broadcast_count, parse_args, raise_nofile, ready

PEERS: set[Peer] = set()


class Peer:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.lock = trio.Lock()

    async def send(self, event: Event) -> None:
        async with self.lock:
            await self.stream.send_all(self.ws.send(event))


async def handle(stream: trio.SocketStream) -> None:
    peer = Peer(stream)
    buf = bytearray()
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            peer.ws.receive_data(data)
            for event in peer.ws.events():
                if isinstance(event, Request):
                    await peer.send(AcceptConnection())
                    PEERS.add(peer)
                elif isinstance(event, BytesMessage | TextMessage):
                    if isinstance(event, TextMessage):
                        continue
                    buf += event.data
                    if not event.message_finished:
                        continue
                    message, buf = bytes(buf), bytearray()
                    n = broadcast_count(message)
                    if n is None:
                        await peer.send(Message(data=message))
                        continue
                    for _ in range(n):
                        for target in list(PEERS):
                            try:
                                await target.send(Message(data=PAYLOAD))
                            except (trio.BrokenResourceError, trio.ClosedResourceError):
                                PEERS.discard(target)
                elif isinstance(event, Ping):
                    await peer.send(event.response())
                elif isinstance(event, CloseConnection):
                    await peer.send(event.response())
                    return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        PEERS.discard(peer)
        await stream.aclose()


async def main(host: str, port: int) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, port, host=host))
        ready(listeners[0].socket.getsockname()[1])


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    raise_nofile()
    trio.run(main, args.host, args.port)
