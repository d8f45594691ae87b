"""Every error and code SigmaSockets defines, in one place.

Two kinds of exception:

* :class:`LocalProtocolError` — *you* (the caller of the core) misused the API: sent before the
  connection was open, passed an oversized payload, answered a handshake twice. Raised by commands,
  never by the receive path. The connection state is unchanged when it is raised.
* :class:`RemoteProtocolError` — *the peer* misbehaved. Carries the close code to send. Once a
  connection is open the receive path never raises it: the connection queues the close frame,
  records the error as ``closed.cause`` and emits a closed event; the adapter only flushes.
  It is raised only where there is nobody to tell otherwise (e.g. a client's own handshake).

:class:`DecodeError` (a ``RemoteProtocolError``) is the one exception the codec raises for a buffer
that is not a valid envelope: foreign, truncated, out-of-range offsets, unknown union member.

Codes: :class:`CloseCode` are WebSocket close codes (RFC 6455 §7.4.1 plus SigmaSockets' own in
the 4000-4999 private range); :class:`ErrorCode` travels in ``Error`` envelopes and ``Goodbye``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "CloseCode",
    "ConnectionFailed",
    "DecodeError",
    "ErrorCode",
    "LocalProtocolError",
    "PayloadDecodeError",
    "RecoveryFailedError",
    "RemoteProtocolError",
    "ServerError",
    "SessionLostError",
    "SigmaError",
    "TokenRefreshError",
    "UnknownMessageType",
]


class CloseCode(IntEnum):
    """WebSocket close codes sent or understood by SigmaSockets."""

    #: RFC 6455 §7.4.1
    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: Never sent: reported when a close frame carried no code.
    NO_STATUS_RCVD = 1005
    #: Never sent: reported when the connection dropped without a close frame.
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    #: 1008, 1010-1012: understood when received; not sent by this version.
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013

    #: SigmaSockets (private use range, RFC 6455 §7.4.2)
    #: The binary message was not a valid envelope.
    BAD_ENVELOPE = 4000
    #: A valid envelope that is not allowed in the current state (e.g. Data before Hello).
    UNEXPECTED_MESSAGE = 4001
    #: The client did not send Hello (or the server Welcome) in time.
    HELLO_TIMEOUT = 4002
    #: Nothing was received for longer than the heartbeat timeout: the peer is presumed dead.
    HEARTBEAT_TIMEOUT = 4003
    #: The Hello asked for a protocol version this server does not speak.
    UNSUPPORTED_VERSION = 4004
    #: The authentication hook refused the client.
    AUTH_FAILED = 4005
    #: Another connection resumed this session; this one is closed.
    SESSION_TAKEN_OVER = 4006
    #: The outgoing buffer passed its high-water mark. The session stays resumable.
    SLOW_CONSUMER = 4007
    #: The client sent faster than its rate limit (Welcome.limits) allows.
    RATE_LIMITED = 4008
    #: The client ran more than ``Limits.max_unacked`` messages ahead of the server's acks.
    LIMIT_EXCEEDED = 4009
    #: The client's credentials expired (``Welcome.credentials_expire_ms``) and it did not
    #: refresh them within the server's grace period. Clients reconnect only with a new token.
    TOKEN_EXPIRED = 4010
    #: The client's payload serializer (``Hello.serializer``) is not the server's.
    SERIALIZER_MISMATCH = 4011


class ErrorCode(IntEnum):
    """Codes carried by ``Error`` and ``Goodbye`` envelopes."""

    #: Generic; see the message.
    UNKNOWN = 0
    #: A Subscribe named an invalid topic (empty, too long, reserved prefix).
    INVALID_TOPIC = 1
    #: The session would exceed its topic limit.
    TOO_MANY_TOPICS = 2
    #: The server refused the subscription (authorisation hook).
    SUBSCRIBE_DENIED = 3
    #: Unsubscribe from a topic the session is not subscribed to.
    NOT_SUBSCRIBED = 4
    #: Reserved: not sent by this version (a failed resume is reported by
    #: ``Welcome.fresh_reason``, never as an error).
    RESUME_FAILED = 5
    #: The server is shutting down; reconnect after ``reconnect_after_ms``.
    SHUTTING_DOWN = 6
    #: Mirrors the close codes of the same name (sent in Goodbye before closing).
    SESSION_TAKEN_OVER = 7
    SLOW_CONSUMER = 8
    RATE_LIMITED = 9
    AUTH_FAILED = 10
    UNSUPPORTED_VERSION = 11
    BAD_ENVELOPE = 12
    UNEXPECTED_MESSAGE = 13
    HEARTBEAT_TIMEOUT = 14
    LIMIT_EXCEEDED = 15
    #: The peer closes normally (Goodbye before a 1000 close).
    NORMAL = 16
    #: Mirrors close 4010: credentials expired and were not refreshed in time.
    TOKEN_EXPIRED = 17
    #: Credentials could not be checked yet (e.g. the JWKS keys are unavailable); sent with
    #: close 1013 and ``reconnect_after_ms``: retry later.
    AUTH_UNAVAILABLE = 18
    #: Mirrors close 4011: client and server use different payload serializers.
    SERIALIZER_MISMATCH = 19


class SigmaError(Exception):
    """Base class of every exception SigmaSockets raises."""


class LocalProtocolError(SigmaError):
    """The caller used the API wrongly. Nothing was sent and the state did not change."""


class RemoteProtocolError(SigmaError):
    """The peer violated the protocol. ``code`` is the close code that answers it."""

    def __init__(self, message: str, *, code: CloseCode = CloseCode.PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code

    @property
    def reason(self) -> str:
        """The message, as put in the close frame's reason (at most 123 UTF-8 bytes)."""
        return _truncate_reason(str(self))


