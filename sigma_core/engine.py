"""The cluster engine interface: what the hub asks of shared storage, and what comes back.

Theory of operation
-------------------
A hub keeps topics (streams with positions and bounded history), session records and presence in
an **engine**. On one process the engine is :class:`~sigma_core.backplane.MemoryEngine`: it
lives in the hub's memory and answers within the call (an *inline* engine), so a single node
works exactly as it always did. Across nodes the engine is shared storage (Redis/Valkey, in its
own I/O package) reached through an *external* engine: the hub stays sans-IO and talks to it the
way :class:`~sigma_core.client.ClientSession` talks to its socket:

* **requests out** — every call into the hub may queue :class:`EngineRequest` objects; the
  adapter drains them with ``hub.engine_requests()`` (like ``flush()``) and hands them to its
  :class:`EngineDriver`. Each carries a ``request_id`` unique within the hub.
* **results in** — the driver answers each request exactly once with an :class:`EngineResult`
  carrying the same ``request_id`` (or :class:`EngineFailed`), which the adapter feeds back with
  ``hub.engine_result(result, now)``.
* **messages in** — a message appended on *any* node to a topic this node receives (see
  :class:`Receive`) comes in as ``hub.engine_message(topic, entry, now)``, including the ones
  this node appended itself (the hub drops those it already delivered: it checks continuity).
* **status in** — ``hub.engine_status(up, reason, now)`` when the driver loses or regains the
  engine (connection down, failover). While down, the hub refuses what needs the engine
  (resumes, subscribes) with a clear error and keeps serving what it holds. A driver also
  reports ``up`` after its message delivery reconnected (messages appended meanwhile were not
  delivered): the hub then reads every head at once instead of at its next periodic check.

Results may arrive in any order across topics, but a driver must keep, **per topic**, the order
in which it received appends, and deliver :class:`Received` messages of one topic in position
order as far as it can; the hub tolerates loss and reordering (it checks ``offset == last + 1``
per topic and ``epoch`` equality, fills holes with :class:`ReadRange`, and compares heads
periodically with :class:`ReadHeads`), but never a reused position: an engine that lost
writes (asynchronous failover) must change the topic's epoch rather than hand out an offset twice.

Names
-----
An engine *topic* is the hub's storage key: a room name, ``$all``, or ``$inbox:<session id>``
for a session's inbox (the client sees ``$inbox``). Session records are keyed by session id.
Presence members are session ids with opaque ``info`` bytes (the session's metadata, encoded by
the hub).

What an engine stores is checked when it comes back: the hub decodes every envelope and session
record it reads and treats one that is corrupt, foreign (another topic, another session,
another format) or inconsistent (a position other than the one the engine reports) as a failed
recovery with a logged reason, never as an exception (see :func:`decode_session_record`).

Bounds (each with its behaviour when full) are in :class:`ExternalEngineConfig`.

This module is pure: types, the session record codec and digests. No I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .messages import StreamPosition

__all__ = [
    "INBOX_PREFIX",
    "SESSION_RECORD_FORMAT",
    "Append",
    "Appended",
    "DeleteSession",
    "Done",
    "DropTopic",
    "EngineDriver",
    "EngineFailed",
    "EngineInputs",
    "EngineLink",
    "EngineRequest",
    "EngineResult",
    "ExternalEngineConfig",
    "Heads",
    "HistoryEntry",
    "InlineEngine",
    "LoadSession",
    "PresenceMembers",
    "PresenceMissing",
    "PresenceRead",
    "PresenceRefresh",
    "PresenceUpdate",
    "RangeRead",
    "ReadHeads",
    "ReadRange",
    "Receive",
    "RecordError",
    "ReplayGap",
    "Route",
    "SaveSession",
    "SessionLoaded",
    "SessionRecord",
    "SessionSaved",
    "StopReceiving",
    "TouchSession",
    "decode_session_record",
    "encode_session_record",
    "token_digest",
]


# ----------------------------------------------------------------------------- stored data


@dataclass(frozen=True, slots=True)
class Route:
    """Who a message may reach, beyond the topic's subscribers: ``broadcast(exclude=...)`` and
    ``send_where(...)``. Stored with the message (not only in the publishing hub): a session that
    was excluded may resume on another node and must not get the message replayed there."""

    #: Session ids the message must not reach.
    exclude: frozenset[str] = frozenset()
    #: When not None, only these session ids receive it.
    only: frozenset[str] | None = None

    def reaches(self, session_id: str) -> bool:
        if self.only is not None and session_id not in self.only:
            return False
        return session_id not in self.exclude

    def to_bytes(self) -> bytes:
        """A compact, engine-storable form (JSON, ids sorted)."""
        doc: dict[str, object] = {"x": sorted(self.exclude)}
        if self.only is not None:
            doc["o"] = sorted(self.only)
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Route:
        """The inverse of :meth:`to_bytes`; raises :class:`RecordError` on anything else."""
        try:
            doc = json.loads(raw)
            exclude = doc["x"]
            only = doc.get("o")
            if not isinstance(exclude, list) or not all(isinstance(s, str) for s in exclude):
                raise ValueError("exclude is not a list of ids")
            if only is not None and (not isinstance(only, list)
                                     or not all(isinstance(s, str) for s in only)):
                raise ValueError("only is not a list of ids")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordError(f"corrupt route: {exc}") from None
        return cls(frozenset(exclude), None if only is None else frozenset(only))


class HistoryEntry(NamedTuple):
    """One published message as a topic holds it: its position, the wall-clock time it was
    appended (seconds, the hub's ``now + wall_clock_offset``; history's age limit uses it) and
    the encoded ``Data`` envelope every subscriber receives.

    The envelope's own ``epoch``/``offset`` fields equal the entry's position for entries a hub
    built inline (the memory engine); an external engine assigns the position after the
    envelope was built, so the hub re-encodes what it reads with the position the engine
    reports (and checks everything else: topic, well-formedness). The WebSocket frame built from
    it is the hub's business (its frame cache), not the engine's.

    A tuple, not a dataclass: one is made per message, and a tuple is the cheapest to build."""

    epoch: int
    offset: int
    time: float
    envelope: bytes
    #: None for the common case: every subscriber.
    route: Route | None = None

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(self.epoch, self.offset)

    @property
    def size(self) -> int:
        """The envelope's size in bytes (what history's byte limit counts)."""
        return len(self.envelope)

    def reaches(self, session_id: str) -> bool:
        route = self.route
        return route is None or route.reaches(session_id)


@dataclass(frozen=True, slots=True)
class ReplayGap:
    """Replay is impossible: offsets ``lost_from..lost_to`` of the asked epoch are gone
    (``lost_to`` 0 where unknown: another epoch, or an unknown topic)."""

    lost_from: int
    lost_to: int


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineRequest:
    """Base of every request. ``request_id`` is unique among a hub's outstanding requests; the
    result carries it back."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Append(EngineRequest):
    """Append a message to ``topic``: assign the next position (creating the stream with a fresh
    epoch if it does not exist), keep it in history (trimmed to the engine's limits), and
    deliver it as a received message to every node receiving ``topic`` — atomically (the Redis
    engine does all three in one script). Result: :class:`Appended`."""

    topic: str
    envelope: bytes
    #: Wall-clock seconds (stored with the entry; history's age limit counts from it).
    wall_time: float
    route: Route | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRange(EngineRequest):
    """Read history of ``topic`` after ``after``, at most ``max_count`` entries and (beyond the
    first) ``max_bytes`` of envelopes, so a long replay is paced in batches. Result:
    :class:`RangeRead` (all-or-nothing: a gap when any wanted entry is gone)."""

    topic: str
    after: StreamPosition
    max_count: int
    max_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadHeads(EngineRequest):
    """The current position of each topic (offset 0 for an empty one). With ``create``, a topic
    that does not exist is created with a fresh epoch (a subscription needs an epoch to stand
    on); without, it is reported as ``StreamPosition(0, 0)``. Result: :class:`Heads`."""

    topics: tuple[str, ...]
    create: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DropTopic(EngineRequest):
    """Forget a topic and its history (an ended session's inbox). Result: :class:`Done`."""

    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SaveSession(EngineRequest):
    """Store a session record (bytes from :func:`encode_session_record`) that expires ``ttl``
    seconds after the engine stored it (``math.inf``: no expiry, while a node holds its
    connection) — only if the engine holds no record for the session or
    one with a lower ``version`` (a compare-and-set that fences a node which lost the session to
    another node). Result: :class:`SessionSaved` (``stored`` False when fenced)."""

    session_id: str
    record: bytes
    version: int
    ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TouchSession(EngineRequest):
    """Set a stored session's time to live to ``ttl`` seconds from now (``math.inf``: keep until
    deleted; used while a node holds the session's connection). Result: :class:`Done`."""

    session_id: str
    ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadSession(EngineRequest):
    """Read a session record. Result: :class:`SessionLoaded` (``record`` None when the engine
    has none: never stored, expired or deleted)."""

    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSession(EngineRequest):
    """Forget a session record (the session ended). Result: :class:`Done`."""

    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceUpdate(EngineRequest):
    """Add or refresh members of ``topic``'s cluster-wide presence (each with opaque ``info``
    and an expiry ``ttl`` seconds from now) and remove ``leaves``. A node refreshes its members
    every ``presence_ttl / 3``; members of a node that stopped refreshing (crashed) disappear
    after ``ttl``. Result: :class:`Done`."""

    topic: str
    joins: tuple[tuple[str, bytes], ...] = ()
    leaves: tuple[str, ...] = ()
    ttl: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceRefresh(EngineRequest):
    """Push the expiry of ``members`` of ``topic``'s presence to ``ttl`` seconds from now —
    ids only: their info was written when they joined (:class:`PresenceUpdate`) and is not sent
    again. A member the engine does not hold (never joined there, expired while its node could
    not reach the engine, removed) is not added: the result lists it, and the node joins it
    again with its info. An expiry is never shortened. Result: :class:`PresenceMissing`."""

    topic: str
    members: tuple[str, ...]
    ttl: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceRead(EngineRequest):
    """The unexpired members of ``topic``. Result: :class:`PresenceMembers`."""

    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Receive(EngineRequest):
    """Start delivering messages appended to ``topic`` (on any node) to this node as received
    messages. Idempotent. Result: :class:`Done` once the subscription is in place (messages
    appended after that are delivered; the hub reads heads afterwards to close the window)."""

    topic: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopReceiving(EngineRequest):
    """Stop delivering ``topic`` to this node (its last local subscriber left). Result:
    :class:`Done`."""

    topic: str


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineResult:
    """Base of every result; ``request_id`` is the request's."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineFailed(EngineResult):
    """The request was not carried out, or its outcome is unknown (``reason`` says which:
    "engine unavailable", "timeout", the engine's error). The hub treats an unknown outcome of
    an append as not delivered locally (the message may still appear through
    :class:`Receive`, with a position, and then is delivered once)."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Appended(EngineResult):
    topic: str
    position: StreamPosition


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeRead(EngineResult):
    """The answer to :class:`ReadRange`: either ``gap`` (nothing usable: the range is gone) or
    ``entries`` in position order starting right after the asked position, with ``head`` the
    topic's position when read; ``entries`` ending before ``head`` means "more to read"."""

    topic: str
    head: StreamPosition
    entries: tuple[HistoryEntry, ...] = ()
    gap: ReplayGap | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Heads(EngineResult):
    heads: tuple[tuple[str, StreamPosition], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSaved(EngineResult):
    session_id: str
    #: False: the engine holds a record with an equal or higher version (another node took the
    #: session over); nothing was written.
    stored: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLoaded(EngineResult):
    session_id: str
    record: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceMembers(EngineResult):
    topic: str
    members: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceMissing(EngineResult):
    """The answer to :class:`PresenceRefresh`: the members it could not refresh (not held, or
    expired already), in the order asked."""

    topic: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Done(EngineResult):
    """The request (one without a value to return) was carried out."""


# ----------------------------------------------------------------------------- engines


class InlineEngine(Protocol):
    """An engine that answers within the call: the memory engine (whose typed methods the
    hub's single-node paths call directly) and what the simulated cluster and the tests put
    behind a driver. :meth:`execute` answers any request."""

    def execute(self, request: EngineRequest, now: float) -> EngineResult:
        """Carry out ``request`` and return its result (never raises for a well-formed
        request; an engine that cannot answer returns :class:`EngineFailed`)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalEngineConfig:
    """Selects an external engine: the hub queues requests for the adapter's driver
    (``hub.engine_requests()``) and waits for results. Durations in seconds."""

    #: This node's name: in logs, stats and session records (which node last held a session).
    node_id: str
    #: Requests awaiting results, at most. When full, work that needs the engine is refused at
    #: once as if the engine were down: a Hello gets Goodbye(UNKNOWN, "cluster engine
    #: unavailable: ...", reconnect_after_ms) and close 1013 (the client retries with backoff),
    #: a client Subscribe gets Error(UNKNOWN) with the same message, and an app command
    #: (publish, send_to, subscribe) raises ``LocalProtocolError`` saying so.
    max_pending: int = 10_000
    #: A request without a result after this long counts as :class:`EngineFailed` ("timeout").
    request_timeout: float = 5.0
    #: Every this often, the hub reads the heads of the topics it receives and fetches what it
    #: missed (a cross-node message dropped without a later one to reveal the hole). While the
    #: checks find nothing missing, the interval doubles after each, up to
    #: ``heads_interval_max``; it is back to ``heads_interval`` (and a check runs at once) when
    #: the driver reports the engine (re)gained — which a driver must also do after its
    #: message delivery reconnected, the one way a delivery is lost — and when a check or a
    #: message reveals a hole.
    heads_interval: float = 1.0
    #: The longest interval between two heads checks (see ``heads_interval``); set it equal to
    #: ``heads_interval`` for a fixed interval.
    heads_interval_max: float = 8.0
    #: Presence members expire this long after their node last refreshed them.
    presence_ttl: float = 30.0
    #: Entries a hub asks for per range read (replay and hole filling are paced in batches).
    read_batch_count: int = 256
    read_batch_bytes: int = 1 << 20
    #: Out-of-order messages held per topic while a hole is filled. Beyond it the hub stops
    #: holding, reads the range from history instead and, if history lacks it, reports the
    #: range lost to the topic's subscribers.
    max_held_per_topic: int = 1000

    def __post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("ExternalEngineConfig.node_id must not be empty")
        for name in ("max_pending", "read_batch_count", "read_batch_bytes",
                     "max_held_per_topic"):
            if getattr(self, name) < 1:
                raise ValueError(f"ExternalEngineConfig.{name} must be >= 1")
        for name in ("request_timeout", "heads_interval", "heads_interval_max",
                     "presence_ttl"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ExternalEngineConfig.{name} must be finite and > 0")
        if self.heads_interval_max < self.heads_interval:
            raise ValueError("ExternalEngineConfig.heads_interval_max must be >= heads_interval")


class EngineInputs(Protocol):
    """What a driver calls back (the adapter implements it; each call feeds the hub with the
    adapter's ``now`` and then flushes, like bytes from a socket)."""

    def engine_result(self, result: EngineResult) -> None: ...

    def engine_message(self, topic: str, entry: HistoryEntry) -> None: ...

    def engine_status(self, up: bool, reason: str) -> None: ...


class EngineDriver(Protocol):
    """The I/O side of an external engine (e.g. the Redis engine's anyio driver). Both adapters
    drive it the same way: they start :meth:`run` in their task group / nursery with their
    :class:`EngineInputs`, hand it every batch of requests with :meth:`submit` (never blocks;
    the hub bounds how many are outstanding), and cancel :meth:`run` to stop."""

    def submit(self, requests: Sequence[EngineRequest]) -> None: ...

    def run(self, inputs: EngineInputs) -> Awaitable[None]: ...


class _EngineHub(Protocol):
    """The hub's engine side (what :class:`EngineLink` calls)."""

    def engine_requests(self) -> list[EngineRequest]: ...

    def engine_result(self, result: EngineResult, now: float) -> None: ...

    def engine_message(self, topic: str, entry: HistoryEntry, now: float) -> None: ...

    def engine_status(self, up: bool, reason: str, now: float) -> None: ...


class EngineLink:
    """What both adapters use to connect a hub to an external engine's driver, the same way.

    The adapter makes one with its clock (``loop.time`` / ``trio.current_time``) and its
    after-every-call routine (write what ``flush`` returns, dispatch events, re-arm the timer),
    starts ``driver.run(link)`` in its task group / nursery, and calls :meth:`pump` in that
    routine (every call into the hub may queue requests). The driver calls the link back
    (:class:`EngineInputs`), which feeds the hub with ``now`` and runs the routine."""

    def __init__(self, hub: _EngineHub, driver: EngineDriver, clock: Callable[[], float],
                 after: Callable[[], None]) -> None:
        self.hub = hub
        self.driver = driver
        self._clock = clock
        self._after = after

    def pump(self) -> None:
        """Hand the hub's queued requests to the driver."""
        requests = self.hub.engine_requests()
        if requests:
            self.driver.submit(requests)

    def engine_result(self, result: EngineResult) -> None:
        self.hub.engine_result(result, self._clock())
        self._after()

    def engine_message(self, topic: str, entry: HistoryEntry) -> None:
        self.hub.engine_message(topic, entry, self._clock())
        self._after()

    def engine_status(self, up: bool, reason: str) -> None:
        self.hub.engine_status(up, reason, self._clock())
        self._after()


# ----------------------------------------------------------------------------- session records

#: The ``format`` field of every session record this version writes and accepts.
#: The engine topics of sessions' inboxes: ``INBOX_PREFIX + session_id``.
INBOX_PREFIX = "$inbox:"

SESSION_RECORD_FORMAT = "sigma.session.v1"


class RecordError(ValueError):
    """Something read back from an engine is not what this hub wrote: corrupt, foreign, or of
    another format. The message says why (it is logged; the client sees a failed resume)."""


def token_digest(token: bytes) -> bytes:
    """What a session record keeps instead of the resume token: SHA-256 of it. A node that
    resumes the session compares the digest of the client's token with it
    (``hmac.compare_digest``); the token itself never leaves the node that made it."""
    return hashlib.sha256(token).digest()


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A session as the engine keeps it, written through on every change that matters for a
    resume elsewhere: subscriptions, the acknowledged client sequence, identity."""

    session_id: str
    token_digest: bytes
    #: Increases with every save; the engine refuses a save that does not (see SaveSession).
    version: int
    #: The node that wrote it.
    node: str
    identity: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    client_version: str = ""
    #: topic -> the position its subscription started at (replay floor when the client does not
    #: send one); ``$inbox`` included (its engine topic is ``$inbox:<session_id>``).
    subscriptions: tuple[tuple[str, StreamPosition], ...] = ()
    #: Highest client sequence the engine holds: the node acknowledged at most this much.
    last_seq: int = 0
    #: Wall-clock seconds after which the session is gone (inf while a connection holds it).
    expires_at: float = math.inf
    extra: tuple[tuple[str, str], ...] = field(default=())


def encode_session_record(record: SessionRecord) -> bytes:
    """The record as stored bytes (JSON with a format tag)."""
    doc = {
        "format": SESSION_RECORD_FORMAT,
        "id": record.session_id,
        "token_sha256": record.token_digest.hex(),
        "version": record.version,
        "node": record.node,
        "identity": record.identity,
        "metadata": [list(kv) for kv in record.metadata],
        "client_version": record.client_version,
        "subscriptions": [[t, p.epoch, p.offset] for t, p in record.subscriptions],
        "last_seq": record.last_seq,
        "expires_at": None if math.isinf(record.expires_at) else record.expires_at,
        "extra": [list(kv) for kv in record.extra],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _str(doc: dict[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise RecordError(f"session record field {key!r} is not a string")
    return value


def _int(doc: dict[str, object], key: str, maximum: int = (1 << 64) - 1) -> int:
    value = doc.get(key)
    if type(value) is not int or not 0 <= value <= maximum:
        raise RecordError(f"session record field {key!r} is not an integer in range")
    return value


def _pairs(doc: dict[str, object], key: str) -> tuple[tuple[str, str], ...]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise RecordError(f"session record field {key!r} is not a list")
    out = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(s, str) for s in item)):
            raise RecordError(f"session record field {key!r} holds a malformed pair")
        out.append((item[0], item[1]))
    return tuple(out)


def decode_session_record(raw: bytes, session_id: str) -> SessionRecord:
    """Read back a stored record for ``session_id``, verified: well-formed JSON of this format,
    every field of its type and range, and the session id the one asked for (a foreign record
    is refused). Raises :class:`RecordError` saying what is wrong."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(f"session record is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RecordError("session record is not an object")
    if doc.get("format") != SESSION_RECORD_FORMAT:
        raise RecordError(f"session record format {doc.get('format')!r} is not "
                          f"{SESSION_RECORD_FORMAT!r}")
    if _str(doc, "id") != session_id:
        raise RecordError(f"session record belongs to {doc.get('id')!r}, not {session_id!r}")
    try:
        digest = bytes.fromhex(_str(doc, "token_sha256"))
    except ValueError:
        raise RecordError("session record token digest is not hex") from None
    if len(digest) != 32:
        raise RecordError("session record token digest is not 32 bytes")
    subs_doc = doc.get("subscriptions")
    if not isinstance(subs_doc, list):
        raise RecordError("session record field 'subscriptions' is not a list")
    subs = []
    for item in subs_doc:
        if (not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str)
                or not item[0] or type(item[1]) is not int or type(item[2]) is not int
                or not 0 <= item[1] < 1 << 64 or not 0 <= item[2] < 1 << 64):
            raise RecordError("session record holds a malformed subscription")
        subs.append((item[0], StreamPosition(item[1], item[2])))
    expires = doc.get("expires_at")
    if expires is None:
        expires_at = math.inf
    elif isinstance(expires, (int, float)) and not isinstance(expires, bool) \
            and math.isfinite(expires):
        expires_at = float(expires)
    else:
        raise RecordError("session record field 'expires_at' is not a time")
    return SessionRecord(
        session_id=session_id, token_digest=digest, version=_int(doc, "version"),
        node=_str(doc, "node"), identity=_str(doc, "identity"),
        metadata=_pairs(doc, "metadata"), client_version=_str(doc, "client_version"),
        subscriptions=tuple(subs), last_seq=_int(doc, "last_seq"), expires_at=expires_at,
        extra=_pairs(doc, "extra"))
