"""``/readyz`` follows the cluster engine: a chat node run with ``--redis-url`` answers 503
("cluster engine unreachable") while its Redis is down and 200 again once Redis is back, while
``/livez`` stays 200 throughout (the process still serves)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from ops_support import ChatNode, free_port, http
from redis_support import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def wait_readyz(port: int, status: int, deadline: float = 15.0) -> bytes:
    with anyio.fail_after(deadline):
        while True:
            code, _, body = await http(port, "/readyz")
            if code == status:
                return body
            await anyio.sleep(0.05)


async def test_readyz_is_503_while_the_cluster_engine_is_unreachable(tmp_path: Path) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir).start()
    node = ChatNode(tmp_path, "chat-1", free_port(), "--redis-url", redis.url)
    try:
        node.start()
        await node.ready()
        assert (await http(node.port, "/readyz"))[2] == b"ready\n"

        redis.kill()
        body = await wait_readyz(node.port, 503)
        assert body == b"cluster engine unreachable\n"
        assert (await http(node.port, "/livez"))[0] == 200  # alive, just not ready

        # The same Redis comes back on its port: the node is ready again by itself.
        redis = RedisServer(redis_dir, port=redis.port).start()
        assert await wait_readyz(node.port, 200) == b"ready\n"
        assert "cluster engine unavailable" in node.log()
    finally:
        node.stop()
        redis.stop()


async def test_readyz_is_503_with_the_reason_logged_when_the_url_names_another_deployment(
        tmp_path: Path) -> None:
    # A Redis Cluster URL given for a single server: the node serves (livez) but is never
    # ready, and its log says what to use instead (docs/cluster.md, "Redis URLs").
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir).start()
    node = ChatNode(tmp_path, "chat-1", free_port(), "--redis-url",
                    f"redis+cluster://127.0.0.1:{redis.port}")
    try:
        node.start()
        with anyio.fail_after(20):
            while True:  # until the node listens
                try:
                    code, _, body = await http(node.port, "/readyz")
                    break
                except OSError:
                    await anyio.sleep(0.05)
        assert (code, body) == (503, b"cluster engine unreachable\n")
        assert (await http(node.port, "/livez"))[0] == 200
        with anyio.fail_after(10):
            while "DeploymentMismatch" not in node.log():
                await anyio.sleep(0.05)
        assert (f"127.0.0.1:{redis.port} is a single server (cluster support disabled): "
                f"use redis://127.0.0.1:{redis.port}") in node.log()
    finally:
        node.stop()
        redis.stop()
