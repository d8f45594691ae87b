"""Payload serializers: each built-in one round-trips, a user's own plugs in, encoding errors are
the caller's (nothing sent), and a payload that cannot be decoded reaches the app as an error
for that one message while the connection's other traffic goes on — on both adapters."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest
from adapters_support import (
    BACKENDS,
    DEADLINE,
    Recorder,
    any_server,
    connected_client,
    next_message,
    serving,
    url,
)

from sigma_core.errors import LocalProtocolError, PayloadDecodeError
from sigma_core.serializers import (
    JSON,
    RAW,
    MsgpackSerializer,
    Serializer,
    check_name,
    encode_payload,
)

VALUES: list[Any] = [{"text": "héllo", "n": 3, "ok": True, "none": None},
                     [1, 2.5, "x"], "plain", 0]


@pytest.mark.parametrize("serializer", [JSON, MsgpackSerializer()], ids=lambda s: s.name)
@pytest.mark.parametrize("value", VALUES)
def test_round_trip(serializer: Serializer, value: Any) -> None:
    assert serializer.decode(bytes(serializer.encode(value))) == value


def test_raw_passes_bytes_through_untouched() -> None:
    data = memoryview(b"abc")
    assert encode_payload(RAW, data) is data
    assert RAW.decode(b"abc") == b"abc"
    with pytest.raises(LocalProtocolError, match="raw serializer cannot encode str"):
        encode_payload(RAW, "text")


def test_msgpack_keeps_bytes_and_json_refuses_what_it_cannot_say() -> None:
    packer = MsgpackSerializer()
    assert packer.decode(packer.encode({"blob": b"\x00\xff", 1: "int key"})) == {
        "blob": b"\x00\xff", 1: "int key"}
    with pytest.raises(LocalProtocolError, match="json serializer cannot encode"):
        encode_payload(JSON, {"x": math.nan})
    with pytest.raises(LocalProtocolError, match="json serializer cannot encode bytes"):
        encode_payload(JSON, b"\x00")


def test_serializer_names() -> None:
    assert check_name("protobuf.chat-v2") == "protobuf.chat-v2"
    for bad in ("", "JSON", "a" * 33, "with space", "-lead"):
        with pytest.raises(ValueError, match="serializer name"):
            check_name(bad)


class Upper:
    """A user's own serializer: text, upper-cased on the wire."""

    name = "upper"

    def encode(self, value: Any) -> bytes:
        return str(value).upper().encode()

    def decode(self, data: bytes) -> str:
        return data.decode("ascii")


def test_a_users_own_serializer_fits_the_protocol() -> None:
    upper: Serializer = Upper()
    assert isinstance(upper, Serializer)
    assert upper.decode(bytes(encode_payload(upper, "hi"))) == "HI"
    with pytest.raises(UnicodeDecodeError):
        upper.decode("é".encode())


# ----------------------------------------------------------------------------- adapters


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


class LenientJson:
    """Named json, but lets bytes through as they are: a peer that sends what JSON cannot
    decode, to show that only that message is lost to the app."""

    name = "json"

    def encode(self, value: Any) -> bytes | bytearray | memoryview:
        return value if isinstance(value, bytes) else JSON.encode(value)

    def decode(self, data: bytes) -> Any:
        return JSON.decode(data)


@pytest.mark.anyio
@any_server  # SigmaASGIApp under each ASGI server too
async def test_json_both_ways_and_undecodable_messages_are_errors(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, serializer=JSON) as server:
            server_log = Recorder(server, "message", "error")
            server.on("message", lambda client, data, topic:
                      server.send_to_client(client, {"echo": data}))
            async with connected_client(anyio_backend, url(server), serializer=LenientJson()
                                        ) as client:
                client_log = Recorder(client, "message", "error")
                client.send(b"\xff not json")  # the server cannot decode this one
                client.send({"n": 1}, topic="room")
                _, data, topic = await server_log.wait("message")
                assert (data, topic) == ({"n": 1}, "room")
                [(error,)] = server_log.calls["error"]
                assert isinstance(error, PayloadDecodeError)
                assert (error.serializer, error.seq, error.data) == ("json", 1, b"\xff not json")
                # (A client with a message listener that never iterates queues nothing: the
                # decoded value comes through the callback.)
                data, _offset, _ts, topic = await client_log.wait("message")
                assert (data, topic) == ({"echo": {"n": 1}}, "$inbox")
                assert client_log.calls["error"] == []
                assert client_log.calls["message"][0][0] == {"echo": {"n": 1}}


@pytest.mark.anyio
async def test_async_for_yields_decoded_values(anyio_backend: str) -> None:
    # No message listener: ``async for`` (next_message) gets Message.data as the value.
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, serializer=JSON) as server, \
                connected_client(anyio_backend, url(server), serializer=JSON) as client:
            server.broadcast({"n": [1, 2]})
            message = await next_message(client)
            assert (message.data, message.topic) == ({"n": [1, 2]}, "$all")


@pytest.mark.anyio
async def test_client_reports_an_undecodable_message_and_keeps_receiving(
        anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, serializer=LenientJson()) as server, \
                connected_client(anyio_backend, url(server), serializer=JSON) as client:
            log = Recorder(client, "message", "error")
            server.broadcast(b"\x00garbage")
            server.broadcast({"after": "garbage"})
            data, *_ = await log.wait("message")
            assert data == {"after": "garbage"}
            [(error,)] = log.calls["error"]
            assert isinstance(error, PayloadDecodeError)
            assert (error.topic, error.message_id, error.data) == ("$all", 1, b"\x00garbage")
            assert [args[0] for args in log.calls["message"]] == [{"after": "garbage"}]


@pytest.mark.anyio
@any_server
async def test_encoding_failure_sends_nothing(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, serializer=JSON) as server, \
                connected_client(anyio_backend, url(server), serializer=JSON) as client:
            with pytest.raises(LocalProtocolError, match="json serializer"):
                client.send({1, 2})  # a set is not JSON
            with pytest.raises(LocalProtocolError, match="json serializer"):
                server.broadcast(object())
            client.send(["fine"])
            log = Recorder(server, "message")
            _, data, _ = await log.wait("message")
            assert data == ["fine"]
            session = client.get_session()
            assert session is not None
            assert session.pending <= 1
