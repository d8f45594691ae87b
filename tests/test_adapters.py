"""Both adapters over real sockets on 127.0.0.1: each scenario is written once and runs on
``sigma_asyncio`` and on ``sigma_trio`` (anyio's pytest plugin, ``anyio_backend`` below).

Interop: a client of one backend against the other backend's server (run as a subprocess,
``interop_server.py``), and a plain ``websockets`` client speaking the envelope protocol.
Every test runs under ``anyio.fail_after(DEADLINE)`` and waits on events, never on sleeps.
Backend-specific behaviour (uvloop, ``sigma_asyncio.run``, trio cancellation, the echo
servers) stays in ``test_asyncio_adapter.py`` and ``test_trio_adapter.py``.
"""

from __future__ import annotations

import logging
import re
import ssl
from contextlib import AsyncExitStack, suppress

import anyio
import pytest
import trustme
from adapters_support import (
    BACKENDS,
    DEADLINE,
    Client,
    Recorder,
    any_server,
    connected_client,
    hosting,
    interop_server,
    make_client,
    next_message,
    other,
    proxy_to,
    raw_client,
    server_logger,
    serving,
    session_of,
    url,
)
from websockets.sync.client import ClientConnection as WebSocketsClient
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from sigma_core import codec
from sigma_core.api import ReconnectInfo
from sigma_core.client import ConnectionStatus, RecoveryFailed, SessionReset
from sigma_core.errors import (
    CloseCode,
    ConnectionFailed,
    RecoveryFailedError,
    SessionLostError,
)
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest
from sigma_core.messages import Data, Hello, Welcome

pytestmark = pytest.mark.anyio

#: 64 KiB that are not all alike (a torn or reordered frame would show).
PAYLOAD = bytes(range(256)) * 256


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) from a throwaway CA that only the client trusts."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context


# ----------------------------------------------------------------------------- basics


