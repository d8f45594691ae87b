"""Server-side subscriptions (``Hub.watch``): the app hears every message of a topic, from any
node, in the same order on every node; and cluster presence answers with identities."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from sigma_core.entropy import SeededEntropy
from sigma_core.errors import LocalProtocolError
from sigma_core.hub import (
    ClusterPresence,
    Hub,
    HubConfig,
    TopicLost,
    TopicMessage,
    TopicWatched,
)
from sigma_core.testing import ClusterSimulation, SimClient, Simulation, client_config


def _messages(events: Sequence[object], topic: str = "room") -> list[tuple[int, bytes, bool]]:
    return [(e.position.offset, e.payload, e.history) for e in events
            if isinstance(e, TopicMessage) and e.topic == topic]


def test_single_node_watch_gets_history_then_every_publish_once() -> None:
    hub = Hub(HubConfig(), entropy=SeededEntropy(1), now=0.0)
    for i in range(5):
        hub.publish("room", b"old%d" % i, 0.0)
    hub.watch("room", 0.0, history=2)
    hub.watch("room", 0.0, history=2)  # already watched: nothing again
    hub.publish("room", b"new", 1.0)
    events = hub.events_received()
    assert _messages(events) == [(4, b"old3", True), (5, b"old4", True), (6, b"new", False)]
    watched = [e for e in events if isinstance(e, TopicWatched)]
    assert [(w.topic, w.position.offset, w.failed) for w in watched] == [("room", 5, "")]
    # TopicWatched comes between the history and the live messages.
    kinds = [type(e).__name__ for e in events if isinstance(e, (TopicMessage, TopicWatched))]
    assert kinds == ["TopicMessage", "TopicMessage", "TopicWatched", "TopicMessage"]
    assert hub.watched == frozenset({"room"})
    hub.unwatch("room", 2.0)
    hub.publish("room", b"unheard", 2.0)
    assert _messages(hub.events_received()) == []
    assert hub.watched == frozenset()


def test_watch_refuses_reserved_topics_and_negative_history() -> None:
    hub = Hub(HubConfig(), entropy=SeededEntropy(1), now=0.0)
    with pytest.raises(LocalProtocolError, match="reserved"):
        hub.watch("$all", 0.0)
    with pytest.raises(LocalProtocolError, match="history"):
        hub.watch("room", 0.0, history=-1)
    with pytest.raises(LocalProtocolError):
        hub.watch("", 0.0)


def test_single_node_cluster_presence_names_identities() -> None:
    sim = Simulation(HubConfig(), seed=2)
    client = sim.add_client(client_config())
    sim.run_until(lambda: client.connected)
    client.subscribe("room")
    sim.run(0.1)
    sim.hub.request_presence("room", sim.now)
    sim.run(0.01)
    (answer,) = [e for e in sim.hub_events if isinstance(e, ClusterPresence)]
    sid = client.session.session_id
    assert answer.members == frozenset({sid})
    session = sim.hub.get_session(sid)
    assert session is not None
    assert dict(answer.identities) == {sid: session.identity}
    assert not answer.failed


def connected_check(client: SimClient) -> Callable[[], bool]:
    return lambda: client.connected


def _node_events(sim: ClusterSimulation, node: str) -> list[object]:
    return [e for e, (name, _) in zip(sim.hub_events, sim.hub_event_sources, strict=True)
            if name == node]


def test_two_nodes_watch_the_same_sequence_with_nobody_subscribed() -> None:
    """Publishes on both nodes, no client subscribed anywhere: each node's app hears every
    message once, in the engine's order, the same on both."""
    sim = ClusterSimulation(2, seed=4)
    sim.node(0).hub.watch("room", sim.now)
    sim.node(1).hub.watch("room", sim.now)
    sim.run(0.2)
    sent = []
    for i in range(12):
        node = sim.node(i % 2)
        node.hub.publish("room", b"m%d" % i, sim.now)
        sent.append(b"m%d" % i)
        sim.run(0.001)
    sim.run(2.0)
    a = _messages(_node_events(sim, "node0"))
    b = _messages(_node_events(sim, "node1"))
    assert a == b
    assert [offset for offset, _, _ in a] == list(range(1, 13))
    assert sorted(payload for _, payload, _ in a) == sorted(sent)


