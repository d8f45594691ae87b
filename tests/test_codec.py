"""The codec: round trips, the fast paths against the builder, and named malformed envelopes.

Malformed envelopes are crafted with the FlatBuffers runtime's ``Builder`` and raw slot numbers
(from ``schemas/sigma.fbs``), not the generated code: only the codec may import that.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from array import array
from collections.abc import Callable
from typing import Any

import flatbuffers
import pytest
from build_support import pure_only
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigma_core import codec
from sigma_core._framer import server_binary_frame
from sigma_core.codec import _fast
from sigma_core.errors import DecodeError, LocalProtocolError, UnknownMessageType
from sigma_core.messages import (
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

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Union member numbers (schemas/sigma.fbs, union Body).
HELLO, WELCOME, DATA, ACK, PING = 1, 2, 3, 4, 5
UNSUBSCRIBE, SUBSCRIBED, PRESENCE = 8, 9, 11

# -- strategies: every field over its full schema range

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
# Zero is the default the builder leaves out: draw it often.
u64_or_zero = st.one_of(st.just(0), u64)
text = st.text(max_size=12)
stream_positions = st.builds(StreamPosition, epoch=u64, offset=u64)
topic_positions = st.builds(TopicPosition, topic=text, position=stream_positions)
topic_recoveries = st.builds(
    TopicRecovery,
    topic=text,
    status=st.sampled_from(RecoveryStatus),
    position=st.none() | stream_positions,
    lost_from=u64_or_zero,
    lost_to=u64_or_zero,
    replayed=u64_or_zero,
)
metadata = st.dictionaries(text, text, max_size=4)
client_infos = st.builds(ClientInfo, name=text, version=text, platform=text, metadata=metadata)
limits = st.builds(
    Limits,
    max_message_size=u32,
    max_unacked=u32,
    max_topics=u32,
    max_messages_per_second=u32,
    max_bytes_per_second=u32,
)


def tuples(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(elements, max_size=4).map(tuple)


BODIES: dict[type[Body], st.SearchStrategy[Any]] = {
    Hello: st.builds(
        Hello,
        protocol_version=u16,
        session_id=text,
        resume_token=st.binary(max_size=40),
        positions=tuples(topic_positions),
        last_acked_seq=u64_or_zero,
        auth_token=text,
        client=st.none() | client_infos,
        serializer=text,
    ),
    Welcome: st.builds(
        Welcome,
        session_id=text,
        resume_token=st.binary(max_size=40),
        resumed=st.booleans(),
        recovery=tuples(topic_recoveries),
        last_received_seq=u64_or_zero,
        heartbeat_interval_ms=u32,
        heartbeat_timeout_ms=u32,
        limits=st.none() | limits,
        server_time_ms=u64_or_zero,
        fresh_reason=text,
        credentials_expire_ms=u64_or_zero,
        serializer=text,
    ),
    Data: st.builds(
        Data,
        topic=text,
        position=st.none() | stream_positions,
        seq=u64_or_zero,
        timestamp_ms=u64_or_zero,
        payload=st.binary(max_size=300),
    ),
    Ack: st.builds(Ack, seq=u64_or_zero, positions=tuples(topic_positions)),
    Ping: st.builds(Ping, id=u32, timestamp_ms=u64_or_zero),
    Pong: st.builds(Pong, id=u32, echo_timestamp_ms=u64_or_zero, timestamp_ms=u64_or_zero),
    Subscribe: st.builds(
        Subscribe, topic=text, request_id=u32, position=st.none() | stream_positions
    ),
    Unsubscribe: st.builds(Unsubscribe, topic=text, request_id=u32),
    Subscribed: st.builds(Subscribed, recovery=topic_recoveries, request_id=u32),
    Unsubscribed: st.builds(Unsubscribed, topic=text, request_id=u32),
    Presence: st.builds(
        Presence,
        topic=text,
        session_id=text,
        action=st.sampled_from(PresenceAction),
        metadata=metadata,
    ),
    Error: st.builds(
        Error, code=u16, message=text, details=text, retryable=st.booleans(), request_id=u32
    ),
    Goodbye: st.builds(Goodbye, code=u16, reason=text, reconnect_after_ms=u32),
    Refresh: st.builds(Refresh, token=text),
    Refreshed: st.builds(Refreshed, credentials_expire_ms=u64_or_zero),
}


def normalised(body: Body) -> Body:
    """A decoded Data's payload is a memoryview; compare it as bytes."""
    if isinstance(body, Data):
        return dataclasses.replace(body, payload=bytes(body.payload))
    return body


# -- round trips


@pytest.mark.parametrize("kind", list(BODIES), ids=lambda kind: kind.__name__)
@FAST
@given(data=st.data())
def test_round_trip(kind: type[Body], data: st.DataObject) -> None:
    body = data.draw(BODIES[kind])
    wire = codec.encode(body)
    assert wire[4:8] == b"SGM1"
    decoded = codec.decode(wire)
    assert type(decoded) is kind
    assert normalised(decoded) == body
    # The builder (reference) encoding of the same body decodes to the same value.
    assert normalised(codec.decode(codec._encode_with_builder(body))) == body


def test_defaults_round_trip() -> None:
    # Every field at its default: the builder leaves all of them out.
    for body in (
        Hello(),
        Welcome(session_id="", resume_token=b""),
        Data(),
        Ack(),
        Ping(),
        Pong(),
        Subscribe(topic=""),
        Unsubscribe(topic=""),
        Subscribed(recovery=TopicRecovery(topic="")),
        Unsubscribed(topic=""),
        Presence(topic="", session_id=""),
        Error(),
        Goodbye(),
    ):
        assert normalised(codec.decode(codec.encode(body))) == body


def test_hello_protocol_version_default_is_one() -> None:
    # protocol_version's schema default is 1: the builder leaves 1 out and reads absence as 1.
    assert codec.decode(codec.encode(Hello(protocol_version=1))) == Hello(protocol_version=1)
    assert codec.decode(codec.encode(Hello(protocol_version=0))) == Hello(protocol_version=0)
    assert len(codec.encode(Hello(protocol_version=1))) < len(
        codec.encode(Hello(protocol_version=2))
    )


