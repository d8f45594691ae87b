"""``SigmaASGIApp`` under real ASGI servers, in-process, for the adapter scenario suite.

:class:`ASGIServer` looks like a ``SigmaSocketServer`` to the scenarios (``port``, ``start`` /
``serve`` / ``stop``, ``async with``, and every command and callback of the app, delegated): it
runs uvicorn or hypercorn in the test's own event loop on a listening socket of its own on a
free port (the same port again after a restart), so the scenarios can reach the app object.
``stop()`` is the app's graceful stop (Goodbye, close 1001) followed by the server's shutdown.
The servers that cannot run in-process (uvicorn on uvloop, hypercorn's trio worker from its
command line, granian) run as subprocesses in ``test_asgi.py``.
"""

from __future__ import annotations

import socket
from contextlib import suppress
from typing import Any

import anyio
import anyio.abc

from sigma_asgi import SigmaASGIApp
from sigma_asgi.app import ASGIApp

__all__ = ["ASGI_HOSTS", "ASGIServer", "Backend"]

#: ASGI servers the scenario suite runs on, with the anyio backend each runs on.
ASGI_HOSTS = {"uvicorn": "asyncio", "hypercorn-asyncio": "asyncio", "hypercorn-trio": "trio"}

_STARTUP_POLL = 0.01


class Backend(str):
    """An anyio backend name (what anyio's pytest plugin reads) that may carry an ASGI server
    to host the app in: ``Backend("asyncio", asgi="uvicorn")``."""

    asgi: str | None

    def __new__(cls, name: str, asgi: str | None = None) -> Backend:
        self = super().__new__(cls, name)
        self.asgi = asgi
        return self


class ASGIServer:
    """A :class:`SigmaASGIApp` served by ``host`` (a key of :data:`ASGI_HOSTS`)."""

    def __init__(self, server: str, /, *, port: int = 0, sigma: SigmaASGIApp | None = None,
                 asgi: ASGIApp | None = None, lifespan: bool = True, **options: Any) -> None:
        """``sigma``: the app to serve (default: one made of ``options``); ``asgi``: what the
        server runs, when the app sits inside another (default: ``sigma``). ``lifespan``: the
        server sends the lifespan to ``sigma`` (start-up waits for it)."""
        options.pop("host", None)
        if options.get("ssl") is not None:
            raise ValueError("TLS is the ASGI server's business: not hosted here")
        options.pop("ssl", None)
        self.host = server
        self.app = sigma if sigma is not None else SigmaASGIApp(**options)
        self._asgi: ASGIApp = asgi if asgi is not None else self.app
        self._lifespan = lifespan
        self._port = port
        self._stop: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._group: anyio.abc.TaskGroup | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    @property
    def port(self) -> int:
        return self._port

    def _listen(self) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        return sock

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
                    ) -> None:
        """Serve until :meth:`stop`; reports the port once the lifespan startup is done."""
        sock = self._listen()
        self._stop = stop = anyio.Event()
        self._stopped = stopped = anyio.Event()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run_server, sock, stop)
                while self._lifespan and (self.app.hub is None or not self.app._accepting):
                    await anyio.sleep(_STARTUP_POLL)
                task_status.started(self._port)
        finally:
            with suppress(OSError):  # hypercorn closes the descriptor it was given
                sock.close()
            stopped.set()

    async def _run_server(self, sock: socket.socket, stop: anyio.Event) -> None:
        if self.host == "uvicorn":
            import uvicorn

            config = uvicorn.Config(self._asgi, lifespan="on" if self._lifespan else "off",
                                    log_level="warning",
                                    ws="websockets-sansio")
            server = uvicorn.Server(config)

            async def trigger() -> None:
                await stop.wait()
                server.should_exit = True

            async with anyio.create_task_group() as group:
                group.start_soon(trigger)
                await server.serve(sockets=[sock])
                group.cancel_scope.cancel()
            return
        from hypercorn.config import Config

        hyper = Config()
        hyper.bind = [f"fd://{sock.fileno()}"]
        hyper.graceful_timeout = 1.0
        hyper.accesslog = None
        hyper.errorlog = None
        if self.host == "hypercorn-trio":
            from hypercorn.trio import serve as trio_serve

            await trio_serve(self._asgi, hyper, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
        else:
            from hypercorn.asyncio import serve as asyncio_serve

            await asyncio_serve(self._asgi, hyper, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    async def start(self) -> None:
        """For ``async with``: serve in a task group of our own."""
        assert self._group is not None
        await self._group.start(self.serve)

    async def stop(self) -> None:
        """The app's graceful stop, then the server's shutdown (its socket closes)."""
        if self._stop is None or self._stopped is None:
            return
        await self.app.stop()
        self._stop.set()
        await self._stopped.wait()
        self._stop = None

    async def __aenter__(self) -> ASGIServer:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        try:
            await self.start()
        except BaseException as exc:
            await self._group.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.stop()
        finally:
            group, self._group = self._group, None
            assert group is not None
            await group.__aexit__(*exc_info)
