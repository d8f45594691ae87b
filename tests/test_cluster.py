"""The cluster seam: several hubs sharing an engine (sigma_core.testing.ClusterSimulation)."""

from __future__ import annotations

from sigma_core.client import RecoveryFailed, SessionReset
from sigma_core.hub import ClientConnected, ClientMessage
from sigma_core.testing import ClusterSimulation, SimClient, client_config


def connected_to(sim: ClusterSimulation, node: int, name: str = "") -> SimClient:
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


def test_node_a_crashes_mid_publish_and_its_clients_resume_on_b_with_every_message_once() -> None:
    sim = ClusterSimulation(2, seed=2)
    alice = connected_to(sim, 0, "alice")
    carol = connected_to(sim, 1, "carol")
    for client in (alice, carol):
        client.subscribe("room")
    sim.run(0.2)
    sent = []
    # Node B keeps publishing while A dies with messages in flight to it.
    for i in range(10):
        sim.node(1).hub.publish("room", b"m%d" % i, sim.now)
        sent.append(b"m%d" % i)
        sim.run(0.002)
        if i == 4:
            sim.crash_node(0)
            sim.pin(alice, 1)  # the load balancer has only B left
    sim.run_until(lambda: alice.connected, timeout=30)
    for i in range(10, 13):
        sim.node(1).hub.publish("room", b"m%d" % i, sim.now)
        sent.append(b"m%d" % i)
    sim.run(0.5)
    assert sim.node_of(alice) is sim.node(1)
    # The session moved (resumed, not fresh), and nothing was lost or doubled.
    assert alice.of_type(SessionReset) == []
    assert alice.of_type(RecoveryFailed) == []
    assert alice.payloads("room") == sent
    assert carol.payloads("room") == sent
    resumed = [e for e in sim.hub_events if isinstance(e, ClientConnected) and e.resumed]
    assert [e.session.id for e in resumed] == [alice.session.session_id]


def test_client_messages_acked_by_a_node_that_crashed_are_never_lost() -> None:
    sim = ClusterSimulation(2, seed=3)
    alice = connected_to(sim, 0)
    got: list[tuple[str, int, bytes]] = []
    sim.on_hub_event(lambda e: got.append((e.session.id, e.seq, e.payload))
                     if isinstance(e, ClientMessage) else None)
    for i in range(20):
        alice.send(b"c%d" % i)
        sim.run(0.003)
    sim.crash_node(0)
    sim.pin(alice, 1)
    sim.run_until(lambda: alice.connected and not alice.session.pending_count, timeout=30)
    sid = alice.session.session_id
    # Every message reached an app at least once; the ones node A saw after its last save
    # may come again on B with the same (session id, seq): that is what the app dedupes on.
    seqs = [seq for s, seq, _ in got if s == sid]
    assert sorted(set(seqs)) == list(range(1, 21))
    first = {seq: payload for _, seq, payload in reversed(got)}
    assert all(first[i + 1] == b"c%d" % i for i in range(20))
    # On B, the seqs arrive in order starting right after what the engine held.
    on_b = seqs[seqs.index(max(seqs[:20])) + 1:] if len(seqs) > 20 else []
    assert on_b == sorted(on_b)


def test_a_dropped_cross_node_message_is_recovered_by_the_position_check() -> None:
    sim = ClusterSimulation(2, seed=4)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(0.2)
    sim.drop_cross_node(1)
    sim.node(1).hub.publish("room", b"lost on the way", sim.now)
    sim.run(0.05)
    assert sim.dropped_cross_node == 1
    assert alice.payloads("room") == []  # no later message reveals the hole...
    sim.run(1.5)  # ...the periodic heads check does (heads_interval = 1 s)
    assert alice.payloads("room") == [b"lost on the way"]
    assert alice.of_type(RecoveryFailed) == []


def test_a_hole_between_cross_node_messages_is_filled_from_history_in_order() -> None:
    sim = ClusterSimulation(2, seed=5)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(0.2)
    sim.node(1).hub.publish("room", b"1", sim.now)
    sim.drop_cross_node(1)
    sim.node(1).hub.publish("room", b"2", sim.now)
    sim.node(1).hub.publish("room", b"3", sim.now)
    sim.run(0.1)
    assert alice.payloads("room") == [b"1", b"2", b"3"]


