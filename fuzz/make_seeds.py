"""Write the committed seed corpus, ``fuzz/corpus/<target>/``, from real protocol exchanges.

Usage: ``python fuzz/make_seeds.py`` (from the repository root; rewrites every seed file).

The seeds are the byte streams of scripted sessions between the real client and server classes
(recorded on the wire, both directions), wrapped in each target's input format
(:class:`fuzz.targets.ChunkedInput`, :class:`fuzz.targets.ScriptBuilder`), plus a few malformed
ones. WebSocket masking keys and handshake nonces come from ``os.urandom`` inside wsproto; it is
replaced by a seeded generator while recording, so the files are the same on every run.
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import targets as t  # noqa: E402
from sigma_core import codec  # noqa: E402
from sigma_core._framer import server_binary_frame  # noqa: E402
from sigma_core.connection import (  # noqa: E402
    ClientConnection,
    ConnectionConfig,
    ConnectionState,
    HandshakeRequest,
    HelloReceived,
    ServerConnection,
)
from sigma_core.entropy import SeededEntropy  # noqa: E402
from sigma_core.errors import CloseCode, ErrorCode  # noqa: E402
from sigma_core.hub import Hub  # noqa: E402
from sigma_core.messages import (  # noqa: E402
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
    StreamPosition,
    Subscribe,
    Subscribed,
    TopicPosition,
    TopicRecovery,
    Unsubscribe,
    Unsubscribed,
    Welcome,
)

CORPUS = ROOT / "fuzz" / "corpus"


@contextmanager
def deterministic_urandom() -> Iterator[None]:
    counter = 0

    def urandom(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        return out[:n]

    with mock.patch("os.urandom", urandom):
        yield


# ----------------------------------------------------------------------------- frames


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked client frame (fixed masking key)."""
    key = b"\x11\x22\x33\x44"
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    head += bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    return head + payload


def envelope_frame(body: Body) -> bytes:
    return server_binary_frame(codec.encode(body))


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


# ----------------------------------------------------------------------------- exchanges

POS = StreamPosition(7, 3)
SERVER_BODIES: tuple[Body, ...] = (
    Data(topic="room", position=StreamPosition(7, 4), timestamp_ms=1000, payload=b"hello"),
    Ack(seq=2),
    Subscribed(request_id=1, recovery=TopicRecovery(topic="news", status=RecoveryStatus.FRESH,
                                                    position=StreamPosition(9, 0))),
    Unsubscribed(request_id=2, topic="news"),
    Presence(topic="room", session_id="s2", action=PresenceAction.JOIN, metadata={"a": "b"}),
    Error(code=ErrorCode.INVALID_TOPIC, message="bad topic", request_id=3, retryable=True),
)
CLIENT_BODIES: tuple[Body, ...] = (
    Data(topic="room", seq=1, timestamp_ms=5, payload=b"one"),
    Data(topic="", seq=2, payload=b"two" * 20),
    Subscribe(topic="news", request_id=1),
    Subscribe(topic="room", request_id=2, position=POS),
    Unsubscribe(topic="news", request_id=3),
    Ack(seq=1, positions=(TopicPosition(topic="room", position=POS),)),
    Error(code=ErrorCode.UNKNOWN, message="client says"),
)


