"""The chat demo on two nodes sharing one cluster engine, in the core's cluster simulator
(virtual clock): one ``ChatApp`` per node, each on its own hub, the hubs on one engine (what
``--redis-url`` gives real processes; tests/browser/test_chat_two_nodes.py drives those).

What a user must see, whichever node they are on: one conversation in one order, one member
list, one history for a newcomer; and when their node dies, they carry on through the other
with nothing lost or doubled. And a member whose node died and who never came back is, in the
end, shown as gone (nobody else would say so).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sigma_core.api import EventEmitter, Listener, server_callbacks
from sigma_core.client import ClientConfig, ReconnectPolicy, SessionReset
from sigma_core.engine import ExternalEngineConfig
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import HookFailed, Hub, HubConfig, Session
from sigma_core.messages import ClientInfo, StreamPosition
from sigma_core.testing import ClusterSimulation, SimClient

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `examples.chat` lives beside the packages, not in them
    sys.path.insert(0, str(REPO))

from examples.chat.app import ChatApp  # noqa: E402
from examples.chat.server import ChatConfig, server_options  # noqa: E402

PRESENCE_TTL = 30.0


class NodeServer:
    """What ``ChatApp`` needs of a ``SigmaSocketServer``, over one node's hub of the cluster."""

    def __init__(self, sim: ChatCluster, index: int) -> None:
        self.sim = sim
        self.index = index
        self.errors: list[BaseException] = []
        self._emitter = EventEmitter(on_listener_error=self.errors.append)
        self._emitter.on("error", self.errors.append)

    @property
    def hub(self) -> Hub:
        return self.sim.node(self.index).hub

    def dispatch(self, event: Any) -> None:
        for name, args in server_callbacks(event):
            self._emitter.emit(name, *args)

    def on(self, event: str, listener: Listener) -> Listener:
        return self._emitter.on(event, listener)

    def publish(self, topic: str, data: bytes, exclude: Any = None) -> StreamPosition:
        return self.hub.publish(topic, data, self.sim.now,
                                exclude=() if exclude is None else (exclude,))

    def broadcast(self, data: bytes, exclude: Any = None) -> None:
        self.hub.broadcast(data, self.sim.now)

    def send_to_client(self, client: Any, data: bytes) -> bool:
        if self.hub.get_session(client) is None:
            return False
        self.hub.send_to(client, data, self.sim.now)
        return True

    def subscribe(self, client: Any, topic: str) -> None:
        self.hub.subscribe(client, topic, self.sim.now)

    def unsubscribe(self, client: Any, topic: str) -> None:
        self.hub.unsubscribe(client, topic, self.sim.now)

    def get_client(self, session_id: str) -> Session | None:
        return self.hub.get_session(session_id)

    def watch(self, topic: str, history: int = 0) -> None:
        self.hub.watch(topic, self.sim.now, history=history)

    def unwatch(self, topic: str) -> None:
        self.hub.unwatch(topic, self.sim.now)

    def request_presence(self, topic: str) -> None:
        self.hub.request_presence(topic, self.sim.now)


