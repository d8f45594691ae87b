"""Helpers for the sigma_ops and deploy tests: a raw HTTP GET, free ports, chat nodes run as
subprocesses (stopped by PID), and a metric read from a node's /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
from prometheus_client.parser import text_string_to_metric_families

LOCAL = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the chat demo (examples.chat) is imported from the checkout
    sys.path.insert(0, str(ROOT))


async def http(port: int, path: str, method: str = "GET",
               deadline: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection (the server closes it after the response)."""
    async with await anyio.connect_tcp(LOCAL, port) as stream:
        await stream.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        with anyio.move_on_after(deadline):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        port: int = s.getsockname()[1]
        return port


def metric(text: bytes, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name in (name, name + "_total") and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


class ChatNode:
    """``python -m examples.chat`` on a fixed port, output to a file."""

    def __init__(self, tmp: Path, name: str, port: int, *args: str) -> None:
        self.name = name
        self.port = port
        self.args = args
        self.log_path = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "examples.chat", "--host", LOCAL, "--port",
                 str(self.port), "--node-name", self.name, *self.args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    async def ready(self, deadline: float = 20.0) -> None:
        with anyio.fail_after(deadline):
            while True:
                assert self.proc is not None
                assert self.proc.poll() is None, self.log()
                try:
                    if (await http(self.port, "/readyz"))[0] == 200:
                        return
                except OSError:
                    pass
                await anyio.sleep(0.05)

    async def metric(self, name: str, **labels: str) -> float:
        return metric((await http(self.port, "/metrics"))[2], name, **labels)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def exited(self, deadline: float) -> int:
        assert self.proc is not None
        with anyio.fail_after(deadline):
            while (code := self.proc.poll()) is None:
                await anyio.sleep(0.05)
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_file(path: Path, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(path)
        time.sleep(0.02)
