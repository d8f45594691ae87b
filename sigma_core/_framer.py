"""Hand-written RFC 6455 framing for an open WebSocket without extensions, both roles, sans-IO.

:class:`FrameParser` turns the bytes a peer sends after the opening handshake into whole
messages, control frames, or one :class:`Failure` (the close code and why); the frame writers
below build what a server sends. :mod:`sigma_core.websocket` uses them instead of wsproto's frame
layer whenever no extension was negotiated (wsproto keeps the handshake, permessage-deflate, and
the client's masked sends: a mask needs entropy, which the core does not draw).

Theory of operation
-------------------
The parser keeps almost nothing between reads. A data frame's payload is handed on as it arrives
(one piece per read, as wsproto does), so the only bytes ever held back are an incomplete frame
head or an incomplete control frame: at most 131 bytes, whatever the message size, and
byte-by-byte input costs O(n) overall. A read holding whole frames is parsed in place, without
copying it into a buffer first.

Checks, in the order wsproto makes them, with wsproto's words, so that the two frame paths fail
the same way at the same byte (``tests/test_framer.py`` compares them on random input):

1. with the first two bytes: a known opcode (§5.2), control frames with FIN set and at most 125
   bytes of payload (§5.5);
2. with the extended length: the minimal encoding (§5.2: "the minimal number of bytes MUST be
   used"), the most significant bit of a 64-bit length clear (§5.2);
3. RSV bits clear (§5.2: no extension was negotiated);
4. masking: required client to server, forbidden server to client (§5.1);
5. with the first payload byte of a data frame (or at once, for an empty one): continuation
   rules (§5.4), incremental UTF-8 validation of text, failing on the first invalid sequence
   (§8.1, 1007), then text policy (1003) and the message size so far (1009);
6. close frames: no payload, or a valid code and a UTF-8 reason (§5.5.1, §7.4).

After our own close frame (:meth:`FrameParser.drop_messages`) frames are still checked, but
messages, pings and pongs are dropped. After a close frame or a failure the parser is spent.
"""

from __future__ import annotations

import struct
from codecs import IncrementalDecoder, getincrementaldecoder
from collections.abc import Callable
from typing import Any, Final, NamedTuple

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "CloseFrame",
    "Failure",
    "FrameParser",
    "PingFrame",
    "PongFrame",
    "ReadMessage",
    "ReadMessages",
    "Received",
    "binary_frame_header",
    "close_payload",
    "frame",
    "server_binary_frame",
    "too_big",
    "unmask",
    "unmask_py",
    "unmask_slice",
    "unmask_slice_py",
]

# (Final, these and the module's other constants: compiled, each is a C static or an inlined
# literal, not a module-dict lookup per use — the parser read nine per frame.)
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

_CONTROL_OPCODES: Final = (CLOSE, PING, PONG)
_FIN: Final = 0x80
_RSV: Final = 0x70
_MASKED: Final = 0x80

_LEN16: Final = struct.Struct("!BBH")
_LEN64: Final = struct.Struct("!BBQ")
_unpack_len64: Final = struct.Struct("!Q").unpack_from
_UTF8: Final = getincrementaldecoder("utf-8")

_PROTOCOL_ERROR: Final = 1002
_UNSUPPORTED_DATA: Final = 1003
_INVALID_DATA: Final = 1007
_POLICY_VIOLATION: Final = 1008
_TOO_BIG: Final = 1009

# RFC 6455 §7.4.1/§7.4.2 as wsproto reads them: 1000-1003 and 1007-1013 (1012 and 1013 from the
# IANA registry), and 3000-4999. 1004, 1014 and the rest of 1016-2999 are reserved; 1005, 1006
# and 1015 may never be sent.
_RECEIVABLE_PROTOCOL_CODES: Final = frozenset([*range(1000, 1004), *range(1007, 1014)])
_LOCAL_ONLY_CODES: Final = frozenset([1005, 1006, 1015])
# How wsproto names the opcodes in "expected CONTINUATION, got ..." (its Opcode enum's repr).
_OPCODE_NAMES: Final = {TEXT: "<Opcode.TEXT: 1>", BINARY: "<Opcode.BINARY: 2>"}


class PingFrame(NamedTuple):
    """The peer sent a ping."""

    payload: bytes


class PongFrame(NamedTuple):
    """The peer sent a pong."""

    payload: bytes


class CloseFrame(NamedTuple):
    """The peer sent a valid close frame (``code`` 1005 when it carried none)."""

    code: int
    reason: str


class Failure(NamedTuple):
    """The peer broke the protocol: fail the connection with ``code`` (RFC 6455 §7.1.7)."""

    code: int
    message: str


