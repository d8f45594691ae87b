"""The WebSocket layer: RFC 6455 opening handshake and framing, both roles, sans-IO.

A :class:`WebSocket` is fed bytes with :meth:`~WebSocket.receive_data` (``None`` for end of stream)
and commands (:meth:`~WebSocket.accept`, :meth:`~WebSocket.send_message`,
:meth:`~WebSocket.close`, ...). It answers with events (:meth:`~WebSocket.events_received`),
bytes to write (:meth:`~WebSocket.data_to_send`) and :attr:`~WebSocket.transport_should_close`.
It never does I/O, never reads a clock and keeps no timers: the layer above owns the handshake and
closing timeouts and calls :meth:`~WebSocket.abort` when they expire.

Theory of operation
-------------------
wsproto's ``H11Handshake`` parses and writes the HTTP/1.1 upgrade. After it, frames are parsed by
our own :class:`~sigma_core._framer.FrameParser` (wsproto's pure-Python frame layer was most of
the receive cost), unless permessage-deflate was negotiated: then wsproto's ``Connection`` does
all the framing. A client still sends through wsproto's ``Connection``, which draws each frame's
mask (RFC 6455 §5.3) from ``os.urandom``: the core draws no entropy of its own. Both frame paths
behave identically, byte for byte (``tests/test_framer.py`` compares them). Nothing outside this
module and ``_framer`` knows about wsproto or frames. Around them this module adds what a
conforming, bounded endpoint needs:

* the HTTP head is buffered here first, so it is bounded (``max_handshake_size``, answered with
  431) and obvious garbage (a TLS hello on a plain port) is answered at once with 400;
* subprotocol policy: a request offering none of ours never reaches the application;
* whole-message reassembly with a size limit counted as data arrives (1009), text policy (1003);
* peer violations after the handshake never raise: the right close frame is queued, the cause is
  recorded in :class:`Closed`, the connection is CLOSED (RFC 6455 §7.1.7, "fail the connection"),
  after the messages that came before them in the same read were answered (see "Messages before
  the end" below);
* automatic pong and close replies;
* server frames without compression are written here directly (no mask, so no entropy is needed).

Every WebSocket emits exactly one terminal event: :class:`HandshakeFailed` (state REJECTED) when
the handshake ended with an HTTP error response, else :class:`Closed` (state CLOSED). After it,
received bytes are ignored and :attr:`~WebSocket.transport_should_close` is True.

State transitions (all of them; anything else is a :class:`LocalProtocolError` or is ignored)::

    state          input                                  next state     output
    -------------  -------------------------------------  -------------  -----------------------
    HANDSHAKE      server: valid upgrade request          HANDSHAKE      HandshakeRequest
    HANDSHAKE      server: accept()                       OPEN           101 response
    HANDSHAKE      server: reject(), bad or oversized     REJECTED       HTTP error response,
                   request, no common subprotocol,                       HandshakeFailed
                   expire_handshake() with part of a
                   request received (408)
    HANDSHAKE      client: valid 101 response             OPEN           HandshakeAccepted
    HANDSHAKE      client: non-101 response (+ body)      REJECTED       HandshakeFailed
    HANDSHAKE      client: malformed/oversized response   CLOSED         Closed(1006, cause)
    OPEN           close()                                LOCAL_CLOSING  close frame
    OPEN           peer's close frame                     CLOSED         close reply, Closed(clean)
    LOCAL_CLOSING  peer's close frame                     CLOSED         Closed(clean)
    OPEN           peer violation / too big / text        CLOSED         close frame, Closed(cause)
    LOCAL_CLOSING  peer violation                         CLOSED         Closed(cause)
    not final      end of stream                          CLOSED         Closed(1006)
    not final      abort(), expire_handshake() otherwise  CLOSED         Closed(unclean)

Messages before the end
-----------------------
When one :meth:`~WebSocket.receive_data` call completes one or more messages *and then* a frame
that ends the WebSocket (the peer's close frame, or a violation that fails it), the end is held:
the call emits the messages, the state stays OPEN and sends stay allowed. The end is acted on at
the caller's next call into the layer after it, i.e. :meth:`~WebSocket.data_to_send`,
:meth:`~WebSocket.receive_data`, :meth:`~WebSocket.close` (as if the end arrived after our close
frame), an :meth:`~WebSocket.events_received` that finds no events, or :meth:`~WebSocket.settle`
(:meth:`~WebSocket.abort` drops it). Its close frame is then queued *after* whatever the
caller sent in between, and :class:`Closed` is emitted. So a caller that follows the loop
``receive_data`` -> handle events (answering them) -> ``data_to_send`` answers every message
that arrived intact before the end, and sees the same events and the same close frame however
the bytes were chunked. Both frame paths do this. The table above applies once it is acted on.

REMOTE_CLOSING (the peer's close frame arrived, ours is not yet sent) is never observed between
calls here, because the reply is queued as soon as the peer's close frame is parsed; it is part of
the state vocabulary for a framer that would let the application answer later.
"""

from __future__ import annotations

import binascii
import enum
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as _WsRemoteProtocolError

