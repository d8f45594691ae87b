"""The chat demo under a crowd and against abuse, in the core simulator (virtual clock).

``ChatApp`` runs on a bare hub through :class:`SimChatServer`, a shim with the server methods
the app uses, so every byte the hub writes is counted (``hub.stats().bytes_sent``) and nothing
waits on a real clock. The hub's configuration is the chat server's own
(``server_options(ChatConfig())``): 64 KiB messages, the chat's history limits and hooks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from sigma_core.api import EventEmitter, Listener, server_callbacks
from sigma_core.client import ClientConfig, MessageReceived, ReconnectPolicy
from sigma_core.hub import HookFailed, Session
from sigma_core.messages import ClientInfo, StreamPosition
from sigma_core.testing import SimClient, Simulation

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `examples.chat` lives beside the packages, not in them
    sys.path.insert(0, str(REPO))

from examples.chat.app import ChatApp, ChatLimits, printable  # noqa: E402
from examples.chat.server import ChatConfig, server_options  # noqa: E402

LIMIT = 64 * 1024


class SimChatServer:
    """What ``ChatApp`` needs of a ``SigmaSocketServer``, over ``sim.hub``."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        #: Exceptions raised by the app's listeners (a server reports them as "error").
        self.errors: list[BaseException] = []
        self._emitter = EventEmitter(on_listener_error=self.errors.append)
        self._emitter.on("error", self.errors.append)
        sim.on_hub_event(self._dispatch)

    def _dispatch(self, event: Any) -> None:
        for name, args in server_callbacks(event):
            self._emitter.emit(name, *args)

    def on(self, event: str, listener: Listener) -> Listener:
        return self._emitter.on(event, listener)

    def publish(self, topic: str, data: bytes, exclude: Any = None) -> StreamPosition:
        return self.sim.hub.publish(topic, data, self.sim.now, exclude=_ids(exclude))

    def broadcast(self, data: bytes, exclude: Any = None) -> None:
        self.sim.hub.broadcast(data, self.sim.now, exclude=_ids(exclude))

    def send_to_client(self, client: Any, data: bytes) -> bool:
        if self.sim.hub.get_session(client) is None:
            return False
        self.sim.hub.send_to(client, data, self.sim.now)
        return True

    def subscribe(self, client: Any, topic: str) -> None:
        self.sim.hub.subscribe(client, topic, self.sim.now)

    def unsubscribe(self, client: Any, topic: str) -> None:
        self.sim.hub.unsubscribe(client, topic, self.sim.now)

    def get_client(self, session_id: str) -> Session | None:
        return self.sim.hub.get_session(session_id)

    def watch(self, topic: str, history: int = 0) -> None:
        self.sim.hub.watch(topic, self.sim.now, history=history)

    def unwatch(self, topic: str) -> None:
        self.sim.hub.unwatch(topic, self.sim.now)

    def request_presence(self, topic: str) -> None:
        self.sim.hub.request_presence(topic, self.sim.now)


def _ids(exclude: Any) -> Iterable[str]:
    if exclude is None:
        return ()
    return (exclude,) if isinstance(exclude, str) else tuple(exclude)


class Chat:
    """A simulated chat server: the app, the hub, and helpers to add users."""

    def __init__(self, *, limits: ChatLimits | None = None, history_size: int = 50,
                 rooms: tuple[str, ...] = ("general", "random", "help"),
                 log: bool = False) -> None:
        limits = limits or ChatLimits()
        self.app = ChatApp(history_size=history_size, rooms=rooms, limits=limits, log=log,
                           clock=lambda: self.sim.now, wall_ms=lambda: int(self.sim.now * 1000))
        config = ChatConfig(rooms=rooms, history_size=history_size, limits=limits)
        self.sim = Simulation(server_options(config, self.app).hub_config(), chunking=False,
                              latency=0.001)
        self.server = SimChatServer(self.sim)
        self.app.attach(self.server)
        self.users: list[SimClient] = []

    def add_user(self, name: str) -> SimClient:
        config = ClientConfig(url="ws://chat.invalid/ws",
                              reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=1.0,
                                                        max_attempts=None),
                              client_info=ClientInfo(name="test", metadata={"user": name}))
        client = self.sim.add_client(config, name=name)
        self.users.append(client)
        return client

    def bytes_sent(self) -> int:
        return self.sim.hub.stats(self.sim.now).bytes_sent

    def failures(self) -> list[Any]:
        hooks = [e for e in self.sim.hub_events if isinstance(e, HookFailed)]
        return [*hooks, *self.server.errors]


