"""Real Redis servers for the tests (the helpers live in bench/cluster_support.py, shared with
the cluster benchmarks): each on a free 127.0.0.1 port in its own temporary directory, started
from ``redis-server`` (Debian's, installed by scripts/test.sh) and stopped by PID."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cluster_support import (  # noqa: E402
    RedisClusterServers,
    RedisServer,
    SentinelServer,
    free_port,
    redis_server_binary,
    running_redis,
    running_redis_cluster,
)

__all__ = ["RedisClusterServers", "RedisServer", "SentinelServer", "free_port",
           "redis_server_binary", "running_redis", "running_redis_cluster"]
