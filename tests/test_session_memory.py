"""What an idle session keeps on a single node (issue 20, memory): sessions that join between two
broadcasts share one subscription dict, made a session's own at its first change, with the same
behaviour as one dict each."""

from __future__ import annotations

from sigma_core.client import ClientConfig, ReconnectPolicy, SubscribedEvent
from sigma_core.connection import ConnectionConfig
from sigma_core.hub import HubConfig
from sigma_core.messages import StreamPosition
from sigma_core.testing import SimClient, Simulation

HB = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0)


def client(sim: Simulation) -> SimClient:
    c = sim.add_client(ClientConfig(url="ws://sim.invalid/", reconnect=ReconnectPolicy(
        max_attempts=None, initial_delay=0.1)))
    sim.run_until(lambda: c.connected)
    return c


def test_sessions_share_their_default_subscriptions_until_one_changes() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice, bob = client(sim), client(sim)
    sa = sim.hub._sessions[alice.session.session_id]
    sb = sim.hub._sessions[bob.session.session_id]
    assert sa.subscriptions is sb.subscriptions
    assert set(sa.subscriptions) == {"$all", "$inbox"}
    sim.hub.broadcast(b"moves the head", sim.now)
    carol = client(sim)
    sc = sim.hub._sessions[carol.session.session_id]
    assert sc.subscriptions is not sa.subscriptions  # joined at another $all head
    alice.subscribe("room")
    sim.run_until(lambda: bool(alice.of_type(SubscribedEvent)))
    assert sa.subscriptions is not sb.subscriptions
    assert set(sa.subscriptions) == {"$all", "$inbox", "room"}
    assert set(sb.subscriptions) == {"$all", "$inbox"}
    # Its own dict holds the inbox's real first position: the epoch the client was given.
    assert sa.subscriptions["$inbox"] == StreamPosition(
        alice.session.positions["$inbox"].epoch, 0)


def test_a_resume_without_an_inbox_position_replays_the_inbox_from_its_start() -> None:
    sim = Simulation(HubConfig(connection=HB))
    alice, bob = client(sim), client(sim)
    sim.cut(alice)
    for word in (b"one", b"two"):
        sim.hub.send_to(alice.session.session_id, word, sim.now)
    del alice.session.positions["$inbox"]  # a client that does not report it
    sim.run_until(lambda: alice.connected and alice.session.resumed)
    sim.run(0.5)
    assert alice.payloads("$inbox") == [b"one", b"two"]
    assert bob.payloads("$inbox") == []
