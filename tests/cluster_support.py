"""Cluster fixtures shared by the end-to-end tests and bench/chaos.py: node processes on one
Redis (tests/cluster_node.py) and a TCP proxy that sends each new connection to the next live
node (a load balancer without affinity)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketStream

__all__ = ["Node", "RoundRobinProxy", "round_robin_proxy", "start_node"]

NODE_SCRIPT = Path(__file__).resolve().with_name("cluster_node.py")
ROOT = NODE_SCRIPT.parent.parent


class Node:
    """A node process; ``kill()`` is SIGKILL (no goodbye, no save)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, node_id: str) -> None:
        self.process = process
        self.port = port
        self.node_id = node_id

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_node(backend: str, redis_url: str, node_id: str, deadline: float = 20.0) -> Node:
    """Start a node and wait for its ``PORT`` line (blocking; call via a thread in async code
    or before the loop)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen([sys.executable, str(NODE_SCRIPT), backend, redis_url, node_id],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    import selectors
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=deadline):
            process.kill()
            raise RuntimeError(f"node {node_id} did not start within {deadline} s")
    line = process.stdout.readline().decode()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"node {node_id} failed to start: {line!r}")
    return Node(process, int(line.split()[1]), node_id)


class RoundRobinProxy:
    """Each accepted connection goes to the next node that accepts it (nodes that are down are
    skipped). ``connections[node_id]`` counts where connections went."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.port = 0
        self.connections: dict[str, int] = {n.node_id: 0 for n in nodes}
        self._next = itertools.count()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    async def _handle(self, downstream: SocketStream) -> None:
        async with downstream:
            upstream = None
            for _ in range(len(self.nodes)):
                node = self.nodes[next(self._next) % len(self.nodes)]
                if not node.alive:
                    continue
                try:
                    upstream = await anyio.connect_tcp("127.0.0.1", node.port)
                except OSError:
                    continue
                self.connections[node.node_id] += 1
                break
            if upstream is None:
                return
            async with upstream, anyio.create_task_group() as tg:
                async def pump(src: SocketStream, dst: SocketStream) -> None:
                    with suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                                  anyio.ClosedResourceError, OSError):
                        async for chunk in src:
                            await dst.send(chunk)
                    tg.cancel_scope.cancel()
                tg.start_soon(pump, downstream, upstream)
                tg.start_soon(pump, upstream, downstream)


@asynccontextmanager
async def round_robin_proxy(nodes: list[Node]) -> AsyncIterator[RoundRobinProxy]:
    proxy = RoundRobinProxy(nodes)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener, \
            anyio.create_task_group() as tg:
        proxy.port = listener.extra(SocketAttribute.local_port)
        tg.start_soon(listener.serve, proxy._handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()