def payloads(client: SimClient, topic: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in client.messages(topic)]


def received(client: SimClient) -> list[MessageReceived]:
    return client.messages()


def _join(chat: Chat, client: SimClient, room: str = "general") -> int:
    """Subscribe ``client`` to ``room``; the bytes the server sent for it."""
    before = chat.bytes_sent()
    client.subscribe("room:" + room)
    chat.sim.run(0.05)
    return chat.bytes_sent() - before


def test_a_room_of_1000_joins_and_leaves_with_output_linear_in_its_members() -> None:
    # Before this fix every join published the whole member list to every member (and kept it
    # in the room's history): a join into a room of N cost O(N^2) bytes, ~50 MB at 400
    # members, and past 64 KiB of list every presence publish raised ("hook failed").
    chat = Chat()
    crowd = [chat.add_user(f"user{i:04d}") for i in range(1000)]
    chat.sim.run_until(lambda: all(c.connected for c in crowd), timeout=120)
    # Joins measured one by one at three sizes (20 each); the others in batches, to keep the
    # simulation short: every join still reaches every member.
    cost: dict[int, int] = {}
    measured = (100, 400, 980)
    i = 0
    while i < len(crowd):
        if i in measured:
            for k in range(i, i + 20):
                cost[k] = _join(chat, crowd[k])  # k members were there before
            i += 20
            continue
        batch = crowd[i:min(m for m in (*measured, len(crowd)) if m > i)]
        for client in batch:
            client.subscribe("room:general")
        chat.sim.run(0.05)
        i += len(batch)
    assert len(chat.app.rooms["general"].members) == 1000

    def mean(start: int) -> float:
        return sum(cost[k] for k in range(start, start + 20)) / 20

    print(f"bytes out per join into a room of N: N=100 {mean(100):.0f}, N=400 {mean(400):.0f}, "
          f"N=980 {mean(980):.0f}; largest {max(cost.values())}")
    # Per join: a notice to each member, at most one room-count update a second to everyone,
    # the member list (paged) and the history to the newcomer: O(members), never O(N^2).
    for members in measured:
        assert mean(members) < 400 * members + 16384, (members, mean(members))
    assert mean(980) < 3.5 * mean(400)  # linear: ~2.45x (quadratic: ~6x)
    # The last one in got all 1000 members, in pages that each fit the message limit.
    last = crowd[-1]
    pages = [m for m in payloads(last, "$inbox") if m["t"] == "members"]
    assert sum(len(p["users"]) for p in pages) == 1000
    assert len(pages) == pages[0]["pages"] > 1
    assert max(len(m.payload) for m in received(last)) < LIMIT - 128
    # Everyone else heard of each later join as one small notice, not a member list.
    first_seen = [m for m in payloads(crowd[0], "room:general") if m["t"] == "presence"]
    assert len(first_seen) == 1000
    assert all("users" not in m for m in first_seen)
    # Leaving a room of 1000 costs O(members) too.
    leave_cost = []
    for client in crowd[:20]:
        before = chat.bytes_sent()
        client.unsubscribe("room:general")
        chat.sim.run(0.05)
        leave_cost.append(chat.bytes_sent() - before)
    print(f"bytes out per leave from a room of ~990: {sum(leave_cost) / 20:.0f}")
    assert sum(leave_cost) / 20 < 400 * 1000
    assert len(chat.app.rooms["general"].members) == 980
    assert chat.failures() == []


