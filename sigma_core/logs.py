"""What the adapters log, decided once for both: core events in, log entries out. Pure.

The core never logs by itself (``logging`` pulls in threads and clocks). Instead
:func:`hub_log_entry` and :func:`client_log_entry` turn the events the hub and the client
session emit into :class:`LogEntry` values (level, ``%``-style message and its arguments,
``extra`` fields), and the adapters hand them to an injected logger with :func:`write` — by
default ``logging.getLogger("sigma_asyncio.server")`` and its three siblings, replaced with
``ServerOptions.logger`` / ``ClientOptions.logger`` (:data:`NULL_LOGGER` silences them).

Levels (the standard ``logging`` numbers):

* DEBUG: sessions connecting, resuming, disconnecting normally, expiring; sockets that ended
  before a session without saying anything; the client's status changes and socket attempts.
* INFO: every refused handshake (HTTP status and reason) and every connection the server closed
  because the peer broke the protocol (close code and reason); failed resumes; topics whose
  history was lost; the client's reconnect attempts and errors the server reported.
* WARNING: limits: the connection limit (503), the session limit (1013), slow consumers (4007),
  rate limits (4008), too many unacknowledged messages (4009); on the client, a lost connection,
  a session that could not be resumed, lost messages, giving up.
* ERROR: an application hook raised (with the exception).

Never logged: resume tokens, auth tokens, Hello bodies, header values, URLs (a query string may
carry a token), payloads. Raw bytes the peer sent that a reason quotes (``b'...'``, as h11
quotes an illegal header line) are replaced by their length, and peer-controlled text is
escaped so it cannot forge log lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from .client import (
    ClientEvent,
    CloseTransport,
    Connected,
    Disconnected,
    ErrorReceived,
    GaveUp,
    OpenTransport,
    Reconnecting,
    RecoveryFailed,
    SessionReset,
    StatusChanged,
)
from .errors import CloseCode
from .hub import (
    ClientConnected,
    ClientDisconnected,
    ClientErrorReceived,
    ClientMessage,
    ConnectionRejected,
    HookFailed,
    HubEvent,
    SessionExpired,
)

__all__ = [
    "DEBUG",
    "ERROR",
    "INFO",
    "NULL_LOGGER",
    "WARNING",
    "LogEntry",
    "Logger",
    "NullLogger",
    "PeerNames",
    "client_log_entry",
    "format_peer",
    "hub_log_entry",
    "listener_error_entry",
    "peer_host",
    "peer_port",
    "write",
]

# The standard ``logging`` module's numeric levels (the core cannot import it), one per line so
# that the API reference documents each.
#: ``logging.DEBUG``
DEBUG = 10
#: ``logging.INFO``
INFO = 20
#: ``logging.WARNING``
WARNING = 30
#: ``logging.ERROR``
ERROR = 40

#: Closes that mean a limit was hit: worth an operator's attention.
_LIMIT_CODES = frozenset({CloseCode.TRY_AGAIN_LATER, CloseCode.SLOW_CONSUMER,
                          CloseCode.RATE_LIMITED, CloseCode.LIMIT_EXCEEDED})
#: Closes that are a normal end of a connection.
_ROUTINE_CODES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY,
                            CloseCode.NO_STATUS_RCVD, CloseCode.ABNORMAL_CLOSURE,
                            CloseCode.SESSION_TAKEN_OVER})
_HTTP_REFUSAL = re.compile(r"handshake failed: HTTP (\d{3}) ?(.*)", re.DOTALL)
_BYTES_LITERAL = re.compile(r"""(?:bytearray\()?b(['"])(?:\\.|(?!\1).)*\1\)?""")
_MAX_REASON = 200


class Logger(Protocol):
    """What the adapters need of a logger: ``logging.Logger`` and ``LoggerAdapter`` fit."""

    def isEnabledFor(self, level: int) -> bool: ...

    def log(self, level: int, msg: object, *args: object,
            exc_info: BaseException | None = None, stacklevel: int = 1,
            extra: Mapping[str, object] | None = None) -> None: ...


class NullLogger:
    """A logger that drops everything (``ServerOptions(logger=NULL_LOGGER)``)."""

    def isEnabledFor(self, level: int) -> bool:
        return False

    def log(self, level: int, msg: object, *args: object,
            exc_info: BaseException | None = None, stacklevel: int = 1,
            extra: Mapping[str, object] | None = None) -> None:
        pass


NULL_LOGGER = NullLogger()


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One record to log: ``logger.log(level, msg, *args, exc_info=exc, extra=extra)``.
    ``extra`` keys start with ``sigma_`` (``sigma_event``, ``sigma_conn``, ``sigma_session``,
    ``sigma_peer``, ``sigma_code``, ``sigma_status``, ``sigma_reason``, ...)."""

    level: int
    msg: str
    args: tuple[object, ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict)
    exc: BaseException | None = None


def write(logger: Logger, entry: LogEntry | None) -> None:
    """Hand ``entry`` to ``logger`` (nothing for None or a level the logger ignores). The
    record names the caller of this function (the adapter) as where it was logged."""
    if entry is not None and logger.isEnabledFor(entry.level):
        logger.log(entry.level, entry.msg, *entry.args, exc_info=entry.exc, stacklevel=2,
                   extra=dict(entry.extra))


#: Host strings handed out by :func:`peer_host`, so that connections from one host share one
#: string (a server keeps it per connection, and a proxy or NAT puts thousands behind one host).
#: Bounded: past ``_MAX_SHARED_HOSTS`` it starts over (not ``sys.intern``, whose strings are
#: immortal on some CPython builds: every address ever seen would stay).
_SHARED_HOSTS: dict[str, str] = {}
_MAX_SHARED_HOSTS = 4096


def peer_host(address: object) -> str:
    """The host part of a socket address (what the hub's per-peer limits count by); "" if
    unknown. A Unix socket path counts as one peer. The same host gives the same string object
    (while a bounded table remembers it)."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
    elif isinstance(address, str):
        host = address
    else:
        return ""
    shared = _SHARED_HOSTS.get(host)
    if shared is None:
        if len(_SHARED_HOSTS) >= _MAX_SHARED_HOSTS:
            _SHARED_HOSTS.clear()
        shared = _SHARED_HOSTS[host] = host
    return shared


def peer_port(address: object) -> int | None:
    """The port of a socket address (None for a Unix socket or an unknown address)."""
    if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    return None


class PeerNames:
    """``conn_id`` -> the remote address for the log (:func:`format_peer`), made when a log line
    asks for it: an adapter keeps each connection's host (shared, see :func:`peer_host`) and
    port, not one formatted string per connection. ``lookup(conn_id)`` gives ``(host, port)``
    (port None: a Unix socket) or None for a connection it does not know."""

    __slots__ = ("_lookup",)

    def __init__(self, lookup: Callable[[int], tuple[str, int | None] | None]) -> None:
        self._lookup = lookup

    def get(self, conn_id: int, default: str = "?") -> str:
        address = self._lookup(conn_id)
        if address is None:
            return default
        host, port = address
        return format_peer(host if port is None else (host, port))


def format_peer(address: object) -> str:
    """``host:port`` (``[host]:port`` for IPv6) from a socket address; ``?`` if unknown."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, str) and address:
        return address  # a Unix socket path
    return "?"


# ----------------------------------------------------------------------------- server


def hub_log_entry(event: HubEvent,
                  peers: Mapping[int, str] | PeerNames | None = None) -> LogEntry | None:
    """The record for a hub event (None: not logged; messages never are). ``peers`` maps a
    ``conn_id`` to the remote address as the adapter knows it (:func:`format_peer`; a dict, or
    a :class:`PeerNames` that formats it on demand)."""
    if type(event) is ClientMessage:
        return None
    if isinstance(event, ConnectionRejected | ClientDisconnected | ClientConnected):
        peer = peers.get(event.conn_id, "?") if peers is not None else "?"
        if isinstance(event, ConnectionRejected):
            return _rejected(event, peer)
        if isinstance(event, ClientDisconnected):
            return _disconnected(event, peer)
        return _connected(event, peer)
    if isinstance(event, SessionExpired):
        return LogEntry(level=DEBUG, msg="session %s expired", args=(event.session.id,),
                        extra={"sigma_event": "session_expired",
                               "sigma_session": event.session.id})
    if isinstance(event, HookFailed):
        return LogEntry(level=ERROR, msg="application hook %s raised: %s",
                        args=(event.hook, _clean(repr(event.error))), exc=event.error,
                        extra={"sigma_event": "hook_failed", "sigma_hook": event.hook})
    if isinstance(event, ClientErrorReceived):
        message = _clean(event.error.message)
        # Past the first few of a connection: DEBUG (a client cannot flood the INFO log).
        return LogEntry(level=INFO if event.loud else DEBUG,
                        msg="session %s reported error %d: %s",
                        args=(event.session.id, int(event.error.code), message),
                        extra={"sigma_event": "client_error", "sigma_session": event.session.id,
                               "sigma_code": int(event.error.code), "sigma_reason": message})
    return None


def _rejected(event: ConnectionRejected, peer: str) -> LogEntry:
    reason = _clean(event.reason)
    base = {"sigma_conn": event.conn_id, "sigma_peer": peer}
    http = _HTTP_REFUSAL.fullmatch(reason)
    if http is not None:
        status, text = int(http.group(1)), http.group(2)
        return LogEntry(
            level=WARNING if status == 503 else INFO,
            msg="refused upgrade of conn %d from %s: HTTP %d %s",
            args=(event.conn_id, peer, status, text),
            extra={**base, "sigma_event": "upgrade_refused", "sigma_status": status,
                   "sigma_reason": text})
    code = event.code
    if code == CloseCode.ABNORMAL_CLOSURE:  # the socket ended, or timed out, without a word
        return LogEntry(level=DEBUG, msg="conn %d from %s ended before a session: %s",
                        args=(event.conn_id, peer, _close_text(code, reason)),
                        extra={**base, "sigma_event": "ended_before_session",
                               "sigma_code": code, "sigma_reason": reason})
    return LogEntry(
        level=_close_level(code),
        msg="closed conn %d from %s before a session: %s",
        args=(event.conn_id, peer, _close_text(code, reason)),
        extra={**base, "sigma_event": "refused", "sigma_code": code, "sigma_reason": reason})


def _disconnected(event: ClientDisconnected, peer: str) -> LogEntry:
    reason = _clean(event.reason)
    code = event.code
    level = DEBUG if event.cause is None and code in _ROUTINE_CODES else _close_level(code)
    return LogEntry(
        level=level,
        msg="session %s (conn %d from %s) disconnected: %s%s",
        args=(event.session.id, event.conn_id, peer, _close_text(code, reason),
              "; session ended" if event.session_ended else ""),
        extra={"sigma_event": "disconnected", "sigma_session": event.session.id,
               "sigma_conn": event.conn_id, "sigma_peer": peer, "sigma_code": code,
               "sigma_reason": reason, "sigma_session_ended": event.session_ended})


def _connected(event: ClientConnected, peer: str) -> LogEntry:
    session_id = event.session.id
    extra: dict[str, object] = {
        "sigma_event": "connected", "sigma_session": session_id, "sigma_conn": event.conn_id,
        "sigma_peer": peer, "sigma_resumed": event.resumed}
    lost = ""
    if event.failed_topics:
        topics = ", ".join(_clean(t) for t in event.failed_topics)
        lost = f"; history lost on {len(event.failed_topics)} topic(s): {topics}"
        extra["sigma_failed_topics"] = event.failed_topics
    if event.fresh_reason:
        reason = _clean(event.fresh_reason)
        extra["sigma_reason"] = reason
        return LogEntry(level=INFO,
                        msg="conn %d from %s: resume failed (%s); fresh session %s%s",
                        args=(event.conn_id, peer, reason, session_id, lost), extra=extra)
    return LogEntry(level=INFO if lost else DEBUG,
                    msg="session %s %s (conn %d from %s)%s",
                    args=(session_id, "resumed" if event.resumed else "connected",
                          event.conn_id, peer, lost), extra=extra)


def _close_level(code: int) -> int:
    if code in _LIMIT_CODES:
        return WARNING
    return DEBUG if code in _ROUTINE_CODES else INFO


def listener_error_entry(owner: str, event: str, exc: BaseException) -> LogEntry:
    """The record for an application callback that raised (``on(event, listener)``): ERROR,
    with its traceback, naming the event (``sigma_callback``) and the object it was registered on
    (``sigma_listener_of``: ``SigmaSocketServer``, ``SigmaASGIApp``, ``SigmaSocketClient``).
    The same on every adapter: the connection that fired the event is kept."""
    return LogEntry(level=ERROR, msg="a %s %r listener raised %s",
                    args=(owner or "SigmaSockets", event, type(exc).__name__),
                    extra={"sigma_callback": event, "sigma_listener_of": owner}, exc=exc)


# ----------------------------------------------------------------------------- client


def client_log_entry(event: ClientEvent) -> LogEntry | None:
    """The record for a client-session event (None: not logged; messages never are)."""
    if isinstance(event, Disconnected):
        reason = _clean(event.reason)
        code = event.code
        extra = {"sigma_event": "disconnected", "sigma_code": code, "sigma_reason": reason,
                 "sigma_will_reconnect": event.will_reconnect}
        if not event.will_reconnect and code == CloseCode.NORMAL_CLOSURE:
            return LogEntry(level=DEBUG, msg="disconnected: %s",
                            args=(_close_text(code, reason),), extra=extra)
        return LogEntry(level=WARNING, msg="connection lost: %s%s",
                        args=(_close_text(code, reason),
                              "; will reconnect" if event.will_reconnect else ""),
                        extra=extra)
    if isinstance(event, Reconnecting):
        return LogEntry(level=INFO, msg="reconnecting in %.2f s (attempt %d of %s)",
                        args=(event.delay, event.attempt,
                              event.max_attempts if event.max_attempts is not None else "inf"),
                        extra={"sigma_event": "reconnecting", "sigma_attempt": event.attempt})
    if isinstance(event, Connected):
        return LogEntry(level=INFO if event.fresh_reason else DEBUG,
                        msg="connected: session %s %s",
                        args=(event.session_id, "resumed" if event.resumed else "(fresh)"),
                        extra={"sigma_event": "connected", "sigma_session": event.session_id,
                               "sigma_resumed": event.resumed})
    if isinstance(event, SessionReset):
        reason = _clean(event.reason)
        return LogEntry(level=WARNING,
                        msg="session %s could not be resumed (%s): fresh session %s, %d "
                        "unacknowledged message(s) sent again",
                        args=(event.old_session_id, reason, event.new_session_id, event.resent),
                        extra={"sigma_event": "session_reset", "sigma_session":
                               event.new_session_id, "sigma_reason": reason})
    if isinstance(event, RecoveryFailed):
        topic = _clean(event.topic)
        return LogEntry(level=WARNING, msg="messages lost on topic %s (offsets %d..%s)",
                        args=(topic, event.lost_from, event.lost_to or "?"),
                        extra={"sigma_event": "recovery_failed", "sigma_topic": topic})
    if isinstance(event, GaveUp):
        reason = _clean(event.reason)
        return LogEntry(level=WARNING, msg="gave up connecting: %s", args=(reason,),
                        extra={"sigma_event": "gave_up", "sigma_code": event.last_code,
                               "sigma_reason": reason})
    if isinstance(event, ErrorReceived):
        message = _clean(event.error.message)
        return LogEntry(level=INFO, msg="server reported error %d: %s",
                        args=(int(event.error.code), message),
                        extra={"sigma_event": "server_error", "sigma_code": int(event.error.code),
                               "sigma_reason": message})
    if isinstance(event, OpenTransport):
        return LogEntry(level=DEBUG, msg="opening %s:%d%s (attempt %d)",
                        args=(event.host, event.port, " with TLS" if event.secure else "",
                              event.attempt),
                        extra={"sigma_event": "open_transport", "sigma_attempt": event.attempt})
    if isinstance(event, CloseTransport):
        return LogEntry(level=DEBUG, msg="closing the socket of attempt %d",
                        args=(event.attempt,),
                        extra={"sigma_event": "close_transport", "sigma_attempt": event.attempt})
    if isinstance(event, StatusChanged):
        return LogEntry(level=DEBUG, msg="status %s -> %s",
                        args=(event.previous.name, event.status.name),
                        extra={"sigma_event": "status", "sigma_status": event.status.name})
    return None


# ----------------------------------------------------------------------------- text


def _close_text(code: int, reason: str) -> str:
    """``4008 rate_limited (client sent faster ...)``; the code alone without a reason."""
    try:
        name = CloseCode(code).name.lower()
    except ValueError:
        name = "unknown"
    return f"{code} {name} ({reason})" if reason else f"{code} {name}"


def _clean(text: str) -> str:
    """Peer-influenced text made safe to log: quoted raw bytes replaced by their length,
    control characters escaped (no forged log lines), bounded length."""
    text = _BYTES_LITERAL.sub(lambda _: "<raw bytes not logged>", text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                       for c in text)
    if len(text) > _MAX_REASON:
        text = text[:_MAX_REASON] + "..."
    return text
