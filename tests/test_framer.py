"""The hand-written frame layer (sigma_core._framer) against wsproto's, through the WebSocket API.

The differential tests feed the same bytes, cut the same way, to two open WebSockets of the same
role and config: one parsing frames with our framer (the default), one forced onto wsproto's frame
layer (``_use_wsproto_frames=True``), the reference. After every read they must show the same
events (close codes, reasons and causes included), the same state and the same bytes to send.

Known differences from wsproto, each on purpose: none. Where wsproto is strict (non-minimal
length encodings are failed with 1002, RFC 6455 §5.2: "the minimal number of bytes MUST be used")
or late (a data frame's continuation rules and UTF-8 are checked when its first payload byte
arrives, not with its head) our framer does the same, so that this comparison can be exact.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from typing import Any

import pytest
import wsproto.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigma_core import _framer
from sigma_core.errors import RemoteProtocolError
from sigma_core.websocket import (
    Closed,
    HandshakeAccepted,
    HandshakeRequest,
    MessageReceived,
    PingReceived,
    PongReceived,
    Role,
    WebSocket,
    WebSocketConfig,
    WebSocketEvent,
    WebSocketState,
)

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
REQUEST = (
    "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
    f"Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: sigma.v1\r\n\r\n"
).encode()

CONFIGS = [
    WebSocketConfig(),
    WebSocketConfig(max_message_size=100),
    WebSocketConfig.plain(),
    WebSocketConfig.plain(max_message_size=64),
    WebSocketConfig(allow_text=True, max_message_size=40),
]
# Every close code class: valid, reserved, local-only (1005, 1006, 1015), out of range.
CLOSE_CODES = [0, 999, 1000, 1001, 1003, 1004, 1005, 1006, 1007, 1011, 1012, 1013, 1014, 1015,
               1016, 2999, 3000, 4000, 4999, 5000, 65535]
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xce"]


# -- building frames -------------------------------------------------------------------------------


def xor(data: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def build(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    form: int | None = None,
    msb: bool = False,
) -> bytes:
    """One frame. ``form``: how the length is written (7, 16 or 64 bits; default minimal),
    ``msb``: set the most significant bit of a 64-bit length."""
    n = len(payload)
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if form == 7:
        head += bytes([mask_bit | n])
    elif form == 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n | (1 << 63 if msb else 0))
    if mask is not None:
        return head + mask + xor(payload, mask)
    return head + payload


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """What a WebSocket wrote: (first byte, unmasked payload) per frame (a client's masks are
    random, so its bytes are compared this way)."""
    frames = []
    while data:
        first, n, start = data[0], data[1] & 0x7F, 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            start = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            start = 10
        if data[1] & 0x80:
            mask = data[start : start + 4]
            start += 4
            frames.append((first, xor(data[start : start + n], mask)))
        else:
            frames.append((first, data[start : start + n]))
        data = data[start + n :]
    return frames


# -- running both ----------------------------------------------------------------------------------


def open_websocket(
    role: Role, config: WebSocketConfig, reference: bool, first: bytes
) -> tuple[WebSocket, list[WebSocketEvent]]:
    """A WebSocket that completed its handshake, and the events ``first`` caused: ``first``
    arrives in the same read as the end of the handshake."""
    if role is Role.SERVER:
        ws = WebSocket(Role.SERVER, config, _use_wsproto_frames=reference)
        ws.receive_data(REQUEST + first)
        assert [type(e) for e in ws.events_received()] == [HandshakeRequest]
        ws.accept()
        ws.data_to_send()
        return ws, ws.events_received()
    ws = WebSocket.client(host="example.com", config=config, _use_wsproto_frames=reference)
    server = WebSocket(Role.SERVER, config)
    server.receive_data(b"".join(ws.data_to_send()))
    server.events_received()
    server.accept()
    ws.receive_data(b"".join(server.data_to_send()) + first)
    events = ws.events_received()
    assert isinstance(events[0], HandshakeAccepted)
    return ws, events[1:]


def open_ws(role: Role, config: WebSocketConfig | None = None) -> WebSocket:
    ws, events = open_websocket(role, config or WebSocketConfig(), False, b"")
    assert events == []
    return ws


def observed(ws: WebSocket, events_received: list[WebSocketEvent] | None = None) -> tuple[Any, ...]:
    """What a user sees after a call: events (causes compared by type, code and message), the
    state, and the frames to send."""
    if events_received is None:
        events_received = ws.events_received()
    events: list[Any] = []
    for event in events_received:
        if isinstance(event, Closed) and event.cause is not None:
            cause = (type(event.cause), event.cause.code, str(event.cause))
            events.append((event.code, event.reason, event.initiated_locally, event.clean, cause))
        else:
            events.append(event)
    sent = b"".join(ws.data_to_send())
    return events, ws.state, ws.transport_should_close, parse(sent), sent[:1]


def run(
    role: Role,
    config: WebSocketConfig,
    reference: bool,
    stream: bytes,
    cuts: Sequence[int],
    close_after: int | None,
    with_handshake: int,
) -> list[tuple[Any, ...]]:
    """Feed ``stream`` in pieces (the first ``with_handshake`` bytes with the handshake); call
    close() after read number ``close_after``; end with end of stream."""
    points = sorted({0, with_handshake, *cuts, len(stream)})
    points = [p for p in points if p >= with_handshake]
    ws, first_events = open_websocket(role, config, reference, stream[:with_handshake])
    trace = [observed(ws, first_events)]
    for index, (start, end) in enumerate(itertools.pairwise(points)):
        ws.receive_data(stream[start:end])
        trace.append(observed(ws))
        if index == close_after and ws.state is WebSocketState.OPEN:
            ws.close(4000, "closing")
            trace.append(observed(ws))
    ws.receive_data(None)
    trace.append(observed(ws))
    return trace


def assert_same(
    role: Role,
    config: WebSocketConfig,
    stream: bytes,
    cuts: Sequence[int] = (),
    close_after: int | None = None,
    with_handshake: int = 0,
) -> list[tuple[Any, ...]]:
    ours = run(role, config, False, stream, cuts, close_after, with_handshake)
    reference = run(role, config, True, stream, cuts, close_after, with_handshake)
    if ours != reference:
        assert_refused_early(ours, reference)
    return ours


def messages(trace: list[tuple[Any, ...]]) -> list[Any]:
    return [e for step in trace for e in step[0] if isinstance(e, MessageReceived)]


def assert_refused_early(ours: list[tuple[Any, ...]], reference: list[tuple[Any, ...]]) -> None:
    """The one way we differ from wsproto on purpose: a data frame whose announced length
    takes the message past ``max_message_size`` fails with 1009 when its head arrives, where
    wsproto waits until that many bytes came (or fails for something later in the payload, or
    sees the stream end first). Up to that read the traces are the same, and the messages
    delivered are the same: none of that frame's message, nothing after it."""
    step = next(i for i, (a, b) in enumerate(zip(ours, reference, strict=True)) if a != b)
    assert ours[:step] == reference[:step]
    # The failure shows at that step as our close frame going out, or (when the handshake's
    # bytes took it along) as the Closed event.
    codes = [e[0] if isinstance(e, tuple) else e.code  # a Closed, as observed() shows it
             for e in ours[step][0] if isinstance(e, tuple | Closed)]
    codes += [struct.unpack("!H", payload[:2])[0]
              for first, payload in ours[step][3] if first & 0x0F == 0x8]
    assert codes, (ours[step], reference[step])
    assert set(codes) == {1009}, (ours[step], reference[step])
    assert messages(ours) == messages(reference)


