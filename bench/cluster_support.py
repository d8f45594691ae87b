"""Cluster fixtures shared by the end-to-end tests and the cluster benchmarks/chaos run: real
redis-server processes (each on a free 127.0.0.1 port in its own temporary directory, stopped by
PID), node processes on one Redis (bench/cluster_node.py), and a TCP proxy that sends each new
connection to the next live node (a load balancer without affinity)."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
from anyio.abc import SocketAttribute, SocketStream

__all__ = ["Node", "RedisClusterServers", "RedisServer", "RoundRobinProxy", "SentinelServer",
           "free_port", "redis_server_binary", "round_robin_proxy", "running_redis",
           "running_redis_cluster", "start_node"]

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


def start_node(backend: str, redis_url: str, node_id: str, deadline: float = 20.0, *,
               root: Path | None = None) -> Node:
    """Start a node and wait for its ``PORT`` line (blocking; call via a thread in async code
    or before the loop). ``root``: run the node from another checkout of the project (its
    ``bench/cluster_node.py`` and packages; a benchmark's "before")."""
    base = root or ROOT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(base), *filter(None, [os.environ.get("PYTHONPATH")])])}
    script = base / "bench" / "cluster_node.py"
    process = subprocess.Popen([sys.executable, str(script), backend, redis_url, node_id],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                               cwd=str(base))
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


