"""What the ASGI bench servers share: the app (the same behaviour as the native servers:
echo through the sender's inbox, ``BCAST <n>``), the floor app (:class:`BareEcho`, no
protocol: what the ASGI server itself costs) and the start-up (a listening socket of our own on
the port asked for, READY once the app's lifespan has started it)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from servers._common import PAYLOAD, SIGMA_BENCH_OPTIONS, broadcast_count, ready
from sigma_asgi import ClientSession, SigmaASGIApp


def make_app() -> SigmaASGIApp:
    app = SigmaASGIApp(max_connections=100_000, **SIGMA_BENCH_OPTIONS)  # type: ignore[arg-type]

    def on_message(client: ClientSession, data: bytes, topic: str) -> None:
        n = broadcast_count(data)
        if n is None:
            app.send_to_client(client, data)
        else:
            for _ in range(n):
                app.broadcast(PAYLOAD)

    app.on("message", on_message)
    return app


class BareEcho:
    """The floor: an ASGI app that sends every WebSocket message back as it came (no protocol,
    no session: the "plain" load generator) and answers ``BCAST <n>`` by sending the payload
    to every connection n times, awaiting each send (ASGI has no other way). What
    SigmaASGIApp costs above it under the same server is ours; the rest is the server's."""

    def __init__(self) -> None:
        self.hub: object | None = None  # set once the lifespan started (what run() waits for)
        self._sends: set[Callable[[dict[str, Any]], Awaitable[None]]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.hub = self
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "websocket" or (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        self._sends.add(send)
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    return
                data = message.get("bytes")
                n = broadcast_count(data) if data is not None else None
                if n is None:
                    await send(message | {"type": "websocket.send"})
                    continue
                out = {"type": "websocket.send", "bytes": PAYLOAD}
                for _ in range(n):
                    for each in list(self._sends):
                        await each(out)
        finally:
            self._sends.discard(send)


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def run(app: SigmaASGIApp | BareEcho, sock: socket.socket,
              serve: Callable[[], Awaitable[None]]) -> None:
    """Run ``serve()``; print READY once the lifespan started the app."""
    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        while app.hub is None:
            await anyio.sleep(0.01)
        ready(sock.getsockname()[1])