def test_data_payload_is_a_read_only_view_of_the_input() -> None:
    wire = codec.encode(Data(topic="t", position=StreamPosition(1, 2), payload=b"x" * 1024))
    body = codec.decode(wire)
    assert isinstance(body, Data)
    payload = body.payload
    assert isinstance(payload, memoryview)
    assert payload.readonly
    assert payload.obj is wire  # zero copy
    assert payload == b"x" * 1024


@pytest.mark.parametrize(
    "convert",
    [
        bytes,
        bytearray,
        memoryview,
        lambda wire: memoryview(bytearray(wire)),
        lambda wire: memoryview(b"\xaa" + wire + b"\xbb")[1:-1],
        lambda wire: memoryview(bytes(x for b in wire for x in (b, 0)))[::2],  # not contiguous
        lambda wire: memoryview(array("I", wire[: len(wire) // 4 * 4])),  # items of 4 bytes
    ],
    ids=["bytes", "bytearray", "memoryview", "writable", "slice", "strided", "uint32"],
)
def test_decode_accepts_any_bytes_like(convert: Callable[[bytes], Any]) -> None:
    body = Data(topic="topic", seq=7, payload=b"abcdefgh")  # length a multiple of 4
    wire = codec.encode(body)
    assert len(wire) % 4 == 0
    decoded = codec.decode(convert(wire))
    assert normalised(decoded) == body
    assert isinstance(decoded, Data)
    assert isinstance(decoded.payload, memoryview)
    assert decoded.payload.readonly


def test_decode_of_a_released_view_is_a_decode_error() -> None:
    view = memoryview(codec.encode(Ping()))
    view.release()
    with pytest.raises(DecodeError, match="malformed"):
        codec.decode(view)


def test_decode_refuses_what_is_not_bytes() -> None:
    with pytest.raises(TypeError):
        codec.decode("SGM1" * 4)  # type: ignore[arg-type]


# -- the fast paths produce the builder's bytes exactly


@THOROUGH
@given(
    topic=st.text(max_size=20),
    position=st.none() | stream_positions | st.just(StreamPosition(0, 0)),
    seq=u64_or_zero,
    timestamp_ms=u64_or_zero,
    payload=st.binary(max_size=80),
)
def test_encode_data_is_the_builder_encoding(
    topic: str, position: StreamPosition | None, seq: int, timestamp_ms: int, payload: bytes
) -> None:
    reference = codec._encode_with_builder(
        Data(topic=topic, position=position, seq=seq, timestamp_ms=timestamp_ms, payload=payload)
    )
    fast = codec.encode_data(
        topic=topic,
        epoch=None if position is None else position.epoch,
        offset=None if position is None else position.offset,
        seq=seq,
        timestamp_ms=timestamp_ms,
        payload=payload,
    )
    assert fast == reference
    assert (
        codec.encode(
            Data(
                topic=topic, position=position, seq=seq, timestamp_ms=timestamp_ms, payload=payload
            )
        )
        == reference
    )


@pytest.mark.parametrize("topic_length", range(9))
@pytest.mark.parametrize("payload_length", range(9))
def test_encode_data_every_padding(topic_length: int, payload_length: int) -> None:
    # Every combination of string and vector padding, with and without 8-byte fields.
    for position, seq, timestamp_ms in [(None, 0, 0), ((1, 2), 0, 0), (None, 3, 0), (None, 0, 4)]:
        body = Data(
            topic="t" * topic_length,
            position=None if position is None else StreamPosition(*position),
            seq=seq,
            timestamp_ms=timestamp_ms,
            payload=b"p" * payload_length,
        )
        assert codec.encode(body) == codec._encode_with_builder(body)


@THOROUGH
@given(
    topic=st.text(max_size=20),
    position=stream_positions | st.just(StreamPosition(0, 0)),
    timestamp_ms=u64_or_zero,
    payload=st.binary(max_size=300) | st.binary(min_size=65530, max_size=65540),
    as_bytearray=st.booleans(),
)
def test_encode_data_frame_is_the_framed_envelope(
    topic: str, position: StreamPosition, timestamp_ms: int, payload: bytes, as_bytearray: bool
) -> None:
    # The server's frame of a Data: built in one buffer (with its own fast layout for the common
    # case), it is exactly server_binary_frame(encode_data(...)).
    envelope = codec.encode_data(topic=topic, epoch=position.epoch, offset=position.offset,
                                 timestamp_ms=timestamp_ms, payload=payload)
    frame, header = codec.encode_data_frame(
        topic=topic, epoch=position.epoch, offset=position.offset, timestamp_ms=timestamp_ms,
        payload=bytearray(payload) if as_bytearray else payload)
    assert frame == server_binary_frame(envelope)
    assert frame[header:] == envelope


@FAST
@given(seq=u64_or_zero)
def test_encode_ack_is_the_builder_encoding(seq: int) -> None:
    assert codec.encode_ack(seq) == codec._encode_with_builder(Ack(seq=seq))
    assert codec.decode(codec.encode_ack(seq)) == Ack(seq=seq)


@pytest.mark.parametrize(
    "payload",
    [
        bytearray(b"abcdefgh"),
        memoryview(b"abcdefgh"),
        memoryview(array("I", b"abcdefgh")),  # len() is 2, nbytes is 8
        memoryview(b"a_b_c_d_e_f_g_h_")[::2],  # not contiguous
    ],
    ids=["bytearray", "memoryview", "uint32", "strided"],
)
def test_encode_data_accepts_any_bytes_like(payload: bytes | bytearray | memoryview) -> None:
    expected = codec.encode_data(topic="t", payload=b"abcdefgh")
    assert codec.encode_data(topic="t", payload=payload) == expected
    assert codec.encode(Data(topic="t", payload=payload)) == expected


def test_encode_accepts_plain_tuples_and_int_enums_for_positions() -> None:
    wire = codec.encode(Data(position=(True, 5)))  # type: ignore[arg-type]
    assert codec.decode(wire) == Data(position=StreamPosition(1, 5))


# -- encoding refuses what the schema cannot carry

TOO_BIG_U64 = 2**64
TOO_BIG_U32 = 2**32


# Compiled (mypyc), the codec refuses these wrongly typed fields with TypeError, not
# LocalProtocolError naming the field (tests/build_support.py).
TYPED = pure_only("compiled code raises TypeError for a wrongly typed field")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (Data(seq=-1), "Data.seq"),
        (Data(seq=TOO_BIG_U64), "Data.seq"),
        (Data(timestamp_ms=TOO_BIG_U64), "Data.timestamp_ms"),
        (Data(position=StreamPosition(TOO_BIG_U64, 0)), "Data.position.epoch"),
        (Data(position=StreamPosition(0, -1)), "Data.position.offset"),
        pytest.param(Data(seq=1.0), "Data.seq", marks=TYPED),  # type: ignore[arg-type]
        pytest.param(Data(seq="1"), "Data.seq", marks=TYPED),  # type: ignore[arg-type]
        (Data(topic="\ud800"), "Data.topic"),
        pytest.param(Data(topic=b"t"), "Data.topic", marks=TYPED),  # type: ignore[arg-type]
        (Data(payload="text"), "Data.payload"),  # type: ignore[arg-type]
        (Data(position=(1, 2, 3)), "Data.position"),  # type: ignore[arg-type]
        (Ack(seq=-1), "Ack.seq"),
        (
            Ack(positions=(TopicPosition(topic="t", position=StreamPosition(-1, 0)),)),
            "Ack.positions.position.epoch",
        ),
        (Ping(id=TOO_BIG_U32), "Ping.id"),
        (Ping(timestamp_ms=-5), "Ping.timestamp_ms"),
        (Pong(echo_timestamp_ms=TOO_BIG_U64), "Pong.echo_timestamp_ms"),
        (Hello(protocol_version=65536), "Hello.protocol_version"),
        (Hello(protocol_version=-1), "Hello.protocol_version"),
        (Hello(last_acked_seq=-1), "Hello.last_acked_seq"),
        (Hello(auth_token="\udfff"), "Hello.auth_token"),
        (Hello(client=ClientInfo(metadata={"k": "\ud800"})), "ClientInfo.metadata"),
        (Hello(client=ClientInfo(metadata={"\ud800": "v"})), "ClientInfo.metadata key"),
        (
            Welcome(session_id="s", resume_token=b"", heartbeat_interval_ms=TOO_BIG_U32),
            "Welcome.heartbeat_interval_ms",
        ),
        (
            Welcome(session_id="s", resume_token=b"", limits=Limits(max_topics=-1)),
            "Limits.max_topics",
        ),
        (Welcome(session_id="\ud800", resume_token=b""), "Welcome.session_id"),
        (
            Welcome(
                session_id="s",
                resume_token=b"",
                recovery=(TopicRecovery(topic="t", replayed=TOO_BIG_U64),),
            ),
            "Welcome.recovery.replayed",
        ),
        (Subscribe(topic="t", request_id=-1), "Subscribe.request_id"),
        (
            Subscribe(topic="t", position=StreamPosition(0, TOO_BIG_U64)),
            "Subscribe.position.offset",
        ),
        (Unsubscribe(topic="t", request_id=TOO_BIG_U32), "Unsubscribe.request_id"),
        (
            Subscribed(recovery=TopicRecovery(topic="t", status=7)),  # type: ignore[arg-type]
            "Subscribed.recovery.status",
        ),
        (Subscribed(recovery=TopicRecovery(topic="t", lost_to=-1)), "Subscribed.recovery.lost_to"),
        (Unsubscribed(topic="t", request_id=TOO_BIG_U32), "Unsubscribed.request_id"),
        (Presence(topic="t", session_id="s", action=2), "Presence.action"),  # type: ignore[arg-type]
        (Presence(topic="t", session_id="\udc00"), "Presence.session_id"),
        (Error(code=65536), "Error.code"),
        (Error(request_id=-1), "Error.request_id"),
        (Goodbye(code=-1), "Goodbye.code"),
        (Goodbye(reconnect_after_ms=TOO_BIG_U32), "Goodbye.reconnect_after_ms"),
    ],
)
def test_encode_refuses_values_out_of_range(body: Body, field: str) -> None:
    with pytest.raises(LocalProtocolError, match=field.replace(".", r"\.")):
        codec.encode(body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(Hello(positions="t"), "Hello.positions", marks=TYPED),  # type: ignore[arg-type]
        (Hello(positions=(StreamPosition(1, 2),)), "Hello.positions"),  # type: ignore[arg-type]
        (Hello(client="me"), "Hello.client"),  # type: ignore[arg-type]
        (Hello(client=ClientInfo(metadata=[("k", "v")])), "ClientInfo.metadata"),  # type: ignore[arg-type]
        pytest.param(
            Welcome(session_id="s", resume_token="rt"),  # type: ignore[arg-type]
            "Welcome.resume_token",
            marks=TYPED,
        ),
        pytest.param(
            Welcome(session_id="s", resume_token=b"", recovery="r"),  # type: ignore[arg-type]
            "Welcome.recovery",
            marks=TYPED,
        ),
        (Welcome(session_id="s", resume_token=b"", recovery=("r",)), "Welcome.recovery"),  # type: ignore[arg-type]
        (Welcome(session_id="s", resume_token=b"", limits=5), "Welcome.limits"),  # type: ignore[arg-type]
        (Presence(topic="t", session_id="s", action="JOIN"), "Presence.action"),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_values_of_the_wrong_type(body: Body, field: str) -> None:
    with pytest.raises(LocalProtocolError, match=field.replace(".", r"\.")):
        codec.encode(body)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seq": -1}, "Data.seq"),
        ({"timestamp_ms": TOO_BIG_U64}, "Data.timestamp_ms"),
        ({"epoch": TOO_BIG_U64, "offset": 0}, "Data.position.epoch"),
        ({"epoch": 0, "offset": -1}, "Data.position.offset"),
        ({"epoch": 1}, "Data.position"),
        ({"offset": 1}, "Data.position"),
        ({"topic": "\ud83d"}, "Data.topic"),
        pytest.param({"topic": 5}, "Data.topic", marks=TYPED),
        ({"payload": 5}, "Data.payload"),
    ],
)
def test_encode_data_refuses_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(LocalProtocolError, match=field.replace(".", r"\.")):
        codec.encode_data(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timestamp_ms": TOO_BIG_U64}, "Data.timestamp_ms"),
        ({"epoch": TOO_BIG_U64}, "Data.position.epoch"),
        ({"offset": -1}, "Data.position.offset"),
        ({"topic": "\ud83d"}, "Data.topic"),
        pytest.param({"topic": 5}, "Data.topic", marks=TYPED),
        ({"payload": 5}, "Data.payload"),
        # Not ints: data_frame (C or twin) refuses them with TypeError, the general way names
        # the field (the frame's layout is chosen by timestamp_ms != 0, so a falsy non-int
        # must not be taken for "no timestamp").
        pytest.param({"timestamp_ms": None}, "Data.timestamp_ms", marks=TYPED),
        pytest.param({"timestamp_ms": 0.0}, "Data.timestamp_ms", marks=TYPED),
        pytest.param({"timestamp_ms": 3.0}, "Data.timestamp_ms", marks=TYPED),
        pytest.param({"epoch": "1"}, "Data.position.epoch", marks=TYPED),
        pytest.param({"offset": 2.5}, "Data.position.offset", marks=TYPED),
    ],
)
@pytest.mark.parametrize("encoder", [codec.encode_data_frame, _fast.encode_data_parts])
def test_encode_data_frame_refuses_bad_arguments(
    kwargs: dict[str, Any], field: str, encoder: Callable[..., object]
) -> None:
    # The frame in one piece and in two (header, envelope) refuse alike, naming the field.
    arguments: dict[str, Any] = {"topic": "t", "epoch": 1, "offset": 2, "timestamp_ms": 3,
                                 "payload": b"p", **kwargs}
    with pytest.raises(LocalProtocolError, match=field.replace(".", r"\.")):
        encoder(**arguments)


