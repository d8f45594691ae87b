"""The chat's server side: JSON messages inside SigmaSockets payloads (protocol in README.md).

Rooms are topics ``room:<name>``; what a room's timeline must show in order (messages, join and
leave notices) is *published* to its topic, so the hub gives it a position, keeps it in the
topic's history, replays it after a dropped connection and never delivers it twice. What is
only true for a moment (typing, a member's connection dropping or coming back) goes to the
room's second topic ``live:<name>``, which the server subscribes each member to: it has its own
history, so a flood of typing can never push a chat message out of the room's replay. What one
client alone needs (its welcome, a room's last N messages and its member list when it joins)
goes to its ``$inbox``; room list changes go to everyone on ``$all``.

Nothing a client does costs the server more than a bound it can name (README, "Limits"):
presence goes out as changes (one small message per join or leave, never the member list to
everyone), the member list and the history a newcomer gets are split into pages that fit the
message size limit, ``sync`` and typing are rate-limited per session, room creation per user,
and an empty room that is not a default room expires.

The app's state of a room — its member list, who is online, its last messages — is a *mirror*
of the room's two topics: the app watches them server-side (``server.watch``) and changes that
state only when an event comes back from a topic, in the topic's order. A join, a leave, a
message is *published* first and *applied* when it returns. So every node that serves the room
(several chat servers on one Redis, ``--redis-url``) holds the same member list and the same
history in the same order, whichever node a user is connected to, and the timeline's order is
the room topic's order (``boot`` = the topic's epoch, ``n`` = its offset: the positions the hub
gives). Members of a node that died are found with the cluster's presence
(``server.request_presence``) and their leave published by a node still alive.

The server keeps nothing on disk. On the in-memory engine a restart starts new topics (a new
epoch, hence a new ``boot``) and empty rooms; returning clients get a fresh session (they are
told: ``session_reset``), resend what the old server never acknowledged, and are put back in
their rooms by the hub (from the positions in their Hello) — which this app sees as presence
joins, publishes quietly and answers with the room's history.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sigma_core.errors import LocalProtocolError
from sigma_core.hub import (
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClusterPresence,
    Session,
    TopicLost,
    TopicMessage,
    TopicWatched,
)
from sigma_core.messages import ENVELOPE_OVERHEAD, StreamPosition
from sigma_core.ratelimit import TokenBucket

__all__ = ["LIVE_PREFIX", "ROOM_PREFIX", "ChatApp", "ChatLimits", "ChatServer", "Room",
           "clean_username", "printable", "room_name"]

ROOM_PREFIX = "room:"
#: A room's topic for what is not kept in its timeline: typing and members going away/back.
LIVE_PREFIX = "live:"
_ROOM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,23}")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_USERNAME = 24
MAX_TEXT = 2000
#: Message ids remembered per room to drop a message that arrives twice.
_REMEMBERED_IDS = 4096
#: Room on each inbox message beyond its JSON: the envelope, and the inbox topic's name.
_INBOX_OVERHEAD = ENVELOPE_OVERHEAD + 16
#: Longest peer-supplied text (a close reason) the log prints.
_LOG_TEXT = 120
#: Where a room's mirror stands before its topic was read.
_START = StreamPosition(0, 0)
#: Line and paragraph separators (U+2028, U+2029) break lines too; "C*" are escaped as well.
_UNPRINTABLE = frozenset({"Zl", "Zp"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatLimits:
    """What one client may cost the chat server. Every field has a flag and an environment
    variable (README.md, "Limits")."""

    #: Largest WebSocket message (the server's ``max_message_size``): history and member-list
    #: pages are cut to fit it, envelope included.
    max_message_size: int = 64 * 1024
    #: Rooms in all (default rooms included).
    max_rooms: int = 50
    #: Rooms one user (a session, and a username across sessions) may have created that still
    #: exist.
    rooms_per_user: int = 3
    #: Seconds between room creations per user, after a burst of ``rooms_per_user``.
    room_create_interval: float = 20.0
    #: Seconds a created room may stay empty before it is removed (default rooms stay).
    room_expiry: float = 60.0
    #: Seconds between ``sync`` requests per session, after a burst of 3.
    sync_interval: float = 5.0
    #: Seconds between typing notices per session, after a burst of 4 (on, off, on, off).
    typing_interval: float = 1.0
    #: Seconds between room-list updates to everyone: changes within it go out together (at
    #: the next :meth:`ChatApp.tick`), so a crowd joining costs one update a second, not one
    #: per join.
    rooms_update_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.max_message_size < 4096:
            raise ValueError("max_message_size must be >= 4096")
        if self.max_rooms < 1 or self.rooms_per_user < 0:
            raise ValueError("max_rooms must be >= 1 and rooms_per_user >= 0")
        for name in ("room_create_interval", "room_expiry", "sync_interval", "typing_interval",
                     "rooms_update_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value!r}")


class ChatServer(Protocol):
    """What the app needs of a server: ``sigma_asyncio.SigmaSocketServer`` and
    ``sigma_trio.SigmaSocketServer`` have it (and so can a test's shim over a bare hub)."""

    def on(self, event: str, listener: Callable[..., Any]) -> Any: ...
    def publish(self, topic: str, data: bytes, exclude: Any = None) -> Any: ...
    def broadcast(self, data: bytes, exclude: Any = None) -> None: ...
    def send_to_client(self, client: Any, data: bytes) -> bool: ...
    def subscribe(self, client: Any, topic: str) -> None: ...
    def unsubscribe(self, client: Any, topic: str) -> None: ...
    def get_client(self, session_id: str) -> Session | None: ...
    def watch(self, topic: str, history: int = 0) -> None: ...
    def unwatch(self, topic: str) -> None: ...
    def request_presence(self, topic: str) -> None: ...


def room_name(topic: str, prefix: str = ROOM_PREFIX) -> str | None:
    """``"general"`` for ``"room:general"``; None for anything that is not a valid room topic
    (``prefix=LIVE_PREFIX`` for a room's live topic)."""
    if not topic.startswith(prefix):
        return None
    name = topic[len(prefix):]
    return name if _ROOM_NAME.fullmatch(name) else None


def clean_username(raw: str) -> str:
    """Trimmed, whitespace collapsed, control characters dropped; "" if unusable."""
    text = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", raw)
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    return text if 0 < len(text) <= MAX_USERNAME else ""


def printable(text: str, limit: int = _LOG_TEXT) -> str:
    """Peer-supplied text made safe for one log line: control and format characters (newlines,
    escape codes, bidi overrides), line separators and backslashes escaped, at most ``limit``
    characters of it kept."""
    out: list[str] = []
    for ch in text[:limit]:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in _UNPRINTABLE or unicodedata.category(ch)[0] == "C":
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    if len(text) > limit:
        out.append(f"...({len(text) - limit} more)")
    return "".join(out)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Room:
    """A room as the app knows it: a mirror of its topics, changed only by what comes back from
    them (see the module docstring), plus this node's own bookkeeping."""

    name: str
    history_size: int
    #: Chat messages as they came from the room topic, each with its position (``boot`` the
    #: topic's epoch, ``n`` its offset): the last ``history_size`` of them, what a newcomer
    #: gets.
    history: deque[dict[str, Any]] = field(init=False)
    #: session id -> username of the members, from the room topic's joins and leaves.
    members: dict[str, str] = field(default_factory=dict)
    #: session id -> online (a connection holds it), from joins and the live topic's changes.
    online: dict[str, bool] = field(default_factory=dict)
    #: The room topic's position the mirror stands at (``v`` of a members list).
    position: StreamPosition = _START
    #: Both topics are watched and their history applied (False: not yet, or lost: watched
    #: again at the next tick).
    watched: bool = False
    #: Session ids of this node's sessions whose join was published and not yet applied: they
    #: get the room's members and history when it is.
    joining: set[str] = field(default_factory=set)
    #: Members missing from the cluster's presence at the last check (cluster only).
    missing: set[str] = field(default_factory=set)
    #: The next presence answer may add members the topic's history did not show (right after
    #: the watch began or history was lost); later answers only find members who are gone.
    syncing: bool = False
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)
    #: Who created it (None for a default room): session id and username.
    creator: tuple[str, str] | None = None
    #: Since when the room has had no member (clock seconds), None while it has some.
    empty_since: float | None = None

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_size)

    @property
    def topic(self) -> str:
        return ROOM_PREFIX + self.name

    @property
    def live_topic(self) -> str:
        return LIVE_PREFIX + self.name

    def remember(self, message_id: str) -> bool:
        """False if the id was already seen (a duplicate)."""
        if message_id in self.recent_ids:
            return False
        self.recent_ids[message_id] = None
        if len(self.recent_ids) > _REMEMBERED_IDS:
            self.recent_ids.popitem(last=False)
        return True