class ChatCluster(ClusterSimulation):
    """Two chat nodes: each hub with its own app's hooks; each app hears its own hub only."""

    def __init__(self, *, seed: int = 1, history_size: int = 5,
                 asleep: tuple[int, ...] = ()) -> None:
        #: Nodes whose app is not ticked (so not watching its rooms) until woken: a node whose
        #: chat started late.
        self.asleep = set(asleep)
        self.apps: list[ChatApp] = []
        self.configs: list[HubConfig] = []
        for _ in range(2):
            app = ChatApp(history_size=history_size, rooms=("general",), log=False,
                          clock=lambda: self.now, wall_ms=lambda: int(self.now * 1000),
                          cluster=True, presence_interval=5.0)
            config = ChatConfig(rooms=("general",), history_size=history_size)
            self.apps.append(app)
            self.configs.append(server_options(config, app).hub_config())
        super().__init__(2, self.configs[0], seed=seed, chunking=False, latency=0.001,
                         engine_config=lambda name: ExternalEngineConfig(
                             node_id=name, presence_ttl=PRESENCE_TTL))
        self.servers = [NodeServer(self, i) for i in range(2)]
        for app, server in zip(self.apps, self.servers, strict=True):
            app.attach(server)
        self.on_hub_event(self._dispatch)
        self.tick()

    def _new_hub(self, index: int, now: float) -> Hub:
        engine = self._engine_config(f"node{index}")
        return Hub(self.configs[index],
                   entropy=SeededEntropy(self._seed * 1000 + 1 + self._restarts + 7 * index),
                   now=now, engine=engine)

    def _dispatch(self, event: Any) -> None:
        for server in self.servers:
            if server.hub is self.event_hub and self.node(server.index).alive:
                server.dispatch(event)

    def tick(self) -> None:
        for server, app in zip(self.servers, self.apps, strict=True):
            if self.node(server.index).alive and server.index not in self.asleep:
                app.tick()

    def advance(self, seconds: float) -> None:
        """Run the cluster, ticking each live node's app every 0.25 s (server.py: every 1 s)."""
        end = self.now + seconds
        while self.now < end:
            self.run(min(0.25, end - self.now))
            self.tick()

    def user(self, name: str, node: int) -> SimClient:
        config = ClientConfig(url="ws://chat.invalid/ws",
                              reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=1.0,
                                                        max_attempts=None),
                              client_info=ClientInfo(name="test", metadata={"user": name}))
        client = self.add_client(config, name=name, connect=False)
        self.pin(client, node)
        client.connect()
        self.run_until(lambda: client.connected)
        return client

    def join(self, client: SimClient, room: str = "general") -> None:
        client.subscribe("room:" + room)
        self.run_until(lambda: any(m.get("t") == "history" for m in inbox(client)))
        self.advance(0.3)

    def failures(self) -> list[Any]:
        hooks = [e for e in self.hub_events if isinstance(e, HookFailed)]
        return [*hooks, *(e for s in self.servers for e in s.errors)]


def inbox(client: SimClient) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in client.messages("$inbox")]


def timeline(client: SimClient) -> list[tuple[StreamPosition, str]]:
    """The room's messages and notices as the client got them: (position, what)."""
    out = []
    for m in client.messages("room:general"):
        body = json.loads(m.payload)
        what = body.get("text") if body["t"] == "msg" else f"{body['action']} {body['user']}"
        out.append((m.position, what))
    return out


def send(client: SimClient, text: str, message_id: str) -> None:
    client.send(json.dumps({"t": "msg", "room": "general", "id": message_id,
                            "text": text}).encode(), topic="room:general")


def last_members(client: SimClient) -> dict[str, bool]:
    page = [m for m in inbox(client) if m["t"] == "members"][-1]
    return {u["user"]: u["online"] for u in page["users"]}


def test_two_nodes_one_conversation_one_member_list_one_history() -> None:
    chat = ChatCluster(seed=1, history_size=5)
    alice = chat.user("alice", 0)
    bob = chat.user("bob", 1)
    chat.join(alice)
    chat.join(bob)
    # Interleaved sends through both nodes, faster than a round trip to the engine.
    for i in range(6):
        send(alice, f"a{i}", f"alice-msg-{i:03d}")
        send(bob, f"b{i}", f"bob-msg-{i:05d}")
        chat.run(0.002)
    chat.advance(1.0)
    said = [f"{w}{i}" for i in range(6) for w in "ab"]
    for client in (alice, bob):
        texts = [w for _, w in timeline(client) if not w.startswith(("join", "leave"))]
        assert sorted(texts) == sorted(said), texts  # each once
    # One order: the room topic's, the same on both screens.
    assert timeline(alice)[-12:] == timeline(bob)[-12:]
    # Both nodes' apps mirror the same room.
    rooms = [app.rooms["general"] for app in chat.apps]
    assert rooms[0].members == rooms[1].members
    assert list(rooms[0].history) == list(rooms[1].history)
    # A newcomer on either node: one member list, one history (the last 5, in that order).
    carol = chat.user("carol", 0)
    dave = chat.user("dave", 1)
    chat.join(carol)
    chat.join(dave)
    order = [w for _, w in timeline(alice) if not w.startswith(("join", "leave"))]
    for newcomer in (carol, dave):
        history = [m for m in inbox(newcomer) if m["t"] == "history"][-1]
        assert [item["text"] for item in history["items"]] == order[-5:]
        positions = [(item["boot"], item["n"]) for item in history["items"]]
        mine = [(str(p.epoch), p.offset) for p, w in timeline(alice) if w in order[-5:]]
        assert positions == mine  # each item's place is its position in the room topic
    assert set(last_members(carol)) == {"alice", "bob", "carol"}
    assert set(last_members(dave)) == {"alice", "bob", "carol", "dave"}
    assert all(last_members(dave).values())
    # Everyone heard every join once, in one order.
    joins = [[w for _, w in timeline(c) if w.startswith("join")] for c in (alice, bob)]
    assert joins[0][-2:] == joins[1][-2:] == ["join carol", "join dave"]
    assert chat.failures() == []


