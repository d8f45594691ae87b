"""Real Redis servers for the tests: each on a free 127.0.0.1 port in its own temporary
directory, started from ``redis-server`` (Debian's, installed by scripts/test.sh) and stopped by
PID. A primary and a replica, persistence on or off, pause (SIGSTOP) and kill (SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RedisServer", "free_port", "redis_server_binary", "running_redis"]


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
                 persistence: str = "none", replica_of: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.persistence = persistence
        self.replica_of = replica_of
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
        return args

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
        done = subprocess.run([cli, "-h", "127.0.0.1", "-p", str(self.port), *args],
                              capture_output=True, timeout=timeout, check=False)
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
