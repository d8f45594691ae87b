"""The cluster seam: several hubs sharing an engine (sigma_core.testing.ClusterSimulation)."""

from __future__ import annotations

from sigma_core.client import RecoveryFailed, SessionReset
from sigma_core.hub import ClientConnected, ClientMessage
from sigma_core.testing import ClusterSimulation, client_config


def connected_to(sim: ClusterSimulation, node: int, name: str = "") -> object:
    client = sim.add_client(client_config(), name=name, connect=False)
    sim.pin(client, node)
    client.connect()
    sim.run_until(lambda: client.connected)
    return client


def test_a_client_on_node_a_gets_a_message_published_on_node_b() -> None:
    sim = ClusterSimulation(2, seed=1)
    alice = connected_to(sim, 0)
    bob = connected_to(sim, 1)
    alice.subscribe("room")
    bob.subscribe("room")
    sim.run(0.2)
    sim.node(1).hub.publish("room", b"from B", sim.now)
    sim.node(0).hub.publish("room", b"from A", sim.now)
    sim.node(1).hub.broadcast(b"to all", sim.now)
    sim.run(0.2)
    assert alice.payloads("room") == bob.payloads("room")
    assert sorted(alice.payloads("room")) == [b"from A", b"from B"]
    assert alice.payloads("$all") == [b"to all"] == bob.payloads("$all")
    # Positions are the engine's: the same on both nodes, contiguous.
    assert [m.position for m in alice.messages("room")] == \
        [m.position for m in bob.messages("room")]
    assert [m.position.offset for m in alice.messages("room")] == [1, 2]
