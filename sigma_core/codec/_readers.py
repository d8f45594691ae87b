"""Decoding, step two: one reader per message type over verified tables, the ``Data`` and
``Ack`` fast readers, :func:`decode`, and the server's fixed-layout reader for client ``Data``
(:func:`read_client_data`)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from .._framer import ReadMessage, unmask_slice
from ..errors import DecodeError, UnknownMessageType
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
    RecoveryStatus,
    Refresh,
    Refreshed,
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)
from . import _slots as slot
from ._build import encode
from ._fast import _DATA_LAYOUTS
from ._schema import FILE_IDENTIFIER
from ._verify import (
    _PRESENCE_ACTION,
    _RECOVERY_STATUS,
    _make_position,
    _open_table,
    _Reader,
    _Table,
    _unpack_header,
    _unpack_position,
    _unpack_u32,
    _unpack_u64,
)


def _read_topic_position(t: _Table) -> TopicPosition:
    return TopicPosition(
        topic=t.string(slot.TOPIC_POSITION_TOPIC, "TopicPosition.topic", required=True),
        position=t.required_position(slot.TOPIC_POSITION_POSITION, "TopicPosition.position"),
    )


def _read_topic_recovery(t: _Table) -> TopicRecovery:
    # Unknown statuses (a newer peer) read as FAILED, the safe side: the app resyncs the topic.
    status = _RECOVERY_STATUS.get(
        t.u8(slot.TOPIC_RECOVERY_STATUS, "TopicRecovery.status"), RecoveryStatus.FAILED
    )
    return TopicRecovery(
        topic=t.string(slot.TOPIC_RECOVERY_TOPIC, "TopicRecovery.topic", required=True),
        status=status,
        position=t.position(slot.TOPIC_RECOVERY_POSITION, "TopicRecovery.position"),
        lost_from=t.u64(slot.TOPIC_RECOVERY_LOST_FROM, "TopicRecovery.lost_from"),
        lost_to=t.u64(slot.TOPIC_RECOVERY_LOST_TO, "TopicRecovery.lost_to"),
        replayed=t.u64(slot.TOPIC_RECOVERY_REPLAYED, "TopicRecovery.replayed"),
    )


def _read_metadata(t: _Table, field: int, what: str) -> dict[str, str]:
    # Duplicate keys: the last one wins.
    return {
        kv.string(slot.KEY_VALUE_KEY, "KeyValue.key", required=True):
            kv.string(slot.KEY_VALUE_VALUE, "KeyValue.value")
        for kv in t.children(field, slot.KEY_VALUE_SLOT_COUNT, what)
    }


def _read_hello(t: _Table) -> Hello:
    client = t.child(slot.HELLO_CLIENT, slot.CLIENT_INFO_SLOT_COUNT, "Hello.client")
    return Hello(
        protocol_version=t.u16(
            slot.HELLO_PROTOCOL_VERSION, "Hello.protocol_version",
            default=slot.HELLO_PROTOCOL_VERSION_DEFAULT,
        ),
        session_id=t.string(slot.HELLO_SESSION_ID, "Hello.session_id"),
        resume_token=t.byte_string(slot.HELLO_RESUME_TOKEN, "Hello.resume_token"),
        positions=tuple(
            _read_topic_position(c)
            for c in t.children(
                slot.HELLO_POSITIONS, slot.TOPIC_POSITION_SLOT_COUNT, "Hello.positions"
            )
        ),
        last_acked_seq=t.u64(slot.HELLO_LAST_ACKED_SEQ, "Hello.last_acked_seq"),
        auth_token=t.string(slot.HELLO_AUTH_TOKEN, "Hello.auth_token"),
        client=None
        if client is None
        else ClientInfo(
            name=client.string(slot.CLIENT_INFO_NAME, "ClientInfo.name"),
            version=client.string(slot.CLIENT_INFO_VERSION, "ClientInfo.version"),
            platform=client.string(slot.CLIENT_INFO_PLATFORM, "ClientInfo.platform"),
            metadata=_read_metadata(client, slot.CLIENT_INFO_METADATA, "ClientInfo.metadata"),
        ),
        serializer=t.string(slot.HELLO_SERIALIZER, "Hello.serializer"),
    )


def _read_welcome(t: _Table) -> Welcome:
    limits = t.child(slot.WELCOME_LIMITS, slot.LIMITS_SLOT_COUNT, "Welcome.limits")
    return Welcome(
        session_id=t.string(slot.WELCOME_SESSION_ID, "Welcome.session_id", required=True),
        resume_token=t.byte_string(
            slot.WELCOME_RESUME_TOKEN, "Welcome.resume_token", required=True
        ),
        resumed=t.flag(slot.WELCOME_RESUMED, "Welcome.resumed"),
        recovery=tuple(
            _read_topic_recovery(c)
            for c in t.children(
                slot.WELCOME_RECOVERY, slot.TOPIC_RECOVERY_SLOT_COUNT, "Welcome.recovery"
            )
        ),
        last_received_seq=t.u64(slot.WELCOME_LAST_RECEIVED_SEQ, "Welcome.last_received_seq"),
        heartbeat_interval_ms=t.u32(
            slot.WELCOME_HEARTBEAT_INTERVAL_MS, "Welcome.heartbeat_interval_ms"
        ),
        heartbeat_timeout_ms=t.u32(
            slot.WELCOME_HEARTBEAT_TIMEOUT_MS, "Welcome.heartbeat_timeout_ms"
        ),
        limits=None
        if limits is None
        else Limits(
            max_message_size=limits.u32(slot.LIMITS_MAX_MESSAGE_SIZE, "Limits.max_message_size"),
            max_unacked=limits.u32(slot.LIMITS_MAX_UNACKED, "Limits.max_unacked"),
            max_topics=limits.u32(slot.LIMITS_MAX_TOPICS, "Limits.max_topics"),
            max_messages_per_second=limits.u32(
                slot.LIMITS_MAX_MESSAGES_PER_SECOND, "Limits.max_messages_per_second"
            ),
            max_bytes_per_second=limits.u32(
                slot.LIMITS_MAX_BYTES_PER_SECOND, "Limits.max_bytes_per_second"
            ),
        ),
        server_time_ms=t.u64(slot.WELCOME_SERVER_TIME_MS, "Welcome.server_time_ms"),
        fresh_reason=t.string(slot.WELCOME_FRESH_REASON, "Welcome.fresh_reason"),
        credentials_expire_ms=t.u64(
            slot.WELCOME_CREDENTIALS_EXPIRE_MS, "Welcome.credentials_expire_ms"
        ),
        serializer=t.string(slot.WELCOME_SERIALIZER, "Welcome.serializer"),
    )


def _read_data(t: _Table) -> Data:
    # The reference for _decode_data (the hot path), which must agree with it on every buffer.
    # The payload is a view, not a copy: it is bounds-checked but not charged to the budget.
    reader = t.reader
    payload = reader.view[0:0]
    payload_at = t.field(slot.DATA_PAYLOAD, 4, "Data.payload")
    if payload_at:
        start = reader.follow(payload_at, "Data.payload") + 4
        end = start + _unpack_u32(reader.view, start - 4)[0]
        if end > reader.size:
            raise DecodeError("Data.payload: vector runs past the buffer")
        payload = reader.view[start:end]
    return Data(
        topic=t.string(slot.DATA_TOPIC, "Data.topic"),
        position=t.position(slot.DATA_POSITION, "Data.position"),
        seq=t.u64(slot.DATA_SEQ, "Data.seq"),
        timestamp_ms=t.u64(slot.DATA_TIMESTAMP_MS, "Data.timestamp_ms"),
        payload=payload,
    )


def _read_ack(t: _Table) -> Ack:
    return Ack(
        seq=t.u64(slot.ACK_SEQ, "Ack.seq"),
        positions=tuple(
            _read_topic_position(c)
            for c in t.children(slot.ACK_POSITIONS, slot.TOPIC_POSITION_SLOT_COUNT, "Ack.positions")
        ),
    )


def _read_ping(t: _Table) -> Ping:
    return Ping(
        id=t.u32(slot.PING_ID, "Ping.id"),
        timestamp_ms=t.u64(slot.PING_TIMESTAMP_MS, "Ping.timestamp_ms"),
    )


def _read_pong(t: _Table) -> Pong:
    return Pong(
        id=t.u32(slot.PONG_ID, "Pong.id"),
        echo_timestamp_ms=t.u64(slot.PONG_ECHO_TIMESTAMP_MS, "Pong.echo_timestamp_ms"),
        timestamp_ms=t.u64(slot.PONG_TIMESTAMP_MS, "Pong.timestamp_ms"),
    )


def _read_subscribe(t: _Table) -> Subscribe:
    return Subscribe(
        request_id=t.u32(slot.SUBSCRIBE_REQUEST_ID, "Subscribe.request_id"),
        topic=t.string(slot.SUBSCRIBE_TOPIC, "Subscribe.topic", required=True),
        position=t.position(slot.SUBSCRIBE_POSITION, "Subscribe.position"),
    )


def _read_unsubscribe(t: _Table) -> Unsubscribe:
    return Unsubscribe(
        request_id=t.u32(slot.UNSUBSCRIBE_REQUEST_ID, "Unsubscribe.request_id"),
        topic=t.string(slot.UNSUBSCRIBE_TOPIC, "Unsubscribe.topic", required=True),
    )


def _read_subscribed(t: _Table) -> Subscribed:
    return Subscribed(
        request_id=t.u32(slot.SUBSCRIBED_REQUEST_ID, "Subscribed.request_id"),
        recovery=_read_topic_recovery(
            t.required_child(
                slot.SUBSCRIBED_RECOVERY, slot.TOPIC_RECOVERY_SLOT_COUNT, "Subscribed.recovery"
            )
        ),
    )


def _read_unsubscribed(t: _Table) -> Unsubscribed:
    return Unsubscribed(
        request_id=t.u32(slot.UNSUBSCRIBED_REQUEST_ID, "Unsubscribed.request_id"),
        topic=t.string(slot.UNSUBSCRIBED_TOPIC, "Unsubscribed.topic", required=True),
    )


def _read_presence(t: _Table) -> Presence:
    # Every field is verified first: a malformed buffer is a DecodeError (close 4000) even
    # when its action is also unknown (the TypeScript reader agrees; test_codec_crosscheck).
    topic = t.string(slot.PRESENCE_TOPIC, "Presence.topic", required=True)
    raw_action = t.u8(slot.PRESENCE_ACTION, "Presence.action")
    session_id = t.string(slot.PRESENCE_SESSION_ID, "Presence.session_id", required=True)
    metadata = _read_metadata(t, slot.PRESENCE_METADATA, "Presence.metadata")
    action = _PRESENCE_ACTION.get(raw_action)
    if action is None:
        # No safe fallback: treating an unknown action as JOIN or LEAVE would corrupt the set.
        # The message is from a newer version: the receiver ignores it.
        raise UnknownMessageType(slot.BODY_PRESENCE,
                                 f"Presence with unknown action {raw_action}")
    return Presence(topic=topic, action=action, session_id=session_id, metadata=metadata)


def _read_error(t: _Table) -> Error:
    return Error(
        code=t.u16(slot.ERROR_CODE, "Error.code"),
        message=t.string(slot.ERROR_MESSAGE, "Error.message"),
        details=t.string(slot.ERROR_DETAILS, "Error.details"),
        retryable=t.flag(slot.ERROR_RETRYABLE, "Error.retryable"),
        request_id=t.u32(slot.ERROR_REQUEST_ID, "Error.request_id"),
    )


def _read_goodbye(t: _Table) -> Goodbye:
    return Goodbye(
        code=t.u16(slot.GOODBYE_CODE, "Goodbye.code"),
        reason=t.string(slot.GOODBYE_REASON, "Goodbye.reason"),
        reconnect_after_ms=t.u32(slot.GOODBYE_RECONNECT_AFTER_MS, "Goodbye.reconnect_after_ms"),
    )


def _read_refresh(t: _Table) -> Refresh:
    return Refresh(token=t.string(slot.REFRESH_TOKEN, "Refresh.token"))


def _read_refreshed(t: _Table) -> Refreshed:
    return Refreshed(credentials_expire_ms=t.u64(
        slot.REFRESHED_CREDENTIALS_EXPIRE_MS, "Refreshed.credentials_expire_ms"
    ))


_READERS: Final[dict[int, tuple[str, int, Callable[[_Table], Body]]]] = {
    slot.BODY_HELLO: ("Hello", slot.HELLO_SLOT_COUNT, _read_hello),
    slot.BODY_WELCOME: ("Welcome", slot.WELCOME_SLOT_COUNT, _read_welcome),
    slot.BODY_DATA: ("Data", slot.DATA_SLOT_COUNT, _read_data),
    slot.BODY_ACK: ("Ack", slot.ACK_SLOT_COUNT, _read_ack),
    slot.BODY_PING: ("Ping", slot.PING_SLOT_COUNT, _read_ping),
    slot.BODY_PONG: ("Pong", slot.PONG_SLOT_COUNT, _read_pong),
    slot.BODY_SUBSCRIBE: ("Subscribe", slot.SUBSCRIBE_SLOT_COUNT, _read_subscribe),
    slot.BODY_UNSUBSCRIBE: ("Unsubscribe", slot.UNSUBSCRIBE_SLOT_COUNT, _read_unsubscribe),
    slot.BODY_SUBSCRIBED: ("Subscribed", slot.SUBSCRIBED_SLOT_COUNT, _read_subscribed),
    slot.BODY_UNSUBSCRIBED: ("Unsubscribed", slot.UNSUBSCRIBED_SLOT_COUNT, _read_unsubscribed),
    slot.BODY_PRESENCE: ("Presence", slot.PRESENCE_SLOT_COUNT, _read_presence),
    slot.BODY_ERROR: ("Error", slot.ERROR_SLOT_COUNT, _read_error),
    slot.BODY_GOODBYE: ("Goodbye", slot.GOODBYE_SLOT_COUNT, _read_goodbye),
    slot.BODY_REFRESH: ("Refresh", slot.REFRESH_SLOT_COUNT, _read_refresh),
    slot.BODY_REFRESHED: ("Refreshed", slot.REFRESHED_SLOT_COUNT, _read_refreshed),
}


def _decode_data(view: memoryview, size: int, pos: int) -> Data:
    """The hot path: Data's fields read in place, with the checks of :class:`_Table`."""
    inline, fields = _open_table(view, size, pos, slot.DATA_SLOT_COUNT, "Data")
    fo_topic = fields[slot.DATA_TOPIC]
    fo_pos = fields[slot.DATA_POSITION]
    fo_seq = fields[slot.DATA_SEQ]
    fo_ts = fields[slot.DATA_TIMESTAMP_MS]
    fo_payload = fields[slot.DATA_PAYLOAD]
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
    inline, fields = _open_table(view, size, pos, slot.ACK_SLOT_COUNT, "Ack")
    fo_seq = fields[slot.ACK_SEQ]
    if fields[slot.ACK_POSITIONS]:
        return _read_ack(_Table(_Reader(view), pos, slot.ACK_SLOT_COUNT, "Ack"))
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
    inline, fields = _open_table(view, size, root, slot.ENVELOPE_SLOT_COUNT, "Envelope")
    fo_type = fields[slot.ENVELOPE_BODY_TYPE]
    fo_body = fields[slot.ENVELOPE_BODY]
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
        if body_type == slot.BODY_DATA:
            return _decode_data(view, size, body)
        if body_type == slot.BODY_ACK:
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