from sigma_core._deflate import BoundedDeflate
from sigma_core._framer import (
    CloseFrame,
    Failure,
    FrameParser,
    PingFrame,
    PongFrame,
    Received,
    close_payload,
    frame,
    too_big,
)
from sigma_core.errors import CloseCode, LocalProtocolError, RemoteProtocolError

__all__ = [
    "Closed",
    "HandshakeAccepted",
    "HandshakeFailed",
    "HandshakeRequest",
    "HttpRequest",
    "HttpResponse",
    "MessageReceived",
    "PingReceived",
    "PongReceived",
    "Role",
    "WebSocket",
    "WebSocketConfig",
    "WebSocketEvent",
    "WebSocketState",
]

Headers = tuple[tuple[str, str], ...]


class Role(enum.Enum):
    """Which end of the connection a :class:`WebSocket` is."""

    CLIENT = "client"
    SERVER = "server"


class WebSocketState(enum.Enum):
    """Where a :class:`WebSocket` is in its life (RFC 6455 §4, §7). See the module docstring."""

    #: The opening handshake is in progress.
    HANDSHAKE = "handshake"
    #: Messages flow both ways.
    OPEN = "open"
    #: We sent a close frame and wait for the peer's.
    LOCAL_CLOSING = "local_closing"
    #: The peer sent a close frame and ours is not yet sent (transient, see the module docstring).
    REMOTE_CLOSING = "remote_closing"
    #: The WebSocket is over; :class:`Closed` was emitted.
    CLOSED = "closed"
    #: The handshake ended with an HTTP error response; :class:`HandshakeFailed` was emitted.
    REJECTED = "rejected"


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_PATH = re.compile(r"/[\x21-\x7e]*")
_HOST = re.compile(r"[\x21-\x7e]+")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketConfig:
    """Limits and policy of one WebSocket. The defaults are SigmaSockets' envelope mode."""

    #: Largest whole (reassembled) message accepted, in bytes. A larger one is answered with close
    #: code 1009 as soon as the bytes received exceed it; it is never buffered past the limit.
    #: Outgoing messages are held to the same limit.
    max_message_size: int = 1 << 20
    #: Largest HTTP request/response head. A server answers a larger request with 431; a client
    #: fails the connection. A client also truncates a rejection's body to this size.
    max_handshake_size: int = 16 * 1024
    #: Server: the subprotocols we accept, in preference order. Client: the ones offered.
    #: Empty: plain WebSocket, no subprotocol negotiated or required.
    subprotocols: tuple[str, ...] = ("sigma.v1",)
    #: False: a text message is answered with close code 1003 and sending text is refused.
    #: True (plain/echo mode): text messages are delivered as ``str``.
    allow_text: bool = False
    #: permessage-deflate (RFC 7692): offered by a client, accepted by a server when offered.
    compression: bool = False
    #: Server: a GET or HEAD without ``Upgrade: websocket`` is surfaced as :class:`HttpRequest`
    #: (answer it with :meth:`WebSocket.respond`) instead of being refused with 400, so a web
    #: app and its WebSocket can share one port. Other methods get 405.
    serve_http: bool = False
    #: Frames one message may arrive in (a fragmented message); more fails the connection with
    #: close code 1008. Our clients and browsers send one frame per message.
    max_fragments: int = 1024

    def __post_init__(self) -> None:
        for name in ("max_message_size", "max_handshake_size", "max_fragments"):
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                msg = f"{name} must be a positive int, not {value!r}"
                raise ValueError(msg)
        if not isinstance(self.subprotocols, tuple):
            msg = f"subprotocols must be a tuple of str, not {type(self.subprotocols).__name__}"
            raise ValueError(msg)
        for subprotocol in self.subprotocols:
            # RFC 6455 §4.1: non-empty tokens (RFC 2616 §2.2), all unique.
            if not isinstance(subprotocol, str) or not _TOKEN.fullmatch(subprotocol):
                msg = f"subprotocol {subprotocol!r} is not a valid HTTP token"
                raise ValueError(msg)
        if len(set(self.subprotocols)) != len(self.subprotocols):
            msg = f"subprotocols must be unique: {self.subprotocols!r}"
            raise ValueError(msg)

    @classmethod
    def plain(cls, **overrides: Any) -> WebSocketConfig:
        """A plain RFC 6455 endpoint (e.g. an echo server for Autobahn): no subprotocol, text
        allowed, 16 MiB messages (Autobahn's 9.* cases send up to 16 MiB)."""
        settings: dict[str, Any] = {
            "subprotocols": (),
            "allow_text": True,
            "max_message_size": 16 << 20,
            # Autobahn's 9.3/9.4 cases send 4 MiB in 64-byte fragments.
            "max_fragments": 1 << 17,
        }
        settings.update(overrides)
        return cls(**settings)


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketEvent:
    """Base class of everything :meth:`WebSocket.events_received` returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeRequest(WebSocketEvent):
    """Server: a valid upgrade request arrived; answer it with :meth:`WebSocket.accept` or
    :meth:`WebSocket.reject`. Only requests offering one of our subprotocols (when we have any)
    are surfaced; the others are rejected with HTTP 400 automatically."""

    #: The request target, e.g. ``"/chat?room=1"``.
    path: str
    #: The request's headers, names lower-cased, except Host, Sec-WebSocket-Protocol and
    #: Sec-WebSocket-Extensions (given by ``host`` and ``subprotocols``, and handled here).
    headers: Headers
    #: The subprotocols the client offered, in its order.
    subprotocols: tuple[str, ...]
    host: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeAccepted(WebSocketEvent):
    """Client: the server answered 101 and the answer is valid. The WebSocket is OPEN."""

    subprotocol: str | None
    #: The response's headers, names lower-cased, except those the handshake consumed
    #: (Connection, Upgrade, Sec-WebSocket-Accept/-Protocol/-Extensions).
    headers: Headers


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeFailed(WebSocketEvent):
    """The handshake ended with an HTTP error response. Terminal: the state is REJECTED.

    Client: the server answered with something other than 101; ``reason`` is the response's
    reason phrase. Server: we answered with an error, automatically or through
    :meth:`WebSocket.reject`; ``reason`` is the explanation given, ``headers`` and ``body`` are
    what was sent."""

    status: int
    reason: str
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest(WebSocketEvent):
    """Server with ``serve_http``: a plain HTTP GET/HEAD (no WebSocket upgrade) arrived. Answer
    with :meth:`WebSocket.respond`; the connection closes after the response."""

    method: str
    #: The request target, query included.
    path: str
    #: Lower-cased names, in order.
    headers: Headers


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What an HTTP handler returns: status, headers (Content-Length and Connection are added)
    and body (omitted on the wire for HEAD)."""

    status: int = 200
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(WebSocketEvent):
    """One whole, reassembled message: ``bytes`` for binary, ``str`` for text (only when
    ``allow_text``)."""

    data: bytes | str


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReceived(WebSocketEvent):
    """The peer sent a ping; the pong was queued already."""

    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PongReceived(WebSocketEvent):
    """The peer sent a pong."""

    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Closed(WebSocketEvent):
    """The WebSocket is over (terminal; the state is CLOSED).

    ``code`` and ``reason`` are those of the peer's close frame when the closing handshake
    completed (``clean``; 1005 when the frame had no code), those of the close frame we sent when
    we failed the connection (``cause`` then says why), 1006 when the stream ended or the handshake
    failed without any close frame, or what was given to :meth:`WebSocket.abort`."""

    code: int
    reason: str
    #: True when we started the end: close(), abort(), or our answer to a peer's violation.
    initiated_locally: bool
    #: True when close frames went both ways.
    clean: bool
    #: The peer's violation, when that is why the connection ended.
    cause: RemoteProtocolError | None = None


