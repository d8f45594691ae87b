"""SigmaSockets as an ASGI 3 application: mount it in FastAPI, Starlette or Django and serve it
with uvicorn, hypercorn or granian (asyncio or trio: written on anyio). See docs/asgi.md."""

from __future__ import annotations

from sigma_core.api import Message, ServerOptions
from sigma_core.hub import AuthAccept, AuthRefuse, AuthRequest, ServerStats
from sigma_core.hub import Session as ClientSession

from .app import ASGIAuthRequest, ClusterPresenceError, SigmaASGIApp, asgi_scope

__all__ = [
    "ASGIAuthRequest",
    "AuthAccept",
    "AuthRefuse",
    "AuthRequest",
    "ClientSession",
    "ClusterPresenceError",
    "Message",
    "ServerOptions",
    "ServerStats",
    "SigmaASGIApp",
    "asgi_scope",
]