# -- strategies ------------------------------------------------------------------------------------


@st.composite
def text_payloads(draw: st.DrawFn) -> bytes:
    data = draw(st.text(max_size=40)).encode()
    if draw(st.integers(0, 4)) == 2:  # sometimes invalid UTF-8, anywhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(BAD_UTF8)) + data[at:]
    return data


def close_payloads() -> st.SearchStrategy[bytes]:
    coded = st.builds(
        lambda code, reason: struct.pack("!H", code) + reason,
        st.sampled_from(CLOSE_CODES),
        st.one_of(st.just(b""), text_payloads()).filter(lambda r: len(r) <= 123),
    )
    return st.one_of(st.just(b""), coded, coded, coded, st.binary(min_size=1, max_size=1))


@st.composite
def streams(draw: st.DrawFn, masked: bool) -> bytes:
    """Messages fragmented at random (control frames between fragments), control frames, and
    now and then a faulty frame: wrong masking, RSV bits, non-minimal or huge lengths, unknown
    opcodes, fragmented or oversized control frames."""

    def rarely(n: int) -> bool:
        # About 1 in n+1 (hypothesis favours the ends of a range, so not 0 or n).
        return draw(st.integers(0, n)) == n // 2

    def mask() -> bytes | None:
        wrong = rarely(80)
        return draw(st.binary(min_size=4, max_size=4)) if masked != wrong else None

    def control() -> bytes:
        opcode = draw(st.sampled_from([PING, PONG]))
        return build(opcode, draw(st.binary(max_size=20)), mask=mask())

    out = b""
    kinds = ["binary"] * 4 + ["text"] * 3 + ["control"] * 2 + ["close", "faulty"]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind in ("binary", "text"):
            if kind == "text":
                payload = draw(text_payloads())
            elif rarely(40):
                payload = bytes(draw(st.sampled_from([126, 65535, 65536, 70000])))
            else:
                payload = draw(st.binary(max_size=150))
            splits = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
            pieces = [payload[a:b] for a, b in zip([0, *splits], [*splits, len(payload)],
                                                   strict=True)]
            for i, piece in enumerate(pieces):
                opcode = (TEXT if kind == "text" else BINARY) if i == 0 else CONT
                if rarely(50):
                    opcode = draw(st.sampled_from([CONT, TEXT, BINARY]))  # breaks §5.4
                out += build(opcode, piece, fin=i == len(pieces) - 1, mask=mask())
                if rarely(5):
                    out += control()
        elif kind == "control":
            out += control()
        elif kind == "close":
            out += build(CLOSE, draw(close_payloads()), mask=mask())
        else:
            payload = draw(st.binary(max_size=130))
            out += build(
                draw(st.integers(0, 15)),
                payload,
                fin=draw(st.booleans()),
                rsv=draw(st.integers(0, 7)),
                mask=mask(),
                form=draw(st.sampled_from([None, 16, 64])) if len(payload) < 126 else None,
                msb=draw(st.integers(0, 3)) == 0,
            )
    if rarely(5) and out:  # mutate a few bytes
        mutable = bytearray(out)
        for _ in range(draw(st.integers(1, 3))):
            mutable[draw(st.integers(0, len(mutable) - 1))] = draw(st.integers(0, 255))
        out = bytes(mutable)
    return out


