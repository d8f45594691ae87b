"""SigmaSockets on asyncio (uvloop when installed): ``SigmaSocketServer`` and
``SigmaSocketClient``, thin adapters over the sans-IO ``sigma_core``."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Coroutine
from typing import Any, TypeVar

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
    "run",
]

_T = TypeVar("_T")


def run(main: Coroutine[Any, Any, _T], *, use_uvloop: bool = True) -> _T:
    """``asyncio.run(main)``, on uvloop's event loop when it is installed and ``use_uvloop``."""
    if use_uvloop:
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            result: _T = uvloop.run(main)
            return result
    return asyncio.run(main)
