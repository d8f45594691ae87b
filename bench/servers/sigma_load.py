"""SigmaSockets under load (``bench/load.py``): the full protocol on asyncio, asyncio + uvloop or
trio, plus a side channel for the harness that no client sees.

    python bench/servers/sigma_load.py --backend asyncio|uvloop|trio --port 0 \\
        [--heartbeat-interval 5] [--heartbeat-timeout 15] [--session-ttl 5] \\
        [--high-water BYTES] [--history-count N] [--tracemalloc]

Prints ``READY <port> <control_port>``. Clients get what ``bench/servers/_common.py`` describes
(echo through the sender's inbox; ``BCAST n``). The control port (127.0.0.1, one line in, one
JSON line out) is out of band on purpose: asking for the server's counters must not add a
connection or a session to the counters.

* ``stats`` -- the hub's :class:`~sigma_core.hub.ServerStats` plus open sockets, VmRSS, CPU
  seconds, ``sys.getallocatedblocks()``, the backplane's stream count, the timer heap's size;
* ``stats full`` -- the same after ``gc.collect()``, with the number of objects the collector
  tracks and (with ``--tracemalloc``) the bytes tracemalloc sees allocated;
* ``bcast SIZE`` -- one broadcast of SIZE bytes stamped with ``SIGSTAMP``, a sequence number
  and CLOCK_MONOTONIC ns (comparable across processes);
* ``stream RATE COUNT SIZE`` -- COUNT such broadcasts at RATE per second, paced on absolute
  deadlines (no drift); ``stats`` shows ``stream_sent``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import struct
import sys
import time
import tracemalloc
from functools import partial
from pathlib import Path
from typing import Any

# This folder holds scripts named like the packages (sigma_asyncio.py, sigma_trio.py): take it
# off the path so the imports below find the packages, and put bench/ on it (servers._common).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

from servers._common import PAYLOAD, broadcast_count, raise_nofile  # noqa: E402
from sigma_core.api import ServerOptions  # noqa: E402
from sigma_core.backplane import HistoryLimits  # noqa: E402

#: Head of every broadcast the harness asks for: a marker, the sequence, CLOCK_MONOTONIC ns.
MAGIC = b"SIGSTAMP"
STAMP = struct.Struct("<QQ")


class Load:
    """What both backends share: options, counters, the control commands."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server: Any = None
        self.seq = 0
        self.stream_sent = 0

    def options(self) -> ServerOptions:
        a = self.args
        history = HistoryLimits(max_count=a.history_count, max_bytes=a.history_count << 14)
        return ServerOptions(host="127.0.0.1", port=a.port,
                             heartbeat_interval=a.heartbeat_interval,
                             heartbeat_timeout=a.heartbeat_timeout,
                             session_timeout=a.session_ttl, outgoing_high_water=a.high_water,
                             max_connections=a.max_connections, history=history)

    def on_message(self, client: object, data: bytes, topic: str) -> None:
        n = broadcast_count(data)
        if n is None:
            self.server.send_to_client(client, data)
        else:
            for _ in range(n):
                self.server.broadcast(PAYLOAD)

    def stamped(self, size: int) -> tuple[bytes, int]:
        """A broadcast of ``size`` bytes and the CLOCK_MONOTONIC ns stamped in it."""
        self.seq += 1
        now = time.monotonic_ns()
        head = MAGIC + STAMP.pack(self.seq, now)
        return head + bytes(max(0, size - len(head))), now

    def broadcast(self, size: int) -> int:
        """Broadcast a stamped message; returns its stamp (taken before any socket is written:
        a client can read it before ``broadcast`` returns)."""
        data, stamp = self.stamped(size)
        self.server.broadcast(data)
        return stamp

    def stats(self, full: bool, sockets: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if full:
            gc.collect()
            out["gc_objects"] = len(gc.get_objects())
            if tracemalloc.is_tracing():
                out["tracemalloc_bytes"] = tracemalloc.get_traced_memory()[0]
        hub = self.server.hub
        out.update(dataclasses.asdict(self.server.get_stats()))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.update({
            "sockets": sockets,
            "hub_connections": hub.connection_count(),
            "backplane_streams": len(hub._engine),
            "timer_heap": len(hub._timers),
            "rss_kib": _rss_kib(),
            "max_rss_kib": usage.ru_maxrss,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "allocated_blocks": sys.getallocatedblocks(),
            "stream_sent": self.stream_sent,
            "broadcast_seq": self.seq,
            "monotonic_ns": time.monotonic_ns(),
        })
        return out


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1])
    return 0


