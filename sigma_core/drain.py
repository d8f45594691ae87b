"""Spreading a node's goodbyes over a window — the schedule of :meth:`Hub.drain`, sans-IO.

A node that stops tells its clients to reconnect elsewhere. Told all at once, they come back all
at once: the other nodes take a reconnect storm (every client's resume, replay and
re-subscription in the same second), and the clients' full-jitter backoff cannot help because a
Goodbye's ``reconnect_after_ms`` is a floor on it. :meth:`Hub.drain` therefore says goodbye to
one connection after another, evenly over ``window`` seconds; each client reconnects its hint
after its own goodbye, so the arrivals on the other nodes are as spread as the goodbyes.
"""

from __future__ import annotations

import math

__all__ = ["spread_times"]


def spread_times(count: int, start: float, window: float) -> list[float]:
    """When to say goodbye to each of ``count`` connections: evenly from ``start`` to just
    before ``start + window`` (all at ``start`` when ``window`` is 0)."""
    if count < 0:
        raise ValueError("count must be >= 0")
    if not (math.isfinite(window) and window >= 0):
        raise ValueError("window must be finite and >= 0")
    return [start + window * i / count for i in range(count)]