def test_encode_ack_refuses_out_of_range() -> None:
    for seq in (-1, TOO_BIG_U64):
        with pytest.raises(LocalProtocolError, match=r"Ack\.seq"):
            codec.encode_ack(seq)


def test_encode_refuses_what_is_not_a_body() -> None:
    with pytest.raises(LocalProtocolError, match="not a message body"):
        codec.encode(TopicPosition(topic="t", position=StreamPosition(0, 0)))  # type: ignore[arg-type]


# -- decoding refuses malformed envelopes, with DecodeError only


def envelope(body_type: int, build: Callable[[Any], int] | None = None) -> bytes:
    """An envelope whose body table ``build(builder)`` writes with raw builder calls."""
    b = flatbuffers.Builder(0)
    body = build(b) if build is not None else 0
    b.StartObject(2)
    if body:
        b.PrependUOffsetTRelativeSlot(1, body, 0)
    b.PrependUint8Slot(0, body_type, 0)
    b.Finish(b.EndObject(), file_identifier=b"SGM1")
    return bytes(b.Output())


def empty_table(b: Any) -> int:
    b.StartObject(0)
    return int(b.EndObject())


def rejected(buf: bytes | bytearray, match: str | None = None) -> DecodeError:
    with pytest.raises(DecodeError, match=match) as info:
        codec.decode(buf)
    return info.value