def command(load: Load, line: str, sockets: int) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Run one control line; the tuple asks the caller to start a paced stream."""
    words = line.split()
    if not words:
        return {"error": "empty"}, ()
    if words[0] == "stats":
        return load.stats(full=words[1:] == ["full"], sockets=sockets), ()
    if words[0] == "bcast":
        sent_ns = load.broadcast(int(words[1]))
        return {"seq": load.seq, "sent_ns": sent_ns}, ()
    if words[0] == "stream":
        rate, count, size = (int(w) for w in words[1:4])
        return {"started_ns": time.monotonic_ns()}, (rate, count, size)
    return {"error": f"unknown command {words[0]!r}"}, ()


# ----------------------------------------------------------------------------- asyncio


async def serve_asyncio(load: Load) -> None:
    import asyncio

    from sigma_asyncio import SigmaSocketServer

    server = load.server = SigmaSocketServer(load.options())
    server.on("message", load.on_message)
    loop = asyncio.get_running_loop()

    def stream(rate: int, count: int, size: int) -> None:
        start = loop.time()

        def tick(i: int) -> None:
            load.broadcast(size)
            load.stream_sent += 1
            if i + 1 < count:
                loop.call_at(start + (i + 1) / rate, tick, i + 1)

        tick(0)

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            reply, pace = command(load, line.decode(), len(server._peers))
            writer.write(json.dumps(reply).encode() + b"\n")
            if pace:
                stream(*pace)
        writer.close()

    await server.start()
    side = await asyncio.start_server(control, "127.0.0.1", 0)
    print(f"READY {server.port} {side.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


# ----------------------------------------------------------------------------- trio


async def serve_trio(load: Load) -> None:
    import trio

    from sigma_trio import SigmaSocketServer

    server = load.server = SigmaSocketServer(load.options())
    server.on("message", load.on_message)

    async def stream(rate: int, count: int, size: int) -> None:
        start = trio.current_time()
        for i in range(count):
            await trio.sleep_until(start + i / rate)
            load.broadcast(size)
            load.stream_sent += 1

    async with trio.open_nursery() as nursery:

        async def control(conn: trio.SocketStream) -> None:
            buf = b""
            while data := await conn.receive_some(4096):
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply, pace = command(load, line.decode(), len(server._peers))
                    await conn.send_all(json.dumps(reply).encode() + b"\n")
                    if pace:
                        nursery.start_soon(partial(stream, *pace))

        port = await nursery.start(server.serve)
        listeners = await nursery.start(partial(trio.serve_tcp, control, 0, host="127.0.0.1"))
        print(f"READY {port} {listeners[0].socket.getsockname()[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--heartbeat-interval", type=float, default=25.0)
    parser.add_argument("--heartbeat-timeout", type=float, default=60.0)
    parser.add_argument("--session-ttl", type=float, default=300.0)
    parser.add_argument("--high-water", type=int, default=4 << 20)
    parser.add_argument("--history-count", type=int, default=1000)
    parser.add_argument("--max-connections", type=int, default=10_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    raise_nofile()
    if args.tracemalloc:
        tracemalloc.start()
    load = Load(args)
    if args.backend == "trio":
        import trio

        trio.run(serve_trio, load)
    else:
        import sigma_asyncio

        sigma_asyncio.run(serve_asyncio(load), use_uvloop=args.backend == "uvloop")


if __name__ == "__main__":
    main()
