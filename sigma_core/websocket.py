"""The WebSocket layer: RFC 6455 opening handshake and framing, both roles, sans-IO.

A :class:`WebSocket` is fed bytes with :meth:`~WebSocket.receive_data` (``None`` for end of stream)
and commands (:meth:`~WebSocket.accept`, :meth:`~WebSocket.send_message`,
:meth:`~WebSocket.close`, ...). It answers with events (:meth:`~WebSocket.events_received`),
bytes to write (:meth:`~WebSocket.data_to_send`) and :attr:`~WebSocket.transport_should_close`.
It never does I/O, never reads a clock and keeps no timers: the layer above owns the handshake and
closing timeouts and calls :meth:`~WebSocket.abort` when they expire.

Theory of operation
-------------------
The layer is three modules, the way wsproto's ``WSConnection`` wraps a handshake object and a
frame protocol object: :mod:`sigma_core._wsevents` (roles, states, the configuration and the
events, all re-exported here), :mod:`sigma_core._handshake` (the opening handshake, both roles:
the bounded HTTP head, plain HTTP answers, subprotocol and extension negotiation, on wsproto's
``H11Handshake``) and this module, the :class:`WebSocket` itself: it owns a
:class:`~sigma_core._handshake.Handshake` until the handshake ends, then runs the open
connection's state machine below. After the handshake, frames are parsed by
our own :class:`~sigma_core._framer.FrameParser` (wsproto's pure-Python frame layer was most of
the receive cost), unless permessage-deflate was negotiated: then wsproto's ``Connection`` does
all the framing. A client still sends through wsproto's ``Connection``, which draws each frame's
mask (RFC 6455 §5.3) from ``os.urandom``: the core draws no entropy of its own. Both frame paths
behave identically, byte for byte (``tests/test_framer.py`` compares them). Nothing outside this
module and ``_framer`` knows about wsproto or frames. Around them this module adds what a
conforming, bounded endpoint needs:

* (in :mod:`~sigma_core._handshake`) the HTTP head is buffered first, so it is bounded
  (``max_handshake_size``, answered with 431) and obvious garbage (a TLS hello on a plain port)
  is answered at once with 400; subprotocol policy: a request offering none of ours never
  reaches the application;
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

On wsproto's frame path (permessage-deflate, and the reference path the differential tests
use), holding an end means writing wsproto's private ``Connection._state`` (back to OPEN while
the end is held, then to what parsing the close frame would have made it): that is the one
write to wsproto's private state, in :meth:`WebSocket._hold` and :meth:`WebSocket.settle`.
wsproto 1.x has no public way to defer acting on a parsed close frame.

REMOTE_CLOSING (the peer's close frame arrived, ours is not yet sent) is never observed between
calls here, because the reply is queued as soon as the peer's close frame is parsed; it is part of
the state vocabulary for a framer that would let the application answer later.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from sigma_core._framer import (
    CloseFrame,
    Failure,
    FrameParser,
    PingFrame,
    PongFrame,
    ReadMessages,
    Received,
    close_payload,
    frame,
    too_big,
)
from sigma_core._handshake import Handshake
from sigma_core._wsevents import (
    Closed,
    HandshakeAccepted,
    HandshakeFailed,
    HandshakeRequest,
    HttpRequest,
    HttpResponse,
    MessageReceived,
    PingReceived,
    PongReceived,
    Role,
    WebSocketConfig,
    WebSocketEvent,
    WebSocketState,
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

# -- the WebSocket ---------------------------------------------------------------------------------

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
_pack_header_16: Final = struct.Struct("!BBH").pack
_pack_header_64: Final = struct.Struct("!BBQ").pack

# The hot path's way to build MessageReceived: the bare object, then its slot (see receive_data).
# (MessageReceived.__new__ is object.__new__ in Python; compiled by mypyc, the class's own.)
# (Final, these and the states: compiled, each is a C static, not a module-dict lookup per use;
# ``transport_should_close``, asked once per read, was two.)
_new_event: Final = MessageReceived.__new__
_set_message_data: Final = vars(MessageReceived)["data"].__set__

_OPEN: Final = WebSocketState.OPEN
_LOCAL_CLOSING: Final = WebSocketState.LOCAL_CLOSING
_HANDSHAKE: Final = WebSocketState.HANDSHAKE
_CLOSED: Final = WebSocketState.CLOSED
_REJECTED: Final = WebSocketState.REJECTED


class WebSocket:
    """One WebSocket connection, either role, sans-IO.

    Servers: ``WebSocket(Role.SERVER, config)``, then feed bytes; answer :class:`HandshakeRequest`
    with :meth:`accept` or :meth:`reject`. Clients: :meth:`WebSocket.client`, which queues the
    upgrade request. After every call, drain :meth:`data_to_send` to the transport, handle
    :meth:`events_received`, and close the transport once :attr:`transport_should_close`.
    """

    __slots__ = (
        "_batch",
        "_config",
        "_conn",
        "_events",
        "_extension",
        "_fast_send",
        "_fragments",
        "_handshake",
        "_held_end",
        "_held_remote",
        "_message_size",
        "_output",
        "_parser",
        "_parts",
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
        self._handshake: Handshake | None = Handshake(role, self._config)
        self._conn: Connection | None = None
        self._parser: FrameParser | None = None
        self._held_end: CloseFrame | Failure | CloseConnection | None = None
        self._held_remote = False
        self._batch = 0
        # The queues and fragment buffers are None while empty: an idle connection keeps
        # none of them (a list is 56 bytes; a server holds thousands of idle connections).
        self._events: list[WebSocketEvent | ReadMessages] | None = None
        self._output: list[bytes] | None = None
        self._subprotocol: str | None = None
        self._extension: PerMessageDeflate | None = None
        self._fast_send = False
        self._parts: list[bytes | bytearray] | None = None
        self._text_parts: list[str] | None = None
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
        # (Not cls.__new__ + _setup: mypyc's native classes have no callable __new__.)
        self = cls(Role.CLIENT, config, _use_wsproto_frames=_use_wsproto_frames, _client=True)
        handshake = self._handshake
        assert handshake is not None
        handshake.send_request(host=host, path=path, extra_headers=extra_headers)
        self._after_handshake(handshake)
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
        in the module docstring), so ``while events := ws.events_received(): ...`` sees it.
        A binary message comes as :class:`MessageReceived`, or, once :meth:`read_binary_with`
        is in effect (the server connection's own use, never the default), a run of them as
        the list of what the reader read from them."""
        events = self._events
        if not events:
            if self._held_end is None:
                self._events = None
                return []
            self.settle()
            events = self._events
        self._events = None
        # (The reader's tuples are typed apart inside the layer; see the docstring.)
        return cast(list[WebSocketEvent], events) if events is not None else []

    def data_to_send(self, *, settle: bool = True) -> list[bytes]:
        """Return and forget the bytes to write to the transport, in order (maybe ``[]``).

        Acts on a held end first: its close frame comes after what was sent before this call.
        (``settle=False`` leaves it held: for a layer above that calls :meth:`settle` itself.)"""
        if settle and self._held_end is not None:
            self.settle()
        output = self._output
        if output is None:
            return []
        self._output = None
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
                if events is None:
                    events = self._events = []
                self._batch = len(events)
                if parser is not None:
                    for item in parser.receive(data if type(data) is bytes else bytes(data)):
                        if type(item) is list:
                            # What the parser's reader read from a run of binary messages (see
                            # read_binary_with): handed on as it is.
                            # (cast to Any: no checked conversion, the object goes on as it is)
                            events.append(cast(Any, item))
                        elif type(item) is bytes:
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
            handshake = self._handshake
            assert handshake is not None
            handshake.receive_data(data)
            self._after_handshake(handshake)

    def read_binary_with(self, reader: Callable[[bytes, int, int, list[Any]], int]) -> bool:
        """From now on, read whole, unfragmented binary messages with ``reader`` in the frame
        parser's pass (the server's ``codec.read_client_frames``, see connection.py and
        :attr:`FrameParser.reader`): a run of messages it reads comes out of
        :meth:`events_received` as the one list of what it read from them, in order, in place
        of a :class:`MessageReceived` each; a message it does not read comes as before.
        Returns False (and changes nothing) when there is no frame parser: not open yet, or
        an extension negotiated (wsproto parses)."""
        parser = self._parser
        if parser is None:
            return False
        parser.reader = reader
        return True

    # -- frames ------------------------------------------------------------------------------------

    def _on_frame(self, item: Received) -> None:
        # What our parser returns besides binary messages (see receive_data): text messages,
        # control frames, and the end (always last). After our own close frame only the end
        # comes (the parser drops the rest).
        if isinstance(item, (bytes, str)):
            self._emit(MessageReceived(data=item))
        elif isinstance(item, PingFrame):
            if self._conn is None:
                self._write(frame(_FIN_PONG, item.payload))
            else:
                self._write(self._conn.send(Pong(payload=item.payload)))
            self._emit(PingReceived(payload=item.payload))
        elif isinstance(item, PongFrame):
            self._emit(PongReceived(payload=item.payload))
        elif isinstance(item, CloseFrame):
            code, reason = item
            if self._state is _OPEN:
                # The peer started closing: echo its code (RFC 6455 §5.5.1, §7.1.5; none for
                # 1005), then end at once, as on wsproto's path (see _on_close_frame).
                self._send_close(code, reason)
                self._finish(Closed(code=code, reason=reason, initiated_locally=False, clean=True))
            else:
                self._finish(Closed(code=code, reason=reason, initiated_locally=True, clean=True))
        elif isinstance(item, Failure):
            self._fail(CloseCode(item.code), item.message)
        # (What a reader read never comes here: receive_data hands it on first.)

    def _hold(self, end: CloseFrame | Failure | CloseConnection) -> bool:
        """Hold ``end`` (a close frame or a failure) if this receive_data() call emitted a
        message before it, so the layer above can answer the messages first."""
        if self._state is not _OPEN:
            return False
        events = self._events or ()
        for index in range(self._batch, len(events)):
            kind = type(events[index])
            if kind is MessageReceived or kind is list:
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
            self._write(frame(_FIN_CLOSE, close_payload(code, reason)))
        else:
            # wsproto writes no code only for its own 1005 member (an identity test). (No
            # conditional expression: compiled, its type int would turn the member into an int.)
            sent: CloseReason | int = code
            if code == CloseReason.NO_STATUS_RCVD:
                sent = CloseReason.NO_STATUS_RCVD
            self._write(conn.send(CloseConnection(code=sent, reason=reason)))

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
                    self._write(conn.send(event.response()))
                    self._emit(PingReceived(payload=bytes(event.payload)))
            elif isinstance(event, Pong):
                if self._state is _OPEN:
                    self._emit(PongReceived(payload=bytes(event.payload)))
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
                self._parts = None
            self._message_size = 0
            # The common single-frame message is emitted as wsproto parsed it (bytes): no copy.
            self._emit(MessageReceived(data=data if type(data) is bytes else bytes(data)))
        else:
            if not parts:
                self._parts = [bytearray(data)]
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
                self._text_parts = None
            self._message_size = 0
            self._emit(MessageReceived(data=data))
        else:
            if data:
                if parts is None:
                    self._text_parts = [data]
                else:
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
            self._write(conn.send(event.response()))
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

    def _emit(self, event: WebSocketEvent) -> None:
        events = self._events
        if events is None:
            self._events = [event]
        else:
            events.append(event)

    def _write(self, data: bytes) -> None:
        output = self._output
        if output is None:
            self._output = [data]
        else:
            output.append(data)

    def _finish(self, event: Closed) -> None:
        self._state = _CLOSED
        self._release()
        self._emit(event)

    def _release(self) -> None:
        self._conn = None
        self._parser = None
        self._handshake = None
        self._parts = None
        self._text_parts = None

    # -- the opening handshake (sigma_core._handshake) --------------------------------------------

    def _after_handshake(self, handshake: Handshake) -> None:
        """Take what the handshake produced; act on its end (see :class:`Handshake`)."""
        if handshake.output:
            for chunk in handshake.output:
                self._write(chunk)
            handshake.output.clear()
        if handshake.events:
            for event in handshake.events:
                self._emit(event)
            handshake.events.clear()
        outcome = handshake.outcome
        if outcome is None:
            return
        if outcome is _OPEN:
            self._open(handshake)
            if handshake.rest:
                self.receive_data(handshake.rest)
        elif outcome is _REJECTED:
            self._state = _REJECTED
            self._release()
        else:
            closed = handshake.closed
            assert closed is not None
            self._finish(closed)

    def _open(self, handshake: Handshake) -> None:
        self._conn = handshake.connection
        assert self._conn is not None
        self._handshake = None
        self._subprotocol = handshake.subprotocol
        extension = handshake.extension
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

    def _pending_request(self, command: str) -> Handshake:
        if self._role is not Role.SERVER:
            msg = f"{command}() is for servers"
            raise LocalProtocolError(msg)
        handshake = self._handshake
        if self._state is not _HANDSHAKE or handshake is None or not handshake.has_request():
            msg = f"{command}() needs a pending HandshakeRequest (state {self._state.name})"
            raise LocalProtocolError(msg)
        return handshake

    def accept(
        self, *, subprotocol: str | None = None, extra_headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Server: accept the pending :class:`HandshakeRequest` (101); the state becomes OPEN.

        ``subprotocol`` defaults to the first of ``config.subprotocols`` the client offered (None
        in plain mode); an explicit one must have been offered and, unless plain, be ours."""
        handshake = self._pending_request("accept")
        handshake.accept(subprotocol=subprotocol, extra_headers=extra_headers)
        self._after_handshake(handshake)

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
        handshake = self._pending_request("reject")
        handshake.reject(status, reason, headers=headers, body=body)
        self._after_handshake(handshake)

    def respond(self, response: HttpResponse) -> None:
        """Server: answer the pending :class:`HttpRequest`; the connection then closes (state
        REJECTED: it never became a WebSocket)."""
        handshake = self._handshake
        if handshake is None or self._state is not _HANDSHAKE or not handshake.has_http_request():
            raise LocalProtocolError("respond() needs a pending HttpRequest")
        handshake.respond(response)
        self._after_handshake(handshake)

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
            self._write(header + payload)
            return
        conn = self._conn
        assert conn is not None
        if opcode == _FIN_TEXT:
            self._write(conn.send(TextMessage(data=data)))  # type: ignore[arg-type]
        else:
            self._write(conn.send(BytesMessage(data=payload)))  # type: ignore[arg-type]

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
            self._write(frame(_FIN_PING, payload))
        else:
            self._write(self._conn.send(Ping(payload=payload)))

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
        self._parts = None
        self._text_parts = None
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
        handshake = self._handshake
        if self._state is _HANDSHAKE and handshake is not None and handshake.expire(reason):
            self._after_handshake(handshake)
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