# -- the WebSocket ---------------------------------------------------------------------------------

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

# RFC 6455 §7.4.1/§7.4.2 and the IANA registry: codes an endpoint may put in a close frame.
# 1014 (Bad Gateway) is registered too, but wsproto fails a connection that receives it (1002),
# so a SigmaSockets peer could not take it: we do not send it either.
_SENDABLE_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1014), *range(3000, 5000)])

# The codes wsproto fails a connection with (1002, 1007), as ours.
_FAILURE_CODES = {int(code): code for code in CloseCode if code < 3000}

_FIN_BINARY = 0x82
_FIN_TEXT = 0x81
_FIN_CLOSE = 0x88
_FIN_PING = 0x89
_FIN_PONG = 0x8A
_pack_header_16 = struct.Struct("!BBH").pack
_pack_header_64 = struct.Struct("!BBQ").pack

# The hot path's way to build MessageReceived: the bare object, then its slot (see receive_data).
# (MessageReceived.__new__ is object.__new__ in Python; compiled by mypyc, the class's own.)
_new_event = MessageReceived.__new__
_set_message_data = vars(MessageReceived)["data"].__set__

_OPEN = WebSocketState.OPEN
_LOCAL_CLOSING = WebSocketState.LOCAL_CLOSING
_HANDSHAKE = WebSocketState.HANDSHAKE
_CLOSED = WebSocketState.CLOSED
_REJECTED = WebSocketState.REJECTED


