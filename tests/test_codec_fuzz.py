"""The decoder's contract: any bytes decode to a message body or raise DecodeError, nothing else.

Pure random bytes rarely get past the file identifier, so most of the work is done on mutations of
valid envelopes (one seed per message type, every optional part present): every byte flipped,
every truncation, offsets overwritten with boundary values, random bytes spliced in.
"""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigma_core import codec
from sigma_core.errors import DecodeError
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

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BODY_TYPES = (
    Hello,
    Welcome,
    Data,
    Ack,
    Ping,
    Pong,
    Subscribe,
    Unsubscribe,
    Subscribed,
    Unsubscribed,
    Presence,
    Error,
    Goodbye,
    Refresh,
    Refreshed,
)

_position = StreamPosition(epoch=0x0102030405060708, offset=42)
_recovery = TopicRecovery(
    topic="room/1",
    status=RecoveryStatus.FAILED,
    position=_position,
    lost_from=3,
    lost_to=9,
    replayed=1,
)
SEEDS: list[Body] = [
    Hello(
        protocol_version=2,
        session_id="sess-é",
        resume_token=b"\x00token\xff",
        positions=(
            TopicPosition(topic="a", position=_position),
            TopicPosition(topic="", position=StreamPosition(0, 0)),
        ),
        last_acked_seq=17,
        auth_token="bearer ✓",
        client=ClientInfo(name="n", version="1.0", platform="py", metadata={"k": "v", "e": ""}),
    ),
    Welcome(
        session_id="sess",
        resume_token=b"rt",
        resumed=True,
        recovery=(_recovery, TopicRecovery(topic="b")),
        last_received_seq=5,
        heartbeat_interval_ms=1000,
        heartbeat_timeout_ms=3000,
        limits=Limits(max_message_size=1 << 20, max_unacked=64, max_topics=8),
        server_time_ms=1_700_000_000_000,
        fresh_reason="expired",
    ),
    Data(topic="room/1", position=_position, timestamp_ms=99, payload=b"payload!!"),
    Data(topic="t", seq=3, timestamp_ms=4, payload=bytes(range(13))),
    Data(seq=1, payload=b"x"),
    # Client Data in the other layouts the server's fast path reads (codec.read_client_data).
    Data(seq=2, payload=b"four"),
    Data(topic="room", seq=5, payload=b"ab"),
    Data(seq=7, timestamp_ms=1, payload=b"12345"),
    Data(topic="é", seq=2**64 - 1, timestamp_ms=2**64 - 1, payload=b"\x00"),
    Ack(seq=12, positions=(TopicPosition(topic="x", position=_position),)),
    Ack(seq=2**64 - 1),
    Ack(),
    Ping(id=7, timestamp_ms=8),
    Pong(id=7, echo_timestamp_ms=8, timestamp_ms=9),
    Subscribe(topic="room/1", request_id=3, position=_position),
    Unsubscribe(topic="room/1", request_id=4),
    Subscribed(recovery=_recovery, request_id=5),
    Unsubscribed(topic="room/1", request_id=6),
    Presence(topic="room/1", session_id="s", action=PresenceAction.LEAVE, metadata={"a": "b"}),
    Error(code=3, message="denied", details="{}", retryable=True, request_id=9),
    Goodbye(code=6, reason="restart", reconnect_after_ms=500),
    Refresh(token="header.claims.signature"),
    Refreshed(credentials_expire_ms=1_700_000_000_000),
]
WIRES = [codec.encode(body) for body in SEEDS]


def normalised(body: Body) -> Body:
    if isinstance(body, Data):
        return dataclasses.replace(body, payload=bytes(body.payload))
    return body


def masked(buf: bytes, mask: int, before: int) -> bytes:
    """``buf`` masked with ``mask`` (RFC 6455 5.3, the key as the frame parser holds it) and
    preceded by its key, after ``before`` bytes of other data and followed by three more, as it
    sits in a read: the payload starts at ``before + 4``."""
    key = mask.to_bytes(4, "little")
    return (b"\xa5" * before + key + bytes(b ^ key[i & 3] for i, b in enumerate(buf))
            + b"\x5a" * 3)