#: What a :attr:`FrameParser.reader` makes of a whole binary message it recognises: the
#: ``(seq, topic, payload, timestamp_ms)`` of a client's ``Data`` (``codec.read_client_data``).
ReadMessage = tuple[int, str, bytes, int]

#: What a :attr:`FrameParser.reader` reads from a run of whole binary messages in one call:
#: their ``ReadMessage`` tuples, in order, as one list (``codec.read_client_frames``).
ReadMessages = list[ReadMessage]

#: What :meth:`FrameParser.receive` returns, in order: whole messages (``bytes`` for binary,
#: ``str`` for text, or the list the parser's ``reader`` read from a run of binary ones),
#: control frames, and at most one final close frame or failure.
Received = bytes | str | ReadMessages | PingFrame | PongFrame | CloseFrame | Failure


def too_big(limit: int, size: int) -> str:
    """The reason given when a message outgrows ``max_message_size`` (1009)."""
    return f"message larger than {limit} bytes ({size}+)"


class FrameParser:
    """Parses what one peer sends after the opening handshake (no extension negotiated).

    ``client``: we are the client (frames must arrive unmasked) rather than the server (frames
    must arrive masked). Whole messages larger than ``max_message_size`` fail with 1009 as soon
    as the bytes received pass the limit; text messages fail with 1003 unless ``allow_text``.
    """

    __slots__ = (
        "_allow_text",
        "_buffer",
        "_client",
        "_decoder",
        "_dropping",
        "_fin",
        "_fragments",
        "_frame_opcode",
        "_left",
        "_limit",
        "_mask",
        "_max_fragments",
        "_opcode",
        "_parts",
        "_size",
        "_tail",
        "reader",
    )

    def __init__(self, *, client: bool, max_message_size: int, allow_text: bool,
                 max_fragments: int = 1024) -> None:
        self._client = client
        self._limit = max_message_size
        #: Frames one message may come in; more fails the connection with 1008.
        self._max_fragments = max_fragments
        self._fragments = 0
        #: A fragmented binary message so far, in one buffer (not one object per fragment).
        self._buffer: bytearray | None = None
        self._allow_text = allow_text
        #: After our close frame: frames are checked, messages and pings dropped.
        self._dropping = False
        #: An incomplete frame head or control frame held from earlier reads.
        self._tail = b""
        #: The data frame being received: payload bytes still to come, FIN, masking key
        #: (little-endian, rotated to the next byte; 0 for none: XOR with 0 changes nothing),
        #: opcode of its next piece (0 once a piece was handed on).
        self._left = 0
        self._fin = False
        self._mask = 0
        self._frame_opcode = CONTINUATION
        #: The message being received: TEXT, BINARY or 0; its pieces so far (bytes, or str for
        #: text) and its size in bytes; the UTF-8 decoder of a text message.
        self._opcode = 0
        self._parts: list[Any] | None = None  # (None while empty: most messages are one frame)
        self._size = 0
        self._decoder: IncrementalDecoder | None = None
        #: A server's reader of whole binary messages in the parser's pass (the server's
        #: ``codec.read_client_frames``), called as ``reader(data, pos, limit, items)`` where a
        #: whole, unfragmented binary frame starts (no message open): it reads the run of
        #: whole, masked binary frames there whose messages it recognises (each passed every
        #: check the general way makes: first byte 0x82, masked, its length minimal and within
        #: ``limit``), appends what it read to ``items`` as one list (none: nothing) and returns
        #: where the first frame it did not read starts; the parser takes that frame the
        #: general way (a message it does not recognise is handed on as its bytes). One
        #: attribute: a server holds a parser per connection.
        self.reader: Callable[[bytes, int, int, list[Any]], int] | None = None

    def drop_messages(self) -> None:
        """We sent our close frame: from now on, drop messages, pings and pongs."""
        self._dropping = True
        self._parts = None
        self._buffer = None
        self._fragments = 0
        self._size = 0

    def receive(self, data: bytes) -> list[Received]:
        """Parse ``data`` (not empty); return what it completed, oldest first.

        A :class:`CloseFrame` or :class:`Failure` is always last and ends the parser's use."""
        items: list[Received] = []
        pos = 0
        if self._left:
            pos = self._continue_frame(data, items)
            if pos < 0:
                return items
        elif self._tail:
            data = self._tail + data
            self._tail = b""
        end = len(data)
        client = self._client
        mask_bit = 0 if client else _MASKED
        limit = self._limit
        reader = self.reader if not client else None
        # Where the reader last stopped: the frame there is the general way's.
        tried = -1
        # No message is open: a FIN binary frame (0x82, the common case) is a whole message.
        whole = not self._opcode and not self._dropping
        mask = 0
        while end - pos >= 2:
            b0 = data[pos]
            if b0 == 0x82 and whole and reader is not None and pos != tried:
                # The hot path: a run of whole binary messages, read in one call.
                tried = reader(data, pos, limit, items)
                if tried != pos:
                    pos = tried
                    continue
            b1 = data[pos + 1]
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            if opcode > BINARY:
                if opcode not in _CONTROL_OPCODES:  # §5.2
                    return self._fail(items, f"Invalid opcode {opcode:#x}")
                if not b0 & _FIN:  # §5.5
                    return self._fail(items, "Invalid attempt to fragment control frame")
                if length > 125:  # §5.5
                    return self._fail(items, "Control frame with payload len > 125")
            if length < 126:
                start = pos + 2
            elif length == 126:
                if end - pos < 4:
                    break
                length = data[pos + 2] << 8 | data[pos + 3]
                if length < 126:  # §5.2: "the minimal number of bytes MUST be used"
                    return self._fail(
                        items, "Payload length used 2 bytes when 1 would have sufficed"
                    )
                start = pos + 4
            else:
                if end - pos < 10:
                    break
                (length,) = _unpack_len64(data, pos + 2)
                if length < 65536:
                    return self._fail(
                        items, "Payload length used 8 bytes when 2 would have sufficed"
                    )
                if length >> 63:  # §5.2
                    return self._fail(items, "8-byte payload length with non-zero MSB")
                start = pos + 10
            if b0 & _RSV:  # §5.2: no extension was negotiated
                return self._fail(items, "Reserved bit set unexpectedly")
            if b1 & _MASKED != mask_bit:  # §5.1
                if client:
                    return self._fail(items, "client received unexpected masked frame")
                return self._fail(items, "server received unexpected unmasked frame")
            if mask_bit:
                if end - start < 4:
                    break
                # (byte by byte: compiled, native arithmetic, no struct call per frame)
                mask = (data[start] | data[start + 1] << 8 | data[start + 2] << 16
                        | data[start + 3] << 24)
                start += 4
            stop = start + length
            if (opcode <= BINARY and self._size + length > limit and not self._dropping
                    and (opcode == CONTINUATION) == bool(self._opcode)):
                # Refused on the announced length, before the payload arrives: a peer does
                # not get to make us wait for (or buffer) a message we will never accept.
                items.append(Failure(_TOO_BIG, too_big(limit, self._size + length)))
                return items
            if opcode <= BINARY and not b0 & _FIN and not self._dropping:
                self._fragments += 1
                if self._fragments > self._max_fragments:
                    items.append(Failure(_POLICY_VIOLATION, "message in more than "
                                         f"{self._max_fragments} fragments"))
                    return items
            if stop <= end:
                pos = stop
                if b0 == 0x82 and whole:
                    # A whole, unfragmented binary message (one the reader, if set, did not
                    # recognise), unmasked straight out of the read (one copy).
                    items.append(unmask_slice(data, start, stop, mask) if mask and length
                                 else data[start:stop])
                    continue
                if mask and length:
                    payload = unmask_slice(data, start, stop, mask)
                else:
                    payload = data[start:stop]
                if opcode > BINARY:
                    if opcode == CLOSE:
                        items.append(_close_frame(payload))
                        return items
                    if not self._dropping:
                        items.append(PingFrame(payload) if opcode == PING else PongFrame(payload))
                    continue
                if not self._data(opcode, payload, bool(b0 & _FIN), items):
                    return items
                whole = not self._opcode and not self._dropping
                continue
            if opcode > BINARY:
                break  # control frames are taken whole (at most 125 bytes)
            # The frame goes on in the next reads: hand on what is here (nothing for a head
            # alone, as wsproto does) and keep its state.
            self._left = stop - end
            self._fin = bool(b0 & _FIN)
            if start == end:
                self._mask = mask
                self._frame_opcode = opcode
                return items
            if mask:
                payload = unmask_slice(data, start, end, mask)
                mask = _rotate(mask, end - start)
            else:
                payload = data[start:end]
            self._mask = mask
            self._frame_opcode = CONTINUATION
            self._data(opcode, payload, False, items)
            return items
        if pos < end:
            self._tail = data[pos:]
        return items

    def _continue_frame(self, data: bytes, items: list[Received]) -> int:
        """More of a data frame whose head came in an earlier read: hand it on. Return where
        the next frame starts in ``data``, or -1 when ``data`` ended first or we failed."""
        left = self._left
        n = len(data)
        if n >= left:
            piece = data[:left] if n > left else data
            self._left = 0
        else:
            piece = data
            self._left = left - n
        mask = self._mask
        if mask:
            piece = unmask(piece, mask)
            self._mask = _rotate(mask, len(piece))
        opcode = self._frame_opcode
        self._frame_opcode = CONTINUATION
        if not self._data(opcode, piece, not self._left and self._fin, items) or self._left:
            return -1
        return left

    def _data(self, opcode: int, payload: bytes, last: bool, items: list[Received]) -> bool:
        """One piece of a data frame: ``opcode`` is the frame's for its first piece, else
        CONTINUATION; ``last`` when it ends the message. False when the connection failed."""
        current = self._opcode
        if not current:
            if opcode == CONTINUATION:  # §5.4
                self._fail(items, "unexpected CONTINUATION")
                return False
            self._opcode = current = opcode
        elif opcode != CONTINUATION:  # §5.4
            self._fail(items, f"expected CONTINUATION, got {_OPCODE_NAMES[opcode]}")
            return False
        if current == TEXT:
            if opcode == TEXT:
                self._decoder = _UTF8()
            decoder = self._decoder
            assert decoder is not None
            try:
                text = decoder.decode(payload, last)
            except UnicodeDecodeError as exc:  # §8.1: fail on the first invalid sequence
                items.append(Failure(_INVALID_DATA, str(exc)))
                return False
            if self._dropping:
                if last:
                    self._opcode = 0
                    self._decoder = None
                return True
            if not self._allow_text:
                items.append(Failure(_UNSUPPORTED_DATA, "text messages are not supported"))
                return False
            size = self._size + (len(text) if text.isascii() else len(text.encode()))
            if size > self._limit:
                items.append(Failure(_TOO_BIG, too_big(self._limit, size)))
                return False
            texts = self._parts
            if last:
                if texts:
                    texts.append(text)
                    text = "".join(texts)
                    self._parts = None
                items.append(text)
                self._opcode = 0
                self._decoder = None
                self._size = 0
                self._fragments = 0
            else:
                if text:
                    if texts is None:
                        self._parts = [text]
                    else:
                        texts.append(text)
                self._size = size
            return True
        if self._dropping:
            if last:
                self._opcode = 0
            return True
        size = self._size + len(payload)
        if size > self._limit:
            items.append(Failure(_TOO_BIG, too_big(self._limit, size)))
            return False
        buffer = self._buffer
        if last:
            if buffer is not None:
                buffer += payload
                payload = bytes(buffer)
                self._buffer = None
            items.append(payload)
            self._opcode = 0
            self._size = 0
            self._fragments = 0
        else:
            if buffer is None:
                self._buffer = bytearray(payload)
            else:
                buffer += payload
            self._size = size
        return True

    @staticmethod
    def _fail(items: list[Received], message: str) -> list[Received]:
        items.append(Failure(_PROTOCOL_ERROR, message))
        return items


