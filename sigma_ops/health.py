"""Liveness and readiness, for load balancers and Kubernetes probes.

``/livez`` answers 200 while the process serves HTTP at all. ``/readyz`` answers 200 only while
the node should get new clients: started, not shutting down (:meth:`Health.begin_shutdown`,
called on SIGTERM *before* the drain starts, so the load balancer stops sending clients while
the node still says goodbye to its own), not draining, and its cluster engine reachable when one
is configured (:meth:`Health.set_engine_check`, the hook the Redis engine provides).
"""

from __future__ import annotations

from collections.abc import Callable

from .metrics import HubSource

__all__ = ["Health"]


class Health:
    def __init__(self, source: HubSource) -> None:
        self._source = source
        self._shutting_down = False
        self._engine_check: Callable[[], bool] | None = None

    def set_engine_check(self, check: Callable[[], bool] | None) -> None:
        """Register the cluster engine's reachability probe (None: no engine). It runs on each
        ``/readyz`` request: keep it a read of state the engine already keeps."""
        self._engine_check = check

    def begin_shutdown(self) -> None:
        """From now on the node is not ready (SIGTERM arrived); liveness is unchanged."""
        self._shutting_down = True

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def readiness(self) -> tuple[bool, str]:
        """(ready, why not) — the reason is the body of a 503 ``/readyz``."""
        hub = self._source.hub
        if hub is None:
            return False, "not started"
        if self._shutting_down:
            return False, "shutting down"
        if hub.is_draining:
            return False, "draining"
        check = self._engine_check
        if check is not None:
            try:
                reachable = bool(check())
            except Exception as exc:  # the engine's probe: a failure is "not reachable"
                return False, f"cluster engine check failed: {type(exc).__name__}"
            if not reachable:
                return False, "cluster engine unreachable"
        return True, "ready"
