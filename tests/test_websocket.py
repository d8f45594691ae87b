"""The WebSocket layer, driven through its public API only: bytes in, events and bytes out."""

from __future__ import annotations

import copy
import itertools
import struct
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from build_support import pure_only
from hypothesis import given, settings
from hypothesis import strategies as st

from sigma_core.errors import LocalProtocolError, RemoteProtocolError
from sigma_core.websocket import (
    Closed,
    HandshakeAccepted,
    HandshakeFailed,
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

OPEN = WebSocketState.OPEN
CLOSED = WebSocketState.CLOSED
REJECTED = WebSocketState.REJECTED
LOCAL_CLOSING = WebSocketState.LOCAL_CLOSING

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
# What only the pure-Python build does (tests/build_support.py).
TYPED = pure_only("compiled code raises TypeError for a wrongly typed argument")
DEEPCOPY = pure_only("compiled classes cannot be deep-copied")
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# -- helpers ---------------------------------------------------------------------------------------


def pump(a: WebSocket, b: WebSocket) -> None:
    """Move bytes both ways until neither side has anything to send."""
    while True:
        moved = False
        for src, dst in ((a, b), (b, a)):
            for chunk in src.data_to_send():
                moved = True
                dst.receive_data(chunk)
        if not moved:
            return


def out(ws: WebSocket) -> bytes:
    return b"".join(ws.data_to_send())


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = MASK,
    length: int | None = None,
) -> bytes:
    """One hand-built frame (RFC 6455 §5.2); masked unless ``mask`` is None."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def parse_frames(data: bytes) -> list[tuple[bool, int, bytes]]:
    """Parse unmasked frames (what a server writes): (fin, opcode, payload) each."""
    frames = []
    while data:
        fin, opcode, n = bool(data[0] & 0x80), data[0] & 0x0F, data[1] & 0x7F
        assert not data[1] & 0x80, "server frames are not masked"
        start = 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            start = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            start = 10
        frames.append((fin, opcode, data[start : start + n]))
        data = data[start + n :]
    return frames


def close_code_sent(data: bytes) -> int:
    frames = parse_frames(data)
    assert frames[-1][1] == CLOSE
    (code,) = struct.unpack("!H", frames[-1][2][:2])
    return int(code)


def request(
    *,
    protocol: str | None = "sigma.v1",
    key: str = RFC_KEY,
    extra: str = "",
    first_line: str = "GET /chat?room=1 HTTP/1.1",
) -> bytes:
    lines = [
        first_line,
        "Host: example.com:8080",
        "Upgrade: websocket",
        "Connection: keep-alive, Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def open_pair(
    client_config: WebSocketConfig | None = None,
    server_config: WebSocketConfig | None = None,
) -> tuple[WebSocket, WebSocket]:
    client = WebSocket.client(host="example.com", config=client_config)
    server = WebSocket(Role.SERVER, server_config)
    pump(client, server)
    assert isinstance(server.events_received()[0], HandshakeRequest)
    server.accept()
    pump(client, server)
    assert isinstance(client.events_received()[0], HandshakeAccepted)
    assert client.state is OPEN
    assert server.state is OPEN
    return client, server


def open_server(config: WebSocketConfig | None = None) -> WebSocket:
    """A server that accepted a hand-written request; feed it hand-built frames."""
    server = WebSocket(Role.SERVER, config)
    server.receive_data(request())
    assert [type(e) for e in server.events_received()] == [HandshakeRequest]
    server.accept()
    out(server)
    return server


def closed_event(ws: WebSocket) -> Closed:
    events = ws.events_received()
    assert isinstance(events[-1], Closed)
    assert not any(isinstance(e, Closed) for e in events[:-1])
    return events[-1]


def normalized(events: Sequence[WebSocketEvent]) -> list[Any]:
    """Events as comparable values (exceptions compare by identity)."""
    result: list[Any] = []
    for event in events:
        if isinstance(event, Closed) and event.cause is not None:
            cause = (type(event.cause), event.cause.code, str(event.cause))
            result.append((event.code, event.reason, event.initiated_locally, event.clean, cause))
        else:
            result.append(event)
    return result


# -- config ----------------------------------------------------------------------------------------


def test_config_defaults_are_envelope_mode_and_plain_is_autobahn_ready() -> None:
    default = WebSocketConfig()
    assert default.subprotocols == ("sigma.v1",)
    assert not default.allow_text
    plain = WebSocketConfig.plain()
    assert plain.subprotocols == ()
    assert plain.allow_text
    assert plain.max_message_size == 16 * 1024 * 1024
    assert WebSocketConfig.plain(max_message_size=10).max_message_size == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_message_size": 0},
        {"max_handshake_size": -1},
        pytest.param({"max_message_size": 1.5}, marks=TYPED),
        {"subprotocols": ("",)},
        {"subprotocols": ("a b",)},
        {"subprotocols": ("sigma.v1", "sigma.v1")},
        pytest.param({"subprotocols": "sigma.v1"}, marks=TYPED),
        pytest.param({"subprotocols": ["sigma.v1"]}, marks=TYPED),
    ],
)
def test_config_rejects_invalid_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must|valid|unique"):
        WebSocketConfig(**kwargs)


# -- opening handshake -----------------------------------------------------------------------------


def test_handshake_negotiates_sigma_v1() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(request(protocol="other.v2, sigma.v1", extra="X-Token: abc\r\n"))
    [req] = server.events_received()
    assert isinstance(req, HandshakeRequest)
    assert req.path == "/chat?room=1"
    assert req.host == "example.com:8080"
    assert req.subprotocols == ("other.v2", "sigma.v1")
    assert ("x-token", "abc") in req.headers
    assert server.state is WebSocketState.HANDSHAKE
    assert server.data_to_send() == []

    server.accept(extra_headers=[("X-Server", "sigma")])
    response = out(server)
    assert response.startswith(b"HTTP/1.1 101 ")
    assert f"Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n".encode() in response
    assert b"Sec-WebSocket-Protocol: sigma.v1\r\n" in response
    assert b"X-Server: sigma\r\n" in response
    assert server.state is OPEN
    assert server.subprotocol == "sigma.v1"
    assert server.role is Role.SERVER
    assert repr(server) == "<WebSocket server open>"
    assert not server.transport_should_close


def test_client_sees_negotiated_subprotocol_and_headers() -> None:
    client = WebSocket.client(
        host="example.com", path="/ws", extra_headers=[("Authorization", "Bearer t")]
    )
    server = WebSocket(Role.SERVER)
    pump(client, server)
    [req] = server.events_received()
    assert isinstance(req, HandshakeRequest)
    assert req.path == "/ws"
    assert ("authorization", "Bearer t") in req.headers
    server.accept(extra_headers=[("X-Server", "sigma")])
    pump(client, server)
    assert client.events_received() == [
        HandshakeAccepted(subprotocol="sigma.v1", headers=(("x-server", "sigma"),))
    ]
    assert client.subprotocol == "sigma.v1"


def test_server_prefers_its_own_order() -> None:
    config = WebSocketConfig(subprotocols=("sigma.v2", "sigma.v1"))
    server = WebSocket(Role.SERVER, config)
    server.receive_data(request(protocol="sigma.v1, sigma.v2"))
    server.events_received()
    server.accept()
    assert server.subprotocol == "sigma.v2"


@pytest.mark.parametrize("offer", [("other.v9",), ()])
def test_client_offering_none_of_ours_gets_400_with_reason(offer: tuple[str, ...]) -> None:
    client = WebSocket.client(host="example.com", config=WebSocketConfig(subprotocols=offer))
    server = WebSocket(Role.SERVER)
    pump(client, server)
    reason = "unsupported WebSocket subprotocol: this server speaks sigma.v1"
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert (failed.status, failed.reason, failed.body) == (400, reason, reason.encode())
    assert server.state is REJECTED
    assert server.transport_should_close
    [seen] = client.events_received()
    assert isinstance(seen, HandshakeFailed)
    assert (seen.status, seen.reason, seen.body) == (400, "Bad Request", reason.encode())
    assert ("content-type", "text/plain; charset=utf-8") in seen.headers
    assert client.state is REJECTED
    assert client.transport_should_close


def test_server_reject_reaches_client() -> None:
    client = WebSocket.client(host="example.com")
    server = WebSocket(Role.SERVER)
    pump(client, server)
    server.events_received()
    server.reject(403, "banned", headers=[("Retry-After", "60")])
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert (failed.status, failed.reason, failed.body) == (403, "banned", b"banned")
    assert server.state is REJECTED
    assert server.transport_should_close
    pump(client, server)
    [seen] = client.events_received()
    assert isinstance(seen, HandshakeFailed)
    assert (seen.status, seen.reason, seen.body) == (403, "Forbidden", b"banned")
    assert ("retry-after", "60") in seen.headers
    assert client.state is REJECTED
    assert client.transport_should_close
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_reject_with_unnamed_status() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(request())
    server.events_received()
    server.reject(499, "custom")
    assert out(server).startswith(b"HTTP/1.1 499 Error\r\n")


def test_reject_with_explicit_body() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(request())
    server.events_received()
    server.reject(503, "busy", headers=[("Content-Type", "application/json")], body=b"{}")
    response = out(server)
    assert response.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert response.endswith(b"\r\n\r\n{}")
    assert b"Content-Type: application/json\r\n" in response


def test_plain_mode_handshakes_without_subprotocol() -> None:
    client = WebSocket.client(host="example.com", config=WebSocketConfig.plain())
    server = WebSocket(Role.SERVER, WebSocketConfig.plain())
    [req_bytes] = client.data_to_send()
    assert b"sec-websocket-protocol" not in req_bytes.lower()
    server.receive_data(req_bytes)
    [req] = server.events_received()
    assert isinstance(req, HandshakeRequest)
    assert req.subprotocols == ()
    server.accept()
    [resp_bytes] = server.data_to_send()
    assert b"sec-websocket-protocol" not in resp_bytes.lower()
    client.receive_data(resp_bytes)
    assert client.events_received() == [HandshakeAccepted(subprotocol=None, headers=())]
    assert client.subprotocol is None
    assert server.subprotocol is None


def test_head_exactly_at_the_limit_is_accepted_one_more_byte_is_431() -> None:
    limit = 600
    base = len(request(extra="X-Pad: \r\n"))
    exact = request(extra="X-Pad: " + "a" * (limit - base) + "\r\n")
    assert len(exact) == limit
    config = WebSocketConfig(max_handshake_size=limit)
    server = WebSocket(Role.SERVER, config)
    server.receive_data(exact)
    assert [type(e) for e in server.events_received()] == [HandshakeRequest]

    server = WebSocket(Role.SERVER, config)
    server.receive_data(request(extra="X-Pad: " + "a" * (limit - base + 1) + "\r\n"))
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.status == 431
    assert out(server).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert server.transport_should_close


def test_endless_head_is_431_before_it_ends() -> None:
    server = WebSocket(Role.SERVER, WebSocketConfig(max_handshake_size=1000))
    server.receive_data(b"GET / HTTP/1.1\r\n")
    for _ in range(100):
        server.receive_data(b"X-Long: " + b"a" * 50 + b"\r\n")
        if server.state is REJECTED:
            break
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.status == 431


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls-hello"),
        pytest.param(b"\r\nGET / HTTP/1.1\r\n", id="leading-blank-line"),
        pytest.param(b"HELLO\r\n\r\n", id="not-a-request-line"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\x00bad\r\n\r\n", id="garbage-in-head"),
        pytest.param(request(extra="Bad Header: x\r\n"), id="bad-header-name"),
        pytest.param(request(key="short"), id="bad-key"),
        pytest.param(request(first_line="POST / HTTP/1.1"), id="post"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", id="plain-http-get"),
        pytest.param(request(protocol="sigma.v1, caf\xe9"), id="non-ascii-subprotocol"),
    ],
)
def test_bad_requests_get_400(data: bytes) -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(data)
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.status == 400
    assert failed.reason
    response = out(server)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert response.endswith(failed.reason.encode())
    assert server.state is REJECTED
    assert server.transport_should_close
    server.receive_data(b"more")  # ignored
    server.receive_data(None)
    assert server.events_received() == []
    assert server.data_to_send() == []


def test_wrong_websocket_version_gets_426_with_supported_version() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(request().replace(b"Version: 13", b"Version: 8"))
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.status == 426
    assert ("sec-websocket-version", "13") in failed.headers


def test_data_sent_with_the_request_is_delivered_after_accept() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(request() + frame(BINARY, b"early"))
    assert [type(e) for e in server.events_received()] == [HandshakeRequest]
    server.receive_data(frame(BINARY, b"later"))
    server.accept()
    assert server.events_received() == [
        MessageReceived(data=b"early"),
        MessageReceived(data=b"later"),
    ]


@pytest.mark.parametrize("together", [False, True])
def test_too_much_data_before_accept_is_rejected(together: bool) -> None:
    server = WebSocket(Role.SERVER, WebSocketConfig(max_handshake_size=1024))
    if together:
        server.receive_data(request() + frame(BINARY, bytes(2000)))
    else:
        server.receive_data(request())
        assert [type(e) for e in server.events_received()] == [HandshakeRequest]
        server.receive_data(frame(BINARY, bytes(2000)))
    [failed] = server.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.status == 400
    assert "before the handshake completed" in failed.reason
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_end_of_stream_during_handshake() -> None:
    server = WebSocket(Role.SERVER)
    server.receive_data(b"GET / HT")
    server.receive_data(None)
    assert closed_event(server) == Closed(
        code=1006, reason="", initiated_locally=False, clean=False
    )
    assert server.transport_should_close

    client = WebSocket.client(host="example.com")
    client.receive_data(None)
    assert closed_event(client).code == 1006
    assert client.state is CLOSED


# -- client handshake failures ---------------------------------------------------------------------


def server_response_to(client: WebSocket, *, subprotocol: str | None = "sigma.v1") -> bytes:
    """What a correct server answers to ``client``'s request."""
    server = WebSocket(Role.SERVER, WebSocketConfig(subprotocols=()))
    server.receive_data(out(client))
    server.events_received()
    server.accept(subprotocol=subprotocol)
    return out(server)


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nnope!", b"nope!"),
        (
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nnop\r\n2\r\ne!\r\n0\r\n\r\n",
            b"nope!",
        ),
        (b"HTTP/1.1 404 Not Found\r\n\r\nnope!", b"nope!"),  # ends at end of stream
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b""),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnope!", b"nope!"),  # cut short
    ],
)
def test_client_reports_non_101_response_with_body(response: bytes, body: bytes) -> None:
    client = WebSocket.client(host="example.com")
    out(client)
    for i in range(len(response)):
        client.receive_data(response[i : i + 1])
        client.receive_data(b"")  # not the end of the stream
    if client.state is not REJECTED:
        client.receive_data(None)
    assert client.events_received() == [
        HandshakeFailed(status=404, reason="Not Found", headers=client_headers(response), body=body)
    ]
    assert client.transport_should_close