@any_server
async def test_connect_send_and_receive_both_ways(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            events = Recorder(server, "connection", "message", "disconnection")
            client = make_client(anyio_backend, url(server))
            client_events = Recorder(client, "connection", "message")
            assert client.get_status() is ConnectionStatus.DISCONNECTED
            assert client.get_session() is None
            async with client:
                assert client.get_status() is ConnectionStatus.CONNECTED
                (session,) = await events.wait("connection")
                info = client.get_session()
                assert info is not None
                assert info.id == session.id
                assert not info.resumed
                assert server.get_connected_clients() == [session]

                assert client.send(b"up")
                assert await events.wait("message") == (session, b"up", "")
                assert client.send(b"ping", topic="chat")
                assert await events.wait("message", 2) == (session, b"ping", "chat")

                assert server.send_to_client(session, b"down-1")
                assert server.send_to_client(session.id, b"down-2")
                assert not server.send_to_client("no-such-session", b"lost")
                first = await next_message(client)
                assert (first.data, first.topic, first.message_id) == (b"down-1", "$inbox", 1)
                assert client_events.calls["message"][0] == (
                    b"down-1", first.message_id, first.timestamp_ms, "$inbox")
                data, message_id, _, topic = await client_events.wait("message", 2)
                assert (data, message_id, topic) == (b"down-2", 2, "$inbox")

                stats = server.get_stats()
                assert (stats.connected_clients, stats.messages_received,
                        stats.messages_sent) == (1, 2, 2)

            # Leaving the block disconnected: the stream yields what it holds, then ends
            # (and stays ended).
            assert client.get_status() is ConnectionStatus.DISCONNECTED
            assert [m.data async for m in client] == [b"down-2"]
            assert [m async for m in client] == []
            assert [s for (s,) in client_events.calls["connection"]] == [
                ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED,
                ConnectionStatus.DISCONNECTED]
            _, reason = await events.wait("disconnection")
            assert reason.startswith("normal_closure")
            assert server.get_client(session.id) is None  # a clean disconnect ends the session
            assert server.get_connected_clients() == []


@any_server
async def test_connect_and_disconnect_log_lines_name_the_peer_address(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The socket adapters keep each connection's host and port and format the address when a
    # line is logged (not one string per connection): the line of a connection's end, logged
    # after its socket is gone, still names it.
    caplog.set_level(logging.DEBUG, logger=server_logger(anyio_backend))
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            events = Recorder(server, "connection", "disconnection")
            client = make_client(anyio_backend, url(server))
            async with client:
                await events.wait("connection")
            await events.wait("disconnection")
    peers = {r.sigma_event: r.sigma_peer for r in caplog.records  # type: ignore[attr-defined]
             if r.name == server_logger(anyio_backend)
             and getattr(r, "sigma_event", None) in ("connected", "disconnected")}
    assert set(peers) == {"connected", "disconnected"}
    assert re.fullmatch(r"127\.0\.0\.1:[0-9]+", peers["connected"]), peers
    assert peers["disconnected"] == peers["connected"]


@any_server
async def test_a_listener_that_raises_is_logged_with_its_event_and_the_connection_stays(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Every adapter reports a raising callback the same way (sigma_core.api.EventEmitter):
    # logged at ERROR naming the event and where it was registered, the other listeners still
    # called, the connection that fired it kept.
    failed_up = RuntimeError("server listener failed")
    failed_down = ValueError("client listener failed")

    def server_boom(session: object, data: bytes, topic: str) -> None:
        if data == b"boom":
            raise failed_up

    def client_boom(data: bytes, *_: object) -> None:
        if data == b"boom":
            raise failed_down

    caplog.set_level(logging.ERROR)
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            server.on("message", server_boom)
            events = Recorder(server, "message")  # registered after the one that raises
            client = make_client(anyio_backend, url(server))
            client.on("message", client_boom)
            client_events = Recorder(client, "message")
            async with client:
                assert client.send(b"boom")
                (session, _, _) = await events.wait("message")
                assert client.send(b"after")
                assert (await events.wait("message", 2))[1] == b"after"
                assert server.send_to_client(session, b"boom")
                await client_events.wait("message")
                assert server.send_to_client(session, b"after")
                assert (await client_events.wait("message", 2))[0] == b"after"
                assert client.get_status() is ConnectionStatus.CONNECTED
                assert server.get_connected_clients() == [session]
                assert server.get_stats().connected_clients == 1
    reported = {r.sigma_listener_of: r for r in caplog.records  # type: ignore[attr-defined]
                if getattr(r, "sigma_callback", None) == "message"}
    server_owner = "SigmaASGIApp" if getattr(anyio_backend, "asgi", None) else "SigmaSocketServer"
    assert set(reported) == {server_owner, "SigmaSocketClient"}
    up, down = reported[server_owner], reported["SigmaSocketClient"]
    assert up.levelno == down.levelno == logging.ERROR
    assert up.name == server_logger(anyio_backend)
    assert down.name.endswith(".client")
    assert up.getMessage() == f"a {server_owner} 'message' listener raised RuntimeError"
    assert down.getMessage() == "a SigmaSocketClient 'message' listener raised ValueError"
    assert up.exc_info is not None
    assert up.exc_info[1] is failed_up
    assert down.exc_info is not None
    assert down.exc_info[1] is failed_down


async def test_iteration_ends_on_disconnect_after_buffered_messages(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)) as client:
            server.broadcast(b"one")
            server.broadcast(b"two")
            received = []
            async for message in client:
                received.append(message.data)
                if len(received) == 2:
                    await client.disconnect()
            assert received == [b"one", b"two"]
            assert client.get_status() is ConnectionStatus.DISCONNECTED


async def test_send_while_offline_is_bounded_and_delivered_on_connect(
        anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            events = Recorder(server, "message")
            client = make_client(anyio_backend, url(server), max_pending=2)
            assert client.send(b"1")
            assert client.send(b"2")
            assert not client.send(b"3")  # BufferFullError becomes False; nothing queued
            assert client.get_session() is None
            async with client:
                await events.wait("message", 2)
            assert [data for _, data, _ in events.calls["message"]] == [b"1", b"2"]


async def test_body_exception_propagates_unwrapped(anyio_backend: str) -> None:
    async def body() -> None:
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)):
            raise KeyError("from the body")

    with anyio.fail_after(DEADLINE), pytest.raises(KeyError):
        await body()


# ----------------------------------------------------------------------------- fan-out


@any_server
async def test_broadcast_excludes_the_given_clients(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)) as a, \
                connected_client(anyio_backend, url(server)) as b, \
                connected_client(anyio_backend, url(server)) as c:
            sa, sb, sc = (session_of(server, x) for x in (a, b, c))
            server.broadcast(b"not-a", exclude=sa)  # a session
            server.broadcast(b"only-c", exclude=[sa, sb.id])  # several, sessions or ids
            server.broadcast(b"not-c", exclude=sc.id)  # an id
            server.broadcast(b"all")
            assert [(await next_message(a)).data for _ in range(2)] == [b"not-c", b"all"]
            assert [(await next_message(b)).data for _ in range(3)] == [
                b"not-a", b"not-c", b"all"]
            assert [(await next_message(c)).data for _ in range(3)] == [
                b"not-a", b"only-c", b"all"]


