"""The memory engine's history: a short history is kept in a list, a longer one in a deque
(sigma_core/backplane.py, ``_SHORT_HISTORY``); what a subscriber can replay must not depend on
which. Synchronous, no event loop."""

from __future__ import annotations

import pytest

from sigma_core.backplane import HistoryLimits, MemoryEngine, ReplayGap
from sigma_core.engine import HistoryEntry
from sigma_core.entropy import SeededEntropy
from sigma_core.messages import StreamPosition


def _engine(**limits: float) -> MemoryEngine:
    return MemoryEngine(SeededEntropy(3), HistoryLimits(**limits))  # type: ignore[arg-type]


def _append(engine: MemoryEngine, topic: str, n: int, at: float = 0.0,
            size: int = 10) -> None:
    for _ in range(n):
        engine.append(topic, lambda epoch, offset: HistoryEntry(
            epoch, offset, at, offset.to_bytes(4, "big") + b"x" * (size - 4)))


def _offsets(entries: list[HistoryEntry] | ReplayGap) -> list[int]:
    assert isinstance(entries, list), entries
    return [e.offset for e in entries]


@pytest.mark.parametrize("count", [1, 7, 8, 9, 30])
def test_history_keeps_the_newest_entries_in_order_around_the_list_to_deque_switch(
        count: int) -> None:
    engine = _engine(max_count=10, max_bytes=0, max_age=0)
    _append(engine, "t", count)
    head = engine.head("t")
    assert head.offset == count
    start = StreamPosition(head.epoch, 0)
    kept = list(range(max(1, count - 9), count + 1))
    if count > 10:
        gap = engine.read_after("t", start, 0.0)
        assert isinstance(gap, ReplayGap)
        assert (gap.lost_from, gap.lost_to) == (1, count - 10)
        start = StreamPosition(head.epoch, count - 10)
    assert _offsets(engine.read_after("t", start, 0.0)) == kept
    if count > 1:
        # A bounded read from the middle gives the entry appended at that offset.
        middle = engine.read_after("t", StreamPosition(head.epoch, count - 2), 0.0,
                                   max_count=1)
        assert isinstance(middle, list)
        assert [e.envelope[:4] for e in middle] == [(count - 1).to_bytes(4, "big")]


def test_byte_and_age_limits_trim_a_short_and_a_long_history_alike() -> None:
    engine = _engine(max_count=0, max_bytes=100, max_age=10.0)
    _append(engine, "short", 3, at=0.0)
    _append(engine, "long", 20, at=0.0)  # 200 bytes appended: only the newest 10 fit
    epoch = engine.head("long").epoch
    assert _offsets(engine.read_after("long", StreamPosition(epoch, 10), 0.0)) == \
        list(range(11, 21))
    _append(engine, "long", 2, at=20.0)
    _append(engine, "short", 1, at=20.0)
    # At 25 everything appended at 0 is older than max_age: both keep only the new entries.
    engine.trim(25.0)
    for topic, first, last in (("short", 4, 4), ("long", 21, 22)):
        pos = engine.head(topic)
        assert _offsets(engine.read_after(topic, StreamPosition(pos.epoch, first - 1), 25.0)) \
            == list(range(first, last + 1))
        gap = engine.read_after(topic, StreamPosition(pos.epoch, 0), 25.0)
        assert isinstance(gap, ReplayGap)
        assert gap.lost_to == first - 1
    # Aged out entirely, a history holds nothing, and the next append starts it again.
    engine.trim(100.0)
    _append(engine, "short", 1, at=100.0)
    pos = engine.head("short")
    assert _offsets(engine.read_after("short", StreamPosition(pos.epoch, 4), 100.0)) == [5]


def test_an_inbox_is_a_stream_only_from_its_first_message_and_keeps_its_epoch() -> None:
    # A session's inbox takes no stream until something is sent to it (memory per idle
    # session), yet reads, replays and numbers exactly as a stream made at once would.
    engine = MemoryEngine(SeededEntropy(3), lazy_inboxes=True)
    inbox = "$inbox:0123456789abcdef01234567"
    start = engine.head(inbox)
    assert start.offset == 0
    assert start.epoch != 0
    assert engine.head(inbox, create=False) == start == engine.head(inbox)
    assert len(engine) == 0
    assert engine.read_after(inbox, start, 0.0) == []
    stale = engine.read_after(inbox, StreamPosition(start.epoch + 1, 0), 0.0)
    assert isinstance(stale, ReplayGap)
    assert (stale.lost_from, stale.lost_to) == (1, 0)
    _append(engine, inbox, 2)
    assert len(engine) == 1
    assert engine.head(inbox) == StreamPosition(start.epoch, 2)
    assert _offsets(engine.read_after(inbox, start, 0.0)) == [1, 2]
    # Another inbox, and the same inbox in another engine (a restarted process), have other
    # epochs: a position from one never matches the other by accident.
    assert engine.head("$inbox:76543210fedcba9876543210").epoch != start.epoch
    assert MemoryEngine(SeededEntropy(4), lazy_inboxes=True).head(inbox).epoch != start.epoch
    # Rooms keep drawing an epoch when they start.
    room = engine.head("room")
    assert room.offset == 0
    assert len(engine) == 2
    # Without lazy_inboxes (an engine shared by nodes) an inbox is a stream like any other: a
    # dropped one restarts in a new epoch (the engine contract, tests/test_redis_contract.py).
    shared = _engine()
    first = shared.head(inbox)
    assert len(shared) == 1
    shared.drop(inbox)
    assert shared.head(inbox).epoch != first.epoch