def _key_bytes(prefixes: list[bytes]) -> tuple[int, int]:
    """Two byte positions whose values tell the prefixes apart (the first such pair)."""
    for first in range(_CLIENT_PREFIX):
        for second in range(first + 1, _CLIENT_PREFIX):
            if len({(p[first], p[second]) for p in prefixes}) == len(prefixes):
                return first, second
    raise AssertionError("the client Data prefixes differ in no two bytes")  # pragma: no cover


_CLIENT_LAYOUTS: Final = _client_layouts()
# The layout of a buffer is looked up by two of its bytes (no slice of the prefix made and
# hashed per message) and then confirmed by comparing the whole prefix.
_KEY_A, _KEY_B = _key_bytes(list(_CLIENT_LAYOUTS))
_KEY_FIRST: Final = _KEY_A
_KEY_SECOND: Final = _KEY_B
_CLIENT_BY_KEY: Final[dict[int, tuple[bytes, struct.Struct, bool, int]]] = {
    prefix[_KEY_A] << 8 | prefix[_KEY_B]: (prefix, values, has_topic, at)
    for prefix, (values, has_topic, at) in _CLIENT_LAYOUTS.items()
}


def read_client_data(buf: bytes) -> tuple[int, str, bytes, int] | None:
    """``(seq, topic, payload, timestamp_ms)`` of a client's ``Data`` envelope laid out as
    :func:`encode_data` writes it, with exactly the checks :func:`decode` makes; None for any
    other buffer (decode it with :func:`decode`, which accepts or refuses it)."""
    size = len(buf)
    if size < _CLIENT_PREFIX:
        return None
    entry = _CLIENT_BY_KEY.get(buf[_KEY_FIRST] << 8 | buf[_KEY_SECOND])
    if entry is None:
        return None
    prefix, values, has_topic, at = entry
    if at > size or not buf.startswith(prefix):
        return None
    fields = values.unpack_from(buf, _CLIENT_PREFIX)
    # Typed, so that the offsets below are native integer arithmetic (compiled) rather than
    # operations on objects.
    payload_rel: int = fields[0]
    topic = ""
    if has_topic:
        # The topic's uoffset (in the prefix) points right behind the values: at ``at``.
        if at + 4 > size:
            return None
        end = at + 4 + (buf[at] | buf[at + 1] << 8 | buf[at + 2] << 16 | buf[at + 3] << 24)
        if end >= size or buf[end]:
            return None
        try:
            topic = str(buf[at + 4 : end], "utf-8")
        except UnicodeDecodeError:
            return None
    # The payload's uoffset is the first value, stored at _CLIENT_PREFIX.
    start = _CLIENT_PREFIX + payload_rel + 4
    if start > size:
        return None
    end = start + (buf[start - 4] | buf[start - 3] << 8 | buf[start - 2] << 16
                   | buf[start - 1] << 24)
    if end > size:
        return None
    return fields[1], topic, buf[start:end], fields[2] if len(fields) > 2 else 0