def client_headers(response: bytes) -> tuple[tuple[str, str], ...]:
    head = response.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    return tuple((n.lower(), v.strip()) for n, v in (line.split(":", 1) for line in head))


def test_client_reports_informational_response_as_failure() -> None:
    client = WebSocket.client(host="example.com")
    out(client)
    client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert client.events_received() == [
        HandshakeFailed(status=100, reason="Continue", headers=(), body=b"")
    ]
    assert client.state is REJECTED


def test_client_truncates_huge_rejection_body() -> None:
    client = WebSocket.client(host="example.com", config=WebSocketConfig(max_handshake_size=100))
    out(client)
    client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\n" + b"x" * 1000)
    [failed] = client.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert failed.reason == "Oops"
    assert failed.body == b"x" * 100


def break_accept(response: bytes) -> bytes:
    return response.replace(b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x")


@pytest.mark.parametrize(
    ("mangle", "subprotocol", "code", "words"),
    [
        (break_accept, "sigma.v1", 1002, "accept"),
        (lambda r: r, None, 1002, "no subprotocol"),
        (lambda r: b"HTTP/1.1 ???\r\n" + r, "sigma.v1", 1002, "status line"),
        (
            lambda r: r.replace(b"\r\n\r\n", b"\r\nX: " + b"a" * 20000 + b"\r\n\r\n"),
            None,
            1009,
            "larger",
        ),
    ],
)
def test_client_fails_on_invalid_101(
    mangle: Callable[[bytes], bytes], subprotocol: str | None, code: int, words: str
) -> None:
    client = WebSocket.client(host="example.com")
    response = mangle(server_response_to(client, subprotocol=subprotocol))
    client.receive_data(response)
    closed = closed_event(client)
    assert closed.code == 1006
    assert not closed.clean
    assert closed.cause is not None
    assert closed.cause.code == code
    assert words in str(closed.cause)
    assert client.state is CLOSED
    assert client.transport_should_close
    assert client.data_to_send() == []


def test_client_rejects_subprotocol_it_did_not_offer() -> None:
    client = WebSocket.client(host="example.com")
    response = server_response_to(client).replace(b"sigma.v1", b"other.v1")
    client.receive_data(response)
    closed = closed_event(client)
    assert closed.cause is not None
    assert "other.v1" in str(closed.cause)


def test_client_delivers_frames_that_arrive_with_the_101() -> None:
    client = WebSocket.client(host="example.com")
    client.receive_data(server_response_to(client) + frame(BINARY, b"hi", mask=None))
    assert [type(e) for e in client.events_received()] == [HandshakeAccepted, MessageReceived]


# -- messages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_binary_messages_both_ways(size: int) -> None:
    client, server = open_pair()
    payload = bytes(i % 251 for i in range(size))
    client.send_message(payload)
    server.send_message(bytearray(payload))
    server.send_message(memoryview(payload))
    pump(client, server)
    assert server.events_received() == [MessageReceived(data=payload)]
    assert client.events_received() == [MessageReceived(data=payload)] * 2


def test_text_messages_in_plain_mode() -> None:
    client, server = open_pair(WebSocketConfig.plain(), WebSocketConfig.plain())
    with pytest.raises(LocalProtocolError):
        client.send_message("\ud800")
    client.send_message("héllo ✓")
    server.send_message("wörld")
    server.send_message(b"bin")
    pump(client, server)
    assert server.events_received() == [MessageReceived(data="héllo ✓")]
    assert client.events_received() == [
        MessageReceived(data="wörld"),
        MessageReceived(data=b"bin"),
    ]


def test_text_in_envelope_mode_is_closed_with_1003() -> None:
    client, server = open_pair(WebSocketConfig(allow_text=True))
    client.send_message("text")
    client_bytes = out(client)
    server.receive_data(client_bytes)
    closed = closed_event(server)
    assert closed.code == 1003
    assert closed.cause is not None
    assert closed.cause.code == 1003
    assert closed.initiated_locally
    assert not closed.clean
    assert server.state is CLOSED
    assert server.transport_should_close
    sent = out(server)
    assert close_code_sent(sent) == 1003
    client.receive_data(sent)
    assert closed_event(client) == Closed(
        code=1003, reason=closed.reason, initiated_locally=False, clean=True
    )


def test_fragmented_messages_are_reassembled_around_control_frames() -> None:
    server = open_server(WebSocketConfig.plain())
    text = "héllo wörld".encode()
    split = text.index(b"\xc3") + 1  # inside a two-byte character
    server.receive_data(
        frame(TEXT, text[:split], fin=False)
        + frame(PING, b"p")
        + frame(CONT, text[split:-2], fin=False)
        + frame(CONT, b"", fin=False)
        + frame(CONT, text[-2:])
        + frame(BINARY, b"ab", fin=False)
        + frame(CONT, b"cd", fin=False)
        + frame(CONT, b"ef")
    )
    assert server.events_received() == [
        PingReceived(payload=b"p"),
        MessageReceived(data="héllo wörld"),
        MessageReceived(data=b"abcdef"),
    ]
    assert parse_frames(out(server)) == [(True, PONG, b"p")]


def test_frame_split_across_reads_is_one_message() -> None:
    server = open_server()
    data = frame(BINARY, bytes(range(200)))
    for i in range(0, len(data), 7):
        server.receive_data(data[i : i + 7])
    assert server.events_received() == [MessageReceived(data=bytes(range(200)))]


@pytest.mark.parametrize(
    ("fragments", "ok"),
    [
        ([100], True),
        ([101], False),
        ([60, 40], True),
        ([60, 41], False),
        ([0, 100, 0], True),
        ([100, 1], False),
    ],
)
@pytest.mark.parametrize("opcode", [BINARY, TEXT])
def test_max_message_size_boundary(fragments: list[int], ok: bool, opcode: int) -> None:
    server = open_server(WebSocketConfig.plain(max_message_size=100))
    last = len(fragments) - 1
    for i, n in enumerate(fragments):
        server.receive_data(frame(opcode if i == 0 else CONT, b"a" * n, fin=i == last))
    events = server.events_received()
    if ok:
        data: bytes | str = b"a" * 100 if opcode == BINARY else "a" * 100
        assert events == [MessageReceived(data=data)]
    else:
        assert len(events) == 1
        closed = events[0]
        assert isinstance(closed, Closed)
        assert closed.code == 1009
        assert closed.cause is not None
        assert closed.cause.code == 1009
        assert close_code_sent(out(server)) == 1009


def test_message_size_counts_utf8_bytes() -> None:
    server = open_server(WebSocketConfig.plain(max_message_size=10))
    server.receive_data(frame(TEXT, "ééééé".encode()))  # 10 bytes
    assert server.events_received() == [MessageReceived(data="ééééé")]
    server.receive_data(frame(TEXT, "éééé".encode(), fin=False) + frame(CONT, "é!".encode()))
    assert closed_event(server).code == 1009


def test_oversized_frame_fails_on_its_announced_length() -> None:
    # Refused when the head arrives: nothing of it is buffered or waited for.
    server = open_server(WebSocketConfig(max_message_size=1000))
    server.receive_data(frame(BINARY, length=1 << 30)[:14])
    assert closed_event(server).code == 1009
    # A fragmented message whose next fragment would pass the limit, likewise.
    server = open_server(WebSocketConfig(max_message_size=1000))
    server.receive_data(frame(BINARY, bytes(600), fin=False) + frame(CONT, length=401)[:8])
    assert closed_event(server).code == 1009
    # Within the limit, a frame that arrives in pieces is waited for.
    server = open_server(WebSocketConfig(max_message_size=1000))
    head_and_part = frame(BINARY, bytes(1000))
    server.receive_data(head_and_part[:500])
    assert server.events_received() == []
    server.receive_data(head_and_part[500:])
    assert server.events_received() == [MessageReceived(data=bytes(1000))]


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param([frame(TEXT, b"\xff")], id="invalid-start-byte"),
        pytest.param([frame(TEXT, b"ok\xed\xa0\x80")], id="surrogate"),
        pytest.param([frame(TEXT, b"\xce", fin=False), frame(CONT, b"")], id="truncated"),
        pytest.param([frame(TEXT, b"a", fin=False), frame(CONT, b"\xc0\xaf")], id="overlong"),
        pytest.param([frame(CLOSE, close_payload(1000, b"\xff"))], id="close-reason"),
    ],
)
def test_invalid_utf8_is_closed_with_1007(frames: list[bytes]) -> None:
    server = open_server(WebSocketConfig.plain())
    for data in frames:
        server.receive_data(data)
    closed = closed_event(server)
    assert closed.code == 1007
    assert closed.cause is not None
    assert closed.cause.code == 1007
    assert close_code_sent(out(server)) == 1007


