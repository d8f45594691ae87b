"""Token buckets: the per-connection rate limits (messages/s and bytes/s) as small pure objects.

A bucket holds up to ``capacity`` tokens and refills at ``rate`` tokens per second of the
caller's clock; :meth:`TokenBucket.take` spends tokens or refuses. Time comes in as ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateLimit", "TokenBucket"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Client->server limits per connection. 0 disables a limit. ``burst`` is how many seconds'
    worth of traffic may arrive at once (the bucket's capacity is ``rate * burst``)."""

    messages_per_second: float = 0.0
    bytes_per_second: float = 0.0
    burst: float = 1.0

    def __post_init__(self) -> None:
        for name in ("messages_per_second", "bytes_per_second"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RateLimit.{name} must be finite and >= 0, got {value!r}")
        if not (math.isfinite(self.burst) and self.burst > 0):
            raise ValueError(f"RateLimit.burst must be finite and > 0, got {self.burst!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.messages_per_second or self.bytes_per_second)


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved up; starts full."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("TokenBucket needs rate > 0 and capacity > 0")
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = now

    def take(self, amount: float, now: float) -> bool:
        """Spend ``amount`` tokens if there are that many; False (nothing spent) otherwise.
        An amount larger than the capacity is allowed only from a full bucket."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= min(amount, self.capacity):
            self.tokens -= amount
            return True
        return False