def redis_server_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found is None:
        raise RuntimeError("redis-server is not installed: bash scripts/test.sh installs it "
                           "(apt-get install redis-server) when running as root")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process. ``persistence``: "none", "aof" (appendfsync always) or
    "rdb" (a snapshot only when SHUTDOWN saves)."""

    def __init__(self, directory: Path, *, port: int | None = None,
                 persistence: str = "none", replica_of: int | None = None,
                 extra_args: tuple[str, ...] = (), password: str | None = None) -> None:
        self.directory = directory
        #: requirepass (and masterauth, for a replica of a server with the same password).
        self.password = password
        self.port = port or free_port()
        self.persistence = persistence
        self.replica_of = replica_of
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _args(self) -> list[str]:
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--daemonize", "no",
                "--protected-mode", "no", "--loglevel", "warning",
                "--logfile", str(self.directory / "redis.log")]
        if self.persistence == "aof":
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.persistence == "rdb":
            args += ["--save", "3600 1", "--dbfilename", "dump.rdb"]
        if self.replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.password is not None:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        return args + list(self.extra_args)

    def start(self, deadline: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                log = (self.directory / "redis.log")
                raise RuntimeError(f"redis-server exited: "
                                   f"{log.read_text() if log.exists() else ''}")
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {deadline} s")

    def command(self, *args: str, timeout: float = 5.0) -> str:
        """One command through redis-cli (for set-up and inspection, not the hot path)."""
        cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        env = {**os.environ, "REDISCLI_AUTH": self.password} if self.password else None
        done = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(self.port), *args],
                              capture_output=True, timeout=timeout, check=False, env=env)
        if done.returncode != 0:
            raise OSError(done.stderr.decode(errors="replace"))
        out = done.stdout.decode(errors="replace").strip()
        if out.startswith("Could not connect"):
            raise OSError(out)
        return out

    def kill(self) -> None:
        """SIGKILL: nothing saved at exit."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def shutdown(self) -> None:
        """A clean SHUTDOWN (saves the RDB snapshot when persistence is "rdb")."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.command("SHUTDOWN", "SAVE" if self.persistence == "rdb" else "NOSAVE")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def running_redis(persistence: str = "none") -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="sigma-redis-") as tmp:
        server = RedisServer(Path(tmp), persistence=persistence).start()
        try:
            yield server
        finally:
            server.stop()


class RedisClusterServers:
    """A Redis Cluster of ``masters`` primaries (each with ``replicas`` replicas), each server
    on a free port in its own directory under ``directory``, made a cluster with
    ``redis-cli --cluster create`` (Redis >= 7.0: sharded pub/sub). ``url`` names two startup
    nodes."""

    def __init__(self, directory: Path, *, masters: int = 3, replicas: int = 0,
                 node_timeout_ms: int = 1000) -> None:
        self.servers: list[RedisServer] = []
        for i in range(masters * (1 + replicas)):
            path = directory / f"node{i}"
            path.mkdir()
            # The cluster bus on a free port of its own (by default it is port + 10000,
            # which may be taken or beyond 65535).
            self.servers.append(RedisServer(path, extra_args=(
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", str(node_timeout_ms),
                # Replicas sync at once (not after the default 5 s delay): a replica that
                # never synced would not take its primary over.
                "--repl-diskless-sync-delay", "0")))
        self.masters = masters
        self.replicas = replicas

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers[:2])

    def start(self, deadline: float = 20.0) -> RedisClusterServers:
        for server in self.servers:
            server.start()
        cli = shutil.which("redis-cli") or shutil.which("valkey-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed")
        done = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in self.servers),
             "--cluster-replicas", str(self.replicas), "--cluster-yes"],
            capture_output=True, timeout=deadline, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout!r:.500}")
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if all(self._ok(server) for server in self.servers):
                return self
            time.sleep(0.1)
        states = []
        for server in self.servers:
            try:
                states.append(f"{server.port}: " + server.command("CLUSTER", "INFO")
                              .split("cluster_known_nodes")[0].replace("\r\n", " "))
            except OSError as exc:
                states.append(f"{server.port}: {exc}")
        raise RuntimeError(f"the Redis Cluster did not become ok within {deadline} s: "
                           + "; ".join(states))

    def _ok(self, server: RedisServer) -> bool:
        try:
            info = server.command("CLUSTER", "INFO")
        except OSError:
            return False
        if "cluster_state:ok" not in info:
            return False
        replication = server.command("INFO", "replication")
        if "role:slave" in replication and "master_link_status:up" not in replication:
            return False
        known = int(info.split("cluster_known_nodes:")[1].split()[0])
        return known == len(self.servers)

    def primary_for_slot(self, slot: int) -> RedisServer:
        """The server that serves ``slot`` now (asked of the cluster)."""
        for server in self.servers:
            if server.process is None or server.process.poll() is not None:
                continue
            for line in server.command("CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for part in fields[8:]:
                    low, _, high = part.partition("-")
                    if part[0].isdigit() and int(low) <= slot <= int(high or low):
                        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                        return next(s for s in self.servers if s.port == port)
            break
        raise LookupError(f"no primary serves slot {slot}")

    def replica_of(self, primary: RedisServer) -> RedisServer:
        node_id = primary.command("CLUSTER", "MYID")
        for line in primary.command("CLUSTER", "NODES").splitlines():
            fields = line.split()
            if fields[3] == node_id:
                port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                return next(s for s in self.servers if s.port == port)
        raise LookupError(f"127.0.0.1:{primary.port} has no replica")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def running_redis_cluster(masters: int = 3, replicas: int = 0
                          ) -> Iterator[RedisClusterServers]:
    """A started cluster, stopped at the end. A start that fails (a free port taken by
    another process meanwhile, a loaded machine) is tried once more on new ports."""
    with contextlib.ExitStack() as stack:
        for attempt in (1, 2):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sigma-redis-cluster-"))
            cluster = RedisClusterServers(Path(tmp), masters=masters, replicas=replicas)
            stack.callback(cluster.stop)
            try:
                cluster.start()
                break
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                cluster.stop()
                if attempt == 2:
                    raise
        yield cluster


class SentinelServer(RedisServer):
    """One Sentinel (``redis-server sentinel.conf --sentinel``: no redis-sentinel package
    needed) watching the primary on ``primary_port`` as ``service`` with quorum 1, declaring it
    down after ``down_after_ms``."""

    def __init__(self, directory: Path, *, primary_port: int, service: str = "sigma",
                 down_after_ms: int = 400, failover_timeout_ms: int = 3000,
                 replica_ports: tuple[int, ...] = (), auth_pass: str | None = None) -> None:
        super().__init__(directory)
        self.service = service
        conf = directory / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\n"
            f"logfile {directory / 'sentinel.log'}\ndir {directory}\n"
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 1\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} {failover_timeout_ms}\n"
            f"sentinel parallel-syncs {service} 1\n"
            # Known replicas (as Sentinel writes them itself): it need not wait for the
            # primary's INFO (every 10 s) to learn them.
            + "".join(f"sentinel known-replica {service} 127.0.0.1 {port}\n"
                      for port in replica_ports)
            # The servers' password (the sentinel itself asks none).
            + (f"sentinel auth-pass {service} {auth_pass}\n" if auth_pass else ""))
        self.conf = conf

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}"

    def _args(self) -> list[str]:
        return [redis_server_binary(), str(self.conf), "--sentinel"]

    def primary(self) -> int:
        """The port of the primary this sentinel names now."""
        return int(self.command("SENTINEL", "get-master-addr-by-name",
                                self.service).split()[1])
