"""The operator's routes as an ASGI app, for a ``sigma_asgi.SigmaASGIApp`` (which leaves HTTP
to its inner app): ``SigmaASGIApp(options, app=ops.asgi_app(web))``.

GET and HEAD of ``/livez``, ``/readyz``, ``/metrics`` and the dashboard are answered here by the
same :class:`~sigma_ops.routes.OpsRoutes` the native adapters serve; every other request (and
the lifespan) goes to ``fallback``, or gets 404 without one. The query string is ignored, as on
the native adapters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sigma_core.api import HttpRequest, HttpResponse

from .routes import OpsRoutes

__all__ = ["ops_asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def ops_asgi_app(routes: Callable[[Callable[[HttpRequest], HttpResponse]], OpsRoutes],
                 fallback: ASGIApp | None) -> ASGIApp:
    """``routes(passthrough)`` builds the routes with a fallback handler; what it hands to
    ``passthrough`` goes to the ASGI ``fallback`` instead."""
    passed = HttpResponse(status=404, headers=(("content-type", "text/plain; charset=utf-8"),),
                          body=b"not found\n")
    handler = routes(lambda request: passed)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            path = scope.get("path") or "/"
            query = scope.get("query_string", b"")
            if query:
                path += "?" + bytes(query).decode("latin-1")
            headers = tuple((bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1"))
                            for k, v in scope.get("headers", ()))
            response = handler(HttpRequest(method=scope["method"], path=path, headers=headers))
            if response is not passed or fallback is None:
                body = b"" if scope["method"] == "HEAD" else response.body
                await send({"type": "http.response.start", "status": response.status,
                            "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                        for k, v in response.headers]
                            + [(b"content-length", str(len(response.body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        if fallback is not None:
            await fallback(scope, receive, send)
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", b"10")]})
            await send({"type": "http.response.body", "body": b"not found\n"})

    return app
