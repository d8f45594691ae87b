"""Message mode: a WebSocket whose handshake and framing are done by someone else, sans-IO.

An ASGI server (uvicorn, hypercorn, granian) parses the HTTP upgrade, answers it when told to,
and hands over *whole* WebSocket messages; it frames what we send and runs the closing
handshake itself. :class:`MessageSocket` takes the place of :class:`~sigma_core.websocket.WebSocket`
below a :class:`~sigma_core.connection.ServerConnection` for such a server: same states, same
events, same commands, but

* it starts from the request the server already parsed (path, headers, offered subprotocols):
  :class:`~sigma_core.websocket.HandshakeRequest` is emitted at once, or, when none of our
  subprotocols was offered, the request is refused (400) as the framed WebSocket would;
* :meth:`receive_message` takes one whole message (``bytes`` or ``str``); a text message is
  answered with close code 1003 unless ``allow_text``, a message over ``max_message_size`` with
  1009 -- the limits the framed path applies;
* :meth:`~sigma_core.websocket.WebSocket.data_to_send` returns the *payloads* to send, one
  ``bytes`` per message, the very objects the connection queued (a broadcast's envelope is the
  same object for every recipient: no copy, no frame header);
* closing is a decision, not a frame: :attr:`close_code` / :attr:`close_reason` say what to put
  in the server's close message, and the socket is CLOSED at once (the server completes the
  closing handshake). A refused handshake leaves :attr:`rejection` set (status, reason).

Its only input besides commands is :meth:`receive_message` and ``receive_data(None)`` (the
server reported the disconnect). It never reads a clock: the connection above owns the timers.
"""

from __future__ import annotations

from collections.abc import Sequence

from sigma_core.errors import CloseCode, LocalProtocolError
from sigma_core.websocket import (
    Closed,
    HandshakeFailed,
    HandshakeRequest,
    MessageReceived,
    Role,
    WebSocket,
    WebSocketConfig,
    WebSocketState,
)

__all__ = ["MessageSocket"]

# (As in websocket.py: the hot path builds MessageReceived as a bare object, then its slot.)
_new_event = MessageReceived.__new__
_set_message_data = vars(MessageReceived)["data"].__set__

_OPEN = WebSocketState.OPEN
_HANDSHAKE = WebSocketState.HANDSHAKE
_REJECTED = WebSocketState.REJECTED


