"""What the two ASGI bench servers share: the app (the same behaviour as the native servers:
echo through the sender's inbox, ``BCAST <n>``) and the start-up (a listening socket of our own
on the port asked for, READY once the app's lifespan has started it)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

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


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


async def run(app: SigmaASGIApp, sock: socket.socket,
              serve: Callable[[], Awaitable[None]]) -> None:
    """Run ``serve()``; print READY once the lifespan started the app."""
    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        while app.hub is None:
            await anyio.sleep(0.01)
        ready(sock.getsockname()[1])
