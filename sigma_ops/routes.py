"""The operator's HTTP routes, as an ``http_handler`` for either adapter.

``OpsRoutes(...)`` answers ``/metrics`` (Prometheus text format), ``/livez``, ``/readyz`` and
the dashboard (``/dashboard``, its script and styles) and hands every other path to ``fallback``
(the app's own handler, e.g. the chat's static files) or answers 404. The query string is
ignored: no route takes parameters. Methods other than GET and HEAD never reach a handler: the
core answers them with 405 (``Allow: GET, HEAD``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from sigma_core.api import HttpRequest, HttpResponse

from .health import Health

__all__ = ["DASHBOARD_PATH", "OpsRoutes"]

#: Where the dashboard page is served (its assets under ``/dashboard/``).
DASHBOARD_PATH = "/dashboard"
#: The dashboard's built files, shipped inside the package (read from the file system, not
#: through ``importlib.resources``: that import cost the broadcast, docs/operations.md).
_DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
_ASSETS = {"dashboard.js": "text/javascript; charset=utf-8",
           "dashboard.css": "text/css; charset=utf-8"}
_NO_STORE = ("cache-control", "no-store")


def _text(status: int, body: str) -> HttpResponse:
    return HttpResponse(status=status, body=body.encode(),
                        headers=(("content-type", "text/plain; charset=utf-8"), _NO_STORE))


class OpsRoutes:
    """``registry``: what ``/metrics`` exports (None: no ``/metrics``, 404). ``dashboard``:
    serve the page. ``fallback``: the app's handler for every other path. ``serializer``: the
    name of the server's payload serializer, told to the page (its client must send the same
    in its Hello, and it reads the feed's points with it)."""

    def __init__(self, health: Health, *, registry: CollectorRegistry | None = None,
                 dashboard: bool = True,
                 fallback: Callable[[HttpRequest], HttpResponse] | None = None,
                 serializer: str = "raw") -> None:
        self._health = health
        self._serializer = serializer
        self._registry = registry
        self._dashboard = dashboard
        self._fallback = fallback
        self._assets: dict[str, bytes] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path.split("?", 1)[0]
        if path == "/livez":
            return _text(200, "ok\n")
        if path == "/readyz":
            ready, why = self._health.readiness()
            return _text(200 if ready else 503, why + "\n")
        if path == "/metrics" and self._registry is not None:
            return HttpResponse(status=200, body=generate_latest(self._registry),
                                headers=(("content-type", CONTENT_TYPE_LATEST), _NO_STORE))
        if self._dashboard and (path in (DASHBOARD_PATH, DASHBOARD_PATH + "/")
                                or path.startswith(DASHBOARD_PATH + "/")):
            return self._dashboard_file(path[len(DASHBOARD_PATH):].lstrip("/") or "index.html")
        if self._fallback is not None:
            return self._fallback(request)
        return _text(404, "not found\n")

    def _dashboard_file(self, name: str) -> HttpResponse:
        if name == "index.html":
            kind = "text/html; charset=utf-8"
        elif name in _ASSETS:
            kind = _ASSETS[name]
        else:
            return _text(404, "not found\n")
        body = self._assets.get(name)
        if body is None:
            body = (_DASHBOARD_DIR / name).read_bytes()
            if name == "index.html":
                # (A checked name: a-z 0-9 . _ + -, nothing to escape.)
                body = body.replace(b'content="raw"', b'content="%s"' % self._serializer.encode())
            self._assets[name] = body
        return HttpResponse(status=200, body=body, headers=(
            ("content-type", kind), _NO_STORE,
            ("content-security-policy", "default-src 'self'; connect-src 'self' ws: wss:; "
             "img-src 'self' data:; style-src 'self'"),
            ("x-content-type-options", "nosniff")))
