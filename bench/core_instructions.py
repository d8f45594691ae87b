"""Fixed work on the sans-IO core for instruction counts (``valgrind --tool=callgrind``).

    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/core_instructions.py echo 40
    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/core_instructions.py echo 0

The difference of the two totals ("Collected"), divided by the messages (40 rounds x 100
sessions x 4 pipelined 1 KiB messages = 16,000), is the server side's instructions per echoed
message (bench/core_bench.py's "echo, server side"); ``bcast N`` broadcasts N times to 1,000
sessions (divide by N x 1,000 deliveries). Instruction counts do not depend on the machine's
load, so they compare two builds on a busy machine where timings cannot (docs/benchmarks.md).
Run once without valgrind first so that the .pyc files exist in both runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, os.environ.get("BENCHDIR", str(Path(__file__).resolve().parent)))

import core_bench as cb

from sigma_core import codec
from sigma_core.hub import ClientMessage


def echo(rounds: int, n: int = 100, per_read: int = 4) -> None:
    bench = cb.Bench(n)
    hub = bench.hub
    sessions = [bench.conn_of[i] for i in range(n)]
    next_seq = dict.fromkeys(sessions, 1)
    reads = []
    for _ in range(rounds):
        batch = []
        for conn_id in sessions:
            seq = next_seq[conn_id]
            data = b"".join(cb._masked_frame(codec.encode_data(seq=seq + k, payload=cb.PAYLOAD))
                            for k in range(per_read))
            next_seq[conn_id] = seq + per_read
            batch.append((conn_id, data))
        reads.append(batch)
    now = bench.now
    for batch in reads:
        for conn_id, data in batch:
            hub.receive_data(conn_id, data, now)
            for event in hub.events_received():
                if type(event) is ClientMessage:
                    hub.send_to(event.session.id, event.payload, now)
            hub.flush(now)


def broadcast(rounds: int, n: int = 1000) -> None:
    bench = cb.Bench(n)
    hub = bench.hub
    for _ in range(rounds):
        hub.broadcast(cb.PAYLOAD, bench.now)
        hub.flush(bench.now)


if __name__ == "__main__":
    which, count = sys.argv[1], int(sys.argv[2])
    (echo if which == "echo" else broadcast)(count)
