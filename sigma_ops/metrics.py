"""Prometheus metrics for a SigmaSockets server, read from the hub when scraped.

:class:`SigmaCollector` is a ``prometheus_client`` custom collector: it costs the message path
nothing, because it keeps no state of its own. At scrape time it reads the counters the hub
already keeps (:class:`~sigma_core.hub.ServerStats`) and its fixed-bucket histograms
(:class:`~sigma_core.metrics.HubMetrics`), and turns them into metric families. Every name is
listed with its meaning in docs/operations.md.

A cluster engine (Redis, issues 14/15) reports its own figures through :class:`EngineMetrics`,
registered with :meth:`SigmaCollector.set_engine`; its families are present only then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from sigma_core.hub import Hub, ServerStats
from sigma_core.metrics import REFUSAL_REASONS, TOPIC_KINDS, HistogramSnapshot

from ._version import VERSION

__all__ = [
    "ENGINE_METRIC_NAMES",
    "METRIC_NAMES",
    "EngineMetrics",
    "HubSource",
    "SigmaCollector",
    "make_registry",
]

PREFIX = "sigmasockets_"

#: Every family the collector exposes for a running hub (names as in the exposition, without
#: the ``_total``/``_bucket`` suffixes the text format adds).
METRIC_NAMES: tuple[str, ...] = (
    "sigmasockets_info",
    "sigmasockets_up",
    "sigmasockets_uptime_seconds",
    "sigmasockets_draining",
    "sigmasockets_connections",
    "sigmasockets_clients_connected",
    "sigmasockets_sessions",
    "sigmasockets_connections_accepted",
    "sigmasockets_connections_refused",
    "sigmasockets_connections_rejected",
    "sigmasockets_drained_connections",
    "sigmasockets_messages_received",
    "sigmasockets_messages_sent",
    "sigmasockets_received_bytes",
    "sigmasockets_sent_bytes",
    "sigmasockets_publishes",
    "sigmasockets_deliveries",
    "sigmasockets_resumes",
    "sigmasockets_topic_recoveries_failed",
    "sigmasockets_lost_messages",
    "sigmasockets_duplicates_dropped",
    "sigmasockets_disconnects",
    "sigmasockets_resume_replayed_messages",
    "sigmasockets_heartbeat_rtt_seconds",
    "sigmasockets_handshake_duration_seconds",
)
#: The families present only when a cluster engine is configured (:meth:`set_engine`).
ENGINE_METRIC_NAMES: tuple[str, ...] = (
    "sigmasockets_engine_up",
    "sigmasockets_engine_operation_duration_seconds",
    "sigmasockets_engine_errors",
    "sigmasockets_engine_cross_node_lag_seconds",
)


class HubSource(Protocol):
    """What the collector reads: either adapter's ``SigmaSocketServer`` (``hub`` is None
    before it starts)."""

    @property
    def hub(self) -> Hub | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineMetrics:
    """What a cluster engine reports when scraped. ``operations`` and ``errors`` are keyed by
    the engine's operation name (``append``, ``read_range``, ``session_load``, ...)."""

    #: The engine answered its last health probe.
    reachable: bool
    #: Latency of each kind of engine operation, in seconds.
    operations: Mapping[str, HistogramSnapshot] = field(default_factory=dict)
    #: Failed operations by kind (timeouts, connection errors, script errors).
    errors: Mapping[str, int] = field(default_factory=dict)
    #: Seconds from a message's append on one node to its arrival on this one.
    cross_node_lag: HistogramSnapshot | None = None


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels)