# -- decoding: the server's fast path for a client's $inbox Ack
#
# The reference clients (Python and TypeScript) acknowledge their $inbox messages with an Ack of
# one TopicPosition ("$inbox" and its StreamPosition) and no seq, every 128 messages or so. Both
# write it in one fixed 104-byte layout (tests/test_codec_crosscheck.py holds the TypeScript
# encoder to Python's bytes): all of it constant but the position's two u64 fields, which any
# value passes. A buffer equal to that layout outside those 16 bytes is therefore exactly what
# decode() reads as Ack(positions=(TopicPosition("$inbox", position),)), and read_inbox_ack
# reads only the position; anything else (another topic, a seq, more positions, a layout of
# another builder, anything malformed) is None and goes to decode().

_INBOX: Final = "$inbox"


def _inbox_ack_layout() -> tuple[bytes, int]:
    """The reference clients' $inbox Ack with a zero position, and where the position starts:
    found by encoding it with the generic builder twice, the position all zeros and all ones."""
    def ack(value: int) -> bytes:
        position = StreamPosition(epoch=value, offset=value)
        return encode(Ack(positions=(TopicPosition(topic=_INBOX, position=position),)))

    low, high = ack(0), ack(2**64 - 1)
    differ = [i for i in range(len(low)) if low[i] != high[i]]
    assert len(low) == len(high)
    assert differ == list(range(differ[0], differ[0] + 16))
    return low, differ[0]


