"""Resume time of N clients after their node dies (issue 15, item 7).

    .venv/bin/python bench/cluster_resume_bench.py [--clients 1000] [--runs 3]
                                                   [--reconnect-interval 1.0] [--json FILE]

Per run: a fresh Redis (temporary directory, free port), two nodes on it (``bench/cluster_node.py``,
asyncio adapter, the library's default engine intervals), and in this process a TCP proxy (the
load balancer) plus ``--clients`` SigmaSocket clients (asyncio) subscribed to ``room``. The proxy
sends every connection to node A while A lives, then to node B. A publisher on node B sends a
numbered message every ``--publish-interval`` (0.5 s: 2,000 deliveries/s to 1,000 clients, so
the one load-generator process is not the bottleneck) throughout. Node A is SIGKILLed; from that
instant (t0) every client notices the dead socket, waits its reconnect delay (full jitter:
uniform below ``--reconnect-interval``, the ``ClientOptions`` default 1 s) and resumes its
session on B.

Reported per run, over the clients: **time to resume** (t0 → the client's ``connection``
status ``connected`` with its session resumed: p50 / p99 / max), the same **after the client's
own reconnect delay** (the attempt's start → resumed: the server side of a resume under a
crowd of them — Hello, session read from Redis, replay of what was missed), how many sessions
were resumed / renewed, and that every client received every published message exactly once.
The summary is the median of the runs for each figure.

The machine is shared and loaded (2 cores, other jobs): read the figures with the load average
printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cluster_bench import cpu_seconds  # noqa: E402
from bench.cluster_support import RedisServer, round_robin_proxy, start_node  # noqa: E402


@dataclass(slots=True)
class Run:
    clients: int
    resumed: int = 0
    renewed: int = 0
    not_back: int = 0
    resume_p50_ms: float = 0.0
    resume_p99_ms: float = 0.0
    resume_max_ms: float = 0.0
    after_delay_p50_ms: float = 0.0
    after_delay_p99_ms: float = 0.0
    after_delay_max_ms: float = 0.0
    published: int = 0
    lost: int = 0
    duplicated: int = 0
    #: CPU seconds over the resume window (kill → every client back): node B, Redis, and this
    #: load generator (1,000 clients and the proxy), to see which one was saturated.
    node_cpu_s: float = 0.0
    redis_cpu_s: float = 0.0
    generator_cpu_s: float = 0.0
    window_s: float = 0.0
    load_average: list[float] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


async def one_run(args: argparse.Namespace, directory: Path) -> Run:
    import sigma_asyncio

    os.environ["SIGMA_NODE_DEFAULTS"] = "1"
    result = Run(clients=args.clients)
    redis = RedisServer(directory).start()
    a = await asyncio.to_thread(start_node, "asyncio", redis.url, "a")
    b = await asyncio.to_thread(start_node, "asyncio", redis.url, "b")
    try:
        async with round_robin_proxy([a, b]) as proxy:
            proxy.nodes = [a]  # everyone on A while it lives
            received: list[dict[int, int]] = [{} for _ in range(args.clients)]
            killed_at = [0.0]
            attempt_at = [0.0] * args.clients
            resumed_at: list[float | None] = [None] * args.clients
            renewed = [False] * args.clients
            clients = []

            def make(i: int) -> Any:
                client = sigma_asyncio.SigmaSocketClient(
                    proxy.url, reconnect_interval=args.reconnect_interval,
                    max_reconnect_attempts=None)

                def on_message(data: bytes, _id: int, _ts: int, topic: str) -> None:
                    if topic == "room" and data.startswith(b"n"):
                        seq = int(data[1:])
                        received[i][seq] = received[i].get(seq, 0) + 1

                def on_reconnecting(info: Any) -> None:
                    attempt_at[i] = time.perf_counter() + info.next_retry_in

                def on_status(status: Any) -> None:
                    if killed_at[0] and status.value == "connected" and resumed_at[i] is None:
                        resumed_at[i] = time.perf_counter()
                        session = client.get_session()
                        renewed[i] = session is None or not session.resumed

                client.on("message", on_message)
                client.on("reconnecting", on_reconnecting)
                client.on("connection", on_status)
                return client

            for i in range(args.clients):
                client = make(i)
                await client.connect()
                client.subscribe("room")
                clients.append(client)
            publisher = sigma_asyncio.SigmaSocketClient(f"ws://127.0.0.1:{b.port}/")
            await publisher.connect()
            await asyncio.sleep(2.0)  # subscriptions in place on both nodes
            published = [0]
            stop = asyncio.Event()

            async def publish() -> None:
                while not stop.is_set():
                    published[0] += 1
                    publisher.send(b"n%d" % published[0])
                    await asyncio.sleep(args.publish_interval)

            task = asyncio.create_task(publish())
            await asyncio.sleep(1.0)
            result.load_average = list(os.getloadavg())
            proxy.nodes = [a, b]
            assert redis.process is not None
            cpu0 = (cpu_seconds(b.process.pid), cpu_seconds(redis.process.pid),
                    time.process_time())
            killed_at[0] = time.perf_counter()
            a.kill()
            deadline = time.perf_counter() + args.deadline
            while any(t is None for t in resumed_at) and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
            result.window_s = time.perf_counter() - killed_at[0]
            result.node_cpu_s = cpu_seconds(b.process.pid) - cpu0[0]
            result.redis_cpu_s = cpu_seconds(redis.process.pid) - cpu0[1]
            result.generator_cpu_s = time.process_time() - cpu0[2]
            await asyncio.sleep(1.0)
            stop.set()
            await task
            # Every client must have every message once: wait for the last ones.
            last = published[0]
            end = time.perf_counter() + 30
            while time.perf_counter() < end and not all(last in r for r in received):
                await asyncio.sleep(0.1)
            resumes = [t - killed_at[0] for t in resumed_at if t is not None]
            after = [t - attempt_at[i] for i, t in enumerate(resumed_at) if t is not None]
            result.resumed = sum(1 for i, t in enumerate(resumed_at)
                                 if t is not None and not renewed[i])
            result.renewed = sum(renewed)
            result.not_back = sum(1 for t in resumed_at if t is None)
            result.resume_p50_ms = statistics.median(resumes) * 1000 if resumes else 0.0
            result.resume_p99_ms = _pct(resumes, 0.99)
            result.resume_max_ms = max(resumes) * 1000 if resumes else 0.0
            result.after_delay_p50_ms = statistics.median(after) * 1000 if after else 0.0
            result.after_delay_p99_ms = _pct(after, 0.99)
            result.after_delay_max_ms = max(after) * 1000 if after else 0.0
            result.published = last
            # Messages published before the clients subscribed are not theirs to get: count
            # from the first each one received.
            for counts in received:
                first = min(counts) if counts else last + 1
                result.lost += sum(1 for s in range(first, last + 1) if s not in counts)
                result.duplicated += sum(c - 1 for c in counts.values() if c > 1)
            for client in [publisher, *clients]:
                await client.disconnect()
    finally:
        for node in (a, b):
            node.stop()
        redis.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reconnect-interval", type=float, default=1.0)
    parser.add_argument("--publish-interval", type=float, default=0.5)
    parser.add_argument("--deadline", type=float, default=60.0,
                        help="seconds to wait for every client to be back")
    parser.add_argument("--json", type=Path, help="write the runs and the summary here")
    args = parser.parse_args()
    import tempfile

    # One "connection lost ... will reconnect" warning per client is expected here.
    logging.getLogger("sigma_asyncio.client").setLevel(logging.ERROR)

    runs = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            run = asyncio.run(one_run(args, Path(tmp)))
        runs.append(run)
        print(f"run {n + 1}: " + json.dumps(asdict(run)), flush=True)
    keys = [k for k in asdict(runs[0]) if k not in ("clients", "load_average")]
    summary = {k: statistics.median(asdict(r)[k] for r in runs) for k in keys}
    print("median of runs: " + json.dumps(summary))
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": [asdict(r) for r in runs],
                                         "median": summary}, indent=2))


if __name__ == "__main__":
    main()
