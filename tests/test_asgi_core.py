"""Message mode in the core (sigma_core.message_socket): a hub whose connections sit on a
MessageSocket, as SigmaASGIApp drives it. Synchronous, no I/O: time advances by assignment.

The differential test holds message mode equal to the framed path: the same client envelopes
give byte-identical server envelopes (and the same close code) either way.
"""

from __future__ import annotations

from typing import Any

import pytest

from sigma_core import codec
from sigma_core.connection import (
    ClientConnection,
    Closed,
    ConnectionConfig,
    ConnectionState,
    RawMessage,
    ServerConnection,
)
from sigma_core.entropy import SeededEntropy
from sigma_core.errors import CloseCode, ErrorCode, LocalProtocolError
from sigma_core.hub import CloseAction, Hub, HubConfig
from sigma_core.message_socket import MessageSocket
from sigma_core.messages import Data, Goodbye, Hello, Subscribe, Subscribed, Welcome
from sigma_core.websocket import HandshakeRequest, WebSocketConfig, WebSocketState

T0 = 1000.0


def request(subprotocols: tuple[str, ...] = ("sigma.v1",), **fields: Any) -> HandshakeRequest:
    values: dict[str, Any] = {"path": "/", "headers": (("origin", "https://app.example"),),
                              "subprotocols": subprotocols, "host": "app.example"}
    values.update(fields)
    return HandshakeRequest(**values)


def message_hub(**config: Any) -> Hub:
    return Hub(HubConfig(**config), entropy=SeededEntropy(7), now=T0)


def welcomed(hub: Hub, now: float = T0) -> int:
    """A message-mode connection past its Hello; its Welcome flushed and checked."""
    conn_id = hub.open_message_connection(request(), now)
    hub.receive_message(conn_id, codec.encode(Hello()), now)
    (out,) = [o for o in hub.flush(T0) if o[0] == conn_id]
    assert isinstance(codec.decode(out[1][0]), Welcome)
    hub.events_received()
    return conn_id


def chunks_of(hub: Hub, conn_id: int) -> tuple[list[bytes], CloseAction]:
    found = [(chunks, action) for cid, chunks, action in hub.flush(T0) if cid == conn_id]
    return found[0] if found else ([], CloseAction.NONE)


# ----------------------------------------------------------------------------- the socket


def test_a_request_without_our_subprotocol_is_refused_with_400() -> None:
    hub = message_hub()
    conn_id = hub.open_message_connection(request(subprotocols=("chat",)), T0)
    socket = hub.message_socket(conn_id)
    assert socket is not None
    assert socket.state is WebSocketState.REJECTED
    assert socket.rejection == (400, "no supported subprotocol offered (offered: chat; "
                                     "supported: sigma.v1)")
    (_, chunks, action), = hub.flush(T0)
    assert (chunks, action) == ([], CloseAction.CLOSE)


def test_the_upgrade_is_decided_at_once_with_the_hubs_limits() -> None:
    hub = message_hub(allowed_origins=("https://other.example",))
    socket = hub.message_socket(hub.open_message_connection(request(), T0))
    assert socket is not None
    assert socket.rejection == (403, "origin 'https://app.example' is not allowed")

    hub = message_hub()
    socket = hub.message_socket(hub.open_message_connection(request(), T0))
    assert socket is not None
    assert (socket.state, socket.subprotocol, socket.rejection) == (
        WebSocketState.OPEN, "sigma.v1", None)


def test_a_framed_connection_takes_no_whole_messages() -> None:
    conn = ServerConnection(now=T0)
    with pytest.raises(LocalProtocolError, match="MessageSocket"):
        conn.receive_message(b"x", T0)
    socket = MessageSocket(request())
    with pytest.raises(LocalProtocolError, match="whole messages"):
        socket.receive_data(b"bytes")
    socket.accept()
    with pytest.raises(LocalProtocolError, match="binary"):
        socket.send_message("text")


# ----------------------------------------------------------------------------- no copies


def test_a_broadcast_hands_every_connection_the_same_envelope_object() -> None:
    hub = message_hub()
    a, b = welcomed(hub), welcomed(hub)
    hub.broadcast(b"to all", T0)
    out = {cid: chunks for cid, chunks, _ in hub.flush(T0)}
    (to_a,), (to_b,) = out[a], out[b]
    assert to_a is to_b  # encoded once, handed over as is: no frame header, no copy
    body = codec.decode(to_a)
    assert isinstance(body, Data)
    assert body.payload == b"to all"


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("message", "code", "reason"), [
    ("a text message", CloseCode.UNSUPPORTED_DATA, "text messages are not accepted"),
    (bytes(5000), CloseCode.MESSAGE_TOO_BIG, "message of 5000 bytes exceeds max_message_size"),
    (b"\xde\xad\xbe\xef" * 8, CloseCode.BAD_ENVELOPE, None),
])
def test_bad_input_closes_with_the_framed_paths_code(message: bytes | str, code: CloseCode,
                                                     reason: str | None) -> None:
    hub = message_hub(max_topics_per_session=4,
                      connection=ConnectionConfig(websocket=WebSocketConfig(max_message_size=4096)))
    conn_id = welcomed(hub)
    socket = hub.message_socket(conn_id)
    assert socket is not None
    hub.receive_message(conn_id, message, T0)
    chunks, action = chunks_of(hub, conn_id)
    assert action is CloseAction.CLOSE
    # As on the framed path: the WebSocket layer's refusals (1003, 1009) are a bare close; the
    # envelope layer's say Goodbye first.
    assert [type(codec.decode(c)) for c in chunks] == (
        [Goodbye] if code >= 4000 else [])
    assert socket.close_code == code
    if reason is not None:
        assert socket.close_reason.startswith(reason)
    (event,) = hub.events_received()
    assert getattr(event, "code", None) == code


