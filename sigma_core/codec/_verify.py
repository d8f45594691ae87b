"""Decoding, step one: the verifier. Every offset is bounds-checked as it is followed, with a
budget on what decoding may allocate (the rules are listed in :mod:`sigma_core.codec`)."""

from __future__ import annotations

import struct
from typing import Final

from ..errors import DecodeError
from ..messages import (
    PresenceAction,
    RecoveryStatus,
    StreamPosition,
)
from ._slots import MAX_SLOT_COUNT

# -- decoding

_unpack_u16: Final = struct.Struct("<H").unpack_from
_unpack_u32: Final = struct.Struct("<I").unpack_from
_unpack_u64: Final = struct.Struct("<Q").unpack_from
_unpack_i32: Final = struct.Struct("<i").unpack_from
_unpack_header: Final = struct.Struct("<I4s").unpack_from
_unpack_vt_header: Final = struct.Struct("<HH").unpack_from
_unpack_position: Final = struct.Struct("<QQ").unpack_from
# Field offsets of a vtable, by count, up to the most slots a table of the schema has.
_unpack_fields: Final = tuple(
    struct.Struct(f"<{n}H").unpack_from for n in range(MAX_SLOT_COUNT + 1)
)
_ABSENT: Final = (0,) * MAX_SLOT_COUNT
_make_position: Final = StreamPosition._make
_RECOVERY_STATUS: Final = {int(s): s for s in RecoveryStatus}
_PRESENCE_ACTION: Final = {int(a): a for a in PresenceAction}


def _open_table(
    view: memoryview, size: int, pos: int, n_fields: int, what: str
) -> tuple[int, tuple[int, ...]]:
    """Check the table at ``pos``; return its inline size and its first ``n_fields`` field
    offsets (0 for absent fields, including those past the end of an older writer's vtable)."""
    if pos + 4 > size:
        raise DecodeError(f"{what}: table offset {pos} is outside the {size}-byte buffer")
    vt = pos - _unpack_i32(view, pos)[0]
    if vt < 0 or vt + 4 > size:
        raise DecodeError(f"{what}: vtable offset {vt} is outside the buffer")
    vt_size, inline = _unpack_vt_header(view, vt)
    if vt_size < 4 or vt_size & 1 or vt + vt_size > size:
        raise DecodeError(f"{what}: bad vtable size {vt_size}")
    if inline < 4 or pos + inline > size:
        raise DecodeError(f"{what}: bad table size {inline}")
    present = (vt_size - 4) >> 1
    if present >= n_fields:
        return inline, _unpack_fields[n_fields](view, vt + 4)
    return inline, _unpack_fields[present](view, vt + 4) + _ABSENT[: n_fields - present]


