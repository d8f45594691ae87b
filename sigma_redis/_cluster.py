"""Redis Cluster helpers: the hash slot of a key, and the slot map the receiver uses to find
the shard that serves a channel (sharded pub/sub: ``SSUBSCRIBE`` on the node owning the
channel's slot)."""

from __future__ import annotations

import binascii
import bisect
from dataclasses import dataclass

from ._url import Endpoint

__all__ = ["SLOTS", "SlotMap", "hash_slot"]

#: Redis Cluster's number of hash slots.
SLOTS = 16384


def hash_slot(key: bytes) -> int:
    """Redis Cluster's slot of ``key``: CRC16 (XMODEM, which is ``binascii.crc_hqx`` from 0)
    of the hash tag — the part between the first ``{`` and the next ``}``, when not empty —
    else of the whole key, modulo 16384."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) % SLOTS


@dataclass(frozen=True, slots=True)
class SlotMap:
    """Which primary serves which slot (from ``CLUSTER SLOTS``)."""

    starts: tuple[int, ...]
    ends: tuple[int, ...]
    owners: tuple[Endpoint, ...]

    @classmethod
    def from_reply(cls, reply: object, template: Endpoint) -> SlotMap:
        """Parse a ``CLUSTER SLOTS`` reply (RESP2): ``[[start, end, [host, port, id, ...],
        replicas...], ...]``. A primary announced with an empty host is at the address the
        reply came from (``template``). Raises ``ValueError`` on anything else."""
        if not isinstance(reply, list) or not reply:
            raise ValueError(f"CLUSTER SLOTS answered {reply!r:.80}")
        ranges = []
        for row in reply:
            try:
                start, end, primary = int(row[0]), int(row[1]), row[2]
                host = bytes(primary[0]).decode() or template.host
                port = int(primary[1])
            except (TypeError, ValueError, IndexError, UnicodeDecodeError):
                raise ValueError(f"CLUSTER SLOTS row {row!r:.80} is not a slot range") from None
            ranges.append((start, end, template.at(host, port)))
        ranges.sort(key=lambda r: r[0])
        return cls(tuple(r[0] for r in ranges), tuple(r[1] for r in ranges),
                   tuple(r[2] for r in ranges))

    def owner(self, slot: int) -> Endpoint | None:
        """The primary serving ``slot`` (None: no node serves it)."""
        i = bisect.bisect_right(self.starts, slot) - 1
        if i >= 0 and slot <= self.ends[i]:
            return self.owners[i]
        return None

    @property
    def nodes(self) -> tuple[Endpoint, ...]:
        return tuple(dict.fromkeys(self.owners))