def test_a_hole_history_no_longer_has_is_reported_with_its_exact_range() -> None:
    from sigma_core.backplane import HistoryLimits
    from sigma_core.hub import HubConfig

    sim = ClusterSimulation(2, HubConfig(history=HistoryLimits(max_count=2)), seed=6)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(0.2)
    sim.drop_cross_node(4)
    for i in range(1, 5):
        sim.node(1).hub.publish("room", b"%d" % i, sim.now)
    sim.node(1).hub.publish("room", b"5", sim.now)
    sim.run(0.2)
    # 1-4 never reached node A; history keeps only 4 and 5: 1-3 are gone, and said so.
    lost = alice.of_type(RecoveryFailed)
    assert [(e.topic, e.lost_from, e.lost_to) for e in lost] == [("room", 1, 3)]
    assert alice.payloads("room") == [b"4", b"5"]


def test_an_engine_outage_refuses_new_sessions_with_a_clear_error_and_recovers() -> None:
    sim = ClusterSimulation(2, seed=7)
    alice = connected_to(sim, 0)
    sim.engine_down()
    bob = sim.add_client(client_config(), name="bob")
    sim.run(2.0)
    assert not bob.connected
    errors = [e for e in bob.events if "cluster engine unavailable" in repr(e)]
    assert errors, bob.events
    sim.engine_up()
    sim.run_until(lambda: bob.connected, timeout=30)
    sim.node(0).hub.broadcast(b"back", sim.now)
    sim.run(0.2)
    assert alice.payloads("$all") == [b"back"] == bob.payloads("$all")


def test_a_corrupt_session_record_is_a_failed_resume_with_a_logged_reason() -> None:
    from sigma_core.hub import EngineRecordRejected

    sim = ClusterSimulation(2, seed=8)
    alice = connected_to(sim, 0)
    sid = alice.session.session_id
    stored = sim.engine.store._sessions[sid]
    stored.record = b'{"format": "sigma.session.v1", "id": "someone else"}'
    sim.crash_node(0)
    sim.pin(alice, 1)
    sim.run_until(lambda: alice.connected, timeout=30)
    resets = alice.of_type(SessionReset)
    assert len(resets) == 1
    assert "stored record unusable" in resets[0].reason
    rejected = [e for e in sim.hub_events if isinstance(e, EngineRecordRejected)]
    assert len(rejected) == 1
    assert "someone else" in rejected[0].reason


def room_on_two_nodes(seed: int) -> tuple[ClusterSimulation, SimClient, SimClient]:
    """Two nodes (presence_ttl 3 s); alice on node 0 and bob on node 1, both in "room"."""
    from sigma_core.engine import ExternalEngineConfig

    sim = ClusterSimulation(2, seed=seed, engine_config=lambda name: ExternalEngineConfig(
        node_id=name, presence_ttl=3.0))
    alice = connected_to(sim, 0)
    bob = connected_to(sim, 1)
    alice.subscribe("room")
    bob.subscribe("room")
    sim.run(0.2)
    return sim, alice, bob


def test_presence_is_cluster_wide_and_members_of_a_crashed_node_expire() -> None:
    from sigma_core.hub import ClusterPresence

    sim, alice, bob = room_on_two_nodes(seed=9)
    a, b = sim.node(0).hub, sim.node(1).hub
    # presence() is node-local; request_presence() asks the engine for every node's members.
    assert a.presence("room") == {alice.session.session_id}
    answers: list[ClusterPresence] = []
    sim.on_hub_event(lambda e: answers.append(e) if isinstance(e, ClusterPresence) else None)
    b.request_presence("room", sim.now)
    sim.run(0.1)
    both = {alice.session.session_id, bob.session.session_id}
    assert [e.members for e in answers] == [both]
    # Alice's node dies and she does not come back (off the network): nobody refreshes her
    # membership, so it lapses after presence_ttl; Bob's node keeps refreshing his.
    sim.isolate(alice)
    sim.crash_node(0)
    b.request_presence("room", sim.now)
    sim.run(0.1)
    assert answers[-1].members == both  # not yet
    sim.run(3.5)
    b.request_presence("room", sim.now)
    sim.run(0.1)
    assert answers[-1].members == {bob.session.session_id}


