"""Envelopes on the wire: :mod:`sigma_core.messages` dataclasses <-> FlatBuffers bytes.

This package is the only code that touches the generated code in ``sigma_core._wire``. Its
layout follows the seams (everything public is re-exported here):

* :mod:`._schema` — what both directions share: the file identifier, the union's body types,
  the scalar limits;
* :mod:`._checks` — encoding, step one: every argument checked and converted;
* :mod:`._build` — the generic encoder on the generated builder, and :func:`encode`;
* :mod:`._fast` — the fixed byte layouts and the fast encoders for ``Data`` and ``Ack``;
* :mod:`._verify` — decoding, step one: the bounds-checking verifier (``_Reader``, ``_Table``);
* :mod:`._readers` — decoding, step two: one reader per message type, :func:`decode`, and the
  server's fixed-layout reader for client ``Data`` (:func:`read_client_data`).

Encoding uses the generated builder functions, except for the two hot messages: ``Data`` and
``Ack`` are packed by hand with :mod:`struct` (:func:`encode_data`, :func:`encode_ack`) into
exactly the bytes the builder would produce (a test proves it byte for byte), 20 to 100 times
faster. Decoding them has hand-inlined fast paths too, checked against the generic reader.

Decoding does not use the generated accessors: the FlatBuffers Python runtime checks no bounds
and would raise ``IndexError``/``struct.error`` or silently read garbage on a hostile buffer.
Instead every offset is bounds-checked as it is followed (a verifier and a reader in one pass):

* the buffer is at least 8 bytes and carries the file identifier ``SGM1`` at bytes 4..7;
* every ``uoffset`` target (root, tables, strings, vectors, vector elements) lies in the buffer;
* a table's vtable lies in the buffer, its size is even and at least 4, the table's inline size
  is at least 4 and lies in the buffer, and each field read lies within that inline size (after
  the table's own vtable offset);
* a vector's ``length * element size`` fits in the buffer; a string is NUL-terminated inside the
  buffer and valid UTF-8;
* ``(required)`` fields are present; the union type is known and its body present;
* everything decoded (string and byte-vector bytes, vector elements) adds up to at most the
  buffer's size, so a crafted buffer cannot make the decoder allocate more than it sent (strings
  reached twice through shared offsets are decoded once).
"""

from __future__ import annotations

# Not public: the references the tests and benchmarks hold the fast paths equal to, and the
# generated union's body types.
from ._build import _encode_with_builder as _encode_with_builder
from ._build import encode
from ._fast import encode_ack, encode_data, encode_data_frame
from ._readers import _decode_with_reader as _decode_with_reader
from ._readers import (
    decode,
    read_client_data,
    read_client_frame,
    read_client_frame_py,
    read_inbox_ack,
)
from ._schema import FILE_IDENTIFIER
from ._schema import _WireBody as _WireBody

__all__ = [
    "FILE_IDENTIFIER",
    "decode",
    "encode",
    "encode_ack",
    "encode_data",
    "encode_data_frame",
    "read_client_data",
    "read_client_frame",
    "read_client_frame_py",
    "read_inbox_ack",
]