def test_crafted_envelopes_are_read_like_encoded_ones() -> None:
    # The helper itself: a Ping crafted by hand decodes like an encoded one.
    def ping(b: Any) -> int:
        b.StartObject(2)
        b.PrependUint64Slot(1, 42, 0)
        b.PrependUint32Slot(0, 7, 0)
        return int(b.EndObject())

    assert codec.decode(envelope(PING, ping)) == Ping(id=7, timestamp_ms=42)


def test_fields_appended_by_a_newer_schema_are_ignored() -> None:
    # Schema evolution: a newer peer's Ping with a third field still reads as a Ping.
    def ping(b: Any) -> int:
        b.StartObject(3)
        b.PrependUint64Slot(2, 99, 0)
        b.PrependUint64Slot(1, 42, 0)
        b.PrependUint32Slot(0, 7, 0)
        return int(b.EndObject())

    assert codec.decode(envelope(PING, ping)) == Ping(id=7, timestamp_ms=42)


def test_decode_error_is_a_bad_envelope_close() -> None:
    error = rejected(b"")
    assert error.code == 4000  # CloseCode.BAD_ENVELOPE


@pytest.mark.parametrize("size", range(8))
def test_too_short(size: int) -> None:
    rejected(codec.encode(Ping())[:size], match="too short")


def test_wrong_file_identifier() -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    wire[4:8] = b"SGM2"
    rejected(wire, match="identifier")


def test_truncated() -> None:
    wire = codec.encode(Data(topic="t", payload=b"abcd"))  # ends with the payload, no padding
    rejected(wire[:-1], match="payload")
    rejected(wire[:-5])


@pytest.mark.parametrize("root", [0xFFFF_FFFF, 0x7FFF_FFFF, 1000, 8])
def test_root_offset_out_of_range(root: int) -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    struct.pack_into("<I", wire, 0, root)
    rejected(wire)


def test_root_offset_past_the_end() -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    struct.pack_into("<I", wire, 0, len(wire))
    rejected(wire, match="outside")


def vtable_of_root(wire: bytes | bytearray) -> int:
    (root,) = struct.unpack_from("<I", wire, 0)
    (soffset,) = struct.unpack_from("<i", wire, root)
    return int(root - soffset)


@pytest.mark.parametrize("soffset", [-(2**31), 2**31 - 1, -1000, 1000])
def test_vtable_offset_out_of_range(soffset: int) -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    (root,) = struct.unpack_from("<I", wire, 0)
    struct.pack_into("<i", wire, root, soffset)
    rejected(wire, match="vtable")


@pytest.mark.parametrize("vt_size", [0, 2, 5, 7, 0xFFFE])
def test_bad_vtable_size(vt_size: int) -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    struct.pack_into("<H", wire, vtable_of_root(wire), vt_size)
    rejected(wire, match="vtable size")


@pytest.mark.parametrize("inline", [0, 3, 0xFFFF])
def test_bad_table_size(inline: int) -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    struct.pack_into("<H", wire, vtable_of_root(wire) + 2, inline)
    rejected(wire, match="table size")


def test_field_offset_outside_its_table() -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    vt = vtable_of_root(wire)
    (inline,) = struct.unpack_from("<H", wire, vt + 2)
    struct.pack_into("<H", wire, vt + 6, inline - 2)  # the body uoffset would straddle the end
    rejected(wire, match="outside its table")


