"""Sessions, resume and replay, end to end through the simulator: client cores, hub, network.

Each named test is a failure mode users of other real-time systems report; the names say which.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import pytest
from build_support import pure_only

from sigma_core.backplane import HistoryLimits
from sigma_core.client import (
    BufferFullError,
    ClientConfig,
    ConnectionStatus,
    Disconnected,
    ErrorReceived,
    GaveUp,
    Reconnecting,
    RecoveryFailed,
    SessionReset,
    StatusChanged,
    SubscribedEvent,
)
from sigma_core.connection import ConnectionConfig
from sigma_core.errors import CloseCode, ErrorCode, LocalProtocolError
from sigma_core.hub import (
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClientConnected,
    ClientDisconnected,
    ClientMessage,
    HubConfig,
    PresenceChanged,
    SessionExpired,
)
from sigma_core.messages import PresenceAction, RecoveryStatus
from sigma_core.testing import Simulation, client_config, fast_reconnect

HB = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0)


def hub_config(**overrides: object) -> HubConfig:
    return replace(HubConfig(connection=HB), **overrides)  # type: ignore[arg-type]


def received(sim: Simulation) -> list[bytes]:
    return [e.payload for e in sim.hub_events if isinstance(e, ClientMessage)]


def test_connect_and_exchange_both_ways() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    connected = [e for e in sim.hub_events if isinstance(e, ClientConnected)]
    assert len(connected) == 1
    assert not connected[0].resumed
    session_id = connected[0].session.id
    assert alice.session.session_id == session_id

    alice.send(b"hi server")
    sim.hub.send_to(session_id, b"hi alice", sim.now)
    sim.hub.broadcast(b"hi all", sim.now)
    sim.run(1.0)
    assert received(sim) == [b"hi server"]
    assert alice.payloads() == [b"hi alice", b"hi all"]
    assert [m.topic for m in alice.messages()] == ["$inbox", "$all"]
    assert alice.session.pending_count == 0  # acked
    stats = sim.hub.stats(sim.now)
    assert stats.connected_clients == 1
    assert stats.messages_received == 1
    assert stats.messages_sent == 2


def test_send_to_interleaved_sessions_reaches_each_inbox_in_order() -> None:
    """send_to keeps the last session's inbox key (consecutive sends to one session build it
    once): sends that alternate, repeat and use an equal id from another string object still
    land in the right inbox, numbered from 1 in each, and a session that is gone is refused."""
    sim = Simulation(hub_config())
    alice, bob = sim.add_client(), sim.add_client()
    sim.run_until(lambda: alice.connected and bob.connected)
    a, b = alice.session.session_id, bob.session.session_id
    assert a is not None
    assert b is not None
    a_copy = "".join(list(a))  # equal, another object
    assert a_copy == a
    assert a_copy is not a
    order = [(a, b"a1"), (a, b"a2"), (b, b"b1"), (a_copy, b"a3"), (a, b"a4"), (b, b"b2"),
             (b, b"b3")]
    offsets: dict[str, list[int]] = {a: [], b: []}
    for sid, payload in order:
        offsets[sid if sid != a_copy else a].append(sim.hub.send_to(sid, payload, sim.now).offset)
    assert offsets == {a: [1, 2, 3, 4], b: [1, 2, 3]}
    sim.run(1.0)
    assert alice.payloads() == [b"a1", b"a2", b"a3", b"a4"]
    assert bob.payloads() == [b"b1", b"b2", b"b3"]
    with pytest.raises(LocalProtocolError, match="no session"):
        sim.hub.send_to(a + "x", b"nobody", sim.now)


def test_broadcast_with_exclusion_and_topics() -> None:
    sim = Simulation(hub_config())
    a, b, c = (sim.add_client() for _ in range(3))
    sim.run_until(lambda: a.connected and b.connected and c.connected)
    ids = [x.session.session_id for x in (a, b, c)]
    a.subscribe("room")
    b.subscribe("room")
    sim.run(0.5)
    sim.hub.broadcast(b"everyone but a", sim.now, exclude=[ids[0]])
    sim.hub.publish("room", b"room only", sim.now)
    sim.hub.send_where(lambda s: s.id == ids[2], b"just c", sim.now)
    sim.run(0.5)
    assert a.payloads() == [b"room only"]
    assert b.payloads() == [b"everyone but a", b"room only"]
    assert c.payloads() == [b"everyone but a", b"just c"]
    assert sim.hub.presence("room") == frozenset(ids[:2])


def test_recovery_after_long_quiet_period() -> None:
    """Resume works after a long idle connection and a long outage (within session_ttl)."""
    sim = Simulation(hub_config(session_ttl=3600, history=HistoryLimits(max_age=3600)))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.run(1800)  # half an hour of heartbeats only
    assert alice.connected
    sim.cut(alice)
    sim.hub.broadcast(b"while away", sim.now)
    sim.run(600)
    assert alice.connected
    assert alice.payloads() == [b"while away"]
    assert alice.of_type(SessionReset) == []
    assert [e.resumed for e in sim.hub_events if isinstance(e, ClientConnected)] == [False, True]


def test_recovery_on_first_reconnect_before_any_message() -> None:
    """A client that never received anything still has positions (from its Welcome) and
    recovers what was published while it was away."""
    sim = Simulation(hub_config())
    alice = sim.add_client()
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    assert alice.payloads() == []
    sim.cut(alice)
    sim.hub.publish("room", b"r1", sim.now)
    sim.hub.broadcast(b"b1", sim.now)
    sim.run(10)
    assert alice.connected
    assert sorted(alice.payloads()) == [b"b1", b"r1"]
    assert alice.of_type(RecoveryFailed) == []


def test_replay_not_repeated_after_second_reconnect() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.cut(alice)
    for i in range(5):
        sim.hub.broadcast(b"m%d" % i, sim.now)
    sim.run(10)
    assert alice.payloads() == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    sim.cut(alice)
    sim.run(10)
    sim.cut(alice)
    sim.hub.broadcast(b"m5", sim.now)
    sim.run(10)
    assert alice.payloads() == [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5"]
    assert alice.session.duplicates_dropped == 0


def test_takeover_by_a_second_connection() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    # A second client process resumes alice's session with her credentials.
    thief = sim.add_client(connect=False)
    thief.session.session_id = alice.session.session_id
    thief.session._token = alice.session._token
    thief.session.positions = dict(alice.session.positions)
    thief.connect()
    sim.run_until(lambda: thief.connected)
    disconnects = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert [d.code for d in disconnects] == [CloseCode.SESSION_TAKEN_OVER]
    taken = list(alice.of_type(Disconnected))
    assert taken[0].code == CloseCode.SESSION_TAKEN_OVER
    assert taken[0].goodbye is not None
    assert taken[0].goodbye.code == ErrorCode.SESSION_TAKEN_OVER
    assert [e.resumed for e in sim.hub_events if isinstance(e, ClientConnected)] == [False, True]
    sim.hub.send_to(alice.session.session_id, b"to the session", sim.now)
    sim.run(5)
    assert b"to the session" in thief.payloads()
    # The displaced client does not fight back: it gives up instead of taking the session again.
    assert alice.session.status is ConnectionStatus.ERROR
    assert alice.of_type(GaveUp)
    assert thief.connected
    assert len([e for e in sim.hub_events if isinstance(e, ClientConnected)]) == 2


def test_pongs_are_not_delayed_behind_a_data_backlog() -> None:
    """A link saturated with data is not declared dead, though the backlog in the socket
    takes far longer to drain than the heartbeat timeout: bytes arriving prove liveness,
    and heartbeats jump the queue the core holds while the socket is paused."""
    sim = Simulation(hub_config(outgoing_high_water=64 << 20), latency=0.05,
                     socket_buffer=64 * 1024)
    alice = sim.add_client(client_config(
        connection=ConnectionConfig(heartbeat_interval=1.0, heartbeat_timeout=3.0)))
    sim.run_until(lambda: alice.connected)
    sim.throttle(alice, 40_000)  # 40 kB/s
    for _ in range(200):
        sim.hub.broadcast(b"x" * 4000, sim.now)  # 800 kB: 20 s of backlog
    sim.run(1)
    assert sim.hub.connection_count() == 1
    sim.run(25)
    assert alice.connected
    assert alice.of_type(Disconnected) == []
    assert len(alice.messages()) == 200
    assert alice.session.rtt is not None


def test_reconnect_storm_is_spread_by_full_jitter() -> None:
    sim = Simulation(hub_config(), latency=0.001, chunking=False)
    config = client_config(reconnect=replace(fast_reconnect(), initial_delay=2.0,
                                             max_delay=30.0))
    clients = [sim.add_client(config) for _ in range(1000)]
    sim.run_until(lambda: all(c.connected for c in clients), timeout=30)
    sim.restart_server()
    sim.run(0.01)
    delays = [c.of_type(Reconnecting)[0].delay for c in clients]
    assert all(0 <= d < 2.0 for d in delays)
    # Full jitter: roughly uniform over [0, 2): no pile-up at any instant.
    buckets = [0] * 10
    for d in delays:
        buckets[int(d / 0.2)] += 1
    assert max(buckets) < 160, buckets  # uniform would be 100 per 200 ms
    assert 0.8 < statistics.mean(delays) < 1.2
    sim.run_until(lambda: all(c.connected for c in clients), timeout=60)
    assert all(c.of_type(SessionReset) for c in clients)  # the restart lost every session


def test_server_restart_is_never_a_silent_fresh_session() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    sim.hub.publish("room", b"before", sim.now)
    sim.run(1)
    old_id = alice.session.session_id
    sim.restart_server()
    sim.run_until(lambda: alice.connected, timeout=30)
    resets = alice.of_type(SessionReset)
    assert len(resets) == 1
    assert resets[0].old_session_id == old_id
    assert resets[0].reason
    failed = {e.topic for e in alice.of_type(RecoveryFailed)}
    assert failed == {"$all", "$inbox", "room"}
    # The fresh session kept the client's room, so the conversation goes on.
    sim.hub.publish("room", b"after", sim.now)
    sim.run(1)
    assert alice.payloads("room") == [b"before", b"after"]


def test_unacked_sends_survive_a_cut_and_are_not_duplicated() -> None:
    sim = Simulation(hub_config(ack_delay=10.0, ack_every=1000))  # acks held back
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    for i in range(10):
        alice.send(b"u%d" % i)
    sim.run(0.05)
    assert len(received(sim)) == 10
    assert alice.session.pending_count == 10  # not acked yet
    sim.cut(alice)
    for i in range(10, 15):
        alice.send(b"u%d" % i)  # queued while offline
    sim.run(10)
    assert alice.connected
    assert received(sim) == [b"u%d" % i for i in range(15)]
    assert sim.hub.stats(sim.now).duplicates_dropped == 0
    sim.run(20)
    assert alice.session.pending_count == 0


def test_send_buffer_is_bounded_with_a_clear_error() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client(client_config(max_pending=3), connect=False)
    for i in range(3):
        alice.send(b"%d" % i)
    with pytest.raises(BufferFullError, match="max_pending=3"):
        alice.send(b"overflow")
    alice.connect()
    sim.run_until(lambda: alice.connected)
    sim.run(1)
    assert received(sim) == [b"0", b"1", b"2"]
    alice.send(b"3")  # room again after the acks


def test_history_bound_crossed_reports_the_lost_range() -> None:
    sim = Simulation(hub_config(history=HistoryLimits(max_count=3)))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.cut(alice)
    for i in range(10):
        sim.hub.broadcast(b"%d" % i, sim.now)
    sim.run(10)
    failed = alice.of_type(RecoveryFailed)
    assert [(f.topic, f.lost_from, f.lost_to) for f in failed] == [("$all", 1, 10)]
    assert alice.payloads() == []  # all-or-nothing: no partial replay
    sim.hub.broadcast(b"live", sim.now)
    sim.run(1)
    assert alice.payloads() == [b"live"]
    assert sim.hub.stats(sim.now).failed_recoveries == 1


def test_session_expires_after_ttl_and_frees_everything() -> None:
    sim = Simulation(hub_config(session_ttl=60))
    alice = sim.add_client(client_config(reconnect=fast_reconnect(max_attempts=1)))
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    sid = alice.session.session_id
    sim.isolate(alice)
    sim.run(200)
    expired = [e for e in sim.hub_events if isinstance(e, SessionExpired)]
    assert [e.session.id for e in expired] == [sid]
    assert sim.hub.get_session(sid) is None
    assert sim.hub.presence("room") == frozenset()
    leaves = [e for e in sim.hub_events
              if isinstance(e, PresenceChanged) and e.action is PresenceAction.LEAVE]
    assert [(e.topic, e.session.id) for e in leaves] == [("room", sid)]
    assert alice.session.status is ConnectionStatus.ERROR
    assert alice.of_type(GaveUp)


def test_dead_server_detected_and_client_reconnects() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client(client_config(
        connection=ConnectionConfig(heartbeat_interval=2.0, heartbeat_timeout=5.0)))
    sim.run_until(lambda: alice.connected)
    t0 = sim.now
    sim.blackhole(alice)
    sim.run_until(lambda: bool(alice.of_type(Disconnected)), timeout=30)
    lost = alice.of_type(Disconnected)[0]
    assert lost.code == CloseCode.HEARTBEAT_TIMEOUT
    assert sim.now - t0 <= 12.0 + 0.1  # the server's advertised timeout governs
    sim.run_until(lambda: alice.connected, timeout=30)
    assert [e.resumed for e in sim.hub_events if isinstance(e, ClientConnected)] == [False, True]


def test_statuses_follow_the_original_connection_status() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.cut(alice)
    sim.run_until(lambda: alice.connected, timeout=30)
    alice.disconnect()
    sim.run(1)
    statuses = [e.status.value for e in alice.of_type(StatusChanged)]
    assert statuses == ["connecting", "connected", "reconnecting", "connected", "disconnected"]
    ended = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert ended[-1].session_ended
    assert len(sim.hub.sessions) == 0


def test_auth_hook_accepts_with_identity_and_refuses_with_4005() -> None:
    def auth(request: AuthRequest) -> AuthAccept | AuthRefuse:
        if request.hello.auth_token == "good":
            return AuthAccept(identity="alice", metadata={"role": "admin"})
        return AuthRefuse(message="bad token")

    sim = Simulation(hub_config(authenticate=auth))
    good = sim.add_client(client_config(auth_token="good"))
    bad = sim.add_client(client_config(auth_token="nope"))
    sim.run(5)
    assert good.connected
    session = sim.hub.get_session(good.session.session_id)
    assert session is not None
    assert (session.identity, session.metadata) == ("alice", {"role": "admin"})
    assert bad.session.status is ConnectionStatus.ERROR
    assert bad.of_type(GaveUp)[0].reason == "bad token"
    assert bad.of_type(Disconnected)[0].code == CloseCode.AUTH_FAILED


def test_metadata_given_on_resume_stays_with_its_session() -> None:
    # Sessions without metadata share one empty dict (memory per idle session): metadata a
    # resume brings must replace that dict for its session, never fill the shared one.
    grants: dict[str, dict[str, str]] = {}

    def auth(request: AuthRequest) -> AuthAccept:
        return AuthAccept(identity=request.hello.auth_token,
                          metadata=grants.get(request.hello.auth_token, {}))

    sim = Simulation(hub_config(authenticate=auth))
    plain = sim.add_client(client_config(auth_token="plain"))
    other = sim.add_client(client_config(auth_token="other"))
    sim.run_until(lambda: plain.connected and other.connected)
    grants["plain"] = {"role": "guest"}
    sim.cut(plain)
    sim.run_until(lambda: plain.connected and plain.session.session_id is not None, timeout=30)
    late = sim.add_client(client_config(auth_token="late"))
    sim.run_until(lambda: late.connected)
    hub = sim.hub
    metadata = {c: hub.get_session(c.session.session_id).metadata  # type: ignore[union-attr]
                for c in (plain, other, late)}
    assert metadata == {plain: {"role": "guest"}, other: {}, late: {}}
    assert hub.get_session(plain.session.session_id).identity == "plain"  # type: ignore[union-attr]


def test_max_connections_refused_at_handshake_with_503() -> None:
    sim = Simulation(hub_config(max_connections=2))
    clients = [sim.add_client(client_config(reconnect=fast_reconnect(max_attempts=1)))
               for _ in range(3)]
    sim.run(3)
    assert sum(c.connected for c in clients) == 2
    loser = next(c for c in clients if not c.connected)
    assert "HTTP 503" in loser.of_type(Disconnected)[0].reason


def test_slow_consumer_disconnected_and_catches_up_from_history() -> None:
    sim = Simulation(hub_config(outgoing_high_water=50_000), latency=0.01,
                     socket_buffer=16 * 1024)
    alice = sim.add_client()
    bob = sim.add_client()
    sim.run_until(lambda: alice.connected and bob.connected)
    sim.throttle(alice, 20_000)  # 20 kB/s while 40 kB/s is published
    for i in range(200):
        sim.hub.broadcast(b"%04d" % i + b"." * 1000, sim.now)
        sim.run(0.025)
    disconnects = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    # Still too slow after each resume, so possibly cut more than once: always alice, always
    # with the slow-consumer code, never ending her session.
    assert disconnects
    assert {d.code for d in disconnects} == {CloseCode.SLOW_CONSUMER}
    assert {d.session.id for d in disconnects} == {alice.session.session_id}
    assert not any(d.session_ended for d in disconnects)
    assert sim.hub.stats(sim.now).slow_consumer_disconnects == len(disconnects)
    sim.throttle(alice, None)  # the client's link recovers
    sim.run(10)
    assert alice.connected
    expected = [b"%04d" % i for i in range(200)]
    assert [p[:4] for p in alice.payloads()] == expected  # from history, in order, once
    assert [p[:4] for p in bob.payloads()] == expected  # the fast consumer was unaffected


def test_subscribe_errors_and_limits() -> None:
    sim = Simulation(hub_config(max_topics_per_session=1))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    alice.subscribe("one")
    alice.subscribe("two")
    sim.run(1)
    errors = alice.of_type(ErrorReceived)
    assert [e.error.code for e in errors] == [ErrorCode.TOO_MANY_TOPICS]
    assert alice.session.subscriptions == {"one"}
    subscribed = alice.of_type(SubscribedEvent)
    assert [s.recovery.status for s in subscribed] == [RecoveryStatus.FRESH]
    with pytest.raises(LocalProtocolError):
        alice.subscribe("$all")
    with pytest.raises(LocalProtocolError):
        sim.hub.publish("$inbox", b"x", sim.now)
    with pytest.raises(LocalProtocolError):
        sim.hub.send_to("nobody", b"x", sim.now)


def test_server_initiated_subscription_while_offline_is_replayed() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sid = alice.session.session_id
    sim.cut(alice)
    sim.hub.subscribe(sid, "news", sim.now)
    sim.hub.publish("news", b"n1", sim.now)
    sim.run(10)
    assert alice.connected
    assert alice.payloads("news") == [b"n1"]
    assert "news" in alice.session.subscriptions


def test_unsubscribe_stops_delivery() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    alice.unsubscribe("room")
    sim.run(1)
    sim.hub.publish("room", b"gone", sim.now)
    sim.run(1)
    assert alice.payloads() == []
    assert sim.hub.presence("room") == frozenset()


def test_graceful_shutdown_sends_goodbye_with_reconnect_hint() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.hub.shutdown(sim.now, reconnect_after_ms=3000)
    sim.run(0.5)
    lost = alice.of_type(Disconnected)[0]
    assert lost.code == CloseCode.GOING_AWAY
    assert lost.goodbye is not None
    assert lost.goodbye.reconnect_after_ms == 3000
    assert alice.of_type(Reconnecting)[0].delay >= 3.0


def test_client_config_validation() -> None:
    with pytest.raises(ValueError, match="ws://"):
        ClientConfig(url="http://example.com/")
    with pytest.raises(ValueError, match="max_pending"):
        ClientConfig(url="ws://h/", max_pending=0)
    with pytest.raises(ValueError, match="max_connections"):
        HubConfig(max_connections=0)


@pure_only("a compiled class's methods cannot be replaced on an instance")
def test_unsupported_protocol_version_refused_with_4004() -> None:
    from sigma_core.messages import Hello

    sim = Simulation(hub_config())
    client = sim.add_client(client_config(reconnect=fast_reconnect(max_attempts=1)),
                            connect=False)
    original = client.session._hello
    client.session._hello = lambda: replace(original(), protocol_version=2)  # type: ignore[method-assign]
    client.connect()
    sim.run(2)
    lost = client.of_type(Disconnected)[0]
    assert lost.code == CloseCode.UNSUPPORTED_VERSION
    assert lost.goodbye is not None
    assert lost.goodbye.code == ErrorCode.UNSUPPORTED_VERSION
    assert client.session.status is ConnectionStatus.ERROR  # no point retrying
    assert isinstance(original(), Hello)


def test_max_sessions_refused_with_1013_and_a_retry_hint() -> None:
    sim = Simulation(hub_config(max_sessions=1))
    first = sim.add_client()
    sim.run_until(lambda: first.connected)
    second = sim.add_client(client_config(reconnect=fast_reconnect(max_attempts=1)))
    sim.run(1)
    lost = second.of_type(Disconnected)[0]
    assert lost.code == CloseCode.TRY_AGAIN_LATER
    assert lost.goodbye is not None
    assert lost.goodbye.code == ErrorCode.LIMIT_EXCEEDED
    assert lost.goodbye.reconnect_after_ms == 5000
    assert second.of_type(Reconnecting)[0].delay >= 5.0
    assert first.connected


def test_client_drops_a_duplicate_delivery() -> None:
    """Defence in depth: should a message at or before a known position arrive again (a
    replay overlapping a live delivery), the client drops it rather than deliver it twice."""
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.hub.broadcast(b"once", sim.now)
    sim.run(0.1)
    session = sim.hub.get_session(alice.session.session_id)
    assert session is not None
    entries = sim.hub._engine.read_after("$all", session.subscriptions["$all"], sim.now)
    assert isinstance(entries, list)
    rec = sim.hub._rec_of(session)
    assert rec is not None
    sim.hub._deliver(rec, entries[0].envelope)  # the same envelope again
    sim.run(0.1)
    assert alice.payloads() == [b"once"]
    assert alice.session.duplicates_dropped == 1


def test_history_age_bound_reports_loss_after_a_long_outage() -> None:
    sim = Simulation(hub_config(history=HistoryLimits(max_age=30.0), session_ttl=600))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.isolate(alice)
    sim.hub.broadcast(b"old news", sim.now)
    sim.run(60)  # the message ages out of history while alice is away
    sim.hub.broadcast(b"fresh", sim.now)
    sim.heal(alice)
    sim.run_until(lambda: alice.connected and bool(alice.of_type(RecoveryFailed)), timeout=60)
    failed = alice.of_type(RecoveryFailed)
    assert [(f.topic, f.lost_from, f.lost_to) for f in failed] == [("$all", 1, 2)]
    assert alice.payloads() == []  # all-or-nothing: "fresh" is gone with the lost range
    assert alice.of_type(SessionReset) == []  # the session itself survived


def test_presence_notifications_reach_other_members() -> None:
    from sigma_core.client import PresenceReceived

    sim = Simulation(hub_config(presence_notifications=True))
    alice, bob = sim.add_client(), sim.add_client()
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    bob.subscribe("room")
    sim.run_until(lambda: bob.connected and "room" in bob.session.positions)
    bob.unsubscribe("room")
    sim.run(0.5)
    seen = [(p.presence.action, p.presence.session_id) for p in alice.of_type(PresenceReceived)]
    bob_id = bob.session.session_id
    assert seen == [(PresenceAction.JOIN, bob_id), (PresenceAction.LEAVE, bob_id)]
    assert bob.of_type(PresenceReceived) == []  # nobody else was there to announce


def test_stats_count_bytes_and_resumes() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    alice.send(b"x" * 500)
    sim.hub.broadcast(b"y" * 700, sim.now)
    sim.run(0.5)
    sim.cut(alice)
    sim.run(10)
    stats = sim.hub.stats(sim.now)
    assert stats.resumes == 1
    assert stats.total_connections == 2
    assert stats.bytes_received > 500
    assert stats.bytes_sent > 700
    assert stats.uptime == pytest.approx(sim.now)
    assert stats.average_latency == pytest.approx(0.01, abs=0.005)  # 2 x 5 ms latency


def test_resume_token_never_appears_in_reprs() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    session = sim.hub.get_session(alice.session.session_id)
    assert session is not None
    token = alice.session._token
    assert len(token) == 32
    for text in (repr(session), str(session), repr(sim.hub_events)):
        assert token.hex() not in text
        assert repr(token) not in text


def test_oversized_sends_are_refused_locally_on_both_sides() -> None:
    """A message the peer would refuse (1009) is an error at the call, never a message that
    gets retransmitted into a close after every reconnect."""
    from sigma_core.websocket import WebSocketConfig

    small = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0,
                             websocket=WebSocketConfig(max_message_size=2048))
    sim = Simulation(hub_config(connection=small, max_topics_per_session=1,
                                max_topic_length=64))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    with pytest.raises(LocalProtocolError, match="too large"):
        alice.send(b"x" * 2000)  # the server's limit, learnt from its Welcome
    alice.send(b"x" * 1800)
    with pytest.raises(LocalProtocolError, match="too large"):
        sim.hub.broadcast(b"y" * 2000, sim.now)
    sim.run(1)
    assert received(sim) == [b"x" * 1800]
    assert alice.connected


def test_server_kick_ends_the_session_and_the_client_stays_away() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sid = alice.session.session_id
    sim.hub.disconnect(sid, sim.now, reason="kicked")
    sim.run(10)
    ended = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert [(e.reason, e.session_ended) for e in ended] == [("kicked", True)]
    assert sim.hub.get_session(sid) is None
    lost = alice.of_type(Disconnected)[0]
    assert lost.goodbye is not None
    assert lost.goodbye.code == ErrorCode.NORMAL
    assert not lost.will_reconnect
    assert alice.session.status is ConnectionStatus.DISCONNECTED
    assert len(sim.hub.sessions) == 0  # it did not come back
    assert not alice.of_type(GaveUp)  # not an error


def test_server_drop_keeps_the_session_and_the_client_resumes() -> None:
    sim = Simulation(hub_config())
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sid = alice.session.session_id
    sim.hub.disconnect(sid, sim.now, reason="rebalance", end_session=False)
    sim.hub.send_to(sid, b"kept", sim.now)
    sim.run(10)
    assert alice.connected
    assert alice.session.session_id == sid
    assert alice.payloads() == [b"kept"]
    assert [e.resumed for e in sim.hub_events if isinstance(e, ClientConnected)] == [False, True]


def test_subscribe_authorization_hook() -> None:
    sim = Simulation(hub_config(authorize_subscribe=lambda s, topic: topic != "admin"))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    alice.subscribe("admin")
    alice.subscribe("lobby")
    sim.run(1)
    assert [e.error.code for e in alice.of_type(ErrorReceived)] == [ErrorCode.SUBSCRIBE_DENIED]
    assert alice.session.subscriptions == {"lobby"}
    assert sim.hub.presence("admin") == frozenset()


def test_client_running_past_max_unacked_is_closed_with_4009() -> None:
    sim = Simulation(hub_config(max_unacked=5, ack_every=100, ack_delay=60))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    alice.session._max_unacked = 1000  # white-box: a client ignoring Welcome.limits
    for i in range(6):
        alice.send(b"%d" % i)
    sim.run(0.5)
    disconnects = [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]
    assert [e.code for e in disconnects] == [CloseCode.LIMIT_EXCEEDED]
    # The sixth was refused, not lost: the resume's Welcome acknowledges the first five and the
    # client (now held to the limit again) sends it once more.
    sim.run(5)
    assert received(sim) == [b"%d" % i for i in range(6)]


def test_well_behaved_client_respects_max_unacked() -> None:
    sim = Simulation(hub_config(max_unacked=5, ack_every=100, ack_delay=0.5))
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    for i in range(20):
        alice.send(b"%d" % i)
    sim.run(5)
    assert received(sim) == [b"%d" % i for i in range(20)]
    assert not [e for e in sim.hub_events if isinstance(e, ClientDisconnected)]


def test_flush_says_how_to_close_each_socket() -> None:
    from sigma_core.hub import CloseAction

    sim = Simulation(hub_config(outgoing_high_water=10_000))
    alice, bob = sim.add_client(), sim.add_client()
    sim.run_until(lambda: alice.connected and bob.connected)
    hub = sim.hub
    assert alice.link is not None
    assert bob.link is not None
    slow, polite = alice.link.conn_id, bob.link.conn_id
    assert slow is not None
    assert polite is not None
    # A paused socket piling up output is dropped at once: its buffer would never drain.
    hub.pause_writing(slow)
    for _ in range(20):
        hub.broadcast(b"z" * 1000, sim.now)
    actions = {conn_id: action for conn_id, _, action in hub.flush(sim.now)}
    assert actions[slow] is CloseAction.ABORT
    assert actions[polite] is CloseAction.NONE
    # A graceful close waits for the peer's close frame (which never comes here)...
    hub.disconnect(bob.session.session_id, sim.now)
    actions = {conn_id: action for conn_id, _, action in hub.flush(sim.now)}
    assert actions[polite] is CloseAction.NONE
    # ...until close_timeout: then the socket is closed, letting what was written drain...
    later = sim.now + HB.close_timeout
    hub.handle_timer(later)
    actions = {conn_id: action for conn_id, _, action in hub.flush(later)}
    assert actions[polite] is CloseAction.CLOSE
    # ...and a socket still there close_timeout after that is dropped.
    hub.handle_timer(later + HB.close_timeout)
    actions = {conn_id: action for conn_id, _, action in hub.flush(later + HB.close_timeout)}
    assert actions[polite] is CloseAction.ABORT


def test_a_raising_hook_refuses_the_client_and_the_hub_carries_on() -> None:
    from sigma_core.hub import HookFailed

    def broken_auth(request: AuthRequest) -> AuthAccept | AuthRefuse:
        if request.hello.auth_token == "boom":
            raise RuntimeError("database down")
        return AuthAccept()

    def broken_authorize(session: object, topic: str) -> bool:
        raise KeyError(topic)

    sim = Simulation(hub_config(authenticate=broken_auth, authorize_subscribe=broken_authorize))
    ok = sim.add_client()
    boom = sim.add_client(client_config(auth_token="boom",
                                        reconnect=fast_reconnect(max_attempts=1)))
    sim.run(1)
    assert ok.connected
    assert boom.of_type(Disconnected)[0].code == CloseCode.INTERNAL_ERROR
    ok.subscribe("room")
    sim.run(1)
    assert [e.error.code for e in ok.of_type(ErrorReceived)] == [ErrorCode.SUBSCRIBE_DENIED]
    failures = [e for e in sim.hub_events if isinstance(e, HookFailed)]
    assert [(f.hook, type(f.error)) for f in failures][:1] == [("authenticate", RuntimeError)]
    assert ("authorize_subscribe", KeyError) in [(f.hook, type(f.error)) for f in failures]
    assert ok.connected


def test_unsubscribe_while_offline_does_not_replay_the_topic_on_resume() -> None:
    """Found by the state-machine test: an unsubscribe made while offline used to drop the
    topic's position, so the resume replayed the topic from its start (a duplicate), and the
    Unsubscribe itself was never sent."""
    sim = Simulation(hub_config())
    alice = sim.add_client()
    alice.subscribe("room")
    sim.run_until(lambda: alice.connected and "room" in alice.session.positions)
    sim.hub.publish("room", b"r1", sim.now)
    sim.run(0.5)
    sim.cut(alice)
    alice.unsubscribe("room")
    sim.hub.publish("room", b"r2", sim.now)  # published before the server hears of it
    sim.run(10)
    assert alice.connected
    assert alice.payloads("room") == [b"r1"]  # r1 once; nothing after the unsubscribe
    assert sim.hub.presence("room") == frozenset()  # the Unsubscribe reached the server
    assert "room" not in alice.session.positions
    sim.hub.publish("room", b"r3", sim.now)
    sim.run(1)
    assert alice.payloads("room") == [b"r1"]


def test_data_in_the_same_read_as_the_goodbye_is_not_lost() -> None:
    """Found by reading the fuzz targets' hub: a Data envelope followed in the same read by
    the client's Goodbye and close frame was dropped, and after a normal Goodbye it is never
    resent."""
    from sigma_core.connection import ClientConnection, Welcomed
    from sigma_core.entropy import SeededEntropy
    from sigma_core.hub import Hub
    from sigma_core.messages import Data, Goodbye

    hub = Hub(hub_config(), entropy=SeededEntropy(5), now=0.0)
    conn_id = hub.open_connection(0.0)
    client = ClientConnection(host="h", now=0.0)
    for _ in range(5):  # handshake and Hello/Welcome
        out = b"".join(client.data_to_send())
        if out:
            hub.receive_data(conn_id, out, 0.0)
        for _, chunks, _ in hub.flush(0.0):
            client.receive_data(b"".join(chunks), 0.0)
    assert any(isinstance(e, Welcomed) for e in client.events_received())
    client.send(Data(seq=1, payload=b"last words"))
    client.close(goodbye=Goodbye(code=ErrorCode.NORMAL), now=0.0)
    hub.receive_data(conn_id, b"".join(client.data_to_send()), 0.0)  # one read
    events = hub.events_received()
    assert [e.payload for e in events if isinstance(e, ClientMessage)] == [b"last words"]
    assert [e.session_ended for e in events if isinstance(e, ClientDisconnected)] == [True]


def test_a_max_message_size_too_small_for_a_welcome_is_a_config_error() -> None:
    """Found by fuzzing: with 100 topics of 253 bytes a Welcome outgrew an 8 KiB limit and
    raised out of receive_data. Now the combination is refused when the config is made."""
    from sigma_core.websocket import WebSocketConfig

    tiny = ConnectionConfig(websocket=WebSocketConfig(max_message_size=8192))
    with pytest.raises(ValueError, match="too small for a Welcome"):
        HubConfig(connection=tiny)
    HubConfig(connection=tiny, max_topics_per_session=10)  # fits


def test_the_welcome_size_bound_holds_for_a_full_session() -> None:
    from sigma_core import codec
    from sigma_core.messages import Limits, StreamPosition, TopicRecovery, Welcome

    config = HubConfig(max_topics_per_session=20, max_topic_length=200)
    big = StreamPosition(2**64 - 1, 2**64 - 1)
    topics = ["$all", "$inbox"] + ["t" * 197 + f"{i:03d}" for i in range(20)]
    welcome = Welcome(
        session_id="f" * 24, resume_token=b"k" * config.resume_token_bytes, resumed=True,
        recovery=tuple(TopicRecovery(topic=t, status=RecoveryStatus.FAILED, position=big,
                                     lost_from=2**64 - 1, lost_to=2**64 - 1,
                                     replayed=2**64 - 1) for t in topics),
        last_received_seq=2**64 - 1, heartbeat_interval_ms=2**32 - 1,
        heartbeat_timeout_ms=2**32 - 1, server_time_ms=2**64 - 1,
        limits=Limits(max_message_size=2**32 - 1, max_unacked=2**32 - 1, max_topics=2**32 - 1,
                      max_messages_per_second=2**32 - 1, max_bytes_per_second=2**32 - 1),
        fresh_reason="session could not be resumed: unknown, expired or wrong token")
    assert len(codec.encode(welcome)) + 14 <= config.welcome_size_bound()


def test_subscription_that_would_outgrow_the_resuming_hello_is_refused_at_the_call() -> None:
    """The Hello carries one position per topic; a subscription list it cannot carry within
    the message limit would make every reconnect fail with 1009. It is refused at
    ``subscribe()`` instead, and the topics already subscribed keep working across a cut."""
    from sigma_core.websocket import WebSocketConfig

    small = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0,
                             websocket=WebSocketConfig(max_message_size=4096))
    sim = Simulation(hub_config())
    alice = sim.add_client(client_config(connection=small))
    sim.run_until(lambda: alice.connected)
    accepted: list[str] = []
    topics = iter(f"{n:03d}-" + "t" * 200 for n in range(100))
    while len(accepted) < 100:
        topic = next(topics)
        try:
            alice.subscribe(topic)
        except LocalProtocolError as exc:
            assert "Hello that resumes" in str(exc)  # noqa: PT017
            break
        accepted.append(topic)
    assert 5 < len(accepted) < 20
    assert alice.session.subscriptions == set(accepted)
    sim.run(1)
    for topic in accepted:
        sim.hub.publish(topic, topic.encode()[:3], sim.now)
    sim.run(1)
    sim.cut(alice)
    sim.run(5)
    assert alice.connected
    assert alice.session.resumed
    for topic in accepted:
        sim.hub.publish(topic, b"after", sim.now)
    sim.run(1)
    assert alice.payloads().count(b"after") == len(accepted)
    assert len(alice.payloads()) == 2 * len(accepted)  # nothing lost or replayed twice
    assert not alice.of_type(RecoveryFailed)
    assert not alice.of_type(SessionReset)


def test_auth_token_too_large_for_any_hello_is_refused_when_the_client_is_made() -> None:
    from sigma_core.client import ClientSession
    from sigma_core.entropy import SeededEntropy
    from sigma_core.websocket import WebSocketConfig

    small = ConnectionConfig(websocket=WebSocketConfig(max_message_size=1024))
    with pytest.raises(LocalProtocolError, match="auth_token or client info too large"):
        ClientSession(client_config(connection=small, auth_token="k" * 2000),
                      entropy=SeededEntropy(1))
    ClientSession(client_config(connection=small, auth_token="k" * 500), entropy=SeededEntropy(1))
