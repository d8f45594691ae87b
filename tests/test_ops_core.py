"""What the core counts for operators (sigma_core.metrics) and the spread drain (Hub.drain,
sigma_core.drain), on the simulator's virtual clock: no sockets, no sleeps."""

from __future__ import annotations

import itertools
import math

import pytest

from sigma_core.backplane import HistoryLimits
from sigma_core.client import Disconnected
from sigma_core.connection import ConnectionConfig
from sigma_core.drain import spread_times
from sigma_core.errors import ErrorCode
from sigma_core.hub import AuthRefuse, AuthRequest, ClientDisconnected, HubConfig
from sigma_core.metrics import REFUSAL_REASONS, Histogram
from sigma_core.testing import Simulation, client_config


def test_histogram_buckets_are_prometheus_le_buckets() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(value)
    snap = h.snapshot()
    assert snap.cumulative == (2, 4, 5)  # <=0.1: 0.05, 0.1; <=1: +0.5, 1.0; +Inf: +3.0
    assert snap.count == 5
    assert snap.sum == pytest.approx(4.65)
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram((1.0, 0.5))


def test_spread_times_are_even_over_the_window() -> None:
    assert spread_times(4, 10.0, 2.0) == [10.0, 10.5, 11.0, 11.5]
    assert spread_times(3, 5.0, 0.0) == [5.0, 5.0, 5.0]
    assert spread_times(0, 5.0, 1.0) == []
    with pytest.raises(ValueError, match="window"):
        spread_times(2, 0.0, math.inf)
    with pytest.raises(ValueError, match="count"):
        spread_times(-1, 0.0, 1.0)


def test_handshakes_deliveries_and_rtt_are_counted() -> None:
    config = HubConfig(connection=ConnectionConfig(heartbeat_interval=1.0))
    sim = Simulation(config, seed=1, latency=0.01)
    clients = [sim.add_client() for _ in range(3)]
    sim.run_until(lambda: all(c.connected for c in clients))
    m = sim.hub.metrics
    assert m.handshake_seconds.count == 3
    # A Hello needs the upgrade's round trip and then its own: at least 2 x 10 ms latency.
    assert m.handshake_seconds.snapshot().cumulative[3] == 0  # none <= 10 ms
    sim.hub.broadcast(b"all", sim.now)
    sim.hub.send_to(clients[0].session.session_id, b"one", sim.now)
    clients[1].subscribe("room")
    sim.run(0.2)
    sim.hub.publish("room", b"room", sim.now)
    sim.run(3.0)
    assert m.publishes == [1, 1, 1]
    assert m.deliveries == [3, 1, 1]
    # Pings every second for 3 s, on 3 connections, 20 ms round trips.
    assert m.heartbeat_rtt_seconds.count >= 6
    snap = m.heartbeat_rtt_seconds.snapshot()
    assert snap.cumulative[4] == snap.count  # all <= 25 ms
    assert snap.cumulative[3] == 0  # none <= 10 ms


def test_refusals_are_counted_by_reason() -> None:
    def refuse(request: AuthRequest) -> AuthRefuse:
        return AuthRefuse(message="no")

    sim = Simulation(HubConfig(authenticate=refuse), seed=2)
    client = sim.add_client(client_config())
    sim.run(0.5)
    assert not client.connected
    refused = sim.hub.metrics.refused
    assert set(refused) == set(REFUSAL_REASONS)
    assert refused["auth_failed"] == 1
    assert sum(refused.values()) == 1
    assert sim.hub.metrics.rejected_connections == 1


def test_replayed_messages_and_lost_messages_are_counted() -> None:
    sim = Simulation(HubConfig(history=HistoryLimits(max_count=5)), seed=3)
    a = sim.add_client(client_config())
    b = sim.add_client(client_config())
    sim.run_until(lambda: a.connected and b.connected)
    sim.isolate(a)
    sim.cut(a)
    for i in range(3):
        sim.hub.broadcast(b"m%d" % i, sim.now)
    sim.heal(a)
    sim.run_until(lambda: a.connected)
    m = sim.hub.metrics
    assert m.replayed_messages.count == 1
    assert m.replayed_messages.sum == 3
    assert m.lost_messages == 0
    # Away for 8 broadcasts with a history of 5: recovery is all-or-nothing, so the client is
    # told all 8 are lost (it resyncs from the head), and that is what is counted.
    sim.isolate(b)
    sim.cut(b)
    for i in range(8):
        sim.hub.broadcast(b"n%d" % i, sim.now)
    sim.heal(b)
    sim.run_until(lambda: b.connected)
    assert sim.hub.metrics.lost_messages == 8
    assert sim.hub.stats(sim.now).failed_recoveries == 1


def test_drain_spreads_goodbyes_over_the_window_and_refuses_newcomers() -> None:
    sim = Simulation(seed=4, latency=0.001)
    clients = [sim.add_client(client_config()) for _ in range(10)]
    sim.run_until(lambda: all(c.connected for c in clients))
    gone: list[float] = []
    sim.on_hub_event(lambda e: gone.append(sim.now) if isinstance(e, ClientDisconnected)
                     else None)
    start = sim.now
    sim.hub.drain(start, window=5.0, reconnect_after_ms=2000)
    assert sim.hub.is_draining
    sim.run(0.01)
    assert sum(c.connected for c in clients) == 9  # the first at once, the rest later
    sim.run(6.0)
    assert len(gone) == 10
    # One goodbye every 0.5 s: never more than one in any half second.
    assert gone[-1] - gone[0] >= 4.4
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(gone))
    for c in clients:
        goodbye = c.of_type(Disconnected)[0].goodbye
        assert goodbye is not None
        assert goodbye.code == ErrorCode.SHUTTING_DOWN
        assert goodbye.reconnect_after_ms == 2000
    assert sim.hub.metrics.drained == 10
    # Their reconnects (to this same, draining hub) are refused with 503.
    assert sim.hub.metrics.refused["draining"] >= 1
    assert not any(c.connected for c in clients)