def test_body_offset_out_of_range() -> None:
    wire = bytearray(codec.encode(Ping(id=1)))
    vt = vtable_of_root(wire)
    (root,) = struct.unpack_from("<I", wire, 0)
    (body_field,) = struct.unpack_from("<H", wire, vt + 6)
    struct.pack_into("<I", wire, root + body_field, 0xFFFF_FF00)
    rejected(wire, match="outside")


def test_unknown_union_member() -> None:
    # What a newer peer's message type looks like to this version.
    error = rejected(envelope(200, empty_table), match="unknown message type 200")
    assert "newer peer" in str(error)


def test_empty_body() -> None:
    rejected(envelope(0), match="no body")
    rejected(envelope(0, empty_table), match="no body")  # NONE, even with a table
    rejected(envelope(PING), match="no body")  # a type but no table


def test_absurd_vector_length() -> None:
    wire = bytearray(codec.encode(Data(topic="t", payload=b"abcd")))
    struct.pack_into("<I", wire, len(wire) - 8, 0xFFFF_FFFF)
    rejected(wire, match="payload")

    def ack(b: Any) -> int:
        b.StartVector(4, 0, 4)
        positions = b.EndVector()
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(1, positions, 0)
        return int(b.EndObject())

    wire = bytearray(envelope(ACK, ack))
    assert wire[-4:] == b"\0\0\0\0"  # the empty vector is the last thing in the buffer
    struct.pack_into("<I", wire, len(wire) - 4, 0x4000_0000)
    rejected(wire, match="Ack.positions")


def test_string_past_the_end_or_without_nul() -> None:
    wire = bytearray(codec.encode(Unsubscribe(topic="abcd")))
    at = wire.index(b"abcd\0")
    struct.pack_into("<I", wire, at - 4, 0x7FFF_FFF0)
    rejected(wire, match=r"Unsubscribe\.topic")

    wire = bytearray(codec.encode(Unsubscribe(topic="abcd")))
    wire[wire.index(b"abcd\0") + 4] = ord("x")
    rejected(wire, match="NUL")

    wire = bytearray(codec.encode(Data(topic="abcd")))
    wire[wire.index(b"abcd\0") + 4] = ord("x")
    rejected(wire, match="NUL")


def string_table(field_count: int, slot: int, raw: bytes) -> Callable[[Any], int]:
    def build(b: Any) -> int:
        string = b.CreateString(raw)
        b.StartObject(field_count)
        b.PrependUOffsetTRelativeSlot(slot, string, 0)
        return int(b.EndObject())

    return build


@pytest.mark.parametrize(
    ("body_type", "field_count", "slot", "field"),
    [(UNSUBSCRIBE, 2, 1, "Unsubscribe.topic"), (DATA, 5, 0, "Data.topic")],
)
@pytest.mark.parametrize("raw", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"ok\x80"])
def test_invalid_utf8(body_type: int, field_count: int, slot: int, field: str, raw: bytes) -> None:
    rejected(envelope(body_type, string_table(field_count, slot, raw)), match=rf"{field}.*UTF-8")


def test_missing_required_fields() -> None:
    def welcome(*, session_id: bool, resume_token: bool) -> Callable[[Any], int]:
        def build(b: Any) -> int:
            sid = b.CreateString("s") if session_id else 0
            token = b.CreateByteVector(b"t") if resume_token else 0
            b.StartObject(10)
            b.PrependUOffsetTRelativeSlot(0, sid, 0)
            b.PrependUOffsetTRelativeSlot(1, token, 0)
            return int(b.EndObject())

        return build

    assert codec.decode(envelope(WELCOME, welcome(session_id=True, resume_token=True))) == Welcome(
        session_id="s", resume_token=b"t"
    )
    rejected(
        envelope(WELCOME, welcome(session_id=False, resume_token=True)), match="Welcome.session_id"
    )
    rejected(
        envelope(WELCOME, welcome(session_id=True, resume_token=False)),
        match="Welcome.resume_token",
    )

    def ack_with_topic_position(*, topic: bool, position: bool) -> Callable[[Any], int]:
        def build(b: Any) -> int:
            name = b.CreateString("t") if topic else 0
            b.StartObject(2)
            if position:
                b.Prep(8, 16)
                b.PrependUint64(2)
                b.PrependUint64(1)
                b.Slot(1)
            b.PrependUOffsetTRelativeSlot(0, name, 0)
            entry = b.EndObject()
            b.StartVector(4, 1, 4)
            b.PrependUOffsetTRelative(entry)
            positions = b.EndVector()
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(1, positions, 0)
            return int(b.EndObject())

        return build

    assert codec.decode(envelope(ACK, ack_with_topic_position(topic=True, position=True))) == Ack(
        positions=(TopicPosition(topic="t", position=StreamPosition(1, 2)),)
    )
    rejected(
        envelope(ACK, ack_with_topic_position(topic=True, position=False)),
        match="TopicPosition.position",
    )
    rejected(
        envelope(ACK, ack_with_topic_position(topic=False, position=True)),
        match="TopicPosition.topic",
    )

    def subscribed(b: Any) -> int:
        b.StartObject(2)
        b.PrependUint32Slot(0, 1, 0)
        return int(b.EndObject())

    rejected(envelope(SUBSCRIBED, subscribed), match="Subscribed.recovery")
    rejected(envelope(UNSUBSCRIBE, empty_table), match="Unsubscribe.topic")


