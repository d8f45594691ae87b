"""The hand-written readers of :mod:`sigma_core.codec` read what flatc's generated accessors
(``sigma_core._wire``) read, field by field, on the same bytes.

The readers do not use the accessors (they check bounds the FlatBuffers runtime does not), and
their field slots come from ``sigma_core/codec/_slots.py``, generated from the schema; this test
is what holds the two readings equal. Buffers come from two sources:

* the codec's own encoder, on varied messages (the strategies of tests/test_codec.py);
* a builder driven by the schema description in ``_slots.TABLES``, independent of the codec's
  encoder: every field absent, present with its default (written anyway) or present with a
  value, fields added in any order (so the layout varies), empty strings and vectors present,
  duplicate metadata keys, unknown enum values, missing ``(required)`` fields.

Every table, message type and field of the schema is covered, including ones appended later: a
field the readers do not know fails here by name.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

import flatbuffers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_codec import BODIES

from sigma_core import codec
from sigma_core.codec import _slots
from sigma_core.errors import DecodeError, UnknownMessageType
from sigma_core.messages import Body, Data, PresenceAction, RecoveryStatus

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

_BODY_ENUM = "Body"
MESSAGE_TYPES = {
    name: value for name, value in _slots.ENUMS[_BODY_ENUM].items() if value != 0
}
# The enums the readers map to Python enums, with what an unknown value becomes.
PY_ENUMS: dict[str, type[RecoveryStatus | PresenceAction]] = {
    "RecoveryStatus": RecoveryStatus,
    "PresenceAction": PresenceAction,
}
_PREPEND = {
    "bool": "Bool",
    "byte": "Int8",
    "ubyte": "Uint8",
    "short": "Int16",
    "ushort": "Uint16",
    "int": "Int32",
    "uint": "Uint32",
    "long": "Int64",
    "ulong": "Uint64",
}
_RANGES = {
    "bool": (0, 1),
    "ubyte": (0, 2**8 - 1),
    "ushort": (0, 2**16 - 1),
    "uint": (0, 2**32 - 1),
    "ulong": (0, 2**64 - 1),
}


def camel(name: str) -> str:
    """flatc's Python accessor name for a schema field."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def slot_count(table: str) -> int:
    """The table's slots (deprecated ones included), from the generated constants."""
    upper = "".join("_" + c if c.isupper() and i else c for i, c in enumerate(table)).upper()
    count: int = getattr(_slots, f"{upper}_SLOT_COUNT")
    return count


def accessor_class(table: str) -> Any:
    return getattr(importlib.import_module(f"sigma_core._wire.{table}"), table)


# -- the schema-driven builder


class Built:
    """What the drawn buffer holds that the readers must refuse or ignore."""

    def __init__(self) -> None:
        self.missing_required = False
        self.unknown_presence_action = False


def _draw_table(draw: Any, b: Any, table: str, built: Built, depth: int = 0) -> int:
    """Build one table of ``table`` with varied fields; return its offset."""
    fields = _slots.TABLES[table]
    # Children first: FlatBuffers forbids building them while the table is open.
    children: dict[int, int] = {}
    plan: dict[int, tuple[str, Any]] = {}
    for name, slot, kind, ref, default, required in fields:
        if kind in ("utype", "union"):
            raise AssertionError(f"{table}.{name}: unions are only expected in Envelope")
        present = draw(st.booleans()) if not required else draw(st.integers(0, 19)) > 0
        if not present:
            if required:
                built.missing_required = True
            continue
        if kind == "string":
            alphabet = st.sampled_from("ab") if name == "key" else st.characters(codec="utf-8")
            children[slot] = b.CreateString(draw(st.text(alphabet, max_size=6)).encode())
        elif kind == "vector" and ref == "ubyte":
            children[slot] = b.CreateByteVector(draw(st.binary(max_size=12)))
        elif kind == "vector":
            n = draw(st.integers(0, 3 if depth < 2 else 0))
            elements = [_draw_table(draw, b, ref, built, depth + 1) for _ in range(n)]
            b.StartVector(4, n, 4)
            for off in reversed(elements):
                b.PrependUOffsetTRelative(off)
            children[slot] = b.EndVector()
        elif kind == "table":
            children[slot] = _draw_table(draw, b, ref, built, depth + 1)
        elif kind == "struct":
            plan[slot] = ("struct", (draw(st.integers(*_RANGES["ulong"])),
                                     draw(st.integers(*_RANGES["ulong"]))))
        else:
            low, high = _RANGES[kind]
            if ref:  # an enum: its values, now and then an unknown one
                known = sorted(_slots.ENUMS[ref].values())
                value = draw(st.sampled_from([*known, max(known) + 1, high]))
                if ref == "PresenceAction" and value not in known:
                    built.unknown_presence_action = True
            else:
                value = draw(st.sampled_from([default, high]) | st.integers(low, high))
            plan[slot] = ("scalar", value)
    slots = [*children, *plan]
    order = draw(st.permutations(slots))
    b.StartObject(slot_count(table))
    by_slot = {f[1]: f for f in fields}
    for slot in order:
        name, _, kind, ref, default, _ = by_slot[slot]
        if slot in children:
            b.PrependUOffsetTRelativeSlot(slot, children[slot], 0)
        elif plan[slot][0] == "struct":
            struct_module = importlib.import_module(f"sigma_core._wire.{ref}")
            off = getattr(struct_module, f"Create{ref}")(b, *plan[slot][1])
            b.PrependStructSlot(slot, off, 0)
        else:
            # A value equal to the default is written anyway (present, not absent) half the
            # time: the readers must not tell the two apart.
            force = draw(st.booleans())
            b.ForceDefaults(force)
            getattr(b, f"Prepend{_PREPEND[kind]}Slot")(slot, plan[slot][1], default)
            b.ForceDefaults(False)
    return int(b.EndObject())