# -- control frames and closing --------------------------------------------------------------------


def test_ping_is_answered_with_pong() -> None:
    client, server = open_pair()
    client.send_ping(b"are you there")
    pump(client, server)
    assert server.events_received() == [PingReceived(payload=b"are you there")]
    assert client.events_received() == [PongReceived(payload=b"are you there")]
    server.receive_data(frame(PING, b""))
    assert server.events_received() == [PingReceived(payload=b"")]
    assert parse_frames(out(server)) == [(True, PONG, b"")]


@pytest.mark.parametrize("initiator", ["client", "server"])
def test_closing_handshake(initiator: str) -> None:
    client, server = open_pair()
    first, second = (client, server) if initiator == "client" else (server, client)
    first.close(4001, "done here")
    assert first.state is LOCAL_CLOSING
    assert not first.transport_should_close
    first.close(1000)  # idempotent
    pump(client, server)
    assert closed_event(first) == Closed(
        code=4001, reason="done here", initiated_locally=True, clean=True
    )
    assert closed_event(second) == Closed(
        code=4001, reason="done here", initiated_locally=False, clean=True
    )
    for ws in (client, server):
        assert ws.state is CLOSED
        assert ws.transport_should_close
        ws.close()
        assert ws.events_received() == []


def test_server_echoes_peer_close_code_and_closes_transport() -> None:
    server = open_server()
    server.receive_data(frame(CLOSE, close_payload(1001, b"bye")))
    assert closed_event(server) == Closed(
        code=1001, reason="bye", initiated_locally=False, clean=True
    )
    assert parse_frames(out(server)) == [(True, CLOSE, close_payload(1001, b"bye"))]
    assert server.transport_should_close
    server.receive_data(frame(BINARY, b"late"))
    server.receive_data(None)
    assert server.events_received() == []