_INBOX_ACK, _INBOX_AT = _inbox_ack_layout()
_INBOX_ACK_SIZE: Final = len(_INBOX_ACK)
_INBOX_ACK_HEAD: Final = _INBOX_ACK[:_INBOX_AT]
_INBOX_ACK_TAIL: Final = _INBOX_ACK[_INBOX_AT + 16 :]
_INBOX_POSITION_AT: Final = _INBOX_AT


def read_inbox_ack(buf: bytes) -> StreamPosition | None:
    """The ``$inbox`` position of a client's ``Ack`` laid out as the reference clients write it
    (one ``TopicPosition`` for ``"$inbox"``, no ``seq``), with exactly the checks :func:`decode`
    makes; None for any other buffer (decode it with :func:`decode`, which accepts or refuses
    it). What ``decode(buf)`` gives is then ``Ack(positions=(TopicPosition("$inbox",
    position),))``; no ``Ack`` is built here."""
    if len(buf) != _INBOX_ACK_SIZE or not buf.startswith(_INBOX_ACK_HEAD) \
            or not buf.endswith(_INBOX_ACK_TAIL):
        return None
    return _make_position(_unpack_position(buf, _INBOX_POSITION_AT))


def read_client_frame_py(data: bytes, start: int, stop: int) -> ReadMessage | bytes:
    """A client's ``Data`` read out of a masked frame: its payload is ``data[start:stop]``, its
    masking key the 4 bytes before (RFC 6455 §5.2). What :func:`read_client_data` reads from
    the unmasked payload, or, when that is None, the unmasked payload itself. IndexError unless
    ``4 <= start <= stop <= len(data)``. The pure-Python twin of the C helper
    ``_speedups.read_client_frame`` (one copy of the payload where this makes two;
    tests/test_codec_fuzz.py holds the two equal)."""
    if start < 4 or stop < start or stop > len(data):
        raise IndexError("read_client_frame(): start/stop out of range")
    mask = data[start - 4] | data[start - 3] << 8 | data[start - 2] << 16 | data[start - 1] << 24
    payload = unmask_slice(data, start, stop, mask)
    fields = read_client_data(payload)
    return payload if fields is None else fields


