"""sigma_ops over real sockets, on both adapters: /metrics, /livez, /readyz, the dashboard's
page and data stream, bad requests, and the separate ops port.

Every wait is bounded by ``anyio.fail_after(DEADLINE)``.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from adapters_support import BACKENDS, DEADLINE, LOCAL, Host, make_client, make_server, url
from ops_support import http
from prometheus_client.parser import text_string_to_metric_families

from sigma_core.api import HttpRequest, HttpResponse, ServerOptions
from sigma_core.errors import ConnectionFailed
from sigma_core.messages import ClientInfo
from sigma_core.metrics import HistogramSnapshot
from sigma_core.serializers import MsgpackSerializer
from sigma_ops import (
    DASHBOARD_CLIENT_NAME,
    ENGINE_METRIC_NAMES,
    METRIC_NAMES,
    STATS_TOPIC,
    EngineMetrics,
    Ops,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def app_handler(request: HttpRequest) -> HttpResponse:
    if request.path == "/app":
        return HttpResponse(status=200, body=b"the app's own page")
    return HttpResponse(status=404, body=b"app: not found")


def ops_server(backend: str, ops: Ops, **options: Any) -> Any:
    server = make_server(backend, **{"http_handler": app_handler, **options})
    server = type(server)(ops.server_options(server.options))  # type: ignore[arg-type]
    ops.attach(server)
    return server


def families(text: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def value(fams: dict[str, Any], name: str, **labels: str) -> float:
    for sample in fams[name].samples:
        if sample.name in (name, name + "_total") and sample.labels == labels:
            return float(sample.value)
    raise AssertionError(f"no sample {name} {labels}")


async def test_metrics_probes_and_routes(anyio_backend: str) -> None:
    ops = Ops(node="n1")
    server = ops_server(anyio_backend, ops)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            host = Host(server, tg)
            await host.start()
            try:
                async with make_client(anyio_backend, url(server)) as client:
                    client.send(b"hello")
                    while server.get_stats().messages_received < 1:
                        await anyio.sleep(0.01)
                    status, headers, body = await http(server.port, "/metrics")
                    assert status == 200
                    assert headers["content-type"].startswith("text/plain; version=")
                    fams = families(body)
                    assert set(METRIC_NAMES) <= set(fams)
                    assert not set(ENGINE_METRIC_NAMES) & set(fams)  # no engine configured
                    assert value(fams, "sigmasockets_clients_connected") == 1
                    assert value(fams, "sigmasockets_messages_received") == 1
                    assert value(fams, "sigmasockets_connections_accepted") >= 2
                    assert value(fams, "sigmasockets_info", version=fams["sigmasockets_info"]
                                 .samples[0].labels["version"], node="n1") == 1
                    assert fams["sigmasockets_handshake_duration_seconds"].type == "histogram"
                    assert value(fams, "sigmasockets_connections_refused",
                                 reason="origin") == 0
                # Probes, the app's own paths behind them, and what is refused.
                assert (await http(server.port, "/livez"))[:3:2] == (200, b"ok\n")
                assert (await http(server.port, "/readyz"))[:3:2] == (200, b"ready\n")
                assert (await http(server.port, "/readyz?verbose=1"))[0] == 200
                assert (await http(server.port, "/app"))[2] == b"the app's own page"
                assert (await http(server.port, "/nope"))[0] == 404
                status, headers, body = await http(server.port, "/metrics", "HEAD")
                assert (status, body) == (200, b"")
                status, headers, _ = await http(server.port, "/metrics", "POST")
                assert status == 405
                assert headers["allow"] == "GET, HEAD"
                assert (await http(server.port, "/livez", "DELETE"))[0] == 405
                status, headers, body = await http(server.port, "/dashboard")
                assert status == 200
                assert b"/dashboard/dashboard.js" in body
                assert "content-security-policy" in headers
                status, headers, body = await http(server.port, "/dashboard/dashboard.js")
                assert status == 200
                assert headers["content-type"].startswith("text/javascript")
                assert (await http(server.port, "/dashboard/../../setup.py"))[0] == 404
                # Readiness: an unreachable engine, then SIGTERM's begin_shutdown.
                reachable = False
                ops.health.set_engine_check(lambda: reachable)
                assert (await http(server.port, "/readyz"))[:3:2] == (
                    503, b"cluster engine unreachable\n")
                reachable = True
                assert (await http(server.port, "/readyz"))[0] == 200
                ops.health.begin_shutdown()
                assert (await http(server.port, "/readyz"))[:3:2] == (503, b"shutting down\n")
                assert (await http(server.port, "/livez"))[0] == 200
            finally:
                await server.stop()


async def test_engine_metrics_appear_once_an_engine_reports(anyio_backend: str) -> None:
    ops = Ops()
    server = ops_server(anyio_backend, ops)
    snap = HistogramSnapshot((0.001, 0.01), (3, 4, 4), 0.012, 4)
    ops.collector.set_engine(lambda: EngineMetrics(
        reachable=True, operations={"append": snap}, errors={"append": 2},
        cross_node_lag=snap))
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            try:
                fams = families((await http(server.port, "/metrics"))[2])
            finally:
                await server.stop()
    assert set(ENGINE_METRIC_NAMES) <= set(fams)
    assert value(fams, "sigmasockets_engine_errors", operation="append") == 2
    assert value(fams, "sigmasockets_engine_up") == 1
    buckets = [s for s in fams["sigmasockets_engine_operation_duration_seconds"].samples
               if s.name.endswith("_bucket")]
    assert [(s.labels["le"], s.value) for s in buckets] == [
        ("0.001", 3), ("0.01", 4), ("+Inf", 4)]


async def test_metrics_off_and_separate_port(anyio_backend: str) -> None:
    ops = Ops(metrics=True, dashboard=False)
    server = ops_server(anyio_backend, ops)
    side = ops.separate_server(type(server), host=LOCAL, port=0)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            await Host(side, tg).start()
            try:
                assert (await http(side.port, "/metrics"))[0] == 200
                assert (await http(side.port, "/readyz"))[0] == 200
                assert (await http(side.port, "/dashboard"))[0] == 404
                assert (await http(side.port, "/app"))[0] == 404
                assert (await http(server.port, "/dashboard"))[0] == 404  # turned off
                # No WebSocket on the ops port.
                client = make_client(anyio_backend, url(side), max_reconnect_attempts=1)
                with pytest.raises(ConnectionFailed, match="403"):
                    async with client:
                        pass  # pragma: no cover - refused
            finally:
                await side.stop()
                await server.stop()
    no_metrics = Ops(metrics=False)
    assert no_metrics.routes()(HttpRequest(method="GET", path="/metrics", headers=())).status \
        == 404


def viewer(backend: str, port: int, token: str = "", **options: Any) -> Any:
    return make_client(backend, f"ws://{LOCAL}:{port}/", auth_token=token,
                       max_reconnect_attempts=1, **options,
                       client_info=ClientInfo(name=DASHBOARD_CLIENT_NAME, version="1",
                                              platform="test"))


async def test_dashboard_stream_is_for_viewers_only(anyio_backend: str) -> None:
    ops = Ops(node="n1", dashboard_token="s3cret", dashboard_interval=0.05)
    server = ops_server(anyio_backend, ops)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            tg.start_soon(ops.feed.run, anyio.current_time, anyio.sleep)
            try:
                while len(ops.feed.points) < 3:
                    await anyio.sleep(0.02)
                with pytest.raises(ConnectionFailed, match="token"):
                    async with viewer(anyio_backend, server.port, "wrong"):
                        pass  # pragma: no cover - refused
                # An ordinary client may not subscribe to the stats topic.
                async with make_client(anyio_backend, url(server)) as plain:
                    plain.subscribe(STATS_TOPIC)
                    async with viewer(anyio_backend, server.port, "s3cret") as watcher:
                        watcher.subscribe(STATS_TOPIC)
                        got: list[dict[str, Any]] = []
                        async for message in watcher:
                            got.append(json.loads(message.data))
                            if sum(m["type"] == "point" for m in got) >= 2:
                                break
                        # Viewers may not subscribe anywhere else.
                        watcher.subscribe("room")
                        await anyio.sleep(0.2)
                        info = watcher.get_session()
                        assert info is not None
                        session = server.get_client(info.id)
                        assert session is not None
                        assert set(session.subscriptions) == {"$all", "$inbox", STATS_TOPIC}
                    plain_info = plain.get_session()
                    assert plain_info is not None
                    plain_session = server.get_client(plain_info.id)
                    assert plain_session is not None
                    assert STATS_TOPIC not in plain_session.subscriptions
            finally:
                tg.cancel_scope.cancel()
                await server.stop()
    history = got[0]
    assert history["type"] == "history"
    assert len(history["points"]) >= 3
    # What the page's cluster view needs: the node's id (unique to the process), its interval
    # and the staleness rule.
    assert history["id"] == ops.feed.node_id
    assert len(ops.feed.node_id) == 8
    assert (history["interval"], history["stale_after"]) == (0.05, 5.0)
    point = next(m for m in got if m["type"] == "point")
    assert point["node"] == "n1"
    assert (point["id"], point["interval"]) == (ops.feed.node_id, 0.05)
    assert point["clients"] == 2
    assert point["connections"] >= 2
    for key in ("messages_in_per_s", "deliveries_per_s", "resumes", "lost_messages",
                "slow_consumers", "rtt_ms", "sessions"):
        assert key in point


async def test_dashboard_speaks_the_servers_serializer(anyio_backend: str) -> None:
    # A server on MessagePack: the page names it (its client must send the same in its Hello),
    # and the points arrive as MessagePack values, the history first.
    ops = Ops(node="n1", dashboard_interval=0.05)
    server = ops_server(anyio_backend, ops, serializer=MsgpackSerializer())
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            tg.start_soon(ops.feed.run, anyio.current_time, anyio.sleep)
            try:
                status, _, page = await http(server.port, "/dashboard")
                assert status == 200
                assert b'<meta name="sigma-serializer" content="msgpack">' in page
                async with viewer(anyio_backend, server.port,
                                  serializer=MsgpackSerializer()) as watcher:
                    watcher.subscribe(STATS_TOPIC)
                    got: list[dict[str, Any]] = []
                    async for message in watcher:
                        got.append(message.data)
                        if len(got) >= 2:
                            break
            finally:
                tg.cancel_scope.cancel()
                await server.stop()
    assert got[0]["type"] == "history"
    assert got[1]["type"] == "point"
    assert got[1]["node"] == "n1"


class _Upper:
    """A serializer of the app's own, which the dashboard page cannot read."""

    name = "upper"

    def encode(self, value: Any) -> bytes:
        return str(value).upper().encode()

    def decode(self, data: bytes) -> Any:
        return data.decode()


