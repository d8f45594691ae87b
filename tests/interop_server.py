"""A SigmaSockets server for the interop tests, run in its own process::

    python tests/interop_server.py --backend trio [--port 0]

Prints the bound port on a line of its own once listening. SIGTERM or SIGINT stops it
gracefully (exit status 0); the tests SIGKILL it to lose its state.

What it does with a client's message: on a topic, publish it to that topic; otherwise
``echo:...`` goes back to the sender only and ``broadcast:...`` to everyone but the sender.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

import trio

import sigma_asyncio
import sigma_trio
from sigma_core.api import ServerOptions
from sigma_core.hub import Session

AnyServer = sigma_asyncio.SigmaSocketServer | sigma_trio.SigmaSocketServer


def options(port: int) -> ServerOptions:
    return ServerOptions(host="127.0.0.1", port=port, shutdown_reconnect_after=0.02,
                         shutdown_timeout=1.0)


def install(server: AnyServer) -> None:
    """The behaviour described in the module docstring."""
    def on_message(client: Session, data: bytes, topic: str) -> None:
        if topic:
            server.publish(topic, data)
        elif data.startswith(b"echo:"):
            server.send_to_client(client, data)
        elif data.startswith(b"broadcast:"):
            server.broadcast(data, exclude=client)

    server.on("message", on_message)


async def serve_asyncio(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sigma_asyncio.SigmaSocketServer(options(port)) as server:
        install(server)
        print(server.port, flush=True)
        await stop.wait()


async def serve_trio(port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with sigma_trio.SigmaSocketServer(options(port)) as server:
            install(server)
            print(server.port, flush=True)
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["asyncio", "trio"], required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend == "asyncio":
        asyncio.run(serve_asyncio(args.port))
    else:
        trio.run(serve_trio, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