@st.composite
def scenarios(draw: st.DrawFn, stream: st.SearchStrategy[bytes] | None = None) -> dict[str, Any]:
    role = draw(st.sampled_from([Role.SERVER, Role.CLIENT]))
    data = draw(stream if stream is not None else streams(masked=role is Role.SERVER))
    reads = st.integers(0, len(data))
    return {
        "role": role,
        "config": draw(st.sampled_from(CONFIGS)),
        "stream": data,
        "cuts": draw(st.one_of(st.lists(reads, max_size=12), st.just(range(len(data))))),
        "close_after": draw(st.one_of(st.none(), st.integers(0, 6))),
        # A server holds at most max_handshake_size bytes that come before accept().
        "with_handshake": draw(st.one_of(st.just(0), st.integers(0, min(len(data), 1000)))),
    }


# -- differential tests ----------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_frame_sequences_behave_as_with_wsproto(scenario: dict[str, Any]) -> None:
    assert_same(**scenario)


@settings(max_examples=300, deadline=None)
@given(scenarios(st.binary(max_size=300)))
def test_arbitrary_bytes_behave_as_with_wsproto(scenario: dict[str, Any]) -> None:
    assert_same(**scenario)


@settings(max_examples=200, deadline=None)
@given(scenarios(st.binary(max_size=40).map(lambda tail: build(BINARY, b"abc", mask=b"1234")
                                            + build(TEXT, "é".encode(), mask=b"5678") + tail)))
def test_valid_prefix_then_garbage_behaves_as_with_wsproto(scenario: dict[str, Any]) -> None:
    assert_same(**scenario)


