"""Chaos with node kills: N nodes on one Redis, clients spread over them by a round-robin proxy,
a random node SIGKILLed every so often (and a fresh one started in its place) while every
client sends into one room, and every client checks what it got.

    .venv/bin/python bench/chaos.py --kill-nodes --backend both --duration 30 --seed 7

(``bench/chaos.py --kill-nodes`` runs this; ``python bench/cluster_chaos.py`` takes the same
flags.) Each node is ``bench/cluster_node.py`` (a real SigmaSocketServer of the backend on the
Redis engine, its app publishing every client message to the room "room"); the Redis server is
started in a temporary directory and stopped at the end.

Counted per receiving client, summed: messages expected (every client's), lost, the same
position delivered twice, positions not increasing, out of each sender's order, and
*republished*: a client message handed to the app by a node that was then killed before the
engine held its sequence number, sent again by the client and handed to the app on the new node
(client→server across a node crash is at least once; docs/cluster.md). Exit status 1 on any
loss, duplicate position, reordering, RecoveryFailed or SessionReset.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sigma_asyncio  # noqa: E402
import sigma_trio  # noqa: E402
from bench.cluster_support import Node, round_robin_proxy, running_redis, start_node  # noqa: E402
from sigma_core.api import Message  # noqa: E402

__all__ = ["ClusterChaosConfig", "ClusterChaosResult", "main", "run_cluster_chaos"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterChaosConfig:
    backend: str = "asyncio"
    seed: int = 7
    nodes: int = 3
    clients: int = 12
    duration: float = 20.0
    #: Mean seconds between two node kills.
    kill_interval: float = 4.0
    #: Messages per second per client.
    rate: float = 10.0
    settle: float = 30.0


@dataclass(slots=True)
class ClusterChaosResult:
    backend: str
    seed: int
    nodes: int
    clients: int
    duration: float
    kills: int = 0
    connections: int = 0
    sent: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    lost: int = 0
    same_position_twice: int = 0
    positions_not_increasing: int = 0
    out_of_order: int = 0
    republished: int = 0
    recovery_failed: int = 0
    session_reset: int = 0
    settled: bool = False
    wall_time: float = 0.0
    per_client: list[dict[str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.settled and self.lost == 0 and self.same_position_twice == 0
                and self.positions_not_increasing == 0 and self.out_of_order == 0
                and self.recovery_failed == 0 and self.session_reset == 0)


class _Receiver:
    def __init__(self, index: int, client: Any) -> None:
        self.index = index
        self.client = client
        self.sent = 0
        self.messages: list[Message] = []
        self.recovery_failed = 0
        self.session_reset = 0
        self.statuses: list[str] = []
        client.on("connection", lambda status: self.statuses.append(str(status.value)))
        client.on("recovery_failed", self._failed)
        client.on("session_reset", self._reset)

    def _failed(self, *_: object) -> None:
        self.recovery_failed += 1

    def _reset(self, *_: object) -> None:
        self.session_reset += 1

    async def collect(self) -> None:
        async for message in self.client:
            if message.topic == "room":
                self.messages.append(message)

    def send_next(self) -> None:
        if self.client.send(b"c%d-%d" % (self.index, self.sent)):
            self.sent += 1

    def traffic(self) -> list[bytes]:
        return [m.data for m in self.messages if not m.data.startswith(b"warm")]

    def count(self, expected: set[bytes]) -> dict[str, int]:
        positions = [(m.position.epoch, m.position.offset) for m in self.messages]
        counts = Counter(self.traffic())
        out_of_order = 0
        last: dict[bytes, int] = {}
        for data in dict.fromkeys(self.traffic()):
            sender, _, index = data.partition(b"-")
            if int(index) < last.get(sender, -1):
                out_of_order += 1
            last[sender] = int(index)
        missing = expected - set(counts)
        if missing:
            offsets = sorted(o for _, o in positions)
            holes = [(a, b) for a, b in itertools.pairwise(offsets) if b != a + 1]
            print(f"client {self.index} missing {sorted(missing)[:10]}; holes in its "
                  f"offsets {holes[:5]}; total {len(self.messages)}; statuses "
                  f"{self.statuses}", file=sys.stderr)
        return {
            "expected": len(expected),
            "delivered": sum(counts[d] for d in expected),
            "lost": len(expected - set(counts)),
            "same_position_twice": len(positions) - len(set(positions)),
            "positions_not_increasing": sum(
                1 for a, b in itertools.pairwise(positions)
                if a[0] == b[0] and b <= a),
            "out_of_order": out_of_order,
            "republished": sum(c - 1 for c in counts.values() if c > 1),
        }


def _client(backend: str, url: str) -> Any:
    package = sigma_asyncio if backend == "asyncio" else sigma_trio
    return package.SigmaSocketClient(url, reconnect_interval=0.02, max_reconnect_delay=0.2,
                                     max_reconnect_attempts=None)


async def run_cluster_chaos(config: ClusterChaosConfig) -> ClusterChaosResult:
    rng = random.Random(config.seed)
    result = ClusterChaosResult(backend=config.backend, seed=config.seed, nodes=config.nodes,
                                clients=config.clients, duration=config.duration)
    started = time.monotonic()
    with running_redis() as redis:
        nodes: list[Node] = []
        serial = 0

        def spawn() -> Node:
            nonlocal serial
            serial += 1
            return start_node(config.backend, redis.url, f"{config.backend}-n{serial}")

        try:
            for _ in range(config.nodes):
                nodes.append(await anyio.to_thread.run_sync(spawn))
            async with round_robin_proxy(nodes) as proxy, AsyncExitStack() as stack:
                receivers = []
                for index in range(config.clients):
                    client = _client(config.backend, proxy.url)
                    await stack.enter_async_context(client)
                    client.subscribe("room")
                    receivers.append(_Receiver(index, client))
                tg = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(tg.cancel_scope.cancel)
                for receiver in receivers:
                    tg.start_soon(receiver.collect)
                with anyio.fail_after(30):
                    k = 0
                    while not all(any(m.data.startswith(b"warm") for m in r.messages)
                                  for r in receivers):
                        receivers[0].client.send(b"warm-%d" % k)
                        k += 1
                        await anyio.sleep(0.05)
                # Traffic, with kills.
                end = anyio.current_time() + config.duration
                next_kill = anyio.current_time() + rng.expovariate(1 / config.kill_interval)
                tick = 1 / config.rate
                while anyio.current_time() < end:
                    for receiver in receivers:
                        receiver.send_next()
                    if anyio.current_time() >= next_kill:
                        victim = rng.choice([n for n in nodes if n.alive])
                        victim.kill()
                        result.kills += 1
                        replacement = await anyio.to_thread.run_sync(spawn)
                        nodes[nodes.index(victim)] = replacement
                        proxy.connections[replacement.node_id] = 0
                        next_kill = anyio.current_time() + rng.expovariate(
                            1 / config.kill_interval)
                    await anyio.sleep(tick)
                expected = {b"c%d-%d" % (r.index, j) for r in receivers for j in range(r.sent)}
                with anyio.move_on_after(config.settle):
                    while not all(expected <= set(r.traffic()) for r in receivers):
                        await anyio.sleep(0.1)
                result.settled = all(expected <= set(r.traffic()) for r in receivers)
                await anyio.sleep(0.5)  # late duplicates would show now
                result.sent = len(expected)
                for receiver in receivers:
                    counts = receiver.count(expected)
                    result.per_client.append(counts)
                    result.expected_deliveries += counts["expected"]
                    result.delivered += counts["delivered"]
                    for name in ("lost", "same_position_twice", "positions_not_increasing",
                                 "out_of_order", "republished"):
                        setattr(result, name, getattr(result, name) + counts[name])
                    result.recovery_failed += receiver.recovery_failed
                    result.session_reset += receiver.session_reset
                result.connections = sum(proxy.connections.values())
        finally:
            for node in nodes:
                node.stop()
    result.wall_time = time.monotonic() - started
    return result


def _report(result: ClusterChaosResult) -> str:
    return (f"{result.backend}: {result.nodes} nodes, {result.clients} clients, "
            f"{result.duration:.0f} s, seed {result.seed}: {result.kills} nodes SIGKILLed, "
            f"{result.connections} connections; {result.sent} messages sent, "
            f"{result.delivered} of {result.expected_deliveries} deliveries; lost "
            f"{result.lost}, same position twice {result.same_position_twice}, positions not "
            f"increasing {result.positions_not_increasing}, out of order {result.out_of_order},"
            f" RecoveryFailed {result.recovery_failed}, SessionReset {result.session_reset}; "
            f"republished after a crash (client->server at least once) {result.republished};"
            f" {'OK' if result.ok else 'FAILED'} ({result.wall_time:.1f} s)")


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-nodes", action="store_true", help="(accepted, for chaos.py)")
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--kill-interval", type=float, default=4.0)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    return args, backends


def main(argv: list[str] | None = None) -> int:
    args, backends = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    ok = True
    for backend in backends:
        config = ClusterChaosConfig(backend=backend, seed=seed, nodes=args.nodes,
                                    clients=args.clients, duration=args.duration,
                                    kill_interval=args.kill_interval, rate=args.rate,
                                    settle=args.settle)
        result = anyio.run(run_cluster_chaos, config, backend=backend)
        print(json.dumps(asdict(result)) if args.json else _report(result), flush=True)
        ok = ok and result.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