def read_client_frames_py(data: bytes, pos: int, limit: int, items: list[object]) -> int:
    """The run of frames at ``data[pos:]`` that the frame parser would hand one by one to
    :func:`read_client_frame` and get a client ``Data``'s fields back from, read in one call:
    each a whole, unfragmented, masked binary frame (first byte 0x82, the mask bit set, its
    length in the fewest bytes, at most ``limit``, all of it in ``data``) whose payload
    :func:`read_client_data` reads. Their fields, in order, are appended to ``items`` as one
    list (nothing when there are none); returns where the first frame not read starts (anything
    else is left to the parser's general path). IndexError unless ``0 <= pos <= len(data)``,
    TypeError unless ``items`` is a list. The pure-Python twin of the C helper
    ``_speedups.read_client_frames`` (tests/test_receive_path.py holds the two equal)."""
    end = len(data)
    if pos < 0 or pos > end:
        raise IndexError("read_client_frames(): pos out of range")
    if not isinstance(items, list):
        raise TypeError("read_client_frames(): items must be a list")
    batch: list[ReadMessage] | None = None
    while end - pos >= 2 and data[pos] == 0x82 and data[pos + 1] & 0x80:
        length = data[pos + 1] & 0x7F
        if length < 126:
            start = pos + 2
        elif length == 126:
            if end - pos < 4:
                break
            length = data[pos + 2] << 8 | data[pos + 3]
            if length < 126:
                break  # not minimal: the parser fails it (1002)
            start = pos + 4
        else:
            if end - pos < 10:
                break
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            if length < 65536 or length > limit:
                break  # not minimal, or over the limit: the parser fails it
            start = pos + 10
        if length > limit or end - start < 4 or length > end - start - 4:
            break  # over the limit (1009), or not all here yet
        start += 4
        fields = read_client_frame_py(data, start, start + length)
        if type(fields) is not tuple:
            break  # another message: the parser's reader hands it on as bytes
        if batch is None:
            batch = [fields]
        else:
            batch.append(fields)
        pos = start + length
    if batch is not None:
        items.append(batch)
    return pos