class ChatApp:
    """The chat's logic, attached to a server with :meth:`attach`.

    ``clock`` (seconds, monotonic) drives the rate limits and room expiry; ``wall_ms`` stamps
    messages. Call :meth:`tick` about once a second (``server.py`` does): it watches the rooms'
    topics once the server runs, expires empty rooms, sends held-back room-list changes and,
    with ``cluster`` (several nodes on one engine), checks every ``presence_interval`` seconds
    that each member is still present somewhere in the cluster — a member missing from two
    answers in a row (its node died and did not come back) is published as gone."""

    def __init__(self, *, history_size: int = 50, rooms: Sequence[str] = ("general", "random"),
                 max_rooms: int | None = None, limits: ChatLimits | None = None,
                 log: bool = True, clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] | None = None, cluster: bool = False,
                 presence_interval: float = 5.0) -> None:
        limits = limits or ChatLimits()
        if max_rooms is not None:  # kept from before ChatLimits
            limits = ChatLimits(**{**_fields(limits), "max_rooms": max_rooms})
        if not (math.isfinite(presence_interval) and presence_interval > 0):
            raise ValueError(f"presence_interval must be finite and > 0, got "
                             f"{presence_interval!r}")
        self.limits = limits
        self.boot = secrets.token_hex(4)
        self.history_size = history_size
        self.max_rooms = limits.max_rooms
        self.cluster = cluster
        self.presence_interval = presence_interval
        self.default_rooms = tuple(rooms)
        if len(self.default_rooms) > limits.max_rooms:
            raise ValueError(f"{len(self.default_rooms)} default rooms exceed max_rooms "
                             f"{limits.max_rooms}")
        self.rooms: dict[str, Room] = {}
        for name in rooms:
            if not _ROOM_NAME.fullmatch(name):
                raise ValueError(f"invalid room name {name!r}: use a-z, 0-9, '-', '_' "
                                 f"(at most 24, starting with a letter or digit)")
            self.rooms[name] = Room(name, history_size)
        self._log = log
        self._clock = clock
        self._wall_ms = wall_ms or _now_ms
        self._server: ChatServer | None = None
        #: Version of the room list (``v`` of ``hello`` and ``rooms`` messages): wall-clock
        #: milliseconds, +1 at least per change, so the versions of several nodes compare.
        self._rooms_version = 0
        #: Rooms whose count changed since the last room-list update, and when that was.
        self._rooms_dirty: set[str] = set()
        self._rooms_sent_at = -math.inf
        self._presence_checked_at = -math.inf
        # Rooms a fresh session was put back into by the hub (server restart): their presence
        # join is published quietly (no "joined" notice). Cleared as those joins arrive.
        self._restored: dict[str, set[str]] = {}
        #: session id -> (room, on, when) of its last published typing notice.
        self._last_typing: dict[str, tuple[str, bool, float]] = {}
        self._typing_buckets: dict[str, TokenBucket] = {}
        self._sync_buckets: dict[str, TokenBucket] = {}
        #: Room creations per session id and per username (keys "s:<sid>", "u:<name>").
        self._create_buckets: dict[str, TokenBucket] = {}
        self._page_budget = limits.max_message_size - _INBOX_OVERHEAD

    # ------------------------------------------------------------------ hooks

    def authenticate(self, request: AuthRequest) -> AuthAccept | AuthRefuse:
        """The username comes in the Hello's client info (``metadata.user``)."""
        info = request.hello.client
        user = clean_username(info.metadata.get("user", "") if info is not None else "")
        if not user:
            return AuthRefuse(message=f"choose a username of 1 to {MAX_USERNAME} characters")
        return AuthAccept(identity=user, metadata={"user": user})

    def authorize_subscribe(self, session: Session, topic: str) -> bool:
        """Room topics; a room's live topic once the room exists; a new room only within the
        room limits (``max_rooms`` in all, ``rooms_per_user``, one per
        ``room_create_interval`` after a burst)."""
        live = room_name(topic, LIVE_PREFIX)
        if live is not None:  # a fresh session's Hello may list it before the room itself
            topic = ROOM_PREFIX + live
        name = room_name(topic)
        if name is None:
            return False
        return name in self.rooms or self._create_room(session, name)

    def attach(self, server: ChatServer) -> None:
        self._server = server
        server.on("connection", self._on_connection)
        server.on("disconnection", self._on_disconnection)
        server.on("session_expired", self._forget)
        server.on("presence", self._on_presence)
        server.on("message", self._on_message)
        server.on("error", self._on_error)
        server.on("topic_message", self._on_topic_message)
        server.on("topic_watched", self._on_topic_watched)
        server.on("topic_lost", self._on_topic_lost)
        server.on("cluster_presence", self._on_cluster_presence)

    def tick(self) -> None:
        """Watch rooms not watched yet; remove created rooms that have been empty for
        ``room_expiry`` seconds; send the room-list changes held back by
        ``rooms_update_interval``; with ``cluster``, check the members against the cluster's
        presence. Call it about once a second."""
        now = self._clock()
        for room in list(self.rooms.values()):
            self._watch(room)
        expiry = self.limits.room_expiry
        for room in [r for r in self.rooms.values()
                     if r.empty_since is not None and now - r.empty_since >= expiry]:
            del self.rooms[room.name]
            self._unwatch(room)
            self._room_changed(room.name, hold=True)
        if self._rooms_dirty and now - self._rooms_sent_at >= self.limits.rooms_update_interval:
            self._send_room_changes(now)
        buckets = self._create_buckets  # keyed by username too: drop those full again
        for key in [k for k, b in buckets.items() if _refill(b, now) >= b.capacity]:
            del buckets[key]
        if self.cluster and now - self._presence_checked_at >= self.presence_interval:
            self._presence_checked_at = now
            server = self._require_server()
            for room in self.rooms.values():
                if room.watched and room.members:
                    server.request_presence(room.topic)

    # ------------------------------------------------------------------ events

    def _on_connection(self, session: Session) -> None:
        restored = set()
        for topic in session.subscriptions:
            name = room_name(topic)
            room = self.rooms.get(name) if name is not None else None
            if room is not None and session.id in room.members:
                # Resumed (here, or on this node after its own node died): back online.
                self._member_changed(room, session.id, online=True)
            elif name is not None:
                restored.add(topic)  # the hub re-joined a fresh session: presence follows
        if restored:
            self._restored[session.id] = restored
        else:
            self._restored.pop(session.id, None)
        self._inbox(session.id, {"t": "hello", "sid": session.id, "user": session.identity,
                                 "boot": self.boot, "history_size": self.history_size,
                                 "rooms": self._room_list(), "v": self._rooms_version})
        self._note(f"connected {session.identity!r} ({session.id[:6]})")

    def _on_disconnection(self, session: Session, reason: str) -> None:
        self._note(f"disconnected {session.identity!r} ({session.id[:6]}): {printable(reason)}")
        self._restored.pop(session.id, None)
        if self._require_server().get_client(session.id) is None:
            self._forget(session)
            return  # the session ended: presence leaves follow
        for topic in session.subscriptions:
            name = room_name(topic)
            room = self.rooms.get(name) if name is not None else None
            if room is not None and session.id in room.members:
                self._member_changed(room, session.id, online=False)  # away until it resumes

    def _forget(self, session: Session) -> None:
        """A session ended: drop its rate-limit state."""
        self._typing_buckets.pop(session.id, None)
        self._sync_buckets.pop(session.id, None)
        self._last_typing.pop(session.id, None)
        self._create_buckets.pop("s:" + session.id, None)

    def _on_presence(self, topic: str, session: Session, joined: bool) -> None:
        """A session of this node joined or left a room topic: published to the room (the
        mirror changes when it comes back, on every node)."""
        name = room_name(topic)
        if name is None:
            return  # live topics, $all, $inbox
        room = self.rooms.get(name)
        if room is None:
            return  # expired, or never authorized
        server = self._require_server()
        user = session.identity
        self._watch(room)
        if joined:
            if room.live_topic not in session.subscriptions:
                try:
                    server.subscribe(session.id, room.live_topic)
                except LocalProtocolError as exc:  # cannot happen within 2 x max_rooms topics
                    self._note(f"no live topic for {session.id[:6]} in {room.name}: {exc}")
            room.empty_since = None
            if session.id in room.members:
                self._member_changed(room, session.id, online=True)
                self._send_room(session.id, room)
                return
            restored = self._restored.get(session.id)
            quiet = restored is not None and topic in restored
            if restored is not None and quiet:
                restored.discard(topic)
                if not restored:
                    del self._restored[session.id]
            room.joining.add(session.id)
            self._publish_event(room, {"t": "presence", "action": "join", "sid": session.id,
                                       "user": user, "online": session.connected,
                                       **({"quiet": True} if quiet else {})})
        else:
            room.joining.discard(session.id)
            if session.id in room.members:
                self._publish_event(room, {"t": "presence", "action": "leave",
                                           "sid": session.id, "user": user})
            if room.live_topic in session.subscriptions \
                    and server.get_client(session.id) is not None:
                server.unsubscribe(session.id, room.live_topic)

    def _on_message(self, session: Session, data: bytes, topic: str) -> None:
        try:
            request = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            self._error(session.id, "bad_json", "payload is not JSON")
            return
        if not isinstance(request, dict):
            self._error(session.id, "bad_request", "payload must be a JSON object")
            return
        kind = request.get("t")
        name = request.get("room")
        room = self.rooms.get(name) if isinstance(name, str) else None
        if kind not in ("msg", "typing", "sync"):
            self._error(session.id, "bad_request", f"unknown message type {kind!r}")
            return
        # The session's own subscription decides (the hub's record, on whichever node holds
        # the session now), not the mirror: its join may still be on the way back.
        if room is None or room.topic not in session.subscriptions:
            self._error(session.id, "not_in_room", f"join room {name!r} first",
                        request.get("id"))
            return
        if kind == "msg":
            self._chat_message(session, room, request)
        elif kind == "typing":
            self._typing(session, room, request.get("on") is True)
        elif self._take(self._sync_buckets, session.id, self.limits.sync_interval, 3):
            self._send_room(session.id, room)
        else:
            self._error(session.id, "rate_limited",
                        f"sync at most every {self.limits.sync_interval:g} s: try again later")

    def _on_error(self, error: BaseException) -> None:
        self._note(f"hook failed: {printable(repr(error), 300)}")

    # ------------------------------------------------------------------ the rooms' topics

    def _on_topic_message(self, event: TopicMessage) -> None:
        """One event of a room's topic, from any node, in the topic's order: applied."""
        live = room_name(event.topic, LIVE_PREFIX)
        name = live if live is not None else room_name(event.topic)
        room = self.rooms.get(name) if name is not None else None
        if room is None:
            return
        try:
            message = json.loads(event.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            message = None
        if not isinstance(message, dict):
            self._note(f"not a chat event on {event.topic} at {event.position.offset}")
            return
        if live is not None:
            sid = message.get("sid")
            if message.get("t") == "member" and isinstance(sid, str) and sid in room.members:
                room.online[sid] = message.get("online") is True
            return
        self._apply(room, message, event.position)

    def _apply(self, room: Room, m: dict[str, Any], position: StreamPosition) -> None:
        room.position = position
        placed = {**m, "boot": str(position.epoch), "n": position.offset}
        kind, sid, user = m.get("t"), m.get("sid"), m.get("user")
        if kind == "msg":
            message_id = m.get("id")
            if isinstance(message_id, str):
                room.remember(message_id)
            room.history.append(placed)
            return
        if kind != "presence" or not isinstance(sid, str) or not isinstance(user, str):
            return
        if m.get("action") == "join":
            changed = sid not in room.members
            room.members[sid] = user
            room.online[sid] = m.get("online") is not False
            room.missing.discard(sid)
            room.empty_since = None
            if sid in room.joining:
                room.joining.discard(sid)
                if self._require_server().get_client(sid) is not None:
                    self._send_room(sid, room)
            if changed and m.get("by") == self.boot:
                self._room_changed(room.name)
        elif m.get("action") == "leave" and sid in room.members:
            del room.members[sid]
            room.online.pop(sid, None)
            room.missing.discard(sid)
            if not room.members and room.name not in self.default_rooms:
                room.empty_since = self._clock()
            if m.get("by") == self.boot:
                self._room_changed(room.name)

    def _on_topic_watched(self, event: TopicWatched) -> None:
        name = room_name(event.topic)
        room = self.rooms.get(name) if name is not None else None
        if room is None:
            return
        if event.failed:
            room.watched = False  # the next tick watches again
            self._note(f"cannot watch {event.topic}: {printable(event.failed)}")
            return
        room.position = event.position
        if self.cluster:
            # Members whose join is older than the history the watch brought.
            room.syncing = True
            self._require_server().request_presence(room.topic)

    def _on_topic_lost(self, event: TopicLost) -> None:
        name = room_name(event.topic)
        room = self.rooms.get(name) if name is not None else None
        if room is None:
            return
        self._note(f"{event.topic}: offsets {event.lost_from}..{event.lost_to or '?'} lost; "
                   f"history restarts")
        room.history.clear()
        room.position = event.position
        if self.cluster:
            room.syncing = True
            self._require_server().request_presence(room.topic)

    def _on_cluster_presence(self, event: ClusterPresence) -> None:
        """Who is in the room on any node: right after the watch began, members whose join
        the mirror never saw are added (a node that started late); a member missing from two
        answers in a row is published as gone (its node died; nobody else would say so)."""
        name = room_name(event.topic)
        room = self.rooms.get(name) if name is not None else None
        if room is None or event.failed:
            return
        if room.syncing:
            room.syncing = False
            for sid in event.members - room.members.keys() - room.joining:
                user = event.identities.get(sid, "")
                if user:
                    room.members[sid] = user
                    room.online.setdefault(sid, True)
        server = self._require_server()
        missing = {sid for sid in room.members
                   if sid not in event.members and server.get_client(sid) is None}
        for sid in sorted(missing & room.missing):
            self._note(f"{room.members[sid]!r} ({sid[:6]}) is gone from {room.topic} "
                       f"(its node stopped)")
            self._publish_event(room, {"t": "presence", "action": "leave", "sid": sid,
                                       "user": room.members[sid]})
        room.missing = missing - room.missing

    def _watch(self, room: Room) -> None:
        if room.watched:
            return
        try:
            server = self._require_server()
            server.watch(room.live_topic)
            room.watched = True
            server.watch(room.topic, history=self.history_size)
        except LocalProtocolError:
            room.watched = False  # the server is not started yet: the next tick

    def _unwatch(self, room: Room) -> None:
        if room.watched:
            server = self._require_server()
            server.unwatch(room.topic)
            server.unwatch(room.live_topic)
            room.watched = False

    # ------------------------------------------------------------------ actions

    def _create_room(self, session: Session, name: str) -> bool:
        limits = self.limits
        if len(self.rooms) >= limits.max_rooms:
            self.tick()  # an expired room frees its place
            if len(self.rooms) >= limits.max_rooms:
                return False
        user = session.identity
        alive = sum(1 for r in self.rooms.values()
                    if r.creator is not None and (r.creator[0] == session.id
                                                  or r.creator[1] == user))
        if alive >= limits.rooms_per_user:
            return False
        now = self._clock()
        rate = 1 / limits.room_create_interval
        burst = max(1, limits.rooms_per_user)
        keys = ("s:" + session.id, "u:" + user)
        buckets = [self._create_buckets.get(k) or TokenBucket(rate, burst, now) for k in keys]
        if not all(_refill(b, now) >= 1 for b in buckets):
            return False
        for key, bucket in zip(keys, buckets, strict=True):
            bucket.take(1, now)
            self._create_buckets[key] = bucket
        room = self.rooms[name] = Room(name, self.history_size, creator=(session.id, user),
                                       empty_since=now)
        self._watch(room)
        self._room_changed(room.name)
        return True

    def _chat_message(self, session: Session, room: Room, request: dict[str, Any]) -> None:
        message_id = request.get("id")
        text = request.get("text")
        if not isinstance(message_id, str) or not _MESSAGE_ID.fullmatch(message_id):
            self._error(session.id, "bad_id", "a message needs an id of 8-64 [A-Za-z0-9_-]")
            return
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            self._error(session.id, "bad_text", f"text must be 1-{MAX_TEXT} characters",
                        message_id)
            return
        if not room.remember(message_id):
            return  # already published (sent twice, or again to another node): once only
        last = self._last_typing.get(session.id)
        if last is not None and last[0] == room.name:
            # The message ends the typing (clients clear it on the message itself).
            self._last_typing[session.id] = (room.name, False, last[2])
        self._publish_event(room, {"t": "msg", "id": message_id, "sid": session.id,
                                   "user": session.identity, "text": text})

    def _typing(self, session: Session, room: Room, on: bool) -> None:
        """Published to the room's live topic, never to its timeline. A notice that changes
        nothing (off after off, on again within ``typing_interval``) is dropped; the rest pass
        a per-session bucket, so alternating on/off cannot outrun it."""
        now = self._clock()
        last = self._last_typing.get(session.id)
        interval = self.limits.typing_interval
        if last is not None and last[0] == room.name and last[1] == on \
                and (not on or now - last[2] < interval):
            return
        if last is None and not on:
            return
        if not self._take(self._typing_buckets, session.id, interval, 4):
            return  # ephemeral: dropped, not refused
        self._last_typing[session.id] = (room.name, on, now)
        self._require_server().publish(room.live_topic, _dumps(
            {"t": "typing", "room": room.name, "sid": session.id, "user": session.identity,
             "on": on, "ts": self._wall_ms()}), exclude=session.id)

    # ------------------------------------------------------------------ helpers

    def _take(self, buckets: dict[str, TokenBucket], key: str, interval: float,
              burst: int) -> bool:
        now = self._clock()
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = TokenBucket(1 / interval, burst, now)
        return bucket.take(1, now)

    def _publish_event(self, room: Room, event: dict[str, Any]) -> None:
        """Publish a timeline event to the room topic; every node applies it when it comes
        back (its position is its place: ``boot``/``n`` in history)."""
        event = {**event, "room": room.name, "by": self.boot, "ts": self._wall_ms()}
        self._require_server().publish(room.topic, _dumps(event))

    def _member_changed(self, room: Room, session_id: str, *, online: bool) -> None:
        """One member went away (connection lost, session waiting) or came back."""
        self._require_server().publish(room.live_topic, _dumps(
            {"t": "member", "room": room.name, "sid": session_id,
             "user": room.members.get(session_id, ""), "online": online}))

    def _room_changed(self, name: str, *, hold: bool = False) -> None:
        """A room was created or removed or its member count changed: everyone is told the
        changed rooms only, at most once per ``rooms_update_interval``."""
        self._rooms_version = max(self._rooms_version + 1, self._wall_ms())
        self._rooms_dirty.add(name)
        now = self._clock()
        if not hold and now - self._rooms_sent_at >= self.limits.rooms_update_interval:
            self._send_room_changes(now)

    def _send_room_changes(self, now: float) -> None:
        changes: list[dict[str, Any]] = []
        for name in sorted(self._rooms_dirty):
            room = self.rooms.get(name)
            changes.append({"name": name, "removed": True} if room is None
                           else {"name": name, "users": len(room.members)})
        self._rooms_dirty.clear()
        self._rooms_sent_at = now
        # At most max_rooms entries of < 60 bytes: far below the message limit.
        self._require_server().broadcast(_dumps({"t": "rooms", "changes": changes,
                                                 "v": self._rooms_version}))

    def _send_room(self, session_id: str, room: Room) -> None:
        """A room's member list, then its last messages, to one session's inbox: each in
        pages that fit the message size limit."""
        boot = str(room.position.epoch)
        self._paged(session_id, {"t": "members", "room": room.name, "boot": boot,
                                 "v": room.position.offset}, "users", self._users(room))
        self._paged(session_id, {"t": "history", "room": room.name, "boot": boot},
                    "items", list(room.history))

    def _paged(self, session_id: str, head: dict[str, Any], key: str,
               items: list[dict[str, Any]]) -> None:
        # "page"/"pages" are filled in last; reserve room for their digits.
        frame = len(_dumps({**head, key: [], "page": 99999, "pages": 99999}))
        budget = self._page_budget - frame
        pages: list[list[dict[str, Any]]] = [[]]
        size = 0
        for item in items:
            item_size = len(_dumps(item)) + 1  # and its comma
            if item_size > budget:
                continue  # cannot happen with the text and name limits; never send too much
            if pages[-1] and size + item_size > budget:
                pages.append([])
                size = 0
            pages[-1].append(item)
            size += item_size
        for index, page in enumerate(pages, 1):
            self._inbox(session_id, {**head, key: page, "page": index, "pages": len(pages)})

    def _users(self, room: Room) -> list[dict[str, Any]]:
        server = self._require_server()
        users = []
        for sid, user in room.members.items():
            session = server.get_client(sid)  # this node's own sessions: known for sure
            online = session.connected if session is not None else room.online.get(sid, True)
            users.append({"sid": sid, "user": user, "online": online})
        users.sort(key=lambda u: (str(u["user"]).casefold(), str(u["sid"])))
        return users

    def _room_list(self) -> list[dict[str, Any]]:
        defaults = [self.rooms[n] for n in self.default_rooms]
        others = sorted((r for n, r in self.rooms.items() if n not in self.default_rooms),
                        key=lambda r: r.name)
        return [{"name": r.name, "users": len(r.members), **({"fixed": True} if fixed else {})}
                for fixed, rooms in ((True, defaults), (False, others)) for r in rooms]

    def _inbox(self, session_id: str, message: dict[str, Any]) -> None:
        self._require_server().send_to_client(session_id, _dumps(message))

    def _error(self, session_id: str, code: str, message: str, message_id: object = None) -> None:
        error: dict[str, Any] = {"t": "error", "code": code, "message": message}
        if isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id):
            error["id"] = message_id
        self._inbox(session_id, error)

    def _require_server(self) -> ChatServer:
        if self._server is None:
            raise RuntimeError("ChatApp.attach(server) first")
        return self._server

    def _note(self, text: str) -> None:
        if self._log:
            print(f"[chat] {text}", flush=True)


def _refill(bucket: TokenBucket, now: float) -> float:
    """The bucket's tokens at ``now`` (taking nothing)."""
    bucket.take(0, now)
    return bucket.tokens


def _fields(limits: ChatLimits) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in ChatLimits.__dataclass_fields__}


def _now_ms() -> int:
    return int(time.time() * 1000)