def _close_frame(payload: bytes) -> CloseFrame | Failure:
    """Validate a close frame's payload (RFC 6455 §5.5.1, §7.4)."""
    if not payload:
        return CloseFrame(1005, "")  # §7.1.5: no status code
    if len(payload) == 1:
        return Failure(_PROTOCOL_ERROR, "CLOSE with 1 byte payload")
    code = payload[0] << 8 | payload[1]
    if code < 1000 or code > 4999:
        return Failure(_PROTOCOL_ERROR, "CLOSE with invalid code")
    if code in _LOCAL_ONLY_CODES:
        return Failure(_PROTOCOL_ERROR, "remote CLOSE with local-only reason")
    if code < 3000 and code not in _RECEIVABLE_PROTOCOL_CODES:
        return Failure(_PROTOCOL_ERROR, "CLOSE with unknown reserved code")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError as exc:
        return Failure(_INVALID_DATA, "Error decoding CLOSE reason: " + str(exc))
    return CloseFrame(code, reason)


# -- unmasking (RFC 6455 §5.3) ---------------------------------------------------------------------

# Below this size, XOR as one big integer: int.from_bytes, ^, to_bytes are each one C loop.
# From it on, four bytes.translate calls over strided slices cost less (measured on CPython 3.11:
# equal near 1 KiB, 1.5x cheaper at 4 KiB; the integer way is 2x cheaper at 256 bytes).
_TRANSLATE_FROM: Final = 1024
# Integers with a 1 in the low byte of every 32-bit word, by word count: m * _ones(k) repeats
# the 32-bit mask m k times. A few sizes recur (the same envelopes), so a small cache pays.
_ONES: Final[dict[int, int]] = {}
_ONES_CACHE_SIZE: Final = 64
_ALL_WORDS: Final = _TRANSLATE_FROM // 4
_ALL_ONES: Final = int.from_bytes(b"\x01\x00\x00\x00" * _ALL_WORDS, "little")
# bytes.translate tables: _XOR_TABLES[k][i] == i ^ k.
_XOR_TABLES: Final = [bytes(i ^ k for i in range(256)) for k in range(256)]


