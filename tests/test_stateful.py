"""Random sends, subscriptions, cuts at arbitrary byte offsets, clock jumps, expiries and server
restarts: after every step nothing is duplicated or reordered, and after every settle nothing
was lost without an explicit event saying so (RecoveryFailed for the topic, or SessionReset)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sigma_core import codec
from sigma_core.backplane import HistoryLimits
from sigma_core.client import BufferFullError, Connected, RecoveryFailed, SessionReset
from sigma_core.connection import ConnectionConfig
from sigma_core.engine import HistoryEntry, decode_session_record
from sigma_core.hub import INBOX_TOPIC, ClientMessage, Hub, HubConfig
from sigma_core.messages import Data
from sigma_core.testing import (
    ClusterSimulation,
    SimClient,
    Simulation,
    client_config,
    fast_reconnect,
)

N_CLIENTS = 3
ROOMS = ("room1", "room2")
clients_ = st.integers(min_value=0, max_value=N_CLIENTS - 1)


@dataclass
class Published:
    topic: str
    payload: bytes
    time: float
    recipients: frozenset[str]
    counter: int
    order: int = 0


@dataclass
class Incarnation:
    """What one hub process received, per session: payload numbers in arrival order."""

    received: dict[str, list[int]] = field(default_factory=dict)


def _number(payload: bytes) -> int:
    return int(payload.split(b"-")[1])


class SessionsMachine(RuleBasedStateMachine):
    @initialize(seed=st.integers(min_value=0, max_value=2**16),
                history=st.sampled_from([5, 50]))
    def setup(self, seed: int, history: int) -> None:
        self.config = HubConfig(
            connection=ConnectionConfig(heartbeat_interval=2.0, heartbeat_timeout=5.0),
            history=HistoryLimits(max_count=history, max_age=60.0),
            session_ttl=20.0, ack_every=4, ack_delay=0.2)
        self.sim = Simulation(self.config, seed=seed, latency=0.003)
        cfg = client_config(reconnect=fast_reconnect(), max_pending=50,
                            connection=ConnectionConfig(heartbeat_interval=2.0,
                                                        heartbeat_timeout=5.0))
        self.clients: list[SimClient] = [self.sim.add_client(cfg) for _ in range(N_CLIENTS)]
        self.sim.run_until(lambda: all(c.connected for c in self.clients))
        self.counter = 0
        self.sent: list[list[int]] = [[] for _ in range(N_CLIENTS)]
        self.next_number = [1] * N_CLIENTS
        self.published: list[Published] = []
        # (client, room) -> [(order, wanted)]: the app's subscribe/unsubscribe calls, in the
        # same order as publishes (Published.order), so "wanted when published" is exact.
        self.intents: dict[tuple[int, str], list[tuple[int, bool]]] = {}
        self.order = 0
        self.incarnations: list[Incarnation] = [Incarnation()]
        self.seen_hub_events = 0

    # ------------------------------------------------------------------ rules

    @rule(i=clients_)
    def client_sends(self, i: int) -> None:
        n = self.next_number[i]
        try:
            self.clients[i].send(b"c%d-%d" % (i, n))
        except BufferFullError:
            return
        self.next_number[i] += 1
        self.sent[i].append(n)

    @rule(topic=st.sampled_from(("$all", *ROOMS)))
    def server_publishes(self, topic: str) -> None:
        hub = self.sim.hub
        self.counter += 1
        payload = b"s-%d" % self.counter
        recipients = hub.presence(topic)
        if topic == "$all":
            hub.broadcast(payload, self.sim.now)
        else:
            hub.publish(topic, payload, self.sim.now)
        self.order += 1
        self.published.append(Published(topic, payload, self.sim.now, recipients, self.counter,
                                        self.order))

    @rule(i=clients_)
    def server_sends_to_inbox(self, i: int) -> None:
        sid = self.clients[i].session.session_id
        hub = self.sim.hub
        if hub.get_session(sid) is None:
            return
        self.counter += 1
        payload = b"s-%d" % self.counter
        hub.send_to(sid, payload, self.sim.now)
        self.order += 1
        self.published.append(Published(INBOX_TOPIC, payload, self.sim.now, frozenset({sid}),
                                         self.counter, self.order))

    @rule(i=clients_, room=st.sampled_from(ROOMS))
    def subscribe(self, i: int, room: str) -> None:
        if room not in self.clients[i].session.subscriptions:
            self.clients[i].subscribe(room)
            self._intent(i, room, wanted=True)

    @rule(i=clients_, room=st.sampled_from(ROOMS))
    def unsubscribe(self, i: int, room: str) -> None:
        if room in self.clients[i].session.subscriptions:
            self.clients[i].unsubscribe(room)
            self._intent(i, room, wanted=False)

    def _intent(self, i: int, room: str, *, wanted: bool) -> None:
        self.order += 1
        self.intents.setdefault((i, room), []).append((self.order, wanted))

    def _wanted_throughout(self, i: int, topic: str, since: int) -> bool:
        """The app wanted ``topic`` when the message was published and never left it since
        (what it unsubscribed from it need not receive, whatever the server knew then)."""
        if topic.startswith("$"):
            return True
        changes = self.intents.get((i, topic), [])
        wanted_then = False
        for order, wanted in changes:
            if order <= since:
                wanted_then = wanted
        return wanted_then and all(wanted for order, wanted in changes if order > since)

    @rule(i=clients_, after=st.integers(min_value=0, max_value=3000))
    def cut(self, i: int, after: int) -> None:
        self.sim.cut(self.clients[i], after)

    @rule(i=clients_)
    def isolate(self, i: int) -> None:
        self.sim.isolate(self.clients[i])

    @rule(i=clients_)
    def heal(self, i: int) -> None:
        self.sim.heal(self.clients[i])

    @rule(dt=st.sampled_from([0.001, 0.01, 0.1, 1.0, 4.0]))
    def run(self, dt: float) -> None:
        self.sim.run(dt)

    @rule(dt=st.sampled_from([10.0, 30.0]))
    def clock_jump(self, dt: float) -> None:
        self.sim.run(dt)

    @rule()
    def restart_server(self) -> None:
        self._collect_hub_events()
        self.sim.restart_server()
        self.incarnations.append(Incarnation())

    @rule()
    def settle(self) -> None:
        """Heal everything, let it converge, then check that nothing was lost silently."""
        for client in self.clients:
            self.sim.heal(client)
        # Long enough for every dead link to be noticed (heartbeat timeout 5 s) and for the
        # reconnect backoff (capped at 5 s) to come round, then until all are back.
        self.sim.run(12.0)
        self.sim.run_until(lambda: all(c.connected for c in self.clients), timeout=120)
        self.sim.run(5.0)
        self._check_complete()

    # ------------------------------------------------------------------ checks

    def _collect_hub_events(self) -> None:
        events = self.sim.hub_events[self.seen_hub_events:]
        self.seen_hub_events = len(self.sim.hub_events)
        current = self.incarnations[-1]
        for event in events:
            if isinstance(event, ClientMessage):
                current.received.setdefault(event.session.id, []).append(
                    _number(event.payload))

    @invariant()
    def no_duplicates_and_order_kept(self) -> None:
        if not hasattr(self, "sim"):
            return
        self._collect_hub_events()
        # client -> server: within one session of one hub process, strictly increasing
        for incarnation in self.incarnations:
            for numbers in incarnation.received.values():
                assert numbers == sorted(set(numbers)), numbers
        # server -> client: per topic, strictly increasing publish counters
        for client in self.clients:
            per_topic: dict[str, list[int]] = {}
            for msg in client.messages():
                per_topic.setdefault(msg.topic, []).append(int(msg.payload.split(b"-")[1]))
            for topic, counters in per_topic.items():
                assert counters == sorted(set(counters)), (client.name, topic, counters)

    @invariant()
    def never_a_silent_fresh_session(self) -> None:
        if not hasattr(self, "sim"):
            return
        for client in self.clients:
            sessions_seen: list[str] = []
            for _, event in client.timeline:
                if isinstance(event, SessionReset):
                    assert sessions_seen
                    assert event.old_session_id == sessions_seen[-1]
                    sessions_seen.append(event.new_session_id)
                elif isinstance(event, Connected):
                    sid = event.session_id
                    if not sessions_seen:
                        sessions_seen.append(sid)
                    else:
                        # every Connected names the session we hold: no silent switch
                        assert sid == sessions_seen[-1], (client.name, sid, sessions_seen)

    def _check_complete(self) -> None:
        self._collect_hub_events()
        # client -> server: everything sent arrived in some hub process (sends are never lost)
        for i in range(N_CLIENTS):
            mine = set(self.sent[i])
            sessions = self._sessions_of(i)
            got = {n for inc in self.incarnations for sid, nums in inc.received.items()
                   for n in nums if sid in sessions}
            assert mine <= got, (i, sorted(mine - got))
            assert self.clients[i].session.pending_count == 0
        # server -> client: what a session was owed arrived, or an event says it was lost
        for i, client in enumerate(self.clients):
            sessions = self._sessions_of(i)
            received = {m.payload for m in client.messages()}
            for pub in self.published:
                if not (pub.recipients & sessions) or pub.payload in received:
                    continue
                if not self._wanted_throughout(i, pub.topic, pub.order):
                    continue
                excused = any(
                    t >= pub.time and (
                        (isinstance(e, RecoveryFailed) and e.topic == pub.topic)
                        or isinstance(e, SessionReset))
                    for t, e in client.timeline)
                assert excused, (client.name, pub)

    def _sessions_of(self, i: int) -> set[str]:
        ids = set()
        for _, event in self.clients[i].timeline:
            sid = getattr(event, "session_id", None)
            if isinstance(sid, str) and sid:
                ids.add(sid)
            if isinstance(event, SessionReset):
                ids.add(event.new_session_id)
        return ids

    def teardown(self) -> None:
        if hasattr(self, "sim"):
            self.settle()


TestSessions = SessionsMachine.TestCase
TestSessions.settings = settings(max_examples=30, stateful_step_count=40, deadline=None)


# ----------------------------------------------------------------------------- the cluster


class ClusterMachine(SessionsMachine):
    """The same clients and checks on 2-3 nodes sharing a simulated engine, plus node crashes
    (memory gone), drains, engine outages and clients moving between nodes; and across nodes:
    what a topic's subscribers on any node are owed arrives once, in position order."""

    @initialize(seed=st.integers(min_value=0, max_value=2**16),
                history=st.sampled_from([5, 50]), nodes=st.sampled_from([2, 3]))
    def setup(self, seed: int, history: int, nodes: int) -> None:
        self.config = HubConfig(
            connection=ConnectionConfig(heartbeat_interval=2.0, heartbeat_timeout=5.0),
            history=HistoryLimits(max_count=history, max_age=60.0),
            session_ttl=20.0, ack_every=4, ack_delay=0.2)
        self.cluster = ClusterSimulation(nodes, self.config, seed=seed, latency=0.003)
        self.sim = self.cluster
        cfg = client_config(reconnect=fast_reconnect(), max_pending=50,
                            connection=ConnectionConfig(heartbeat_interval=2.0,
                                                        heartbeat_timeout=5.0))
        self.clients = [self.cluster.add_client(cfg) for _ in range(N_CLIENTS)]
        self.cluster.run_until(lambda: all(c.connected for c in self.clients), timeout=60)
        self.counter = 0
        self.sent = [[] for _ in range(N_CLIENTS)]
        self.next_number = [1] * N_CLIENTS
        self.published = []
        self.intents = {}
        self.order = 0
        self.incarnations = [Incarnation()]
        self.seen_hub_events = 0
        self.by_source: dict[tuple[str, int], Incarnation] = {}
        # What the engine stored: a publish on a node that died before its append reached
        # the engine was never accepted (the app on that node saw no position for it).
        self.stored: set[bytes] = set()
        store = self.cluster.engine.store
        fan_out = store.on_append

        def appended(topic: str, entry: HistoryEntry) -> None:
            body = codec.decode(entry.envelope)
            assert isinstance(body, Data)
            self.stored.add(bytes(body.payload))
            if fan_out is not None:
                fan_out(topic, entry)

        store.on_append = appended

    def _hub(self, pick: int) -> Hub | None:
        alive = [n for n in self.cluster.nodes if n.alive]
        return alive[pick % len(alive)].hub if alive and self.cluster.engine.up else None

    def _subscribed_anywhere(self, topic: str) -> frozenset[str]:
        """Sessions subscribed to ``topic`` as the cluster knows it: members on live nodes,
        and sessions whose node died (their engine record lists the topic)."""
        members: set[str] = set()
        for node in self.cluster.nodes:
            if node.alive:
                members |= node.hub.presence(topic)
        for sid, stored in self.cluster.engine.store._sessions.items():
            record = decode_session_record(stored.record, sid)
            if any(t == topic for t, _ in record.subscriptions):
                members.add(sid)
        return frozenset(members)

    @rule(topic=st.sampled_from(("$all", *ROOMS)), pick=st.integers(0, 2))
    def server_publishes(self, topic: str, pick: int = 0) -> None:
        hub = self._hub(pick)
        if hub is None:
            return
        self.counter += 1
        payload = b"s-%d" % self.counter
        recipients = self._subscribed_anywhere(topic) if topic != "$all" else frozenset(
            c.session.session_id for c in self.clients if c.session.session_id)
        if topic == "$all":
            hub.broadcast(payload, self.cluster.now)
        else:
            hub.publish(topic, payload, self.cluster.now)
        self.order += 1
        self.published.append(Published(topic, payload, self.cluster.now, recipients, self.counter,
                                        self.order))

    @rule(i=clients_, pick=st.integers(0, 2))
    def server_sends_to_inbox(self, i: int, pick: int = 0) -> None:
        sid = self.clients[i].session.session_id
        hub = self._hub(pick)
        if hub is None or not sid:
            return
        self.counter += 1
        payload = b"s-%d" % self.counter
        hub.send_to(sid, payload, self.cluster.now)
        self.order += 1
        self.published.append(Published(INBOX_TOPIC, payload, self.cluster.now, frozenset({sid}),
                                         self.counter, self.order))

    @rule()
    def restart_server(self) -> None:
        pass  # a cluster's nodes crash one at a time (crash_node)

    @rule(pick=st.integers(0, 2))
    def crash_node(self, pick: int) -> None:
        alive = [n for n in self.cluster.nodes if n.alive]
        if len(alive) < 2:
            return
        self.cluster.crash_node(alive[pick % len(alive)].name)

    @rule(pick=st.integers(0, 2))
    def restart_node(self, pick: int) -> None:
        down = [n for n in self.cluster.nodes if not n.alive]
        if down:
            self.cluster.restart_node(down[pick % len(down)].name)

    @rule(pick=st.integers(0, 2))
    def drain_node(self, pick: int) -> None:
        alive = [n for n in self.cluster.nodes if n.alive and n.accepting]
        if len(alive) < 2:
            return
        node = alive[pick % len(alive)]
        self.cluster.drain_node(node.name)
        self.cluster.run(0.5)
        self.cluster.crash_node(node.name)  # a drained process exits
        self.cluster.restart_node(node.name)

    @rule(i=clients_, pick=st.integers(0, 3))
    def move_client(self, i: int, pick: int) -> None:
        """The load balancer will send the client's next connection to another node."""
        self.cluster.pin(self.clients[i], None if pick == 3 else pick % len(self.cluster.nodes))
        self.cluster.cut(self.clients[i], 0)

    @rule(dt=st.sampled_from([0.05, 0.5, 3.0]))
    def engine_outage(self, dt: float) -> None:
        self.cluster.run(0.05)  # what was in flight lands first (publishes are then known)
        self.cluster.engine_down()
        self.cluster.run(dt)
        self.cluster.engine_up()

    @rule(count=st.integers(1, 3))
    def drop_cross_node(self, count: int) -> None:
        self.cluster.drop_cross_node(count)

    @rule()
    def settle(self) -> None:
        for client in self.clients:
            self.cluster.heal(client)
            self.cluster.pin(client, None)
        for node in self.cluster.nodes:
            if not node.alive:
                self.cluster.restart_node(node.name)
        if not self.cluster.engine.up:
            self.cluster.engine_up()
        self.cluster.run(12.0)
        self.cluster.run_until(lambda: all(c.connected for c in self.clients), timeout=120)
        self.cluster.run(5.0)
        self._check_complete()

    def _check_complete(self) -> None:
        self.published = [p for p in self.published if p.payload in self.stored]
        super()._check_complete()

    def _collect_hub_events(self) -> None:
        events = self.cluster.hub_events[self.seen_hub_events:]
        sources = self.cluster.hub_event_sources[self.seen_hub_events:]
        self.seen_hub_events = len(self.cluster.hub_events)
        for source, event in zip(sources, events, strict=True):
            if isinstance(event, ClientMessage):
                incarnation = self.by_source.get(source)
                if incarnation is None:
                    incarnation = self.by_source[source] = Incarnation()
                    self.incarnations.append(incarnation)
                incarnation.received.setdefault(event.session.id, []).append(
                    _number(event.payload))

    @invariant()
    def no_duplicates_and_order_kept(self) -> None:
        if not hasattr(self, "sim"):
            return
        self._collect_hub_events()
        # client -> server: within one session of one node process, strictly increasing (a
        # session that moves may show the app seqs its last node had not saved: same seq)
        for incarnation in self.incarnations:
            for numbers in incarnation.received.values():
                assert numbers == sorted(set(numbers)), numbers
        # server -> client: per topic no payload twice, and positions strictly increasing
        # within an epoch
        for client in self.clients:
            seen: set[bytes] = set()
            last: dict[str, tuple[int, int]] = {}
            for msg in client.messages():
                assert msg.payload not in seen, (client.name, msg)
                seen.add(msg.payload)
                before = last.get(msg.topic)
                if before is not None and before[0] == msg.position.epoch:
                    assert msg.position.offset > before[1], (client.name, msg, before)
                last[msg.topic] = (msg.position.epoch, msg.position.offset)


TestCluster = ClusterMachine.TestCase
TestCluster.settings = settings(max_examples=15, stateful_step_count=30, deadline=None)
