"""The live dashboard's data: node stats published over SigmaSockets itself.

Once a second (``interval``) :class:`DashboardFeed` samples the hub and publishes a JSON point
to the topic :data:`STATS_TOPIC` (``sigma-ops.nodes``); a viewer that subscribes first gets
this node's points of the last minutes (``keep``) in its inbox, so its charts are full at once.

**The cluster view goes through the cluster engine.** Every node publishes its points to the
same topic, so with a shared engine (Redis) a viewer on any node receives every node's points,
its own node's included, and the page aggregates them (``src/cluster.ts``: the nodes, their
totals, and a node marked down when no point of it has arrived for ``stale_after`` seconds,
by the viewer's own clock). Each point carries the node's name and an ``id`` unique to the
process, so two nodes with the same name are still two nodes. The topic is reserved to
viewers: :meth:`DashboardFeed.authorize_subscribe` lets only dashboard sessions subscribe to it
(and them to nothing else), and :meth:`DashboardFeed.authenticate` admits a viewer only with
the dashboard token when one is set. Viewers can send nothing that changes the feed: the feed
only publishes, and nothing a client sends is published to the topic.

``clients`` and ``sessions`` count every session, the viewers' own included (as the metrics
do); ``viewers`` says how many of them are dashboards. A point (all counters are totals since
the node started, rates per second over the last interval; ``interval`` is the node's)::

    {"type": "point", "t": 1733550000000, "node": "a", "id": "3f9c0a1b", "interval": 1.0,
     "uptime": 12.0, "draining": false,
     "connections": 3, "clients": 2, "sessions": 2, "viewers": 1, "messages_in_per_s": 4.0,
     "messages_out_per_s": 9.0, "deliveries_per_s": 9.0, "resumes": 1, "failed_resumes": 0,
     "failed_recoveries": 0, "lost_messages": 0, "slow_consumers": 0, "rate_limited": 0,
     "rtt_ms": 1.2, "rtt_p95_ms": 2.5}
"""

from __future__ import annotations

import hmac
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sigma_core.errors import LocalProtocolError
from sigma_core.hub import AuthAccept, AuthHook, AuthRefuse, AuthRequest, Hub, Session
from sigma_core.metrics import HistogramSnapshot

from .metrics import HubSource

__all__ = ["DASHBOARD_CLIENT_NAME", "DASHBOARD_SERIALIZERS", "STATS_TOPIC", "DashboardFeed"]

#: The topic every node's feed publishes its points to (viewers only): cluster-wide with a
#: shared engine.
STATS_TOPIC = "sigma-ops.nodes"
#: The ``client_info.name`` a dashboard viewer presents in its Hello.
DASHBOARD_CLIENT_NAME = "sigmasockets-dashboard"
_ROLE_KEY = "sigma_role"
_ROLE = "dashboard"

SubscribeHook = Callable[[Session, str], bool]


#: The payload serializers the dashboard page can read (the server's must be one of them).
DASHBOARD_SERIALIZERS = ("raw", "json", "msgpack")


class _Server(HubSource, Protocol):
    def publish(self, topic: str, data: Any) -> Any: ...
    def send_to_client(self, client: Session, data: Any) -> bool: ...
    def on(self, event: str, listener: Any) -> Any: ...


def _p95_ms(now: HistogramSnapshot, before: HistogramSnapshot | None) -> float | None:
    base = before.cumulative if before is not None else (0,) * len(now.cumulative)
    counts = [a - b for a, b in zip(now.cumulative, base, strict=True)]
    total = counts[-1]
    if total <= 0:
        return None
    for bound, cumulative in zip(now.bounds, counts, strict=False):
        if cumulative >= 0.95 * total:
            return bound * 1000
    return now.bounds[-1] * 1000  # above the last bound: report the bound, the most we know


