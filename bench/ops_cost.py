"""What collecting metrics costs the hot path, in instructions (run under callgrind).

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/ops_cost.py --workload echo --rounds 200 [--scrape-every 10000]

A fixed amount of server-side work through the sans-IO hub (no sockets, no clock reads, so the
count is the same on a loaded machine): ``echo`` — 100 sessions (``--sessions``), each read
carrying 4 masked 1 KiB Data frames, every message answered through the sender's inbox and
flushed (bench (b)'s server side); ``broadcast`` — 1,000 sessions, 1 KiB broadcast and flushed
(bench (c)'s server side). ``--dry`` does the same set-up (sessions, frames) and no hub
work: subtract it.
``--scrape-every N`` also reads the sigma_ops Prometheus collector (every family, rendered as
text) once per N messages delivered, as a scrape would. Run it with PYTHONPATH pointing at
another checkout's packages to compare cores (docs/operations.md, "What metrics cost").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# sigma_core first, from PYTHONPATH when it is set (another checkout's core): core_bench puts
# this checkout first on sys.path before it imports sigma_core, and must find it imported.
from sigma_core import codec
from sigma_core.hub import ClientMessage, Hub

sys.path.insert(1, str(Path(__file__).resolve().parent))

from core_bench import PAYLOAD, Bench, _masked_frame


class _Source:
    def __init__(self, hub: Hub) -> None:
        self.hub: Hub | None = hub


def scraper(hub: Hub) -> object:
    from prometheus_client import generate_latest

    from sigma_ops.metrics import SigmaCollector, make_registry

    registry = make_registry(SigmaCollector(_Source(hub), lambda: 0.0))
    return lambda: generate_latest(registry)


def echo(sessions: int, rounds: int, scrape_every: int, dry: bool) -> int:
    bench = Bench(sessions)
    hub = bench.hub
    conns = [bench.conn_of[i] for i in range(sessions)]
    reads = [[(conn_id, b"".join(_masked_frame(codec.encode_data(seq=r * 4 + k + 1,
                                                                 payload=PAYLOAD))
                                 for k in range(4))) for conn_id in conns]
             for r in range(rounds)]
    receive, flush, events_received, send_to = (hub.receive_data, hub.flush,
                                                 hub.events_received, hub.send_to)
    scrape = scraper(hub) if scrape_every else None
    delivered = next_scrape = 0
    if dry:
        return 0
    for batch in reads:
        for conn_id, data in batch:
            receive(conn_id, data, 0.0)
            for event in events_received():
                if type(event) is ClientMessage:
                    send_to(event.session.id, event.payload, 0.0)
            for _conn_id, chunks, _close in flush(0.0):
                delivered += len(chunks)
            if scrape is not None and delivered >= next_scrape:
                scrape()  # type: ignore[operator]
                next_scrape = delivered + scrape_every
    return delivered


def broadcast(sessions: int, rounds: int, scrape_every: int, dry: bool) -> int:
    bench = Bench(sessions)
    hub = bench.hub
    scrape = scraper(hub) if scrape_every else None
    delivered = next_scrape = 0
    if dry:
        return 0
    for _ in range(rounds):
        hub.broadcast(PAYLOAD, 0.0)
        delivered += len(hub.flush(0.0))
        if scrape is not None and delivered >= next_scrape:
            scrape()  # type: ignore[operator]
            next_scrape = delivered + scrape_every
    return delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", choices=("echo", "broadcast"), required=True)
    parser.add_argument("--sessions", type=int, default=None,
                        help="default: 100 for echo, 1000 for broadcast")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--scrape-every", type=int, default=0)
    parser.add_argument("--dry", action="store_true", help="set-up only, no hub work")
    parser.add_argument("--imports", action="store_true",
                        help="import prometheus_client and sigma_ops first (nothing attached)")
    args = parser.parse_args()
    if args.imports:
        import prometheus_client  # noqa: F401

        import sigma_ops  # noqa: F401
    run = echo if args.workload == "echo" else broadcast
    sessions = args.sessions or (100 if args.workload == "echo" else 1000)
    print(args.workload, run(sessions, args.rounds, args.scrape_every, args.dry),
          "core:", Path(sys.modules["sigma_core.hub"].__file__ or "").parent.parent)


if __name__ == "__main__":
    main()
