"""Hand-written RFC 6455 frames for the server's hot path (see :mod:`sigma_core._framer`).

Server-to-client frames are never masked (RFC 6455 §5.1), so the frame of a message is the same
bytes for every recipient: a broadcast is framed once and the same ``bytes`` object is queued on
every connection. Only valid when no extension (permessage-deflate) was negotiated; the
connection checks that before using it.
"""

from __future__ import annotations

from ._framer import server_binary_frame

__all__ = ["server_binary_frame"]
