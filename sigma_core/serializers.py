"""Payload serializers: how the application's values become a message's payload bytes and back.

The wire carries payloads as opaque bytes (``Data.payload``); a serializer is chosen per server
and per client (``ServerOptions.serializer``, ``ClientOptions.serializer``; the same names in the
TypeScript client) and its :attr:`Serializer.name` is advertised in the handshake, so a client and
a server that disagree fail at connect time with a clear error instead of exchanging garbage
(docs/serializers.md).

Built in:

========================= ========== ===================================================
serializer                name       values
========================= ========== ===================================================
:data:`RAW` (default)     ``raw``    ``bytes``-like in, ``bytes`` out; no copy, no cost
:data:`JSON`              ``json``   JSON values (dict, list, str, int, float, bool, None)
:class:`MsgpackSerializer` ``msgpack`` MessagePack values, ``bytes`` included (``msgpack``)
========================= ========== ===================================================

Your own (Protobuf, CBOR, ...): any object with a ``name`` and ``encode``/``decode`` methods
(:class:`Serializer`). ``decode`` may raise anything for bad input: the adapters turn it into a
:class:`~sigma_core.errors.PayloadDecodeError` for that one message, and the connection's other
traffic goes on.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from .errors import LocalProtocolError

__all__ = [
    "JSON",
    "RAW",
    "JsonSerializer",
    "MsgpackSerializer",
    "RawSerializer",
    "Serializer",
    "check_name",
    "encode_payload",
]

#: What a serializer's name may look like (it travels in Hello and Welcome).
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


@runtime_checkable
class Serializer(Protocol):
    """Turns application values into payload bytes and back. ``name`` is advertised in the
    handshake: both ends must use the same (lowercase letters, digits, ``._+-``, at most 32)."""

    @property
    def name(self) -> str: ...

    def encode(self, value: Any) -> bytes | bytearray | memoryview: ...

    def decode(self, data: bytes) -> Any: ...


class RawSerializer:
    """The default: payloads are bytes, passed through untouched."""

    name = "raw"

    def encode(self, value: Any) -> bytes | bytearray | memoryview:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"the raw serializer sends bytes, got {type(value).__name__} "
                            "(choose serializer=JSON or encode it yourself)")
        return value

    def decode(self, data: bytes) -> bytes:
        return data


class JsonSerializer:
    """JSON text in UTF-8 (compact, ``NaN`` refused: other languages cannot read it)."""

    name = "json"

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


class MsgpackSerializer:
    """MessagePack, with the ``msgpack`` package (``pip install sigmasockets[msgpack]``).
    Strings decode as ``str``, binary as ``bytes``; maps with non-string keys are allowed."""

    name = "msgpack"

    def __init__(self) -> None:
        import msgpack  # an optional dependency: imported when the serializer is made

        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def encode(self, value: Any) -> bytes:
        data: bytes = self._packb(value, use_bin_type=True)
        return data

    def decode(self, data: bytes) -> Any:
        return self._unpackb(data, raw=False, strict_map_key=False)


RAW = RawSerializer()

#: The payload types RAW passes through (a tuple: ``bytes | bytearray | memoryview`` in an
#: isinstance check builds a union object on every call).
_BYTES_LIKE = (bytes, bytearray, memoryview)
JSON = JsonSerializer()


def check_name(name: str) -> str:
    """``name`` if it is a valid serializer name.

    Raises:
        ValueError: it is not (the message says what is allowed).
    """
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"serializer name {name!r} is invalid: 1-32 of a-z 0-9 . _ + -, "
                         "starting with a letter or digit")
    return name


def encode_payload(serializer: Serializer, value: Any) -> bytes | bytearray | memoryview:
    """``serializer.encode(value)``, with a failure reported as the caller's mistake.

    Raises:
        LocalProtocolError: the serializer could not encode ``value`` (the message names the
            serializer and the reason; nothing was sent).
    """
    if serializer is RAW and isinstance(value, _BYTES_LIKE):
        return value  # the default path: no call
    try:
        return serializer.encode(value)
    except Exception as exc:
        raise LocalProtocolError(f"the {serializer.name} serializer cannot encode "
                                 f"{type(value).__name__}: {exc}") from exc