class WebSocket:
    """One WebSocket connection, either role, sans-IO.

    Servers: ``WebSocket(Role.SERVER, config)``, then feed bytes; answer :class:`HandshakeRequest`
    with :meth:`accept` or :meth:`reject`. Clients: :meth:`WebSocket.client`, which queues the
    upgrade request. After every call, drain :meth:`data_to_send` to the transport, handle
    :meth:`events_received`, and close the transport once :attr:`transport_should_close`.
    """

    __slots__ = (
        "_batch",
        "_body",
        "_config",
        "_conn",
        "_events",
        "_extension",
        "_fast_send",
        "_first_line_seen",
        "_fragments",
        "_handshake",
        "_head",
        "_held_end",
        "_held_remote",
        "_http_method",
        "_message_size",
        "_offered",
        "_output",
        "_parser",
        "_parts",
        "_pending",
        "_reject",
        "_request",
        "_role",
        "_state",
        "_subprotocol",
        "_text_parts",
        "_wsproto_frames",
    )

    def __init__(
        self,
        role: Role,
        config: WebSocketConfig | None = None,
        *,
        _use_wsproto_frames: bool = False,
        _client: bool = False,
    ) -> None:
        """Create a server-side WebSocket waiting for the upgrade request.

        Client-side WebSockets are made by :meth:`client`, which needs the host and path.
        (``_use_wsproto_frames`` is for tests: parse frames with wsproto, the reference.)"""
        if role is not Role.SERVER and not _client:
            msg = "create client WebSockets with WebSocket.client(host=..., path=...)"
            raise LocalProtocolError(msg)
        self._setup(role, config, _use_wsproto_frames)

    def _setup(
        self, role: Role, config: WebSocketConfig | None, use_wsproto_frames: bool
    ) -> None:
        self._role = role
        self._wsproto_frames = use_wsproto_frames
        self._config = config if config is not None else WebSocketConfig()
        self._state = _HANDSHAKE
        ws_role = ConnectionType.SERVER if role is Role.SERVER else ConnectionType.CLIENT
        self._handshake: H11Handshake | None = H11Handshake(ws_role)
        self._conn: Connection | None = None
        self._parser: FrameParser | None = None
        self._held_end: CloseFrame | Failure | CloseConnection | None = None
        self._held_remote = False
        self._batch = 0
        self._events: list[WebSocketEvent] = []
        self._output: list[bytes] = []
        self._head: bytearray | None = bytearray()
        self._first_line_seen = False
        self._http_method: str | None = None
        self._request: Request | None = None
        self._offered: tuple[str, ...] = ()
        self._pending: bytearray | None = None
        self._reject: tuple[int, str, Headers] | None = None
        self._body: bytearray | None = None
        self._subprotocol: str | None = None
        self._extension: PerMessageDeflate | None = None
        self._fast_send = False
        self._parts: list[bytes | bytearray] = []
        self._text_parts: list[str] = []
        self._message_size = 0
        self._fragments = 0

    @classmethod
    def client(
        cls,
        *,
        host: str,
        path: str = "/",
        config: WebSocketConfig | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        _use_wsproto_frames: bool = False,
    ) -> WebSocket:
        """Create a client-side WebSocket; the upgrade request is queued in :meth:`data_to_send`.

        ``host`` is the Host header's value (``"example.com:8080"``), ``path`` the request target.
        """
        if not isinstance(host, str) or not _HOST.fullmatch(host):
            msg = f"invalid host {host!r}"
            raise LocalProtocolError(msg)
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            msg = f"invalid path {path!r}: must start with '/' and be printable ASCII"
            raise LocalProtocolError(msg)
        headers = _encode_headers(extra_headers)
        # (Not cls.__new__ + _setup: mypyc's native classes have no callable __new__.)
        self = cls(Role.CLIENT, config, _use_wsproto_frames=_use_wsproto_frames, _client=True)
        assert self._handshake is not None
        if self._config.compression:
            self._extension = BoundedDeflate(self._config.max_message_size)
        request = Request(
            host=host,
            target=path,
            extensions=[self._extension] if self._extension is not None else [],
            subprotocols=list(self._config.subprotocols),
            extra_headers=headers,
        )
        try:
            self._output.append(self._handshake.send(request))
        except UnicodeError as exc:  # the host is not a valid IDNA name ("a..b")
            msg = f"invalid host {host!r}: {exc}"
            raise LocalProtocolError(msg) from exc
        return self

    def __repr__(self) -> str:
        return f"<WebSocket {self._role.value} {self._state.value}>"

    # -- outputs -----------------------------------------------------------------------------------

    @property
    def role(self) -> Role:
        """Which end this is."""
        return self._role

    @property
    def state(self) -> WebSocketState:
        """The current state; final when the call that changed it returns."""
        return self._state

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, once OPEN (None in plain mode)."""
        return self._subprotocol

    @property
    def transport_should_close(self) -> bool:
        """True once the transport should be closed, after writing what :meth:`data_to_send`
        returns. A server closes the TCP connection first (RFC 6455 §7.1.1)."""
        return self._state is _CLOSED or self._state is _REJECTED

    def events_received(self) -> list[WebSocketEvent]:
        """Return and forget the events produced since the last call, oldest first.

        A call that finds no events acts on a held end first (see "Messages before the end"
        in the module docstring), so ``while events := ws.events_received(): ...`` sees it."""
        events = self._events
        if not events:
            if self._held_end is None:
                return []
            self.settle()
            events = self._events
        self._events = []
        return events

    def data_to_send(self, *, settle: bool = True) -> list[bytes]:
        """Return and forget the bytes to write to the transport, in order (maybe ``[]``).

        Acts on a held end first: its close frame comes after what was sent before this call.
        (``settle=False`` leaves it held: for a layer above that calls :meth:`settle` itself.)"""
        if settle and self._held_end is not None:
            self.settle()
        output = self._output
        if not output:
            return []
        self._output = []
        return output

    # -- input -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview | None) -> None:
        """Feed bytes received from the transport; ``None`` means it reached end of stream.

        Never raises for anything the peer does; the outcome is in the events, the state and the
        bytes to send. Bytes received once the WebSocket is over are ignored. Acts on a held end
        first (see "Messages before the end" in the module docstring)."""
        if self._held_end is not None:
            self.settle()
        state = self._state
        if state is _OPEN or state is _LOCAL_CLOSING:
            if data is None:
                self._end_of_stream()
            elif data:
                parser = self._parser
                events = self._events
                self._batch = len(events)
                if parser is not None:
                    for item in parser.receive(data if type(data) is bytes else bytes(data)):
                        if type(item) is bytes:
                            # MessageReceived(data=item), without the frozen dataclass's
                            # keyword __init__ (half the cost; there is nothing to validate).
                            event = _new_event(MessageReceived)
                            _set_message_data(event, item)
                            events.append(event)
                        elif type(item) is CloseFrame or type(item) is Failure:
                            # The end, always last: held if messages came before it.
                            if not self._hold(item):
                                self._on_frame(item)
                        else:
                            self._on_frame(item)
                    return
                conn = self._conn
                assert conn is not None
                conn.receive_data(data)  # type: ignore[arg-type]  # any bytes-like will do
                self._process_frames(conn)
        elif state is _HANDSHAKE:
            if self._role is Role.SERVER:
                self._receive_request(data)
            else:
                self._receive_response(data)

    # -- frames ------------------------------------------------------------------------------------

    def _on_frame(self, item: Received) -> None:
        # What our parser returns besides binary messages (see receive_data): text messages,
        # control frames, and the end (always last). After our own close frame only the end
        # comes (the parser drops the rest).
        if isinstance(item, (bytes, str)):
            self._events.append(MessageReceived(data=item))
        elif isinstance(item, PingFrame):
            if self._conn is None:
                self._output.append(frame(_FIN_PONG, item.payload))
            else:
                self._output.append(self._conn.send(Pong(payload=item.payload)))
            self._events.append(PingReceived(payload=item.payload))
        elif isinstance(item, PongFrame):
            self._events.append(PongReceived(payload=item.payload))
        elif isinstance(item, CloseFrame):
            code, reason = item
            if self._state is _OPEN:
                # The peer started closing: echo its code (RFC 6455 §5.5.1, §7.1.5; none for
                # 1005), then end at once, as on wsproto's path (see _on_close_frame).
                self._send_close(code, reason)
                self._finish(Closed(code=code, reason=reason, initiated_locally=False, clean=True))
            else:
                self._finish(Closed(code=code, reason=reason, initiated_locally=True, clean=True))
        else:
            self._fail(CloseCode(item.code), item.message)

    def _hold(self, end: CloseFrame | Failure | CloseConnection) -> bool:
        """Hold ``end`` (a close frame or a failure) if this receive_data() call emitted a
        message before it, so the layer above can answer the messages first."""
        if self._state is not _OPEN:
            return False
        events = self._events
        for index in range(self._batch, len(events)):
            if type(events[index]) is MessageReceived:
                break
        else:
            return False
        self._held_end = end
        conn = self._conn
        if type(end) is CloseConnection and conn is not None:
            # wsproto moved to REMOTE_CLOSING on parsing the close frame; sending stays allowed
            # until settle(), which puts the state back.
            self._held_remote = conn.state is ConnectionState.REMOTE_CLOSING
            if self._held_remote:
                conn._state = ConnectionState.OPEN
        return True

    def settle(self, *, discard: bool = False) -> bool:
        """Act now on an end held behind messages (see "Messages before the end" in the module
        docstring): queue its close frame after what was sent since, emit :class:`Closed`.
        ``discard=True`` drops it instead (the layer above is failing the connection itself).
        Return True if an end was held. The other calls do this on their own when needed; a
        caller that wraps this layer calls it to pull the result at once."""
        end = self._held_end
        if end is None:
            return False
        self._held_end = None
        if isinstance(end, CloseConnection):
            conn = self._conn
            assert conn is not None
            if self._held_remote and not discard:
                # Our close frame sent meanwhile (close()) makes it the reply to ours.
                closing = conn.state is ConnectionState.LOCAL_CLOSING
                conn._state = ConnectionState.CLOSED if closing else ConnectionState.REMOTE_CLOSING
            # Discarded: wsproto stays OPEN, as if the close frame had never arrived.
            self._held_remote = False
            if not discard:
                self._on_close_frame(conn, end)
        elif not discard:
            self._on_frame(end)
        return True

    def _send_close(self, code: int, reason: str) -> None:
        conn = self._conn
        if conn is None:
            self._output.append(frame(_FIN_CLOSE, close_payload(code, reason)))
        else:
            # wsproto writes no code only for its own 1005 member (an identity test). (No
            # conditional expression: compiled, its type int would turn the member into an int.)
            sent: CloseReason | int = code
            if code == CloseReason.NO_STATUS_RCVD:
                sent = CloseReason.NO_STATUS_RCVD
            self._output.append(conn.send(CloseConnection(code=sent, reason=reason)))

    def _process_frames(self, conn: Connection) -> None:
        for event in conn.events():
            if isinstance(event, BytesMessage | TextMessage) and self._state is _OPEN \
                    and self._too_many_fragments(event):
                return
            if isinstance(event, BytesMessage):
                if self._state is _OPEN:  # after our close frame, messages are dropped
                    self._on_binary(event.data, event.message_finished)
                    if self._state is not _OPEN or self._held_end is not None:
                        return
            elif isinstance(event, TextMessage):
                if self._state is _OPEN:
                    if not self._config.allow_text:
                        failure = Failure(
                            int(CloseCode.UNSUPPORTED_DATA), "text messages are not supported"
                        )
                        if not self._hold(failure):
                            self._on_frame(failure)
                        return
                    self._on_text(event.data, event.message_finished)
                    if self._state is not _OPEN or self._held_end is not None:
                        return
            elif isinstance(event, Ping):
                if self._state is _OPEN:
                    # After our close frame we send nothing more (RFC 6455 §5.5.1).
                    self._output.append(conn.send(event.response()))
                    self._events.append(PingReceived(payload=bytes(event.payload)))
            elif isinstance(event, Pong):
                if self._state is _OPEN:
                    self._events.append(PongReceived(payload=bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                if not self._hold(event):
                    self._on_close_frame(conn, event)
                return

    def _too_many_fragments(self, event: BytesMessage | TextMessage) -> bool:
        # wsproto's path only (our parser counts frame heads): a frame that ends without
        # ending its message is one more fragment.
        if event.message_finished:
            self._fragments = 0
        elif event.frame_finished:
            self._fragments += 1
            if self._fragments > self._config.max_fragments:
                failure = Failure(int(CloseCode.POLICY_VIOLATION),
                                  f"message in more than {self._config.max_fragments} fragments")
                if not self._hold(failure):
                    self._on_frame(failure)
                return True
        return False

    def _on_binary(self, data: bytes | bytearray, finished: bool) -> None:
        size = self._message_size + len(data)
        if size > self._config.max_message_size:
            self._fail_too_big(size)
            return
        # The pieces of a fragmented message are kept in one buffer (parts holds at most one
        # bytearray), not one object per fragment.
        parts = self._parts
        if finished:
            if parts:
                buffer = parts[0]
                buffer += data
                data = bytes(buffer)
                parts.clear()
            self._message_size = 0
            # The common single-frame message is emitted as wsproto parsed it (bytes): no copy.
            self._events.append(MessageReceived(data=data if type(data) is bytes else bytes(data)))
        else:
            if not parts:
                parts.append(bytearray(data))
            else:
                buffer = parts[0]
                buffer += data
            self._message_size = size

    def _on_text(self, data: str, finished: bool) -> None:
        # wsproto decodes (and validates, RFC 6455 §8.1) incrementally; it may hold back up to
        # 3 bytes of an incomplete character, so the count is exact by the end of the message.
        size = self._message_size + (len(data) if data.isascii() else len(data.encode()))
        if size > self._config.max_message_size:
            self._fail_too_big(size)
            return
        parts = self._text_parts
        if finished:
            if parts:
                parts.append(data)
                data = "".join(parts)
                parts.clear()
            self._message_size = 0
            self._events.append(MessageReceived(data=data))
        else:
            if data:
                parts.append(data)
            self._message_size = size

    def _fail_too_big(self, size: int) -> None:
        # wsproto's path only (our parser reports it as a Failure item).
        limit = self._config.max_message_size
        failure = Failure(int(CloseCode.MESSAGE_TOO_BIG), too_big(limit, size))
        if not self._hold(failure):
            self._on_frame(failure)

    def _on_close_frame(self, conn: Connection, event: CloseConnection) -> None:
        code = int(event.code)
        reason = event.reason or ""
        ws_state = conn.state
        if ws_state is ConnectionState.REMOTE_CLOSING:
            # The peer started closing: echo its code (RFC 6455 §5.5.1, §7.1.5; none for 1005).
            # A server then closes TCP first (§7.1.1). A client should wait for the server's FIN,
            # but nothing is lost by closing now and the layer above holds no timer for it.
            self._output.append(conn.send(event.response()))
            self._finish(Closed(code=code, reason=reason, initiated_locally=False, clean=True))
        elif ws_state is ConnectionState.CLOSED:
            self._finish(Closed(code=code, reason=reason, initiated_locally=True, clean=True))
        else:
            # wsproto reports a parse failure as a CloseConnection without changing its state.
            self._fail(_FAILURE_CODES.get(code, CloseCode.PROTOCOL_ERROR), reason)

    def _fail(self, code: CloseCode, message: str) -> None:
        """Fail the WebSocket connection (RFC 6455 §7.1.7): send a close frame if we have not sent
        one yet, and close the transport without waiting for the peer's reply, which a peer that
        just violated the protocol may never send."""
        cause = RemoteProtocolError(message, code=code)
        reason = cause.reason
        if self._state is _OPEN:
            self._send_close(int(code), reason)
        self._finish(
            Closed(code=int(code), reason=reason, initiated_locally=True, clean=False, cause=cause)
        )

    def _end_of_stream(self) -> None:
        self._finish(
            Closed(
                code=int(CloseCode.ABNORMAL_CLOSURE),
                reason="",
                initiated_locally=False,
                clean=False,
            )
        )

    def _finish(self, event: Closed) -> None:
        self._state = _CLOSED
        self._release()
        self._events.append(event)

    def _release(self) -> None:
        self._conn = None
        self._parser = None
        self._handshake = None
        self._head = None
        self._pending = None
        self._body = None
        self._request = None
        self._parts.clear()
        self._text_parts.clear()

    # -- server handshake --------------------------------------------------------------------------

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
        assert self._handshake is not None
        if self._config.serve_http and not _asks_upgrade(head):
            self._on_http(head)
            return
        try:
            self._handshake.receive_data(head)
            events = list(self._handshake.events())
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
        self._events.append(
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
        self._events.append(HttpRequest(
            method=method, path=event.target.decode("ascii", "replace"),
            headers=tuple((n.decode("latin-1").lower(), v.decode("latin-1"))
                          for n, v in event.headers)))

    def respond(self, response: HttpResponse) -> None:
        """Server: answer the pending :class:`HttpRequest`; the connection then closes (state
        REJECTED: it never became a WebSocket)."""
        if self._http_method is None or self._state is not _HANDSHAKE:
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
        self._state = _REJECTED
        self._release()

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
        self._output.append("".join(lines).encode("latin-1") + (b"" if head_only else body))

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
        self._state = _REJECTED
        self._release()
        self._events.append(
            HandshakeFailed(
                status=status,
                reason=reason,
                headers=tuple((name.lower(), value) for name, value in sent),
                body=body,
            )
        )

    def _require_request(self, command: str) -> Request:
        if self._role is not Role.SERVER:
            msg = f"{command}() is for servers"
            raise LocalProtocolError(msg)
        if self._state is not _HANDSHAKE or self._request is None:
            msg = f"{command}() needs a pending HandshakeRequest (state {self._state.name})"
            raise LocalProtocolError(msg)
        return self._request

    def accept(
        self, *, subprotocol: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Server: accept the pending :class:`HandshakeRequest` (101); the state becomes OPEN.

        ``subprotocol`` defaults to the first of ``config.subprotocols`` the client offered (None
        in plain mode); an explicit one must have been offered and, unless plain, be ours."""
        self._require_request("accept")
        ours = self._config.subprotocols
        if subprotocol is None:
            subprotocol = next((p for p in ours if p in self._offered), None)
        elif subprotocol not in self._offered or (ours and subprotocol not in ours):
            msg = f"subprotocol {subprotocol!r} was not offered or is not one of ours"
            raise LocalProtocolError(msg)
        headers = _encode_headers(extra_headers)
        handshake = self._handshake
        assert handshake is not None
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
        self._output.append(data)
        pending = self._pending
        self._open(handshake, subprotocol, extension)
        if pending:
            self.receive_data(pending)

    def _open(
        self, handshake: H11Handshake, subprotocol: str | None, extension: PerMessageDeflate | None
    ) -> None:
        self._conn = handshake.connection
        assert self._conn is not None
        self._handshake = None
        self._request = None
        self._pending = None
        self._subprotocol = subprotocol
        compressed = extension is not None and extension.enabled()
        self._extension = extension if compressed else None
        server = self._role is Role.SERVER
        self._fast_send = server and not compressed
        if not compressed and not self._wsproto_frames:
            # Our own frame parser; wsproto's frame layer only writes a client's (masked) frames.
            self._parser = FrameParser(
                client=not server,
                max_message_size=self._config.max_message_size,
                max_fragments=self._config.max_fragments,
                allow_text=self._config.allow_text,
            )
            if server:
                self._conn = None  # every server frame is written here
        self._state = _OPEN

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
        self._require_request("reject")
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

    # -- client handshake --------------------------------------------------------------------------

    def _receive_response(self, data: bytes | bytearray | memoryview | None) -> None:
        handshake = self._handshake
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
                if self._state is not _REJECTED and rest:
                    self._receive_rejection_body(handshake, rest)
                return

    def _on_accepted(self, handshake: H11Handshake, event: AcceptConnection, rest: bytes) -> None:
        subprotocol = event.subprotocol
        if self._config.subprotocols and subprotocol is None:
            offered = ", ".join(self._config.subprotocols)
            self._fail_handshake(f"the server selected no subprotocol (offered: {offered})")
            return
        self._open(handshake, subprotocol, self._extension)
        self._events.append(
            HandshakeAccepted(subprotocol=subprotocol, headers=_decode_headers(event.extra_headers))
        )
        if rest:
            self.receive_data(rest)

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
        self._state = _REJECTED
        self._release()
        self._events.append(
            HandshakeFailed(status=status, reason=phrase, headers=headers, body=body)
        )

    def _fail_handshake(self, message: str, code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        # No close frame: the connection was never established (RFC 6455 §4.1, §7.1.7).
        cause = RemoteProtocolError(message, code=code)
        self._finish(
            Closed(
                code=int(CloseCode.ABNORMAL_CLOSURE),
                reason=cause.reason,
                initiated_locally=True,
                clean=False,
                cause=cause,
            )
        )

    # -- commands ----------------------------------------------------------------------------------

    def send_message(self, data: bytes | bytearray | memoryview | str) -> None:
        """Send one message: binary for bytes-like data, text for ``str`` (only if
        ``allow_text``). Raises :class:`LocalProtocolError` unless OPEN or if the message is
        larger than ``max_message_size``."""
        if self._state is not _OPEN:
            msg = f"cannot send a message in state {self._state.name}"
            raise LocalProtocolError(msg)
        if isinstance(data, str):
            if not self._config.allow_text:
                msg = "text messages are not allowed (WebSocketConfig.allow_text is False)"
                raise LocalProtocolError(msg)
            try:
                payload: bytes | bytearray | memoryview = data.encode()
            except UnicodeEncodeError as exc:
                msg = f"text is not encodable as UTF-8: {exc}"
                raise LocalProtocolError(msg) from exc
            opcode = _FIN_TEXT
        elif isinstance(data, (bytes, bytearray)):
            payload = data
            opcode = _FIN_BINARY
        elif isinstance(data, memoryview):
            payload = data if data.format == "B" and data.c_contiguous else data.tobytes()
            opcode = _FIN_BINARY
        else:
            msg = f"a message is bytes-like or str, not {type(data).__name__}"
            raise LocalProtocolError(msg)
        size = len(payload)
        if size > self._config.max_message_size:
            msg = f"message of {size} bytes is larger than max_message_size"
            raise LocalProtocolError(msg)
        if self._fast_send:
            # Server frames are not masked (RFC 6455 §5.1) and without compression their RSV bits
            # are 0: one header, one concatenation, nothing for wsproto to do. (_framer.frame(),
            # written out: this is the hot path.)
            if size < 126:
                header = bytes((opcode, size))
            elif size < 65536:
                header = _pack_header_16(opcode, 126, size)
            else:
                header = _pack_header_64(opcode, 127, size)
            self._output.append(header + payload)
            return
        conn = self._conn
        assert conn is not None
        if opcode == _FIN_TEXT:
            self._output.append(conn.send(TextMessage(data=data)))  # type: ignore[arg-type]
        else:
            self._output.append(conn.send(BytesMessage(data=payload)))  # type: ignore[arg-type]

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping (at most 125 bytes of payload). Only when OPEN."""
        if self._state is not _OPEN:
            msg = f"cannot send a ping in state {self._state.name}"
            raise LocalProtocolError(msg)
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            msg = f"ping payload must be bytes-like, not {type(payload).__name__}"
            raise LocalProtocolError(msg)
        payload = bytes(payload)
        if len(payload) > 125:  # RFC 6455 §5.5
            msg = f"ping payload of {len(payload)} bytes is larger than 125"
            raise LocalProtocolError(msg)
        if self._conn is None:
            self._output.append(frame(_FIN_PING, payload))
        else:
            self._output.append(self._conn.send(Ping(payload=payload)))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake: queue a close frame; the state becomes LOCAL_CLOSING.

        Messages arriving afterwards are dropped; the peer's close frame ends the WebSocket with
        a clean :class:`Closed`. Does nothing once closing or over. ``code`` must be sendable
        (1000-1003, 1007-1013, 3000-4999); ``reason`` at most 123 UTF-8 bytes (RFC 6455 §5.5.1)."""
        _check_close_code(code)
        if not isinstance(reason, str):
            msg = f"reason must be str, not {type(reason).__name__}"
            raise LocalProtocolError(msg)
        try:
            encoded = reason.encode()
        except UnicodeEncodeError as exc:
            msg = f"reason is not encodable as UTF-8: {exc}"
            raise LocalProtocolError(msg) from exc
        if len(encoded) > 123:
            msg = f"close reason of {len(encoded)} UTF-8 bytes is longer than 123"
            raise LocalProtocolError(msg)
        state = self._state
        if state is _HANDSHAKE:
            msg = "the opening handshake is not complete: use reject() or abort()"
            raise LocalProtocolError(msg)
        if state is not _OPEN:
            return
        self._send_close(code, reason)
        self._state = _LOCAL_CLOSING
        if self._parser is not None:
            self._parser.drop_messages()
        self._parts.clear()
        self._text_parts.clear()
        self._message_size = 0
        if self._held_end is not None:
            self.settle()  # as if it had arrived in a later read, after our close frame

    def expire_handshake(self, reason: str) -> None:
        """The layer above's handshake timeout passed before the handshake ended.

        A server holding part of an HTTP request answers 408 Request Timeout (RFC 9110
        §15.5.9) with ``reason`` as its body and ends REJECTED (:class:`HandshakeFailed`). Else,
        as :meth:`abort`: a socket that never sent a byte (a browser's speculative
        preconnect, say) is dropped without a word, as are a request the application has not
        answered yet and a client's handshake."""
        if self._role is Role.SERVER and self._state is _HANDSHAKE and self._head:
            self._auto_reject(408, reason)
        else:
            self.abort(1006, reason)

    def abort(self, code: int = 1006, reason: str = "") -> None:
        """Give up at once (e.g. the closing handshake timed out): nothing more is sent, the
        transport should close, and :class:`Closed` (unclean, with ``code`` and ``reason``) is
        emitted unless the WebSocket was already over."""
        if type(code) is not int or not 1000 <= code <= 4999:
            msg = f"abort() code must be an int in 1000..4999, not {code!r}"
            raise LocalProtocolError(msg)
        self.settle(discard=True)  # a held end is dropped: nothing more is sent
        if self._state is _CLOSED or self._state is _REJECTED:
            return
        self._finish(Closed(code=code, reason=reason, initiated_locally=True, clean=False))


# -- helpers ---------------------------------------------------------------------------------------


def _check_close_code(code: int) -> None:
    if not isinstance(code, int) or isinstance(code, bool):
        msg = f"close code must be an int, not {type(code).__name__}"
        raise LocalProtocolError(msg)
    if code not in _SENDABLE_CLOSE_CODES:
        msg = f"close code {code} may not be sent (RFC 6455 §7.4)"
        raise LocalProtocolError(msg)


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
