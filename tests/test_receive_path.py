"""The server's receive path: a read's run of client ``Data`` frames read in one call and handed
through the WebSocket, connection and hub layers as one list, held equal to the general path.

Once a server connection is OPEN, its frame parser reads the run of whole, masked binary frames
of a read that carry client ``Data`` in one call (``codec.read_client_frames``: the C helper when
compiled, its pure-Python twin otherwise), and the list of their fields goes up as one item; the
hub reads each message's fields from it. The reference is the same hub with its connection's fast
path off (every message a ``MessageReceived``, decoded by ``codec.decode``). Both are fed the same
bytes, split the same way, at the same times: the application's events, every byte written back,
the close, and the counters must be the same — through sequence gaps, duplicates, rate limits,
``max_unacked``, control frames and envelopes between data, partial frames, fragments, oversize
and malformed frames, and the peer's close after data in the same read.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma_core import codec
from sigma_core.codec._readers import (
    read_client_frame_py,
    read_client_frames,
    read_client_frames_py,
)
from sigma_core.connection import (
    ClientConnection,
    ConnectionConfig,
    ServerConnection,
)
from sigma_core.entropy import SeededEntropy
from sigma_core.hub import ClientDisconnected, ClientMessage, Hub, HubConfig
from sigma_core.messages import (
    Ack,
    Data,
    Ping,
    StreamPosition,
    Subscribe,
    TopicPosition,
)
from sigma_core.ratelimit import RateLimit
from sigma_core.websocket import WebSocketConfig

_MASK = b"\x37\xfa\x21\x3d"
_CONN = ConnectionConfig(heartbeat_interval=5.0, heartbeat_timeout=12.0, handshake_timeout=3.0,
                         close_timeout=2.0, websocket=WebSocketConfig(max_message_size=2048))


def _frame(payload: bytes, *, first: int = 0x82, masked: bool = True, wide: int = 0,
           mask: bytes = _MASK) -> bytes:
    """A client frame built by hand (``wide`` forces a 16-bit (2) or 64-bit (8) length)."""
    n = len(payload)
    bit = 0x80 if masked else 0
    if wide == 8 or n > 0xFFFF:
        head = bytes((first, bit | 127)) + n.to_bytes(8, "big")
    elif wide == 2 or n > 125:
        head = bytes((first, bit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, bit | n))
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def _opening() -> bytes:
    """A client's upgrade request and Hello (a fresh session), as the server receives them."""
    client = ClientConnection(host="example.test", path="/ws", config=_CONN, now=0.0)
    server = ServerConnection(_CONN, now=0.0)
    wire = b"".join(client.data_to_send())
    server.receive_data(wire, 0.0)
    server.accept_handshake()
    client.receive_data(b"".join(server.data_to_send()), 0.0)
    return wire + b"".join(client.data_to_send())


_OPENING = _opening()


def _describe(event: object) -> object:
    if isinstance(event, ClientMessage):
        return ("message", event.seq, event.topic, bytes(event.payload), event.timestamp_ms)
    if isinstance(event, ClientDisconnected):
        return ("disconnected", event.code, event.reason, str(event.cause))
    return type(event).__name__


def run_hub(chunks: list[bytes], config: HubConfig, *, fast: bool) -> tuple[Any, ...]:
    """Feed ``chunks`` to one connection of a fresh hub, 10 ms apart; what it did."""
    hub = Hub(config, entropy=SeededEntropy(7), now=0.0)
    cid = hub.open_connection(0.0, "127.0.0.1")
    conn = hub._conns[cid].conn
    if not fast:
        conn._fast_data = False
    events: list[object] = []
    written: list[tuple[bytes, int]] = []
    now = 0.0
    for chunk in chunks:
        now += 0.01
        hub.receive_data(cid, chunk, now)
        events += [_describe(e) for e in hub.events_received()]
        for _, out, action in hub.flush(now):
            written.append((b"".join(out), int(action)))
        events += [_describe(e) for e in hub.events_received()]
    stats = hub.stats(now)
    return (events, written, conn.state, conn.bytes_received, stats.messages_received,
            stats.duplicates_dropped, stats.rate_limited_disconnects, stats.bytes_received)


# -- what a client sends once open

def _data(seq: int, payload: bytes, topic: str = "", timestamp_ms: int = 0) -> bytes:
    return _frame(codec.encode_data(seq=seq, topic=topic, payload=payload,
                                    timestamp_ms=timestamp_ms))


