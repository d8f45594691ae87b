"""Counters and fixed-bucket histograms the hub keeps for operators — sans-IO, no exporter.

The hub already counts what :class:`~sigma_core.hub.ServerStats` reports. What a single counter
cannot say lives here: distributions (heartbeat RTT, handshake duration, messages replayed per
resume), refusals by reason, deliveries by topic kind and messages reported lost. Everything is
a plain integer or float updated in place on paths that are already rare (a handshake, a Pong,
a resume) or once per publish, never once per delivered copy; an exporter (``sigma_ops``) reads
them when it is scraped. Nothing here imports an I/O or metrics library.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

__all__ = [
    "HANDSHAKE_BUCKETS",
    "REFUSAL_REASONS",
    "REPLAY_BUCKETS",
    "RTT_BUCKETS",
    "TOPIC_KINDS",
    "Histogram",
    "HistogramSnapshot",
    "HubMetrics",
]

#: Upper bounds (seconds) of the heartbeat round-trip buckets.
RTT_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                                  2.5, 5.0)
#: Upper bounds (seconds) of the handshake buckets: TCP accept to Welcome sent.
HANDSHAKE_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                        1.0, 2.5, 5.0, 10.0)
#: Upper bounds (messages) of the replayed-per-resume buckets.
REPLAY_BUCKETS: tuple[float, ...] = (0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10000)
#: Topic kinds deliveries are counted by, in the order of :attr:`HubMetrics.deliveries`.
TOPIC_KINDS: tuple[str, ...] = ("broadcast", "inbox", "topic")
#: Why an upgrade or a Hello was refused (keys of :attr:`HubMetrics.refused`).
REFUSAL_REASONS: tuple[str, ...] = ("connection_limit", "origin", "draining", "protocol_version",
                                    "auth_failed", "auth_error", "session_limit",
                                    "auth_unavailable", "serializer_mismatch",
                                    "handshake_limit", "hello_limit", "peer_limit",
                                    "engine_unavailable")


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """A histogram's state at one moment: cumulative counts per upper bound (Prometheus's
    ``le`` buckets, the last one ``+Inf``), the sum of observed values and their count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int


class Histogram:
    """Fixed buckets: ``observe`` is one bisect and three additions."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram bounds must be strictly increasing")
        self.bounds = bounds
        #: counts[i]: observations <= bounds[i] and > bounds[i-1]; the last: above every bound.
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def snapshot(self) -> HistogramSnapshot:
        cumulative: list[int] = []
        total = 0
        for n in self.counts:
            total += n
            cumulative.append(total)
        return HistogramSnapshot(self.bounds, tuple(cumulative), self.sum, self.count)


class HubMetrics:
    """What a :class:`~sigma_core.hub.Hub` counts beyond :class:`ServerStats` (``hub.metrics``).
    Read it; don't assign it."""

    __slots__ = (
        "deliveries",
        "drained",
        "handshake_seconds",
        "heartbeat_rtt_seconds",
        "lost_messages",
        "publishes",
        "refused",
        "rejected_connections",
        "replayed_messages",
    )

    def __init__(self) -> None:
        #: Smoothing-free heartbeat round-trip samples, one per Pong, in seconds.
        self.heartbeat_rtt_seconds = Histogram(RTT_BUCKETS)
        #: Seconds from a socket's accept to its Welcome.
        self.handshake_seconds = Histogram(HANDSHAKE_BUCKETS)
        #: Messages replayed to each resumed session (all its topics together).
        self.replayed_messages = Histogram(REPLAY_BUCKETS)
        #: Refused upgrades and Hellos by reason (see :data:`REFUSAL_REASONS`).
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)
        #: Connections that ended before they had a session, whatever the cause (refused,
        #: handshake timeout, garbage, plain HTTP excluded).
        self.rejected_connections = 0
        #: Messages published / copies queued to sockets, by :data:`TOPIC_KINDS` index.
        self.publishes = [0, 0, 0]
        self.deliveries = [0, 0, 0]
        #: Messages clients were told they lost (the known extent of failed recoveries).
        self.lost_messages = 0
        #: Connections told to go by a drain (:meth:`Hub.drain`).
        self.drained = 0
