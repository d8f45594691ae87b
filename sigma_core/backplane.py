"""Topic streams: positions, bounded history, replay — behind a narrow interface.

A topic is a stream of encoded ``Data`` envelopes. Each has a position ``(epoch, offset)``:
offsets count 1, 2, ... within an epoch, and the epoch is drawn fresh (64 random bits) whenever a
stream starts without its past — a new topic, or a process that lost its memory. A position from
another epoch therefore never matches by accident, and a resuming client learns explicitly that
its history is gone.

History is bounded per topic by count, bytes and age (:class:`HistoryLimits`). Replay is
all-or-nothing: :meth:`MemoryBackplane.read_after` returns every entry after a position, or a
:class:`ReplayGap` saying which offsets are gone — never a partial list that looks complete.

The hub only talks to :class:`Backplane`. :class:`MemoryBackplane` is the embedded default (one
process). A multi-node implementation (Redis streams for history and fan-out) implements the same
methods; the hub's tests run against whichever backplane they are given.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .entropy import Entropy
from .messages import StreamPosition

__all__ = [
    "Backplane",
    "HistoryEntry",
    "HistoryLimits",
    "MemoryBackplane",
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


class HistoryEntry(NamedTuple):
    """One published message as every subscriber receives it.

    A tuple, not a dataclass: one is made per message, and a tuple is the cheapest to build."""

    epoch: int
    offset: int
    time: float
    #: The envelope inside one unmasked server WebSocket frame (RFC 6455 §5.2): the bytes sent
    #: to every socket without an extension. The envelope is ``frame[header:]``.
    frame: bytes
    header: int
    #: Session ids this message must not reach (``broadcast(..., exclude=...)``).
    exclude: frozenset[str] = frozenset()
    #: When set, only these session ids receive it (selective routing).
    only: frozenset[str] | None = None

    @property
    def envelope(self) -> bytes:
        """The encoded ``Data`` envelope (a copy out of the frame)."""
        return self.frame[self.header:]

    @property
    def size(self) -> int:
        """The envelope's size in bytes."""
        return len(self.frame) - self.header

    def reaches(self, session_id: str) -> bool:
        if self.only is not None and session_id not in self.only:
            return False
        return session_id not in self.exclude


@dataclass(frozen=True, slots=True)
class ReplayGap:
    """Replay is impossible: offsets ``lost_from..lost_to`` of the client's epoch are gone
    (0 where unknown: another epoch, or an unknown topic)."""

    lost_from: int
    lost_to: int


class Backplane(Protocol):
    def head(self, topic: str) -> StreamPosition:
        """The position of the last message of ``topic`` (offset 0 if none); creates the
        stream (with a fresh epoch) if it does not exist."""
        ...

    def append(self, topic: str, build: Callable[[int, int], HistoryEntry]) -> HistoryEntry:
        """Assign the next position, build its entry with ``build(epoch, offset)``, keep it in
        history (trimming to the limits) and return the entry."""
        ...

    def read_after(self, topic: str, position: StreamPosition,
                   now: float) -> list[HistoryEntry] | ReplayGap:
        """Every entry after ``position`` in order, or a gap when any of them is gone."""
        ...

    def drop(self, topic: str) -> None:
        """Forget a topic and its history (an expired session's inbox)."""
        ...

    def trim(self, now: float) -> None:
        """Drop entries older than the age limit."""
        ...

    def release(self, topic: str) -> None:
        """``topic`` has no subscriber left: forget its stream as soon as it holds no history
        (now, or when its history ages out). :meth:`head` takes it back."""
        ...


class _Stream:
    __slots__ = ("bytes", "entries", "epoch", "last_offset")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.last_offset = 0
        #: Created on the first append: most streams (every session's inbox) stay empty, and an
        #: empty deque costs 600 bytes.
        self.entries: deque[HistoryEntry] | None = None
        self.bytes = 0


class MemoryBackplane:
    """The embedded, single-process backplane: streams live in this object's memory."""

    def __init__(self, entropy: Entropy, limits: HistoryLimits | None = None) -> None:
        self._entropy = entropy
        self._limits = limits = limits or HistoryLimits()
        self._max_count = limits.max_count
        self._max_bytes = limits.max_bytes
        self._streams: dict[str, _Stream] = {}
        #: Streams holding history (the only ones trim() has to look at).
        self._holding: dict[str, _Stream] = {}
        #: Topics without subscribers: dropped once they hold no history.
        self._released: set[str] = set()

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    def __len__(self) -> int:
        return len(self._streams)

    def _stream(self, topic: str) -> _Stream:
        stream = self._streams.get(topic)
        if stream is None:
            epoch = int.from_bytes(self._entropy.token_bytes(8), "big") or 1
            stream = self._streams[topic] = _Stream(epoch)
        return stream

    def head(self, topic: str) -> StreamPosition:
        self._released.discard(topic)
        stream = self._stream(topic)
        return StreamPosition(stream.epoch, stream.last_offset)

    def append(self, topic: str, build: Callable[[int, int], HistoryEntry]) -> HistoryEntry:
        stream = self._streams.get(topic) or self._stream(topic)
        offset = stream.last_offset + 1
        entry = build(stream.epoch, offset)
        stream.last_offset = offset
        entries = stream.entries
        if entries is None:
            entries = stream.entries = deque()
            self._holding[topic] = stream
        entries.append(entry)
        stream.bytes += len(entry.frame) - entry.header
        max_count, max_bytes = self._max_count, self._max_bytes
        while entries and ((max_count and len(entries) > max_count)
                           or (max_bytes and stream.bytes > max_bytes)):
            stream.bytes -= entries.popleft().size
        return entry

    def read_after(self, topic: str, position: StreamPosition,
                   now: float) -> list[HistoryEntry] | ReplayGap:
        stream = self._streams.get(topic)
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
        return [entries[i] for i in range(start, len(entries))]

    def drop(self, topic: str) -> None:
        self._streams.pop(topic, None)
        self._holding.pop(topic, None)
        self._released.discard(topic)

    def release(self, topic: str) -> None:
        stream = self._streams.get(topic)
        if stream is None:
            return
        if not stream.entries:
            self.drop(topic)
        else:
            self._released.add(topic)

    def trim(self, now: float) -> None:
        if not self.limits.max_age:
            return
        emptied = []
        for topic, stream in self._holding.items():
            self._trim_stream(stream, now)
            if not stream.entries:
                emptied.append(topic)
        for topic in emptied:
            stream = self._holding.pop(topic)
            stream.entries = None  # (600 bytes for an empty deque)
            if topic in self._released:
                self.drop(topic)

    def _trim_stream(self, stream: _Stream, now: float) -> None:
        max_age = self.limits.max_age
        if not max_age:
            return
        entries = stream.entries
        horizon = now - max_age
        while entries and entries[0].time < horizon:
            stream.bytes -= entries.popleft().size
