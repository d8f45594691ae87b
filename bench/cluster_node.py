"""One cluster node for the end-to-end tests and bench/chaos.py: a SigmaSocketServer (asyncio or
trio) on the Redis engine whose app publishes every client message to the room "room" (so a
client's message reaches every client on every node), or to the topic it was sent with.
Prints ``PORT <n>`` once Redis answers.

Usage: python bench/cluster_node.py asyncio|trio REDIS_URL NODE_ID [PORT]
(REDIS_URL "none": a single node on the in-memory engine, for comparisons.)
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sigma_core.backplane import HistoryLimits
from sigma_core.engine import ExternalEngineConfig
from sigma_redis import RedisEngine, RedisEngineConfig

ROOM = "room"


class _Memory:
    """Stands in for the engine on a single node (REDIS_URL "none"): always ready."""

    def is_ready(self) -> bool:
        return True


def options(redis_url: str, node_id: str, port: int) -> dict[str, Any]:
    limits = HistoryLimits(max_count=10_000, max_bytes=16 << 20, max_age=600)
    common: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "session_timeout": 60.0, "history": limits,
        "shutdown_timeout": 1.0, "shutdown_reconnect_after": 0.05, "max_connections": 20_000,
        # Every client of the tests and benchmarks comes from 127.0.0.1: the per-address
        # session limits (1,000 held, 20 new/s after a burst) would refuse the crowd that
        # resumes on a node after its own node died.
        "max_sessions_per_peer": 0, "new_sessions_per_peer_per_second": 0.0,
    }
    if redis_url == "none":
        return {**common, "engine": None, "ready": _Memory()}
    # SIGMA_NODE_DEFAULTS=1 (the benchmarks): the library's default intervals; otherwise
    # quicker ones, so that tests and chaos runs notice losses and crashes sooner.
    defaults = os.environ.get("SIGMA_NODE_DEFAULTS") == "1"
    engine = RedisEngine(RedisEngineConfig(url=redis_url, history=limits,
                                           health_interval=0.5 if defaults else 0.1))
    # SIGMA_NODE_HEADS_FIXED=1: the heads check every heads_interval, never stretched (the
    # behaviour before the adaptive interval; bench/cluster_bench.py's "before" scenario).
    fixed = os.environ.get("SIGMA_NODE_HEADS_FIXED") == "1"
    external = ExternalEngineConfig(node_id=node_id, **({"heads_interval_max": 1.0}
                                                        if fixed else {})) \
        if defaults else ExternalEngineConfig(node_id=node_id, heads_interval=0.5,
                                              heads_interval_max=2.0, presence_ttl=5.0)
    return {**common, "engine": engine, "ready": engine, "engine_config": external}


def _announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


async def run_asyncio(redis_url: str, node_id: str, port: int) -> None:
    import asyncio

    import sigma_asyncio

    opts = options(redis_url, node_id, port)
    ready = opts.pop("ready")
    server = sigma_asyncio.SigmaSocketServer(**opts)
    server.on("message", lambda client, data, topic: server.publish(topic or ROOM, data))
    await server.start()
    while not ready.is_ready():
        await asyncio.sleep(0.02)
    _announce(server.port)
    await asyncio.Event().wait()


async def run_trio(redis_url: str, node_id: str, port: int) -> None:
    import trio

    import sigma_trio

    opts = options(redis_url, node_id, port)
    ready = opts.pop("ready")
    server = sigma_trio.SigmaSocketServer(**opts)
    server.on("message", lambda client, data, topic: server.publish(topic or ROOM, data))
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(server.serve)
        while not ready.is_ready():
            await trio.sleep(0.02)
        _announce(bound)


def main() -> None:
    backend, redis_url, node_id = sys.argv[1:4]
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if backend == "asyncio":
        import asyncio
        asyncio.run(run_asyncio(redis_url, node_id, port))
    else:
        import trio
        trio.run(run_trio, redis_url, node_id, port)


if __name__ == "__main__":
    main()