MASK = b"\x37\xfa\x21\x3d"


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(build(BINARY, b"x" * 10, mask=MASK, form=16), id="non-minimal-16"),
        pytest.param(build(BINARY, b"x" * 200, mask=MASK, form=64), id="non-minimal-64"),
        pytest.param(build(BINARY, bytes(70000), mask=MASK, msb=True), id="length-msb"),
        pytest.param(build(PING, b"x" * 126, mask=MASK), id="control-126"),
        pytest.param(build(PING, b"x", fin=False, mask=MASK), id="control-fragmented"),
        pytest.param(build(0x3, mask=MASK), id="opcode-3"),
        pytest.param(build(0xF, mask=MASK), id="opcode-f"),
        pytest.param(build(BINARY, b"x", rsv=2, mask=MASK), id="rsv2"),
        pytest.param(build(BINARY, b"x"), id="unmasked"),
        pytest.param(build(CONT, b"x", mask=MASK), id="orphan-continuation"),
        pytest.param(build(CONT, b"", mask=MASK), id="orphan-empty-continuation"),
        pytest.param(
            build(TEXT, b"a", fin=False, mask=MASK) + build(BINARY, b"b", mask=MASK),
            id="data-frame-inside-message",
        ),
        pytest.param(build(TEXT, b"a\xff", mask=MASK), id="bad-utf8"),
        pytest.param(
            build(TEXT, "é".encode()[:1], fin=False, mask=MASK) + build(CONT, b"", mask=MASK),
            id="truncated-utf8",
        ),
        pytest.param(build(TEXT, b"\xf4\x90" + b"a" * 50, mask=MASK), id="utf8-fails-fast"),
        *(
            pytest.param(build(CLOSE, struct.pack("!H", code), mask=MASK), id=f"close-{code}")
            for code in CLOSE_CODES
        ),
        pytest.param(build(CLOSE, b"\x03", mask=MASK), id="close-1-byte"),
        pytest.param(build(CLOSE, b"\x03\xe8\xff", mask=MASK), id="close-bad-reason"),
        pytest.param(
            build(TEXT, ("é" * 51).encode()[:101], fin=False, mask=MASK)
            + build(CONT, b"\xa9", mask=MASK),
            id="too-big-text-counts-whole-characters",
        ),
        pytest.param(build(BINARY, bytes(101), mask=MASK), id="too-big"),
        pytest.param(
            build(BINARY, bytes(60), fin=False, mask=MASK) + build(CONT, bytes(41), mask=MASK),
            id="too-big-fragmented",
        ),
        pytest.param(build(BINARY, bytes(1 << 20), mask=MASK)[:200], id="too-big-partial"),
    ],
)
@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_each_rfc_check_behaves_as_with_wsproto(stream: bytes, byte_by_byte: bool) -> None:
    config = WebSocketConfig.plain(max_message_size=100)
    cuts = range(len(stream)) if byte_by_byte else ()
    trace = assert_same(Role.SERVER, config, stream, cuts)
    # Each of these streams ends the connection before the end of the stream.
    assert trace[-2][1] is WebSocketState.CLOSED


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_scripted_exchange_with_close_behaves_as_with_wsproto(role: Role) -> None:
    mask = MASK if role is Role.SERVER else None
    text = "héllo wörld ✓".encode()
    stream = (
        build(BINARY, bytes(range(200)), mask=mask)
        + build(TEXT, text[:2], fin=False, mask=mask)
        + build(PING, b"mid", mask=mask)
        + build(CONT, text[2:9], fin=False, mask=mask)
        + build(CONT, text[9:], mask=mask)
        + build(PONG, b"", mask=mask)
        + build(BINARY, bytes(70000), mask=mask)
        + build(CLOSE, struct.pack("!H", 4001) + b"bye", mask=mask)
    )
    config = WebSocketConfig.plain()
    for close_after in (None, 0, 3):
        for cuts in ((), range(len(stream)), range(0, len(stream), 997)):
            trace = assert_same(role, config, stream, cuts, close_after)
            events = [e for events, *_ in trace for e in events]
            assert isinstance(events[-1], Closed)
            assert events[-1].clean


# -- messages before the end in one read -----------------------------------------------------------