class DecodeError(RemoteProtocolError):
    """The bytes are not a valid SigmaSockets envelope."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=CloseCode.BAD_ENVELOPE)


class UnknownMessageType(DecodeError):
    """A well-formed envelope from a newer version: a union member this version does not know,
    or a known message carrying an enum value with no safe fallback (``PresenceAction``).
    Connections ignore such messages, as the evolution rules require."""

    def __init__(self, body_type: int, message: str = "") -> None:
        super().__init__(message or f"unknown message type {body_type} (union member from a "
                         "newer peer?)")
        self.body_type = body_type


# ---------------------------------------------------------------- what the adapters raise / emit


class ConnectionFailed(SigmaError):
    """The client could not connect, or gave up reconnecting (attempts exhausted, refused)."""


class SessionLostError(SigmaError):
    """The server could not resume the session: a fresh one was started (never silently)."""


class RecoveryFailedError(SigmaError):
    """Messages on a topic were lost beyond the history bounds; the app must resync it."""


class PayloadDecodeError(SigmaError):
    """A received payload that the serializer could not decode. Only that message is affected:
    it was received (and acknowledged) like any other, and the connection goes on. ``data`` is
    the raw payload; ``topic`` where it came from (a client's topic hint on the server);
    ``message_id`` its offset in the topic (client side) or ``seq`` its client sequence
    (server side); ``session`` the sender's session on the server."""

    def __init__(self, serializer: str, reason: str, *, data: bytes, topic: str = "",
                 message_id: int = 0, seq: int = 0, session: object = None) -> None:
        where = f"message {message_id}" if message_id else f"seq {seq}" if seq else "a message"
        super().__init__(f"cannot decode {where} on {topic or 'no topic'!r} with the "
                         f"{serializer} serializer: {reason}")
        self.serializer = serializer
        self.data = data
        self.topic = topic
        self.message_id = message_id
        self.seq = seq
        self.session = session


class TokenRefreshError(SigmaError):
    """The app's ``get_token`` failed (raised, or returned no token)."""


class ServerError(SigmaError):
    """The server reported an error (an ``Error`` envelope); ``code`` is an ErrorCode value."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"server error {code}: {message}")
        self.code = code


def _truncate_reason(text: str, limit: int = 123) -> str:
    # RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the code.
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")
