"""SigmaSockets' Redis/Valkey cluster engine (an I/O package: the core stays sans-IO).

``RedisEngine(RedisEngineConfig(url="redis://host:6379/0"))`` is an
:class:`sigma_core.engine.EngineDriver` on coredis (anyio), so one implementation serves
``sigma_asyncio`` and ``sigma_trio``. The URL names one server, a Redis Cluster
(``redis+cluster://host:port,...``) or a Sentinel service (``redis+sentinel://host:port,.../
service``). See docs/cluster.md.
"""

from __future__ import annotations

from .engine import (
    DeploymentMismatch,
    EngineDataError,
    RedisEngine,
    RedisEngineConfig,
    parse_message,
)

__all__ = ["DeploymentMismatch", "EngineDataError", "RedisEngine", "RedisEngineConfig",
           "parse_message"]