def _add_histogram(family: HistogramMetricFamily, labels: list[str],
                   snap: HistogramSnapshot) -> None:
    bounds = [*(_le(b) for b in snap.bounds), "+Inf"]
    family.add_metric(labels, buckets=list(zip(bounds, snap.cumulative, strict=True)),
                      sum_value=snap.sum)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class SigmaCollector(Collector):
    """Reads ``source.hub`` at each scrape; ``clock`` gives the ``now`` the hub's uptime is
    measured with (the adapter's loop clock: ``loop.time`` or ``trio.current_time``)."""

    def __init__(self, source: HubSource, clock: Callable[[], float], *,
                 node: str = "") -> None:
        self._source = source
        self._clock = clock
        self._node = node
        self._engine: Callable[[], EngineMetrics] | None = None

    def set_engine(self, report: Callable[[], EngineMetrics] | None) -> None:
        """Register (or, with None, remove) the cluster engine's report: the registration point
        for the engine of issues 14/15. Its families appear only while one is set."""
        self._engine = report

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(PREFIX + "info", "SigmaSockets build and node",
                                 labels=["version", "node"])
        info.add_metric([VERSION, self._node], 1)
        yield info
        hub = self._source.hub
        up = GaugeMetricFamily(PREFIX + "up", "1 while the server's hub exists (started)")
        up.add_metric([], 0 if hub is None else 1)
        yield up
        if hub is None:
            return
        stats = hub.stats(self._clock())
        yield from self._hub_families(hub, stats)
        if self._engine is not None:
            yield from self._engine_families(self._engine())

    def _hub_families(self, hub: Hub, s: ServerStats) -> Iterator[Metric]:
        m = hub.metrics

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(PREFIX + name, doc, value=value)

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, doc, value=value)

        yield gauge("uptime_seconds", "Seconds since the hub was created", s.uptime)
        yield gauge("draining", "1 once the node is draining (stop() with shutdown_spread)",
                    1 if hub.is_draining else 0)
        yield gauge("connections", "Open sockets (any state, HTTP included)",
                    hub.connection_count())
        yield gauge("clients_connected", "Sessions with an open connection",
                    s.connected_clients)
        yield gauge("sessions", "Sessions held, connected or awaiting resume", s.sessions)
        yield counter("connections_accepted", "Sockets accepted", s.total_connections)
        refused = CounterMetricFamily(PREFIX + "connections_refused",
                                      "Upgrades and Hellos refused, by reason",
                                      labels=["reason"])
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], m.refused[reason])
        yield refused
        yield counter("connections_rejected",
                      "Connections that ended before they had a session (any cause)",
                      m.rejected_connections)
        yield counter("drained_connections", "Connections told to go by a drain", m.drained)
        yield counter("messages_received", "Client messages accepted (duplicates excluded)",
                      s.messages_received)
        yield counter("messages_sent", "Messages queued to clients (live and replayed)",
                      s.messages_sent)
        yield counter("received_bytes", "Bytes received on WebSocket connections",
                      s.bytes_received)
        yield counter("sent_bytes", "Bytes handed to sockets", s.bytes_sent)
        publishes = CounterMetricFamily(PREFIX + "publishes", "Messages published, by topic kind",
                                        labels=["kind"])
        deliveries = CounterMetricFamily(PREFIX + "deliveries",
                                         "Live copies queued to sockets, by topic kind",
                                         labels=["kind"])
        for i, kind in enumerate(TOPIC_KINDS):
            publishes.add_metric([kind], m.publishes[i])
            deliveries.add_metric([kind], m.deliveries[i])
        yield publishes
        yield deliveries
        resumes = CounterMetricFamily(PREFIX + "resumes",
                                      "Resume attempts: recovered the session, or failed "
                                      "(unknown, expired or wrong token: a fresh session)",
                                      labels=["result"])
        resumes.add_metric(["recovered"], s.resumes)
        resumes.add_metric(["failed"], s.failed_resumes)
        yield resumes
        yield counter("topic_recoveries_failed",
                      "Topics whose missed messages could not be replayed (client told)",
                      s.failed_recoveries)
        yield counter("lost_messages", "Messages clients were told they lost (known extent)",
                      m.lost_messages)
        yield counter("duplicates_dropped", "Client messages dropped as already received",
                      s.duplicates_dropped)
        disconnects = CounterMetricFamily(PREFIX + "disconnects",
                                          "Connections closed by a server-side limit",
                                          labels=["reason"])
        disconnects.add_metric(["slow_consumer"], s.slow_consumer_disconnects)
        disconnects.add_metric(["rate_limited"], s.rate_limited_disconnects)
        yield disconnects
        for name, doc, hist in (
                ("resume_replayed_messages", "Messages replayed per resumed session",
                 m.replayed_messages),
                ("heartbeat_rtt_seconds", "Heartbeat round-trip samples", m.heartbeat_rtt_seconds),
                ("handshake_duration_seconds", "Seconds from accept to Welcome",
                 m.handshake_seconds)):
            family = _histogram(PREFIX + name, doc, [])
            _add_histogram(family, [], hist.snapshot())
            yield family

    def _engine_families(self, e: EngineMetrics) -> Iterator[Metric]:
        yield GaugeMetricFamily(PREFIX + "engine_up", "1 while the cluster engine is reachable",
                                value=1 if e.reachable else 0)
        ops = _histogram(PREFIX + "engine_operation_duration_seconds",
                         "Cluster engine operation latency", ["operation"])
        for op, snap in sorted(e.operations.items()):
            _add_histogram(ops, [op], snap)
        yield ops
        errors = CounterMetricFamily(PREFIX + "engine_errors",
                                     "Failed cluster engine operations", labels=["operation"])
        for op, count in sorted(e.errors.items()):
            errors.add_metric([op], count)
        yield errors
        if e.cross_node_lag is not None:
            lag = _histogram(PREFIX + "engine_cross_node_lag_seconds",
                             "Seconds from a message's append on another node to its arrival",
                             [])
            _add_histogram(lag, [], e.cross_node_lag)
            yield lag


def make_registry(collector: SigmaCollector) -> CollectorRegistry:
    """A registry holding only ``collector`` (not the process-wide default one, so two servers
    in one process export separately)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
