"""The shipped nginx config (deploy/nginx/nginx.conf), run for real by Debian's nginx in front of
two chat nodes: a client connects through nginx; its node drains (SIGTERM) and the client comes
back through nginx on the other node; that node is killed (SIGKILL) and the client comes back on
the first one, restarted. The config under test is the shipped file with only the upstream
addresses, the listen address and the process's file locations substituted.

Cross-node *resume* (the same session, nothing lost) needs the shared cluster engine of issue 15;
until it exists each node has its own memory, so the client is told its session was reset, and
this test expects exactly that. Once the engine lands, the same scenario asserts the resume.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from ops_support import LOCAL, ChatNode, free_port, http, wait_file

from sigma_asyncio import SigmaSocketClient
from sigma_core.client import ConnectionStatus
from sigma_core.messages import ClientInfo

NGINX = Path("/usr/sbin/nginx")
SHIPPED = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "nginx.conf"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def derive_config(prefix: Path, listen: int, upstreams: dict[str, int]) -> Path:
    """The shipped config, runnable without root: ports substituted, files under ``prefix``."""
    assert NGINX.exists(), "Debian's nginx is missing: bash deploy/test-setup.sh installs it"
    text = SHIPPED.read_text()
    for name, port in upstreams.items():
        text, n = re.subn(rf"server {name}:3000", f"server {LOCAL}:{port}", text)
        assert n == 1, name
    text, n = re.subn(r"listen 80;", f"listen {LOCAL}:{listen};", text)
    assert n == 1
    text, n = re.subn(r"worker_processes auto;", "worker_processes 1;", text)
    assert n == 1
    files = (f"daemon off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n")
    http_files = "".join(f"    {kind}_temp_path {prefix}/{kind}_temp;\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = files + text.replace("http {\n", "http {\n" + http_files
                                + f"    access_log {prefix}/access.log;\n", 1)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture
def nginx_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    prefix.chmod(0o755)
    tmp_path.chmod(0o755)
    return prefix


def test_shipped_config_passes_nginx_t(nginx_prefix: Path) -> None:
    conf = derive_config(nginx_prefix, free_port(), {"chat-1": free_port(),
                                                     "chat-2": free_port()})
    out = subprocess.run([str(NGINX), "-t", "-p", str(nginx_prefix), "-c", str(conf),
                          "-e", str(nginx_prefix / "error.log")],
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 0, out.stderr
    assert "syntax is ok" in out.stderr


@pytest.fixture
def nginx(nginx_prefix: Path, tmp_path: Path) -> Iterator[tuple[int, ChatNode, ChatNode]]:
    ports = {"chat-1": free_port(), "chat-2": free_port()}
    listen = free_port()
    conf = derive_config(nginx_prefix, listen, ports)
    nodes = [ChatNode(tmp_path, name, port, "--drain-window", "1", "--drain-timeout", "6")
             for name, port in ports.items()]
    proc = subprocess.Popen([str(NGINX), "-p", str(nginx_prefix), "-c", str(conf),
                             "-e", str(nginx_prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_file(nginx_prefix / "nginx.pid")
        yield listen, nodes[0], nodes[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for node in nodes:
            node.stop()


async def clients_on(node: ChatNode) -> float:
    return await node.metric("sigmasockets_clients_connected")


async def test_client_through_nginx_survives_a_drain_and_a_kill(
        nginx: tuple[int, ChatNode, ChatNode]) -> None:
    listen, one, two = nginx
    for node in (one, two):
        node.start()
    await one.ready()
    await two.ready()
    # Plain HTTP goes through too (the chat's page, its probes).
    assert (await http(listen, "/livez"))[0] == 200
    assert (await http(listen, "/metrics"))[0] == 404  # scraped per node, not through nginx

    client = SigmaSocketClient(
        f"ws://{LOCAL}:{listen}/ws", reconnect_interval=0.2, max_reconnect_delay=1.0,
        max_reconnect_attempts=None,
        client_info=ClientInfo(name="test", version="1", metadata={"user": "alice"}))
    resets: list[object] = []
    client.on("session_reset", resets.append)
    boots: list[str] = []  # the chat greets each new session with its node's boot id

    def on_message(data: bytes, message_id: int, timestamp: int, topic: str) -> None:
        message = json.loads(data)
        if message.get("t") == "hello":
            boots.append(message["boot"])

    client.on("message", on_message)
    with anyio.fail_after(60):
        async with client:
            first = one if await clients_on(one) == 1 else two
            other = two if first is one else one
            assert await clients_on(first) == 1
            assert await clients_on(other) == 0

            # Drain the client's node: SIGTERM, Goodbye, reconnect through nginx elsewhere.
            first.signal(signal.SIGTERM)
            assert await first.exited(15) == 0, first.log()
            while await clients_on(other) != 1:
                await anyio.sleep(0.05)
            while client.get_status() is not ConnectionStatus.CONNECTED:
                await anyio.sleep(0.05)
            assert "over 1 s" in first.log()
            assert len(resets) == 1  # a fresh session on the other node (no shared engine yet)

            # Bring the first back, kill the other outright: the client follows again.
            first.start()
            await first.ready()
            other.signal(signal.SIGKILL)
            await other.exited(10)
            while await clients_on(first) != 1:
                await anyio.sleep(0.05)
            while client.get_status() is not ConnectionStatus.CONNECTED:
                await anyio.sleep(0.05)
            assert len(resets) == 2
            # Data flows each time: greetings from three different node processes.
            while len(boots) < 3:
                await anyio.sleep(0.05)
            assert len(set(boots)) == 3