def test_a_node_that_watches_late_gets_the_last_messages_as_history() -> None:
    sim = ClusterSimulation(2, seed=5)
    for i in range(6):
        sim.node(0).hub.publish("room", b"m%d" % i, sim.now)
    sim.run(0.2)
    sim.node(1).hub.watch("room", sim.now, history=3)
    sim.run(0.2)
    sim.node(0).hub.publish("room", b"live", sim.now)
    sim.run(0.5)
    events = _node_events(sim, "node1")
    assert _messages(events) == [(4, b"m3", True), (5, b"m4", True), (6, b"m5", True),
                                 (7, b"live", False)]
    assert [e.position.offset for e in events if isinstance(e, TopicWatched)] == [6]


def test_watch_hears_what_a_subscribed_client_hears_and_a_lost_delivery_is_filled() -> None:
    sim = ClusterSimulation(2, seed=6)
    client = sim.add_client(client_config(), connect=False)
    sim.pin(client, 1)
    client.connect()
    sim.run_until(lambda: client.connected)
    client.subscribe("room")
    sim.node(1).hub.watch("room", sim.now)
    sim.run(0.2)
    sim.drop_cross_node(1)  # the first cross-node delivery is lost: the next one reveals it
    sim.node(0).hub.publish("room", b"a", sim.now)
    sim.run(0.01)
    sim.node(0).hub.publish("room", b"b", sim.now)
    sim.run(2.0)
    assert [p for _, p, _ in _messages(_node_events(sim, "node1"))] == [b"a", b"b"]
    assert client.payloads("room") == [b"a", b"b"]
    # The watch outlives the client's subscription: the node still receives the topic.
    client.unsubscribe("room")
    sim.run(0.2)
    sim.node(0).hub.publish("room", b"c", sim.now)
    sim.run(0.5)
    assert [p for _, p, _ in _messages(_node_events(sim, "node1"))] == [b"a", b"b", b"c"]


def test_watch_while_the_engine_is_down_fails_with_the_reason() -> None:
    sim = ClusterSimulation(2, seed=7)
    sim.engine_down()
    sim.run(0.1)
    sim.node(0).hub.watch("room", sim.now)
    sim.run(0.1)
    (watched,) = [e for e in _node_events(sim, "node0") if isinstance(e, TopicWatched)]
    assert "unavailable" in watched.failed
    assert sim.node(0).hub.watched == frozenset()  # not set up: the app watches again later
    sim.engine_up()
    sim.run(0.1)
    sim.node(0).hub.watch("room", sim.now)
    sim.run(0.2)
    sim.node(1).hub.publish("room", b"x", sim.now)
    sim.run(0.5)
    assert [p for _, p, _ in _messages(_node_events(sim, "node0"))] == [b"x"]
    assert not any(isinstance(e, TopicLost) for e in _node_events(sim, "node0"))


def test_cluster_presence_lists_members_of_every_node_with_identities() -> None:
    sim = ClusterSimulation(2, seed=8)
    clients = []
    for node in (0, 1):
        client = sim.add_client(client_config(), connect=False)
        sim.pin(client, node)
        client.connect()
        sim.run_until(connected_check(client))
        client.subscribe("room")
        clients.append(client)
    sim.run(0.3)
    sim.node(0).hub.request_presence("room", sim.now)
    sim.run(0.2)
    (answer,) = [e for e in _node_events(sim, "node0") if isinstance(e, ClusterPresence)]
    ids = {c.session.session_id for c in clients}
    assert answer.members == ids
    assert set(answer.identities) == ids