@st.composite
def schema_envelopes(draw: Any, message: str) -> tuple[bytes, Built]:
    b = flatbuffers.Builder(256)
    built = Built()
    body = _draw_table(draw, b, message, built)
    b.StartObject(_slots.ENVELOPE_SLOT_COUNT)
    b.PrependUint8Slot(_slots.ENVELOPE_BODY_TYPE, MESSAGE_TYPES[message], 0)
    b.PrependUOffsetTRelativeSlot(_slots.ENVELOPE_BODY, body, 0)
    b.Finish(b.EndObject(), file_identifier=codec.FILE_IDENTIFIER)
    return bytes(b.Output()), built


# -- the comparison


def _expected_scalar(kind: str, ref: str, raw: Any) -> Any:
    if kind == "bool":
        return bool(raw)
    if ref == "RecoveryStatus" and raw not in set(RecoveryStatus):
        return RecoveryStatus.FAILED  # the documented fallback (docs/protocol.md)
    return raw


def assert_same(table: str, wire: Any, hand: Any, path: str) -> None:
    """``hand`` (a reader's value) holds what flatc's accessor object ``wire`` reads."""
    for name, _slot, kind, ref, _default, _required in _slots.TABLES[table]:
        where = f"{path}.{name}"
        assert hasattr(hand, name), (
            f"{where}: in the schema but not read by sigma_core.codec (a field added to "
            "schemas/sigma.fbs needs its reader: docs/contributing.md)"
        )
        got = getattr(hand, name)
        read = getattr(wire, camel(name))
        if kind == "string":
            raw = read()
            assert got == ("" if raw is None else raw.decode("utf-8")), where
        elif kind == "vector" and ref == "ubyte":
            n = getattr(wire, camel(name) + "Length")()
            assert bytes(got) == bytes(read(j) for j in range(n)), where
        elif kind == "vector":
            n = getattr(wire, camel(name) + "Length")()
            elements = [read(j) for j in range(n)]
            if isinstance(got, Mapping):  # metadata: KeyValue pairs, the last key wins
                want = {}
                for kv in elements:
                    value = kv.Value()
                    want[kv.Key().decode()] = "" if value is None else value.decode()
                assert dict(got) == want, where
            else:
                assert len(got) == n, where
                for j, (w, h) in enumerate(zip(elements, got, strict=True)):
                    assert_same(ref, w, h, f"{where}[{j}]")
        elif kind == "table":
            child = read()
            assert (got is None) == (child is None), where
            if child is not None:
                assert_same(ref, child, got, where)
        elif kind == "struct":
            struct = read()
            assert (got is None) == (struct is None), where
            if struct is not None:
                assert tuple(got) == tuple(
                    getattr(struct, camel(f))() for f in _slots.STRUCTS[ref]
                ), where
        else:
            want = _expected_scalar(kind, ref, read())
            assert got == want, f"{where}: reader {got!r}, flatc {want!r}"
            if ref in PY_ENUMS:
                assert isinstance(got, PY_ENUMS[ref]), where


