"""Envelopes on the wire: :mod:`sigma_core.messages` dataclasses <-> FlatBuffers bytes.

This is the only module that touches the generated code in ``sigma_core._wire``.

Encoding uses the generated builder functions, except for the two hot messages: ``Data`` and
``Ack`` are packed by hand with :mod:`struct` (:func:`encode_data`, :func:`encode_ack`) into
exactly the bytes the builder would produce (a test proves it byte for byte), 20 to 100 times
faster. Decoding them has hand-inlined fast paths too, checked against the generic reader.

Decoding does not use the generated accessors: the FlatBuffers Python runtime checks no bounds
and would raise ``IndexError``/``struct.error`` or silently read garbage on a hostile buffer.
Instead every offset is bounds-checked as it is followed (a verifier and a reader in one pass):

* the buffer is at least 8 bytes and carries the file identifier ``SGM1`` at bytes 4..7;
* every ``uoffset`` target (root, tables, strings, vectors, vector elements) lies in the buffer;
* a table's vtable lies in the buffer, its size is even and at least 4, the table's inline size
  is at least 4 and lies in the buffer, and each field read lies within that inline size (after
  the table's own vtable offset);
* a vector's ``length * element size`` fits in the buffer; a string is NUL-terminated inside the
  buffer and valid UTF-8;
* ``(required)`` fields are present; the union type is known and its body present;
* everything decoded (string and byte-vector bytes, vector elements) adds up to at most the
  buffer's size, so a crafted buffer cannot make the decoder allocate more than it sent (strings
  reached twice through shared offsets are decoded once).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, TypeAlias

import flatbuffers
from flatbuffers.builder import BuilderSizeError

from sigma_core._wire import Ack as _w_ack
from sigma_core._wire import ClientInfo as _w_client_info
from sigma_core._wire import Data as _w_data
from sigma_core._wire import Envelope as _w_envelope
from sigma_core._wire import Error as _w_error
from sigma_core._wire import Goodbye as _w_goodbye
from sigma_core._wire import Hello as _w_hello
from sigma_core._wire import KeyValue as _w_key_value
from sigma_core._wire import Limits as _w_limits
from sigma_core._wire import Ping as _w_ping
from sigma_core._wire import Pong as _w_pong
from sigma_core._wire import Presence as _w_presence
from sigma_core._wire import StreamPosition as _w_stream_position
from sigma_core._wire import Subscribe as _w_subscribe
from sigma_core._wire import Subscribed as _w_subscribed
from sigma_core._wire import TopicPosition as _w_topic_position
from sigma_core._wire import TopicRecovery as _w_topic_recovery
from sigma_core._wire import Unsubscribe as _w_unsubscribe
from sigma_core._wire import Unsubscribed as _w_unsubscribed
from sigma_core._wire import Welcome as _w_welcome
from sigma_core._wire.Body import Body as _WireBodyEnum

from ._framer import binary_frame_header
from .errors import DecodeError, LocalProtocolError, UnknownMessageType
from .messages import (
    Ack,
    Body,
    ClientInfo,
    Data,
    Error,
    Goodbye,
    Hello,
    Limits,
    Payload,
    Ping,
    Pong,
    Presence,
    PresenceAction,
    RecoveryStatus,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)

# The generated code is untyped to mypy (its .pyi stubs do not pass it: numpy import, invalid
# Literal[...]; see the follow_imports overrides in pyproject.toml).
_WireBody: Any = _WireBodyEnum

__all__ = [
    "FILE_IDENTIFIER",
    "decode",
    "encode",
    "encode_ack",
    "encode_data",
    "encode_data_frame",
    "read_client_data",
]

#: Bytes 4..7 of every envelope (``file_identifier`` in ``schemas/sigma.fbs``).
FILE_IDENTIFIER: Final = b"SGM1"

_U16_MAX: Final = 0xFFFF
_U32_MAX: Final = 0xFFFF_FFFF
_U64_MAX: Final = 0xFFFF_FFFF_FFFF_FFFF
# The builder refuses buffers of 2 GiB and more; the fast paths refuse them a little earlier.
_MAX_FAST_BYTES: Final = 2**31 - 1024

# -- encoding: argument checks


def _uint(value: object, maximum: int, kind: str, name: str) -> int:
    if not isinstance(value, int):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name}={value} is out of range for {kind} (0..{maximum})")
    return int(value)


def _u64(value: object, name: str) -> int:
    return _uint(value, _U64_MAX, "ulong", name)


def _u32(value: object, name: str) -> int:
    return _uint(value, _U32_MAX, "uint", name)


def _u16(value: object, name: str) -> int:
    return _uint(value, _U16_MAX, "ushort", name)


def _utf8(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{name} cannot be encoded as UTF-8: {exc.reason}") from exc


def _byte_string(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise LocalProtocolError(f"{name} must be bytes-like, not {type(value).__name__}")


def _position(value: object, name: str) -> tuple[int, int]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise LocalProtocolError(f"{name} must be a StreamPosition(epoch, offset)")
    return _u64(value[0], f"{name}.epoch"), _u64(value[1], f"{name}.offset")


def _enum_value(value: object, enum: type[RecoveryStatus | PresenceAction], name: str) -> int:
    try:
        if not isinstance(value, int):
            raise TypeError(value)
        return int(enum(value))
    except (ValueError, TypeError) as exc:
        raise LocalProtocolError(f"{name}={value!r} is not a {enum.__name__}") from exc


def _metadata_items(value: object, name: str) -> list[tuple[bytes, bytes]]:
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{name} must be a mapping of str to str")
    return [(_utf8(k, f"{name} key"), _utf8(v, f"{name}[{k!r}]")) for k, v in value.items()]


# -- encoding: the generic builder
#
# Strings, vectors and child tables are created before the table that refers to them (FlatBuffers
# forbids nesting). The field order inside Data and Ack is what the fast paths below replicate.

_Builder: TypeAlias = Any  # flatbuffers.Builder (untyped)


def _string(b: _Builder, raw: bytes) -> int:
    """An optional string: the empty string is left out (it decodes back to "")."""
    return int(b.CreateString(raw)) if raw else 0


def _table_vector(b: _Builder, offsets: list[int]) -> int:
    if not offsets:
        return 0
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return int(b.EndVector())


def _build_topic_position(b: _Builder, tp: object, name: str) -> int:
    if not isinstance(tp, TopicPosition):
        raise LocalProtocolError(f"{name} must hold TopicPosition, not {type(tp).__name__}")
    topic = b.CreateString(_utf8(tp.topic, f"{name}.topic"))
    epoch, offset = _position(tp.position, f"{name}.position")
    _w_topic_position.Start(b)
    _w_topic_position.AddPosition(b, _w_stream_position.CreateStreamPosition(b, epoch, offset))
    _w_topic_position.AddTopic(b, topic)
    return int(_w_topic_position.End(b))


def _build_topic_positions(b: _Builder, value: object, name: str) -> int:
    if not isinstance(value, tuple | list):
        raise LocalProtocolError(f"{name} must be a tuple of TopicPosition")
    return _table_vector(b, [_build_topic_position(b, tp, name) for tp in value])


def _build_topic_recovery(b: _Builder, tr: object, name: str) -> int:
    if not isinstance(tr, TopicRecovery):
        raise LocalProtocolError(f"{name} must be a TopicRecovery, not {type(tr).__name__}")
    topic = b.CreateString(_utf8(tr.topic, f"{name}.topic"))
    status = _enum_value(tr.status, RecoveryStatus, f"{name}.status")
    position = None if tr.position is None else _position(tr.position, f"{name}.position")
    lost_from = _u64(tr.lost_from, f"{name}.lost_from")
    lost_to = _u64(tr.lost_to, f"{name}.lost_to")
    replayed = _u64(tr.replayed, f"{name}.replayed")
    _w_topic_recovery.Start(b)
    if position is not None:
        _w_topic_recovery.AddPosition(b, _w_stream_position.CreateStreamPosition(b, *position))
    _w_topic_recovery.AddLostFrom(b, lost_from)
    _w_topic_recovery.AddLostTo(b, lost_to)
    _w_topic_recovery.AddReplayed(b, replayed)
    _w_topic_recovery.AddTopic(b, topic)
    _w_topic_recovery.AddStatus(b, status)
    return int(_w_topic_recovery.End(b))


def _build_metadata(b: _Builder, value: object, name: str) -> int:
    entries = []
    for key, val in _metadata_items(value, name):
        key_off = b.CreateString(key)  # (required): written even when empty
        val_off = _string(b, val)
        _w_key_value.Start(b)
        _w_key_value.AddKey(b, key_off)
        _w_key_value.AddValue(b, val_off)
        entries.append(int(_w_key_value.End(b)))
    return _table_vector(b, entries)


def _build_client_info(b: _Builder, ci: object) -> int:
    if not isinstance(ci, ClientInfo):
        raise LocalProtocolError(f"Hello.client must be a ClientInfo, not {type(ci).__name__}")
    name = _string(b, _utf8(ci.name, "ClientInfo.name"))
    version = _string(b, _utf8(ci.version, "ClientInfo.version"))
    platform = _string(b, _utf8(ci.platform, "ClientInfo.platform"))
    metadata = _build_metadata(b, ci.metadata, "ClientInfo.metadata")
    _w_client_info.Start(b)
    _w_client_info.AddName(b, name)
    _w_client_info.AddVersion(b, version)
    _w_client_info.AddPlatform(b, platform)
    _w_client_info.AddMetadata(b, metadata)
    return int(_w_client_info.End(b))


def _build_limits(b: _Builder, lim: object) -> int:
    if not isinstance(lim, Limits):
        raise LocalProtocolError(f"Welcome.limits must be a Limits, not {type(lim).__name__}")
    values = (
        _u32(lim.max_message_size, "Limits.max_message_size"),
        _u32(lim.max_unacked, "Limits.max_unacked"),
        _u32(lim.max_topics, "Limits.max_topics"),
        _u32(lim.max_messages_per_second, "Limits.max_messages_per_second"),
        _u32(lim.max_bytes_per_second, "Limits.max_bytes_per_second"),
    )
    _w_limits.Start(b)
    _w_limits.AddMaxMessageSize(b, values[0])
    _w_limits.AddMaxUnacked(b, values[1])
    _w_limits.AddMaxTopics(b, values[2])
    _w_limits.AddMaxMessagesPerSecond(b, values[3])
    _w_limits.AddMaxBytesPerSecond(b, values[4])
    return int(_w_limits.End(b))


def _build_hello(b: _Builder, m: Hello) -> int:
    version = _u16(m.protocol_version, "Hello.protocol_version")
    session_id = _string(b, _utf8(m.session_id, "Hello.session_id"))
    token = _byte_string(m.resume_token, "Hello.resume_token")
    resume_token = b.CreateByteVector(token) if token else 0
    positions = _build_topic_positions(b, m.positions, "Hello.positions")
    last_acked = _u64(m.last_acked_seq, "Hello.last_acked_seq")
    auth_token = _string(b, _utf8(m.auth_token, "Hello.auth_token"))
    client = 0 if m.client is None else _build_client_info(b, m.client)
    _w_hello.Start(b)
    _w_hello.AddLastAckedSeq(b, last_acked)
    _w_hello.AddSessionId(b, session_id)
    _w_hello.AddResumeToken(b, resume_token)
    _w_hello.AddPositions(b, positions)
    _w_hello.AddAuthToken(b, auth_token)
    _w_hello.AddClient(b, client)
    _w_hello.AddProtocolVersion(b, version)
    return int(_w_hello.End(b))


def _build_welcome(b: _Builder, m: Welcome) -> int:
    session_id = b.CreateString(_utf8(m.session_id, "Welcome.session_id"))
    resume_token = b.CreateByteVector(_byte_string(m.resume_token, "Welcome.resume_token"))
    if not isinstance(m.recovery, tuple | list):
        raise LocalProtocolError("Welcome.recovery must be a tuple of TopicRecovery")
    recovery = _table_vector(
        b, [_build_topic_recovery(b, tr, "Welcome.recovery") for tr in m.recovery]
    )
    limits = 0 if m.limits is None else _build_limits(b, m.limits)
    fresh_reason = _string(b, _utf8(m.fresh_reason, "Welcome.fresh_reason"))
    last_received = _u64(m.last_received_seq, "Welcome.last_received_seq")
    server_time = _u64(m.server_time_ms, "Welcome.server_time_ms")
    interval = _u32(m.heartbeat_interval_ms, "Welcome.heartbeat_interval_ms")
    timeout = _u32(m.heartbeat_timeout_ms, "Welcome.heartbeat_timeout_ms")
    _w_welcome.Start(b)
    _w_welcome.AddLastReceivedSeq(b, last_received)
    _w_welcome.AddServerTimeMs(b, server_time)
    _w_welcome.AddSessionId(b, session_id)
    _w_welcome.AddResumeToken(b, resume_token)
    _w_welcome.AddRecovery(b, recovery)
    _w_welcome.AddHeartbeatIntervalMs(b, interval)
    _w_welcome.AddHeartbeatTimeoutMs(b, timeout)
    _w_welcome.AddLimits(b, limits)
    _w_welcome.AddFreshReason(b, fresh_reason)
    _w_welcome.AddResumed(b, bool(m.resumed))
    return int(_w_welcome.End(b))


def _build_data(b: _Builder, m: Data) -> int:
    payload = _byte_string(m.payload, "Data.payload")
    payload_off = b.CreateByteVector(payload) if payload else 0
    topic = _string(b, _utf8(m.topic, "Data.topic"))
    position = None if m.position is None else _position(m.position, "Data.position")
    seq = _u64(m.seq, "Data.seq")
    timestamp = _u64(m.timestamp_ms, "Data.timestamp_ms")
    _w_data.Start(b)
    if position is not None:
        _w_data.AddPosition(b, _w_stream_position.CreateStreamPosition(b, *position))
    _w_data.AddTimestampMs(b, timestamp)
    _w_data.AddSeq(b, seq)
    _w_data.AddPayload(b, payload_off)
    _w_data.AddTopic(b, topic)
    return int(_w_data.End(b))


def _build_ack(b: _Builder, m: Ack) -> int:
    positions = _build_topic_positions(b, m.positions, "Ack.positions")
    seq = _u64(m.seq, "Ack.seq")
    _w_ack.Start(b)
    _w_ack.AddSeq(b, seq)
    _w_ack.AddPositions(b, positions)
    return int(_w_ack.End(b))


def _build_ping(b: _Builder, m: Ping) -> int:
    ident = _u32(m.id, "Ping.id")
    timestamp = _u64(m.timestamp_ms, "Ping.timestamp_ms")
    _w_ping.Start(b)
    _w_ping.AddTimestampMs(b, timestamp)
    _w_ping.AddId(b, ident)
    return int(_w_ping.End(b))


def _build_pong(b: _Builder, m: Pong) -> int:
    ident = _u32(m.id, "Pong.id")
    echo = _u64(m.echo_timestamp_ms, "Pong.echo_timestamp_ms")
    timestamp = _u64(m.timestamp_ms, "Pong.timestamp_ms")
    _w_pong.Start(b)
    _w_pong.AddEchoTimestampMs(b, echo)
    _w_pong.AddTimestampMs(b, timestamp)
    _w_pong.AddId(b, ident)
    return int(_w_pong.End(b))


def _build_subscribe(b: _Builder, m: Subscribe) -> int:
    topic = b.CreateString(_utf8(m.topic, "Subscribe.topic"))
    request_id = _u32(m.request_id, "Subscribe.request_id")
    position = None if m.position is None else _position(m.position, "Subscribe.position")
    _w_subscribe.Start(b)
    if position is not None:
        _w_subscribe.AddPosition(b, _w_stream_position.CreateStreamPosition(b, *position))
    _w_subscribe.AddTopic(b, topic)
    _w_subscribe.AddRequestId(b, request_id)
    return int(_w_subscribe.End(b))


def _build_unsubscribe(b: _Builder, m: Unsubscribe) -> int:
    topic = b.CreateString(_utf8(m.topic, "Unsubscribe.topic"))
    request_id = _u32(m.request_id, "Unsubscribe.request_id")
    _w_unsubscribe.Start(b)
    _w_unsubscribe.AddTopic(b, topic)
    _w_unsubscribe.AddRequestId(b, request_id)
    return int(_w_unsubscribe.End(b))


def _build_subscribed(b: _Builder, m: Subscribed) -> int:
    recovery = _build_topic_recovery(b, m.recovery, "Subscribed.recovery")
    request_id = _u32(m.request_id, "Subscribed.request_id")
    _w_subscribed.Start(b)
    _w_subscribed.AddRecovery(b, recovery)
    _w_subscribed.AddRequestId(b, request_id)
    return int(_w_subscribed.End(b))


def _build_unsubscribed(b: _Builder, m: Unsubscribed) -> int:
    topic = b.CreateString(_utf8(m.topic, "Unsubscribed.topic"))
    request_id = _u32(m.request_id, "Unsubscribed.request_id")
    _w_unsubscribed.Start(b)
    _w_unsubscribed.AddTopic(b, topic)
    _w_unsubscribed.AddRequestId(b, request_id)
    return int(_w_unsubscribed.End(b))


def _build_presence(b: _Builder, m: Presence) -> int:
    topic = b.CreateString(_utf8(m.topic, "Presence.topic"))
    session_id = b.CreateString(_utf8(m.session_id, "Presence.session_id"))
    metadata = _build_metadata(b, m.metadata, "Presence.metadata")
    action = _enum_value(m.action, PresenceAction, "Presence.action")
    _w_presence.Start(b)
    _w_presence.AddTopic(b, topic)
    _w_presence.AddSessionId(b, session_id)
    _w_presence.AddMetadata(b, metadata)
    _w_presence.AddAction(b, action)
    return int(_w_presence.End(b))


def _build_error(b: _Builder, m: Error) -> int:
    message = _string(b, _utf8(m.message, "Error.message"))
    details = _string(b, _utf8(m.details, "Error.details"))
    code = _u16(m.code, "Error.code")
    request_id = _u32(m.request_id, "Error.request_id")
    _w_error.Start(b)
    _w_error.AddMessage(b, message)
    _w_error.AddDetails(b, details)
    _w_error.AddRequestId(b, request_id)
    _w_error.AddCode(b, code)
    _w_error.AddRetryable(b, bool(m.retryable))
    return int(_w_error.End(b))


def _build_goodbye(b: _Builder, m: Goodbye) -> int:
    reason = _string(b, _utf8(m.reason, "Goodbye.reason"))
    code = _u16(m.code, "Goodbye.code")
    reconnect_after = _u32(m.reconnect_after_ms, "Goodbye.reconnect_after_ms")
    _w_goodbye.Start(b)
    _w_goodbye.AddReason(b, reason)
    _w_goodbye.AddReconnectAfterMs(b, reconnect_after)
    _w_goodbye.AddCode(b, code)
    return int(_w_goodbye.End(b))


_BUILDERS: Final[dict[type[object], tuple[int, Callable[[_Builder, object], int]]]] = {
    Hello: (_WireBody.Hello, _build_hello),  # type: ignore[dict-item]
    Welcome: (_WireBody.Welcome, _build_welcome),  # type: ignore[dict-item]
    Data: (_WireBody.Data, _build_data),  # type: ignore[dict-item]
    Ack: (_WireBody.Ack, _build_ack),  # type: ignore[dict-item]
    Ping: (_WireBody.Ping, _build_ping),  # type: ignore[dict-item]
    Pong: (_WireBody.Pong, _build_pong),  # type: ignore[dict-item]
    Subscribe: (_WireBody.Subscribe, _build_subscribe),  # type: ignore[dict-item]
    Unsubscribe: (_WireBody.Unsubscribe, _build_unsubscribe),  # type: ignore[dict-item]
    Subscribed: (_WireBody.Subscribed, _build_subscribed),  # type: ignore[dict-item]
    Unsubscribed: (_WireBody.Unsubscribed, _build_unsubscribed),  # type: ignore[dict-item]
    Presence: (_WireBody.Presence, _build_presence),  # type: ignore[dict-item]
    Error: (_WireBody.Error, _build_error),  # type: ignore[dict-item]
    Goodbye: (_WireBody.Goodbye, _build_goodbye),  # type: ignore[dict-item]
}


def _encode_with_builder(body: Body) -> bytes:
    """Encode with the generated FlatBuffers builder (every message type; the reference)."""
    entry = _BUILDERS.get(type(body))
    if entry is None:
        entry = next((e for cls, e in _BUILDERS.items() if isinstance(body, cls)), None)
    if entry is None:
        raise LocalProtocolError(f"cannot encode {type(body).__name__}: not a message body")
    body_type, build = entry
    size_hint = 128 + len(body.payload) if isinstance(body, Data) else 256
    b = flatbuffers.Builder(size_hint)
    try:
        body_off = build(b, body)
        _w_envelope.Start(b)
        _w_envelope.AddBody(b, body_off)
        _w_envelope.AddBodyType(b, body_type)
        b.Finish(_w_envelope.End(b), file_identifier=FILE_IDENTIFIER)
    except BuilderSizeError as exc:
        raise LocalProtocolError(f"{type(body).__name__} is too large for an envelope") from exc
    return bytes(b.Output())


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


def _layout(body_type: int, fields: tuple[int, ...], n_offsets: int, wide: int, pad8: int) -> bytes:
    """The constant prefix of an envelope whose body table has ``fields`` (offsets in the table).

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
    return b"".join(
        (
            struct.pack("<I4s", 16 + pad_f, FILE_IDENTIFIER),
            bytes(pad_f),
            struct.pack(
                "<4HiBBBBI", 8, 12 + pad_v, 7, 8, 8, 0, 0, 0, body_type, 4 + pad_v + vt_bytes
            ),
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
    prefix = _layout(
        _WireBody.Data, (fo_topic, fo_pos, fo_seq, fo_ts, fo_payload), n_offsets, wide, pad8
    )
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
# A server's Data with a topic and a payload, by (size of topic and payload blocks & 4) | (has a
# timestamp): prefix, pack of the inline values, payload uoffset before the topic block, size of
# the fixed part.
_SERVER_DATA: Final = {
    odd * 4 | ts: (layout.prefix, layout.values.pack, layout.payload_rel,
                   len(layout.prefix) + layout.values.size)
    for odd in (False, True)
    for ts in (False, True)
    for layout in (_DATA_LAYOUTS[(True, True, False, ts, True, odd)],)
}
# After a string of n bytes: its NUL, then zeros up to a multiple of 4.
_STRING_TAILS: Final = (b"\0\0\0\0", b"\0\0\0", b"\0\0", b"\0")
_VECTOR_TAILS: Final = (b"", b"\0\0\0", b"\0\0", b"\0")
_pack_u32: Final = struct.Struct("<I").pack
_pack_u64: Final = struct.Struct("<Q").pack
#: A topic's string block in a server Data (u32 length, UTF-8, NUL, padding to 4), by topic:
#: the same few topics go out again and again (every inbox is ``$inbox``). Bounded: cleared
#: when full.
_TOPIC_BLOCKS: dict[str, bytes] = {}
_TOPIC_BLOCKS_MAX: Final = 4096


def _topic_block(topic: str) -> bytes:
    try:
        raw = topic.encode("utf-8")
    except UnicodeEncodeError:
        raw = _utf8(topic, "Data.topic")  # raises, naming the field
    n = len(raw)
    block = b"".join((_pack_u32(n), raw, _STRING_TAILS[n & 3]))
    if len(_TOPIC_BLOCKS) >= _TOPIC_BLOCKS_MAX:
        _TOPIC_BLOCKS.clear()
    _TOPIC_BLOCKS[topic] = block
    return block


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
            and type(timestamp_ms) is int and 0 <= timestamp_ms <= _U64_MAX
            and type(epoch) is int and 0 <= epoch <= _U64_MAX
            and type(offset) is int and 0 <= offset <= _U64_MAX
            and len(payload) + len(topic) * 4 <= _MAX_FAST_BYTES):
        # The common case (a topic and a payload): one of four layouts, written straight out;
        # the same bytes as the general way below (tests/test_codec.py).
        block = _TOPIC_BLOCKS.get(topic)
        if block is None:
            block = _topic_block(topic)
        topic_block = len(block)
        n_payload = len(payload)
        payload_block = (n_payload + 7) & ~3
        prefix, pack, payload_rel, fixed = _SERVER_DATA[
            (topic_block + payload_block) & 4 | (timestamp_ms != 0)]
        header = binary_frame_header(fixed + topic_block + payload_block)
        values = (pack(payload_rel + topic_block, timestamp_ms, epoch, offset) if timestamp_ms
                  else pack(payload_rel + topic_block, epoch, offset))
        return b"".join((
            header, prefix, values, block,
            _pack_u32(n_payload), payload, _VECTOR_TAILS[n_payload & 3],
        )), len(header)
    parts, size = _data_parts(topic, epoch, offset, 0, timestamp_ms, payload)
    header = binary_frame_header(size)
    parts[0:0] = (header,)
    return b"".join(parts), len(header)


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


_ACK_PREFIX: Final = _layout(_WireBody.Ack, (4,), 0, 8, 0)
_ACK_ZERO: Final = _layout(_WireBody.Ack, (), 0, 0, 0)


def encode_ack(seq: int) -> bytes:
    """Encode an ``Ack`` envelope without positions; the hot path (same bytes as ``encode``).

    Raises :class:`LocalProtocolError` when ``seq`` is not an int in the ``ulong`` range.
    """
    if not (type(seq) is int and 0 <= seq <= _U64_MAX):
        seq = _u64(seq, "Ack.seq")
    return _ACK_PREFIX + _pack_u64(seq) if seq else _ACK_ZERO


def encode(body: Body) -> bytes:
    """Encode one message body as a complete envelope (``Finish`` with identifier ``SGM1``).

    Strings are written as UTF-8. Fields equal to their schema default are left out, as the
    FlatBuffers builder does; empty optional strings and vectors are left out too (they decode
    back to the empty value). ``Data`` and ``Ack`` without positions take the fast paths.

    Raises :class:`LocalProtocolError` when ``body`` is not a message body, when an integer is
    outside its schema range (``ulong`` 0..2**64-1, ``uint`` 0..2**32-1, ``ushort`` 0..65535)
    or not an int, when a string cannot be encoded as UTF-8 (lone surrogates), when a field has
    the wrong type, or when the envelope would reach 2 GiB. The message names the field.
    """
    if isinstance(body, Data):
        pos = body.position
        epoch: int | None = None
        offset: int | None = None
        if pos is not None:
            if not (isinstance(pos, tuple) and len(pos) == 2):
                _position(pos, "Data.position")  # raises
            epoch, offset = pos
        return encode_data(
            topic=body.topic,
            epoch=epoch,
            offset=offset,
            seq=body.seq,
            timestamp_ms=body.timestamp_ms,
            payload=body.payload,
        )
    if isinstance(body, Ack) and not body.positions:
        return encode_ack(body.seq)
    return _encode_with_builder(body)


# -- decoding

_unpack_u16: Final = struct.Struct("<H").unpack_from
_unpack_u32: Final = struct.Struct("<I").unpack_from
_unpack_u64: Final = struct.Struct("<Q").unpack_from
_unpack_i32: Final = struct.Struct("<i").unpack_from
_unpack_header: Final = struct.Struct("<I4s").unpack_from
_unpack_vt_header: Final = struct.Struct("<HH").unpack_from
_unpack_position: Final = struct.Struct("<QQ").unpack_from
# Field offsets of a vtable, by count (Welcome, the largest table, has 10 fields).
_unpack_fields: Final = tuple(struct.Struct(f"<{n}H").unpack_from for n in range(11))
_ABSENT: Final = (0,) * 10
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

# Field counts of the nested tables (schemas/sigma.fbs).
_TOPIC_POSITION_FIELDS: Final = 2
_TOPIC_RECOVERY_FIELDS: Final = 6
_KEY_VALUE_FIELDS: Final = 2
_CLIENT_INFO_FIELDS: Final = 4
_LIMITS_FIELDS: Final = 5


def _read_topic_position(t: _Table) -> TopicPosition:
    return TopicPosition(
        topic=t.string(0, "TopicPosition.topic", required=True),
        position=t.required_position(1, "TopicPosition.position"),
    )


def _read_topic_recovery(t: _Table) -> TopicRecovery:
    # Unknown statuses (a newer peer) read as FAILED, the safe side: the app resyncs the topic.
    status = _RECOVERY_STATUS.get(t.u8(1, "TopicRecovery.status"), RecoveryStatus.FAILED)
    return TopicRecovery(
        topic=t.string(0, "TopicRecovery.topic", required=True),
        status=status,
        position=t.position(2, "TopicRecovery.position"),
        lost_from=t.u64(3, "TopicRecovery.lost_from"),
        lost_to=t.u64(4, "TopicRecovery.lost_to"),
        replayed=t.u64(5, "TopicRecovery.replayed"),
    )


def _read_metadata(t: _Table, slot: int, what: str) -> dict[str, str]:
    # Duplicate keys: the last one wins.
    return {
        kv.string(0, "KeyValue.key", required=True): kv.string(1, "KeyValue.value")
        for kv in t.children(slot, _KEY_VALUE_FIELDS, what)
    }


def _read_hello(t: _Table) -> Hello:
    client = t.child(6, _CLIENT_INFO_FIELDS, "Hello.client")
    return Hello(
        protocol_version=t.u16(0, "Hello.protocol_version", default=1),
        session_id=t.string(1, "Hello.session_id"),
        resume_token=t.byte_string(2, "Hello.resume_token"),
        positions=tuple(
            _read_topic_position(c)
            for c in t.children(3, _TOPIC_POSITION_FIELDS, "Hello.positions")
        ),
        last_acked_seq=t.u64(4, "Hello.last_acked_seq"),
        auth_token=t.string(5, "Hello.auth_token"),
        client=None
        if client is None
        else ClientInfo(
            name=client.string(0, "ClientInfo.name"),
            version=client.string(1, "ClientInfo.version"),
            platform=client.string(2, "ClientInfo.platform"),
            metadata=_read_metadata(client, 3, "ClientInfo.metadata"),
        ),
    )


def _read_welcome(t: _Table) -> Welcome:
    limits = t.child(7, _LIMITS_FIELDS, "Welcome.limits")
    return Welcome(
        session_id=t.string(0, "Welcome.session_id", required=True),
        resume_token=t.byte_string(1, "Welcome.resume_token", required=True),
        resumed=t.flag(2, "Welcome.resumed"),
        recovery=tuple(
            _read_topic_recovery(c)
            for c in t.children(3, _TOPIC_RECOVERY_FIELDS, "Welcome.recovery")
        ),
        last_received_seq=t.u64(4, "Welcome.last_received_seq"),
        heartbeat_interval_ms=t.u32(5, "Welcome.heartbeat_interval_ms"),
        heartbeat_timeout_ms=t.u32(6, "Welcome.heartbeat_timeout_ms"),
        limits=None
        if limits is None
        else Limits(
            max_message_size=limits.u32(0, "Limits.max_message_size"),
            max_unacked=limits.u32(1, "Limits.max_unacked"),
            max_topics=limits.u32(2, "Limits.max_topics"),
            max_messages_per_second=limits.u32(3, "Limits.max_messages_per_second"),
            max_bytes_per_second=limits.u32(4, "Limits.max_bytes_per_second"),
        ),
        server_time_ms=t.u64(8, "Welcome.server_time_ms"),
        fresh_reason=t.string(9, "Welcome.fresh_reason"),
    )


def _read_data(t: _Table) -> Data:
    # The reference for _decode_data (the hot path), which must agree with it on every buffer.
    # The payload is a view, not a copy: it is bounds-checked but not charged to the budget.
    reader = t.reader
    payload = reader.view[0:0]
    payload_at = t.field(4, 4, "Data.payload")
    if payload_at:
        start = reader.follow(payload_at, "Data.payload") + 4
        end = start + _unpack_u32(reader.view, start - 4)[0]
        if end > reader.size:
            raise DecodeError("Data.payload: vector runs past the buffer")
        payload = reader.view[start:end]
    return Data(
        topic=t.string(0, "Data.topic"),
        position=t.position(1, "Data.position"),
        seq=t.u64(2, "Data.seq"),
        timestamp_ms=t.u64(3, "Data.timestamp_ms"),
        payload=payload,
    )


def _read_ack(t: _Table) -> Ack:
    return Ack(
        seq=t.u64(0, "Ack.seq"),
        positions=tuple(
            _read_topic_position(c) for c in t.children(1, _TOPIC_POSITION_FIELDS, "Ack.positions")
        ),
    )


def _read_ping(t: _Table) -> Ping:
    return Ping(id=t.u32(0, "Ping.id"), timestamp_ms=t.u64(1, "Ping.timestamp_ms"))


def _read_pong(t: _Table) -> Pong:
    return Pong(
        id=t.u32(0, "Pong.id"),
        echo_timestamp_ms=t.u64(1, "Pong.echo_timestamp_ms"),
        timestamp_ms=t.u64(2, "Pong.timestamp_ms"),
    )


def _read_subscribe(t: _Table) -> Subscribe:
    return Subscribe(
        request_id=t.u32(0, "Subscribe.request_id"),
        topic=t.string(1, "Subscribe.topic", required=True),
        position=t.position(2, "Subscribe.position"),
    )


def _read_unsubscribe(t: _Table) -> Unsubscribe:
    return Unsubscribe(
        request_id=t.u32(0, "Unsubscribe.request_id"),
        topic=t.string(1, "Unsubscribe.topic", required=True),
    )


def _read_subscribed(t: _Table) -> Subscribed:
    return Subscribed(
        request_id=t.u32(0, "Subscribed.request_id"),
        recovery=_read_topic_recovery(
            t.required_child(1, _TOPIC_RECOVERY_FIELDS, "Subscribed.recovery")
        ),
    )


def _read_unsubscribed(t: _Table) -> Unsubscribed:
    return Unsubscribed(
        request_id=t.u32(0, "Unsubscribed.request_id"),
        topic=t.string(1, "Unsubscribed.topic", required=True),
    )


def _read_presence(t: _Table) -> Presence:
    # Every field is verified first: a malformed buffer is a DecodeError (close 4000) even
    # when its action is also unknown (the TypeScript reader agrees; test_codec_crosscheck).
    topic = t.string(0, "Presence.topic", required=True)
    raw_action = t.u8(1, "Presence.action")
    session_id = t.string(2, "Presence.session_id", required=True)
    metadata = _read_metadata(t, 3, "Presence.metadata")
    action = _PRESENCE_ACTION.get(raw_action)
    if action is None:
        # No safe fallback: treating an unknown action as JOIN or LEAVE would corrupt the set.
        # The message is from a newer version: the receiver ignores it.
        raise UnknownMessageType(_WireBody.Presence,
                                 f"Presence with unknown action {raw_action}")
    return Presence(topic=topic, action=action, session_id=session_id, metadata=metadata)


def _read_error(t: _Table) -> Error:
    return Error(
        code=t.u16(0, "Error.code"),
        message=t.string(1, "Error.message"),
        details=t.string(2, "Error.details"),
        retryable=t.flag(3, "Error.retryable"),
        request_id=t.u32(4, "Error.request_id"),
    )


def _read_goodbye(t: _Table) -> Goodbye:
    return Goodbye(
        code=t.u16(0, "Goodbye.code"),
        reason=t.string(1, "Goodbye.reason"),
        reconnect_after_ms=t.u32(2, "Goodbye.reconnect_after_ms"),
    )


_READERS: Final[dict[int, tuple[str, int, Callable[[_Table], Body]]]] = {
    _WireBody.Hello: ("Hello", 7, _read_hello),
    _WireBody.Welcome: ("Welcome", 10, _read_welcome),
    _WireBody.Data: ("Data", 5, _read_data),
    _WireBody.Ack: ("Ack", 2, _read_ack),
    _WireBody.Ping: ("Ping", 2, _read_ping),
    _WireBody.Pong: ("Pong", 3, _read_pong),
    _WireBody.Subscribe: ("Subscribe", 3, _read_subscribe),
    _WireBody.Unsubscribe: ("Unsubscribe", 2, _read_unsubscribe),
    _WireBody.Subscribed: ("Subscribed", 2, _read_subscribed),
    _WireBody.Unsubscribed: ("Unsubscribed", 2, _read_unsubscribed),
    _WireBody.Presence: ("Presence", 4, _read_presence),
    _WireBody.Error: ("Error", 5, _read_error),
    _WireBody.Goodbye: ("Goodbye", 3, _read_goodbye),
}
_DATA: Final[int] = _WireBody.Data
_ACK: Final[int] = _WireBody.Ack


def _decode_data(view: memoryview, size: int, pos: int) -> Data:
    """The hot path: Data's fields read in place, with the checks of :class:`_Table`."""
    inline, (fo_topic, fo_pos, fo_seq, fo_ts, fo_payload) = _open_table(view, size, pos, 5, "Data")
    topic = ""
    if fo_topic:
        if not 4 <= fo_topic <= inline - 4:
            raise DecodeError("Data.topic: field offset is outside its table")
        at = pos + fo_topic
        start = at + _unpack_u32(view, at)[0] + 4
        if start > size:
            raise DecodeError("Data.topic: offset is outside the buffer")
        end = start + _unpack_u32(view, start - 4)[0]
        if end >= size:
            raise DecodeError("Data.topic: string runs past the buffer")
        if view[end]:
            raise DecodeError("Data.topic: string is not NUL-terminated")
        try:
            topic = str(view[start:end], "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"Data.topic: invalid UTF-8 ({exc.reason})") from exc
    position = None
    if fo_pos:
        if not 4 <= fo_pos <= inline - 16:
            raise DecodeError("Data.position: field offset is outside its table")
        position = _make_position(_unpack_position(view, pos + fo_pos))
    seq = 0
    if fo_seq:
        if not 4 <= fo_seq <= inline - 8:
            raise DecodeError("Data.seq: field offset is outside its table")
        seq = _unpack_u64(view, pos + fo_seq)[0]
    timestamp_ms = 0
    if fo_ts:
        if not 4 <= fo_ts <= inline - 8:
            raise DecodeError("Data.timestamp_ms: field offset is outside its table")
        timestamp_ms = _unpack_u64(view, pos + fo_ts)[0]
    if fo_payload:
        if not 4 <= fo_payload <= inline - 4:
            raise DecodeError("Data.payload: field offset is outside its table")
        at = pos + fo_payload
        start = at + _unpack_u32(view, at)[0] + 4
        if start > size:
            raise DecodeError("Data.payload: offset is outside the buffer")
        end = start + _unpack_u32(view, start - 4)[0]
        if end > size:
            raise DecodeError("Data.payload: vector runs past the buffer")
        payload = view[start:end]
    else:
        payload = view[0:0]
    return Data(topic=topic, position=position, seq=seq, timestamp_ms=timestamp_ms, payload=payload)


def _decode_ack(view: memoryview, size: int, pos: int) -> Ack:
    """The hot path for an Ack without positions (with positions: the generic reader)."""
    inline, (fo_seq, fo_positions) = _open_table(view, size, pos, 2, "Ack")
    if fo_positions:
        return _read_ack(_Table(_Reader(view), pos, 2, "Ack"))
    if not fo_seq:
        return Ack()
    if not 4 <= fo_seq <= inline - 8:
        raise DecodeError("Ack.seq: field offset is outside its table")
    return Ack(seq=_unpack_u64(view, pos + fo_seq)[0])


def _decode(view: memoryview, *, fast: bool = True) -> Body:
    size = len(view)
    if size < 8:
        raise DecodeError(f"envelope too short ({size} bytes)")
    root, identifier = _unpack_header(view, 0)
    if identifier != FILE_IDENTIFIER:
        raise DecodeError(f"not a SigmaSockets envelope (file identifier {identifier!r})")
    inline, (fo_type, fo_body) = _open_table(view, size, root, 2, "Envelope")
    body_type = 0
    if fo_type:
        if not 4 <= fo_type < inline:
            raise DecodeError("Envelope.body_type: field offset is outside its table")
        body_type = view[root + fo_type]
    if body_type == 0:
        raise DecodeError("envelope has no body")
    if not fo_body:
        raise DecodeError(f"envelope of type {body_type} has no body")
    if not 4 <= fo_body <= inline - 4:
        raise DecodeError("Envelope.body: field offset is outside its table")
    at = root + fo_body
    body = at + _unpack_u32(view, at)[0]
    if fast:
        if body_type == _DATA:
            return _decode_data(view, size, body)
        if body_type == _ACK:
            return _decode_ack(view, size, body)
    entry = _READERS.get(body_type)
    if entry is None:
        raise UnknownMessageType(body_type)
    name, n_fields, read = entry
    return read(_Table(_Reader(view), body, n_fields, name))


_MALFORMED: Final = (
    IndexError,
    struct.error,
    ValueError,
    UnicodeDecodeError,
    TypeError,
    OverflowError,
    RecursionError,
)


def decode(buf: bytes | bytearray | memoryview) -> Body:
    """Decode one envelope into its message body (a dataclass of :mod:`sigma_core.messages`).

    ``Data.payload`` is a read-only ``memoryview`` into ``buf`` (no copy): keep ``buf`` unchanged
    while it is in use, or copy it with ``bytes()``. Other byte vectors decode to ``bytes``,
    vectors to tuples, ``metadata`` to a dict (a ``KeyValue`` without value maps to ``""``; with
    duplicate keys the last wins). An unknown ``RecoveryStatus`` decodes as ``FAILED`` (the safe
    side: the app resyncs that topic); ``Error.code`` and ``Goodbye.code`` stay plain ints, so
    unknown codes are kept.

    Raises :class:`DecodeError`, and nothing else, for any ``buf`` that is not a valid envelope:
    shorter than 8 bytes, a file identifier other than ``SGM1``, an offset, vtable, field,
    string or vector outside the buffer, a string not NUL-terminated or not UTF-8, a missing
    ``(required)`` field, an envelope without a body, an unknown ``PresenceAction``, and an
    unknown union member. The last is how a message type added by a newer peer arrives: it is
    the subclass :class:`~sigma_core.errors.UnknownMessageType` (with ``body_type``), which
    connections ignore as the schema's evolution rules require.
    Raises ``TypeError`` if ``buf`` is not bytes-like at all.
    """
    if not isinstance(buf, bytes | bytearray | memoryview):
        raise TypeError(f"decode() needs bytes, bytearray or memoryview, not {type(buf).__name__}")
    try:
        if type(buf) is bytes:
            view = memoryview(buf)
        elif not isinstance(buf, memoryview):
            view = memoryview(buf).toreadonly()
        elif not buf.c_contiguous:
            view = memoryview(buf.tobytes())
        elif buf.format != "B" or buf.ndim != 1:
            view = buf.cast("B").toreadonly()
        else:
            view = buf.toreadonly()
        return _decode(view)
    except _MALFORMED as exc:
        raise DecodeError(f"malformed envelope ({type(exc).__name__}: {exc})") from exc


# -- decoding: the server's fast path for client Data
#
# A client's Data envelope (no position; seq and payload present; topic and timestamp optional)
# as encode_data() writes it starts with one of eight 52-byte prefixes (_data_layout): root,
# identifier, both vtables, both table heads, the topic's uoffset. When a buffer starts with one
# of them, every check of the generic reader up to the body's variable fields is already passed
# (the prefix is that of a valid envelope), so only the variable parts are left to check: the
# fields' values, the topic string and the payload vector, exactly as _decode_data checks them.
# Anything else, including every buffer the generic reader would refuse, returns None, and the
# caller decodes it the generic way (tests/test_codec_fuzz.py holds them equal).

_CLIENT_PREFIX: Final = 52


def _client_layouts() -> dict[bytes, tuple[struct.Struct, bool, int]]:
    layouts: dict[bytes, tuple[struct.Struct, bool, int]] = {}
    for (has_topic, has_payload, has_seq, _ts, has_pos, _odd), layout in _DATA_LAYOUTS.items():
        if has_payload and has_seq and not has_pos:
            assert len(layout.prefix) == _CLIENT_PREFIX
            # (the values' struct, whether a topic follows them, where the topic string starts)
            layouts[layout.prefix] = (layout.values, has_topic,
                                      _CLIENT_PREFIX + layout.values.size)
    return layouts


_CLIENT_LAYOUTS: Final = _client_layouts()


def read_client_data(buf: bytes) -> tuple[int, str, bytes, int] | None:
    """``(seq, topic, payload, timestamp_ms)`` of a client's ``Data`` envelope laid out as
    :func:`encode_data` writes it, with exactly the checks :func:`decode` makes; None for any
    other buffer (decode it with :func:`decode`, which accepts or refuses it)."""
    entry = _CLIENT_LAYOUTS.get(buf[:_CLIENT_PREFIX])
    if entry is None:
        return None
    values, has_topic, at = entry
    size = len(buf)
    if at > size:
        return None
    fields = values.unpack_from(buf, _CLIENT_PREFIX)
    topic = ""
    if has_topic:
        # The topic's uoffset (in the prefix) points right behind the values: at ``at``.
        if at + 4 > size:
            return None
        end = at + 4 + _unpack_u32(buf, at)[0]
        if end >= size or buf[end]:
            return None
        try:
            topic = str(buf[at + 4 : end], "utf-8")
        except UnicodeDecodeError:
            return None
    # The payload's uoffset is the first value, stored at _CLIENT_PREFIX.
    start = _CLIENT_PREFIX + fields[0] + 4
    if start > size:
        return None
    end = start + _unpack_u32(buf, start - 4)[0]
    if end > size:
        return None
    return fields[1], topic, buf[start:end], fields[2] if len(fields) > 2 else 0


def _decode_with_reader(buf: bytes | bytearray) -> Body:
    """:func:`decode` without the ``Data``/``Ack`` fast paths: their reference (tests, bench)."""
    try:
        return _decode(memoryview(bytes(buf)), fast=False)
    except _MALFORMED as exc:
        raise DecodeError(f"malformed envelope ({type(exc).__name__}: {exc})") from exc
