"""Per-connection rate limits: the token bucket, and the hub closing a flooding client with 4008
without losing or duplicating anything."""

from __future__ import annotations

import pytest

from sigma_core.client import Disconnected
from sigma_core.connection import ConnectionConfig
from sigma_core.errors import CloseCode
from sigma_core.hub import ClientDisconnected, ClientMessage, HubConfig
from sigma_core.ratelimit import RateLimit, TokenBucket
from sigma_core.testing import Simulation, client_config, fast_reconnect


def test_bucket_spends_refills_and_caps() -> None:
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert all(bucket.take(1, 0.0) for _ in range(5))
    assert not bucket.take(1, 0.0)  # empty: nothing spent
    assert bucket.take(1, 0.1)  # 0.1 s refills one token
    assert not bucket.take(1, 0.1)
    assert bucket.take(5, 10.0)  # refilled to the cap, not beyond
    assert not bucket.take(1, 10.0)


def test_bucket_lets_one_oversized_amount_through_a_full_bucket_only() -> None:
    bucket = TokenBucket(rate=100, capacity=100, now=0.0)
    assert bucket.take(250, 0.0)  # full: allowed, and the debt is paid back over time
    assert not bucket.take(1, 1.0)  # -150 + 100
    assert bucket.take(1, 1.6)


def test_rate_limit_validation() -> None:
    with pytest.raises(ValueError, match="messages_per_second"):
        RateLimit(messages_per_second=-1)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(messages_per_second=5, burst=0)
    assert not RateLimit().enabled


def test_flooding_client_is_closed_with_4008_and_nothing_is_lost() -> None:
    config = HubConfig(connection=ConnectionConfig(heartbeat_interval=5, heartbeat_timeout=12),
                       rate_limit=RateLimit(messages_per_second=20, burst=1.0))
    sim = Simulation(config)
    flood = sim.add_client(client_config(reconnect=fast_reconnect(), pace=0))  # ignores Limits
    calm = sim.add_client()
    sim.run_until(lambda: flood.connected and calm.connected)
    for i in range(60):
        flood.send(b"f%02d" % i)
    calm.send(b"calm")
    sim.run(30)
    cut = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert cut
    assert {e.code for e in cut} == {CloseCode.RATE_LIMITED}
    assert {e.session.id for e in cut} == {flood.session.session_id}
    assert flood.of_type(Disconnected)[0].code == CloseCode.RATE_LIMITED
    got = [e.payload for e in sim.hub_events
           if isinstance(e, ClientMessage) and e.session.id == flood.session.session_id]
    assert got == [b"f%02d" % i for i in range(60)]  # each once, in order, after resumes
    assert calm.connected
    assert sim.hub.stats(sim.now).rate_limited_disconnects == len(cut)


def test_limits_are_advertised_in_the_welcome() -> None:
    from sigma_core.connection import ClientConnection, Welcomed
    from sigma_core.entropy import SeededEntropy
    from sigma_core.hub import Hub

    config = HubConfig(rate_limit=RateLimit(messages_per_second=12.5, bytes_per_second=4096))
    hub = Hub(config, entropy=SeededEntropy(3), now=0.0)
    conn_id = hub.open_connection(0.0)
    client = ClientConnection(host="h", now=0.0)
    welcomed: list[Welcomed] = []
    for _ in range(4):
        out = b"".join(client.data_to_send())
        if out:
            hub.receive_data(conn_id, out, 0.0)
        for _, chunks, _ in hub.flush(0.0):
            client.receive_data(b"".join(chunks), 0.0)
        welcomed += [e for e in client.events_received() if isinstance(e, Welcomed)]
    limits = welcomed[0].welcome.limits
    assert limits is not None
    assert (limits.max_messages_per_second, limits.max_bytes_per_second) == (13, 4096)
