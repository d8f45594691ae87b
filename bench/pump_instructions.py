"""The per-read path of the socket adapters without sockets, for instruction counts.

    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/pump_instructions.py 6000
    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/pump_instructions.py 2000

    ... bench/pump_instructions.py 6000 --sessions 1000 --step 18e-6 --total 18000

The difference of the two totals divided by 4,000 is what one read carrying one 1 KiB ``Data``
costs the server's Python side when every read holds one message (the 10 x 1 pattern): the
adapter's ``data_received`` frame, :class:`sigma_core.pump.ServerPump` (the hub's input, the
``message`` listener, an echo through ``send_to_client``, the flush, the write to a transport
that drops the bytes) and the timer (ack timers fired when due). Ten sessions take turns; a
fake clock advances 10 µs per read (each session reads every 100 µs, as at ~100,000 echoes per
second), so acks go by count as they do at full speed. Both counts build all 6,000 frames
first, so the client side cancels out. ``--sessions N --step S`` take turns among N sessions, S
seconds apart (``--sessions 1000 --step 18e-6``: the 1,000 x 1 pattern at ~55,000 echoes per
second, each session every 18 ms, where a slow sender's ack rides with its reply); ``--total``
frames are built (at least the larger count; the same for both counts).

Unlike ``bench/callgrind_echo.py --pattern 10x1`` this does not depend on how slow the server
runs under valgrind (there, most acks come from the ack timer; see docs/benchmarks.md), but it
leaves out the event loop and the system calls. It drives the adapter the way the tree under
test does: with ``ServerPump.send_to_client`` bound where the tree has it (session 6), else
through ``ServerCommands.send_to_client`` with the adapter's Python ``_now``/``_after_core``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

# The packages first, from PYTHONPATH as given (core_bench puts this tree's root first on the
# path when imported: a tree under test on PYTHONPATH must be imported before it).
from sigma_core import codec
from sigma_core.api import EventEmitter, ServerCommands, ServerOptions, server_event_dispatcher
from sigma_core.pump import ServerPump
from sigma_core.serializers import RAW

sys.path.insert(0, os.environ.get("BENCHDIR", str(Path(__file__).resolve().parent)))

import core_bench as cb

TOTAL = 6000
SESSIONS = 10
STEP = 10e-6


class Sink:
    """A transport that counts the writes and drops the bytes."""

    writes = 0

    def write(self, data: bytes) -> None:
        Sink.writes += 1

    def writelines(self, chunks: list[bytes]) -> None:
        Sink.writes += 1


class Server(ServerCommands):
    """What sigma_asyncio's server gives the commands before session 6: Python ``_now`` and
    ``_after_core`` methods."""

    def __init__(self, hub: Any, pump: ServerPump, clock: Any) -> None:
        self.options = ServerOptions()
        self._hub = hub
        self._pump = pump
        self._clock = clock
        self._data_received = pump.data_received

    def _now(self) -> float:
        return float(self._clock())

    def _after_core(self) -> None:
        self._pump.after_core()


class Protocol:
    """The adapter's per-socket protocol: its ``data_received`` frame."""

    __slots__ = ("_conn_id", "_server")

    def __init__(self, server: Server, conn_id: int) -> None:
        self._server = server
        self._conn_id = conn_id

    def data_received(self, data: bytes) -> None:
        self._server._data_received(self._conn_id, data)


def main(reads: int, sessions: int = SESSIONS, step: float = STEP, total: int = TOTAL) -> None:
    SESSIONS, STEP, TOTAL = sessions, step, total
    bench = cb.Bench(SESSIONS)
    hub = bench.hub
    now = [bench.now]

    def clock() -> float:
        return now[0]

    emitter = EventEmitter(logger=logging.getLogger("bench"), owner="bench")
    peers: dict[int, Any] = {bench.conn_of[i]: Sink() for i in range(SESSIONS)}
    kwargs: dict[str, Any] = {"emitter": emitter, "peers": peers, "link": None,
                              "clock": clock, "arm": lambda when: None,
                              "close": lambda peer, action: None,
                              "dispatch": server_event_dispatcher(
                                  emitter, logging.getLogger("bench"), {}, RAW)}
    try:
        pump = ServerPump(hub, serializer=RAW, **kwargs)
    except TypeError:  # before session 6: raw= and no serializer (nor send_to_client)
        pump = ServerPump(hub, raw=True, **kwargs)
    pump.running = True
    server = Server(hub, pump, clock)
    send = getattr(pump, "send_to_client", None) or server.send_to_client

    def on_message(session: Any, payload: bytes, topic: str) -> None:
        send(session, payload)

    emitter.on("message", on_message)
    protocols = [Protocol(server, bench.conn_of[i]) for i in range(SESSIONS)]
    frames = [[cb._masked_frame(codec.encode_data(seq=seq, payload=cb.PAYLOAD))
               for seq in range(1, TOTAL // SESSIONS + 1)] for _ in range(SESSIONS)]
    pump.after_core()
    for n in range(reads):
        i = n % SESSIONS
        now[0] += STEP
        if now[0] >= pump.armed_at:
            pump.on_timer()
        protocols[i].data_received(frames[i][n // SESSIONS])
    assert Sink.writes >= reads, (Sink.writes, reads)
    assert all(rec is not None for rec in (hub._conns.get(c) for c in peers)), "a session ended"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reads", type=int)
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    parser.add_argument("--step", type=float, default=STEP, help="seconds between reads")
    parser.add_argument("--total", type=int, default=TOTAL, help="frames built")
    args = parser.parse_args()
    main(args.reads, args.sessions, args.step, max(args.total, args.reads))
