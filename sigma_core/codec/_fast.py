"""Encoding by hand: the fixed byte layouts the builder writes for ``Data`` and ``Ack``, and the
fast encoders that fill them in (byte-identical to :mod:`._build`, tests/test_codec.py)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, NamedTuple

from .._framer import binary_frame_header, server_binary_frame
from ..errors import LocalProtocolError
from ..messages import (
    Payload,
)
from . import _slots as slot
from ._checks import _byte_string, _u64, _utf8
from ._schema import _MAX_FAST_BYTES, _U64_MAX, FILE_IDENTIFIER

# -- encoding: the fast paths
#
# What the builder writes for one table T inside the envelope, front to back (it builds back to
# front; every pad below is where its Prep() put it):
#
#   root uoffset | "SGM1" | finish pad | Envelope vtable (8, inline size, 7, 8)
#   Envelope: soffset=8 | 3 zero bytes | body_type u8 | body uoffset | pad to 4 (inline)
#   T's vtable (size, inline size, field offsets; trailing absent fields trimmed)
#   T: soffset | uoffset fields (added last) | 8-byte fields | pad to 8 | strings, vectors
#
# The 8-byte fields of T are aligned to 8 counted from the END of the buffer, so the pad after
# them depends on the size of the strings and vectors that follow (4 mod 8 or 0 mod 8).


class _Layout(NamedTuple):
    prefix: bytes  # every byte before the first variable one: up to T's topic uoffset
    values: struct.Struct  # T's variable inline fields, then the pad to 8
    payload_rel: int  # payload uoffset = payload_rel + size of the topic string block


def _entries(slot_count: int, offsets: dict[int, int]) -> tuple[int, ...]:
    """A table's vtable entries in slot order: ``offsets`` maps a slot to its field's offset in
    the table; the other slots are absent (0)."""
    return tuple(offsets.get(i, 0) for i in range(slot_count))


def _layout(body_type: int, fields: tuple[int, ...], n_offsets: int, wide: int, pad8: int) -> bytes:
    """The constant prefix of an envelope whose body table has ``fields`` (its vtable entries:
    the fields' offsets in the table, in slot order; see :func:`_entries`).

    ``n_offsets`` uoffset fields and ``wide`` bytes of 8-byte fields are inline (plus the
    soffset and ``pad8``). Returns everything up to and including the body's soffset.
    """
    n = len(fields)
    while n and not fields[n - 1]:
        n -= 1
    vt_bytes = 4 + 2 * n
    inline = 4 + 4 * n_offsets + wide + pad8
    pad_v = vt_bytes & 3
    # Finish() aligns the whole buffer to the largest scalar written (8 if any, else 4).
    pad_f = (-(4 * n_offsets + 4 + vt_bytes + pad_v + 12)) & 7 if wide else 0
    # The Envelope table (two slots; its vtable is 8 bytes): soffset, 3 zero bytes, body_type
    # (u8) at 7, the body's uoffset at 8.
    envelope = _entries(
        slot.ENVELOPE_SLOT_COUNT, {slot.ENVELOPE_BODY_TYPE: 7, slot.ENVELOPE_BODY: 8}
    )
    return b"".join(
        (
            struct.pack("<I4s", 16 + pad_f, FILE_IDENTIFIER),
            bytes(pad_f),
            struct.pack("<4HiBBBBI", 8, 12 + pad_v, *envelope, 8, 0, 0, 0, body_type,
                        4 + pad_v + vt_bytes),
            bytes(pad_v),
            struct.pack(f"<{n + 2}H", vt_bytes, inline, *fields[:n]),
            struct.pack("<i", vt_bytes),
        )
    )


def _data_layout(
    has_topic: bool, has_payload: bool, has_seq: bool, has_ts: bool, has_pos: bool, odd: bool
) -> _Layout:
    wide = 8 * has_seq + 8 * has_ts + 16 * has_pos
    pad8 = 4 if wide and odd else 0
    n_offsets = has_topic + has_payload
    inline = 4 + 4 * n_offsets + wide + pad8
    at = 4 + 4 * n_offsets
    fo_seq = at if has_seq else 0
    at += 8 * has_seq
    fo_ts = at if has_ts else 0
    at += 8 * has_ts
    fo_pos = at if has_pos else 0
    fo_topic = 4 if has_topic else 0
    fo_payload = 4 + 4 * has_topic if has_payload else 0
    fields = _entries(slot.DATA_SLOT_COUNT, {
        slot.DATA_TOPIC: fo_topic,
        slot.DATA_POSITION: fo_pos,
        slot.DATA_SEQ: fo_seq,
        slot.DATA_TIMESTAMP_MS: fo_ts,
        slot.DATA_PAYLOAD: fo_payload,
    })
    prefix = _layout(slot.BODY_DATA, fields, n_offsets, wide, pad8)
    if has_topic:
        prefix += struct.pack("<I", inline - 4)
    fmt = "<" + "I" * has_payload + "Q" * (has_seq + has_ts + 2 * has_pos) + "x" * pad8
    return _Layout(prefix, struct.Struct(fmt), inline - fo_payload)


_DATA_LAYOUTS: Final = {
    (t, p, s, ts, pos, odd): _data_layout(t, p, s, ts, pos, odd)
    for t in (False, True)
    for p in (False, True)
    for s in (False, True)
    for ts in (False, True)
    for pos in (False, True)
    for odd in (False, True)
}
# After a string of n bytes: its NUL, then zeros up to a multiple of 4.
_STRING_TAILS: Final = (b"\0\0\0\0", b"\0\0\0", b"\0\0", b"\0")
_VECTOR_TAILS: Final = (b"", b"\0\0\0", b"\0\0", b"\0")
_pack_u32: Final = struct.Struct("<I").pack
_pack_u64: Final = struct.Struct("<Q").pack
#: A server's Data frame is built from a per-topic template (:class:`_TopicFrames`): every byte
#: before the payload, constants written, zeros where the variable fields go, patched by
#: :func:`data_frame` (C, one allocation) or :func:`data_frame_py` (its pure-Python twin). The
#: same few topics go out again and again (every inbox is ``$inbox``). Bounded: cleared when full.
_TOPIC_FRAMES: Final[dict[str, _TopicFrames]] = {}
_TOPIC_FRAMES_MAX: Final = 4096
#: A frame's WebSocket header by length class (under 126 bytes, 16-bit, 64-bit length), its
#: length left zero: :func:`data_frame` reads the class from byte 1.
_HEADERS: Final = (b"\x82\0", b"\x82\x7e\0\0", b"\x82\x7f" + bytes(8))
_HEADER_SIZES: Final = (2, 4, 10)
_patch_len16: Final = struct.Struct("!H").pack_into
_patch_len64: Final = struct.Struct("!Q").pack_into
_patch_u32: Final = struct.Struct("<I").pack_into
_patch_2u64: Final = struct.Struct("<QQ").pack_into
_patch_3u64: Final = struct.Struct("<QQQ").pack_into


class _TopicFrames:
    """A topic's frame templates, built on first use: by ``cls * 4 + odd * 2 + has_timestamp``
    (``cls`` the length class of :data:`_HEADERS`, ``odd`` the layout's pad to 8), the template
    and where its u64 fields start."""

    def __init__(self, block: bytes) -> None:
        self.block = block  # u32 length, UTF-8, NUL, padding to 4
        # The envelope's size without the payload (its u32 length included), by odd * 2 + ts.
        self.bases = tuple(
            len(layout.prefix) + layout.values.size + len(block) + 4
            for odd in (False, True) for ts in (False, True)
            for layout in (_DATA_LAYOUTS[(True, True, False, ts, True, odd)],)
        )
        self.templates: list[bytes] = [b""] * 12
        self.ats: list[int] = [0] * 12
        #: The envelope alone (no WebSocket header) by ``odd * 2 + has_timestamp``
        #: (:func:`encode_data_parts`), and where its u64 fields start.
        self.envelopes: list[bytes] = [b""] * 4
        self.envelope_ats: list[int] = [0] * 4
        #: The WebSocket header made last, and the envelope size it is for (one topic's
        #: messages mostly have one size: an echo's, a game's ticks).
        self.header_size = -1
        self.header = b""

    def build(self, index: int) -> bytes:
        cls, odd, ts = index >> 2, bool(index & 2), bool(index & 1)
        layout = _DATA_LAYOUTS[(True, True, False, ts, True, odd)]
        header = _HEADERS[cls]
        zeros = (0, 0, 0) if ts else (0, 0)
        template = b"".join((
            header, layout.prefix, layout.values.pack(layout.payload_rel + len(self.block), *zeros),
            self.block, bytes(4),
        ))
        self.templates[index] = template
        self.ats[index] = len(header) + len(layout.prefix) + 4
        return template

    def build_envelope(self, index: int) -> bytes:
        """The envelope template of ``index`` (``odd * 2 + has_timestamp``): :meth:`build`'s
        bytes after the WebSocket header."""
        odd, ts = bool(index & 2), bool(index & 1)
        layout = _DATA_LAYOUTS[(True, True, False, ts, True, odd)]
        zeros = (0, 0, 0) if ts else (0, 0)
        template = b"".join((
            layout.prefix, layout.values.pack(layout.payload_rel + len(self.block), *zeros),
            self.block, bytes(4),
        ))
        self.envelopes[index] = template
        self.envelope_ats[index] = len(layout.prefix) + 4
        return template

    def header_for(self, size: int) -> bytes:
        """The header of a server frame carrying ``size`` bytes (the last one made is kept)."""
        if size == self.header_size:
            return self.header
        header = self.header = binary_frame_header(size)
        self.header_size = size
        return header


def _topic_block(raw: bytes) -> bytes:
    n = len(raw)
    return b"".join((_pack_u32(n), raw, _STRING_TAILS[n & 3]))


def _topic_frames(topic: str) -> _TopicFrames:
    try:
        raw = topic.encode("utf-8")
    except UnicodeEncodeError:
        raw = _utf8(topic, "Data.topic")  # raises, naming the field
    frames = _TopicFrames(_topic_block(raw))
    if len(_TOPIC_FRAMES) >= _TOPIC_FRAMES_MAX:
        _TOPIC_FRAMES.clear()
    _TOPIC_FRAMES[topic] = frames
    return frames


#: Every session's inbox has the wire topic ``$inbox``: its templates are kept apart from the
#: cache and found without a lookup by the topic when the caller passes that very string
#: object (the hub's constant; an equal string from elsewhere is looked up as any topic).
_INBOX_TOPIC: Final = "$inbox"
_INBOX_FRAMES: Final = _TopicFrames(_topic_block(b"$inbox"))


def data_frame_py(
    template: bytes, at: int, payload: bytes | bytearray | memoryview, timestamp_ms: int,
    epoch: int, offset: int,
) -> bytes:
    """A server's Data frame from ``template`` (:meth:`_TopicFrames.build`): the pure-Python
    twin of the C ``_speedups.data_frame`` (tests/test_codec.py holds them equal). Patches
    the WebSocket length (its class read from ``template[1]``), at ``at`` the u64s
    ``timestamp_ms`` (only when non-zero), ``epoch`` and ``offset``, the payload's u32 length in
    the template's last 4 bytes; appends the payload and its zero padding to 4.

    Raises TypeError when ``timestamp_ms``, ``epoch`` or ``offset`` is not an int, and
    ValueError when the template cannot hold those fields or its length class does not fit the
    frame (a template/size mismatch: a bug of the caller), as the C version does."""
    if not (isinstance(timestamp_ms, int) and isinstance(epoch, int)
            and isinstance(offset, int)):
        raise TypeError("data_frame(): timestamp_ms, epoch and offset must be ints")
    n_template = len(template)
    header = 0
    if n_template >= 2:
        header = 10 if template[1] == 127 else 4 if template[1] == 126 else 2
    if n_template < 2 or at < header or at + (24 if timestamp_ms else 16) > n_template - 4:
        raise ValueError("data_frame(): the template cannot hold the fields")
    buf = bytearray(template)
    buf += payload
    n = len(buf) - n_template
    buf += _VECTOR_TAILS[n & 3]
    body = len(buf) - header
    if header == 2 and body < 126:
        buf[1] = body
    elif header == 4 and 126 <= body <= 0xFFFF:
        _patch_len16(buf, 2, body)
    elif header == 10 and body > 0xFFFF:
        _patch_len64(buf, 2, body)
    else:
        raise ValueError("data_frame(): the template's length class does not fit the frame")
    if timestamp_ms:
        _patch_3u64(buf, at, timestamp_ms, epoch, offset)
    else:
        _patch_2u64(buf, at, epoch, offset)
    _patch_u32(buf, n_template - 4, n)
    return bytes(buf)


def data_envelope_py(
    template: bytes, at: int, payload: bytes | bytearray | memoryview, timestamp_ms: int,
    epoch: int, offset: int,
) -> bytes:
    """:func:`data_frame_py`'s envelope alone, from a template without the WebSocket header
    (:meth:`_TopicFrames.build_envelope`): the pure-Python twin of the C
    ``_speedups.data_envelope`` (tests/test_codec.py holds them equal). Raises TypeError when
    ``timestamp_ms``, ``epoch`` or ``offset`` is not an int, ValueError when the template
    cannot hold those fields."""
    if not (isinstance(timestamp_ms, int) and isinstance(epoch, int)
            and isinstance(offset, int)):
        raise TypeError("data_envelope(): timestamp_ms, epoch and offset must be ints")
    n_template = len(template)
    if at < 0 or at + (24 if timestamp_ms else 16) > n_template - 4:
        raise ValueError("data_envelope(): the template cannot hold the fields")
    buf = bytearray(template)
    buf += payload
    n = len(buf) - n_template
    buf += _VECTOR_TAILS[n & 3]
    if timestamp_ms:
        _patch_3u64(buf, at, timestamp_ms, epoch, offset)
    else:
        _patch_2u64(buf, at, epoch, offset)
    _patch_u32(buf, n_template - 4, n)
    return bytes(buf)


_Builder = Callable[[bytes, int, bytes, int, int, int], bytes]


def _in_use(name: str, twin: _Builder) -> _Builder:
    """The C helper ``name`` of ``_speedups`` (built with the compiled modules) when it is
    there, else its pure-Python ``twin``."""
    try:
        from .. import _speedups
    except ImportError:  # a pure-Python install
        return twin
    builder: _Builder = getattr(_speedups, name)
    return builder


#: The frame builder in use: the C helper (``_speedups.c``, built with the compiled modules)
#: when it is there, else :func:`data_frame_py`. (Final: compiled, it is read from a C static,
#: not looked up in the module's dict per call.)
data_frame: Final = _in_use("data_frame", data_frame_py)


#: The envelope builder in use (C when built, else :func:`data_envelope_py`).
data_envelope: Final = _in_use("data_envelope", data_envelope_py)


def encode_data(
    *,
    topic: str = "",
    epoch: int | None = None,
    offset: int | None = None,
    seq: int = 0,
    timestamp_ms: int = 0,
    payload: Payload = b"",
) -> bytes:
    """Encode a ``Data`` envelope; the hot path (same bytes as ``encode(Data(...))``).

    ``epoch`` and ``offset`` form ``Data.position``: give both (server -> client) or neither
    (client -> server). ``payload`` is any bytes-like object; it is copied once, into the result.

    Raises :class:`LocalProtocolError` when an integer is out of its ``ulong`` range or not an
    int, when only one of ``epoch``/``offset`` is given, when ``topic`` is not a str encodable
    as UTF-8 (lone surrogates), when ``payload`` is not bytes-like, or when the envelope would
    reach 2 GiB.
    """
    parts, _size = _data_parts(topic, epoch, offset, seq, timestamp_ms, payload)
    return b"".join(parts)


def encode_data_frame(
    *,
    topic: str,
    epoch: int,
    offset: int,
    timestamp_ms: int,
    payload: Payload,
) -> tuple[bytes, int]:
    """A server's ``Data`` envelope (:func:`encode_data` with a position and no ``seq``) inside
    its WebSocket frame: ``(frame, header size)``, the frame being
    :func:`~sigma_core._framer.server_binary_frame` of the envelope.

    Header and envelope are built in one buffer, so the payload is copied once (a broadcast
    sends the frame to every socket and keeps it in history, the envelope being
    ``frame[header:]``). Raises as :func:`encode_data` does."""
    if (type(payload) is bytes and payload and type(topic) is str and topic
            and len(payload) + len(topic) * 4 <= _MAX_FAST_BYTES):
        # The common case (a topic and a payload): the topic's template for this layout and
        # length class, patched in one allocation; the same bytes as the general way below
        # (tests/test_codec.py). The u64 ranges and the ints' types are checked by data_frame
        # itself (compiled, a comparison with 2**64 - 1 is a call on boxed ints, and a type()
        # test boxes a native int: three of each per message): a value out of range or not an
        # int goes the general way, which refuses it naming the field.
        frames = _TOPIC_FRAMES.get(topic)
        if frames is None:
            frames = _topic_frames(topic)
        n_payload = len(payload)
        index = ((len(frames.block) + n_payload + 7) & 4) >> 1 | (timestamp_ms != 0)
        size = frames.bases[index] + ((n_payload + 3) & ~3)
        cls = 0 if size < 126 else 1 if size < 65536 else 2
        index |= cls << 2
        template = frames.templates[index]
        if not template:
            template = frames.build(index)
        try:
            frame = data_frame(template, frames.ats[index], payload, timestamp_ms, epoch,
                               offset)
        except (OverflowError, struct.error, TypeError):
            pass  # a u64 out of range (negative or 2**64 and up) or not an int: refused below
        else:
            # (_HEADER_SIZES[cls], without boxing the Final tuple's ints into a new tuple.)
            return frame, 2 if cls == 0 else 4 if cls == 1 else 10
    parts, size = _data_parts(topic, epoch, offset, 0, timestamp_ms, payload)
    header = binary_frame_header(size)
    parts[0:0] = (header,)
    return b"".join(parts), len(header)


def encode_data_parts(
    *,
    topic: str,
    epoch: int,
    offset: int,
    timestamp_ms: int,
    payload: Payload,
) -> tuple[bytes, bytes]:
    """:func:`encode_data_frame`'s frame in two pieces, ``(WebSocket header, envelope)``:
    ``header + envelope`` is that frame. For a message whose envelope history keeps and whose
    socket takes the frame in pieces: the envelope is then the one copy of the payload (the
    frame's ``frame[header:]`` is a second). Raises as :func:`encode_data` does."""
    if (type(payload) is bytes and payload and type(topic) is str and topic
            and len(payload) + len(topic) * 4 <= _MAX_FAST_BYTES):
        frames = _INBOX_FRAMES if topic is _INBOX_TOPIC else _TOPIC_FRAMES.get(topic)
        if frames is None:
            frames = _topic_frames(topic)
        index = ((len(frames.block) + len(payload) + 7) & 4) >> 1 | (timestamp_ms != 0)
        template = frames.envelopes[index]
        if not template:
            template = frames.build_envelope(index)
        try:
            envelope = data_envelope(template, frames.envelope_ats[index], payload,
                                     timestamp_ms, epoch, offset)
        except (OverflowError, struct.error, TypeError):
            pass  # a u64 out of range or not an int: refused below, naming the field
        else:
            return frames.header_for(len(envelope)), envelope
    frame, header = encode_data_frame(topic=topic, epoch=epoch, offset=offset,
                                      timestamp_ms=timestamp_ms, payload=payload)
    return frame[:header], frame[header:]


def _data_parts(
    topic: str,
    epoch: int | None,
    offset: int | None,
    seq: int,
    timestamp_ms: int,
    payload: Payload,
) -> tuple[list[bytes | bytearray | memoryview], int]:
    """The pieces of a Data envelope, in order, and their total size."""
    if type(topic) is str:
        try:
            raw_topic = topic.encode("utf-8")
        except UnicodeEncodeError:
            raw_topic = _utf8(topic, "Data.topic")  # raises, naming the field
    else:
        raw_topic = _utf8(topic, "Data.topic")
    if type(payload) is bytes or isinstance(payload, bytearray):
        n_payload = len(payload)
    elif isinstance(payload, memoryview) and payload.c_contiguous:
        n_payload = payload.nbytes  # len() counts items, not bytes, for other formats
    else:
        payload = _byte_string(payload, "Data.payload")
        n_payload = len(payload)
    n_topic = len(raw_topic)
    if not (type(seq) is int and 0 <= seq <= _U64_MAX):
        seq = _u64(seq, "Data.seq")
    if not (type(timestamp_ms) is int and 0 <= timestamp_ms <= _U64_MAX):
        timestamp_ms = _u64(timestamp_ms, "Data.timestamp_ms")
    has_pos = epoch is not None
    if has_pos or offset is not None:
        if epoch is None or offset is None:
            raise LocalProtocolError("Data.position needs both epoch and offset, or neither")
        if not (type(epoch) is int and 0 <= epoch <= _U64_MAX):
            epoch = _u64(epoch, "Data.position.epoch")
        if not (type(offset) is int and 0 <= offset <= _U64_MAX):
            offset = _u64(offset, "Data.position.offset")
        position = (epoch, offset)
    if n_payload + n_topic > _MAX_FAST_BYTES:
        raise LocalProtocolError("Data is too large for an envelope")

    topic_block = (n_topic - (n_topic & 3) + 8) if n_topic else 0
    payload_block = (n_payload + 7) & ~3 if n_payload else 0
    layout = _DATA_LAYOUTS[
        (
            n_topic > 0,
            n_payload > 0,
            seq != 0,
            timestamp_ms != 0,
            has_pos,
            bool((topic_block + payload_block) & 4),
        )
    ]
    values: list[int] = []
    if n_payload:
        values.append(layout.payload_rel + topic_block)
    if seq:
        values.append(seq)
    if timestamp_ms:
        values.append(timestamp_ms)
    if has_pos:
        values += position
    parts: list[bytes | bytearray | memoryview] = [layout.prefix, layout.values.pack(*values)]
    if n_topic:
        parts += (_pack_u32(n_topic), raw_topic, _STRING_TAILS[n_topic & 3])
    if n_payload:
        parts += (_pack_u32(n_payload), payload, _VECTOR_TAILS[n_payload & 3])
    return parts, len(layout.prefix) + layout.values.size + topic_block + payload_block


_ACK_PREFIX: Final = _layout(
    slot.BODY_ACK, _entries(slot.ACK_SLOT_COUNT, {slot.ACK_SEQ: 4}), 0, 8, 0
)
_ACK_ZERO: Final = _layout(slot.BODY_ACK, (), 0, 0, 0)


def encode_ack(seq: int) -> bytes:
    """Encode an ``Ack`` envelope without positions; the hot path (same bytes as ``encode``).

    Raises :class:`LocalProtocolError` when ``seq`` is not an int in the ``ulong`` range.
    """
    if not (type(seq) is int and 0 <= seq <= _U64_MAX):
        seq = _u64(seq, "Ack.seq")
    return _ACK_PREFIX + _pack_u64(seq) if seq else _ACK_ZERO


#: An Ack's server frame: its 2-byte WebSocket header (the envelope is under 126 bytes) and the
#: fixed layout's prefix, then the u64 ``seq``.
_ACK_FRAME_PREFIX: Final = binary_frame_header(len(_ACK_PREFIX) + 8) + _ACK_PREFIX


def encode_ack_frame(seq: int) -> tuple[bytes, int]:
    """:func:`encode_ack` inside its server frame: ``(frame, header size)``, the frame being
    ``server_binary_frame(encode_ack(seq))`` (tests/test_codec.py), from one ``pack`` and one
    join (the server acknowledges a client's sequence with every reply at one message in
    flight). Raises as :func:`encode_ack` does."""
    if seq > 0:
        try:
            return _ACK_FRAME_PREFIX + _pack_u64(seq), 2
        except (OverflowError, struct.error):
            pass  # beyond the u64 range: refused below, naming the field
    frame = server_binary_frame(encode_ack(seq))
    return frame, 2