async def test_dashboard_says_it_cannot_read_another_serializer(anyio_backend: str) -> None:
    ops = Ops(dashboard_interval=0.05)
    server = ops_server(anyio_backend, ops, serializer=_Upper())
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            try:
                page = (await http(server.port, "/dashboard"))[2]
                assert b'content="upper"' in page  # the page says so (dashboard main.ts)
                ops.feed.tick(anyio.current_time())
                ops.feed.tick(anyio.current_time() + 1)
                assert not ops.feed.points  # nothing sampled, nothing published it cannot read
            finally:
                await server.stop()


async def test_dashboard_viewers_get_in_beside_a_jwt_server(anyio_backend: str) -> None:
    # A JWT server with ops: viewers come in with the dashboard token (no JWT), everyone else
    # only with a valid JWT (the dashboard's rules go around the JWT hook: wrap_authenticate).
    jwt = pytest.importorskip("jwt")
    from sigma_auth import JwtConfig

    secret = "a-secret-of-at-least-32-bytes-for-hs256!"
    ops = Ops(dashboard_token="s3cret", dashboard_interval=0.05)
    server = ops_server(anyio_backend, ops,
                        jwt=JwtConfig(algorithms=("HS256",), secret=secret))
    token = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, secret, algorithm="HS256")
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            try:
                async with viewer(anyio_backend, server.port, "s3cret") as watcher:
                    assert watcher.get_session() is not None
                async with make_client(anyio_backend, url(server), auth_token=token) as user:
                    info = user.get_session()
                    assert info is not None
                    session = server.get_client(info.id)
                    assert session is not None
                    assert session.identity == "alice"
                with pytest.raises(ConnectionFailed):
                    async with make_client(anyio_backend, url(server), auth_token="not-a-jwt",
                                           max_reconnect_attempts=1):
                        pass  # pragma: no cover - refused
            finally:
                await server.stop()