def test_unknown_enum_values() -> None:
    def subscribed(status: int) -> Callable[[Any], int]:
        def build(b: Any) -> int:
            topic = b.CreateString("t")
            b.StartObject(6)
            b.PrependUOffsetTRelativeSlot(0, topic, 0)
            b.PrependUint8Slot(1, status, 0)
            recovery = b.EndObject()
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(1, recovery, 0)
            return int(b.EndObject())

        return build

    # RecoveryStatus from a newer peer: FAILED, so the app resyncs the topic.
    assert codec.decode(envelope(SUBSCRIBED, subscribed(9))) == Subscribed(
        recovery=TopicRecovery(topic="t", status=RecoveryStatus.FAILED)
    )
    assert codec.decode(envelope(SUBSCRIBED, subscribed(2))) == Subscribed(
        recovery=TopicRecovery(topic="t", status=RecoveryStatus.FRESH)
    )

    def presence(action: int) -> Callable[[Any], int]:
        def build(b: Any) -> int:
            topic = b.CreateString("t")
            session = b.CreateString("s")
            b.StartObject(4)
            b.PrependUOffsetTRelativeSlot(0, topic, 0)
            b.PrependUOffsetTRelativeSlot(2, session, 0)
            b.PrependUint8Slot(1, action, 0)
            return int(b.EndObject())

        return build

    assert codec.decode(envelope(PRESENCE, presence(1))) == Presence(
        topic="t", session_id="s", action=PresenceAction.LEAVE
    )
    # No safe fallback for an unknown action: the message is from a newer version and is
    # reported as such, so that connections ignore it instead of closing.
    error = rejected(envelope(PRESENCE, presence(2)), match="unknown action 2")
    assert isinstance(error, UnknownMessageType)
    # Unknown error codes are kept as they are.
    assert codec.decode(codec.encode(Error(code=999))) == Error(code=999)
    assert codec.decode(codec.encode(Goodbye(code=65535))) == Goodbye(code=65535)


def test_shared_strings_decode_once() -> None:
    # Another FlatBuffers writer may share one string between tables: valid, and cheap.
    def hello(b: Any) -> int:
        topic = b.CreateString("topic")
        entries = []
        for offset in range(50):
            b.StartObject(2)
            b.Prep(8, 16)
            b.PrependUint64(offset)
            b.PrependUint64(1)
            b.Slot(1)
            b.PrependUOffsetTRelativeSlot(0, topic, 0)
            entries.append(b.EndObject())
        b.StartVector(4, len(entries), 4)
        for entry in reversed(entries):
            b.PrependUOffsetTRelative(entry)
        positions = b.EndVector()
        b.StartObject(7)
        b.PrependUOffsetTRelativeSlot(3, positions, 0)
        return int(b.EndObject())

    body = codec.decode(envelope(HELLO, hello))
    assert isinstance(body, Hello)
    assert [p.position.offset for p in body.positions] == list(range(50))
    assert {id(p.topic) for p in body.positions} == {id(body.positions[0].topic)}


def test_overlapping_strings_cannot_amplify() -> None:
    # Many table fields pointing into one blob at different places, each reading a string that
    # runs to the same NUL: a few KiB would decode to megabytes. The budget refuses it.
    # The lengths are written into the blob; keep their bytes ASCII so that every string is
    # valid UTF-8 and only the budget can object.
    blob_size = 0x7F7F + 5
    blob = bytearray(b"a" * blob_size)
    blob[-1] = 0
    starts = [
        start for start in range(0, blob_size - 64, 4) if (blob_size - 5 - start) & 0x8080 == 0
    ][:400]
    for start in starts:
        struct.pack_into("<I", blob, start, blob_size - 5 - start)

    def hello(b: Any) -> int:
        vector = b.CreateByteVector(bytes(blob))  # offset of its length field
        entries = []
        for start in starts:
            b.StartObject(2)
            b.Prep(8, 16)
            b.PrependUint64(0)
            b.PrependUint64(0)
            b.Slot(1)
            b.PrependUOffsetTRelativeSlot(0, vector - 4 - start, 0)
            entries.append(b.EndObject())
        b.StartVector(4, len(entries), 4)
        for entry in reversed(entries):
            b.PrependUOffsetTRelative(entry)
        positions = b.EndVector()
        b.StartObject(7)
        b.PrependUOffsetTRelativeSlot(3, positions, 0)
        return int(b.EndObject())

    wire = envelope(HELLO, hello)
    assert len(wire) < 50_000
    rejected(wire, match="more than its own size")


def test_every_message_type_has_a_round_trip_strategy() -> None:
    # A message type added to messages.Body without a strategy here would go untested.
    assert set(BODIES) == set(typing.get_args(Body))


# -- the server's Data frame from a per-topic template (codec._fast.data_frame and its twin)


def _reference_frame(
    topic: str, epoch: int, offset: int, timestamp_ms: int, payload: bytes
) -> bytes:
    """The server's frame of a Data the slow way: the generic FlatBuffers builder (generated from
    schemas/sigma.fbs, so a change to the schema shows here), framed by the framer."""
    body = Data(topic=topic, position=StreamPosition(epoch, offset), timestamp_ms=timestamp_ms,
                payload=payload)
    return server_binary_frame(codec._encode_with_builder(body))


def _check_frame(topic: str, epoch: int, offset: int, timestamp_ms: int, payload: bytes) -> None:
    frame, header = codec.encode_data_frame(topic=topic, epoch=epoch, offset=offset,
                                            timestamp_ms=timestamp_ms, payload=payload)
    assert frame == _reference_frame(topic, epoch, offset, timestamp_ms, payload)
    # What a client reads back, by the generic reader (not the fast paths).
    assert codec._decode_with_reader(frame[header:]) == Data(
        topic=topic, position=StreamPosition(epoch, offset), timestamp_ms=timestamp_ms,
        payload=payload)


# Envelope sizes straddle 125/126 (a 1-byte length -> 16-bit) with payloads of 0-200 bytes, and
# 65535/65536 (16-bit -> 64-bit) with 65,400-65,600 bytes, for topics of 0-20 characters.
frame_payload_sizes = st.integers(0, 200) | st.integers(65_400, 65_600)


@THOROUGH
@given(topic=st.text(max_size=20), epoch=u64_or_zero, offset=u64_or_zero,
       timestamp_ms=u64_or_zero, size=frame_payload_sizes, fill=st.integers(0, 255))
def test_template_frame_is_the_reference_frame(
    topic: str, epoch: int, offset: int, timestamp_ms: int, size: int, fill: int
) -> None:
    # Differential: the template path (the C helper when built, its Python twin otherwise) gives
    # the builder's bytes, framed, for every topic, payload size, position and timestamp; twice,
    # so that the second use of the cached template is checked too.
    payload = bytes([fill]) * size
    _check_frame(topic, epoch, offset, timestamp_ms, payload)
    _check_frame(topic, epoch, offset, timestamp_ms, payload)


