"""permessage-deflate (RFC 7692) with a bound on inflating.

wsproto's ``PerMessageDeflate`` inflates a frame whole and the size is checked afterwards, so a
small compressed frame can allocate hundreds of megabytes first (a deflate bomb). This subclass
asks zlib for at most what the message may still grow by (``decompress(data, max_length)``) and
fails the message with 1009 as soon as it would pass ``max_message_size``: the memory spent is at
most that limit, whatever the ratio.

Not compiled with mypyc (a native class cannot inherit from wsproto's Python class).
"""

from __future__ import annotations

import zlib
from typing import Any

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

__all__ = ["BoundedDeflate"]

_TAIL = b"\x00\x00\xff\xff"  # RFC 7692 §7.2.2: the empty block removed by the sender


class BoundedDeflate(PerMessageDeflate):
    """``PerMessageDeflate`` that never inflates a message past ``max_message_size``."""

    def __init__(self, max_message_size: int) -> None:
        super().__init__()
        self._limit = max_message_size
        #: Bytes the message being received has inflated to so far.
        self._inflated = 0

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data
        decompressor = self._decompressor
        assert decompressor is not None
        try:
            out = decompressor.decompress(bytes(data), self._limit - self._inflated + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += len(out)
        if self._inflated > self._limit or decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return out

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        # wsproto's version, with the tail's inflating bounded too.
        if not fin:
            return None
        inflated, self._inflated = self._inflated, 0
        if not self._inbound_is_compressible or not self._inbound_compressed:
            self._inbound_compressed = None
            return None
        decompressor = self._decompressor
        assert decompressor is not None
        left = self._limit - inflated
        try:
            data = decompressor.decompress(_TAIL, left + 1)
            if len(data) > left or decompressor.unconsumed_tail:
                return CloseReason.MESSAGE_TOO_BIG
            # All input consumed within the bound: flush() only hands over what zlib holds.
            data += decompressor.flush()
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        no_context_takeover = (self.server_no_context_takeover if proto.client
                               else self.client_no_context_takeover)
        if no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return data