def test_close_frame_without_code_is_1005_and_echoed_empty() -> None:
    server = open_server()
    server.receive_data(frame(CLOSE))
    assert closed_event(server).code == 1005
    assert out(server) == b"\x88\x00"


def test_messages_arriving_after_our_close_are_dropped() -> None:
    server = open_server()
    server.close()
    out(server)
    server.receive_data(frame(BINARY, b"x") + frame(PING, b"p") + frame(PONG, b"q"))
    assert server.events_received() == []
    assert server.data_to_send() == []
    server.receive_data(frame(CLOSE, close_payload(1000)))
    assert closed_event(server).clean
    assert server.data_to_send() == []


@pytest.mark.parametrize("state", ["handshake", "open", "closing"])
def test_end_of_stream_is_1006_unclean(state: str) -> None:
    if state == "handshake":
        server = WebSocket(Role.SERVER)
        server.receive_data(request())
    else:
        server = open_server()
    if state == "closing":
        server.close()
    server.receive_data(None)
    assert closed_event(server) == Closed(
        code=1006, reason="", initiated_locally=False, clean=False
    )
    assert server.state is CLOSED
    assert server.transport_should_close


def test_violation_while_closing_ends_without_second_close_frame() -> None:
    server = open_server()
    server.close()
    out(server)
    server.receive_data(frame(0x3))
    closed = closed_event(server)
    assert closed.cause is not None
    assert closed.cause.code == 1002
    assert server.data_to_send() == []


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(BINARY, b"x", mask=None), id="unmasked-client-frame"),
        pytest.param(frame(BINARY, b"x", rsv=4), id="rsv1"),
        pytest.param(frame(BINARY, b"x", rsv=1), id="rsv3"),
        pytest.param(frame(PING, b"x" * 126), id="control-too-big"),
        pytest.param(frame(PING, b"x", fin=False), id="fragmented-control"),
        pytest.param(frame(0x3, b"x"), id="reserved-opcode"),
        pytest.param(frame(0xB, b"x"), id="reserved-control-opcode"),
        pytest.param(frame(CONT, b"x"), id="continuation-without-start"),
        pytest.param(frame(BINARY, b"x", fin=False) + frame(BINARY, b"y"), id="new-message-mid"),
        pytest.param(frame(CLOSE, b"\x03"), id="close-one-byte"),
        pytest.param(frame(CLOSE, close_payload(999)), id="close-999"),
        pytest.param(frame(CLOSE, close_payload(1004)), id="close-1004"),
        pytest.param(frame(CLOSE, close_payload(1005)), id="close-1005"),
        pytest.param(frame(CLOSE, close_payload(1006)), id="close-1006"),
        pytest.param(frame(CLOSE, close_payload(1015)), id="close-1015"),
        pytest.param(frame(CLOSE, close_payload(2999)), id="close-2999"),
        pytest.param(frame(CLOSE, close_payload(5000)), id="close-5000"),
    ],
)
def test_protocol_violations_are_closed_with_1002(data: bytes) -> None:
    server = open_server()
    server.receive_data(data)
    closed = closed_event(server)
    assert closed.code == 1002
    assert closed.initiated_locally
    assert not closed.clean
    assert isinstance(closed.cause, RemoteProtocolError)
    assert closed.cause.code == 1002
    assert closed.reason == closed.cause.reason
    assert server.state is CLOSED
    assert server.transport_should_close
    assert close_code_sent(out(server)) == 1002
    server.receive_data(frame(BINARY, b"after"))
    assert server.events_received() == []
    assert server.data_to_send() == []


