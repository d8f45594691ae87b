"""The FastAPI example on N nodes sharing one Redis: rooms span nodes, a client resumes its
session on any node, presence is cluster-wide, and ``/readyz`` says whether the node should get
clients (503 while Redis is unreachable or the node shuts down).

Every node runs this module under any ASGI server, with the same Redis URL and its own node id::

    SIGMASOCKETS_REDIS_URL=redis://127.0.0.1:6379/0 SIGMASOCKETS_NODE_ID=a \\
        uvicorn examples.fastapi_app.cluster:app --port 8001
    SIGMASOCKETS_REDIS_URL=redis://127.0.0.1:6379/0 SIGMASOCKETS_NODE_ID=b \\
        hypercorn examples.fastapi_app.cluster:app --bind 127.0.0.1:8002 -k trio

* ``POST /rooms/{room}/messages`` publishes to a room (every node's subscribers get it, in
  the order Redis stored them);
* ``GET /rooms/{room}/presence`` lists the room's subscribers on every node;
* ``GET /livez``, ``GET /readyz``, ``GET /metrics`` are sigma_ops' routes;
* a WebSocket on any other path is SigmaSockets (a client's message to a room is published to
  it; to no room, echoed to its sender).

The server must send the lifespan (uvicorn, hypercorn and granian do by default): the Redis
engine's driver runs in it.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated

from fastapi import Body, FastAPI

from sigma_asgi import ClientSession, ServerOptions, SigmaASGIApp
from sigma_core.engine import ExternalEngineConfig
from sigma_ops import Ops
from sigma_redis import RedisEngine, RedisEngineConfig

__all__ = ["api", "app", "engine", "ops", "sigma"]

NODE = os.environ.get("SIGMASOCKETS_NODE_ID") or f"{socket.gethostname()}-{os.getpid()}"
engine = RedisEngine(RedisEngineConfig(
    url=os.environ.get("SIGMASOCKETS_REDIS_URL", "redis://127.0.0.1:6379/0")))
api = FastAPI(title="SigmaSockets + FastAPI, one node of several")
ops = Ops(node=NODE, dashboard=False)
sigma = SigmaASGIApp(ops.hooks(ServerOptions(
    engine=engine, engine_config=ExternalEngineConfig(node_id=NODE))), app=ops.asgi_app(api))
ops.attach(sigma)  # /readyz: 503 until Redis answers, and while it does not
#: What the ASGI server runs.
app = sigma


def on_message(client: ClientSession, data: bytes, topic: str) -> None:
    if topic:
        sigma.publish(topic, data)
    else:
        sigma.send_to_client(client, data)


sigma.on("message", on_message)


@api.post("/rooms/{room}/messages")
async def publish(room: str, body: Annotated[bytes, Body(media_type="application/octet-stream")]
                  ) -> dict[str, str]:
    # On a cluster engine the position is Redis': publish() returns (0, 0) at once and the
    # message reaches every subscriber, this node's too, once Redis holds it.
    sigma.publish(room, body)
    return {"node": NODE}


@api.get("/rooms/{room}/presence")
async def presence(room: str) -> dict[str, list[str] | str]:
    return {"node": NODE, "members": sorted(await sigma.cluster_presence(room))}


@api.get("/stats")
async def stats() -> dict[str, float | str]:
    s = sigma.get_stats()
    return {"node": NODE, "connected_clients": s.connected_clients}