def test_answered_requests_leave_no_timers_and_timeouts_fire_in_order() -> None:
    # One engine timer is armed at a time, for the oldest request waiting: requests answered
    # in time wake the adapter at most once between them, not once each (with a timer per
    # request, every answered request still woke its node request_timeout later).
    from sigma_core.engine import Appended, ExternalEngineConfig
    from sigma_core.entropy import SeededEntropy
    from sigma_core.hub import Hub, PublishFailed
    from sigma_core.messages import StreamPosition

    hub = Hub(entropy=SeededEntropy(1), now=0.0, engine=ExternalEngineConfig(
        node_id="n", request_timeout=1.0, heads_interval=100.0, heads_interval_max=100.0,
        presence_ttl=600.0))
    for i, at in enumerate((0.0, 0.1, 0.2)):
        hub.publish("room", b"%d" % i, at)
    answered = hub.engine_requests()
    for offset, request in enumerate(answered, 1):
        hub.engine_result(Appended(request_id=request.request_id, topic="room",
                                   position=StreamPosition(1, offset)), 0.3)
    assert hub.next_deadline() == 1.0
    hub.handle_timer(1.0)
    assert hub.next_deadline() == 100.0  # the heads check: nothing left for 1.1 and 1.2
    # Unanswered ones fail at their own deadlines, oldest first.
    hub.publish("room", b"late 1", 2.0)
    hub.publish("room", b"late 2", 2.5)
    assert hub.next_deadline() == 3.0
    hub.handle_timer(3.0)
    failed = [e for e in hub.events_received() if isinstance(e, PublishFailed)]
    assert [e.reason for e in failed] == ["timeout"]
    assert hub.next_deadline() == 3.5
    hub.handle_timer(3.5)
    failed = [e for e in hub.events_received() if isinstance(e, PublishFailed)]
    assert [e.reason for e in failed] == ["timeout"]
    assert hub.next_deadline() == 100.0


def test_presence_refresh_sends_member_ids_only_and_rejoins_what_the_engine_lost() -> None:
    # A node refreshes its members' expiry every presence_ttl / 3 with their ids only (their
    # info went with the join); a member the engine no longer holds is joined again, with info.
    from sigma_core.engine import PresenceUpdate
    from sigma_core.hub import ClusterPresence

    sim, alice, bob = room_on_two_nodes(seed=11)
    executed = sim.engine.executed
    joins = executed.get("PresenceUpdate", 0)
    sim.run(2.5)  # two refreshes per node, at least
    assert executed.get("PresenceRefresh", 0) >= 4
    assert executed.get("PresenceUpdate", 0) == joins  # no info re-sent
    answers: list[ClusterPresence] = []
    sim.on_hub_event(lambda e: answers.append(e) if isinstance(e, ClusterPresence) else None)
    both = {alice.session.session_id, bob.session.session_id}
    sim.node(1).hub.request_presence("room", sim.now)
    sim.run(0.1)
    assert answers[-1].members == both
    # The engine loses Alice's entry (removed by hand, or expired while her node was cut
    # off): her node's next refresh is told so and joins her again.
    sim.engine.store.execute(PresenceUpdate(request_id=0, topic="room",
                                            leaves=(alice.session.session_id,)), sim.now)
    sim.node(1).hub.request_presence("room", sim.now)
    sim.run(0.1)
    assert answers[-1].members == {bob.session.session_id}
    sim.run(1.1)
    assert executed.get("PresenceUpdate", 0) == joins + 1
    sim.node(1).hub.request_presence("room", sim.now)
    sim.run(0.1)
    assert answers[-1].members == both


def _scenario(sim: object, seed: int) -> list[list[tuple[str, bytes]]]:
    """A fixed script of subscriptions, publishes, inbox sends, cuts and client sends."""
    from sigma_core.testing import Simulation

    assert isinstance(sim, Simulation)
    clients = []
    for i in range(3):
        client = sim.add_client(client_config(), name=f"c{i}")
        clients.append(client)
    sim.run_until(lambda: all(c.connected for c in clients))
    hub = sim.hub
    clients[0].subscribe("a")
    clients[1].subscribe("a")
    clients[2].subscribe("b")
    sim.run(0.2)
    for n in range(30):
        topic = "a" if n % 3 else "b"
        hub.publish(topic, b"p%d" % n, sim.now)
        if n % 7 == 0:
            hub.broadcast(b"all%d" % n, sim.now)
        if n % 5 == 0:
            hub.send_to(clients[n % 3].session.session_id, b"dm%d" % n, sim.now)
        if n == 10:
            sim.cut(clients[1], after_bytes=7 + seed)
        sim.run(0.05)
    sim.run(10)
    return [[(m.topic, m.payload) for m in c.messages()] for c in clients]