def test_client_fails_on_masked_server_frame() -> None:
    client, _ = open_pair()
    client.receive_data(frame(BINARY, b"x"))
    closed = closed_event(client)
    assert closed.cause is not None
    assert closed.cause.code == 1002
    assert client.transport_should_close


def test_abort() -> None:
    client, server = open_pair()
    server.abort(4002, "hello timeout")
    assert closed_event(server) == Closed(
        code=4002, reason="hello timeout", initiated_locally=True, clean=False
    )
    assert server.data_to_send() == []
    assert server.transport_should_close
    server.abort()
    server.receive_data(None)
    assert server.events_received() == []

    handshaking = WebSocket.client(host="example.com")
    handshaking.abort()
    assert closed_event(handshaking).code == 1006

    client.close()
    client.abort()  # the closing handshake timed out
    assert closed_event(client) == Closed(code=1006, reason="", initiated_locally=True, clean=False)


def test_expire_handshake() -> None:
    partial = WebSocket(Role.SERVER)
    partial.receive_data(b"GET / HT")
    partial.expire_handshake("too slow")
    response = out(partial)
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert response.endswith(b"\r\n\r\ntoo slow")
    [failed] = partial.events_received()
    assert isinstance(failed, HandshakeFailed)
    assert (failed.status, failed.reason) == (408, "too slow")
    assert partial.state is REJECTED

    silent = WebSocket(Role.SERVER)  # never sent a byte
    silent.expire_handshake("too slow")
    assert out(silent) == b""
    assert closed_event(silent).code == 1006

    unanswered = WebSocket(Role.SERVER)  # a whole request the application has not answered
    unanswered.receive_data(request())
    assert isinstance(unanswered.events_received()[0], HandshakeRequest)
    unanswered.expire_handshake("too slow")
    assert out(unanswered) == b""
    assert closed_event(unanswered).code == 1006

    client = WebSocket.client(host="example.com")
    client.data_to_send()
    client.expire_handshake("too slow")
    assert out(client) == b""
    assert closed_event(client).code == 1006


