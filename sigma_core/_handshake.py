"""The opening handshake of a WebSocket, both roles: RFC 6455 §4 on wsproto's ``H11Handshake``.

What it owns: the HTTP head, buffered and bounded here first (``max_handshake_size``, answered
with 431; obvious garbage such as a TLS hello on a plain port answered at once with 400); the
server's upgrade request checks and its answers (101, :meth:`Handshake.reject`, the automatic
400/405/408/431 with a text body, plain GET/HEAD surfaced as :class:`HttpRequest` when
``serve_http`` and answered by :meth:`Handshake.respond`); subprotocol negotiation (a request
offering none of ours never reaches the application) and permessage-deflate negotiation (a
malformed offer is declined, RFC 7692 §5); the client's request and its reading of the 101 or
of an error response and its body. It hands over wsproto's ``Connection`` and what was
negotiated when the handshake succeeds; :mod:`sigma_core.websocket` does everything after.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, cast

import h11
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    AcceptConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as _WsRemoteProtocolError

from sigma_core._deflate import BoundedDeflate
from sigma_core._wsevents import (
    _HEADER_VALUE,
    _TOKEN,
    Closed,
    HandshakeAccepted,
    HandshakeFailed,
    HandshakeRequest,
    Headers,
    HttpRequest,
    HttpResponse,
    Role,
    WebSocketConfig,
    WebSocketEvent,
    WebSocketState,
)
from sigma_core.errors import CloseCode, LocalProtocolError, RemoteProtocolError

__all__ = ["Handshake"]

_PATH = re.compile(r"/[\x21-\x7e]*")
_HOST = re.compile(r"[\x21-\x7e]+")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")
_OPEN = WebSocketState.OPEN
_REJECTED = WebSocketState.REJECTED
_CLOSED = WebSocketState.CLOSED

_HEAD_END = re.compile(rb"\n\r?\n")  # h11's notion of the end of a head
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/[0-9]\.[0-9]\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?\r?\n")
_TOKEN_BYTES = frozenset(
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

# Header names the handshake writes itself; callers may not add them.
_MANAGED_HEADERS = frozenset(
    {
        "connection",
        "upgrade",
        "host",
        "content-length",
        "transfer-encoding",
        "sec-websocket-key",
        "sec-websocket-accept",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


class Handshake:
    """The opening handshake of one WebSocket, either role (RFC 6455 §4), sans-IO.

    Owned by a :class:`~sigma_core.websocket.WebSocket` until the handshake ends, the way
    wsproto's ``WSConnection`` owns an ``H11Handshake``. Each call may append to :attr:`events`
    and :attr:`output`, which the WebSocket drains after it, and may end the handshake: then
    :attr:`outcome` says how (``OPEN``: :attr:`connection`, :attr:`subprotocol`,
    :attr:`extension` and the bytes that followed the head in :attr:`rest`; ``REJECTED``: an
    HTTP answer was written or received; ``CLOSED``: :attr:`closed` is the terminal event).
    Commands check only what this object knows; the WebSocket checks its own state first."""

    __slots__ = (
        "_body",
        "_config",
        "_first_line_seen",
        "_h11",
        "_head",
        "_http_method",
        "_offered",
        "_pending",
        "_reject",
        "_request",
        "_role",
        "closed",
        "connection",
        "events",
        "extension",
        "outcome",
        "output",
        "rest",
        "subprotocol",
    )

    def __init__(self, role: Role, config: WebSocketConfig) -> None:
        self._role = role
        self._config = config
        self._h11 = H11Handshake(
            ConnectionType.SERVER if role is Role.SERVER else ConnectionType.CLIENT
        )
        self._head: bytearray | None = bytearray()
        self._first_line_seen = False
        self._http_method: str | None = None
        self._request: Request | None = None
        self._offered: tuple[str, ...] = ()
        self._pending: bytearray | None = None
        self._reject: tuple[int, str, Headers] | None = None
        self._body: bytearray | None = None
        #: Produced by the last calls; the owner drains both.
        self.events: list[WebSocketEvent] = []
        self.output: list[bytes] = []
        #: None while under way; then OPEN, REJECTED or CLOSED.
        self.outcome: WebSocketState | None = None
        #: OPEN: wsproto's connection (it writes a client's masked frames, and every frame with
        #: permessage-deflate), the subprotocol and the extension negotiated (a client's offer
        #: until then), the bytes that followed the head.
        self.connection: Connection | None = None
        self.subprotocol: str | None = None
        self.extension: PerMessageDeflate | None = None
        self.rest = b""
        #: CLOSED: the terminal event.
        self.closed: Closed | None = None

    def has_request(self) -> bool:
        """Server: a :class:`HandshakeRequest` awaits :meth:`accept` or :meth:`reject`."""
        return self._request is not None and self.outcome is None

    def has_http_request(self) -> bool:
        """Server: an :class:`HttpRequest` awaits :meth:`respond`."""
        return self._http_method is not None and self.outcome is None

    def receive_data(self, data: bytes | bytearray | memoryview | None) -> None:
        """Bytes from the peer before the handshake ended; ``None`` for end of stream."""
        if self._role is Role.SERVER:
            self._receive_request(data)
        else:
            self._receive_response(data)

    def send_request(
        self, *, host: str, path: str, extra_headers: Sequence[tuple[str, str]]
    ) -> None:
        """Client: queue the upgrade request (offering permessage-deflate if configured)."""
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            msg = f"invalid host {host!r}"
            raise LocalProtocolError(msg)
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            msg = f"invalid path {path!r}: must start with '/' and be printable ASCII"
            raise LocalProtocolError(msg)
        headers = _encode_headers(extra_headers)
        if self._config.compression:
            self.extension = BoundedDeflate(self._config.max_message_size)
        request = Request(
            host=host,
            target=path,
            extensions=[self.extension] if self.extension is not None else [],
            subprotocols=list(self._config.subprotocols),
            extra_headers=headers,
        )
        try:
            self.output.append(self._h11.send(request))
        except UnicodeError as exc:  # the host is not a valid IDNA name ("a..b")
            msg = f"invalid host {host!r}: {exc}"
            raise LocalProtocolError(msg) from exc

    def expire(self, reason: str) -> bool:
        """The handshake timeout passed: a server holding part of a request answers 408
        (RFC 9110 §15.5.9) and returns True; otherwise nothing happens (False)."""
        if self._role is Role.SERVER and self._head:
            self._auto_reject(408, reason)
            return True
        return False

    def _opened(
        self, subprotocol: str | None, extension: PerMessageDeflate | None, rest: bytes
    ) -> None:
        self.connection = self._h11.connection
        assert self.connection is not None
        self.subprotocol = subprotocol
        self.extension = extension
        self.rest = rest
        self._end(_OPEN)

    def _close(self, event: Closed) -> None:
        self.closed = event
        self._end(_CLOSED)

    def _end(self, outcome: WebSocketState) -> None:
        # What a finished handshake no longer needs (and must not act on again).
        self.outcome = outcome
        self._head = None
        self._pending = None
        self._body = None
        self._request = None
        self._http_method = None

    def _end_of_stream(self) -> None:
        self._close(
            Closed(
                code=int(CloseCode.ABNORMAL_CLOSURE),
                reason="",
                initiated_locally=False,
                clean=False,
            )
        )

    # -- server ------------------------------------------------------------------------------------

    def _take_head(self, data: bytes | bytearray | memoryview) -> tuple[bytes, bytes] | None:
        """Buffer bytes until the HTTP head is complete; return (head, what follows it).

        Rejects oversized heads and a first line that cannot be HTTP as soon as that is known."""
        buffer = self._head
        assert buffer is not None
        search_from = max(0, len(buffer) - 2)
        buffer += data
        server = self._role is Role.SERVER
        if not self._first_line_seen:
            newline = buffer.find(b"\n")
            if newline < 0:
                if server and buffer and buffer[0] not in _TOKEN_BYTES:
                    self._head_error(400, "not an HTTP request")
                    return None
            else:
                line = _REQUEST_LINE if server else _STATUS_LINE
                if line.fullmatch(buffer, 0, newline + 1) is None:
                    self._head_error(
                        400, "malformed HTTP " + ("request" if server else "status") + " line"
                    )
                    return None
                self._first_line_seen = True
        limit = self._config.max_handshake_size
        match = _HEAD_END.search(buffer, search_from)
        end = match.end() if match is not None else -1
        if end > limit or (end < 0 and len(buffer) > limit):
            self._head_error(431, f"HTTP head larger than {limit} bytes")
            return None
        if end < 0:
            return None
        self._head = None
        return bytes(buffer[:end]), bytes(buffer[end:])

    def _head_error(self, status: int, message: str) -> None:
        if self._role is Role.SERVER:
            self._auto_reject(status, message)
        else:
            code = CloseCode.MESSAGE_TOO_BIG if status == 431 else CloseCode.PROTOCOL_ERROR
            self._fail_handshake(message.replace("HTTP head", "HTTP response head"), code)

    def _receive_request(self, data: bytes | bytearray | memoryview | None) -> None:
        if data is None:
            self._end_of_stream()
            return
        if self._pending is not None:
            # The client spoke before our 101 (RFC 6455 §4.1 says it must wait). Keep it for
            # accept(), bounded: nobody reads it before then.
            self._pending += data
            if len(self._pending) > self._config.max_handshake_size:
                self._auto_reject(400, "data sent before the handshake completed")
            return
        if not data:
            return
        taken = self._take_head(data)
        if taken is None:
            return
        head, rest = taken
        assert self._h11 is not None
        if self._config.serve_http and not _asks_upgrade(head):
            self._on_http(head)
            return
        try:
            self._h11.receive_data(head)
            events = list(self._h11.events())
        except _WsRemoteProtocolError as exc:
            hint = exc.event_hint
            status = hint.status_code if isinstance(hint, RejectConnection) else 400
            headers = _decode_headers(hint.headers) if isinstance(hint, RejectConnection) else ()
            message = str(exc)
            if exc.__context__ is not None:
                message = f"{message}: {exc.__context__}"
            self._auto_reject(status, message, headers)
            return
        except (UnicodeError, ValueError) as exc:
            self._auto_reject(400, f"malformed upgrade request: {exc}")
            return
        for event in events:
            if isinstance(event, Request):
                self._on_request(event, rest)

    def _on_request(self, request: Request, rest: bytes) -> None:
        offered = tuple(p for p in request.subprotocols if p)
        ours = self._config.subprotocols
        if ours and not any(p in offered for p in ours):
            self._auto_reject(
                400, f"unsupported WebSocket subprotocol: this server speaks {', '.join(ours)}"
            )
            return
        keys = [v for n, v in request.extra_headers if n == b"sec-websocket-key"]
        if len(keys) != 1 or not _valid_key(keys[0]):
            self._auto_reject(400, "invalid Sec-WebSocket-Key")  # RFC 6455 §4.2.1 item 5
            return
        self._request = request
        self._offered = offered
        self._pending = bytearray(rest)
        if len(self._pending) > self._config.max_handshake_size:
            self._auto_reject(400, "data sent before the handshake completed")
            return
        self.events.append(
            HandshakeRequest(
                path=request.target,
                headers=_decode_headers(request.extra_headers),
                subprotocols=offered,
                host=request.host,
            )
        )

    def _on_http(self, head: bytes) -> None:
        parser = h11.Connection(h11.SERVER)
        try:
            parser.receive_data(head)
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            self._auto_reject(400, f"malformed HTTP request: {exc}")
            return
        if not isinstance(event, h11.Request):
            self._auto_reject(400, "malformed HTTP request")
            return
        method = event.method.decode("ascii", "replace")
        if method not in ("GET", "HEAD"):
            self._auto_reject(405, f"method {method} not allowed", (("Allow", "GET, HEAD"),))
            return
        self._http_method = method
        self.events.append(HttpRequest(
            method=method, path=event.target.decode("ascii", "replace"),
            headers=tuple((n.decode("latin-1").lower(), v.decode("latin-1"))
                          for n, v in event.headers)))

    def respond(self, response: HttpResponse) -> None:
        """Server: answer the pending :class:`HttpRequest`; the connection then closes (state
        REJECTED: it never became a WebSocket)."""
        if self._http_method is None or self.outcome is not None:
            raise LocalProtocolError("respond() needs a pending HttpRequest")
        if not 100 <= response.status <= 599:
            raise LocalProtocolError(f"HTTP status must be 100..599, not {response.status}")
        for name, value in response.headers:
            # A CR or LF would end the header (response splitting); NUL is refused by RFC 9110.
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                raise LocalProtocolError(f"HTTP header name {name!r} is not a valid token")
            if not isinstance(value, str) or _BAD_HEADER_VALUE.search(value):
                raise LocalProtocolError(
                    f"HTTP header {name!r} has a value with CR, LF or NUL: {value!r}")
        head_only = self._http_method == "HEAD"
        self._http_method = None
        self._write_response(response.status, list(response.headers),
                             response.body, head_only=head_only)
        self._end(_REJECTED)

    def _write_response(self, status: int, headers: list[tuple[str, str]], body: bytes, *,
                        head_only: bool = False) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        sent = [(n, v) for n, v in headers if n.lower() not in ("content-length", "connection")]
        sent += [("Content-Length", str(len(body))), ("Connection", "close")]
        lines = [f"HTTP/1.1 {status} {phrase}\r\n"]
        lines += [f"{name}: {value}\r\n" for name, value in sent]
        lines.append("\r\n")
        self.output.append("".join(lines).encode("latin-1") + (b"" if head_only else body))

    def _auto_reject(self, status: int, reason: str, headers: Headers = ()) -> None:
        self._send_rejection(status, reason, headers, reason.encode(), "text/plain; charset=utf-8")

    def _send_rejection(
        self, status: int, reason: str, headers: Headers, body: bytes, content_type: str | None
    ) -> None:
        # Written here rather than through h11: h11 cannot answer a request it failed to parse,
        # and this way the status line carries a reason phrase.
        sent = list(headers)
        if content_type is not None:
            sent.append(("Content-Type", content_type))
        self._write_response(status, sent, body)
        sent += [("Content-Length", str(len(body))), ("Connection", "close")]
        self._end(_REJECTED)
        self.events.append(
            HandshakeFailed(
                status=status,
                reason=reason,
                headers=tuple((name.lower(), value) for name, value in sent),
                body=body,
            )
        )

    def accept(
        self, *, subprotocol: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Server: accept the pending :class:`HandshakeRequest` (101); the state becomes OPEN.

        ``subprotocol`` defaults to the first of ``config.subprotocols`` the client offered (None
        in plain mode); an explicit one must have been offered and, unless plain, be ours."""
        ours = self._config.subprotocols
        if subprotocol is None:
            subprotocol = next((p for p in ours if p in self._offered), None)
        elif subprotocol not in self._offered or (ours and subprotocol not in ours):
            msg = f"subprotocol {subprotocol!r} was not offered or is not one of ours"
            raise LocalProtocolError(msg)
        headers = _encode_headers(extra_headers)
        handshake = self._h11
        extension = (BoundedDeflate(self._config.max_message_size)
                     if self._config.compression else None)
        try:
            data = handshake.send(
                AcceptConnection(
                    subprotocol=subprotocol,
                    extensions=[extension] if extension is not None else [],
                    extra_headers=headers,
                )
            )
        except ValueError:
            # Only permessage-deflate raises here, on a malformed offer (a window size that is not
            # a number): decline the offer rather than the connection (RFC 7692 §5).
            extension = None
            data = handshake.send(AcceptConnection(subprotocol=subprotocol, extra_headers=headers))
        self.output.append(data)
        self._opened(subprotocol, extension, bytes(self._pending or b""))

    def reject(
        self,
        status: int,
        reason: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> None:
        """Server: refuse the pending :class:`HandshakeRequest` with an HTTP error (400-599).

        The body defaults to ``reason`` as UTF-8 text/plain. The state becomes REJECTED and
        :class:`HandshakeFailed` is emitted."""
        if type(status) is not int or not 400 <= status <= 599:
            msg = f"reject() status must be an int in 400..599, not {status!r}"
            raise LocalProtocolError(msg)
        if not isinstance(reason, str):
            msg = f"reason must be str, not {type(reason).__name__}"
            raise LocalProtocolError(msg)
        encoded = _encode_headers(headers)
        decoded = tuple((n.decode("ascii"), v.decode("latin-1")) for n, v in encoded)
        if body is None:
            self._send_rejection(
                status, reason, decoded, reason.encode(), "text/plain; charset=utf-8"
            )
        else:
            self._send_rejection(status, reason, decoded, bytes(body), None)

    # -- client ------------------------------------------------------------------------------------

    def _receive_response(self, data: bytes | bytearray | memoryview | None) -> None:
        handshake = self._h11
        assert handshake is not None
        if self._body is not None:
            if data is None or data:  # b"" would be end of stream to h11
                self._receive_rejection_body(handshake, data)
            return
        if data is None:
            self._end_of_stream()
            return
        if not data:
            return
        taken = self._take_head(data)
        if taken is None:
            return
        head, rest = taken
        try:
            handshake.receive_data(head)
            events = list(handshake.events())
        except (_WsRemoteProtocolError, UnicodeError, ValueError) as exc:
            self._fail_handshake(f"invalid handshake response: {exc}")
            return
        for index, event in enumerate(events):
            if isinstance(event, AcceptConnection):
                self._on_accepted(handshake, event, rest)
                return
            if isinstance(event, RejectConnection):
                match = _STATUS_LINE.match(head)
                phrase = (match.group(2) or b"").decode("latin-1") if match else ""
                self._reject = (event.status_code, phrase, _decode_headers(event.headers))
                self._body = bytearray()
                if not event.has_body:
                    self._finish_rejection()
                    return
                self._on_rejection_events(events[index + 1 :])
                # (Not self._body: mypy keeps it narrowed to bytearray across the call above,
                # which may end the rejection, and compiled code would trust that.)
                if self.outcome is None and rest:
                    self._receive_rejection_body(handshake, rest)
                return

    def _on_accepted(self, handshake: H11Handshake, event: AcceptConnection, rest: bytes) -> None:
        subprotocol = event.subprotocol
        if self._config.subprotocols and subprotocol is None:
            offered = ", ".join(self._config.subprotocols)
            self._fail_handshake(f"the server selected no subprotocol (offered: {offered})")
            return
        self.events.append(
            HandshakeAccepted(subprotocol=subprotocol, headers=_decode_headers(event.extra_headers))
        )
        self._opened(subprotocol, self.extension, rest)

    def _receive_rejection_body(
        self, handshake: H11Handshake, data: bytes | bytearray | memoryview | None
    ) -> None:
        try:
            handshake.receive_data(None if data is None else bytes(data))
            events = list(handshake.events())
        except (_WsRemoteProtocolError, UnicodeError, ValueError):
            events = []  # a broken body: report what we have
            data = None
        self._on_rejection_events(events)
        if data is None and self._body is not None:
            self._finish_rejection()

    def _on_rejection_events(self, events: list[Event]) -> None:
        body = self._body
        assert body is not None
        for event in events:
            if isinstance(event, RejectData):
                # Through Any: h11 hands over a bytearray whatever the annotation says, and
                # compiled (mypyc) code checks annotations.
                body += cast(Any, event).data
                if len(body) >= self._config.max_handshake_size:
                    del body[self._config.max_handshake_size :]
                    self._finish_rejection()
                    return
                if event.body_finished:
                    self._finish_rejection()
                    return

    def _finish_rejection(self) -> None:
        assert self._reject is not None
        assert self._body is not None
        status, phrase, headers = self._reject
        body = bytes(self._body)
        self._end(_REJECTED)
        self.events.append(
            HandshakeFailed(status=status, reason=phrase, headers=headers, body=body)
        )

    def _fail_handshake(self, message: str, code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        # No close frame: the connection was never established (RFC 6455 §4.1, §7.1.7).
        cause = RemoteProtocolError(message, code=code)
        self._close(
            Closed(
                code=int(CloseCode.ABNORMAL_CLOSURE),
                reason=cause.reason,
                initiated_locally=True,
                clean=False,
                cause=cause,
            )
        )


# -- helpers ---------------------------------------------------------------------------------------


def _asks_upgrade(head: bytes) -> bool:
    """Whether an HTTP head carries ``Upgrade: websocket`` (case-insensitive, RFC 6455 §4.2.1)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"upgrade" and b"websocket" in value.lower():
            return True
    return False


def _valid_key(key: bytes) -> bool:
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except binascii.Error:
        return False


def _encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for item in headers:
        if not (isinstance(item, tuple) and len(item) == 2):
            msg = f"a header is a (name, value) tuple, not {item!r}"
            raise LocalProtocolError(msg)
        name, value = item
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            msg = f"invalid header name {name!r}"
            raise LocalProtocolError(msg)
        if name.lower() in _MANAGED_HEADERS:
            msg = f"header {name!r} is written by the handshake itself"
            raise LocalProtocolError(msg)
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            msg = f"invalid value for header {name!r}: {value!r}"
            raise LocalProtocolError(msg)
        encoded.append((name.encode("ascii"), value.strip(" \t").encode("latin-1")))
    return encoded


def _decode_headers(headers: Sequence[tuple[bytes, bytes]]) -> Headers:
    return tuple((n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in headers)