@pytest.mark.parametrize("topic", ["t", "tt", "ttt", "tttt", "t" * 5, "$inbox", "é" * 3])
def test_template_frame_at_every_length_boundary(topic: str) -> None:
    # Every payload size whose frame is within 8 bytes of a change of WebSocket length class,
    # with and without a timestamp (two template layouts) and both pads to 8.
    for n in [*range(40, 130), *range(65_440, 65_540)]:
        for timestamp_ms in (0, 1_700_000_000_000):
            frame, header = codec.encode_data_frame(topic=topic, epoch=7, offset=n,
                                                    timestamp_ms=timestamp_ms, payload=b"x" * n)
            envelope = codec.encode_data(topic=topic, epoch=7, offset=n,
                                         timestamp_ms=timestamp_ms, payload=b"x" * n)
            assert frame == server_binary_frame(envelope)
            assert header == len(frame) - len(envelope)
            if n in (40, 125, 65_535):
                assert frame == _reference_frame(topic, 7, n, timestamp_ms, b"x" * n)


def _templates(topic: str) -> list[tuple[bytes, int, int]]:
    """All 12 templates of a topic: (template, at, has a timestamp)."""
    frames = _fast._topic_frames(topic)
    return [(frames.build(i), frames.ats[i], i & 1) for i in range(12)]


@FAST
@given(topic=st.text(max_size=9), index=st.integers(0, 11), size=st.integers(0, 70_000),
       epoch=u64, offset=u64, timestamp_ms=u64)
def test_data_frame_c_equals_python(
    topic: str, index: int, size: int, epoch: int, offset: int, timestamp_ms: int
) -> None:
    # The C helper and its pure-Python twin: the same bytes for a template that fits, the same
    # ValueError for one that does not (a template of the wrong length class or layout).
    speedups = pytest.importorskip("sigma_core._speedups")
    template, at, has_ts = _templates(topic)[index]
    payload = b"\xa5" * size
    ts = timestamp_ms if has_ts else 0
    results = []
    for build in (speedups.data_frame, _fast.data_frame_py):
        try:
            results.append(build(template, at, payload, ts, epoch, offset))
        except ValueError as exc:
            results.append(str(exc))
    assert results[0] == results[1]


@pytest.mark.parametrize(
    ("template", "at", "timestamp_ms", "size", "message"),
    [
        (b"\x82", 0, 0, 1, "cannot hold"),  # shorter than a header
        (b"\x82\0" + bytes(19), 2, 0, 1, "cannot hold"),  # no room for two u64 and the u32
        (b"\x82\0" + bytes(20), 2, 1, 1, "cannot hold"),  # ... nor three
        (b"\x82\x7e" + bytes(30), 2, 0, 1, "cannot hold"),  # fields over the 16-bit length
        (b"\x82\0" + bytes(20), 0, 0, 0, "cannot hold"),  # fields over the header
        (b"\x82\0" + bytes(20), 2, 0, 200, "length class"),  # 1-byte length, 222-byte frame
        (b"\x82\x7e\0\0" + bytes(20), 4, 0, 10, "length class"),  # 16-bit length, 30 bytes
        (b"\x82\x7f" + bytes(28), 10, 0, 10, "length class"),  # 64-bit length, 30 bytes
    ],
)
def test_data_frame_refuses_a_template_that_does_not_fit(
    template: bytes, at: int, timestamp_ms: int, size: int, message: str
) -> None:
    builds = [_fast.data_frame_py, _fast.data_frame]
    for build in builds:
        with pytest.raises(ValueError, match=message):
            build(template, at, b"p" * size, timestamp_ms, 1, 2)


def test_topic_frame_cache_is_bounded() -> None:
    _fast._TOPIC_FRAMES.clear()
    for i in range(_fast._TOPIC_FRAMES_MAX + 10):
        codec.encode_data_frame(topic=f"t{i}", epoch=1, offset=2, timestamp_ms=0, payload=b"p")
    assert len(_fast._TOPIC_FRAMES) <= _fast._TOPIC_FRAMES_MAX
    # A topic met again after the cache was cleared is built again, the same bytes.
    _check_frame("t0", 1, 2, 0, b"p")


@pytest.mark.parametrize("value", [0, 1, 2**30 - 1, 2**30, 2**60 - 1, 2**60, 2**64 - 1, True])
def test_data_frame_c_reads_every_u64_as_the_twin(value: int) -> None:
    # The C helper's int conversion (a fast path for ints of up to two 30-bit digits) at every
    # digit boundary, for each u64 field.
    speedups = pytest.importorskip("sigma_core._speedups")
    template, at, _ = next(t for t in _templates("room") if t[2])
    for args in ((value, 1, 2), (1, value, 2), (1, 2, value)):
        expected = _fast.data_frame_py(template, at, b"p" * 10, *args)
        assert speedups.data_frame(template, at, b"p" * 10, *args) == expected


@pytest.mark.parametrize(("value", "error"), [
    (-1, OverflowError), (-(2**30), OverflowError), (-(2**61), OverflowError),
    (2**64, OverflowError), (2**90, OverflowError), (1.0, TypeError), ("1", TypeError),
])
def test_c_helpers_refuse_what_is_not_a_u64(value: object, error: type[Exception]) -> None:
    template, at, _ = next(t for t in _templates("room") if t[2])
    if error is TypeError:  # the twin refuses a non-int as the C helper does
        for args in ((value, 1, 2), (1, value, 2), (1, 2, value), (None, 1, 2), (0.0, 1, 2)):
            with pytest.raises(TypeError):
                _fast.data_frame_py(template, at, b"p" * 10, *args)
    speedups = pytest.importorskip("sigma_core._speedups")
    for args in ((value, 1, 2), (1, value, 2), (1, 2, value)):
        with pytest.raises(error):
            speedups.data_frame(template, at, b"p" * 10, *args)
    for args in ((None, 1, 2), (0.0, 1, 2)):
        with pytest.raises(TypeError):
            speedups.data_frame(template, at, b"p" * 10, *args)
    with pytest.raises(error):
        speedups.unmask(b"abc", value)
    with pytest.raises(ValueError, match="32 bits"):
        speedups.unmask(b"abc", 2**32)


# -- the same frame in two pieces: (WebSocket header, envelope) (codec._fast.encode_data_parts,
# the C data_envelope and its twin), the envelope being the object history keeps


@THOROUGH
@given(topic=st.text(max_size=20), epoch=u64_or_zero, offset=u64_or_zero,
       timestamp_ms=u64_or_zero, size=frame_payload_sizes, fill=st.integers(0, 255))