@any_server
async def test_broadcast_reaches_fifty_clients(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(
                connected_client(anyio_backend, url(server))) for _ in range(50)]
            assert len(server.get_connected_clients()) == 50
            server.broadcast(b"to all")
            got: list[bytes] = []

            async def receive(client: Client) -> None:
                got.append((await next_message(client)).data)

            async with anyio.create_task_group() as receivers:
                for client in clients:
                    receivers.start_soon(receive, client)
            assert got == [b"to all"] * 50


@any_server
async def test_topics_reach_their_subscribers_only(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)) as a, \
                connected_client(anyio_backend, url(server)) as b:
            a_events = Recorder(a, "subscribed", "unsubscribed")
            b_events = Recorder(b, "subscribed", "unsubscribed")
            server.subscribe(session_of(server, a), "room")  # from the server side
            assert await a_events.wait("subscribed") == ("room",)
            b.subscribe("lobby")  # from the client side
            assert await b_events.wait("subscribed") == ("lobby",)

            position = server.publish("room", b"r1")
            server.publish("lobby", b"l1")
            server.broadcast(b"end")
            got_a = [await next_message(a) for _ in range(2)]
            assert [(m.topic, m.data) for m in got_a] == [("room", b"r1"), ("$all", b"end")]
            assert got_a[0].position == position
            assert got_a[0].message_id == 1
            got_b = [await next_message(b) for _ in range(2)]
            assert [(m.topic, m.data) for m in got_b] == [("lobby", b"l1"), ("$all", b"end")]

            # Publishing with an exclusion.
            b.subscribe("room")
            assert await b_events.wait("subscribed", 2) == ("room",)
            server.publish("room", b"r2", exclude=session_of(server, a))
            message = await next_message(b)
            assert (message.data, message.topic, message.message_id) == (b"r2", "room", 2)

            # Leaving, from either side: the client is told, and hears no more.
            server.unsubscribe(session_of(server, a), "room")
            assert await a_events.wait("unsubscribed") == ("room",)
            b.unsubscribe("lobby")
            assert await b_events.wait("unsubscribed") == ("lobby",)
            server.publish("room", b"r3")
            server.publish("lobby", b"l2")
            server.broadcast(b"end2")
            assert (await next_message(a)).data == b"end2"
            assert [(await next_message(b)).data for _ in range(2)] == [b"r3", b"end2"]


# ----------------------------------------------------------------------------- shutdown, restarts


@any_server
async def test_graceful_shutdown(anyio_backend: str) -> None:
    shutdown_timeout = 0.3
    with anyio.fail_after(DEADLINE):
        async with hosting(anyio_backend, shutdown_reconnect_after=0.2,
                           shutdown_timeout=shutdown_timeout) as host:
            server = host.server
            server_events = Recorder(server, "connection", "disconnection")
            async with connected_client(anyio_backend, url(server)) as a, \
                    connected_client(anyio_backend, url(server)) as b:
                logs = [Recorder(c, "disconnection", "reconnecting") for c in (a, b)]
                sessions = [session_of(server, c) for c in (a, b)]
                # A peer that never answers the close must not hold the stop up for longer
                # than shutdown_timeout.
                async with raw_client(server.port) as (mute, _):
                    await server_events.wait("connection", 3)
                    started = anyio.current_time()
                    await host.stop()
                    assert anyio.current_time() - started < shutdown_timeout + 2.0
                    with suppress(anyio.BrokenResourceError):
                        async for _ in mute:  # the server closed it: this ends
                            pass

                for client, log in zip((a, b), logs, strict=True):
                    (info,) = await log.wait("reconnecting")
                    assert log.order[:2] == ["disconnection", "reconnecting"]
                    code, reason = log.calls["disconnection"][0]
                    assert code == CloseCode.GOING_AWAY
                    assert "shutting down" in reason
                    assert isinstance(info, ReconnectInfo)
                    assert info.attempt == 1
                    assert info.next_retry_in >= 0.2  # the server's hint, plus jitter
                    assert client.get_status() is ConnectionStatus.RECONNECTING
                reasons = {s.id: r for s, r in server_events.calls["disconnection"]}
                assert len(reasons) == 3
                for session in sessions:
                    assert reasons[session.id].startswith("going_away")
                    # Not connected, but kept for the client to resume.
                    assert server.get_client(session.id) is session
                assert server.get_connected_clients() == []
                with pytest.raises(OSError, match="connection attempts failed"):  # closed
                    await anyio.connect_tcp("127.0.0.1", server.port)
            # Disconnecting while reconnecting.
            assert a.get_status() is ConnectionStatus.DISCONNECTED