def test_history_pages_fit_the_message_limit_for_long_messages() -> None:
    # Before: history went out in 256 KiB chunks against the 64 KiB limit; after 35 long
    # messages a newcomer's history raised and it got neither history nor room list.
    chat = Chat(history_size=50)
    alice = chat.add_user("alice")
    chat.sim.run_until(lambda: alice.connected)
    _join(chat, alice)
    text = "\u00e9" * 1000 + "\x01" * 1000  # 2000 characters, ~8 KB of JSON each
    for i in range(50):
        alice.send(json.dumps({"t": "msg", "room": "general", "id": f"m{i:07d}",
                               "text": text}).encode(), topic="room:general")
        chat.sim.run(0.01)
    bob = chat.add_user("bob")
    chat.sim.run_until(lambda: bob.connected)
    _join(chat, bob)
    inbox = payloads(bob, "$inbox")
    history = [m for m in inbox if m["t"] == "history"]
    items = [item["id"] for page in history for item in page["items"]]
    assert items == [f"m{i:07d}" for i in range(50)]
    assert len(history) == history[0]["pages"] > 1
    assert max(len(m.payload) for m in bob.messages("$inbox")) <= LIMIT - 128 - 16
    # And a third user still gets the room list and history: nothing broke.
    carol = chat.add_user("carol")
    chat.sim.run_until(lambda: carol.connected)
    _join(chat, carol)
    assert next(m["t"] for m in payloads(carol, "$inbox")) == "hello"
    assert sum(len(p["items"]) for p in payloads(carol, "$inbox") if p["t"] == "history") == 50
    assert chat.failures() == []


def _send(client: SimClient, chat: Chat, **message: Any) -> None:
    client.send(json.dumps(message).encode(), topic="room:general")
    chat.sim.run(0.01)


def test_sync_is_rate_limited_per_session() -> None:
    # Before: every sync copied the room's history into the sender's inbox, without a rate.
    chat = Chat()
    alice = chat.add_user("alice")
    chat.sim.run_until(lambda: alice.connected)
    _join(chat, alice)
    for i in range(20):
        _send(alice, chat, t="msg", room="general", id=f"msg{i:05d}", text="x" * 1500)
    before = chat.bytes_sent()
    for _ in range(50):
        _send(alice, chat, t="sync", room="general")
    spent = chat.bytes_sent() - before
    inbox = payloads(alice, "$inbox")
    answered = sum(1 for m in inbox if m["t"] == "members")
    refused = [m for m in inbox if m["t"] == "error" and m["code"] == "rate_limited"]
    print(f"50 syncs of 20 messages of 1500 characters: {spent} bytes out")
    assert answered == 1 + 3  # the join, then a burst of 3
    assert len(refused) == 47
    assert spent < 4 * 40_000
    chat.sim.run(chat.app.limits.sync_interval)  # one more is allowed after the interval
    _send(alice, chat, t="sync", room="general")
    assert sum(1 for m in payloads(alice, "$inbox") if m["t"] == "members") == 5


def test_typing_never_enters_the_room_history_and_alternation_is_throttled() -> None:
    # Before: typing went to the room's topic (its replay history), and on/off alternation
    # passed the throttle: 2,000 typing notices pushed every message out of the replay.
    chat = Chat()
    alice, bob = chat.add_user("alice"), chat.add_user("bob")
    chat.sim.run_until(lambda: alice.connected and bob.connected)
    _join(chat, alice)
    _join(chat, bob)
    _send(alice, chat, t="msg", room="general", id="hello-0001", text="before the typing")
    for i in range(2000):
        alice.send(json.dumps({"t": "typing", "room": "general", "on": i % 2 == 0}).encode(),
                   topic="room:general")
        if i % 100 == 0:
            chat.sim.run(0.01)
    chat.sim.run(0.1)  # ~0.2 virtual seconds for 2000 notices
    typing = [m for m in payloads(bob) if m["t"] == "typing"]
    assert 1 <= len(typing) <= 5  # a burst of 4, maybe one refill
    assert {m.topic for m in bob.messages() if json.loads(m.payload)["t"] == "typing"} \
        == {"live:general"}
    # The room's topic (its replay history) holds only the timeline.
    room = [json.loads(m.payload)["t"] for m in bob.messages("room:general")]
    assert "typing" not in room
    assert "msg" in room
    # Over time the rate is one per typing_interval, whatever alice sends.
    for i in range(100):
        _send(alice, chat, t="typing", room="general", on=i % 2 == 0)
    seconds = 100 * 0.01
    typing = [m for m in payloads(bob) if m["t"] == "typing"]
    assert len(typing) <= 5 + seconds / chat.app.limits.typing_interval + 1
    assert chat.failures() == []


