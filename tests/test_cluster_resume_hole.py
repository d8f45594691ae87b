"""Regression (found by bench/cluster_chaos.py, node kills): a session resuming on a node reads
its replay from history; when that replay reaches past what the node has delivered so far (the
cross-node messages are late or lost on the way), the node's other subscribers of the topic are
owed the same messages — the node must not jump its position to the replay's end and skip them
silently."""

from __future__ import annotations

from sigma_core.client import RecoveryFailed
from sigma_core.testing import ClusterSimulation, client_config


def test_resume_whose_replay_runs_ahead_of_the_node_does_not_skip_its_other_subscribers(
) -> None:
    sim = ClusterSimulation(2, seed=11)
    alice = sim.add_client(client_config(), name="alice", connect=False)
    carol = sim.add_client(client_config(), name="carol", connect=False)
    for client in (alice, carol):
        sim.pin(client, 0)
        client.connect()
        sim.run_until(lambda: client.connected)  # noqa: B023 (runs within the iteration)
        client.subscribe("room")
    sim.run(0.2)
    sim.cut(carol)  # carol reconnects (to node 0 again) in a moment
    sim.drop_cross_node(2)  # node 0 never hears of the next two appends
    sim.node(1).hub.publish("room", b"1", sim.now)
    sim.node(1).hub.publish("room", b"2", sim.now)
    sim.run_until(lambda: carol.connected and carol.payloads("room") == [b"1", b"2"],
                  timeout=0.9)  # before node 0's heads check (1 s) could notice
    assert sim.dropped_cross_node == 2
    sim.run(2.0)
    assert alice.payloads("room") == [b"1", b"2"]
    assert alice.of_type(RecoveryFailed) == []
    assert carol.payloads("room") == [b"1", b"2"]