def _ones(words: int) -> int:
    ones = _ALL_ONES >> 32 * (_ALL_WORDS - words)
    if len(_ONES) >= _ONES_CACHE_SIZE:
        _ONES.clear()
    _ONES[words] = ones
    return ones


def unmask_py(payload: bytes, mask: int) -> bytes:
    """``payload`` XOR the masking key repeated (RFC 6455 §5.3); it works both ways. ``mask`` is
    the key's 4 bytes read as a little-endian integer. The reference for the C helper."""
    n = len(payload)
    if n < _TRANSLATE_FROM:
        words = (n + 3) >> 2
        ones = _ONES.get(words)
        if ones is None:
            ones = _ones(words)
        x = int.from_bytes(payload, "little") ^ mask * ones
        if n & 3:
            return x.to_bytes(words << 2, "little")[:n]
        return x.to_bytes(n, "little")
    tables = _XOR_TABLES
    out = bytearray(payload)
    out[0::4] = out[0::4].translate(tables[mask & 0xFF])
    out[1::4] = out[1::4].translate(tables[mask >> 8 & 0xFF])
    out[2::4] = out[2::4].translate(tables[mask >> 16 & 0xFF])
    out[3::4] = out[3::4].translate(tables[mask >> 24])
    return bytes(out)


def unmask_slice_py(data: bytes, start: int, stop: int, mask: int) -> bytes:
    """``unmask_py(data[start:stop], mask)``: a frame's payload unmasked straight out of the read
    (the C helper makes one copy where the slice and the unmasking make two). IndexError
    unless ``0 <= start <= stop <= len(data)``, as the C helper."""
    if not 0 <= start <= stop <= len(data):
        raise IndexError("unmask_slice(): start/stop out of range")
    return unmask_py(data[start:stop], mask)


