"""The envelope bodies of the SigmaSockets wire protocol, as plain Python values.

One class per member of the ``Body`` union in ``schemas/sigma.fbs``; field names are the schema's.
They are frozen, slotted, keyword-only dataclasses: what the codec decodes into and encodes from.
Integer ranges follow the schema (``ulong`` 0..2**64-1, ``uint`` 0..2**32-1, ``ushort``
0..65535); the codec raises :class:`~sigma_core.errors.LocalProtocolError` on encoding a value
out of range. Decoded ``Data.payload`` is a read-only ``memoryview`` into the received buffer (no
copy); call ``bytes(payload)`` to keep it beyond the buffer's life.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple, TypeAlias

__all__ = [
    "ENVELOPE_OVERHEAD",
    "Ack",
    "Body",
    "ClientInfo",
    "Data",
    "Error",
    "Goodbye",
    "Hello",
    "Limits",
    "Ping",
    "Pong",
    "Presence",
    "PresenceAction",
    "RecoveryStatus",
    "Refresh",
    "Refreshed",
    "StreamPosition",
    "Subscribe",
    "Subscribed",
    "TopicPosition",
    "TopicRecovery",
    "Unsubscribe",
    "Unsubscribed",
    "Welcome",
]

PROTOCOL_VERSION = 1

#: Bytes an envelope and its WebSocket frame add to a payload and topic, at most (a Data
#: envelope: ~100). Both sides count it against ``max_message_size``: the client session before
#: it sends, the hub before it publishes.
ENVELOPE_OVERHEAD = 128

Payload: TypeAlias = bytes | bytearray | memoryview


class StreamPosition(NamedTuple):
    """Where a message stands in a topic: ``offset`` (1, 2, ...) within ``epoch``."""

    epoch: int
    offset: int


class RecoveryStatus(IntEnum):
    RECOVERED = 0
    FAILED = 1
    FRESH = 2


class PresenceAction(IntEnum):
    JOIN = 0
    LEAVE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicPosition:
    topic: str
    position: StreamPosition


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicRecovery:
    topic: str
    status: RecoveryStatus = RecoveryStatus.RECOVERED
    position: StreamPosition | None = None
    lost_from: int = 0
    lost_to: int = 0
    replayed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientInfo:
    name: str = ""
    version: str = ""
    platform: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    max_message_size: int = 0
    max_unacked: int = 0
    max_topics: int = 0
    max_messages_per_second: int = 0
    max_bytes_per_second: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    protocol_version: int = PROTOCOL_VERSION
    session_id: str = ""
    #: (Secrets: left out of the repr, so a logged Hello never shows them.)
    resume_token: bytes = field(default=b"", repr=False)
    positions: tuple[TopicPosition, ...] = ()
    last_acked_seq: int = 0
    auth_token: str = field(default="", repr=False)
    client: ClientInfo | None = None
    #: The payload serializer's name; "" means "raw" (docs/serializers.md).
    serializer: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    session_id: str
    resume_token: bytes = field(repr=False)  # (a secret: not in the repr)
    resumed: bool = False
    recovery: tuple[TopicRecovery, ...] = ()
    last_received_seq: int = 0
    heartbeat_interval_ms: int = 0
    heartbeat_timeout_ms: int = 0
    limits: Limits | None = None
    server_time_ms: int = 0
    fresh_reason: str = ""
    #: When the client's credentials expire, wall-clock ms since the epoch; 0: never.
    credentials_expire_ms: int = 0
    serializer: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Data:
    topic: str = ""
    position: StreamPosition | None = None
    seq: int = 0
    timestamp_ms: int = 0
    payload: Payload = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    seq: int = 0
    positions: tuple[TopicPosition, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    id: int = 0
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    id: int = 0
    echo_timestamp_ms: int = 0
    timestamp_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe:
    topic: str
    request_id: int = 0
    position: StreamPosition | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe:
    topic: str
    request_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribed:
    recovery: TopicRecovery
    request_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribed:
    topic: str
    request_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    topic: str
    session_id: str
    action: PresenceAction = PresenceAction.JOIN
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Error:
    #: An :class:`~sigma_core.errors.ErrorCode` value; unknown codes are kept as plain ints.
    code: int = 0
    message: str = ""
    details: str = ""
    retryable: bool = False
    request_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Goodbye:
    #: An :class:`~sigma_core.errors.ErrorCode` value.
    code: int = 0
    reason: str = ""
    reconnect_after_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Refresh:
    """Client -> server: a new credential for the open connection."""

    token: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Refreshed:
    """Server -> client: the Refresh was accepted; credentials now expire then (ms)."""

    credentials_expire_ms: int = 0


Body: TypeAlias = (
    Hello
    | Welcome
    | Data
    | Ack
    | Ping
    | Pong
    | Subscribe
    | Unsubscribe
    | Subscribed
    | Unsubscribed
    | Presence
    | Error
    | Goodbye
    | Refresh
    | Refreshed
)