async def test_dashboard_turned_off_refuses_viewers(anyio_backend: str) -> None:
    ops = Ops(dashboard=False)
    server = ops_server(anyio_backend, ops)
    with anyio.fail_after(DEADLINE):
        async with anyio.create_task_group() as tg:
            await Host(server, tg).start()
            try:
                with pytest.raises(ConnectionFailed, match="turned off"):
                    async with viewer(anyio_backend, server.port):
                        pass  # pragma: no cover - refused
            finally:
                await server.stop()


def test_options_validation() -> None:
    with pytest.raises(ValueError, match="shutdown_spread"):
        ServerOptions(shutdown_spread=6.0, shutdown_timeout=5.0)
    with pytest.raises(ValueError, match="shutdown_spread"):
        ServerOptions(shutdown_spread=-1.0)


def test_dashboard_options_are_checked() -> None:
    with pytest.raises(ValueError, match="stale_after must be finite and at least 2 x interval"):
        Ops(dashboard_interval=1.0, dashboard_stale_after=1.5)
    with pytest.raises(ValueError, match="interval must be a finite number > 0"):
        Ops(dashboard_interval=0.0)
    assert Ops(dashboard_interval=2.0, dashboard_stale_after=4.0).feed.stale_after == 4.0
    assert STATS_TOPIC == "sigma-ops.nodes"
    # Two feeds (two nodes, possibly of one name) never share an id.
    assert Ops(node="x").feed.node_id != Ops(node="x").feed.node_id