def test_one_user_cannot_fill_the_room_cap_for_good() -> None:
    # Before: anyone could create rooms up to the 50-room cap, and rooms never went away.
    limits = ChatLimits(max_rooms=10, rooms_per_user=3, room_create_interval=20.0,
                        room_expiry=60.0)
    chat = Chat(limits=limits)
    mallory = chat.add_user("mallory")
    chat.sim.run_until(lambda: mallory.connected)
    for i in range(20):
        mallory.subscribe(f"room:spam{i:02d}")
        chat.sim.run(0.01)
    created = sorted(n for n in chat.app.rooms if n.startswith("spam"))
    assert created == ["spam00", "spam01", "spam02"]
    # A second session under the same name does not get more.
    mallory2 = chat.add_user("mallory")
    chat.sim.run_until(lambda: mallory2.connected)
    mallory2.subscribe("room:more")
    chat.sim.run(0.1)
    assert "more" not in chat.app.rooms
    # Another user still can create a room.
    alice = chat.add_user("alice")
    chat.sim.run_until(lambda: alice.connected)
    _join(chat, alice, "ours")
    assert "ours" in chat.app.rooms
    # Empty created rooms expire; rooms with members and default rooms stay.
    for i in range(3):
        mallory.unsubscribe(f"room:spam{i:02d}")
    chat.sim.run(limits.room_expiry + 1)
    chat.app.tick()
    chat.sim.run(0.01)
    assert sorted(chat.app.rooms) == ["general", "help", "ours", "random"]
    gone = [c["name"] for m in payloads(alice, "$all") for c in m["changes"] if c.get("removed")]
    assert sorted(gone) == ["spam00", "spam01", "spam02"]
    assert chat.failures() == []


def test_presence_deltas_keep_member_lists_right_through_away_and_back() -> None:
    chat = Chat()
    alice, bob = chat.add_user("alice"), chat.add_user("bob")
    chat.sim.run_until(lambda: alice.connected and bob.connected)
    _join(chat, alice)
    _join(chat, bob)
    chat.sim.cut(bob)
    chat.sim.run(0.02)
    live = [m for m in payloads(alice, "live:general") if m["t"] == "member"]
    assert live[-1]["sid"] == bob.session.session_id
    assert live[-1]["online"] is False
    chat.sim.run_until(lambda: bob.connected, timeout=10)
    chat.sim.run(0.05)
    live = [m for m in payloads(alice, "live:general") if m["t"] == "member"]
    assert live[-1]["online"] is True
    # A newcomer's list has everyone, Bob online again, at the version (the room topic's
    # offset) of its own join: the changes a page applies on top are those after it.
    carol = chat.add_user("carol")
    chat.sim.run_until(lambda: carol.connected)
    _join(chat, carol)
    members = [m for m in payloads(carol, "$inbox") if m["t"] == "members"][-1]
    assert {u["user"]: u["online"] for u in members["users"]} == \
        {"alice": True, "bob": True, "carol": True}
    (carol_join,) = [m for m in alice.messages("room:general")
                     if json.loads(m.payload).get("sid") == carol.session.session_id]
    assert members["v"] == carol_join.position.offset
    assert members["boot"] == str(carol_join.position.epoch)
    assert chat.failures() == []


def test_the_log_escapes_a_peers_close_reason(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "[chat] disconnected 'mallory' (...): normal: <the reason as sent>", so a reason
    # with newlines and escape codes forged log lines and drove the operator's terminal.
    chat = Chat(log=True)
    mallory = chat.add_user("mallory")
    chat.sim.run_until(lambda: mallory.connected)
    forged = "bye\n[chat] connected 'admin' (000000)\x1b[2J\u202e" + "x" * 70
    mallory.session.disconnect(chat.sim.now, reason=forged)
    chat.sim._pump_client(mallory)  # what SimClient.disconnect does, with our reason
    chat.sim.run(1)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("[chat] disconnected 'mallory'")]
    assert len(lines) == 1
    line = lines[0]
    assert "\x1b" not in line
    assert "\u202e" not in line
    assert "bye\\x0a[chat] connected" in line  # shown escaped, on the one line
    assert "\\x1b[2J\\u202e" in line
    assert len(line) < 300
    assert line.endswith("more)")


def test_printable_escapes_and_bounds() -> None:
    assert printable("ok") == "ok"
    assert printable("a\r\nb\tc\\") == "a\\x0d\\x0ab\\x09c\\\\"
    assert printable("\x9b\u2028\U000e0001") == "\\x9b\\u2028\\U000e0001"
    assert printable("é日本") == "é日本"
    assert printable("x" * 10, limit=4) == "xxxx...(6 more)"