def test_compression_round_trip() -> None:
    config = WebSocketConfig(compression=True)
    client = WebSocket.client(host="example.com", config=config)
    server = WebSocket(Role.SERVER, config)
    pump(client, server)
    server.events_received()
    server.accept()
    [response] = server.data_to_send()
    assert b"permessage-deflate" in response
    client.receive_data(response)
    client.events_received()
    payload = b"compressible " * 100
    server.send_message(payload)
    [compressed] = server.data_to_send()
    assert compressed[0] & 0x40  # RSV1: this frame is compressed
    assert len(compressed) < len(payload)
    client.receive_data(compressed)
    client.send_message(payload)
    pump(client, server)
    assert client.events_received() == [MessageReceived(data=payload)]
    assert server.events_received() == [MessageReceived(data=payload)]


def test_malformed_compression_offer_is_declined() -> None:
    server = WebSocket(Role.SERVER, WebSocketConfig(compression=True))
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=x\r\n"
    server.receive_data(request(extra=offer))
    server.events_received()
    server.accept()
    assert b"permessage-deflate" not in out(server)
    server.send_message(b"x")
    assert out(server) == b"\x82\x01x"


def test_compression_is_only_used_when_both_sides_want_it() -> None:
    client, server = open_pair(WebSocketConfig(compression=True), WebSocketConfig())
    server.send_message(b"x" * 100)
    [data] = server.data_to_send()
    assert not data[0] & 0x40
    client.receive_data(data)
    assert client.events_received() == [MessageReceived(data=b"x" * 100)]