IMPORT_GUARD = r'''
import asyncio, sys
from sigma_asyncio import ServerOptions, SigmaSocketServer
from sigma_ops import VERSION, Ops

async def get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return data

async def main():
    ops = Ops(node="guard")
    server = SigmaSocketServer(ops.server_options(ServerOptions(host="127.0.0.1", port=0)))
    ops.attach(server)
    async with server:
        metrics = await get(server.port, "/metrics")
        page = await get(server.port, "/dashboard")
        script = await get(server.port, "/dashboard/dashboard.js")
    assert f'version="{VERSION}"'.encode() in metrics, metrics[:300]
    assert b" 200 " in page.split(b"\r\n", 1)[0] and b" 200 " in script.split(b"\r\n", 1)[0]
    print(sorted(m for m in ("importlib.metadata", "importlib.resources", "zipfile")
                 if m in sys.modules))

asyncio.run(main())
'''


def test_sigma_ops_does_not_import_importlib_metadata() -> None:
    """A server with sigma_ops attached, scraped and its dashboard served, never imports
    ``importlib.metadata`` or ``importlib.resources``: importing them cost the uvloop server's
    broadcast 6-9 % per delivery in paired runs (docs/operations.md, "What metrics cost"), and
    the version is a constant (sigma_core/_version.py). A fresh interpreter: pytest itself
    imports them."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", IMPORT_GUARD], cwd=root, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "[]"
