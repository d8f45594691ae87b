"""SigmaSockets on trio: real sockets, nurseries and cancel scopes around the sans-IO core.

Server::

    async with SigmaSocketServer(host="127.0.0.1", port=8080) as server:
        server.on("message", lambda client, data, topic: server.broadcast(data))
        await trio.sleep_forever()

Client::

    async with SigmaSocketClient("ws://127.0.0.1:8080/") as client:
        client.send(b"hello")
        async for message in client:
            print(message.data)

Both also run inside a nursery you own: ``await nursery.start(server.serve)`` /
``await nursery.start(client.run)``.
"""

from __future__ import annotations

from sigma_core.api import (
    ClientOptions,
    HttpRequest,
    HttpResponse,
    Message,
    ReconnectInfo,
    ServerOptions,
    SessionInfo,
)
from sigma_core.client import ConnectionStatus
from sigma_core.errors import (
    ConnectionFailed,
    LocalProtocolError,
    RecoveryFailedError,
    ServerError,
    SessionLostError,
    SigmaError,
)
from sigma_core.hub import ServerStats
from sigma_core.hub import Session as ClientSession

from .client import SigmaSocketClient
from .server import SigmaSocketServer

__all__ = [
    "ClientOptions",
    "ClientSession",
    "ConnectionFailed",
    "ConnectionStatus",
    "HttpRequest",
    "HttpResponse",
    "LocalProtocolError",
    "Message",
    "ReconnectInfo",
    "RecoveryFailedError",
    "ServerError",
    "ServerOptions",
    "ServerStats",
    "SessionInfo",
    "SessionLostError",
    "SigmaError",
    "SigmaSocketClient",
    "SigmaSocketServer",
]
