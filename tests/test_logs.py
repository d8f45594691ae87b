"""What the adapters log (sigma_core.logs): levels, messages and extras for every event, and
no secret in any of it. Synchronous: events are built by hand or come from a simulation."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping

import pytest

from sigma_core import logs
from sigma_core.client import (
    CloseTransport,
    Connected,
    ConnectionStatus,
    Disconnected,
    ErrorReceived,
    GaveUp,
    MessageReceived,
    OpenTransport,
    Reconnecting,
    RecoveryFailed,
    SessionReset,
    StatusChanged,
)
from sigma_core.errors import CloseCode, ErrorCode, RemoteProtocolError
from sigma_core.hub import (
    ClientConnected,
    ClientDisconnected,
    ClientErrorReceived,
    ClientMessage,
    ConnectionRejected,
    HookFailed,
    HubConfig,
    PresenceChanged,
    Session,
    SessionExpired,
)
from sigma_core.logs import (
    DEBUG,
    ERROR,
    INFO,
    NULL_LOGGER,
    WARNING,
    LogEntry,
    client_log_entry,
    format_peer,
    hub_log_entry,
    peer_host,
    write,
)
from sigma_core.messages import Error, PresenceAction, StreamPosition
from sigma_core.testing import Simulation

PEERS = {7: "10.0.0.1:5555"}
TOKEN = bytes(range(100, 132))


def session() -> Session:
    return Session("abc123", TOKEN, 0.0)


def text(entry: LogEntry | None) -> str:
    assert entry is not None
    return entry.msg % entry.args


def test_levels_match_the_logging_module() -> None:
    assert (DEBUG, INFO, WARNING, ERROR) == (logging.DEBUG, logging.INFO, logging.WARNING,
                                             logging.ERROR)


# ----------------------------------------------------------------------------- server


@pytest.mark.parametrize(("status", "level"), [(400, INFO), (408, INFO), (431, INFO),
                                               (403, INFO), (503, WARNING)])
def test_refused_upgrade_names_status_reason_and_peer(status: int, level: int) -> None:
    entry = hub_log_entry(ConnectionRejected(
        conn_id=7, code=CloseCode.ABNORMAL_CLOSURE,
        reason=f"handshake failed: HTTP {status} some reason", cause=None), PEERS)
    assert entry is not None
    assert entry.level == level
    assert text(entry) == f"refused upgrade of conn 7 from 10.0.0.1:5555: HTTP {status} " \
                          "some reason"
    assert entry.extra["sigma_status"] == status
    assert entry.extra["sigma_peer"] == "10.0.0.1:5555"
    assert entry.extra["sigma_event"] == "upgrade_refused"


def test_socket_ending_before_a_session_is_debug() -> None:
    silent = hub_log_entry(ConnectionRejected(conn_id=8, code=CloseCode.ABNORMAL_CLOSURE,
                                              reason="", cause=None), PEERS)
    assert silent is not None
    assert silent.level == DEBUG
    assert text(silent) == "conn 8 from ? ended before a session: 1006 abnormal_closure"
    timed_out = hub_log_entry(ConnectionRejected(
        conn_id=7, code=CloseCode.ABNORMAL_CLOSURE, cause=None,
        reason="HTTP request not complete within the handshake timeout (10 s)"))
    assert "handshake timeout (10 s)" in text(timed_out)


@pytest.mark.parametrize(("code", "level"), [
    (CloseCode.BAD_ENVELOPE, INFO), (CloseCode.AUTH_FAILED, INFO),
    (CloseCode.MESSAGE_TOO_BIG, INFO), (CloseCode.TRY_AGAIN_LATER, WARNING),
    (CloseCode.GOING_AWAY, DEBUG), (3999, INFO)])
def test_closed_before_a_session(code: int, level: int) -> None:
    entry = hub_log_entry(ConnectionRejected(conn_id=7, code=code, reason="why", cause=None),
                          PEERS)
    assert entry is not None
    assert entry.level == level
    assert f"{code} " in text(entry)
    assert "(why)" in text(entry)
    assert entry.extra["sigma_code"] == code


@pytest.mark.parametrize(("code", "cause", "level"), [
    (CloseCode.NORMAL_CLOSURE, False, DEBUG), (CloseCode.ABNORMAL_CLOSURE, False, DEBUG),
    (CloseCode.SESSION_TAKEN_OVER, False, DEBUG), (CloseCode.UNEXPECTED_MESSAGE, True, INFO),
    (CloseCode.HEARTBEAT_TIMEOUT, True, INFO), (CloseCode.SLOW_CONSUMER, False, WARNING),
    (CloseCode.RATE_LIMITED, False, WARNING), (CloseCode.LIMIT_EXCEEDED, False, WARNING)])
def test_disconnects(code: int, cause: bool, level: int) -> None:
    entry = hub_log_entry(ClientDisconnected(
        session=session(), conn_id=7, code=code, reason="because",
        cause=RemoteProtocolError("because", code=CloseCode(code)) if cause else None,
        session_ended=False), PEERS)
    assert entry is not None
    assert entry.level == level
    name = CloseCode(code).name.lower()
    assert text(entry) == f"session abc123 (conn 7 from 10.0.0.1:5555) disconnected: {code} " \
                          f"{name} (because)"
    ended = hub_log_entry(ClientDisconnected(session=session(), conn_id=7, code=1000, reason="",
                                             cause=None, session_ended=True))
    assert text(ended).endswith("disconnected: 1000 normal_closure; session ended")


def test_connects_resumes_and_failed_resumes() -> None:
    fresh = hub_log_entry(ClientConnected(session=session(), conn_id=7, resumed=False), PEERS)
    assert fresh is not None
    assert fresh.level == DEBUG
    assert text(fresh) == "session abc123 connected (conn 7 from 10.0.0.1:5555)"
    resumed = hub_log_entry(ClientConnected(session=session(), conn_id=7, resumed=True,
                                            failed_topics=("room",)), PEERS)
    assert resumed is not None
    assert resumed.level == INFO
    assert text(resumed).endswith("resumed (conn 7 from 10.0.0.1:5555); history lost on 1 "
                                  "topic(s): room")
    failed = hub_log_entry(ClientConnected(session=session(), conn_id=7, resumed=False,
                                           fresh_reason="wrong token"), PEERS)
    assert failed is not None
    assert failed.level == INFO
    assert text(failed) == "conn 7 from 10.0.0.1:5555: resume failed (wrong token); fresh " \
                           "session abc123"


def test_expiry_hook_failures_and_client_errors() -> None:
    expired = hub_log_entry(SessionExpired(session=session()))
    assert expired is not None
    assert expired.level == DEBUG
    assert text(expired) == "session abc123 expired"
    error = RuntimeError("database down")
    hook = hub_log_entry(HookFailed(hook="authenticate", error=error))
    assert hook is not None
    assert hook.level == ERROR
    assert hook.exc is error
    assert "authenticate" in text(hook)
    reported = hub_log_entry(ClientErrorReceived(session=session(), error=Error(
        code=ErrorCode.UNKNOWN, message="line one\nFAKE: line two")))
    assert reported is not None
    assert reported.level == INFO
    assert "\n" not in text(reported)  # a peer cannot forge a log line
    assert "line one\\nFAKE: line two" in text(reported)


def test_messages_and_presence_are_not_logged() -> None:
    assert hub_log_entry(ClientMessage(session=session(), seq=1, topic="", payload=b"x",
                                       timestamp_ms=0)) is None
    assert hub_log_entry(PresenceChanged(topic="t", session=session(),
                                         action=PresenceAction.JOIN)) is None


def test_raw_bytes_in_a_reason_are_not_logged_and_reasons_are_bounded() -> None:
    reason = ("handshake failed: HTTP 400 Bad HTTP message: illegal header line: "
              "bytearray(b'Authorization Bearer s3cr\\'et')")
    entry = hub_log_entry(ConnectionRejected(conn_id=7, code=1006, reason=reason, cause=None))
    assert "s3cr" not in text(entry)
    assert "illegal header line: <raw bytes not logged>" in text(entry)
    long = hub_log_entry(ConnectionRejected(conn_id=7, code=4000, reason="x" * 1000,
                                            cause=None))
    assert len(text(long)) < 300


def test_format_peer() -> None:
    assert format_peer(("127.0.0.1", 8080)) == "127.0.0.1:8080"
    assert format_peer(("::1", 8080, 0, 0)) == "[::1]:8080"
    assert format_peer("/run/sigma.sock") == "/run/sigma.sock"
    assert format_peer(None) == "?"
    assert format_peer("") == "?"


# ----------------------------------------------------------------------------- client


def test_client_entries() -> None:
    lost = client_log_entry(Disconnected(code=1006, reason="", cause=None, goodbye=None,
                                         will_reconnect=True))
    assert lost is not None
    assert lost.level == WARNING
    assert text(lost) == "connection lost: 1006 abnormal_closure; will reconnect"
    left = client_log_entry(Disconnected(code=1000, reason="bye", cause=None, goodbye=None,
                                         will_reconnect=False))
    assert left is not None
    assert left.level == DEBUG
    kicked = client_log_entry(Disconnected(code=4005, reason="no", cause=None, goodbye=None,
                                           will_reconnect=False))
    assert kicked is not None
    assert kicked.level == WARNING
    assert text(kicked) == "connection lost: 4005 auth_failed (no)"
    retry = client_log_entry(Reconnecting(attempt=2, max_attempts=None, delay=0.5))
    assert retry is not None
    assert retry.level == INFO
    assert text(retry) == "reconnecting in 0.50 s (attempt 2 of inf)"
    assert text(client_log_entry(Reconnecting(attempt=2, max_attempts=10, delay=1))) \
        .endswith("of 10)")
    resumed = client_log_entry(Connected(session_id="s1", resumed=True))
    assert resumed is not None
    assert resumed.level == DEBUG
    assert text(resumed) == "connected: session s1 resumed"
    reset = client_log_entry(Connected(session_id="s2", resumed=False, fresh_reason="expired"))
    assert reset is not None
    assert reset.level == INFO
    for event, level, words in [
        (SessionReset(old_session_id="s1", new_session_id="s2", reason="expired", resent=3),
         WARNING, "session s1 could not be resumed (expired): fresh session s2, 3"),
        (RecoveryFailed(topic="room", lost_from=5, lost_to=0, position=None), WARNING,
         "messages lost on topic room (offsets 5..?)"),
        (GaveUp(reason="10 attempts failed", last_code=1006), WARNING,
         "gave up connecting: 10 attempts failed"),
        (ErrorReceived(error=Error(code=ErrorCode.SUBSCRIBE_DENIED, message="no")), INFO,
         "server reported error"),
        (OpenTransport(attempt=1, host="example.com", port=443, secure=True), DEBUG,
         "opening example.com:443 with TLS (attempt 1)"),
        (CloseTransport(attempt=1), DEBUG, "closing the socket of attempt 1"),
        (StatusChanged(status=ConnectionStatus.CONNECTED,
                       previous=ConnectionStatus.CONNECTING), DEBUG,
         "status CONNECTING -> CONNECTED"),
    ]:
        entry = client_log_entry(event)
        assert entry is not None
        assert entry.level == level
        assert words in text(entry)
    assert client_log_entry(MessageReceived(topic="", position=StreamPosition(1, 1),
                                            payload=b"x", timestamp_ms=0)) is None


# ----------------------------------------------------------------------------- write


class Recording:
    def __init__(self, level: int) -> None:
        self.level = level
        self.calls: list[tuple[int, object, tuple[object, ...], BaseException | None, int,
                               Mapping[str, object] | None]] = []

    def isEnabledFor(self, level: int) -> bool:
        return level >= self.level

    def log(self, level: int, msg: object, *args: object,
            exc_info: BaseException | None = None, stacklevel: int = 1,
            extra: Mapping[str, object] | None = None) -> None:
        self.calls.append((level, msg, args, exc_info, stacklevel, extra))


def test_write_passes_enabled_entries_on() -> None:
    logger = Recording(INFO)
    write(logger, None)
    write(logger, LogEntry(level=DEBUG, msg="quiet"))
    error = ValueError("x")
    write(logger, LogEntry(level=ERROR, msg="a %s", args=("b",), extra={"sigma_k": 1},
                           exc=error))
    assert logger.calls == [(ERROR, "a %s", ("b",), error, 2, {"sigma_k": 1})]
    write(NULL_LOGGER, LogEntry(level=ERROR, msg="nowhere"))
    NULL_LOGGER.log(ERROR, "nowhere")


def test_a_real_logger_records_the_adapter_as_the_caller(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test_logs")
    write(logging.getLogger("test_logs"), LogEntry(level=INFO, msg="hello %s", args=("x",),
                                                    extra={"sigma_event": "e"}))
    [record] = caplog.records
    assert record.getMessage() == "hello x"
    assert record.funcName == "test_a_real_logger_records_the_adapter_as_the_caller"
    assert getattr(record, "sigma_event", None) == "e"


# ----------------------------------------------------------------------------- secrets


def test_no_token_in_any_entry_of_a_simulated_life() -> None:
    """Connect, cut, resume, resume with a wrong token, expire: every event of both ends turned
    into entries, and no encoding of any resume token in any of them."""
    sim = Simulation(HubConfig(session_ttl=5.0), seed=5)
    alice = sim.add_client()
    sim.run_until(lambda: alice.connected)
    sim.cut(alice)
    sim.run(10)
    assert alice.connected
    assert alice.session.resumed
    tokens = {s._token for s in sim.hub.sessions.values()}
    # Mallory claims alice's session with her token but for its last byte: a fresh session.
    mallory = sim.add_client(connect=False)
    mallory.session.session_id = alice.session.session_id
    mallory.session._token = alice.session._token[:-1] + b"\0"
    mallory.connect()
    sim.run_until(lambda: mallory.connected)
    assert not mallory.session.resumed
    tokens |= {s._token for s in sim.hub.sessions.values()}
    # A request never finished (with a token in a header): 408 at the handshake timeout.
    hub = sim.hub
    conn_id = hub.open_connection(sim.now)
    hub.receive_data(conn_id, b"GET / HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.hex().encode()
                     + b"\r\n", sim.now)
    mallory.disconnect()
    sim.cut(alice)
    sim.isolate(alice)
    sim.run(30)  # alice's session expires
    assert not sim.hub.sessions
    entries = [hub_log_entry(e) for e in sim.hub_events]
    entries += [client_log_entry(e) for c in (alice, mallory) for e in c.events]
    logged = [e for e in entries if e is not None]
    for words in ("HTTP 408", "resumed", "resume failed", "expired", "connection lost"):
        assert any(words in text(e) for e in logged), words
    for token in (*tokens, TOKEN):
        prefix = token[:8]
        for needle in (prefix.hex(), repr(prefix)[2:-1], base64.b64encode(prefix).decode()[:10],
                       base64.urlsafe_b64encode(prefix).decode()[:10]):
            for entry in logged:
                assert needle not in text(entry) + repr(entry.extra)


def test_peer_host_shares_one_string_per_host_in_a_bounded_table() -> None:
    # Connections from one host (a proxy, NAT) keep one host string between them, and a flood of
    # distinct addresses cannot grow the table without bound.
    first = peer_host(("10.1.2.3", 4000))
    again = peer_host(("".join(["10.1.2", ".3"]), 4001))
    assert first == again == "10.1.2.3"
    assert first is again
    assert peer_host("/run/sigma.sock") == "/run/sigma.sock"
    assert peer_host(None) == ""
    for i in range(logs._MAX_SHARED_HOSTS + 10):
        peer_host((f"2001:db8::{i:x}", 443, 0, 0))
    assert len(logs._SHARED_HOSTS) <= logs._MAX_SHARED_HOSTS
    assert peer_host(("2001:db8::1", 443, 0, 0)) == "2001:db8::1"