_INBOX_ACK = _frame(codec.encode(Ack(positions=(
    TopicPosition(topic="$inbox", position=StreamPosition(epoch=1, offset=3)),))))
_OTHERS = [
    _INBOX_ACK,
    _frame(codec.encode(Ack(seq=2))),
    _frame(codec.encode(Ping(id=1, timestamp_ms=2))),
    _frame(codec.encode(Subscribe(topic="room", request_id=3))),
    _frame(codec.encode(Data(seq=1, topic="t", payload=b"x", position=StreamPosition(1, 2)))),
    _frame(b"hi", first=0x89),  # a WebSocket ping
    _frame(b"", first=0x8A),  # a pong
    _frame(b"\x03\xe8", first=0x88),  # the peer's close
    _frame(codec.encode_data(seq=1, payload=b"abc")[:-5]),  # a truncated Data: 4000
    _frame(codec.encode_data(seq=1, payload=b"q"), wide=2),  # non-minimal length: 1002
    _frame(codec.encode_data(seq=1, payload=b"q"), masked=False),  # unmasked: 1002
    _frame(b"x" * 3000),  # over max_message_size: 1009
    _frame(b"frag", first=0x02) + _frame(b"ment", first=0x80),  # a fragmented binary message
    _frame(b"text", first=0x81),  # text: 1003
]

# A step: the next Data in order (most often), one repeated (a duplicate), one skipped (a gap),
# or something else.
_steps = st.lists(st.one_of(
    st.tuples(st.just("next"), st.integers(0, 300), st.sampled_from(["", "t", "é/room"]),
              st.sampled_from([0, 1, 2**64 - 1])),
    st.tuples(st.just("next"), st.integers(0, 40), st.just(""), st.just(0)),
    st.tuples(st.sampled_from(["again", "skip", "zero"]), st.just(0), st.just(""), st.just(0)),
    st.tuples(st.just("other"), st.integers(0, len(_OTHERS) - 1), st.just(""), st.just(0)),
), min_size=1, max_size=40)


def _wire(steps: list[tuple[str, int, str, int]]) -> bytes:
    seq = 0
    frames = []
    for kind, n, topic, ts in steps:
        if kind == "next":
            seq += 1
            frames.append(_data(seq, bytes([seq & 0xFF]) * n, topic, ts))
        elif kind == "again":
            frames.append(_data(max(seq, 1), b"dup"))
        elif kind == "skip":
            frames.append(_data(seq + 2, b"gap"))
        elif kind == "zero":
            frames.append(_data(0, b"zero"))
        else:
            frames.append(_OTHERS[n])
    return b"".join(frames)


def _config(**options: Any) -> HubConfig:
    # (A Welcome must fit in max_message_size: few, short topics.)
    return HubConfig(connection=_CONN, max_topics_per_session=2, max_topic_length=32, **options)


_CONFIGS = {
    "defaults": _config(),
    "rate": _config(rate_limit=RateLimit(messages_per_second=400, burst=0.02)),
    "bytes": _config(rate_limit=RateLimit(bytes_per_second=40_000, burst=0.02)),
    "unacked": _config(max_unacked=6, ack_every=4),
}


