"""A plain RFC 6455 echo server (for Autobahn and benchmarks): every text or binary message is
sent back as received.

    python -m sigma_asyncio.echo --port 9001 [--host 127.0.0.1] [--no-uvloop]

Prints ``listening on ws://HOST:PORT/`` once bound (``--port 0`` picks a free port) and exits
cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from sigma_core.connection import (
    ConnectionConfig,
    ConnectionState,
    HandshakeRequest,
    RawMessage,
    ServerConnection,
)
from sigma_core.websocket import WebSocketConfig

from . import run

__all__ = ["main", "serve"]

CONFIG = ConnectionConfig(envelope=False, websocket=WebSocketConfig.plain(),
                          heartbeat_interval=0)


class _EchoProtocol(asyncio.Protocol):
    """One socket, one plain-mode :class:`ServerConnection`, one timer."""

    def __init__(self, live: set[_EchoProtocol]) -> None:
        self._live = live
        self._loop = asyncio.get_running_loop()
        self._conn = ServerConnection(CONFIG, now=self._loop.time())
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._live.add(self)
        self._after_core()

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data, self._loop.time())
        self._after_core()

    def eof_received(self) -> None:
        self._conn.receive_data(None, self._loop.time())
        self._after_core()

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        self._conn.receive_data(None, self._loop.time())
        self._conn.events_received()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _after_core(self) -> None:
        conn = self._conn
        while events := conn.events_received():
            for event in events:
                if isinstance(event, HandshakeRequest):
                    conn.accept_handshake()
                elif isinstance(event, RawMessage) and conn.state is ConnectionState.OPEN:
                    conn.send_raw(event.data)
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        chunks = conn.data_to_send()
        if chunks:
            transport.writelines(chunks)
        if conn.transport_should_close:
            transport.close()
            return
        deadline = conn.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = (None if deadline is None
                           else self._loop.call_at(deadline, self._on_timer))

    def _on_timer(self) -> None:
        when = self._timer_at or 0.0
        self._timer = self._timer_at = None
        self._conn.handle_timer(max(self._loop.time(), when))
        self._after_core()


async def serve(host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    live: set[_EchoProtocol] = set()
    server = await loop.create_server(lambda: _EchoProtocol(live), host, port)
    bound = server.sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on ws://{shown}:{bound}/", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        for protocol in list(live):
            protocol.close()
        await server.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m sigma_asyncio.echo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")
    args = parser.parse_args(argv)
    run(serve(args.host, args.port), use_uvloop=not args.no_uvloop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