def test_a_paused_connection_past_the_high_water_mark_is_cut_with_4007() -> None:
    hub = message_hub(outgoing_high_water=10_000)
    slow, good = welcomed(hub), welcomed(hub)
    hub.pause_writing(slow)  # its ASGI send is still busy with an earlier batch
    for _ in range(9):
        hub.broadcast(bytes(1000), T0)
    out = {cid: (chunks, action) for cid, chunks, action in hub.flush(T0)}
    assert slow not in out or out[slow][1] is CloseAction.NONE
    assert len(out[good][0]) == 9
    hub.broadcast(bytes(2000), T0)  # past 10_000 bytes held for the slow one
    out = {cid: (chunks, action) for cid, chunks, action in hub.flush(T0)}
    chunks, action = out[slow]
    assert action is CloseAction.ABORT
    assert isinstance(codec.decode(chunks[0]), Goodbye)
    socket = hub.message_socket(slow)
    assert socket is not None
    assert socket.close_code == CloseCode.SLOW_CONSUMER
    assert hub.stats(T0).slow_consumer_disconnects == 1
    assert len(out[good][0]) == 1


@pytest.mark.parametrize(("code", "goodbye", "expected"), [
    (1000, False, CloseCode.NORMAL_CLOSURE),
    (4321, False, 4321),
    (1006, False, CloseCode.ABNORMAL_CLOSURE),
    (1005, False, CloseCode.ABNORMAL_CLOSURE),  # uvicorn's code for a dropped TCP connection
    (1006, True, CloseCode.NORMAL_CLOSURE),  # hypercorn's code for any close it did not start
])
def test_the_peers_close_code(code: int, goodbye: bool, expected: int) -> None:
    hub = message_hub()
    conn_id = welcomed(hub)
    if goodbye:
        hub.receive_message(conn_id, codec.encode(Goodbye(code=ErrorCode.NORMAL)), T0)
    hub.connection_lost(conn_id, T0 + 1, code=code, reason="bye")
    (event,) = hub.events_received()
    assert getattr(event, "code", None) == expected
    assert getattr(event, "session_ended", None) is goodbye


# ----------------------------------------------------------------------------- differential


def _script(hub: Hub, feed: Any, now: float) -> None:
    """The same conversation, whatever the transport: ``feed(envelope, now)`` delivers one
    client envelope."""
    feed(codec.encode(Hello()), now)
    feed(codec.encode_data(seq=1, payload=b"up", topic=""), now + 0.01)
    feed(codec.encode(Subscribe(topic="room")), now + 0.02)
    hub.publish("room", b"r1", now + 0.03)
    hub.broadcast(b"all", now + 0.04)
    hub.handle_timer(now + 0.2)  # the delayed Ack
    hub.handle_timer(now + 26)  # a heartbeat Ping
    feed(codec.encode_data(seq=2, payload=b"x" * 3000, topic="room"), now + 27)
    hub.shutdown(now + 28)


def test_message_mode_sends_what_the_framed_path_sends() -> None:
    config = ConnectionConfig(websocket=WebSocketConfig.plain(subprotocols=("sigma.v1",),
                                                              allow_text=False),
                              envelope=False)
    # Framed: a plain-mode client carries the envelopes as whole WebSocket messages.
    framed = message_hub()
    conn_id = framed.open_connection(T0)
    client = ClientConnection(host="app.example", config=config, now=T0)
    framed_out: list[bytes] = []
    framed_close: list[int] = []

    def pump() -> None:
        for cid, chunks, _ in framed.flush(T0):
            assert cid == conn_id
            client.receive_data(b"".join(chunks), T0)
        for event in client.events_received():
            if isinstance(event, RawMessage):
                assert isinstance(event.data, bytes)
                framed_out.append(event.data)
            elif isinstance(event, Closed):
                framed_close.append(event.code)
        out = client.data_to_send()
        if out:
            framed.receive_data(conn_id, b"".join(out), T0)
            pump()

    framed.receive_data(conn_id, b"".join(client.data_to_send()), T0)
    pump()
    assert client.state is ConnectionState.OPEN

    def feed_framed(envelope: bytes, now: float) -> None:
        client.send_raw(envelope)
        framed.receive_data(conn_id, b"".join(client.data_to_send()), now)
        pump()

    # Message mode: the envelopes themselves.
    hub = message_hub()
    mid = hub.open_message_connection(request(), T0)
    socket = hub.message_socket(mid)
    assert socket is not None
    message_out: list[bytes] = []

    def feed_message(envelope: bytes, now: float) -> None:
        hub.receive_message(mid, envelope, now)
        for _, chunks, _ in hub.flush(now):
            message_out.extend(chunks)

    _script(framed, feed_framed, T0)
    pump()
    _script(hub, feed_message, T0)
    for _, chunks, _ in hub.flush(T0):
        message_out.extend(chunks)

    assert isinstance(codec.decode(message_out[0]), Welcome)
    assert any(isinstance(codec.decode(m), Subscribed) for m in message_out)
    assert message_out == framed_out
    assert [socket.close_code] == framed_close == [CloseCode.GOING_AWAY]