#: The unmasking in use: the C helpers (``_speedups.c``, built with the compiled modules; a fifth
#: of the compiled server's time was this loop) when they are there, else :func:`unmask_py` and
#: :func:`unmask_slice_py`.
unmask: Callable[[bytes, int], bytes]
unmask_slice: Callable[[bytes, int, int, int], bytes]
try:
    from ._speedups import unmask as _unmask_c
    from ._speedups import unmask_slice as _unmask_slice_c
except ImportError:  # a pure-Python install
    unmask = unmask_py
    unmask_slice = unmask_slice_py
else:
    unmask = _unmask_c
    unmask_slice = _unmask_slice_c


def _rotate(mask: int, consumed: int) -> int:
    """The masking key for the payload byte after ``consumed`` bytes."""
    shift = (consumed & 3) << 3
    return (mask >> shift | mask << (32 - shift)) & 0xFFFFFFFF if shift else mask


# -- writing frames (server side: never masked, RFC 6455 §5.1) -------------------------------------


def frame(first: int, payload: bytes | bytearray | memoryview) -> bytes:
    """One unmasked frame: ``first`` is its first byte (FIN, RSV, opcode), e.g. 0x82."""
    n = len(payload)
    if n < 126:
        header = bytes((first, n))
    elif n < 65536:
        header = _LEN16.pack(first, 126, n)
    else:
        header = _LEN64.pack(first, 127, n)
    return header + payload


def binary_frame_header(n: int) -> bytes:
    """The header of an unfragmented, unmasked binary frame with ``n`` bytes of payload."""
    if n < 126:
        return bytes((0x82, n))
    if n < 65536:
        return _LEN16.pack(0x82, 126, n)
    return _LEN64.pack(0x82, 127, n)


def server_binary_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """One unfragmented, unmasked binary frame carrying ``payload`` (``frame(0x82, payload)``).

    Server frames are the same bytes for every recipient, so a broadcast is framed once."""
    n = len(payload)
    if n < 126:
        header = bytes((0x82, n))
    elif n < 65536:
        header = _LEN16.pack(0x82, 126, n)
    else:
        header = _LEN64.pack(0x82, 127, n)
    return header + payload


def close_payload(code: int, reason: str) -> bytes:
    """A close frame's payload: ``code`` (none for 1005, §7.1.5) and ``reason`` in UTF-8."""
    if code == 1005:
        return b""
    return code.to_bytes(2, "big") + reason.encode()
