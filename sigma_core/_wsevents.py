"""The WebSocket layer's vocabulary: roles, states, the configuration and the events.

Shared by :mod:`sigma_core._handshake` (the opening handshake) and :mod:`sigma_core.websocket`
(the open connection), and public through :mod:`sigma_core.websocket`, which re-exports all of it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from sigma_core.errors import RemoteProtocolError

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
