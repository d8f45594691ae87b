"""Cross-node fan-out: publish on node A, 1,000 receivers on node B — against one node, and
against python-socketio with its Redis manager on the same Redis, in the same run.

    .venv/bin/python bench/cluster_bench.py [--receivers 1000] [--rate 20] [--seconds 5]
                                            [--burst 200] [--skip-socketio]

Every server is its own process (``bench/cluster_node.py`` for ours, asyncio adapter; a small
aiohttp + python-socketio server for the peer); one load generator process (this one, asyncio)
holds the publisher and the receivers. Redis is started in a temporary directory.

Per scenario:

* **paced**: the publisher sends ``--rate`` messages/s (64-byte payloads carrying the send
  time) for ``--seconds``; every receiver records the receipt time. Reported: deliveries,
  **server CPU per delivery** (user + system time of every server process of the scenario,
  from /proc, over the window, divided by deliveries), and latency publish → receipt
  (p50/p99, same clock, one process).
* **burst**: the publisher sends ``--burst`` messages back to back; deliveries/s from the
  first send until the last receiver has all of them (bounded by the load generator too: same
  generator for every scenario, so the ratio counts).
* ``--fixed-heads``: the cross-node scenario again with the heads check every second (the
  behaviour before ``ExternalEngineConfig.heads_interval_max``): before/after in one run.
* ``--before DIR``: the cross-node scenario again with both nodes run from another checkout of
  the project (``git archive <commit>`` unpacked in DIR, with its compiled ``sigma_core``
  modules), on the same Redis and load generator: a before/after of the engine in one run.
* **Redis cost per publish** (cross-node scenarios): ``INFO commandstats`` and
  ``total_net_input_bytes``/``total_net_output_bytes`` deltas over the paced window divided by
  publishes: commands and bytes Redis handled per published message.

Scenarios: ``single`` (publisher and receivers on one node, in-memory engine), ``cross`` (two
nodes on Redis, publisher on A, receivers on B), ``socketio`` (two python-socketio servers with
``AsyncRedisManager`` on the same Redis, publisher on A, receivers on B).

The machine is shared and loaded: read ratios within one run, not absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cluster_support import Node, RedisServer, free_port, start_node  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


@dataclass(slots=True)
class Outcome:
    scenario: str
    receivers: int
    publishes: int = 0
    deliveries: int = 0
    window: float = 0.0
    server_cpu: float = 0.0
    #: CPU seconds of each server process over the paced window (publishing node first).
    process_cpu: list[float] = field(default_factory=list)
    cpu_us_per_delivery: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    burst_deliveries_per_s: float = 0.0
    redis_commands_per_publish: float = 0.0
    redis_bytes_in_per_publish: float = 0.0
    redis_bytes_out_per_publish: float = 0.0
    redis_commands: dict[str, int] = field(default_factory=dict)


def redis_stats(redis: RedisServer) -> tuple[dict[str, int], int, int]:
    stats = redis.command("INFO", "commandstats")
    calls = {}
    for line in stats.splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line.split(":", 1)
            calls[name[8:]] = int(rest.split(",")[0].split("=")[1])
    info = redis.command("INFO", "stats")
    values = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return calls, int(values["total_net_input_bytes"]), int(values["total_net_output_bytes"])


# ----------------------------------------------------------------------------- SigmaSockets


async def sigma_scenario(name: str, publish_port: int, receive_port: int, pids: list[int],
                         args: argparse.Namespace, redis: RedisServer | None) -> Outcome:
    import sigma_asyncio

    outcome = Outcome(scenario=name, receivers=args.receivers)
    latencies: list[float] = []
    counts = [0]
    expected = [0]
    done = asyncio.Event()

    def on_message(data: bytes, message_id: int, timestamp_ms: int, topic: str) -> None:
        if topic != "room" or not data.startswith(b"t"):
            return
        latencies.append(time.perf_counter() - float(data[1:33]))
        counts[0] += 1
        if counts[0] >= expected[0]:
            done.set()

    receivers = []
    for _ in range(args.receivers):
        client = sigma_asyncio.SigmaSocketClient(f"ws://127.0.0.1:{receive_port}/",
                                                  max_queued_messages=0)
        client.on("message", on_message)
        await client.connect()
        client.subscribe("room")
        receivers.append(client)
    publisher = sigma_asyncio.SigmaSocketClient(f"ws://127.0.0.1:{publish_port}/",
                                                max_queued_messages=0)
    await publisher.connect()
    await asyncio.sleep(2.0)  # subscriptions in place on every node

    def payload() -> bytes:
        return b"t%032.6f" % time.perf_counter() + b"x" * 31

    # Warm-up: one message everyone must get.
    expected[0] = args.receivers
    publisher.send(payload())
    await asyncio.wait_for(done.wait(), 30)
    outcome = await _paced_and_burst(outcome, lambda: publisher.send(payload()), latencies,
                                     counts, expected, done, pids, args, redis)
    for client in [publisher, *receivers]:
        await client.disconnect()
    return outcome


async def _paced_and_burst(outcome: Outcome, send: Any, latencies: list[float],
                           counts: list[int], expected: list[int], done: asyncio.Event,
                           pids: list[int], args: argparse.Namespace,
                           redis: RedisServer | None) -> Outcome:
    latencies.clear()
    counts[0] = 0
    publishes = int(args.rate * args.seconds)
    expected[0] = publishes * args.receivers
    done.clear()
    before = redis_stats(redis) if redis is not None else None
    cpu0s = [cpu_seconds(pid) for pid in pids]
    cpu0 = sum(cpu0s)
    start = time.perf_counter()
    for i in range(publishes):
        send()
        target = start + (i + 1) / args.rate
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 60)
    window = time.perf_counter() - start
    cpu1s = [cpu_seconds(pid) for pid in pids]
    cpu1 = sum(cpu1s)
    outcome.process_cpu = [round(b - a, 3) for a, b in zip(cpu0s, cpu1s, strict=True)]
    if redis is not None and before is not None:
        after = redis_stats(redis)
        deltas = {k: after[0].get(k, 0) - before[0].get(k, 0) for k in after[0]}
        deltas = {k: v for k, v in deltas.items() if v > 0 and k not in ("info",)}
        outcome.redis_commands = deltas
        outcome.redis_commands_per_publish = sum(deltas.values()) / publishes
        outcome.redis_bytes_in_per_publish = (after[1] - before[1]) / publishes
        outcome.redis_bytes_out_per_publish = (after[2] - before[2]) / publishes
    outcome.publishes = publishes
    outcome.deliveries = counts[0]
    outcome.window = window
    outcome.server_cpu = cpu1 - cpu0
    outcome.cpu_us_per_delivery = (cpu1 - cpu0) / max(1, counts[0]) * 1e6
    ordered = sorted(latencies)
    if ordered:
        outcome.latency_p50_ms = statistics.median(ordered) * 1000
        outcome.latency_p99_ms = ordered[int(len(ordered) * 0.99) - 1] * 1000
    # Burst.
    counts[0] = 0
    expected[0] = args.burst * args.receivers
    done.clear()
    start = time.perf_counter()
    for _ in range(args.burst):
        send()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 120)
    outcome.burst_deliveries_per_s = counts[0] / (time.perf_counter() - start)
    return outcome


# ----------------------------------------------------------------------------- python-socketio

SOCKETIO_SERVER = textwrap.dedent('''
    import sys, socketio
    from aiohttp import web
    port, redis_url = int(sys.argv[1]), sys.argv[2]
    mgr = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=mgr,
                               cors_allowed_origins="*")
    app = web.Application()
    sio.attach(app)

    @sio.event
    async def connect(sid, environ):
        await sio.enter_room(sid, "room")

    @sio.on("pub")
    async def pub(sid, data):
        await sio.emit("msg", data, room="room")

    print("PORT", port, flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None)
''')


def start_socketio(redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SOCKETIO_SERVER, str(port), redis_url],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    process.stdout.readline()
    import socket
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, port


async def socketio_scenario(publish_port: int, receive_port: int, pids: list[int],
                            args: argparse.Namespace, redis: RedisServer) -> Outcome:
    import socketio  # type: ignore[import-not-found,unused-ignore]

    outcome = Outcome(scenario="python-socketio + AsyncRedisManager", receivers=args.receivers)
    latencies: list[float] = []
    counts = [0]
    expected = [0]
    done = asyncio.Event()

    def on_msg(data: str) -> None:
        latencies.append(time.perf_counter() - float(data[1:33]))
        counts[0] += 1
        if counts[0] >= expected[0]:
            done.set()

    receivers = []
    for _ in range(args.receivers):
        client = socketio.AsyncClient()
        client.on("msg", on_msg)
        await client.connect(f"http://127.0.0.1:{receive_port}", transports=["websocket"])
        receivers.append(client)
    publisher = socketio.AsyncClient()
    await publisher.connect(f"http://127.0.0.1:{publish_port}", transports=["websocket"])
    await asyncio.sleep(2.0)
    tasks: set[asyncio.Task[Any]] = set()

    def send() -> None:
        data = f"t{time.perf_counter():032.6f}" + "x" * 31
        task = asyncio.ensure_future(publisher.emit("pub", data))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    expected[0] = args.receivers
    send()
    await asyncio.wait_for(done.wait(), 30)
    outcome = await _paced_and_burst(outcome, send, latencies, counts, expected, done, pids,
                                     args, redis)
    for client in [publisher, *receivers]:
        await client.disconnect()
    return outcome


# ----------------------------------------------------------------------------- main


def table(outcomes: list[Outcome]) -> str:
    rows = ["| scenario | deliveries | server CPU µs/delivery | p50 ms | p99 ms"
            " | burst deliveries/s | Redis cmds/publish | Redis bytes in/out per publish"
            " | CPU s per process |",
            "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        redis = (f"{o.redis_commands_per_publish:.2f}" if o.redis_commands else "—")
        traffic = (f"{o.redis_bytes_in_per_publish:.0f} / {o.redis_bytes_out_per_publish:.0f}"
                   if o.redis_commands else "—")
        rows.append(f"| {o.scenario} | {o.deliveries} | {o.cpu_us_per_delivery:.2f} | "
                    f"{o.latency_p50_ms:.2f} | {o.latency_p99_ms:.2f} | "
                    f"{o.burst_deliveries_per_s:.0f} | {redis} | {traffic} | "
                    f"{' + '.join(f'{c:.2f}' for c in o.process_cpu)} |")
    return "\n".join(rows)


async def run(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp)).start()
        nodes: list[Node] = []
        try:
            single = start_node("asyncio", "none", "single")
            nodes.append(single)
            outcomes.append(await sigma_scenario("SigmaSockets, one node", single.port,
                                                 single.port, [single.process.pid], args, None))
            single.stop()
            a = start_node("asyncio", redis.url, "a")
            b = start_node("asyncio", redis.url, "b")
            nodes += [a, b]
            outcomes.append(await sigma_scenario(
                "SigmaSockets, publish on A, receivers on B (Redis)", a.port, b.port,
                [a.process.pid, b.process.pid], args, redis))
            a.stop()
            b.stop()
            if args.fixed_heads:
                # The same, with the heads check every second, never stretched (before the
                # adaptive interval): the before/after of one run.
                os.environ["SIGMA_NODE_HEADS_FIXED"] = "1"
                try:
                    a = start_node("asyncio", redis.url, "a2")
                    b = start_node("asyncio", redis.url, "b2")
                finally:
                    del os.environ["SIGMA_NODE_HEADS_FIXED"]
                nodes += [a, b]
                outcomes.append(await sigma_scenario(
                    "same, heads check every 1 s (before)", a.port, b.port,
                    [a.process.pid, b.process.pid], args, redis))
                a.stop()
                b.stop()
            if args.before:
                root = Path(args.before).resolve()
                a = start_node("asyncio", redis.url, "a3", root=root)
                b = start_node("asyncio", redis.url, "b3", root=root)
                nodes += [a, b]
                outcomes.append(await sigma_scenario(
                    f"same, nodes from {args.before_label or root.name} (before)", a.port,
                    b.port, [a.process.pid, b.process.pid], args, redis))
                a.stop()
                b.stop()
            if not args.skip_socketio:
                sa, pa = start_socketio(redis.url)
                sb, pb = start_socketio(redis.url)
                try:
                    outcomes.append(await socketio_scenario(pa, pb, [sa.pid, sb.pid], args,
                                                            redis))
                finally:
                    for p in (sa, sb):
                        p.terminate()
                        p.wait(timeout=10)
                        if p.stdout is not None:
                            p.stdout.close()
        finally:
            for node in nodes:
                node.stop()
            redis.stop()
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receivers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="publishes/s, paced")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--skip-socketio", action="store_true")
    parser.add_argument("--fixed-heads", action="store_true",
                        help="also run the cross-node scenario with the heads check every 1 s")
    parser.add_argument("--before", metavar="DIR",
                        help="also run the cross-node scenario with nodes from this checkout")
    parser.add_argument("--before-label", default="", help="its name in the table")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ["SIGMA_NODE_DEFAULTS"] = "1"  # the nodes run with the library's defaults
    outcomes = asyncio.run(run(args))
    print(table(outcomes))
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