ENDS = {
    "rsv": (build(BINARY, b"x", rsv=2, mask=MASK), 1002),
    "opcode-5": (build(0x5, b"x", mask=MASK), 1002),
    "orphan-continuation": (build(CONT, b"x", mask=MASK), 1002),
    "close-4001": (build(CLOSE, struct.pack("!H", 4001) + b"bye", mask=MASK), 4001),
}


@pytest.mark.parametrize("end", sorted(ENDS))
@pytest.mark.parametrize("reference", [False, True], ids=["framer", "wsproto"])
@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_answer_to_a_message_goes_out_before_the_end_in_the_same_read(
    role: Role, reference: bool, end: str
) -> None:
    """A message and a frame that ends the connection in one read: the message is delivered
    with the state still OPEN; what the application sends in answer goes out before the close
    frame; Closed comes with the next call (here data_to_send(), then events_received())."""
    ws, events = open_websocket(role, WebSocketConfig.plain(), reference, b"")
    assert events == []
    mask = MASK if role is Role.SERVER else None
    tail, code = ENDS[end]
    if mask is None:  # a server's frames are not masked
        tail = build(tail[0] & 0x0F, xor(tail[6:], MASK), rsv=tail[0] >> 4 & 7)
    ws.receive_data(build(BINARY, b"hello", mask=mask) + build(TEXT, b"two", mask=mask) + tail)
    assert ws.events_received() == [MessageReceived(data=b"hello"), MessageReceived(data="two")]
    assert ws.state is WebSocketState.OPEN
    assert not ws.transport_should_close
    ws.send_message(b"hello")
    ws.send_message("two")
    sent = parse(b"".join(ws.data_to_send()))
    assert sent[:2] == [(0x82, b"hello"), (0x81, b"two")]
    assert [first for first, _ in sent[2:]] == [0x88]
    assert struct.unpack("!H", sent[2][1][:2]) == (code,)
    (closed,) = ws.events_received()
    assert isinstance(closed, Closed)
    assert closed.code == code
    assert closed.clean is (end == "close-4001")
    assert ws.state.value == "closed"  # (not "is": mypy narrowed ws.state to OPEN above)
    assert ws.transport_should_close


@pytest.mark.parametrize("reference", [False, True], ids=["framer", "wsproto"])
@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_close_while_an_end_is_held_acts_as_if_it_came_later(role: Role, reference: bool) -> None:
    mask = MASK if role is Role.SERVER else None
    stream = build(BINARY, b"hi", mask=mask) + build(CLOSE, struct.pack("!H", 4001), mask=mask)
    for cuts in ((), (len(stream) - 4,)):
        ws, _ = open_websocket(role, WebSocketConfig.plain(), reference, b"")
        points = [0, *cuts, len(stream)]
        events: list[WebSocketEvent] = []
        for start, stop in itertools.pairwise(points):
            ws.receive_data(stream[start:stop])
            events += ws.events_received()
            if ws.state is WebSocketState.OPEN:
                ws.close(4000, "done")
        events += ws.events_received()
        assert events == [
            MessageReceived(data=b"hi"),
            Closed(code=4001, reason="", initiated_locally=True, clean=True),
        ]
        assert [first for first, _ in parse(b"".join(ws.data_to_send()))] == [0x88]


# -- our framer on its own -------------------------------------------------------------------------


def test_large_message_fed_byte_by_byte_is_linear_and_whole() -> None:
    """A 200 KB frame arriving one byte per read: every byte is handled once (nothing is
    re-buffered), and the message comes out whole."""
    config = WebSocketConfig.plain()
    payload = bytes(i % 253 for i in range(200_000))
    stream = build(BINARY, payload, mask=MASK) + build(CLOSE, mask=MASK)
    ws = open_ws(Role.SERVER, config)
    for i in range(len(stream)):
        ws.receive_data(stream[i : i + 1])
    events = ws.events_received()
    assert events[0] == MessageReceived(data=payload)
    assert isinstance(events[1], Closed)