def test_a_single_node_on_an_external_engine_behaves_as_on_the_memory_engine() -> None:
    """Differential: the inline memory-engine paths and the request/result paths deliver the
    same messages, in the same order, to the same clients."""
    from sigma_core.testing import Simulation

    for seed in (0, 1, 2):
        inline = _scenario(Simulation(seed=seed), seed)
        external = _scenario(ClusterSimulation(1, seed=seed), seed)
        assert inline == external
        assert all(inline)


def test_a_corrupt_history_entry_is_an_explicit_lost_range_with_a_logged_reason() -> None:
    from sigma_core.engine import HistoryEntry
    from sigma_core.hub import EngineRecordRejected

    sim = ClusterSimulation(2, seed=10)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(0.2)
    sim.node(1).hub.publish("room", b"good", sim.now)
    sim.run(0.1)
    # The engine hands out garbage for the next message (a corrupt or foreign entry).
    stream = sim.engine.store._streams["room"]
    sim.engine.store.on_append = None  # so the bad entry arrives through hole filling
    stream.last_offset += 1
    assert stream.entries is not None
    stream.entries.append(HistoryEntry(stream.epoch, stream.last_offset, 0.0, b"\x00garbage"))
    sim.engine.store.on_append = sim._fan_out
    sim.node(1).hub.publish("room", b"after", sim.now)
    sim.run(0.3)
    assert alice.payloads("room") == [b"good", b"after"]
    lost = alice.of_type(RecoveryFailed)
    assert [(e.topic, e.lost_from, e.lost_to) for e in lost] == [("room", 2, 2)]
    rejected = [e for e in sim.hub_events if isinstance(e, EngineRecordRejected)]
    assert [e.what for e in rejected] == ["history entry room@2"]
    assert "does not decode" in rejected[0].reason


def test_requests_are_bounded_and_time_out() -> None:
    import pytest

    from sigma_core.engine import Append, ExternalEngineConfig
    from sigma_core.entropy import SeededEntropy
    from sigma_core.errors import LocalProtocolError
    from sigma_core.hub import Hub, PublishFailed

    hub = Hub(entropy=SeededEntropy(1), now=0.0,
              engine=ExternalEngineConfig(node_id="n", max_pending=2, request_timeout=1.0))
    hub.publish("room", b"1", 0.0)
    hub.publish("room", b"2", 0.0)
    with pytest.raises(LocalProtocolError, match="2 requests already waiting"):
        hub.publish("room", b"3", 0.0)
    requests = hub.engine_requests()
    assert [type(r) for r in requests] == [Append, Append]
    # Nobody answers: after request_timeout each is a failed publish, and room is freed.
    hub.handle_timer(1.0)
    failed = [e for e in hub.events_received() if isinstance(e, PublishFailed)]
    assert [(e.topic, e.reason) for e in failed] == [("room", "timeout")] * 2
    hub.publish("room", b"4", 1.0)
    # A late answer to a request that timed out is ignored.
    from sigma_core.engine import Appended
    from sigma_core.messages import StreamPosition

    hub.engine_result(Appended(request_id=requests[0].request_id, topic="room",
                               position=StreamPosition(1, 1)), 1.5)
    assert hub.stats(1.5).engine_failures == 2


def test_a_resume_that_replays_past_this_nodes_delivery_skips_no_other_member() -> None:
    """Found by the cluster state machine: Carol's resume on node 1 read a message that node 1
    had not received yet (its delivery between nodes was lost); the replay must not move the
    node's position past it for Bob, who is on node 1 too."""
    sim = ClusterSimulation(2, seed=0)
    bob = connected_to(sim, 1, "bob")
    carol = connected_to(sim, 0, "carol")
    sim.drop_cross_node(3)
    sim.node(0).hub.broadcast(b"s-1", sim.now)
    sim.pin(carol, 1)
    sim.cut(carol, 0)
    sim.run(0.2)  # carol resumed on node 1 before its heads check
    assert sim.node_of(carol) is sim.node(1)
    sim.run(2.0)
    assert carol.payloads() == [b"s-1"]
    assert bob.payloads() == [b"s-1"]


