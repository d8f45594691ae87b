"""FastAPI and SigmaSockets in one ASGI app, on one port.

* ``POST /rooms/{room}/messages`` (the body is the message) publishes to a room and answers
  with the message's position; every client subscribed to the room gets it, and a client that
  was away gets it replayed when it resumes.
* ``GET /`` is a page that subscribes to a room with the TypeScript client (served from
  ``clients/js/dist`` once built: ``cd clients/js && npm ci && npm run build``).
* Every other WebSocket path is SigmaSockets. Clients log in with a cookie the REST side set
  (``POST /login``): the ``authenticate`` hook reads it from the ASGI scope.
* A client's message to a room is published to that room; to no room, echoed to its sender.

Run: ``uvicorn examples.fastapi_app.app:app --port 8000`` (or ``hypercorn
examples.fastapi_app.app:app --bind 127.0.0.1:8000 -k trio``, or ``granian --interface asgi
examples.fastapi_app.app:app``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Annotated

from fastapi import Body, FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from sigma_asgi import (
    ASGIAuthRequest,
    AuthAccept,
    AuthRefuse,
    AuthRequest,
    ClientSession,
    ServerOptions,
    SigmaASGIApp,
)

__all__ = ["api", "app", "sigma"]

ROOT = Path(__file__).resolve().parents[2]
#: Signs the login cookie (a real app: its session framework). Fixed per process.
_SECRET = os.urandom(32)


def _sign(user: str) -> str:
    return user + "." + hmac.new(_SECRET, user.encode(), hashlib.sha256).hexdigest()[:32]


def _user_of(cookie: str | None) -> str | None:
    if not cookie or "." not in cookie:
        return None
    user = cookie.rsplit(".", 1)[0]
    return user if hmac.compare_digest(_sign(user), cookie) else None


def authenticate(request: AuthRequest | ASGIAuthRequest) -> AuthAccept | AuthRefuse:
    """Guests are welcome; a valid login cookie makes the session its user's."""
    cookies = request.cookies if isinstance(request, ASGIAuthRequest) else {}
    user = _user_of(cookies.get("login"))
    return AuthAccept(identity=user or "guest")


api = FastAPI(title="SigmaSockets + FastAPI")
sigma = SigmaASGIApp(ServerOptions(authenticate=authenticate, presence_notifications=True),
                     app=api)
#: What the ASGI server runs: WebSockets to SigmaSockets, the rest (and the lifespan) to FastAPI.
app = sigma


def on_message(client: ClientSession, data: bytes, topic: str) -> None:
    if topic:
        sigma.publish(topic, data)
    else:
        sigma.send_to_client(client, data)


sigma.on("message", on_message)


@api.post("/login")
def login(user: Annotated[str, Body(embed=True, min_length=1, max_length=64)],
          response: Response) -> dict[str, str]:
    response.set_cookie("login", _sign(user), httponly=True, samesite="strict")
    return {"user": user}


@api.post("/rooms/{room}/messages")
async def publish(room: str, body: Annotated[bytes, Body(media_type="application/octet-stream")]
            ) -> dict[str, int]:
    position = sigma.publish(room, body)
    return {"epoch": position.epoch, "offset": position.offset,
            "subscribers": len(sigma.presence(room))}


@api.get("/stats")
async def stats() -> dict[str, float]:
    s = sigma.get_stats()
    return {"connected_clients": s.connected_clients, "messages_sent": s.messages_sent,
            "messages_received": s.messages_received}


PAGE = """<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>SigmaSockets room</title>
<script type="importmap">
{"imports": {"flatbuffers": "/vendor/flatbuffers/flatbuffers.js"}}
</script>
<h1>Room <span id="room"></span></h1>
<p id="status">connecting...</p>
<ul id="log"></ul>
<script type="module">
  import { SigmaSocketClient } from "/client/index.js";
  const room = new URLSearchParams(location.search).get("room") || "lobby";
  document.getElementById("room").textContent = room;
  const client = new SigmaSocketClient({ url: `ws://${location.host}/ws` });
  client.on("connection", (status) => {
    document.getElementById("status").textContent = status;
  });
  client.on("message", (data, id, timestamp, topic) => {
    const li = document.createElement("li");
    li.textContent = `${topic} #${id}: ${new TextDecoder().decode(data)}`;
    document.getElementById("log").append(li);
  });
  await client.connect();
  client.subscribe(room);
  window.sigmaClient = client;
</script>
"""


@api.get("/", response_class=HTMLResponse)
def page() -> str:
    return PAGE


# The TypeScript client, as built by `npm run build` in clients/js, and its one dependency.
_CLIENT = ROOT / "clients" / "js" / "dist" / "src"
_FLATBUFFERS = ROOT / "clients" / "js" / "node_modules" / "flatbuffers" / "mjs"
if _CLIENT.is_dir() and _FLATBUFFERS.is_dir():
    api.mount("/client", StaticFiles(directory=_CLIENT), name="client")
    api.mount("/vendor/flatbuffers", StaticFiles(directory=_FLATBUFFERS), name="flatbuffers")