def test_receive_path_does_not_use_wsproto_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an extension, wsproto never sees a frame (it is the slow part)."""

    def refuse(self: object, data: bytes | None) -> None:
        assert not data, "wsproto parsed a frame"

    monkeypatch.setattr(wsproto.connection.Connection, "receive_data", refuse)
    for role in (Role.SERVER, Role.CLIENT):
        mask = MASK if role is Role.SERVER else None
        ws = open_ws(role)
        ws.receive_data(build(BINARY, b"hi", mask=mask) + build(PING, b"p", mask=mask))
        assert ws.events_received() == [
            MessageReceived(data=b"hi"),
            PingReceived(payload=b"p"),
        ]
        assert parse(b"".join(ws.data_to_send())) == [(0x8A, b"p")]
        ws.receive_data(build(PONG, b"q", mask=mask) + build(CLOSE, b"\x03\xe8", mask=mask))
        events = ws.events_received()
        assert events[0] == PongReceived(payload=b"q")
        assert events[1] == Closed(code=1000, reason="", initiated_locally=False, clean=True)
        assert parse(b"".join(ws.data_to_send())) == [(0x88, b"\x03\xe8")]


def test_bytearray_and_memoryview_input() -> None:
    data = build(BINARY, b"abc", mask=MASK)
    for chunk in (bytearray(data), memoryview(data)):
        ws = open_ws(Role.SERVER)
        ws.receive_data(chunk)
        [event] = ws.events_received()
        assert event == MessageReceived(data=b"abc")
        assert isinstance(event, MessageReceived)
        assert type(event.data) is bytes


def test_server_close_and_ping_frames_are_written_by_hand() -> None:
    ws = open_ws(Role.SERVER)
    ws.send_ping(b"hb")
    ws.close(1001, "bye")
    assert b"".join(ws.data_to_send()) == b"\x89\x02hb\x88\x05\x03\xe9bye"
    ws.receive_data(build(CLOSE, b"", mask=MASK))
    assert ws.events_received() == [
        Closed(code=1005, reason="", initiated_locally=True, clean=True)
    ]


def test_unmask_matches_the_definition() -> None:
    for size in [*range(1100), 4096, 5001]:
        payload = bytes((i * 7 + 3) % 256 for i in range(size))
        for mask in (MASK, b"\x00\x00\x00\x00", b"\xff\x01\x80\x7f"):
            unmasked = _framer.unmask(payload, int.from_bytes(mask, "little"))
            assert unmasked == xor(payload, mask)
            assert type(unmasked) is bytes


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_server_binary_frame(size: int) -> None:
    payload = bytes(size)
    assert _framer.server_binary_frame(payload) == build(BINARY, payload)
    assert _framer.server_binary_frame(memoryview(payload)) == build(BINARY, payload)


def test_failures_are_remote_protocol_errors_with_wsproto_words() -> None:
    ws = open_ws(Role.CLIENT)
    ws.receive_data(build(BINARY, b"x", mask=MASK))
    [closed] = ws.events_received()
    assert isinstance(closed, Closed)
    assert isinstance(closed.cause, RemoteProtocolError)
    assert str(closed.cause) == "client received unexpected masked frame"
    assert closed.code == 1002



@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=3000), mask=st.integers(0, 0xFFFFFFFF),
       kind=st.sampled_from([bytes, bytearray, memoryview]))
def test_unmask_in_use_equals_the_reference(payload: bytes, mask: int, kind: type) -> None:
    """The unmasking in use (the C helper in a compiled build) is byte for byte the pure-Python
    reference, for every length (the C loop's 8-byte words and its tail) and key."""
    assert _framer.unmask(kind(payload), mask) == _framer.unmask_py(payload, mask)



@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=3000), start=st.integers(-2, 3002), stop=st.integers(-2, 3002),
       mask=st.integers(0, 0xFFFFFFFF))
def test_unmask_slice_in_use_equals_the_reference(
    data: bytes, start: int, stop: int, mask: int
) -> None:
    """The frame parser unmasks a payload straight out of the read: the helper in use (C in a
    compiled build) is ``unmask_py(data[start:stop], mask)`` for every range inside the data,
    and refuses one outside it with IndexError, as its pure-Python twin does."""
    if 0 <= start <= stop <= len(data):
        expected = _framer.unmask_py(data[start:stop], mask)
        assert _framer.unmask_slice(data, start, stop, mask) == expected
        assert _framer.unmask_slice_py(data, start, stop, mask) == expected
    else:
        for unmask_slice in (_framer.unmask_slice, _framer.unmask_slice_py):
            with pytest.raises(IndexError):
                unmask_slice(data, start, stop, mask)
