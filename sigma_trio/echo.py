"""A plain RFC 6455 echo server on trio (for Autobahn and benchmarks)::

    python -m sigma_trio.echo --port 9001 [--host 127.0.0.1]

Text and binary messages come back as received. No SigmaSockets envelope: each socket is a
:class:`~sigma_core.connection.ServerConnection` in plain mode. Prints
``listening on ws://HOST:PORT/`` once bound; SIGINT or SIGTERM stops it (exit status 0).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys

import trio

from sigma_core.connection import (
    ConnectionConfig,
    ConnectionState,
    HandshakeRequest,
    RawMessage,
    ServerConnection,
)
from sigma_core.websocket import WebSocketConfig

__all__ = ["PLAIN", "handle_connection", "main", "serve"]

#: Plain RFC 6455: no envelope, no subprotocol, text allowed, no pings of our own.
PLAIN = ConnectionConfig(envelope=False, websocket=WebSocketConfig.plain(), heartbeat_interval=0)
_RECEIVE_SIZE = 65536


async def handle_connection(stream: trio.abc.Stream) -> None:
    """Echo one connection until it closes."""
    conn = ServerConnection(PLAIN, now=trio.current_time())
    try:
        while not conn.transport_should_close:
            deadline = conn.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline) as timer:
                try:
                    data = await stream.receive_some(_RECEIVE_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
            if timer.cancelled_caught:
                conn.handle_timer(trio.current_time())
            else:
                conn.receive_data(data or None, trio.current_time())  # b"": EOF
            for event in conn.events_received():
                # A message can share a read with a frame that closed the connection.
                if isinstance(event, RawMessage) and conn.state is ConnectionState.OPEN:
                    conn.send_raw(event.data)
                elif isinstance(event, HandshakeRequest):
                    conn.accept_handshake()
            out = conn.data_to_send()
            if out:
                await stream.send_all(b"".join(out))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(stream)


async def serve(host: str, port: int, *,
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the echo on ``host:port`` (0: a free port, reported through ``task_status``)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound: int = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, handle_connection, listeners)
        task_status.started(bound)


async def _main(host: str, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve, host, port)
            print(f"listening on ws://{host}:{bound}/", flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sigma_trio.echo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    trio.run(_main, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
