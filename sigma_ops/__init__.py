"""Operating a SigmaSockets server: Prometheus metrics, health probes, a live dashboard.

Outside the sans-IO core (it imports ``prometheus_client``; install the ``ops`` extra) and
usable with either adapter::

    ops = Ops(node="chat-1")
    server = SigmaSocketServer(ops.server_options(ServerOptions(port=8080)))
    ops.attach(server)           # /metrics, /livez, /readyz, /dashboard on port 8080

:meth:`Ops.server_options` wraps the options' ``http_handler`` (the app's own paths keep
working), ``authenticate`` and ``authorize_subscribe`` (dashboard viewers are decided by the
feed; everyone else by the app's hooks). ``/metrics`` on a port of its own:
:meth:`Ops.separate_server`. See docs/operations.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from sigma_core.api import ServerOptions
from sigma_core.hub import AuthHook, Hub, Session
from sigma_core.metrics import HistogramSnapshot

from ._version import VERSION
from .asgi import ASGIApp, ops_asgi_app
from .feed import DASHBOARD_CLIENT_NAME, STATS_TOPIC, DashboardFeed
from .health import Health
from .metrics import (
    ENGINE_METRIC_NAMES,
    METRIC_NAMES,
    EngineMetrics,
    SigmaCollector,
    make_registry,
)
from .routes import DASHBOARD_PATH, OpsRoutes

__all__ = [
    "DASHBOARD_CLIENT_NAME",
    "DASHBOARD_PATH",
    "ENGINE_METRIC_NAMES",
    "METRIC_NAMES",
    "STATS_TOPIC",
    "VERSION",
    "DashboardFeed",
    "EngineMetrics",
    "EngineProbe",
    "Health",
    "Ops",
    "OpsRoutes",
    "SigmaCollector",
]


@runtime_checkable
class EngineProbe(Protocol):
    """What a cluster engine offers to operations (``sigma_redis.RedisEngine`` does): its
    reachability for ``/readyz`` and its figures for ``/metrics``. :meth:`Ops.attach` wires an
    engine given as ``ServerOptions(engine=...)`` that has these methods."""

    def is_ready(self) -> bool: ...

    def operation_latency(self) -> dict[str, HistogramSnapshot]: ...

    def operation_errors(self) -> dict[str, int]: ...

    def cross_node_lag(self) -> HistogramSnapshot: ...


def engine_report(engine: EngineProbe) -> Callable[[], EngineMetrics]:
    """The collector's report of ``engine`` (for :meth:`SigmaCollector.set_engine`)."""

    def report() -> EngineMetrics:
        return EngineMetrics(reachable=engine.is_ready(),
                             operations=engine.operation_latency(),
                             errors=engine.operation_errors(),
                             cross_node_lag=engine.cross_node_lag())

    return report