class DashboardFeed:
    """``token``: when set, a viewer must send it as its auth token. ``enabled`` False refuses
    viewers (the page shows why) and publishes nothing. ``stale_after`` (seconds, at least two
    intervals): the viewers' rule for marking a node down, sent to them with the history."""

    def __init__(self, source: _Server, *, node: str = "", interval: float = 1.0,
                 keep: int = 300, token: str = "", enabled: bool = True,
                 stale_after: float = 5.0) -> None:
        if not interval > 0 or not math.isfinite(interval):
            raise ValueError(f"interval must be a finite number > 0, not {interval!r}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, not {keep!r}")
        if not stale_after >= 2 * interval or not math.isfinite(stale_after):
            raise ValueError(f"stale_after must be finite and at least 2 x interval "
                             f"({2 * interval:g} s), not {stale_after!r}")
        self._server = source
        #: The server's payload serializer: ``raw`` publishes JSON text as bytes; ``json`` and
        #: ``msgpack`` publish the points as values (the server encodes them); any other:
        #: nothing (the page cannot read it, and says so).
        self.serializer = "raw"
        self.node = node
        #: Unique to this process: tells apart two nodes that share a name.
        self.node_id = uuid.uuid4().hex[:8]
        self.interval = interval
        self.stale_after = stale_after
        self.enabled = enabled
        self._token = token.encode()
        self.points: deque[dict[str, Any]] = deque(maxlen=keep)
        self._last: tuple[float, int, int, int, HistogramSnapshot] | None = None

    # ---------------------------------------------------------------- access

    def is_viewer(self, session: Session) -> bool:
        return session.metadata.get(_ROLE_KEY) == _ROLE

    def authenticate(self, app_hook: AuthHook | None) -> AuthHook:
        """The app's authentication hook, with dashboard viewers decided here."""

        def authenticate(request: AuthRequest) -> AuthAccept | AuthRefuse:
            info = request.hello.client
            if info is None or info.name != DASHBOARD_CLIENT_NAME:
                return app_hook(request) if app_hook is not None else AuthAccept()
            if not self.enabled:
                return AuthRefuse(message="the dashboard is turned off on this server")
            if self._token and not hmac.compare_digest(
                    self._token, request.hello.auth_token.encode()):
                return AuthRefuse(message="the dashboard needs its token")
            return AuthAccept(identity="dashboard", metadata={_ROLE_KEY: _ROLE})

        return authenticate

    def authorize_subscribe(self, app_hook: SubscribeHook | None) -> SubscribeHook:
        """The app's subscribe check, with :data:`STATS_TOPIC` reserved to viewers and viewers
        kept out of every other topic."""

        def authorize(session: Session, topic: str) -> bool:
            viewer = self.is_viewer(session)
            if topic == STATS_TOPIC or viewer:
                return viewer and topic == STATS_TOPIC and self.enabled
            return app_hook(session, topic) if app_hook is not None else True

        return authorize

    def attach(self) -> None:
        """Send the recent points to each viewer that subscribes."""
        self._server.on("presence", self._on_presence)

    def _on_presence(self, topic: str, session: Session, joined: bool) -> None:
        if joined and topic == STATS_TOPIC and self.is_viewer(session) \
                and self.serializer in DASHBOARD_SERIALIZERS:
            self._server.send_to_client(session, self._payload(
                {"type": "history", "node": self.node, "id": self.node_id,
                 "interval": self.interval, "stale_after": self.stale_after,
                 "points": list(self.points)}))

    # ---------------------------------------------------------------- sampling

    def sample(self, hub: Hub, now: float, wall: float) -> dict[str, Any]:
        """One point: ``now`` on the hub's clock, ``wall`` in seconds since the epoch."""
        s = hub.stats(now)
        m = hub.metrics
        deliveries = sum(m.deliveries)
        rtt = m.heartbeat_rtt_seconds.snapshot()
        last = self._last
        if last is None or now <= last[0]:
            rates = (0.0, 0.0, 0.0)
            p95 = _p95_ms(rtt, None)
        else:
            dt = now - last[0]
            rates = ((s.messages_received - last[1]) / dt, (s.messages_sent - last[2]) / dt,
                     (deliveries - last[3]) / dt)
            p95 = _p95_ms(rtt, last[4])
        self._last = (now, s.messages_received, s.messages_sent, deliveries, rtt)
        point = {
            "type": "point", "t": int(wall * 1000), "node": self.node, "id": self.node_id,
            "interval": self.interval,
            "uptime": round(s.uptime, 3), "draining": hub.is_draining,
            "connections": hub.connection_count(), "clients": s.connected_clients,
            "sessions": s.sessions, "viewers": len(hub.presence(STATS_TOPIC)),
            "messages_in_per_s": round(rates[0], 2), "messages_out_per_s": round(rates[1], 2),
            "deliveries_per_s": round(rates[2], 2),
            "resumes": s.resumes, "failed_resumes": s.failed_resumes,
            "failed_recoveries": s.failed_recoveries, "lost_messages": m.lost_messages,
            "slow_consumers": s.slow_consumer_disconnects,
            "rate_limited": s.rate_limited_disconnects,
            "rtt_ms": round(s.average_latency * 1000, 3),
            "rtt_p95_ms": p95,
        }
        self.points.append(point)
        return point

    def tick(self, now: float) -> bool:
        """Sample and publish once (nothing before the server started or when disabled).
        False when the point could not be published (the cluster engine is unavailable: the
        point is kept for the history all the same, and the next tick tries again)."""
        hub = self._server.hub
        if hub is None or not self.enabled or self.serializer not in DASHBOARD_SERIALIZERS:
            return False
        point = self._payload(self.sample(hub, now, time.time()))
        try:
            self._server.publish(STATS_TOPIC, point)
        except LocalProtocolError:
            return False
        return True

    def _payload(self, obj: dict[str, Any]) -> Any:
        return _dumps(obj) if self.serializer == "raw" else obj

    async def run(self, clock: Callable[[], float],
                  sleep: Callable[[float], Awaitable[object]]) -> None:
        """Tick every ``interval`` until cancelled: ``clock``/``sleep`` are the adapter's
        (``loop.time``/``asyncio.sleep``, or ``trio.current_time``/``trio.sleep``)."""
        while True:
            self.tick(clock())
            await sleep(self.interval)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
