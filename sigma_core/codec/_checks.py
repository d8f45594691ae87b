"""Encoding, step one: every argument checked and converted before anything is written
(:class:`~sigma_core.errors.LocalProtocolError` naming the field)."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import LocalProtocolError
from ..messages import (
    PresenceAction,
    RecoveryStatus,
)
from ._schema import _U16_MAX, _U32_MAX, _U64_MAX

# -- encoding: argument checks


def _uint(value: object, maximum: int, kind: str, name: str) -> int:
    if not isinstance(value, int):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise LocalProtocolError(f"{name}={value} is out of range for {kind} (0..{maximum})")
    return int(value)


def _u64(value: object, name: str) -> int:
    return _uint(value, _U64_MAX, "ulong", name)


def _u32(value: object, name: str) -> int:
    return _uint(value, _U32_MAX, "uint", name)


def _u16(value: object, name: str) -> int:
    return _uint(value, _U16_MAX, "ushort", name)


def _utf8(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{name} cannot be encoded as UTF-8: {exc.reason}") from exc


def _byte_string(value: object, name: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise LocalProtocolError(f"{name} must be bytes-like, not {type(value).__name__}")


def _position(value: object, name: str) -> tuple[int, int]:
    if not isinstance(value, tuple) or len(value) != 2:
        raise LocalProtocolError(f"{name} must be a StreamPosition(epoch, offset)")
    return _u64(value[0], f"{name}.epoch"), _u64(value[1], f"{name}.offset")


def _enum_value(value: object, enum: type[RecoveryStatus | PresenceAction], name: str) -> int:
    try:
        if not isinstance(value, int):
            raise TypeError(value)
        return int(enum(value))
    except (ValueError, TypeError) as exc:
        raise LocalProtocolError(f"{name}={value!r} is not a {enum.__name__}") from exc


def _metadata_items(value: object, name: str) -> list[tuple[bytes, bytes]]:
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{name} must be a mapping of str to str")
    return [(_utf8(k, f"{name} key"), _utf8(v, f"{name}[{k!r}]")) for k, v in value.items()]
