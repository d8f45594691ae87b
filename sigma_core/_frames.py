"""Hand-written RFC 6455 frame headers for the server's hot path.

Server-to-client frames are never masked (RFC 6455 §5.1), so the frame of a message is the same
bytes for every recipient: a broadcast is framed once and the same ``bytes`` object is queued on
every connection. Only valid when no extension (permessage-deflate) was negotiated; the
connection checks that before using it.
"""

from __future__ import annotations

import struct

__all__ = ["server_binary_frame"]

_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")
_FIN_BINARY = 0x82


def server_binary_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """One unfragmented, unmasked binary frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        header = bytes((_FIN_BINARY, n))
    elif n < 65536:
        header = _LEN16.pack(_FIN_BINARY, 126, n)
    else:
        header = _LEN64.pack(_FIN_BINARY, 127, n)
    return header + payload