@any_server
async def test_restart_resumes_the_session_when_server_state_survives(
        anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with hosting(anyio_backend) as host:
            server = host.server
            port = server.port
            server_events = Recorder(server, "message")
            async with connected_client(anyio_backend, url(server)) as client:
                log = Recorder(client, "subscribed", "reconnecting")
                client.subscribe("room")
                await log.wait("subscribed")
                before = client.get_session()
                assert before is not None

                await host.stop()
                await log.wait("reconnecting")
                assert client.send(b"sent while down")  # queued, delivered after the resume
                info = client.get_session()
                assert info is not None
                assert info.pending == 1
                # The hub (sessions, history) outlives the sockets.
                server.broadcast(b"broadcast while down")
                server.publish("room", b"published while down")

                await host.start()
                assert server.port == port
                await client.connect()  # a running client: waits until it is back
                after = client.get_session()
                assert after is not None
                assert (after.id, after.resumed) == (before.id, True)
                got = {(m.topic, m.data) for m in [await next_message(client) for _ in range(2)]}
                assert got == {("$all", b"broadcast while down"),
                               ("room", b"published while down")}
                assert (await server_events.wait("message"))[1:] == (b"sent while down", "")
                assert server.get_stats().resumes == 1


async def test_fresh_server_reports_session_reset_and_lost_topics(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with hosting(anyio_backend) as first, \
                connected_client(anyio_backend, url(first.server)) as client:
            events = Recorder(client, "subscribed", "session_reset", "recovery_failed", "error")
            old = client.get_session()
            assert old is not None
            client.subscribe("room")
            await events.wait("subscribed")
            first.server.publish("room", b"r1")
            assert (await next_message(client)).data == b"r1"
            await first.stop()

            # Same port, no memory of the session.
            async with serving(anyio_backend, port=first.server.port) as second:
                await check_explicit_loss(client, events, old.id)
                info = client.get_session()
                assert info is not None
                assert second.get_client(info.id) is not None


async def check_explicit_loss(client: Client, events: Recorder, old_id: str) -> None:
    """The client resumed nothing and said so: a fresh session, SessionReset, and the lost
    history of "room" reported (RecoveryFailed), each also as an ``error``."""
    (reset,) = await events.wait("session_reset")
    assert isinstance(reset, SessionReset)
    assert reset.old_session_id == old_id
    (lost,) = await events.wait("recovery_failed", where=lambda e: e.topic == "room")
    assert isinstance(lost, RecoveryFailed)
    await events.wait("error", where=lambda e: isinstance(e, SessionLostError))
    await events.wait("error", where=lambda e: isinstance(e, RecoveryFailedError))
    errors = [type(e) for (e,) in events.calls["error"]]
    assert errors[0] is SessionLostError
    assert set(errors[1:]) <= {RecoveryFailedError}
    await client.connect()
    info = client.get_session()
    assert info is not None
    assert (info.id, info.resumed) == (reset.new_session_id, False)
    assert info.id != old_id


async def test_killed_server_process_restarted_fresh_reports_the_loss(
        anyio_backend: str) -> None:
    """SIGKILL: no Goodbye, no close frame, no memory. The client notices, and says exactly
    what it lost once a new server answers on the same port."""
    with anyio.fail_after(DEADLINE):
        async with interop_server(anyio_backend) as first, \
                connected_client(anyio_backend, url(first.port)) as client:
            events = Recorder(client, "subscribed", "session_reset", "recovery_failed",
                              "error", "disconnection")
            old = client.get_session()
            assert old is not None
            client.subscribe("room")
            await events.wait("subscribed")
            # Published by another client, which leaves cleanly: nothing of ours is
            # awaiting acknowledgement when the server dies.
            async with connected_client(anyio_backend, url(first.port)) as publisher:
                publisher.send(b"r1", topic="room")
                assert (await next_message(client)).data == b"r1"

            await first.kill()
            code, _ = await events.wait("disconnection")
            assert code == CloseCode.ABNORMAL_CLOSURE
            assert client.send(b"echo:sent while the server was dead")

            async with interop_server(anyio_backend, port=first.port):
                await check_explicit_loss(client, events, old.id)
                (reset,) = events.calls["session_reset"][0]
                assert reset.resent == 1
                # Resent under the new session: the new server echoes it.
                message = await next_message(client)
                assert (message.topic, message.data) == (
                    "$inbox", b"echo:sent while the server was dead")


# ----------------------------------------------------------------------------- cut connections


async def test_raw_connection_cut_mid_frame_leaves_others_alone(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, \
                connected_client(anyio_backend, url(server)) as good:
            events = Recorder(server, "connection", "disconnection", "message")
            async with raw_client(server.port) as (stream, conn):
                (victim,) = await events.wait("connection")
                conn.send(Data(seq=1, payload=bytes(1000)))
                frame = b"".join(conn.data_to_send())
                await stream.send(frame[: len(frame) // 2])
            session, reason = await events.wait("disconnection")
            assert session is victim
            assert reason.startswith("abnormal_closure")
            assert server.get_stats().messages_received == 0  # half a message is none
            assert good.send(b"unaffected")
            assert await events.wait("message") == (session_of(server, good), b"unaffected", "")
            server.broadcast(b"fine")
            assert (await next_message(good)).data == b"fine"
            assert len(events.calls["message"]) == 1


@pytest.mark.parametrize("anyio_backend", BACKENDS, indirect=True)
async def test_a_peer_that_never_answers_the_close_frees_its_place_while_nothing_else_moves(
        anyio_backend: str) -> None:
    """The app kicks a client that then never answers the Close nor sends anything else, and
    no other connection sends either: after ``close_timeout`` the server drops it and its
    place is free at once: with ``max_connections=1`` the next client gets in. (sigma_trio
    reads every plain socket in one task; that a close made elsewhere wakes it to report the
    end is held by ``test_hostile_input.py::test_memory_returns_to_its_baseline[trio]``.)"""
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, close_timeout=0.3, max_connections=1) as server:
            events = Recorder(server, "connection", "disconnection")
            async with raw_client(server.port) as (stream, _conn):
                (victim,) = await events.wait("connection")
                started = anyio.current_time()
                server.disconnect_client(victim, "bye")
                # The client got the server's last frames, then the end of the stream.
                received = b""
                with anyio.fail_after(2), suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        received += await stream.receive()
                assert received
                assert anyio.current_time() - started >= 0.25  # it waited for the answer
                assert (await events.wait("disconnection"))[0] is victim
                async with connected_client(anyio_backend, url(server)) as newcomer:
                    assert newcomer.send(b"in")
                    assert session_of(server, newcomer) is not victim


@any_server
async def test_cut_while_receiving_resumes_and_delivers_once(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, proxy_to(server.port) as proxy, \
                connected_client(anyio_backend, proxy.url) as client:
            events = Recorder(client, "disconnection", "message")
            before = client.get_session()
            assert before is not None
            proxy.cut_after("down", 1000)  # 1000 bytes of the 64 KiB frame, then the end
            assert server.send_to_client(before.id, PAYLOAD)
            message = await next_message(client)
            assert message.data == PAYLOAD
            assert events.order.index("disconnection") < events.order.index("message")
            code, _ = events.calls["disconnection"][0]
            assert code == CloseCode.ABNORMAL_CLOSURE
            after = client.get_session()
            assert after is not None
            assert (after.id, after.resumed) == (before.id, True)
            server.broadcast(b"next")
            assert (await next_message(client)).data == b"next"  # not the payload again
            assert len(events.calls["message"]) == 2


@any_server
async def test_cut_while_sending_resumes_and_delivers_once(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server, proxy_to(server.port) as proxy, \
                connected_client(anyio_backend, proxy.url) as client:
            events = Recorder(server, "message", "disconnection")
            before = client.get_session()
            assert before is not None
            proxy.cut_after("up", 1000)
            assert client.send(PAYLOAD)
            session, data, _ = await events.wait("message")
            assert data == PAYLOAD
            assert session.id == before.id
            _, reason = events.calls["disconnection"][0]
            assert reason.startswith("abnormal_closure")
            after = client.get_session()
            assert after is not None
            assert (after.id, after.resumed) == (before.id, True)
            assert client.send(b"next")
            assert (await events.wait("message", 2))[1] == b"next"
            assert [d for _, d, _ in events.calls["message"]] == [PAYLOAD, b"next"]


# ----------------------------------------------------------------------------- TLS, limits, auth


async def test_tls_round_trip(anyio_backend: str,
                              tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, ssl=server_context) as server:
            events = Recorder(server, "message")
            server.on("message", lambda client, data, topic: server.send_to_client(
                client, data[::-1]))
            async with connected_client(anyio_backend, url(server, "wss"),
                                        ssl=client_context) as client:
                assert client.send(b"secure")
                assert (await events.wait("message"))[1] == b"secure"
                assert (await next_message(client)).data == b"eruces"
                server.broadcast(b"also secret")
                assert (await next_message(client)).data == b"also secret"
            # The system trust store does not know our CA: the certificate is refused, and
            # the error says so.
            with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
                async with connected_client(anyio_backend, url(server, "wss"),
                                            max_reconnect_attempts=1):
                    pass  # pragma: no cover - refused


async def test_tls_handshake_never_completed_is_dropped_after_handshake_timeout(
        anyio_backend: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    """A TLS client that connects and never finishes the TLS handshake (here: half a
    ClientHello, then silence) is dropped after ``handshake_timeout``, not after asyncio's
    60 s default nor never (trio wraps the TLS handshake in the first read)."""
    server_context, _ = tls
    timeout = 0.5
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, ssl=server_context,
                           handshake_timeout=timeout) as server:
            for partial in (b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
                stream = await anyio.connect_tcp("127.0.0.1", server.port)
                async with stream:
                    if partial:
                        await stream.send(partial)
                    started = anyio.current_time()
                    with anyio.move_on_after(timeout + 5) as waited:
                        with suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                                      ConnectionError):
                            while await stream.receive():
                                pass
                    elapsed = anyio.current_time() - started
                    assert not waited.cancelled_caught, \
                        f"still open {elapsed:.1f} s after the {timeout} s handshake timeout"
                    assert elapsed < timeout + 2.0


@any_server
async def test_connection_limit_refuses_with_503(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, max_connections=1) as server:
            server_events = Recorder(server, "disconnection")
            async with connected_client(anyio_backend, url(server)):
                extra = make_client(anyio_backend, url(server), max_reconnect_attempts=1)
                errors = Recorder(extra, "error")
                with pytest.raises(ConnectionFailed, match="503"):
                    async with extra:
                        pass  # pragma: no cover - refused
                assert extra.get_status() is ConnectionStatus.ERROR
                assert [type(e) for (e,) in errors.calls["error"]] == [ConnectionFailed]
            # The first client's slot is free again once it has left.
            await server_events.wait("disconnection")
            async with connected_client(anyio_backend, url(server)) as late:
                assert late.get_status() is ConnectionStatus.CONNECTED


@any_server
async def test_auth_hook_accepts_and_refuses(anyio_backend: str) -> None:
    headers: list[str | None] = []

    def authenticate(request: AuthRequest) -> AuthAccept | AuthRefuse:
        headers.append(request.header("x-app"))
        if request.hello.auth_token == "open sesame":
            return AuthAccept(identity="alice", metadata={"role": "admin"})
        return AuthRefuse(message="bad token")

    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, authenticate=authenticate) as server:
            events = Recorder(server, "connection", "rejected")
            async with connected_client(anyio_backend, url(server), auth_token="open sesame",
                                        extra_headers=(("X-App", "tests"),)) as client:
                session = session_of(server, client)
                assert (session.identity, session.metadata) == ("alice", {"role": "admin"})
            assert headers == ["tests"]

            refused = make_client(anyio_backend, url(server), auth_token="guess")
            log = Recorder(refused, "error", "reconnecting")
            with pytest.raises(ConnectionFailed, match="bad token"):
                async with refused:
                    pass  # pragma: no cover - refused
            assert refused.get_status() is ConnectionStatus.ERROR
            # Refused for good: no retries, although this client would retry for ever.
            assert log.calls["reconnecting"] == []
            assert [type(e) for (e,) in log.calls["error"]] == [ConnectionFailed]
            _, reason = await events.wait("rejected")
            assert reason == "auth_failed: bad token"
            assert len(events.calls["connection"]) == 1


# ----------------------------------------------------------------------------- slow consumer


@any_server
async def test_slow_consumer_is_cut_while_others_keep_receiving(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, outgoing_high_water=256 * 1024) as server, \
                connected_client(anyio_backend, url(server)) as good:
            events = Recorder(server, "connection", "disconnection")
            async with raw_client(server.port, rcvbuf=4096) as (stream, _):  # never reads
                (slow,) = await events.wait("connection")
                sent = 0
                while not events.calls["disconnection"]:
                    assert sent < 2000, "the slow consumer was never cut"
                    server.broadcast(PAYLOAD)
                    sent += 1
                    assert (await next_message(good)).data == PAYLOAD
                session, reason = events.calls["disconnection"][0]
                assert session is slow
                assert reason.startswith("slow_consumer")
                for _ in range(3):
                    server.broadcast(b"still here")
                    assert (await next_message(good)).data == b"still here"
                assert server.get_stats().slow_consumer_disconnects == 1
                assert session_of(server, good).connected
                assert server.get_client(slow.id) is slow  # cut, but resumable
                with suppress(anyio.BrokenResourceError):
                    async for _ in stream:  # the server closed the socket: this ends
                        pass


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_output_past_what_the_socket_takes_arrives_whole_and_in_order(
        anyio_backend: str, scheme: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    # 4 MiB sent while the client reads: the socket fills, the rest waits and drains (the hub
    # paused and resumed), and new output keeps coming meanwhile.
    server_ssl, client_ssl = tls if scheme == "wss" else (None, None)
    messages = [bytes([i]) + PAYLOAD for i in range(64)]
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, ssl=server_ssl) as server, \
                connected_client(anyio_backend, url(server, scheme), ssl=client_ssl) as client:
            got: list[bytes] = []

            async def receive() -> None:
                got.extend([(await next_message(client)).data for _ in messages])

            async with anyio.create_task_group() as receiver:
                receiver.start_soon(receive)
                for message in messages:
                    server.broadcast(message)
                    await anyio.sleep(0)
            assert got == messages


# ----------------------------------------------------------------------------- interop


async def test_interop_with_the_other_backends_server(anyio_backend: str) -> None:
    """Clients of this backend, server of the other one (in a subprocess)."""
    with anyio.fail_after(DEADLINE):
        async with interop_server(other(anyio_backend)) as server:
            async with connected_client(anyio_backend, url(server.port)) as a, \
                    connected_client(anyio_backend, url(server.port)) as b:
                a_events = Recorder(a, "subscribed")
                assert a.send(b"echo:hello")
                message = await next_message(a)
                assert (message.topic, message.data) == ("$inbox", b"echo:hello")

                a.subscribe("room")
                assert await a_events.wait("subscribed") == ("room",)
                assert a.send(b"in the room", topic="room")
                message = await next_message(a)
                assert (message.topic, message.data, message.message_id) == (
                    "room", b"in the room", 1)

                assert b.send(b"broadcast:hello all")
                message = await next_message(a)
                assert (message.topic, message.data) == ("$all", b"broadcast:hello all")
                assert b.send(b"echo:sync")  # b's next message is this: not its broadcast
                assert (await next_message(b)).data == b"echo:sync"
            assert await server.terminate() == 0


async def test_interop_resume_after_the_connection_is_cut(anyio_backend: str) -> None:
    with anyio.fail_after(DEADLINE):
        async with interop_server(other(anyio_backend)) as server, \
                proxy_to(server.port) as proxy, \
                connected_client(anyio_backend, proxy.url) as a, \
                connected_client(anyio_backend, url(server.port)) as b:
            log = Recorder(a, "disconnection", "reconnecting")
            before = a.get_session()
            assert before is not None
            proxy.refusing = True
            proxy.cut()
            code, _ = await log.wait("disconnection")
            assert code == CloseCode.ABNORMAL_CLOSURE
            await log.wait("reconnecting")
            assert a.send(b"echo:sent while cut off")
            assert b.send(b"broadcast:while you were away")
            assert b.send(b"echo:sync")
            assert (await next_message(b)).data == b"echo:sync"  # the server has it all

            proxy.refusing = False
            await a.connect()
            after = a.get_session()
            assert after is not None
            assert (after.id, after.resumed) == (before.id, True)
            got = {(m.topic, m.data) for m in [await next_message(a) for _ in range(2)]}
            assert got == {("$all", b"broadcast:while you were away"),
                           ("$inbox", b"echo:sent while cut off")}


async def _recv_envelope(ws: WebSocketsClient) -> object:
    raw = await anyio.to_thread.run_sync(ws.recv, DEADLINE)
    assert isinstance(raw, bytes)
    return codec.decode(raw)


async def test_websockets_library_speaks_the_envelope_protocol(anyio_backend: str) -> None:
    """A plain ``websockets`` client (its sync API, in a worker thread, so that it works
    whatever loop serves) completes the handshake and exchanges envelopes built from the
    schema's codec."""
    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend) as server:
            events = Recorder(server, "message")

            def open_websocket() -> WebSocketsClient:
                # legacy=True: the connection itself, closed by hand (not a context manager).
                return ws_connect(url(server), subprotocols=[Subprotocol("sigma.v1")],
                                  proxy=None, open_timeout=DEADLINE, close_timeout=DEADLINE,
                                  legacy=True)

            ws = await anyio.to_thread.run_sync(open_websocket)
            try:
                assert ws.subprotocol == "sigma.v1"
                await anyio.to_thread.run_sync(ws.send, codec.encode(Hello()))
                welcome = await _recv_envelope(ws)
                assert isinstance(welcome, Welcome)
                assert not welcome.resumed
                session = server.get_client(welcome.session_id)
                assert session is not None
                await anyio.to_thread.run_sync(
                    ws.send, codec.encode(Data(seq=1, payload=b"from websockets")))
                assert await events.wait("message") == (session, b"from websockets", "")
                assert server.send_to_client(session, b"to websockets")
                envelope = await _recv_envelope(ws)
                while not isinstance(envelope, Data):  # an Ack for our message may come first
                    envelope = await _recv_envelope(ws)
                assert (envelope.topic, bytes(envelope.payload)) == ("$inbox", b"to websockets")
            finally:
                await anyio.to_thread.run_sync(ws.close)


# ----------------------------------------------------------------------------- one port


async def test_http_and_websocket_share_one_port(anyio_backend: str) -> None:
    """A web app and its WebSocket on one port: plain GET/HEAD go to ``http_handler``; other
    methods get 405; a handler that raises gets 500 and is reported; WebSockets still work."""
    from adapters_support import LOCAL

    from sigma_core.api import HttpRequest, HttpResponse

    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        return HttpResponse(status=200, headers=(("Content-Type", "text/html"),),
                            body=b"<h1>chat</h1>")

    async def http(port: int, raw: bytes) -> bytes:
        stream = await anyio.connect_tcp(LOCAL, port)
        async with stream:
            await stream.send(raw)
            data = b""
            with suppress(anyio.EndOfStream):
                while True:
                    data += await stream.receive()
        return data

    with anyio.fail_after(DEADLINE):
        async with serving(anyio_backend, http_handler=handler) as server:
            errors = Recorder(server, "error")
            page = await http(server.port, b"GET /?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            assert page.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"Content-Length: 13\r\n" in page
            assert page.endswith(b"\r\n\r\n<h1>chat</h1>")
            assert seen[0].method == "GET"
            assert seen[0].path == "/?x=1"
            assert ("host", "a") in seen[0].headers
            head = await http(server.port, b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert head.endswith(b"\r\n\r\n")  # no body for HEAD
            post = await http(server.port, b"POST / HTTP/1.1\r\nHost: a\r\n\r\n")
            assert post.startswith(b"HTTP/1.1 405 ")
            boom = await http(server.port, b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
            assert boom.startswith(b"HTTP/1.1 500 ")
            (error,) = await errors.wait("error")
            assert isinstance(error, RuntimeError)
            async with connected_client(anyio_backend, url(server)) as client:
                assert client.get_status() is ConnectionStatus.CONNECTED
            assert server.get_stats().total_connections == 5