def check(buf: bytes) -> Body:
    """Decode ``buf`` every way the codec can and compare each result with the accessors."""
    envelope = accessor_class("Envelope").GetRootAs(buf, 0)
    body_type = envelope.BodyType()
    name = next(n for n, v in MESSAGE_TYPES.items() if v == body_type)
    table = envelope.Body()
    wire = accessor_class(name)()
    wire.Init(table.Bytes, table.Pos)
    decoded = codec.decode(buf)
    assert type(decoded).__name__ == name
    assert_same(name, wire, decoded, name)
    assert_same(name, wire, codec._decode_with_reader(buf), name)  # no fast paths
    if isinstance(decoded, Data):
        fast = codec.read_client_data(buf)
        if fast is not None:  # the server's fixed-layout reader, when the layout is its own
            seq, topic, payload, timestamp_ms = fast
            assert (seq, topic, bytes(payload), timestamp_ms) == (
                wire.Seq(), (wire.Topic() or b"").decode(),
                bytes(wire.Payload(j) for j in range(wire.PayloadLength())), wire.TimestampMs(),
            )
    return decoded


# -- the tests


def test_every_message_type_and_table_is_compared() -> None:
    # The tests below run over the schema's union: a message type appended to the schema is
    # compared once regenerated; this holds the codec's own message classes to it.
    assert set(MESSAGE_TYPES) == {kind.__name__ for kind in BODIES}
    reached = {"Envelope"}
    todo = list(MESSAGE_TYPES)
    while todo:
        table = todo.pop()
        reached.add(table)
        todo += [f[3] for f in _slots.TABLES[table]
                 if f[2] in ("table", "vector") and f[3] in _slots.TABLES and f[3] not in reached]
    assert reached == set(_slots.TABLES)


def test_python_enums_are_the_schemas() -> None:
    for name, enum in PY_ENUMS.items():
        assert {m.name.lower(): int(m) for m in enum} == {
            k.lower(): v for k, v in _slots.ENUMS[name].items()
        }, name


@pytest.mark.parametrize("message", sorted(MESSAGE_TYPES))
@SETTINGS
@given(data=st.data())
def test_readers_read_what_flatc_reads_on_schema_built_buffers(
    message: str, data: st.DataObject
) -> None:
    buf, built = data.draw(schema_envelopes(message))
    if built.missing_required:
        with pytest.raises(DecodeError, match="missing required field"):
            codec.decode(buf)
        with pytest.raises(DecodeError, match="missing required field"):
            codec._decode_with_reader(buf)
        return
    if built.unknown_presence_action:
        with pytest.raises(UnknownMessageType):
            codec.decode(buf)
        return
    check(buf)


@pytest.mark.parametrize("kind", list(BODIES), ids=lambda kind: kind.__name__)
@SETTINGS
@given(data=st.data())
def test_readers_read_what_flatc_reads_on_encoded_messages(
    kind: type[Body], data: st.DataObject
) -> None:
    body = data.draw(BODIES[kind])
    for buf in (codec.encode(body), codec._encode_with_builder(body)):
        decoded = check(buf)
        if isinstance(decoded, Data):
            decoded = dataclasses.replace(decoded, payload=bytes(decoded.payload))
        assert decoded == body


def test_absent_fields_read_as_the_schema_defaults() -> None:
    # Every table with every optional field absent: the readers give the schema's defaults
    # (Hello.protocol_version = 1), what the accessors give.
    for message, body_type in MESSAGE_TYPES.items():
        b = flatbuffers.Builder(64)
        required = [f for f in _slots.TABLES[message] if f[5]]
        if required:
            continue  # covered by the drawn buffers above (required fields present)
        b.StartObject(slot_count(message))
        body = b.EndObject()
        b.StartObject(_slots.ENVELOPE_SLOT_COUNT)
        b.PrependUint8Slot(_slots.ENVELOPE_BODY_TYPE, body_type, 0)
        b.PrependUOffsetTRelativeSlot(_slots.ENVELOPE_BODY, body, 0)
        b.Finish(b.EndObject(), file_identifier=codec.FILE_IDENTIFIER)
        decoded = check(bytes(b.Output()))
        for name, _slot, _kind, _ref, default, _required in _slots.TABLES[message]:
            if default is not None:
                assert getattr(decoded, name) == default, f"{message}.{name}"
