"""What every server under test shares: arguments, the broadcast control message, readiness.

The harness (``bench/run.py``) starts a server as ``python bench/servers/NAME.py --port P``
pinned to CPU 0, waits for the line ``READY <port>`` on its stdout, and stops it by PID.

Behaviour every server implements:

* echo every binary message back to its sender (ours: the Data envelope's payload, sent back
  through the sender's inbox with ``send_to_client``; peers: the frame as received);
* a message ``BCAST <n>`` (ours: as a Data payload) is not echoed: the server broadcasts
  :data:`PAYLOAD` ``n`` times to every connected client, sender included.
"""

from __future__ import annotations

import argparse
import resource

#: Options of our servers here: every client of the load generator connects from 127.0.0.1, so
#: the per-peer session limits (docs/hardening.md; defaults 1,000 sessions and 20 new ones per
#: second per address) would refuse most of the 1,000 and 10,000 connections the workloads
#: open. 0 disables them; everything else keeps its default.
SIGMA_BENCH_OPTIONS = {"max_sessions_per_peer": 0, "new_sessions_per_peer_per_second": 0.0,
                       "max_pending_handshakes": 20000}

#: The broadcast payload: 1 KiB.
PAYLOAD = bytes(range(256)) * 4
BCAST = b"BCAST"


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    return parser.parse_args()


def raise_nofile() -> None:
    """Lift the soft open-files limit to the hard one (5,000 idle connections need it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def broadcast_count(data: bytes | bytearray | memoryview) -> int | None:
    """``n`` for a ``BCAST <n>`` control message, None for anything else (to be echoed)."""
    if data[:5] != BCAST:  # memoryview slices compare by content too
        return None
    return int(bytes(data[5:]).strip() or b"1")


def ready(port: int) -> None:
    print(f"READY {port}", flush=True)
