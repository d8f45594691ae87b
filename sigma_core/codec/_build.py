"""Encoding with the generated FlatBuffers builder: every message type, and :func:`encode`,
which takes the fast paths of :mod:`._fast` for ``Data`` and ``Ack``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

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

from ..errors import LocalProtocolError
from ..messages import (
    Ack,
    Body,
    ClientInfo,
    Data,
    Error,
    Goodbye,
    Hello,
    Limits,
    Ping,
    Pong,
    Presence,
    PresenceAction,
    RecoveryStatus,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from . import _slots as slot
from ._checks import _byte_string, _enum_value, _metadata_items, _position, _u16, _u32, _u64, _utf8
from ._fast import encode_ack, encode_data
from ._schema import FILE_IDENTIFIER

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
    Hello: (slot.BODY_HELLO, _build_hello),  # type: ignore[dict-item]
    Welcome: (slot.BODY_WELCOME, _build_welcome),  # type: ignore[dict-item]
    Data: (slot.BODY_DATA, _build_data),  # type: ignore[dict-item]
    Ack: (slot.BODY_ACK, _build_ack),  # type: ignore[dict-item]
    Ping: (slot.BODY_PING, _build_ping),  # type: ignore[dict-item]
    Pong: (slot.BODY_PONG, _build_pong),  # type: ignore[dict-item]
    Subscribe: (slot.BODY_SUBSCRIBE, _build_subscribe),  # type: ignore[dict-item]
    Unsubscribe: (slot.BODY_UNSUBSCRIBE, _build_unsubscribe),  # type: ignore[dict-item]
    Subscribed: (slot.BODY_SUBSCRIBED, _build_subscribed),  # type: ignore[dict-item]
    Unsubscribed: (slot.BODY_UNSUBSCRIBED, _build_unsubscribed),  # type: ignore[dict-item]
    Presence: (slot.BODY_PRESENCE, _build_presence),  # type: ignore[dict-item]
    Error: (slot.BODY_ERROR, _build_error),  # type: ignore[dict-item]
    Goodbye: (slot.BODY_GOODBYE, _build_goodbye),  # type: ignore[dict-item]
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
