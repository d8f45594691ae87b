"""The cluster engine's series on ``/metrics`` (issue 16, item 1): two asyncio nodes share one
real redis-server through ``sigma_redis.RedisEngine``, each with ``sigma_ops.Ops`` attached;
``/metrics`` is scraped over HTTP. The operation latency histogram, the errors by operation
and the cross-node lag are there, move with traffic, and errors count once Redis is gone."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from ops_support import http
from prometheus_client.parser import text_string_to_metric_families
from redis_support import RedisServer, running_redis

from sigma_asyncio import ServerOptions, SigmaSocketClient, SigmaSocketServer
from sigma_core.errors import LocalProtocolError
from sigma_ops import ENGINE_METRIC_NAMES, Ops
from sigma_redis import RedisEngine, RedisEngineConfig

pytestmark = [
    pytest.mark.anyio,
    # coredis leaves anyio streams unclosed when its server dies (as in test_ops_drain.py).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
MESSAGES = 30


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    status, headers, body = await http(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def errors(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "sigmasockets_engine_errors_total")


async def test_engine_series_move_with_traffic_and_count_errors(redis: RedisServer) -> None:
    # The watchdog pings rarely here, so that requests made right after Redis dies still go
    # out (and fail) before the engine notices on its own.
    engines = [RedisEngine(RedisEngineConfig(url=redis.url, health_interval=5.0,
                                             request_timeout=1.0)) for _ in range(2)]
    ops = [Ops(node=f"n{i}") for i in range(2)]
    servers = [SigmaSocketServer(o.server_options(ServerOptions(host="127.0.0.1", port=0,
                                                                engine=e)))
               for o, e in zip(ops, engines, strict=True)]
    for o, s in zip(ops, servers, strict=True):
        o.attach(s)
    got: list[bytes] = []
    with anyio.fail_after(60):
        async with servers[0], servers[1]:
            while not all(e.is_ready() for e in engines):
                await anyio.sleep(0.02)
            reader, writer = servers[0].port, servers[1].port
            before = await scrape(reader)
            # (An operation's latency series appears once that operation happened.)
            assert {n for (n, _) in before if n.startswith("sigmasockets_engine")} >= {
                "sigmasockets_engine_up", "sigmasockets_engine_cross_node_lag_seconds_count"}
            assert value(before, "sigmasockets_engine_up") == 1
            assert len(ENGINE_METRIC_NAMES) == 4

            # A client on node 0 in a room; node 1 publishes to it through Redis.
            async with SigmaSocketClient(f"ws://127.0.0.1:{reader}/") as client:
                client.on("message", lambda data, *_: got.append(data))
                client.subscribe("room")
                hub = servers[0].hub
                assert hub is not None
                while not hub.presence("room"):
                    await anyio.sleep(0.02)
                await anyio.sleep(0.3)
                w_before = await scrape(writer)
                r_before = await scrape(reader)
                for i in range(MESSAGES):
                    servers[1].publish("room", b"m%d" % i)
                while len([m for m in got if m.startswith(b"m")]) < MESSAGES:
                    await anyio.sleep(0.02)
                w_after = await scrape(writer)
                r_after = await scrape(reader)

            # The writer's appends were timed; the reader's arrivals give the lag.
            appends = ("sigmasockets_engine_operation_duration_seconds_count",
                       {"operation": "append"})
            assert value(w_after, appends[0], **appends[1]) - \
                value(w_before, appends[0], **appends[1]) >= MESSAGES
            assert value(w_after, "sigmasockets_engine_operation_duration_seconds_sum",
                         operation="append") > 0
            lag = "sigmasockets_engine_cross_node_lag_seconds_count"
            assert value(r_after, lag) - value(r_before, lag) >= MESSAGES
            assert 0 < value(r_after, "sigmasockets_engine_cross_node_lag_seconds_sum") \
                < MESSAGES * 5
            # The buckets are cumulative and end at +Inf = count.
            assert value(r_after, "sigmasockets_engine_cross_node_lag_seconds_bucket",
                         le="+Inf") == value(r_after, lag)
            assert errors(w_after) == 0

            # Redis dies: what the node asks of it now fails, and is counted by operation.
            redis.kill()
            for i in range(5):
                try:
                    servers[1].publish("room", b"lost %d" % i)
                except LocalProtocolError:
                    break  # the engine noticed already: the hub refuses up front
                await anyio.sleep(0.05)
            while True:
                down = await scrape(writer)
                if errors(down) > 0 and value(down, "sigmasockets_engine_up") == 0:
                    break
                await anyio.sleep(0.1)
            assert value(down, "sigmasockets_engine_errors_total", operation="append") >= 1
            status, _, body = await http(writer, "/readyz")
            assert (status, body) == (503, b"cluster engine unreachable\n")