def check_frame_reader(buf: bytes, fields: tuple[int, str, bytes, int] | None) -> None:
    """The frame parser's reader (the C helper when compiled) reads a masked frame's payload
    as its pure-Python twin does: what read_client_data reads, else the unmasked bytes."""
    expected = buf if fields is None else fields
    for mask, before in ((0, 0), (0x9A3C5E71, 1), (0x01020304, 2), (0xFFFFFFFF, 7)):
        read = masked(buf, mask, before)
        start = before + 4
        stop = start + len(buf)
        assert codec.read_client_frame_py(read, start, stop) == expected
        assert codec.read_client_frame(read, start, stop) == expected


def test_frame_reader_refuses_a_range_outside_the_read() -> None:
    read = masked(b"abc", 1, 0)
    for start, stop in ((3, 5), (4, 3), (4, len(read) + 1), (-1, 2)):
        for reader in (codec.read_client_frame, codec.read_client_frame_py):
            with pytest.raises(IndexError):
                reader(read, start, stop)


def check_fast_path(buf: bytes | bytearray) -> None:
    """The server's fast path for client Data either defers (None) or gives what decode gives."""
    fields = codec.read_client_data(bytes(buf))
    check_frame_reader(bytes(buf), fields)
    if fields is None:
        return
    body = codec.decode(buf)  # a DecodeError here: the fast path accepted what decode refuses
    assert isinstance(body, Data)
    assert body.position is None
    assert fields == (body.seq, body.topic, bytes(body.payload), body.timestamp_ms)


def check(buf: bytes | bytearray) -> Body | None:
    """Decode; anything but a body or a DecodeError fails the test (as does a body that does not
    survive re-encoding, or a fast path that disagrees with decode)."""
    check_fast_path(buf)
    try:
        body = codec.decode(buf)
    except DecodeError:
        # The Data fast path and the generic reader check the same things.
        try:
            reference = codec._decode_with_reader(buf)
        except DecodeError:
            return None
        raise AssertionError(f"only the fast path refused {reference!r}") from None
    assert isinstance(body, BODY_TYPES)
    assert normalised(codec._decode_with_reader(buf)) == normalised(body)
    assert normalised(codec.decode(codec.encode(body))) == normalised(body)
    return body


def test_seeds_are_valid() -> None:
    assert {type(body) for body in SEEDS} == set(BODY_TYPES)
    for body, wire in zip(SEEDS, WIRES, strict=True):
        assert normalised(codec.decode(wire)) == body


def test_every_truncation() -> None:
    for wire in WIRES:
        for size in range(len(wire)):
            check(wire[:size])


def test_every_byte_changed() -> None:
    for wire in WIRES:
        for at in range(len(wire)):
            for value in {0x00, 0xFF, 0x80, 0x7F, wire[at] ^ 0x01, wire[at] ^ 0x10}:
                mutated = bytearray(wire)
                mutated[at] = value
                check(mutated)


def test_every_offset_overwritten() -> None:
    # Offsets and lengths are 32-bit and 16-bit: write boundary values at every position.
    for wire in WIRES:
        size = len(wire)
        for at in range(size - 1):
            for value in (0, 1, 2, 4, size - at, size - at - 1, size - at + 1, size, 0xFFFF):
                mutated = bytearray(wire)
                struct.pack_into("<H", mutated, at, value & 0xFFFF)
                check(mutated)
        for at in range(size - 3):
            for value in (
                0,
                4,
                size - at,
                size - at - 4,
                size,
                0x7FFF_FFFF,
                0x8000_0000,
                0xFFFF_FFFF,
                0xFFFF_FFFC,
            ):
                mutated = bytearray(wire)
                struct.pack_into("<I", mutated, at, value & 0xFFFF_FFFF)
                check(mutated)