def test_credentials_apply_on_a_cluster_node_fresh_and_resumed() -> None:
    # The authenticate hook's answer reaches a session built through the engine: its channels
    # are subscribed, its topic permission holds, its expiry is in the Welcome and enforced.
    from sigma_core.client import ErrorReceived
    from sigma_core.errors import CloseCode, ErrorCode
    from sigma_core.hub import AuthAccept, AuthRequest, ClientDisconnected, HubConfig

    def hook(request: AuthRequest) -> AuthAccept:
        return AuthAccept(identity="alice", channels=("news",), topics=("news", "room:*"),
                          expires_at=request.now + 5.0)

    sim = ClusterSimulation(2, HubConfig(authenticate=hook, credentials_grace=1.0), seed=3)
    alice = sim.add_client(client_config(auth_token="t"), connect=False)
    sim.pin(alice, 0)
    alice.connect()
    sim.run_until(lambda: alice.connected)
    session = sim.node(0).hub.get_session(alice.session.session_id)
    assert session is not None
    assert "news" in session.subscriptions
    assert alice.session.credentials_expire_ms > 0
    denied = alice.subscribe("secret")
    alice.subscribe("room:1")
    sim.run(0.2)
    [error] = alice.of_type(ErrorReceived)
    assert (error.error.code, error.error.request_id) == (ErrorCode.SUBSCRIBE_DENIED, denied)
    assert "room:1" in session.subscriptions
    # Resumed on the other node: the same rules from the new Hello's credentials.
    sim.pin(alice, 1)
    sim.cut(alice)
    sim.run_until(lambda: alice.connected, timeout=10)
    resumed = sim.node(1).hub.get_session(alice.session.session_id)
    assert resumed is not None
    assert {"news", "room:1"} <= set(resumed.subscriptions)
    sim.run(7.0)  # past the expiry and the grace, never refreshed: 4010
    closed = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert CloseCode.TOKEN_EXPIRED in [e.code for e in closed]


def test_a_channel_a_resumed_session_gains_from_its_token_is_announced() -> None:
    # Alice's second token grants a channel the first did not ("alerts"): resumed on the other
    # node, she joins it there, and its members are told (presence JOIN), as for a fresh join.
    from sigma_core.hub import AuthAccept, AuthRequest, HubConfig, PresenceChanged
    from sigma_core.messages import PresenceAction

    grants = iter([("news",), ("news", "alerts")])

    def hook(request: AuthRequest) -> AuthAccept:
        if request.hello.auth_token != "alice":
            return AuthAccept(identity=request.hello.auth_token)
        return AuthAccept(identity="alice", channels=next(grants))

    sim = ClusterSimulation(2, HubConfig(authenticate=hook), seed=5)
    joins: list[tuple[str, str]] = []
    sim.on_hub_event(lambda e: joins.append((e.topic, e.session.identity))
                     if isinstance(e, PresenceChanged) and e.action is PresenceAction.JOIN
                     else None)
    alice = sim.add_client(client_config(auth_token="alice"), connect=False)
    sim.pin(alice, 0)
    alice.connect()
    sim.run_until(lambda: alice.connected)
    assert ("news", "alice") in joins
    assert ("alerts", "alice") not in joins
    sim.pin(alice, 1)
    sim.cut(alice)
    sim.run_until(lambda: alice.connected, timeout=10)
    resumed = sim.node(1).hub.get_session(alice.session.session_id)
    assert resumed is not None
    assert "alerts" in resumed.subscriptions
    assert ("alerts", "alice") in joins
    assert joins.count(("news", "alice")) == 1  # held before: not announced again