def _chunks(wire: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({c % len(wire) for c in cuts} - {0}), len(wire)]
    return [wire[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=150, deadline=None)
@given(steps=_steps, cuts=st.lists(st.integers(1, 10**6), max_size=8),
       config=st.sampled_from(sorted(_CONFIGS)))
def test_a_run_of_data_read_in_one_call_equals_the_general_path(
        steps: list[tuple[str, int, str, int]], cuts: list[int], config: str) -> None:
    wire = _OPENING + _wire(steps)
    hub_config = _CONFIGS[config]
    # Whole reads after the opening (the fast path's runs are longest), then split anywhere.
    whole = [_OPENING, wire[len(_OPENING):]]
    assert run_hub(whole, hub_config, fast=True) == run_hub(whole, hub_config, fast=False)
    chunks = _chunks(wire, cuts)
    assert run_hub(chunks, hub_config, fast=True) == run_hub(chunks, hub_config, fast=False)


def test_one_read_of_many_messages_goes_up_as_one_list() -> None:
    # What a user sees is the messages, in order; what the layers carry is one list for the run
    # (the point of the fast path), and the run stops at the first frame it cannot read.
    body = b"".join(_data(seq, b"m%d" % seq) for seq in range(1, 6))
    wire = _OPENING + body + _INBOX_ACK + _data(6, b"m6")
    hub = Hub(_config(), entropy=SeededEntropy(7), now=0.0)
    cid = hub.open_connection(0.0, "127.0.0.1")
    hub.receive_data(cid, _OPENING, 0.0)
    hub.events_received()
    conn = hub._conns[cid].conn
    ws = conn._ws
    ws.receive_data(wire[len(_OPENING):])
    items: list[object] = list(ws.events_received())
    assert [type(item).__name__ for item in items] == ["list", "MessageReceived", "list"]
    assert items[0] == [(seq, "", b"m%d" % seq, 0) for seq in range(1, 6)]
    assert items[2] == [(6, "", b"m6", 0)]
    # The same bytes through the hub: six messages in order, the Ack between them handled.
    hub.receive_data(cid, body + _INBOX_ACK + _data(6, b"m6"), 1.0)
    messages = [e for e in hub.events_received() if isinstance(e, ClientMessage)]
    assert [(m.seq, m.payload) for m in messages] == [(s, b"m%d" % s) for s in range(1, 7)]


def test_the_peers_close_after_a_run_ends_the_connection_as_on_the_general_path() -> None:
    # A close frame (or a frame that fails the connection) in the same read as a run of
    # messages: the messages reach the application, then the connection ends with the same
    # code, the same bytes written — the WebSocket layer holds the end behind the run (a list)
    # as it does behind single messages.
    for end in (_frame(b"\x03\xe8", first=0x88), _frame(b"bad", first=0x83)):
        wire = _OPENING + _data(1, b"a") + _data(2, b"b") + end
        chunks = [_OPENING, wire[len(_OPENING):]]
        fast = run_hub(chunks, _config(), fast=True)
        assert fast == run_hub(chunks, _config(), fast=False)
        events = fast[0]
        assert ("message", 1, "", b"a", 0) in events
        assert ("message", 2, "", b"b", 0) in events
        assert events[-1][0] == "disconnected"


# -- the C helper and its twin

_any_frames = st.lists(st.one_of(
    st.builds(lambda seq, n, topic, key: _frame(codec.encode_data(
        seq=seq, topic=topic, payload=b"p" * n), mask=key),
        st.integers(0, 2**64 - 1), st.integers(0, 300), st.sampled_from(["", "t", "é" * 200]),
        st.binary(min_size=4, max_size=4)),
    st.sampled_from(_OTHERS),
), max_size=8)


@settings(max_examples=300, deadline=None)
@given(frames=_any_frames, lead=st.binary(max_size=3), cut=st.integers(0, 10**6),
       limit=st.sampled_from([0, 125, 126, 300, 2048, 65536, 2**40]))
def test_read_client_frames_equals_its_twin(frames: list[bytes], lead: bytes, cut: int,
                                            limit: int) -> None:
    data = lead + b"".join(frames)
    data = data[:cut % (len(data) + 1)] if cut % 3 == 0 else data  # cut short, sometimes
    pos = len(lead) if len(lead) <= len(data) else 0
    got: list[object] = []
    want: list[object] = []
    assert read_client_frames(data, pos, limit, got) == read_client_frames_py(data, pos, limit,
                                                                              want)
    assert got == want
    if want:  # one list, of DataFields tuples
        (batch,) = want
        assert isinstance(batch, list)
        assert all(type(f) is tuple and len(f) == 4 for f in batch)


def test_read_client_frames_refuses_a_position_outside_the_data_and_a_non_list() -> None:
    for reader in (read_client_frames, read_client_frames_py):
        with pytest.raises(IndexError):
            reader(b"\x82\x80", 3, 100, [])
        with pytest.raises(IndexError):
            reader(b"\x82\x80", -1, 100, [])
        with pytest.raises(TypeError):
            reader(b"", 0, 100, ())  # type: ignore[arg-type]


def test_the_twin_reads_each_frame_as_the_per_frame_reader_does() -> None:
    frames = [_data(1, b"a" * 200, "t", 5), _data(2, b"x"), _data(3, b"z" * 70000)]
    data = b"".join(frames)
    items: list[object] = []
    assert read_client_frames_py(data, 0, 1 << 20, items) == len(data)
    expected = []
    pos = 0
    for f in frames:
        head = 2 if f[1] & 0x7F < 126 else 4 if f[1] & 0x7F == 126 else 10
        expected.append(read_client_frame_py(data, pos + head + 4, pos + len(f)))
        pos += len(f)
    assert items == [expected]
