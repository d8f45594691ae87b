"""The chat's server side: JSON messages inside SigmaSockets payloads (protocol in README.md).

Rooms are topics ``room:<name>``; everything a room's members must see in order (messages,
join/leave notices, typing, online changes) is *published* to its topic, so the hub gives it a
position, keeps it in the topic's history, replays it after a dropped connection and never
delivers it twice. What one client alone needs (its welcome, a room's last N messages when it
joins) goes to its ``$inbox``; the room list goes to everyone on ``$all``.

The server keeps nothing on disk. After a restart it has a new ``boot`` id and empty rooms;
returning clients get a fresh session (they are told: ``session_reset``), resend what the old
server never acknowledged, and are put back in their rooms by the hub (from the positions in
their Hello) — which this app sees as presence joins and answers with the room's history.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sigma_asyncio import ClientSession, SigmaSocketServer
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest

__all__ = ["ROOM_PREFIX", "ChatApp", "Room", "clean_username", "room_name"]

ROOM_PREFIX = "room:"
_ROOM_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,23}")
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_USERNAME = 24
MAX_TEXT = 2000
#: Message ids remembered per room to drop a message that arrives twice.
_REMEMBERED_IDS = 4096
#: Largest inbox message when sending history (split beyond).
_CHUNK_BYTES = 256 * 1024
#: A client repeating "typing on" more often than this is not re-published.
_TYPING_MIN_INTERVAL = 1.0


def room_name(topic: str) -> str | None:
    """``"general"`` for ``"room:general"``; None for anything that is not a valid room topic."""
    if not topic.startswith(ROOM_PREFIX):
        return None
    name = topic[len(ROOM_PREFIX):]
    return name if _ROOM_NAME.fullmatch(name) else None


def clean_username(raw: str) -> str:
    """Trimmed, whitespace collapsed, control characters dropped; "" if unusable."""
    text = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", raw)
                   if ch.isspace() or unicodedata.category(ch)[0] != "C")
    text = " ".join(text.split())
    return text if 0 < len(text) <= MAX_USERNAME else ""


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(slots=True)
class Room:
    name: str
    history_size: int
    #: Per-room sequence number of timeline events (messages and notices) in this boot.
    seq: int = 0
    history: deque[dict[str, Any]] = field(init=False)
    #: session id -> username of the members (subscribers) of the room.
    members: dict[str, str] = field(default_factory=dict)
    recent_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.history = deque(maxlen=self.history_size)

    @property
    def topic(self) -> str:
        return ROOM_PREFIX + self.name

    def remember(self, message_id: str) -> bool:
        """False if the id was already seen (a duplicate)."""
        if message_id in self.recent_ids:
            return False
        self.recent_ids[message_id] = None
        if len(self.recent_ids) > _REMEMBERED_IDS:
            self.recent_ids.popitem(last=False)
        return True


class ChatApp:
    """The chat's logic, attached to a :class:`SigmaSocketServer` with :meth:`attach`."""

    def __init__(self, *, history_size: int = 50, rooms: Sequence[str] = ("general", "random"),
                 max_rooms: int = 50, log: bool = True) -> None:
        self.boot = secrets.token_hex(4)
        self.history_size = history_size
        self.max_rooms = max_rooms
        self.default_rooms = tuple(rooms)
        self.rooms: dict[str, Room] = {}
        for name in rooms:
            if not _ROOM_NAME.fullmatch(name):
                raise ValueError(f"invalid room name {name!r}: use a-z, 0-9, '-', '_' "
                                 f"(at most 24, starting with a letter or digit)")
            self.rooms[name] = Room(name, history_size)
        self._log = log
        self._server: SigmaSocketServer | None = None
        # Rooms a fresh session was put back into by the hub (server restart): their presence
        # join is not announced as a join.
        self._restored: dict[str, set[str]] = {}
        self._last_typing: dict[str, tuple[str, float]] = {}

    # ------------------------------------------------------------------ hooks

    def authenticate(self, request: AuthRequest) -> AuthAccept | AuthRefuse:
        """The username comes in the Hello's client info (``metadata.user``)."""
        info = request.hello.client
        user = clean_username(info.metadata.get("user", "") if info is not None else "")
        if not user:
            return AuthRefuse(message=f"choose a username of 1 to {MAX_USERNAME} characters")
        return AuthAccept(identity=user, metadata={"user": user})

    def authorize_subscribe(self, session: ClientSession, topic: str) -> bool:
        """Only room topics; a new room only while there are fewer than ``max_rooms``."""
        name = room_name(topic)
        return name is not None and (name in self.rooms or len(self.rooms) < self.max_rooms)

    def attach(self, server: SigmaSocketServer) -> None:
        self._server = server
        server.on("connection", self._on_connection)
        server.on("disconnection", self._on_disconnection)
        server.on("presence", self._on_presence)
        server.on("message", self._on_message)
        server.on("error", self._on_error)

    # ------------------------------------------------------------------ events

    def _on_connection(self, session: ClientSession) -> None:
        restored = set()
        for topic in session.subscriptions:
            name = room_name(topic)
            room = self.rooms.get(name) if name is not None else None
            if room is not None and session.id in room.members:
                self._publish_users(room)  # a resumed member is online again
            elif name is not None:
                restored.add(topic)  # the hub re-joined a fresh session: presence follows
        if restored:
            self._restored[session.id] = restored
            # Presence events for this Hello are dispatched right after this one.
            asyncio.get_running_loop().call_soon(self._restored.pop, session.id, None)
        self._inbox(session.id, {"t": "hello", "sid": session.id, "user": session.identity,
                                 "boot": self.boot, "history_size": self.history_size,
                                 "rooms": self._room_list()})
        self._note(f"connected {session.identity!r} ({session.id[:6]})")

    def _on_disconnection(self, session: ClientSession, reason: str) -> None:
        self._note(f"disconnected {session.identity!r} ({session.id[:6]}): {reason}")
        if self._require_server().get_client(session.id) is None:
            return  # the session ended: presence leaves follow
        for topic in session.subscriptions:
            name = room_name(topic)
            room = self.rooms.get(name) if name is not None else None
            if room is not None and session.id in room.members:
                self._publish_users(room)  # shown as away until it resumes or expires

    def _on_presence(self, topic: str, session: ClientSession, joined: bool) -> None:
        name = room_name(topic)
        if name is None:
            return
        room = self.rooms.get(name)
        if room is None:
            if not joined:
                return
            room = self.rooms[name] = Room(name, self.history_size)
        user = session.identity
        if joined:
            room.members[session.id] = user
            quiet = topic in self._restored.get(session.id, ())
            if quiet:
                self._publish_users(room)
            else:
                self._publish_event(room, {"t": "presence", "action": "join", "sid": session.id,
                                           "user": user, "users": self._users(room)})
            self._send_history(session.id, room)
        else:
            if room.members.pop(session.id, None) is None:
                return
            self._publish_event(room, {"t": "presence", "action": "leave", "sid": session.id,
                                       "user": user, "users": self._users(room)})
        self._require_server().broadcast(_dumps({"t": "rooms", "rooms": self._room_list()}))

    def _on_message(self, session: ClientSession, data: bytes, topic: str) -> None:
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
        if room is None or room.topic not in session.subscriptions:
            self._error(session.id, "not_in_room", f"join room {name!r} first",
                        request.get("id"))
            return
        if kind == "msg":
            self._chat_message(session, room, request)
        elif kind == "typing":
            self._typing(session, room, bool(request.get("on")))
        else:
            self._send_history(session.id, room)

    def _on_error(self, error: BaseException) -> None:
        self._note(f"hook failed: {error!r}")

    # ------------------------------------------------------------------ actions

    def _chat_message(self, session: ClientSession, room: Room, request: dict[str, Any]) -> None:
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
            return  # already published (sent twice): the protocol promises it once
        self._last_typing.pop(session.id, None)
        event = self._publish_event(room, {"t": "msg", "id": message_id, "sid": session.id,
                                           "user": session.identity, "text": text})
        room.history.append(event)

    def _typing(self, session: ClientSession, room: Room, on: bool) -> None:
        now = time.monotonic()
        last = self._last_typing.get(session.id)
        if on and last is not None and last[0] == room.name \
                and now - last[1] < _TYPING_MIN_INTERVAL:
            return
        if on:
            self._last_typing[session.id] = (room.name, now)
        else:
            self._last_typing.pop(session.id, None)
        self._require_server().publish(room.topic, _dumps(
            {"t": "typing", "room": room.name, "sid": session.id, "user": session.identity,
             "on": on, "ts": _now_ms()}), exclude=session.id)

    # ------------------------------------------------------------------ helpers

    def _publish_event(self, room: Room, event: dict[str, Any]) -> dict[str, Any]:
        room.seq += 1
        event = {**event, "room": room.name, "boot": self.boot, "n": room.seq, "ts": _now_ms()}
        self._require_server().publish(room.topic, _dumps(event))
        return event

    def _publish_users(self, room: Room) -> None:
        self._require_server().publish(room.topic, _dumps(
            {"t": "users", "room": room.name, "users": self._users(room)}))

    def _send_history(self, session_id: str, room: Room) -> None:
        items = list(room.history)
        users = self._users(room)
        # Keep each inbox message well under the message size limit.
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for item in items:
            item_size = len(_dumps(item))
            if chunks[-1] and size + item_size > _CHUNK_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += item_size
        for chunk in chunks:
            self._inbox(session_id, {"t": "history", "room": room.name, "boot": self.boot,
                                     "items": chunk, "users": users})

    def _users(self, room: Room) -> list[dict[str, Any]]:
        server = self._require_server()
        users = []
        for sid, user in room.members.items():
            session = server.get_client(sid)
            users.append({"sid": sid, "user": user,
                          "online": session is not None and session.connected})
        users.sort(key=lambda u: (str(u["user"]).casefold(), str(u["sid"])))
        return users

    def _room_list(self) -> list[dict[str, Any]]:
        defaults = [self.rooms[n] for n in self.default_rooms]
        others = sorted((r for n, r in self.rooms.items() if n not in self.default_rooms),
                        key=lambda r: r.name)
        return [{"name": r.name, "users": len(r.members)} for r in (*defaults, *others)]

    def _inbox(self, session_id: str, message: dict[str, Any]) -> None:
        self._require_server().send_to_client(session_id, _dumps(message))

    def _error(self, session_id: str, code: str, message: str, message_id: object = None) -> None:
        error: dict[str, Any] = {"t": "error", "code": code, "message": message}
        if isinstance(message_id, str):
            error["id"] = message_id
        self._inbox(session_id, error)

    def _require_server(self) -> SigmaSocketServer:
        if self._server is None:
            raise RuntimeError("ChatApp.attach(server) first")
        return self._server

    def _note(self, text: str) -> None:
        if self._log:
            print(f"[chat] {text}", flush=True)


def _now_ms() -> int:
    return int(time.time() * 1000)