def test_frame_parts_are_the_template_frame(
    topic: str, epoch: int, offset: int, timestamp_ms: int, size: int, fill: int
) -> None:
    # Differential: header + envelope is encode_data_frame's frame (itself held to the builder
    # above), split where its envelope starts; twice, so the cached header and envelope template
    # are checked too.
    payload = bytes([fill]) * size
    frame, header = codec.encode_data_frame(topic=topic, epoch=epoch, offset=offset,
                                            timestamp_ms=timestamp_ms, payload=payload)
    for _ in range(2):
        head, envelope = _fast.encode_data_parts(topic=topic, epoch=epoch, offset=offset,
                                                 timestamp_ms=timestamp_ms, payload=payload)
        assert (head, envelope) == (frame[:header], frame[header:])


@pytest.mark.parametrize("topic", ["t", "tttt", "$inbox", "é" * 3])
def test_frame_parts_at_every_length_boundary(topic: str) -> None:
    # Sizes within 8 bytes of a change of length class, each size next to another (the header
    # kept per topic is for the last size: it must change with it), both layouts and pads.
    for n in [*range(40, 130), *range(65_440, 65_540)]:
        for timestamp_ms in (0, 1_700_000_000_000):
            for size in (n, n + 1, n):
                head, envelope = _fast.encode_data_parts(
                    topic=topic, epoch=7, offset=size, timestamp_ms=timestamp_ms,
                    payload=b"x" * size)
                assert head + envelope == server_binary_frame(codec.encode_data(
                    topic=topic, epoch=7, offset=size, timestamp_ms=timestamp_ms,
                    payload=b"x" * size))
                assert envelope == codec.encode_data(
                    topic=topic, epoch=7, offset=size, timestamp_ms=timestamp_ms,
                    payload=b"x" * size)


@FAST
@given(topic=st.text(max_size=9), index=st.integers(0, 3), size=st.integers(0, 70_000),
       epoch=u64, offset=u64, timestamp_ms=u64)
def test_data_envelope_c_equals_python(
    topic: str, index: int, size: int, epoch: int, offset: int, timestamp_ms: int
) -> None:
    # The C helper and its pure-Python twin: the same bytes, which are the frame template's
    # envelope (data_frame's frame without its header).
    speedups = pytest.importorskip("sigma_core._speedups")
    frames = _fast._topic_frames(topic)
    template, at = frames.build_envelope(index), frames.envelope_ats[index]
    payload = b"\xa5" * size
    ts = timestamp_ms if index & 1 else 0
    envelope = speedups.data_envelope(template, at, payload, ts, epoch, offset)
    assert envelope == _fast.data_envelope_py(template, at, payload, ts, epoch, offset)
    frame, header = codec.encode_data_frame(topic=topic, epoch=epoch, offset=offset,
                                            timestamp_ms=ts, payload=payload)
    # (The template of the layout the encoder picks for this size and timestamp; an empty
    # topic or payload goes the general way, whose layout differs.)
    picked = ((len(frames.block) + size + 7) & 4) >> 1 | (ts != 0)
    if topic and size and index == picked:
        assert frame[header:] == envelope


@pytest.mark.parametrize(("template", "at", "timestamp_ms"), [
    (b"", 0, 0), (bytes(19), 0, 0), (bytes(27), 0, 1), (bytes(30), 12, 0), (bytes(30), -1, 0),
])
def test_data_envelope_refuses_a_template_that_does_not_fit(
    template: bytes, at: int, timestamp_ms: int
) -> None:
    for build in (_fast.data_envelope_py, _fast.data_envelope):
        with pytest.raises(ValueError, match="cannot hold"):
            build(template, at, b"p", timestamp_ms, 1, 2)


@pytest.mark.parametrize(("value", "error"), [
    (-1, OverflowError), (2**64, OverflowError), (1.0, TypeError), ("1", TypeError),
    (None, TypeError),
])
def test_data_envelope_refuses_what_is_not_a_u64(value: object, error: type[Exception]) -> None:
    frames = _fast._topic_frames("room")
    template, at = frames.build_envelope(1), frames.envelope_ats[1]
    errors = (OverflowError, struct.error) if error is OverflowError else error
    for build in (_fast.data_envelope_py, _fast.data_envelope):
        for args in ((value, 1, 2), (1, value, 2), (1, 2, value)):
            with pytest.raises(errors):
                build(template, at, b"p" * 10, *args)


def test_the_inbox_templates_kept_apart_give_the_same_frames() -> None:
    # ``$inbox``'s templates live outside the bounded cache and are taken for that very string
    # object (the hub's constant): the same pieces as an equal string's, looked up as any topic.
    other = "".join(["$in", "box"])
    _fast._TOPIC_FRAMES.clear()
    for n in (1, 100, 125, 1000, 65_600):
        for timestamp_ms in (0, 1_700_000_000_000):
            kwargs: dict[str, Any] = {"epoch": 3, "offset": n, "timestamp_ms": timestamp_ms,
                                      "payload": b"y" * n}
            ours = _fast.encode_data_parts(topic=_fast._INBOX_TOPIC, **kwargs)
            theirs = _fast.encode_data_parts(topic=other, **kwargs)
            frame, header = codec.encode_data_frame(topic=other, **kwargs)
            assert ours == theirs == (frame[:header], frame[header:])


@pytest.mark.parametrize("seq", [0, 1, 2, 255, 256, 2**30, 2**32 - 1, 2**63, 2**64 - 1])
def test_encode_ack_frame_is_the_framed_ack(seq: int) -> None:
    # The server's Ack frame from its fixed layout (what the hub queues per acknowledgement):
    # the generic encoder's Ack, framed; the header size beside it.
    frame, header = _fast.encode_ack_frame(seq)
    assert frame == server_binary_frame(codec._encode_with_builder(Ack(seq=seq)))
    assert (header, frame[header:]) == (2, codec.encode_ack(seq))


@pytest.mark.parametrize("seq", [-1, 2**64, 2**70])
def test_encode_ack_frame_refuses_what_encode_ack_refuses(seq: int) -> None:
    for encode in (codec.encode_ack, _fast.encode_ack_frame):
        with pytest.raises(LocalProtocolError, match=r"Ack\.seq"):
            encode(seq)