def test_cross_node_messages_carry_their_position_without_the_shared_frame() -> None:
    """Connections that cannot take the shared pre-built frame (permessage-deflate configured
    here; message mode under ASGI likewise) get the envelope: with the engine's position, not
    the placeholder the publishing node stored (which the client took as offset 0 and then
    dropped every later message of the topic as a duplicate)."""
    import dataclasses

    from sigma_core.hub import HubConfig
    from sigma_core.websocket import WebSocketConfig

    config = HubConfig()
    config = dataclasses.replace(config, connection=dataclasses.replace(
        config.connection, websocket=WebSocketConfig(compression=True)))
    sim = ClusterSimulation(2, config, seed=4)
    alice = connected_to(sim, 0)
    bob = connected_to(sim, 1)
    alice.subscribe("room")
    bob.subscribe("room")
    sim.run(0.2)
    sim.node(1).hub.publish("room", b"from B", sim.now)
    sim.run(0.05)
    sim.node(0).hub.publish("room", b"from A", sim.now)
    sim.run(0.2)
    for client in (alice, bob):
        assert client.payloads("room") == [b"from B", b"from A"]
        assert [m.position.offset for m in client.messages("room")] == [1, 2]
    assert alice.messages("room")[0].position.epoch != 0


def test_heads_checks_stretch_while_nothing_is_missed_and_tighten_on_a_hole() -> None:
    """The periodic heads check (the backstop for a delivery lost without a later message to
    reveal it) doubles its interval while it finds nothing, up to heads_interval_max (8 s):
    a quiet node with 1,000 inboxes no longer reads every head every second. A hole brings it
    back to heads_interval, and a dropped message is still delivered within the longest
    interval."""
    sim = ClusterSimulation(2, seed=9)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(0.2)
    before = sim.engine.executed.get("ReadHeads", 0)
    sim.run(60.0)
    checks = sim.engine.executed.get("ReadHeads", 0) - before
    # Node 0 and node 1 (which receives nothing: no check at all): 1, 2, 4, 8, 8, ... s.
    assert 6 <= checks <= 10, checks
    sim.drop_cross_node(1)
    sim.node(1).hub.publish("room", b"lost on the way", sim.now)
    sim.run_until(lambda: alice.payloads("room") == [b"lost on the way"], timeout=8.5)
    # Found by a check: the next ones start from heads_interval again (1, 2, 4 s: three in
    # the next 7.5 s, where the stretched interval would have made at most one).
    before = sim.engine.executed.get("ReadHeads", 0)
    sim.run(7.5)
    assert sim.engine.executed.get("ReadHeads", 0) - before >= 2
    assert alice.of_type(RecoveryFailed) == []


def test_the_driver_reporting_delivery_back_makes_the_hub_check_heads_at_once() -> None:
    sim = ClusterSimulation(2, seed=10)
    alice = connected_to(sim, 0)
    alice.subscribe("room")
    sim.run(30.0)  # the interval has stretched to 8 s
    sim.drop_cross_node(1)
    sim.node(1).hub.publish("room", b"published while deliveries were down", sim.now)
    sim.run(0.05)
    assert alice.payloads("room") == []
    hub = sim.node(0).hub
    hub.engine_status(True, "message delivery reconnected", sim.now)  # what sigma_redis says
    sim._pump_node(sim.node(0))
    sim.run(0.1)
    assert alice.payloads("room") == [b"published while deliveries were down"]


def test_publishes_and_deliveries_by_kind_are_counted_on_an_external_engine() -> None:
    """``sigmasockets_publishes_total``/``_deliveries_total`` on cluster nodes: a publish counts
    on the node that published it, a delivery on the node whose socket got the copy (the
    message came back through the engine), by topic kind (broadcast, inbox, topic)."""
    sim = ClusterSimulation(2, seed=3)
    alice = connected_to(sim, 0)
    bob = connected_to(sim, 1)
    carol = connected_to(sim, 1)
    for client in (alice, bob, carol):
        client.subscribe("room")
    sim.run(0.2)
    a, b = sim.node(0).hub.metrics, sim.node(1).hub.metrics
    before_a, before_b = list(a.deliveries), list(b.deliveries)
    sim.node(0).hub.publish("room", b"one", sim.now)
    sim.node(0).hub.broadcast(b"all", sim.now)
    sim.node(1).hub.send_to(alice.session.session_id, b"to alice", sim.now)
    sim.run(0.2)
    assert alice.payloads("$inbox")[-1:] == [b"to alice"]
    assert list(a.publishes) == [1, 0, 1]      # broadcast, inbox, topic
    assert list(b.publishes) == [0, 1, 0]
    assert [x - y for x, y in zip(a.deliveries, before_a, strict=True)] == [1, 1, 1]
    assert [x - y for x, y in zip(b.deliveries, before_b, strict=True)] == [2, 0, 2]