class MessageSocket(WebSocket):
    """The server end of a WebSocket whose frames someone else parses (see the module
    docstring). Build it with the request the server parsed; hand it to
    ``ServerConnection(config, now=..., transport=socket)``."""

    __slots__ = ("_close_code", "_close_reason", "_offered", "_rejection")

    def __init__(self, request: HandshakeRequest, config: WebSocketConfig | None = None) -> None:
        super().__init__(Role.SERVER, config)
        self._close_code = int(CloseCode.NORMAL_CLOSURE)
        self._close_reason = ""
        self._rejection: tuple[int, str] | None = None
        # Nothing of the HTTP machinery is used: the server parsed the request.
        self._handshake = None
        ours = self._config.subprotocols
        self._offered = request.subprotocols
        if ours and not any(p in request.subprotocols for p in ours):
            # As the framed WebSocket: a request offering none of ours never reaches the app.
            offered = ", ".join(request.subprotocols) or "none"
            self._refuse(400, f"no supported subprotocol offered (offered: {offered}; "
                              f"supported: {', '.join(ours)})")
            return
        self._emit(request)

    # -- what the server is told -------------------------------------------------------------

    @property
    def close_code(self) -> int:
        """The close code to send (meaningful once CLOSED after an accept)."""
        return self._close_code

    @property
    def close_reason(self) -> str:
        return self._close_reason

    @property
    def rejection(self) -> tuple[int, str] | None:
        """(HTTP status, reason) when the handshake was refused, else None."""
        return self._rejection

    # -- input -------------------------------------------------------------------------------

    def receive_message(self, data: bytes | str) -> None:
        """One whole message from the server. Ignored unless OPEN (after our close the server
        still delivers what was in flight: dropped, as the framed path drops it)."""
        if self._state is not _OPEN:
            return
        if type(data) is bytes:
            if len(data) > self._config.max_message_size:
                self._fail(CloseCode.MESSAGE_TOO_BIG,
                           f"message of {len(data)} bytes exceeds max_message_size "
                           f"{self._config.max_message_size}")
                return
            event = _new_event(MessageReceived)
            _set_message_data(event, data)
            self._emit(event)
        elif isinstance(data, str):
            if not self._config.allow_text:
                self._fail(CloseCode.UNSUPPORTED_DATA, "text messages are not accepted")
                return
            if len(data.encode()) > self._config.max_message_size:
                self._fail(CloseCode.MESSAGE_TOO_BIG,
                           f"text message exceeds max_message_size "
                           f"{self._config.max_message_size}")
                return
            self._emit(MessageReceived(data=data))
        else:
            raise LocalProtocolError(f"a message is bytes or str, not {type(data).__name__}")

    def receive_close(self, code: int, reason: str) -> None:
        """The peer closed (the server ran the closing handshake and reports its code): a clean
        end. After our own close it changes nothing."""
        if self._state is _OPEN:
            self._finish(Closed(code=code, reason=reason, initiated_locally=False, clean=True))
        elif self._state is _HANDSHAKE:
            self.abort(int(CloseCode.ABNORMAL_CLOSURE), reason)

    def receive_data(self, data: bytes | bytearray | memoryview | None) -> None:
        """Only ``None`` (the server reported the disconnect): messages come whole through
        :meth:`receive_message`."""
        if data is not None:
            raise LocalProtocolError("a MessageSocket takes whole messages: receive_message()")
        if self._state is _HANDSHAKE:
            self.abort(int(CloseCode.ABNORMAL_CLOSURE), "")
        else:
            super().receive_data(None)

    # -- commands ----------------------------------------------------------------------------

    def accept(self, *, subprotocol: str | None = None,
               extra_headers: Sequence[tuple[str, str]] = ()) -> None:
        """Accept the request (the adapter then tells the server, with :attr:`subprotocol`).
        ``extra_headers`` are not supported here: the ASGI server writes the response."""
        if self._state is not _HANDSHAKE or self._rejection is not None:
            raise LocalProtocolError(f"accept() in state {self._state.name}")
        ours = self._config.subprotocols
        if subprotocol is None:
            subprotocol = next((p for p in ours if p in self._offered), None)
        elif subprotocol not in self._offered or (ours and subprotocol not in ours):
            raise LocalProtocolError(
                f"subprotocol {subprotocol!r} was not offered or is not one of ours")
        self._subprotocol = subprotocol
        self._state = _OPEN

    def reject(self, status: int, reason: str, *, headers: Sequence[tuple[str, str]] = (),
               body: bytes | None = None) -> None:
        """Refuse the request with an HTTP status (400-599)."""
        if self._state is not _HANDSHAKE:
            raise LocalProtocolError(f"reject() in state {self._state.name}")
        if type(status) is not int or not 400 <= status <= 599:
            raise LocalProtocolError(f"reject() status must be an int in 400..599, "
                                     f"not {status!r}")
        self._refuse(status, reason)

    def send_message(self, data: bytes | bytearray | memoryview | str) -> None:
        """Queue one binary message as is (``data_to_send`` returns this very object)."""
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send a message in state {self._state.name}")
        if isinstance(data, str):
            raise LocalProtocolError("a MessageSocket sends binary messages only")
        if len(data) > self._config.max_message_size:
            raise LocalProtocolError(f"message of {len(data)} bytes is larger than "
                                     "max_message_size")
        self._write(data if type(data) is bytes else bytes(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Decide to close with ``code``/``reason``; CLOSED at once (the ASGI server runs the
        closing handshake after the adapter sends its close message)."""
        if self._state is _OPEN:
            super().close(code, reason)  # validates, records the code (_send_close)
            self._finish(Closed(code=code, reason=reason, initiated_locally=True, clean=True))
        else:
            super().close(code, reason)

    def send_ping(self, payload: bytes = b"") -> None:
        raise LocalProtocolError("WebSocket pings are the ASGI server's (app-level Ping is used)")

    def expire_handshake(self, reason: str) -> None:
        self.abort(int(CloseCode.ABNORMAL_CLOSURE), reason)

    # -- internals ---------------------------------------------------------------------------

    def _send_close(self, code: int, reason: str) -> None:
        # No frame: the adapter puts these in the ASGI close message.
        self._close_code = code
        self._close_reason = reason

    def _refuse(self, status: int, reason: str) -> None:
        self._rejection = (status, reason)
        self._state = _REJECTED
        self._emit(HandshakeFailed(status=status, reason=reason, headers=(),
                                            body=reason.encode()))
