"""The shipped nginx config (deploy/nginx/nginx.conf), run for real by Debian's nginx in front of
two chat nodes that share one real redis-server (the cluster engine, ``--redis-url``): a client
connects through nginx; its node drains (SIGTERM, goodbyes spread) and the client resumes its
*same* session through nginx on the other node; that node is killed (SIGKILL) and the client
resumes again on the first one, restarted. Meanwhile a third node (not behind nginx, same Redis)
publishes chat messages into the room the client is in: the client gets every one, once, in
order. The config under test is the shipped file with only the upstream addresses, the listen
address and the process's file locations substituted.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from ops_support import LOCAL, ChatNode, free_port, http, wait_file
from redis_support import RedisServer

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
def nginx(nginx_prefix: Path, tmp_path: Path) -> Iterator[tuple[int, ChatNode, ChatNode,
                                                                ChatNode]]:
    """nginx on a free port in front of chat-1 and chat-2, plus chat-3 reached directly; the
    three share one Redis."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = RedisServer(redis_dir).start()
    ports = {"chat-1": free_port(), "chat-2": free_port()}
    listen = free_port()
    conf = derive_config(nginx_prefix, listen, ports)
    nodes = [ChatNode(tmp_path, name, port, "--drain-window", "1", "--drain-timeout", "6",
                      "--redis-url", redis.url)
             for name, port in [*ports.items(), ("chat-3", free_port())]]
    proc = subprocess.Popen([str(NGINX), "-p", str(nginx_prefix), "-c", str(conf),
                             "-e", str(nginx_prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_file(nginx_prefix / "nginx.pid")
        yield listen, nodes[0], nodes[1], nodes[2]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for node in nodes:
            node.stop()
        redis.stop()


async def clients_on(node: ChatNode) -> float:
    return await node.metric("sigmasockets_clients_connected")


def events(into: list[dict[str, object]]) -> Callable[[bytes, int, int, str], None]:
    """A message listener keeping the JSON events of the room's timeline."""

    def on_message(data: bytes, message_id: int, timestamp: int, topic: str) -> None:
        if topic == ROOM:
            into.append(json.loads(data))

    return on_message


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await anyio.sleep(0.05)


ROOM = "room:general"


async def test_client_through_nginx_resumes_its_session_across_a_drain_and_a_kill(
        nginx: tuple[int, ChatNode, ChatNode, ChatNode]) -> None:
    listen, one, two, three = nginx
    for node in (one, two, three):
        node.start()
    for node in (one, two, three):
        await node.ready()
    # Plain HTTP goes through too (the chat's page, its probes).
    assert (await http(listen, "/livez"))[0] == 200
    assert (await http(listen, "/metrics"))[0] == 404  # scraped per node, not through nginx

    client = SigmaSocketClient(
        f"ws://{LOCAL}:{listen}/ws", reconnect_interval=0.2, max_reconnect_delay=1.0,
        max_reconnect_attempts=None, max_queued_messages=0,
        client_info=ClientInfo(name="test", version="1", metadata={"user": "alice"}))
    publisher = SigmaSocketClient(
        f"ws://{LOCAL}:{three.port}/ws", reconnect_interval=0.2, max_reconnect_delay=1.0,
        max_reconnect_attempts=None, max_queued_messages=0,
        client_info=ClientInfo(name="test", version="1", metadata={"user": "bob"}))
    resets: list[object] = []
    client.on("session_reset", resets.append)
    failed: list[object] = []
    client.on("recovery_failed", lambda *args: failed.append(args))
    seen: list[dict[str, object]] = []
    client.on("message", events(seen))
    mine: list[dict[str, object]] = []
    publisher.on("message", events(mine))
    sent: list[str] = []

    def say() -> None:
        message_id = f"m{len(sent):07d}"
        sent.append(message_id)
        publisher.send(json.dumps({"t": "msg", "room": "general", "id": message_id,
                                   "text": message_id}).encode())

    with anyio.fail_after(90):
        async with client, publisher, anyio.create_task_group() as tg:
            client.subscribe(ROOM)
            session = client.get_session()
            assert session is not None
            await until(lambda: any(e.get("sid") == session.id for e in seen))
            publisher.subscribe(ROOM)
            # Bob joins on chat-3: the notice reaches Alice through Redis (the room spans nodes).
            await until(lambda: any(e.get("t") == "presence" and e.get("user") == "bob"
                                    for e in seen))
            first = one if await clients_on(one) == 1 else two
            other = two if first is one else one
            assert await clients_on(first) == 1
            assert await clients_on(other) == 0

            publishing = True

            async def keep_saying() -> None:
                while publishing:
                    say()
                    await anyio.sleep(0.05)

            tg.start_soon(keep_saying)
            await anyio.sleep(0.3)

            # Drain the client's node: SIGTERM, Goodbye, resume through nginx elsewhere.
            first.signal(signal.SIGTERM)
            assert await first.exited(15) == 0, first.log()
            await until(lambda: client.get_status() is ConnectionStatus.CONNECTED)
            while await clients_on(other) != 1:
                await anyio.sleep(0.05)
            assert "over 1 s" in first.log()
            await anyio.sleep(0.3)

            # Bring the first back, kill the other outright: the client follows again.
            first.start()
            await first.ready()
            other.signal(signal.SIGKILL)
            await other.exited(10)
            while await clients_on(first) != 1:
                await anyio.sleep(0.05)
            await until(lambda: client.get_status() is ConnectionStatus.CONNECTED)
            await anyio.sleep(0.3)
            publishing = False
            say()  # after everything
            await until(lambda: sum(e.get("t") == "msg" for e in seen) >= len(sent))
            await anyio.sleep(0.3)  # (a duplicate would show up now)
            after = client.get_session()
            assert after is not None
            assert after.id == session.id  # the same session all along, on 3 node processes
            tg.cancel_scope.cancel()
    assert resets == []
    assert failed == []
    got = [e["id"] for e in seen if e.get("t") == "msg"]
    assert got == sent  # every message once, in order, across the drain and the kill
    assert len(sent) > 20