def test_node_dies_its_user_carries_on_through_the_other_with_nothing_lost() -> None:
    chat = ChatCluster(seed=2)
    alice = chat.user("alice", 0)
    bob = chat.user("bob", 1)
    chat.join(alice)
    chat.join(bob)
    send(bob, "before", "bob-before-01")
    chat.advance(0.5)
    chat.crash_node(1)
    chat.pin(bob, 0)  # the load balancer has only node 0 left
    send(alice, "while bob reconnects", "alice-while-01")
    chat.run_until(lambda: bob.connected, timeout=30)
    chat.advance(0.5)
    assert bob.of_type(SessionReset) == []  # the session moved, it was not renewed
    send(bob, "after", "bob-after-001")
    chat.advance(1.0)
    # Node 0 knows bob is in the room: his message is published, not refused.
    assert not [m for m in inbox(bob) if m["t"] == "error"]
    for client in (alice, bob):
        texts = [w for _, w in timeline(client) if not w.startswith(("join", "leave"))]
        assert texts == ["before", "while bob reconnects", "after"], texts
    # Bob is one member, online, in node 0's list.
    room = chat.apps[0].rooms["general"]
    assert sorted(room.members.values()) == ["alice", "bob"]
    assert room.online[bob.session.session_id] is True
    assert chat.failures() == []


def test_a_member_of_a_dead_node_who_never_returns_is_shown_gone() -> None:
    chat = ChatCluster(seed=3)
    alice = chat.user("alice", 0)
    bob = chat.user("bob", 1)
    chat.join(alice)
    chat.join(bob)
    chat.crash_node(1)
    chat.pin(bob, None)
    bob.session.disconnect(chat.now)  # bob's tab is gone too: he never comes back
    chat._pump_client(bob)
    chat.advance(PRESENCE_TTL / 2)
    assert "bob" in chat.apps[0].rooms["general"].members.values()  # not yet: might come back
    # Once his presence expired (no node refreshes it) and two checks missed him: gone.
    chat.advance(PRESENCE_TTL + 3 * chat.apps[0].presence_interval)
    assert list(chat.apps[0].rooms["general"].members.values()) == ["alice"]
    leaves = [w for _, w in timeline(alice) if w.startswith("leave")]
    assert leaves == ["leave bob"]  # once
    carol = chat.user("carol", 0)
    chat.join(carol)
    assert set(last_members(carol)) == {"alice", "carol"}
    assert chat.failures() == []


def test_a_node_that_starts_late_knows_the_members_whose_joins_history_no_longer_shows() -> None:
    chat = ChatCluster(seed=4, history_size=3, asleep=(1,))
    alice = chat.user("alice", 0)
    chat.join(alice)
    for i in range(5):  # alice's join is older than the 3 entries node 1 will read
        send(alice, f"m{i}", f"alice-msg-{i:03d}")
    chat.advance(0.5)
    assert not chat.apps[1].rooms["general"].watched
    chat.asleep.clear()
    chat.advance(1.0)
    room = chat.apps[1].rooms["general"]
    assert list(room.members.values()) == ["alice"]  # from the cluster's presence
    assert [m["text"] for m in room.history] == ["m2", "m3", "m4"]
    bob = chat.user("bob", 1)
    chat.join(bob)
    assert set(last_members(bob)) == {"alice", "bob"}
    assert chat.failures() == []
