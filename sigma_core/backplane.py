"""The memory engine: topic streams, bounded history, session records and presence in one process.

A topic is a stream of encoded ``Data`` envelopes. Each has a position ``(epoch, offset)``:
offsets count 1, 2, ... within an epoch, and the epoch is drawn fresh (64 random bits) whenever a
stream starts without its past — a new topic, or a process that lost its memory. A position from
another epoch therefore never matches by accident, and a resuming client learns explicitly that
its history is gone.

With ``lazy_inboxes`` (the engine a single-node hub makes for itself), a session's inbox (engine
topic ``$inbox:<session id>``) exists only as a key until its first message: most sessions never
get one, and a stream object, its epoch and its key would be a tenth of an idle session. Its
epoch is derived from the key (a keyed hash with a secret drawn once per engine) rather than
drawn, so that the position a session starts at is known without the stream. That keeps the rule
above only because that hub never appends to an inbox it dropped (an ended session's; session
ids are random and never reused), and another engine (a restarted process) has another secret,
so another epoch. An engine shared by nodes (the simulated cluster) keeps drawing: there an
inbox dropped on one node may be appended to again from another, and must restart in a new
epoch.

History is bounded per topic by count, bytes and age (:class:`HistoryLimits`). Replay is
all-or-nothing: :meth:`MemoryEngine.read_after` returns every entry after a position, or a
:class:`ReplayGap` saying which offsets are gone — never a partial list that looks complete.

:class:`MemoryEngine` is the hub's default engine (see :mod:`sigma_core.engine`): it answers every
request within the call (:meth:`MemoryEngine.execute`), and the hub's hot path (publish, fan-out,
replay) calls its typed methods directly, building no request object. The simulated cluster in
:mod:`sigma_core.testing` shares one between several hubs and adds latency and faults.

Times given to the engine are wall-clock seconds (the hub's ``now + wall_clock_offset``): an
engine shared by nodes needs one clock, and history's age limit counts in it.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from .engine import (
    INBOX_PREFIX,
    Append,
    Appended,
    DeleteSession,
    Done,
    DropTopic,
    EngineFailed,
    EngineRequest,
    EngineResult,
    Heads,
    HistoryEntry,
    LoadSession,
    PresenceMembers,
    PresenceMissing,
    PresenceRead,
    PresenceRefresh,
    PresenceUpdate,
    RangeRead,
    ReadHeads,
    ReadRange,
    Receive,
    ReplayGap,
    SaveSession,
    SessionLoaded,
    SessionSaved,
    StopReceiving,
    TouchSession,
)
from .entropy import Entropy
from .messages import StreamPosition


# A history entry leaves the cyclic GC's lists when it holds no container (no route): see
# ``_speedups.untrack_atomic``. Without the C helpers (a pure-Python install) it stays tracked,
# which costs collections and nothing else.
def _untrack_atomic_py(obj: object) -> bool:
    return False


def _untrack_atomic_impl() -> Callable[[object], bool]:
    try:
        from ._speedups import untrack_atomic
    except ImportError:  # a pure-Python install
        return _untrack_atomic_py
    return untrack_atomic


#: (Final: compiled, a C static, not a module-dict lookup per message.)
_untrack_atomic: Final = _untrack_atomic_impl()


def _new_tuple_py(cls: type[Any], *items: object) -> Any:
    """``tuple.__new__(cls, items)``: an instance of a tuple subclass (a ``NamedTuple``) built
    from its items without its Python-level ``__new__`` (the reference of
    ``_speedups.new_tuple``, which skips the intermediate tuple)."""
    return tuple.__new__(cls, items)


def _new_tuple_impl() -> Callable[..., Any]:
    try:
        from ._speedups import new_tuple
    except ImportError:  # a pure-Python install
        return _new_tuple_py
    return new_tuple


#: ``new_tuple(HistoryEntry, epoch, offset, ...)``: the hub's entries and positions per message.
new_tuple: Final = _new_tuple_impl()

__all__ = [
    "HistoryEntry",
    "HistoryLimits",
    "MemoryEngine",
    "ReplayGap",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryLimits:
    """How much each topic remembers for replay. A bound of 0 disables that bound."""

    max_count: int = 1000
    max_bytes: int = 4 << 20
    max_age: float = 300.0

    def __post_init__(self) -> None:
        if self.max_count < 0 or self.max_bytes < 0:
            raise ValueError("HistoryLimits.max_count and max_bytes must be >= 0")
        if not (math.isfinite(self.max_age) and self.max_age >= 0):
            raise ValueError(f"HistoryLimits.max_age must be finite and >= 0, got "
                             f"{self.max_age!r}")


class _Stream:
    __slots__ = ("bytes", "entries", "epoch", "head", "last_offset")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.last_offset = 0
        #: The last position :meth:`MemoryEngine.head` returned, handed out again while no
        #: message was appended: every session that joins ``$all`` (or a room) between two
        #: messages keeps the same object as its subscription start, not a copy each.
        self.head: StreamPosition | None = None
        #: Created on the first append: most streams (every session's inbox) stay empty. A list
        #: while it is short (a session's inbox mostly holds a message or two, and CPython gives
        #: a deque a 64-slot block, 760 bytes, for its first entry), a deque past
        #: ``_SHORT_HISTORY`` entries (trimming from the left is O(1) there).
        self.entries: list[HistoryEntry] | deque[HistoryEntry] | None = None
        self.bytes = 0

    def pop_first(self) -> HistoryEntry:
        entries = self.entries
        assert entries
        first = entries.pop(0) if isinstance(entries, list) else _popleft(entries)
        self.bytes -= len(first.envelope)
        return first


# deque's methods as C statics: compiled, ``entries.append(entry)`` on a deque is a method
# looked up by name and bound on every call (~230 instructions); a call of the method
# descriptor itself is a plain vectorcall. (Per message: one append, one popleft on release.)
_deque_append: Final = deque.append
_popleft: Final = deque.popleft


#: A stream's history is a list up to this many entries, a deque beyond.
_SHORT_HISTORY: Final = 8


class _StoredSession:
    __slots__ = ("expires_at", "record", "version")

    def __init__(self, record: bytes, version: int, expires_at: float) -> None:
        self.record = record
        self.version = version
        self.expires_at = expires_at


class MemoryEngine:
    """The embedded engine: streams, session records and presence live in this object."""

    def __init__(self, entropy: Entropy, limits: HistoryLimits | None = None, *,
                 lazy_inboxes: bool = False) -> None:
        """``lazy_inboxes``: inboxes are streams only from their first message (see the module
        docstring); only for an engine whose one hub never appends to an inbox it dropped."""
        self._entropy = entropy
        #: The key of the hash that gives lazy inboxes their epochs (b"": inboxes are streams
        #: like any other).
        self._inbox_secret = entropy.token_bytes(16) if lazy_inboxes else b""
        self._limits = limits = limits or HistoryLimits()
        self._max_count = limits.max_count
        self._max_bytes = limits.max_bytes
        self._streams: dict[str, _Stream] = {}
        #: Streams holding history (the only ones trim() has to look at).
        self._holding: dict[str, _Stream] = {}
        #: Topics without subscribers: dropped once they hold no history.
        self._released: set[str] = set()
        self._sessions: dict[str, _StoredSession] = {}
        #: topic -> member -> (info, expires_at)
        self._presence: dict[str, dict[str, tuple[bytes, float]]] = {}
        #: Called with (topic, entry) after every append (the simulated cluster's fan-out
        #: between nodes); None on a single node.
        self.on_append: Callable[[str, HistoryEntry], None] | None = None
        #: Envelope bytes that have left history since the engine was made (acknowledged,
        #: aged out, over a limit, dropped with their stream): what the process may hand back
        #: to the OS (the hub's heap trim, see ``Hub.heap_trim``).
        self.released_bytes = 0

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    @property
    def lazy_inboxes(self) -> bool:
        """Whether inboxes are streams only from their first message (see the module
        docstring): an inbox's first position is then its derived epoch and offset 0."""
        return bool(self._inbox_secret)

    def __len__(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------------ streams (hot path)

    def _stream(self, topic: str) -> _Stream:
        stream = self._streams.get(topic)
        if stream is None:
            epoch = self._inbox_epoch(topic) if self._lazy_inbox(topic) \
                else int.from_bytes(self._entropy.token_bytes(8), "big") or 1
            stream = self._streams[topic] = _Stream(epoch)
        return stream

    def _lazy_inbox(self, topic: str) -> bool:
        return bool(self._inbox_secret) and topic.startswith(INBOX_PREFIX)

    def _inbox_epoch(self, topic: str) -> int:
        digest = hashlib.blake2b(topic.encode("utf-8", "surrogatepass"), digest_size=8,
                                 key=self._inbox_secret).digest()
        return int.from_bytes(digest, "big") or 1

    def head(self, topic: str, create: bool = True) -> StreamPosition:
        """The position of the last message of ``topic`` (offset 0 if none). With ``create`` a
        missing stream is created with a fresh epoch; without, it reads as ``(0, 0)``. A
        session's inbox without a message yet reads as its epoch and offset 0 either way (it is
        made by its first message) with ``lazy_inboxes``."""
        stream = self._streams.get(topic)
        if stream is None:
            if self._lazy_inbox(topic):  # made by its first message
                return StreamPosition(self._inbox_epoch(topic), 0)
            if not create:
                return StreamPosition(0, 0)
            stream = self._stream(topic)
        if create:
            self._released.discard(topic)
        head = stream.head
        if head is None or head.offset != stream.last_offset:
            head = stream.head = StreamPosition(stream.epoch, stream.last_offset)
        return head

    def append(self, topic: str, build: Callable[[int, int], HistoryEntry]) -> HistoryEntry:
        """Assign the next position, build its entry with ``build(epoch, offset)``, keep it in
        history (trimming to the limits) and return the entry."""
        stream = self.stream_for_append(topic)
        entry = build(stream.epoch, stream.last_offset + 1)
        self.commit_append(topic, stream, entry)
        return entry

    def stream_for_append(self, topic: str) -> _Stream:
        """:meth:`append` in two steps, for a caller that builds the entry itself (the hub's
        publish: no closure and no Python-level call per message): the stream of ``topic``
        (made if missing); the next entry's position is ``(stream.epoch, stream.last_offset +
        1)``. Then :meth:`commit_append` with nothing appended to ``topic`` in between."""
        return self._streams.get(topic) or self._stream(topic)

    def commit_append(self, topic: str, stream: _Stream, entry: HistoryEntry) -> None:
        """Keep ``entry``, built at the position :meth:`stream_for_append` gave, in history
        (trimming to the limits)."""
        stream.last_offset = entry.offset
        # It lives until acknowledged or trimmed (about a second in an inbox whose client acks
        # every 128 messages or 1 s): long enough for young collections to examine and promote
        # it, so that full collections traverse thousands of them. Its items are ints, a
        # float, bytes and (mostly) None: nothing a cycle could run through.
        _untrack_atomic(entry)
        entries = stream.entries
        if entries is None:
            entries = stream.entries = [entry]
            self._holding[topic] = stream
        elif isinstance(entries, list):
            if len(entries) == _SHORT_HISTORY:
                entries = stream.entries = deque(entries)
                _deque_append(entries, entry)
            else:
                entries.append(entry)
        else:
            _deque_append(entries, entry)
        stream.bytes += len(entry.envelope)
        max_count, max_bytes = self._max_count, self._max_bytes
        while entries and ((max_count and len(entries) > max_count)
                           or (max_bytes and stream.bytes > max_bytes)):
            self.released_bytes += len(stream.pop_first().envelope)
        if self.on_append is not None:
            self.on_append(topic, entry)

    def read_after(self, topic: str, position: StreamPosition, now: float,
                   max_count: int = 0, max_bytes: int = 0) -> list[HistoryEntry] | ReplayGap:
        """Entries after ``position`` in order (at most ``max_count`` and, beyond the first,
        ``max_bytes`` of envelopes when those are not 0), or a gap when any wanted entry is
        gone (all-or-nothing: a bounded read stops early, it never skips)."""
        stream = self._streams.get(topic)
        if stream is None and self._lazy_inbox(topic):
            stream = _Stream(self._inbox_epoch(topic))  # an inbox without a message yet
        if stream is None or stream.epoch != position.epoch or position.offset > stream.last_offset:
            # Another epoch (or a position from the future): nothing we hold relates to it.
            return ReplayGap(position.offset + 1, 0)
        self._trim_stream(stream, now)
        wanted = position.offset + 1
        if wanted > stream.last_offset:
            return []
        entries = stream.entries or ()
        first = entries[0].offset if entries else stream.last_offset + 1
        if first > wanted:
            return ReplayGap(wanted, first - 1)
        # Offsets in a stream are contiguous, so the index is arithmetic.
        start = wanted - first
        end = len(entries)
        if max_count and end - start > max_count:
            end = start + max_count
        if not max_bytes:
            return [entries[i] for i in range(start, end)]
        out: list[HistoryEntry] = []
        total = 0
        for i in range(start, end):
            entry = entries[i]
            total += len(entry.envelope)
            if out and total > max_bytes:
                break
            out.append(entry)
        return out

    def release_upto(self, topic: str, position: StreamPosition, limit: int = 0) -> int:
        """Drop the history of ``topic`` up to and including ``position``: the one reader
        that needs it (a session, for its ``$inbox``) acknowledged it. Returns how many entries
        went; with ``limit`` > 0 at most that many (the oldest; call again for the rest). A
        position of another epoch, or beyond the head, releases nothing (0)."""
        stream = self._acknowledged(topic, position)
        if stream is None:
            return 0
        entries = stream.entries
        if not entries:
            return 0
        # Offsets in a stream are contiguous and end at its head, which ``position`` is not
        # beyond: how many go is arithmetic (no comparison per entry).
        first: HistoryEntry = entries[0]
        released = position.offset - first.offset + 1
        if released <= 0:
            return 0
        if 0 < limit < released:
            released = limit
        released = min(released, len(entries))  # (defensive: the offsets are contiguous)
        freed = 0
        if isinstance(entries, list):
            for i in range(released):
                entry: HistoryEntry = entries[i]
                freed += len(entry.envelope)
            del entries[:released]
        else:
            for _ in range(released):
                entry = _popleft(entries)
                freed += len(entry.envelope)
        stream.bytes -= freed
        self.released_bytes += freed
        if not entries:
            stream.entries = None
            self._unhold(topic)
            if topic in self._released:
                self.drop(topic)
        return released

    def releasable(self, topic: str, position: StreamPosition) -> bool:
        """Whether :meth:`release_upto` of ``position`` would release anything now (after a
        call that stopped at its ``limit``: is there a rest to come back for)."""
        stream = self._acknowledged(topic, position)
        if stream is None:
            return False
        entries = stream.entries
        return entries is not None and len(entries) > 0 and entries[0].offset <= position.offset

    def _acknowledged(self, topic: str, position: StreamPosition) -> _Stream | None:
        """The stream of ``topic`` if ``position`` can be acknowledged in it (its epoch, not
        beyond its head), else None (:meth:`release_upto`, :meth:`releasable`)."""
        stream = self._streams.get(topic)
        if stream is None or stream.epoch != position.epoch \
                or position.offset > stream.last_offset:
            return None
        return stream

    def _unhold(self, topic: str) -> None:
        """``topic``'s history is empty: off the holding list. A list that emptied is made
        anew, so the table it grew to in a burst (10,000 inboxes holding a reply for a second:
        ~300 KiB) does not stay allocated for nothing."""
        holding = self._holding
        if holding.pop(topic, None) is not None and not holding:
            self._holding = {}

    def drop(self, topic: str) -> None:
        """Forget a topic and its history (an ended session's inbox)."""
        stream = self._streams.pop(topic, None)
        if stream is not None:
            self.released_bytes += stream.bytes
        self._unhold(topic)
        self._released.discard(topic)

    def release(self, topic: str) -> None:
        """``topic`` has no subscriber left: forget its stream as soon as it holds no history
        (now, or when its history ages out). :meth:`head` takes it back."""
        stream = self._streams.get(topic)
        if stream is None:
            return
        if not stream.entries:
            self.drop(topic)
        else:
            self._released.add(topic)

    def trim(self, now: float) -> None:
        """Drop entries older than the age limit (and released streams left empty), and
        expired session records and members."""
        if self._limits.max_age:
            emptied = []
            for topic, stream in self._holding.items():
                self._trim_stream(stream, now)
                if not stream.entries:
                    emptied.append(topic)
            for topic in emptied:
                stream = self._holding[topic]
                self._unhold(topic)
                stream.entries = None
                if topic in self._released:
                    self.drop(topic)
        expired = [sid for sid, s in self._sessions.items() if s.expires_at <= now]
        for sid in expired:
            del self._sessions[sid]
        for topic in list(self._presence):
            self._presence_members(topic, now)

    def _trim_stream(self, stream: _Stream, now: float) -> None:
        max_age = self._limits.max_age
        if not max_age:
            return
        entries = stream.entries
        horizon = now - max_age
        while entries and entries[0].time < horizon:
            self.released_bytes += len(stream.pop_first().envelope)

    def _presence_members(self, topic: str, now: float) -> dict[str, tuple[bytes, float]]:
        members = self._presence.get(topic)
        if members is None:
            return {}
        for member in [m for m, (_, exp) in members.items() if exp <= now]:
            del members[member]
        if not members:
            del self._presence[topic]
        return members

    # ------------------------------------------------------------------ the request interface

    def execute(self, request: EngineRequest, now: float) -> EngineResult:
        """Carry out any :mod:`sigma_core.engine` request within the call (``now``: wall-clock
        seconds). The hub's single-node paths call the typed methods above instead; this is
        what the simulated cluster's engine and the differential tests use."""
        rid = request.request_id
        if isinstance(request, Append):
            envelope, route, wall = request.envelope, request.route, request.wall_time
            entry = self.append(request.topic, lambda epoch, offset: HistoryEntry(
                epoch, offset, wall, envelope, route))
            return Appended(request_id=rid, topic=request.topic, position=entry.position)
        if isinstance(request, ReadRange):
            result = self.read_after(request.topic, request.after, now, request.max_count,
                                     request.max_bytes)
            head = self.head(request.topic, create=False)
            if isinstance(result, ReplayGap):
                return RangeRead(request_id=rid, topic=request.topic, head=head, gap=result)
            return RangeRead(request_id=rid, topic=request.topic, head=head,
                             entries=tuple(result))
        if isinstance(request, ReadHeads):
            return Heads(request_id=rid, heads=tuple(
                (t, self.head(t, request.create)) for t in request.topics))
        if isinstance(request, DropTopic):
            self.drop(request.topic)
            return Done(request_id=rid)
        if isinstance(request, SaveSession):
            stored = self._sessions.get(request.session_id)
            if stored is not None and stored.expires_at <= now:
                stored = None
            if stored is not None and stored.version >= request.version:
                return SessionSaved(request_id=rid, session_id=request.session_id,
                                    stored=False)
            self._sessions[request.session_id] = _StoredSession(
                request.record, request.version, now + request.ttl)
            return SessionSaved(request_id=rid, session_id=request.session_id)
        if isinstance(request, TouchSession):
            stored = self._sessions.get(request.session_id)
            if stored is not None:
                stored.expires_at = now + request.ttl
            return Done(request_id=rid)
        if isinstance(request, LoadSession):
            stored = self._sessions.get(request.session_id)
            if stored is not None and stored.expires_at <= now:
                del self._sessions[request.session_id]
                stored = None
            return SessionLoaded(request_id=rid, session_id=request.session_id,
                                 record=None if stored is None else stored.record)
        if isinstance(request, DeleteSession):
            self._sessions.pop(request.session_id, None)
            return Done(request_id=rid)
        if isinstance(request, PresenceUpdate):
            members = self._presence.setdefault(request.topic, {})
            for member, info in request.joins:
                members[member] = (info, now + request.ttl)
            for member in request.leaves:
                members.pop(member, None)
            if not members:
                del self._presence[request.topic]
            return Done(request_id=rid)
        if isinstance(request, PresenceRefresh):
            held = self._presence_members(request.topic, now)
            expires = now + request.ttl
            missing: list[str] = []
            for member in request.members:
                present = held.get(member)
                if present is None:
                    missing.append(member)
                elif present[1] < expires:
                    held[member] = (present[0], expires)
            return PresenceMissing(request_id=rid, topic=request.topic, members=tuple(missing))
        if isinstance(request, PresenceRead):
            members = self._presence_members(request.topic, now)
            return PresenceMembers(request_id=rid, topic=request.topic, members=tuple(
                sorted((m, info) for m, (info, _) in members.items())))
        if isinstance(request, (Receive, StopReceiving)):
            return Done(request_id=rid)  # one process: every topic is "received"
        return EngineFailed(request_id=rid,
                            reason=f"unknown request {type(request).__name__}")