# -- command misuse --------------------------------------------------------------------------------


def test_commands_misused_raise_local_protocol_error() -> None:
    client = WebSocket.client(host="example.com")
    server = WebSocket(Role.SERVER)
    with pytest.raises(LocalProtocolError):
        client.send_message(b"too early")
    with pytest.raises(LocalProtocolError):
        client.send_ping()
    with pytest.raises(LocalProtocolError):
        client.accept()
    with pytest.raises(LocalProtocolError):
        client.reject(400, "no")
    with pytest.raises(LocalProtocolError):
        server.accept()  # no request yet
    with pytest.raises(LocalProtocolError):
        client.close()  # handshake: use abort()
    pump(client, server)
    server.events_received()
    with pytest.raises(LocalProtocolError):
        server.send_message(b"before accept")
    with pytest.raises(LocalProtocolError):
        server.accept(subprotocol="not.offered")
    with pytest.raises(LocalProtocolError):
        server.reject(302, "redirect")
    with pytest.raises(LocalProtocolError):
        server.accept(extra_headers=[("Bad Name", "x")])
    with pytest.raises(LocalProtocolError):
        server.accept(extra_headers=[("Sec-WebSocket-Accept", "forged")])
    with pytest.raises(LocalProtocolError):
        server.accept(extra_headers=[("X-Injected", "a\r\nb: c")])
    assert server.state is WebSocketState.HANDSHAKE
    assert server.data_to_send() == []
    server.accept()
    with pytest.raises(LocalProtocolError):
        server.accept()
    pump(client, server)
    with pytest.raises(LocalProtocolError):
        client.send_message("text is not allowed in envelope mode")
    with pytest.raises(LocalProtocolError):
        client.send_message(bytes((1 << 20) + 1))
    with pytest.raises(LocalProtocolError):
        client.send_message(42)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        client.send_ping(bytes(126))
    assert client.data_to_send() == []
    client.send_message(bytes(1 << 20))  # exactly the limit is fine
    client.close()
    with pytest.raises(LocalProtocolError):
        client.send_message(b"after close")
    with pytest.raises(LocalProtocolError):
        client.send_ping()
    pump(client, server)
    assert client.state is CLOSED
    with pytest.raises(LocalProtocolError):
        client.send_message(b"after closed")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1014, 1015, 2999, 5000, True])
def test_close_refuses_codes_that_may_not_be_sent(code: int) -> None:
    client, _ = open_pair()
    with pytest.raises(LocalProtocolError):
        client.close(code)
    assert client.state is OPEN
    assert client.data_to_send() == []


@pytest.mark.parametrize("code", [1000, 1003, 1007, 1011, 1012, 1013, 3000, 4999])
def test_close_accepts_sendable_codes(code: int) -> None:
    client, server = open_pair()
    client.close(code)
    pump(client, server)
    assert closed_event(server).code == code


def test_close_reason_limit() -> None:
    client, _ = open_pair()
    with pytest.raises(LocalProtocolError):
        client.close(1000, "é" * 62)  # 124 bytes
    with pytest.raises(LocalProtocolError):
        client.close(1000, "\ud800")  # a lone surrogate is not UTF-8
    client.close(1000, "é" * 61 + "a")  # 123 bytes