class Ops:
    """Metrics, health and dashboard for one server. ``metrics``/``dashboard`` False turn
    those routes off (404; a dashboard viewer is refused); ``dashboard_token`` protects the
    dashboard's data stream (the page asks for it); ``dashboard_interval`` is the seconds
    between the node's points, ``dashboard_stale_after`` the seconds without a point after
    which the dashboard's cluster view marks a node down (at least 2 x the interval)."""

    def __init__(self, *, node: str = "", metrics: bool = True, dashboard: bool = True,
                 dashboard_token: str = "", dashboard_interval: float = 1.0,
                 dashboard_stale_after: float = 5.0) -> None:
        self._server: Any = None
        self._clock: Callable[[], float] | None = None
        self.health = Health(self)
        self.collector = SigmaCollector(self, self._now, node=node)
        self.registry = make_registry(self.collector) if metrics else None
        self.feed = DashboardFeed(self, node=node, interval=dashboard_interval,
                                  token=dashboard_token, enabled=dashboard,
                                  stale_after=dashboard_stale_after)
        self.dashboard = dashboard
        #: The server's payload serializer (its name), from :meth:`server_options`.
        self._serializer = "raw"

    # What the collector, health and feed read: the attached server.
    @property
    def hub(self) -> Hub | None:
        return self._server.hub if self._server is not None else None

    def publish(self, topic: str, data: Any) -> Any:
        return self._server.publish(topic, data)

    def send_to_client(self, client: Session, data: Any) -> bool:
        return bool(self._server.send_to_client(client, data))

    def on(self, event: str, listener: Any) -> Any:
        return self._server.on(event, listener)

    def routes(self, fallback: Callable[..., Any] | None = None) -> OpsRoutes:
        """The ``http_handler``: ops paths here, the rest to ``fallback`` (or 404)."""
        return OpsRoutes(self.health, registry=self.registry, dashboard=self.dashboard,
                         fallback=fallback, serializer=self._serializer)

    def asgi_app(self, fallback: ASGIApp | None = None) -> ASGIApp:
        """The ops routes as an ASGI app, for ``SigmaASGIApp(options, app=ops.asgi_app(web))``
        (a SigmaASGIApp takes no ``http_handler``): GET/HEAD of ``/livez``, ``/readyz``,
        ``/metrics`` and the dashboard here, every other scope to ``fallback`` (404 without).
        Use :meth:`hooks` for the options and :meth:`attach` the SigmaASGIApp."""
        return ops_asgi_app(self.routes, fallback)

    def hooks(self, options: ServerOptions) -> ServerOptions:
        """``options`` with the dashboard's access rules around its authentication (its
        ``authenticate`` hook or its ``jwt``) and ``authorize_subscribe`` (what
        :meth:`server_options` adds besides the routes). The dashboard speaks the server's
        serializer when it is ``raw``, ``json`` or ``msgpack``; with another one the page says
        it cannot show this server and the feed publishes nothing."""
        self._serializer = self.feed.serializer = options.serializer.name
        inner = options.wrap_authenticate
        feed = self.feed

        def wrap(hook: AuthHook | None) -> AuthHook:
            # The dashboard's viewers first, then the app's rules (its JWT or its hook).
            return feed.authenticate(inner(hook) if inner is not None else hook)

        return dataclasses.replace(
            options, wrap_authenticate=wrap,
            authorize_subscribe=self.feed.authorize_subscribe(options.authorize_subscribe))

    def server_options(self, options: ServerOptions) -> ServerOptions:
        """``options`` with the ops routes in front of its ``http_handler`` and the dashboard's
        access rules around its hooks (:meth:`hooks`: the dashboard speaks the server's
        serializer)."""
        return dataclasses.replace(self.hooks(options),
                                   http_handler=self.routes(options.http_handler))

    def attach(self, server: Any, clock: Callable[[], float] | None = None) -> None:
        """Read ``server`` (either adapter's ``SigmaSocketServer``, or a ``SigmaASGIApp``);
        ``clock`` defaults to its adapter's (the running asyncio loop's time,
        ``trio.current_time``, or anyio's for the ASGI app)."""
        self._server = server
        self._clock = clock
        self.feed.attach()
        # A cluster engine: /readyz is 503 while it is unreachable, /metrics has its figures.
        options = getattr(server, "options", None)
        engine = getattr(options, "engine", None)
        if isinstance(engine, EngineProbe):
            self.health.set_engine_check(engine.is_ready)
            self.collector.set_engine(engine_report(engine))

    def separate_server(self, server_class: Callable[..., Any], *, host: str = "0.0.0.0",
                        port: int = 9090) -> Any:
        """A second ``server_class`` (the same adapter's ``SigmaSocketServer``) that serves only
        the ops routes on its own port: WebSocket upgrades there are refused with 403."""
        return server_class(ServerOptions(host=host, port=port, http_handler=self.routes(),
                                          allowed_origins=(), max_connections=64))

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        module = type(self._server).__module__
        if module.startswith("sigma_asgi"):  # asyncio or trio, whichever runs the ASGI server
            import anyio

            return anyio.current_time()
        if module.startswith("sigma_trio"):
            import trio

            return trio.current_time()
        import asyncio

        return asyncio.get_running_loop().time()