class _Reader:
    """Bounds-checked reads from one envelope, with a budget on what decoding may allocate."""

    __slots__ = ("budget", "size", "strings", "view")

    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.size = len(view)
        self.budget = self.size
        self.strings: dict[int, str] = {}

    def charge(self, amount: int, what: str) -> None:
        self.budget -= amount
        if self.budget < 0:
            raise DecodeError(f"{what}: the envelope decodes to more than its own size")

    def follow(self, at: int, what: str) -> int:
        """Resolve the uoffset stored at ``at``; the target must leave room for a length."""
        target: int = at + _unpack_u32(self.view, at)[0]
        if target + 4 > self.size:
            raise DecodeError(f"{what}: offset {target} is outside the {self.size}-byte buffer")
        return target

    def string(self, target: int, what: str) -> str:
        cached = self.strings.get(target)
        if cached is not None:
            return cached
        length = _unpack_u32(self.view, target)[0]
        end = target + 4 + length
        if end >= self.size:
            raise DecodeError(f"{what}: string of {length} bytes runs past the buffer")
        if self.view[end] != 0:
            raise DecodeError(f"{what}: string is not NUL-terminated")
        self.charge(length + 1, what)
        try:
            text = str(self.view[target + 4 : end], "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"{what}: invalid UTF-8 ({exc.reason})") from exc
        self.strings[target] = text
        return text

    def vector(self, target: int, elem_size: int, what: str) -> tuple[int, int]:
        """Check a vector; return (position of its first element, length)."""
        length = _unpack_u32(self.view, target)[0]
        start = target + 4
        if start + length * elem_size > self.size:
            raise DecodeError(f"{what}: vector of {length} elements runs past the buffer")
        self.charge(length, what)
        return start, length


class _Table:
    """One checked table; ``what`` names it (or the field that led to it) in errors."""

    __slots__ = ("fields", "inline", "pos", "reader")

    def __init__(self, reader: _Reader, pos: int, n_fields: int, what: str) -> None:
        self.reader = reader
        self.pos = pos
        self.inline, self.fields = _open_table(reader.view, reader.size, pos, n_fields, what)

    def field(self, slot: int, width: int, what: str) -> int:
        """Absolute position of field ``slot`` (``width`` bytes), or 0 when absent."""
        fo = self.fields[slot]
        if not fo:
            return 0
        if fo < 4 or fo + width > self.inline:
            raise DecodeError(f"{what}: field offset {fo} is outside its table")
        return self.pos + fo

    def u8(self, slot: int, what: str) -> int:
        at = self.field(slot, 1, what)
        return self.reader.view[at] if at else 0

    def u16(self, slot: int, what: str, default: int = 0) -> int:
        at = self.field(slot, 2, what)
        return _unpack_u16(self.reader.view, at)[0] if at else default

    def u32(self, slot: int, what: str) -> int:
        at = self.field(slot, 4, what)
        return _unpack_u32(self.reader.view, at)[0] if at else 0

    def u64(self, slot: int, what: str) -> int:
        at = self.field(slot, 8, what)
        return _unpack_u64(self.reader.view, at)[0] if at else 0

    def flag(self, slot: int, what: str) -> bool:
        return self.u8(slot, what) != 0

    def position(self, slot: int, what: str) -> StreamPosition | None:
        at = self.field(slot, 16, what)
        return _make_position(_unpack_position(self.reader.view, at)) if at else None

    def required_position(self, slot: int, what: str) -> StreamPosition:
        position = self.position(slot, what)
        if position is None:
            raise DecodeError(f"missing required field {what}")
        return position

    def _target(self, slot: int, what: str, required: bool) -> int:
        at = self.field(slot, 4, what)
        if not at:
            if required:
                raise DecodeError(f"missing required field {what}")
            return 0
        return self.reader.follow(at, what)

    def string(self, slot: int, what: str, *, required: bool = False) -> str:
        target = self._target(slot, what, required)
        return self.reader.string(target, what) if target else ""

    def byte_string(self, slot: int, what: str, *, required: bool = False) -> bytes:
        target = self._target(slot, what, required)
        if not target:
            return b""
        start, length = self.reader.vector(target, 1, what)
        return bytes(self.reader.view[start : start + length])

    def child(self, slot: int, n_fields: int, what: str) -> _Table | None:
        target = self._target(slot, what, False)
        return _Table(self.reader, target, n_fields, what) if target else None

    def required_child(self, slot: int, n_fields: int, what: str) -> _Table:
        return _Table(self.reader, self._target(slot, what, True), n_fields, what)

    def children(self, slot: int, n_fields: int, what: str) -> list[_Table]:
        """The tables of a vector. Each element must be a table of its own: elements sharing
        one table (legal FlatBuffers, never written by an encoder of ours) would let a small
        envelope decode to many objects, so they are refused. Each element is charged
        ``_MIN_CHILD_BYTES`` against the budget, what the smallest distinct table takes on
        the wire."""
        target = self._target(slot, what, False)
        if not target:
            return []
        start, length = self.reader.vector(target, 4, what)
        reader = self.reader
        reader.charge(length * (_MIN_CHILD_BYTES - 1), what)  # (vector() charged 1 each)
        seen: set[int] = set()
        tables = []
        for at in range(start, start + 4 * length, 4):
            pos = reader.follow(at, what)
            if pos in seen:
                raise DecodeError(f"{what}: elements share one table")
            seen.add(pos)
            tables.append(_Table(reader, pos, n_fields, what))
        return tables


#: The wire bytes of the smallest table a vector element can be: its uoffset in the vector,
#: the table's soffset, and one 4-byte field (vtables may be shared, so they are not counted).
_MIN_CHILD_BYTES: Final = 12