#: What the frame parser reads a whole binary message with once a server connection is open
#: (see connection.py), and a run of client ``Data`` frames: the C helpers when the compiled
#: build is there, else the twins above.
read_client_frame: Callable[[bytes, int, int], ReadMessage | bytes]
read_client_frames: Callable[[bytes, int, int, list[object]], int]
try:
    from .._speedups import read_client_frame as _read_client_frame_c
    from .._speedups import read_client_frames as _read_client_frames_c
    from .._speedups import set_client_layouts as _set_client_layouts
except ImportError:  # the pure-Python fallback
    read_client_frame = read_client_frame_py
    read_client_frames = read_client_frames_py
else:
    _set_client_layouts(tuple(
        (layout.prefix, has_topic, has_ts, _CLIENT_PREFIX + layout.values.size)
        for (has_topic, has_payload, has_seq, has_ts, has_pos, _odd), layout
        in _DATA_LAYOUTS.items()
        if has_payload and has_seq and not has_pos
    ))
    read_client_frame = _read_client_frame_c
    read_client_frames = _read_client_frames_c


def _decode_with_reader(buf: bytes | bytearray) -> Body:
    """:func:`decode` without the ``Data``/``Ack`` fast paths: their reference (tests, bench)."""
    try:
        return _decode(memoryview(bytes(buf)), fast=False)
    except _MALFORMED as exc:
        raise DecodeError(f"malformed envelope ({type(exc).__name__}: {exc})") from exc