@TYPED
def test_wrongly_typed_arguments_raise_local_protocol_error() -> None:
    client, _ = open_pair()
    with pytest.raises(LocalProtocolError):
        client.send_ping("text")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        client.close(1000, b"bytes")  # type: ignore[arg-type]
    client = WebSocket.client(host="example.com")
    server = WebSocket(Role.SERVER)
    pump(client, server)
    server.events_received()
    with pytest.raises(LocalProtocolError):
        server.reject(400, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        server.accept(extra_headers=["X-Not-A-Pair"])  # type: ignore[list-item]


def test_bad_client_arguments() -> None:
    with pytest.raises(LocalProtocolError):
        WebSocket(Role.CLIENT)
    with pytest.raises(LocalProtocolError):
        WebSocket.client(host="exa mple.com")
    with pytest.raises(LocalProtocolError):
        WebSocket.client(host="a..b")
    with pytest.raises(LocalProtocolError):
        WebSocket.client(host="example.com", path="no-slash")
    with pytest.raises(LocalProtocolError):
        WebSocket.client(host="example.com", extra_headers=[("Host", "other")])
    with pytest.raises(LocalProtocolError):
        WebSocket(Role.SERVER).abort(7)


# -- chunking invariance and never-raise contract --------------------------------------------------


def scripted_exchange() -> tuple[WebSocket, bytes, WebSocket, bytes]:
    """A fresh client and server, and the bytes each receives in a scripted exchange: handshake,
    messages (one fragmented by hand, with a ping inside), pings, and close frames."""
    config = WebSocketConfig.plain(subprotocols=("sigma.v1",))
    client = WebSocket.client(host="example.com", config=config)
    client_start = copy.deepcopy(client)
    request_bytes = out(client)
    server = WebSocket(Role.SERVER, config)
    server.receive_data(request_bytes)
    server.events_received()
    server.accept()
    response = out(server)
    client.receive_data(response)
    client.send_message(b"\x00" * 300)
    client.send_message("héllo")
    client.send_ping(b"cli")
    client.send_message(b"")
    to_server = (
        request_bytes
        + out(client)
        + frame(BINARY, b"frag", fin=False)
        + frame(PING, b"mid")
        + frame(CONT, b"mented")
        + frame(CLOSE, close_payload(4000, b"bye"))
    )
    server.send_message(b"welcome")
    server.send_message("text ✓")
    server.send_ping(b"srv")
    to_client = response + out(server) + frame(CLOSE, mask=None)
    return client_start, to_client, WebSocket(Role.SERVER, config), to_server


def feed(ws: WebSocket, data: bytes, cuts: Sequence[int]) -> tuple[list[Any], bytes]:
    events: list[WebSocketEvent] = []
    sent = b""
    points = [0, *sorted(set(cuts)), len(data)]
    for start, end in itertools.pairwise(points):
        if start == end:
            continue
        ws.receive_data(data[start:end])
        # Drained until empty: a close frame that shared a read with messages is acted on
        # once they were handled (the second, empty call).
        while new := ws.events_received():
            events += new
            if any(isinstance(e, HandshakeRequest) for e in new):
                ws.accept()
        sent += out(ws)
    return normalized(events), sent if ws.role is Role.SERVER else b""


@pytest.fixture(scope="module")
def script() -> tuple[WebSocket, bytes, WebSocket, bytes]:
    return scripted_exchange()


@DEEPCOPY
def test_scripted_exchange_events(script: tuple[WebSocket, bytes, WebSocket, bytes]) -> None:
    client, to_client, server, to_server = script
    server_events, _ = feed(copy.deepcopy(server), to_server, [])
    assert [type(e) for e in server_events[:1]] == [HandshakeRequest]
    assert server_events[1:] == [
        MessageReceived(data=b"\x00" * 300),
        MessageReceived(data="héllo"),
        PingReceived(payload=b"cli"),
        MessageReceived(data=b""),
        PingReceived(payload=b"mid"),
        MessageReceived(data=b"fragmented"),
        Closed(code=4000, reason="bye", initiated_locally=False, clean=True),
    ]
    client_events, _ = feed(copy.deepcopy(client), to_client, [])
    assert client_events == [
        HandshakeAccepted(subprotocol="sigma.v1", headers=()),
        MessageReceived(data=b"welcome"),
        MessageReceived(data="text ✓"),
        PingReceived(payload=b"srv"),
        Closed(code=1005, reason="", initiated_locally=False, clean=True),
    ]


@DEEPCOPY
def test_byte_by_byte_equals_whole(script: tuple[WebSocket, bytes, WebSocket, bytes]) -> None:
    client, to_client, server, to_server = script
    for ws, data in ((server, to_server), (client, to_client)):
        whole = feed(copy.deepcopy(ws), data, [])
        assert feed(copy.deepcopy(ws), data, range(1, len(data))) == whole


@DEEPCOPY
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_random_splits_equal_whole(
    script: tuple[WebSocket, bytes, WebSocket, bytes], data: st.DataObject
) -> None:
    client, to_client, server, to_server = script
    for ws, received in ((server, to_server), (client, to_client)):
        cuts = data.draw(st.lists(st.integers(0, len(received)), max_size=30))
        assert feed(copy.deepcopy(ws), received, cuts) == feed(copy.deepcopy(ws), received, [])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_receive_never_raises_on_open_connection(garbage: bytes, plain: bool) -> None:
    server = open_server(WebSocketConfig.plain(max_message_size=64) if plain else None)
    server.receive_data(garbage)
    server.receive_data(None)
    events = server.events_received()
    closed = [e for e in events if isinstance(e, Closed)]
    assert len(closed) == 1
    assert events[-1] is closed[0]
    assert server.state is CLOSED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([Role.SERVER, Role.CLIENT]))
def test_receive_never_raises_during_handshake(garbage: bytes, role: Role) -> None:
    ws = WebSocket(role) if role is Role.SERVER else WebSocket.client(host="example.com")
    ws.receive_data(garbage)
    ws.receive_data(None)
    events = ws.events_received()
    assert len(events) == 1
    assert isinstance(events[0], (Closed, HandshakeFailed))
    assert ws.transport_should_close