seeds = st.sampled_from(WIRES)


@FUZZ
@given(buf=st.binary(max_size=300))
def test_random_bytes(buf: bytes) -> None:
    check(buf)


@FUZZ
@given(buf=st.binary(min_size=8, max_size=300), root=st.integers(0, 320))
def test_random_bytes_with_identifier(buf: bytes, root: int) -> None:
    # Get past the identifier check, and point the root somewhere inside.
    check(struct.pack("<I", root) + b"SGM1" + buf[8:])


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("replace"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 16)),
    st.tuples(st.just("u32"), st.integers(0, 1 << 16), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
)


def mutate(wire: bytes, steps: list[tuple[str, int, object]]) -> bytearray:
    buf = bytearray(wire)
    for kind, where, arg in steps:
        at = where % (len(buf) + 1)
        if kind == "flip" and at < len(buf):
            assert isinstance(arg, int)
            buf[at] ^= arg
        elif kind == "insert":
            assert isinstance(arg, bytes)
            buf[at:at] = arg
        elif kind == "replace":
            assert isinstance(arg, bytes)
            buf[at : at + len(arg)] = arg
        elif kind == "delete":
            assert isinstance(arg, int)
            del buf[at : at + arg]
        elif kind == "u32" and at + 4 <= len(buf):
            struct.pack_into("<I", buf, at, arg)
        elif kind == "truncate":
            del buf[at:]
    return buf


@FUZZ
@given(wire=seeds, steps=st.lists(mutations, min_size=1, max_size=4))
def test_mutated_envelopes(wire: bytes, steps: list[tuple[str, int, object]]) -> None:
    check(mutate(wire, steps))


client_data = st.builds(
    codec.encode_data,
    topic=st.text(max_size=12),
    seq=st.integers(0, 2**64 - 1),
    timestamp_ms=st.one_of(st.just(0), st.integers(0, 2**64 - 1)),
    payload=st.binary(max_size=40),
)


@FUZZ
@given(wire=client_data, steps=st.lists(mutations, max_size=3))
def test_client_data_fast_path_agrees_with_decode(
    wire: bytes, steps: list[tuple[str, int, object]]
) -> None:
    # Unmutated, every client Data with a seq and a payload takes the fast path.
    fields = codec.read_client_data(wire)
    body = codec.decode(wire)
    assert isinstance(body, Data)
    if body.seq and body.payload:
        assert fields == (body.seq, body.topic, bytes(body.payload), body.timestamp_ms)
    check(mutate(wire, steps))


@settings(max_examples=150, deadline=None)
@given(
    topic=st.one_of(st.just(""), st.text(max_size=300)),
    payload=st.binary(max_size=2000),
    seq=st.integers(1, 2**64 - 1),
    timestamp_ms=st.integers(0, 2**64 - 1),
    mask=st.integers(0, 2**32 - 1),
    before=st.integers(0, 9),
    cut=st.integers(0, 80),
)
def test_frame_reader_reads_a_masked_client_data_as_its_twin(
    topic: str, payload: bytes, seq: int, timestamp_ms: int, mask: int, before: int, cut: int
) -> None:
    # Every client layout (topic or not, timestamp or not, both pads), topics past the C
    # helper's 256-byte stack buffer, any key and alignment in the read; then cut short.
    wire = codec.encode_data(topic=topic, payload=payload, seq=seq, timestamp_ms=timestamp_ms)
    expected = (seq, topic, payload, timestamp_ms) if payload else None
    for buf in (wire, wire[: max(0, len(wire) - cut)]):
        fields = codec.read_client_data(buf)
        if buf is wire:
            assert fields == expected
        read = masked(buf, mask, before)
        start = before + 4
        stop = start + len(buf)
        want = buf if fields is None else fields
        assert codec.read_client_frame(read, start, stop) == want
        assert codec.read_client_frame_py(read, start, stop) == want
