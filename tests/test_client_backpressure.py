"""The clients' receive queue is bounded (``ClientOptions.max_queued_messages``): an app that
does not take its messages makes the client stop reading its socket, so TCP pushes back on the
server (whose ``outgoing_high_water`` decides), and nothing is dropped: when the app reads
again every message arrives once, in order. Both adapters, real sockets on 127.0.0.1.
"""

from __future__ import annotations

import logging

import anyio
import pytest
from adapters_support import BACKENDS, Recorder, make_client, serving, url

from sigma_core.api import ClientOptions
from sigma_core.backplane import HistoryLimits
from sigma_core.errors import LocalProtocolError

pytestmark = pytest.mark.anyio

SIZE = 16384
#: One socket read: asyncio's selector reads at most 256 KiB, trio's client 64 KiB.
ONE_READ = 262_144 // SIZE + 1


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def payload(i: int) -> bytes:
    return i.to_bytes(4, "big") + bytes([i & 0xFF]) * (SIZE - 4)


async def test_a_client_whose_app_does_not_read_stops_reading_and_loses_nothing(
        anyio_backend: str) -> None:
    # 19 MB published at a client whose app takes nothing for a while: the client holds at
    # most its bound (plus one read), the server cuts it as a slow consumer once the kernel's
    # buffers and its 512 KiB high-water mark are full; once the app reads, the client finds
    # the cut, resumes the session (its queue filling and pausing again while the replay
    # comes), and everything arrives exactly once, in order, from the topic's history.
    total, limit = 1200, 50
    with anyio.fail_after(60):
        async with serving(anyio_backend, outgoing_high_water=512 * 1024,
                           max_replay_bytes=64 << 20,
                           history=HistoryLimits(max_count=total, max_bytes=64 << 20)) as server:
            client = make_client(anyio_backend, url(server), max_queued_messages=limit)
            async with client:
                events = Recorder(client, "subscribed", "reconnecting")
                client.subscribe("flood")
                await events.wait("subscribed")
                most = 0
                for i in range(total):
                    server.publish("flood", payload(i))
                    if i % 20 == 19:
                        await anyio.sleep(0.001)
                        most = max(most, client.queued_messages)
                while server.get_stats().slow_consumer_disconnects == 0:
                    most = max(most, client.queued_messages)
                    await anyio.sleep(0.01)
                await anyio.sleep(0.2)
                most = max(most, client.queued_messages)
                assert limit <= most <= limit + ONE_READ
                got: list[int] = []
                async for message in client:
                    most = max(most, client.queued_messages)
                    got.append(int.from_bytes(message.data[:4], "big"))
                    assert message.data == payload(got[-1])
                    if len(got) == total:
                        break
                assert got == list(range(total))  # once each, in order
                assert most <= limit + ONE_READ
                # The paused client learnt of the cut when it read again, and resumed.
                assert events.calls["reconnecting"]


async def test_a_paused_client_is_not_a_dead_server(anyio_backend: str) -> None:
    # Reading paused for 3x the heartbeat timeout: the silence is the client's own doing, so
    # it keeps the connection (no reconnect); then every message arrives in order.
    total, limit = 40, 10
    with anyio.fail_after(20):
        async with serving(anyio_backend, heartbeat_interval=0.2,
                           heartbeat_timeout=0.5) as server:
            client = make_client(anyio_backend, url(server), max_queued_messages=limit,
                                 heartbeat_interval=0.2, heartbeat_timeout=0.5)
            async with client:
                events = Recorder(client, "subscribed", "reconnecting", "disconnection")
                client.subscribe("room")
                await events.wait("subscribed")
                for i in range(total):
                    server.publish("room", payload(i))
                await anyio.sleep(1.5)
                assert client.queued_messages <= limit + ONE_READ
                assert not events.calls["reconnecting"]
                assert not events.calls["disconnection"]
                got = []
                async for message in client:
                    got.append(int.from_bytes(message.data[:4], "big"))
                    if len(got) == total:
                        break
                assert got == list(range(total))
                assert not events.calls["reconnecting"]


async def test_callbacks_only_no_queue(anyio_backend: str, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    # max_queued_messages=0: the message callback sees everything, nothing is queued or
    # paused, and async for says why it cannot work.
    total = 3000
    with anyio.fail_after(30):
        async with serving(anyio_backend) as server:
            client = make_client(anyio_backend, url(server), max_queued_messages=0)
            async with client:
                events = Recorder(client, "subscribed", "message")
                client.subscribe("room")
                await events.wait("subscribed")
                for i in range(total):
                    server.publish("room", payload(i)[:64])
                await events.wait("message", total)
                assert client.queued_messages == 0
                with pytest.raises(LocalProtocolError, match="max_queued_messages=0"):
                    async for _ in client:
                        pass
    assert [int.from_bytes(args[0][:4], "big") for args in events.calls["message"]] \
        == list(range(total))


async def test_a_message_callback_alone_never_stalls(anyio_backend: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # The original's way: only a `message` callback, the default bound (1,000), never `async
    # for`. Nothing is queued, so three times the bound arrives without a pause or a warning.
    total = 3000
    with anyio.fail_after(30), caplog.at_level(logging.WARNING):
        async with serving(anyio_backend) as server:
            client = make_client(anyio_backend, url(server))
            assert client.options.max_queued_messages == 1000
            async with client:
                events = Recorder(client, "subscribed", "message")
                client.subscribe("room")
                await events.wait("subscribed")
                for i in range(total):
                    server.publish("room", payload(i)[:64])
                await events.wait("message", total)
                assert client.queued_messages == 0
    assert [int.from_bytes(args[0][:4], "big") for args in events.calls["message"]] \
        == list(range(total))
    assert not [r for r in caplog.records if "max_queued_messages" in r.getMessage()]


async def test_a_forgotten_queue_is_said_once(anyio_backend: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    # No `message` listener and nothing iterates: messages queue for an `async for` that never
    # comes; the client stops at the bound and says why, once, at WARNING.
    with anyio.fail_after(20), caplog.at_level(logging.WARNING):
        async with serving(anyio_backend) as server:
            client = make_client(anyio_backend, url(server), max_queued_messages=5)
            async with client:
                events = Recorder(client, "subscribed")
                client.subscribe("room")
                await events.wait("subscribed")
                for i in range(100):  # 1.6 MB: more than one read
                    server.publish("room", payload(i))
                while client.queued_messages < 5:
                    await anyio.sleep(0.01)
                await anyio.sleep(0.2)
                assert client.queued_messages < 100
    warnings = [r for r in caplog.records if "max_queued_messages=0" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING


def test_max_queued_messages_is_checked() -> None:
    assert ClientOptions(url="ws://h/").max_queued_messages == 1000
    with pytest.raises(ValueError, match="max_queued_messages"):
        ClientOptions(url="ws://h/", max_queued_messages=-1)