class Exchange:
    """A real client and server connection back to back; both directions recorded."""

    def __init__(self, config: ConnectionConfig, *, hello: Hello = t._HELLO,
                 extra_headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.now = 0.0
        self.client = ClientConnection(host="example.test", path="/ws", hello=hello,
                                       config=config, extra_headers=extra_headers, now=0.0)
        self.server = ServerConnection(config, now=0.0)
        self.c2s = bytearray()
        self.s2c = bytearray()
        self.response_101 = b""
        self.pump()
        #: Where the upgrade request ends and where the Hello frame ends, in ``c2s``.
        self.request_end = bytes(self.c2s).index(b"\r\n\r\n") + 4
        self.hello_end = len(self.c2s)
        #: Where the close frames start (set by :func:`full_exchange`).
        self.client_close_at = self.server_close_at = 0

    def pump(self) -> None:
        for _ in range(50):
            moved = False
            out = b"".join(self.client.data_to_send())
            if out:
                moved = True
                self.c2s += out
                self.server.receive_data(out, self.now)
            for event in self.server.events_received():
                if isinstance(event, HandshakeRequest):
                    self.server.accept_handshake()
                    self.response_101 = b"".join(self.server.data_to_send())
                    self.client.receive_data(self.response_101, self.now)
                    moved = True
                elif isinstance(event, HelloReceived):
                    self.server.welcome(t._WELCOME, self.now)
                    moved = True
            out = b"".join(self.server.data_to_send())
            if out:
                moved = True
                self.s2c += out
                self.client.receive_data(out, self.now)
            self.client.events_received()
            if not moved:
                return
        raise AssertionError("exchange did not settle")

    def tick(self, now: float) -> None:
        self.now = now
        self.client.handle_timer(now)
        self.server.handle_timer(now)
        self.pump()


def full_exchange(config: ConnectionConfig) -> Exchange:
    """Handshake, Hello/Welcome, data both ways, heartbeats, client-initiated close."""
    ex = Exchange(config)
    assert ex.client.state is ConnectionState.OPEN, ex.client.state
    for body in CLIENT_BODIES:
        ex.client.send(body)
    for body in SERVER_BODIES:
        ex.server.send(body)
    ex.pump()
    ex.tick(5.5)  # both sides ping, both pong
    ex.client.close(goodbye=Goodbye(code=ErrorCode.NORMAL, reason="done"), now=ex.now)
    *goodbye, close = ex.client.data_to_send()  # the close frame is written last, alone
    ex.c2s += b"".join(goodbye)
    ex.client_close_at = len(ex.c2s)
    ex.c2s += close
    ex.server.receive_data(b"".join((*goodbye, close)), ex.now)
    ex.server_close_at = len(ex.s2c)
    ex.pump()
    assert ex.server.state is ConnectionState.CLOSED, ex.server.state
    return ex


# ----------------------------------------------------------------------------- seeds


def codec_seeds() -> dict[str, bytes]:
    bodies: dict[str, Body] = {
        "hello": t._HELLO,
        "welcome": Welcome(
            session_id="s1", resume_token=b"k" * 32, resumed=True,
            recovery=(TopicRecovery(topic="room", status=RecoveryStatus.FAILED, position=POS,
                                    lost_from=1, lost_to=2, replayed=0),),
            last_received_seq=9, heartbeat_interval_ms=5000, heartbeat_timeout_ms=12000,
            limits=Limits(max_message_size=1 << 20, max_unacked=10, max_topics=5,
                          max_messages_per_second=7, max_bytes_per_second=9),
            server_time_ms=123, fresh_reason="why"),
        "data": Data(topic="room", position=POS, seq=3, timestamp_ms=99, payload=b"payload"),
        "data_min": Data(seq=1, payload=b"x"),
        "ack": Ack(seq=5, positions=(TopicPosition(topic="room", position=POS),)),
        "ack_fast": Ack(seq=5),
        "ping": Ping(id=1, timestamp_ms=2),
        "pong": Pong(id=1, echo_timestamp_ms=2, timestamp_ms=3),
        "subscribe": Subscribe(topic="room", request_id=4, position=POS),
        "unsubscribe": Unsubscribe(topic="room", request_id=4),
        "subscribed": SERVER_BODIES[2],
        "unsubscribed": SERVER_BODIES[3],
        "presence": SERVER_BODIES[4],
        "error": SERVER_BODIES[5],
        "goodbye": Goodbye(code=ErrorCode.SHUTTING_DOWN, reason="restart",
                           reconnect_after_ms=1500),
    }
    seeds = {name: codec.encode(body) for name, body in bodies.items()}
    hello = seeds["hello"]
    seeds["bad_truncated_hello"] = hello[: len(hello) // 2]
    seeds["bad_identifier"] = hello[:4] + b"XXXX" + hello[8:]
    unknown = bytearray(seeds["ping"])
    unknown[unknown.index(bytes([codec._WireBody.Ping]), 8)] = 200  # an unknown union member
    seeds["bad_unknown_type"] = bytes(unknown)
    return seeds


def sizes_for(cuts: list[int]) -> list[int]:
    """Chunk sizes (each 1..256) whose boundaries fall on every position in ``cuts``; what
    follows the last cut is the target's final chunk."""
    sizes: list[int] = []
    at = 0
    for cut in sorted(set(cuts)):
        while at < cut:
            step = min(256, cut - at)
            sizes.append(step)
            at += step
    assert len(sizes) <= 15, sizes
    return sizes


def server_connection_seeds() -> dict[str, bytes]:
    enc = t.ChunkedInput.encode
    ex = full_exchange(t._CONFIGS[0])
    wire = bytes(ex.c2s)
    request = wire[: ex.request_end]
    hello = codec.encode(t._HELLO)
    hello_frame = client_frame(2, hello)
    after_hello = wire[ex.hello_end:]
    # permessage-deflate: without the close frame (EOF instead): behind a Ping in one chunk
    # (the chunking check's reference run) it trips a known finding (fuzz/findings/).
    deflate = full_exchange(t._CONFIGS[2])
    deflate_c2s = bytes(deflate.c2s[: deflate.client_close_at])
    small = Exchange(t._CONFIGS[1])
    # A message over the 256-byte limit: 1009.
    small.c2s += client_frame(2, codec.encode(Data(seq=1, payload=b"z" * 300)))
    return {
        "exchange": enc(wire),
        "exchange_split": enc(wire, sizes=[5, 30, 1, 60, 100, 3, 7, 200, 2, 16, 9, 40, 1, 1, 50]),
        "exchange_ticking": enc(wire, flags=t.F_TICK | t.F_LATE, sizes=[256, 256]),
        # A masked frame over three reads, the middle one not a multiple of 4 bytes long: the
        # mask must be rotated between reads (a regression seen while _framer.py was written).
        "split_masked_frame": enc(wire, sizes=sizes_for([ex.hello_end + 10, ex.hello_end + 60])),
        "exchange_eof": enc(wire[: len(wire) - 20], flags=t.F_EOF),
        "exchange_reject": enc(wire, flags=t.F_ALT_HANDSHAKE),
        "exchange_refuse": enc(wire, flags=t.F_ALT_HELLO | t.F_LATE),
        "exchange_local_close": enc(wire, flags=t.F_CLOSE | t.F_LATE),
        "deflate": enc(deflate_c2s, flags=2 | t.F_EOF,
                       sizes=sizes_for([deflate.request_end, deflate.hello_end])),
        "small_too_big": enc(bytes(small.c2s), flags=1, sizes=sizes_for([small.request_end])),
        "idle_after_hello": enc(request + hello_frame, flags=t.F_LATE),
        "bad_tls_hello": enc(bytes.fromhex("1603010200010001fc0303") + bytes(32), flags=t.F_EOF),
        "bad_request": enc(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           b"Sec-WebSocket-Protocol: other\r\n\r\n"),
        "bad_frames": enc(
            request
            + hello_frame
            + client_frame(2, codec.encode(Data(seq=1)))
            + client_frame(2, b"\x01\x02not an envelope")  # 4000
            + client_frame(1, b"text")
        ),
        "data_before_hello": enc(request + client_frame(2, codec.encode(Data(seq=1)))
                                 + hello_frame),
        "fragments_and_controls": enc(
            request
            + client_frame(2, hello[:14], fin=False)
            + client_frame(9, b"ping")
            + client_frame(0, hello[14:])
            + client_frame(10, b"pong")
            + after_hello,
            sizes=[40, 200, 30, 7],
        ),
        "bad_close": enc(request + hello_frame + client_frame(8, close_payload(1005, b"\xff"))),
        # Broken twice (text, and invalid UTF-8), seen whole or with a valid first piece: the
        # close code may differ (1007/1003), the outcome may not (fuzz/targets.py, _summary).
        "text_bad_utf8_split": enc(wire[: ex.hello_end] + client_frame(1, b"ok\xff\xfe"),
                                   sizes=sizes_for([ex.hello_end + 8])),
        # Regressions (fixed findings): the peer's close in the same read as what the server
        # answers, with permessage-deflate (no prebuilt frames): welcome(), refuse(), a Pong.
        "regress_close_behind_hello_deflate": enc(
            bytes(deflate.c2s[: deflate.hello_end]) + client_frame(8, close_payload(1000)),
            flags=2),
        "regress_close_behind_hello_refuse_deflate": enc(
            bytes(deflate.c2s[: deflate.hello_end]) + client_frame(8, close_payload(1000)),
            flags=2 | t.F_ALT_HELLO),
        "regress_close_behind_ping_deflate": enc(
            bytes(deflate.c2s[: deflate.hello_end])
            + client_frame(2, codec.encode(Ping(id=7, timestamp_ms=1)))
            + client_frame(8, close_payload(1001)),
            flags=2, sizes=sizes_for([deflate.request_end, deflate.hello_end])),
    }


def client_connection_seeds() -> dict[str, bytes]:
    enc = t.ChunkedInput.encode
    ex = full_exchange(t._CONFIGS[0])
    s2c = bytes(ex.s2c)
    welcome = envelope_frame(t._WELCOME)
    assert s2c.startswith(welcome), "the server's first frame is the Welcome"
    after_welcome = s2c[len(welcome):]
    close_at = ex.server_close_at
    real = t.F_ALT_HANDSHAKE
    real_welcome = t.F_ALT_HANDSHAKE | t.F_ALT_HELLO
    bodies = b"".join(envelope_frame(b) for b in SERVER_BODIES)
    deflate = full_exchange(t._CONFIGS[2])
    rejected = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                b"\r\nnot ok")
    chunked = (b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nretry\r\n0\r\n\r\n")
    # The server's Ping and its close frame in one read trip a known finding (fuzz/findings/):
    # these seeds end with EOF instead, or with the close frame alone in a ticking run (no
    # chunking check).
    before_close = s2c[:close_at]
    return {
        "exchange_after_101": enc(before_close, flags=real | t.F_EOF),
        "exchange_after_welcome": enc(before_close[len(welcome):], flags=real_welcome | t.F_EOF,
                                      sizes=[5, 100]),
        "exchange_split": enc(before_close, flags=real | t.F_EOF,
                              sizes=[3, 10, 1, 100, 2, 50, 7, 9, 120, 1]),
        "exchange_ticking": enc(after_welcome, flags=real_welcome | t.F_TICK | t.F_LATE,
                                sizes=sizes_for([20, 60, close_at - len(welcome)])),
        "exchange_eof": enc(after_welcome[:-4], flags=real_welcome | t.F_EOF),
        "local_close_in_hello": enc(server_frame(9, b"ping"), flags=real_welcome & ~t.F_ALT_HELLO
                                    | t.F_CLOSE | t.F_LATE),
        "server_bodies": enc(bodies + envelope_frame(Goodbye(code=ErrorCode.SHUTTING_DOWN,
                                                              reconnect_after_ms=10))
                             + server_frame(8, close_payload(1001, b"restart")),
                             flags=real_welcome),
        "deflate": enc(bytes(deflate.s2c[: deflate.server_close_at]), flags=2 | real | t.F_EOF),
        "small_limits": enc(envelope_frame(Data(topic="r", position=POS, payload=b"p" * 300)),
                            flags=1 | real_welcome),
        "recorded_101_raw": enc(ex.response_101 + s2c, flags=t.F_LATE),
        "rejected_403": enc(rejected, flags=t.F_EOF),
        "rejected_chunked": enc(chunked, sizes=[20, 30]),
        "bad_status_line": enc(b"HTTP/1.1 1O1 Switching\r\n\r\n"),
        "overlong_status_line": enc(b"HTTP/1.1 101 " + b"x" * 600 + b"\x00\r\n\r\n", flags=1,
                                    sizes=[256, 256]),
        "bad_frames": enc(server_frame(2, b"\x00\x01garbage") + server_frame(1, b"text")
                          + server_frame(9, b"p" * 130), flags=real_welcome),
        "wrong_direction": enc(envelope_frame(Subscribe(topic="x")), flags=real_welcome),
        # Regressions (fixed findings): a close frame, or a frame that fails the connection, in
        # the same read as the 101 (the Hello must not be sent) or as a Ping (nor the Pong).
        "regress_close_with_101": enc(server_frame(8, close_payload(1013)), flags=real),
        "regress_bad_frame_with_101": enc(b"A\x00", flags=real),
        "regress_close_with_ping": enc(envelope_frame(Ping(id=3, timestamp_ms=4))
                                       + server_frame(8, close_payload(1001)), flags=real_welcome),
        # ... and a client closing while in HELLO, so that the (deflate) server sees its Hello
        # and close frame in one read.
        "regress_close_in_hello_deflate": bytes([0xFE]),
    }


class HubRecorder:
    """Real clients against a hub run exactly as the ``hub`` target runs it; records the
    script that replays the session."""

    def __init__(self, flags: int) -> None:
        self.script = t.ScriptBuilder(flags)
        self.config = t._HUB_CONFIGS[flags & 3]
        self.hub = Hub(self.config, entropy=SeededEntropy(7), now=0.0)
        self.now = 0.0
        self.slots: list[int | None] = [None, None]
        self.clients: list[ClientConnection | None] = [None, None]

    def socket(self, slot: int) -> int:
        conn_id = self.slots[slot]
        if conn_id is None:
            conn_id = self.slots[slot] = self.hub.open_connection(self.now)
        return conn_id

    def lost(self, slot: int) -> None:
        conn_id = self.slots[slot]
        assert conn_id is not None
        self.hub.connection_lost(conn_id, self.now)
        self.slots[slot] = None
        client = self.clients[slot]
        if client is not None:
            client.receive_data(None, self.now)
        self.clients[slot] = None

    def connect(self, slot: int, hello: Hello) -> ClientConnection:
        if self.slots[slot] is not None:
            self.socket_op(slot, 2)  # a new client needs a new socket
        client = ClientConnection(host="example.test", path="/ws", hello=hello,
                                  config=self.config.connection, now=self.now,
                                  extra_headers=(("Origin", t.ORIGIN),))
        self.clients[slot] = client
        self.send(slot)
        return client

    def send(self, slot: int) -> None:
        client = self.clients[slot]
        assert client is not None
        out = b"".join(client.data_to_send())
        if out:
            self.script.blob(t.HUB_RECEIVE << 1 | slot, out)
            self.hub.receive_data(self.socket(slot), out, self.now)
        self.flush()

    def flush(self) -> None:
        for _ in range(50):
            for conn_id, chunks, close_after in self.hub.flush(self.now):
                slot = self.slots.index(conn_id) if conn_id in self.slots else None
                client = self.clients[slot] if slot is not None else None
                if client is not None and chunks:
                    client.receive_data(b"".join(chunks), self.now)
                if close_after and slot is not None:
                    self.lost(slot)
            self.hub.events_received()
            # What the clients answer (the Hello after the 101, Pongs) goes back at once.
            moved = False
            for slot, client in enumerate(self.clients):
                if client is not None:
                    out = b"".join(client.data_to_send())
                    if out:
                        moved = True
                        self.script.blob(t.HUB_RECEIVE << 1 | slot, out)
                        self.hub.receive_data(self.socket(slot), out, self.now)
            if not moved:
                return
        raise AssertionError("hub exchange did not settle")

    def client_send(self, slot: int, body: Body) -> None:
        client = self.clients[slot]
        assert client is not None, f"no client in slot {slot}"
        client.send(body)
        self.send(slot)

    def tick(self, tenths: int) -> None:
        self.script.op(t.HUB_TICK << 1, tenths)
        self.now += tenths / 10
        self.hub.handle_timer(self.now)
        self.flush()

    def deadline(self) -> None:
        self.script.op(t.HUB_DEADLINE << 1)
        deadline = self.hub.next_deadline()
        if deadline is not None:
            self.now = max(self.now, deadline)
        self.hub.handle_timer(self.now)
        self.flush()

    def app(self, choice: int) -> None:
        self.script.op(t.HUB_APP << 1, choice)
        # The target's own command table, on our hub.
        t._hub_app(t._HubState(self.hub, self.config, now=self.now), choice)
        self.flush()

    def socket_op(self, slot: int, action: int) -> None:
        self.script.op(action << 4 | t.HUB_SOCKET << 1 | slot)
        conn_id = self.socket(slot)
        if action == 0:
            self.hub.pause_writing(conn_id)
        elif action == 1:
            self.hub.resume_writing(conn_id)
        else:
            self.lost(slot)
        self.flush()


def _hello(token: str = "secret", *, session_id: str = "", resume_token: bytes = b"",
           positions: tuple[TopicPosition, ...] = ()) -> Hello:
    return Hello(session_id=session_id, resume_token=resume_token, positions=positions,
                 auth_token=token, client=ClientInfo(name="seed", version="1"))


def hub_seeds() -> dict[str, bytes]:
    seeds: dict[str, bytes] = {}

    # A client's whole life: messages, topics, acks, heartbeats, a publish, Goodbye.
    r = HubRecorder(0)
    r.connect(0, _hello())
    for seq in (1, 2, 3, 4):
        r.client_send(0, Data(topic="room", seq=seq, payload=b"m%d" % seq))
    r.client_send(0, Subscribe(topic="room", request_id=1))
    r.app(0x10)  # publish to room
    r.client_send(0, Subscribe(topic="$bad", request_id=2))
    r.client_send(0, Unsubscribe(topic="room", request_id=3))
    r.client_send(0, Error(code=0, message="client error"))
    r.tick(2)
    r.deadline()
    r.deadline()  # heartbeats
    client = r.clients[0]
    assert client is not None
    client.close(goodbye=Goodbye(code=ErrorCode.NORMAL), now=r.now)
    r.send(0)
    seeds["lifecycle"] = r.script.build()

    # Two clients; the second resumes the first's session while it is still connected
    # (takeover), with positions, after messages it missed.
    r = HubRecorder(0)
    r.connect(0, _hello())
    r.client_send(0, Subscribe(topic="room", request_id=1))
    r.client_send(0, Data(seq=1, payload=b"a"))
    sid = next(iter(r.hub.sessions))
    token = r.hub.sessions[sid]._token
    head = r.hub._engine.head("room")
    for _ in range(3):
        r.app(0x00)  # publish to room
    r.connect(1, _hello(session_id=sid, resume_token=token,
                        positions=(TopicPosition(topic="room", position=head),
                                   TopicPosition(topic="other", position=StreamPosition(1, 1)))))
    r.client_send(1, Data(seq=1, payload=b"dup"))
    r.client_send(1, Data(seq=2, payload=b"b"))
    r.app(0x02)  # send_to the session's inbox
    seeds["resume_takeover"] = r.script.build()

    # A session left behind: its socket is lost, then it expires.
    r = HubRecorder(0)
    r.connect(0, _hello())
    r.client_send(0, Subscribe(topic="room", request_id=1))
    r.socket_op(0, 2)
    r.app(0x01)  # broadcast while detached
    for _ in range(4):
        r.deadline()
    seeds["detach_expire"] = r.script.build()

    # Presence, auth and deflate (config 2): two members of a room, one refused.
    r = HubRecorder(2)
    r.connect(0, _hello("alice"))
    r.client_send(0, Subscribe(topic="room", request_id=1))
    r.connect(1, _hello("bob"))
    r.client_send(1, Subscribe(topic="room", request_id=1))
    r.app(0x00)
    r.client_send(1, Unsubscribe(topic="room", request_id=2))
    r.client_send(0, Subscribe(topic="secret", request_id=3))
    r.client_send(0, Subscribe(topic="boom", request_id=4))
    r.app(0x03)  # server-side subscribe to news
    r.app(0x0C)  # disconnect, end session
    r.connect(1, _hello("deny"))
    r.connect(0, _hello("boom"))
    seeds["presence_auth_deflate"] = r.script.build()

    # Tight limits (config 1): connection limit (503), session limit, long topics, slow consumer.
    r = HubRecorder(1)
    r.connect(0, _hello())
    r.connect(1, _hello())
    r.client_send(0, Subscribe(topic="much-too-long", request_id=1))
    r.client_send(0, Subscribe(topic="room", request_id=2))
    r.client_send(0, Subscribe(topic="news", request_id=3))
    r.socket_op(0, 0)  # pause
    for _ in range(4):
        r.app(0xF8)  # publish 93 bytes
    r.socket_op(0, 1)
    seeds["limits"] = r.script.build()

    # Shutdown with a client connected; no history (config 3).
    r = HubRecorder(3)
    r.connect(0, _hello())
    r.client_send(0, Data(seq=1, payload=b"x"))
    r.app(0x06)  # shutdown
    r.deadline()
    seeds["shutdown"] = r.script.build()

    # Protocol violations, one per connection: a sequence gap, a second Hello, garbage.
    r = HubRecorder(0)
    r.connect(0, _hello())
    r.client_send(0, Data(seq=5, payload=b"gap"))
    r.connect(0, _hello())
    client = r.clients[0]
    assert client is not None
    client.send(Hello())  # not allowed once open
    r.send(0)
    seeds["violations"] = r.script.build()

    exchange = full_exchange(t._CONFIGS[0]).c2s
    seeds["pipelined_one_chunk"] = t.ScriptBuilder(0).blob(0, bytes(exchange)).build()
    # Regressions (fixed findings): a close frame pipelined behind the Hello, while the hub
    # answers the Hello (Unsubscribed for a stale topic, replayed history, deflate Welcome or
    # refusal); and server-side subscribe/unsubscribe while the connection is closing.
    with deterministic_urandom():
        request = b"".join(ClientConnection(host="h", now=0.0).data_to_send())
        deflate_request = b"".join(ClientConnection(host="h", config=t._CONFIGS[2],
                                                    now=0.0).data_to_send())
    close = client_frame(8, close_payload(1000))
    stale = Hello(positions=(TopicPosition(topic="$x", position=StreamPosition(1, 1)),))
    seeds["regress_close_behind_hello_stale_topic"] = t.ScriptBuilder(0).blob(
        0, request + client_frame(2, codec.encode(stale)) + close).build()
    seeds["regress_close_behind_hello_deflate"] = t.ScriptBuilder(2).blob(
        0, deflate_request + client_frame(2, codec.encode(_hello("bob"))) + close).build()
    seeds["regress_close_behind_hello_refused_deflate"] = t.ScriptBuilder(2).blob(
        0, deflate_request + client_frame(2, codec.encode(_hello("deny"))) + close).build()
    r = HubRecorder(0)
    r.connect(0, _hello())
    r.client_send(0, Subscribe(topic="room", request_id=1))
    sid = next(iter(r.hub.sessions))
    token = r.hub.sessions[sid]._token
    head = r.hub._engine.head("room")
    r.socket_op(0, 2)
    r.app(0x00)  # published while detached: to be replayed
    resume = _hello(session_id=sid, resume_token=token,
                    positions=(TopicPosition(topic="room", position=head),))
    r.script.blob(t.HUB_RECEIVE << 1 | 1, request + client_frame(2, codec.encode(resume)) + close)
    seeds["regress_close_behind_hello_replay"] = r.script.build()
    r = HubRecorder(0)
    r.connect(0, _hello())
    # Not r.app(): the client must not answer the close before the commands run.
    r.script.op(t.HUB_APP << 1, 0x06)  # shutdown: the connection is closing
    r.script.op(t.HUB_APP << 1, 0x03)  # server-side subscribe
    r.script.op(t.HUB_APP << 1, 0x03)  # and unsubscribe
    seeds["regress_app_subscribe_while_closing"] = r.script.build()

    seeds["garbage"] = (t.ScriptBuilder(0).blob(0, b"\x16\x03\x01garbage")
                        .blob(1, b"GET / HTTP/1.1\r\n\r\n").op(t.HUB_DEADLINE << 1).build())
    return seeds


def client_session_seeds() -> dict[str, bytes]:
    s = t.ScriptBuilder
    opened, closed, failed = t.CS_OPENED, t.CS_CLOSED, t.CS_FAILED
    receive, deadline, server, app = t.CS_RECEIVE, t.CS_DEADLINE, t.CS_SERVER, t.CS_APP
    bodies = b"".join(envelope_frame(b) for b in SERVER_BODIES)
    ping = envelope_frame(Ping(id=1, timestamp_ms=10))
    goodbye_close = (envelope_frame(Goodbye(code=ErrorCode.SHUTTING_DOWN, reconnect_after_ms=900))
                     + server_frame(8, close_payload(1001)))
    ex = full_exchange(t._CONFIGS[0])
    rejected = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n"
                b"Retry-After: 1\r\n\r\nbusy")
    fatal = (envelope_frame(Goodbye(code=ErrorCode.AUTH_FAILED, reason="no"))
             + server_frame(8, close_payload(CloseCode.AUTH_FAILED)))
    return {
        "connect_receive_close": s(1).op(opened).op(server | 1 << 3).blob(receive, bodies)
        .blob(receive, ping).op(app | 0 << 3).op(app | 9 << 3).blob(receive, goodbye_close)
        .op(closed).build(),
        "reconnect_resume": s(0).op(opened).op(server | 1 << 3).op(app | 2 << 3)
        .op(closed).op(deadline).op(opened).op(server | 3 << 3).blob(receive, bodies)
        .op(deadline).op(deadline).build(),
        "reconnect_fresh": s(1).op(opened).op(server | 1 << 3).op(app).op(app).op(closed)
        .op(deadline).op(opened).op(server | 1 << 3).op(app | 1 << 3).op(app | 2 << 3).build(),
        "give_up": s(0).op(failed).op(deadline).op(failed).op(deadline).op(failed).op(deadline)
        .op(failed).op(deadline).op(failed).op(app | 4 << 3).build(),
        "connect_timeout": s(0).op(deadline).op(deadline).op(opened).op(deadline).build(),
        "handshake_timeout": s(0).op(opened).op(deadline).op(deadline).op(opened).build(),
        "rejected": s(0).op(opened).blob(receive, rejected).op(deadline).op(opened).build(),
        "recorded_101": s(0).op(opened).blob(receive, ex.response_101 + bytes(ex.s2c)).build(),
        "stale_attempt": s(0).op(opened).op(server).op(closed).blob(receive | 1 << 3, bodies)
        .op(deadline).op(opened).op(server | 1 << 3).build(),
        "fatal_goodbye": s(0).op(opened).op(server | 1 << 3).blob(receive, fatal).op(deadline)
        .build(),
        "disconnect_reconnect": s(1).op(opened).op(server | 1 << 3).op(app | 3 << 3)
        .op(app | 4 << 3).op(opened).op(server | 1 << 3).op(t.CS_TICK, 200).build(),
        "welcome_and_close_in_one_read": s(0).op(opened).op(server | 5 << 3)
        .blob(receive, server_frame(8, close_payload(1013))).op(deadline).build(),
        "bad_frames": s(0).op(opened).op(server | 1 << 3)
        .blob(receive, server_frame(2, b"garbage") + server_frame(1, b"t")).op(deadline)
        .build(),
        # Regressions (fixed findings): the 101 and a close frame in one read; an adapter that
        # reports a socket opened after reporting it failed.
        "regress_close_with_101": s(0).op(opened).op(server | 4 << 3)
        .blob(receive, server_frame(8, close_payload(1013))).op(deadline).build(),
        "regress_opened_after_failed": s(0).op(closed).op(opened).op(deadline)
        .op(t.CS_TICK, 65).build(),
    }


GENERATORS: dict[str, Callable[[], dict[str, bytes]]] = {
    "codec": codec_seeds,
    "server_connection": server_connection_seeds,
    "client_connection": client_connection_seeds,
    "hub": hub_seeds,
    "client_session": client_session_seeds,
}


def main() -> None:
    for target, generate in GENERATORS.items():
        with deterministic_urandom():
            seeds = generate()
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for name, data in sorted(seeds.items()):
            t.TARGETS[target](data)  # a seed must not be a finding
            (directory / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")


if __name__ == "__main__":
    main()
