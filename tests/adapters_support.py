"""Backend shim for ``test_adapters.py``: one scenario, written once, runs on ``sigma_asyncio`` or
``sigma_trio`` depending on the ``anyio_backend`` it is given.

Everything here waits with anyio primitives, so it works on either event loop. Picking the
package is the only thing that depends on the backend, except :meth:`Host.start` (see there).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeAlias

import anyio
import pytest
from anyio.abc import ByteStream, Process, SocketAttribute, SocketStream, TaskGroup
from asgi_support import ASGI_HOSTS, ASGIServer, Backend

import sigma_asyncio
import sigma_trio
from sigma_core.api import Message
from sigma_core.connection import ClientConnection, ConnectionState
from sigma_core.hub import Session
from sigma_core.messages import Hello

__all__ = [
    "ALL_BACKENDS",
    "BACKENDS",
    "DEADLINE",
    "FAST",
    "LOCAL",
    "Client",
    "Host",
    "InteropServer",
    "Proxy",
    "Recorder",
    "Server",
    "any_server",
    "connected_client",
    "hosting",
    "interop_server",
    "make_client",
    "make_server",
    "next_message",
    "other",
    "package",
    "proxy_to",
    "raw_client",
    "server_logger",
    "serving",
    "session_of",
    "url",
]

LOCAL = "127.0.0.1"
#: Every wait in these tests is bounded by this many seconds.
DEADLINE = 10.0
BACKENDS = ("asyncio", "trio")
#: BACKENDS plus SigmaASGIApp hosted by each ASGI server (asgi_support.py), for the scenarios
#: that hold for any server (pytest ids: "asyncio", "trio", "uvicorn", "hypercorn-asyncio", ...).
ALL_BACKENDS = [*BACKENDS, *(Backend(anyio_name, asgi=host)
                             for host, anyio_name in ASGI_HOSTS.items())]
#: The scenario holds for any server: it runs on the native adapters and through SigmaASGIApp
#: under each ASGI server.
any_server = pytest.mark.parametrize("anyio_backend", ALL_BACKENDS, indirect=True,
                                     ids=[getattr(b, "asgi", None) or b for b in ALL_BACKENDS])
ROOT = Path(__file__).resolve().parent.parent
INTEROP_SERVER = Path(__file__).resolve().with_name("interop_server.py")

Server: TypeAlias = sigma_asyncio.SigmaSocketServer | sigma_trio.SigmaSocketServer | ASGIServer
Client: TypeAlias = sigma_asyncio.SigmaSocketClient | sigma_trio.SigmaSocketClient

#: Test servers: local, any free port, quick to tell clients to come back, quick to give up
#: on peers that do not close.
SERVER_DEFAULTS: dict[str, Any] = {"host": LOCAL, "port": 0, "shutdown_reconnect_after": 0.02,
                                   "shutdown_timeout": 2.0}
#: Reconnect quickly and for ever: the tests bound the time themselves.
FAST: dict[str, Any] = {"reconnect_interval": 0.02, "max_reconnect_delay": 0.1,
                        "max_reconnect_attempts": None}


def package(backend: str) -> Any:
    """The adapter package for an anyio backend name."""
    return {"asyncio": sigma_asyncio, "trio": sigma_trio}[backend]


def server_logger(backend: str) -> str:
    """The name of the logger the server of ``backend`` writes to."""
    return "sigma_asgi.server" if getattr(backend, "asgi", None) else f"sigma_{backend}.server"


def other(backend: str) -> str:
    """The other backend (for interop)."""
    return "trio" if backend == "asyncio" else "asyncio"


def make_server(backend: str, **options: Any) -> Server:
    """An unstarted server of ``backend`` with :data:`SERVER_DEFAULTS` under ``options``."""
    asgi = getattr(backend, "asgi", None)
    if asgi is not None:
        return ASGIServer(asgi, **{**SERVER_DEFAULTS, **options})
    server: Server = package(backend).SigmaSocketServer(**{**SERVER_DEFAULTS, **options})
    return server


def make_client(backend: str, url: str, **options: Any) -> Client:
    """An unconnected client of ``backend`` (:data:`FAST` reconnects under ``options``)."""
    client: Client = package(backend).SigmaSocketClient(url, **{**FAST, **options})
    return client


def url(target: Server | int, scheme: str = "ws") -> str:
    port = target if isinstance(target, int) else target.port
    return f"{scheme}://{LOCAL}:{port}/"


@asynccontextmanager
async def serving(backend: str, **options: Any) -> AsyncIterator[Server]:
    """``async with serving(backend, **options) as server:`` -- the adapter's own ``async with``."""
    async with make_server(backend, **options) as server:
        yield server


@asynccontextmanager
async def connected_client(backend: str, url: str, **options: Any) -> AsyncIterator[Client]:
    """A client connected on enter and disconnected on exit (the adapter's ``async with``)."""
    async with make_client(backend, url, **options) as client:
        yield client


class Host:
    """Runs a server so that it can be stopped and started again while clients stay up
    (``async with server:`` cannot: its block would have to end before the clients' blocks)."""

    def __init__(self, server: Server, task_group: TaskGroup) -> None:
        self.server = server
        self._task_group = task_group

    async def start(self) -> None:
        """Bind (the same port again after :meth:`stop`, keeping the hub)."""
        # The one place the backends differ: asyncio's server starts itself; trio's serves
        # in a nursery of the caller's (the spec's `await nursery.start(server.serve)`).
        if isinstance(self.server, sigma_trio.SigmaSocketServer | ASGIServer):
            await self._task_group.start(self.server.serve)
        else:
            await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()


@asynccontextmanager
async def hosting(backend: str, **options: Any) -> AsyncIterator[Host]:
    """A started :class:`Host`; the server is stopped when the block ends."""
    server = make_server(backend, **options)
    async with anyio.create_task_group() as task_group:
        host = Host(server, task_group)
        await host.start()
        try:
            yield host
        finally:
            await server.stop()


class Recorder:
    """Records the callbacks of a server or client and lets a test await them."""

    def __init__(self, target: Server | Client, *names: str) -> None:
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in names}
        #: Callback names in the order they fired.
        self.order: list[str] = []
        self._changed: anyio.Event | None = None
        for name in names:
            target.on(name, partial(self._record, name))

    def _record(self, name: str, *args: Any) -> None:
        self.calls[name].append(args)
        self.order.append(name)
        if self._changed is not None:
            self._changed.set()

    def matching(self, name: str,
                 where: Callable[..., bool] | None = None) -> list[tuple[Any, ...]]:
        return [args for args in self.calls[name] if where is None or where(*args)]

    async def wait(self, name: str, count: int = 1,
                   where: Callable[..., bool] | None = None) -> tuple[Any, ...]:
        """The ``count``-th call of ``name`` (matching ``where``), once it has happened."""
        while True:
            found = self.matching(name, where)
            if len(found) >= count:
                return found[count - 1]
            if self._changed is None or self._changed.is_set():
                self._changed = anyio.Event()
            await self._changed.wait()


async def next_message(client: Client) -> Message:
    async for message in client:
        return message
    raise AssertionError("the message stream ended")


def session_of(server: Server, client: Client) -> Session:
    """The server's session for a connected client."""
    info = client.get_session()
    assert info is not None
    session = server.get_client(info.id)
    assert session is not None
    return session


# ----------------------------------------------------------------------------- raw peers


@asynccontextmanager
async def raw_client(port: int, *, rcvbuf: int | None = None
                     ) -> AsyncIterator[tuple[SocketStream, ClientConnection]]:
    """A SigmaSockets client made of the core's ClientConnection over a bare socket, welcomed,
    that reads nothing more unless the test does: for misbehaving on purpose."""
    sock = socket.socket()
    if rcvbuf is not None:  # before connecting, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    try:
        await anyio.to_thread.run_sync(sock.connect, (LOCAL, port))
    except BaseException:
        sock.close()
        raise
    async with await SocketStream.from_socket(sock) as stream:
        conn = ClientConnection(host=f"{LOCAL}:{port}", hello=Hello(), now=anyio.current_time())
        await stream.send(b"".join(conn.data_to_send()))
        while conn.state is not ConnectionState.OPEN:
            conn.receive_data(await stream.receive(), anyio.current_time())
            out = conn.data_to_send()
            if out:
                await stream.send(b"".join(out))
        yield stream, conn


def _reset_on_close(stream: ByteStream) -> None:
    """Make closing ``stream`` send RST instead of FIN (an abrupt cut)."""
    with suppress(Exception):
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Direction = Literal["up", "down"]


class _Link:
    """One relayed connection: cancelling ``scope`` ends it, with RST unless ``reset`` is off."""

    __slots__ = ("reset", "scope")

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.reset = True


class Proxy:
    """A TCP relay in front of a server: a test can cut the connections through it (RST), or
    cut one after so many more bytes in one direction (mid-message), and refuse reconnects for
    a while."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        #: While True, new connections are reset at once (the client keeps retrying).
        self.refusing = False
        #: Connections accepted so far.
        self.accepted = 0
        self._links: set[_Link] = set()
        self._budget: dict[Direction, int] = {}

    @property
    def url(self) -> str:
        return f"ws://{LOCAL}:{self.port}/"

    def cut(self) -> None:
        """Reset every connection through the proxy now."""
        for link in list(self._links):
            link.reset = True
            link.scope.cancel()

    def cut_after(self, direction: Direction, nbytes: int) -> None:
        """Forward ``nbytes`` more bytes in ``direction`` (up: to the server), then close the
        connection both ways with FIN, so that those bytes surely arrive first."""
        self._budget[direction] = nbytes

    async def _handle(self, downstream: SocketStream) -> None:
        self.accepted += 1
        link = _Link()
        upstream: SocketStream | None = None
        self._links.add(link)
        try:
            with link.scope:
                if self.refusing:
                    return
                try:
                    upstream = await anyio.connect_tcp(LOCAL, self.target_port)
                except OSError:
                    return
                async with anyio.create_task_group() as pumps:
                    pumps.start_soon(self._pump, downstream, upstream, "up", link)
                    pumps.start_soon(self._pump, upstream, downstream, "down", link)
                link.reset = False  # both directions ended by themselves
        finally:
            self._links.discard(link)
            with anyio.CancelScope(shield=True):  # close both, even when cancelled from outside
                for stream in (downstream, upstream):
                    if stream is not None:
                        if link.reset:
                            _reset_on_close(stream)
                        await anyio.aclose_forcefully(stream)

    async def _pump(self, source: SocketStream, sink: SocketStream, direction: Direction,
                    link: _Link) -> None:
        try:
            async for chunk in source:
                budget = self._budget.get(direction)
                if budget is not None and len(chunk) >= budget:
                    del self._budget[direction]
                    if budget:
                        await sink.send(chunk[:budget])
                    link.reset = False
                    link.scope.cancel()
                    return
                if budget is not None:
                    self._budget[direction] = budget - len(chunk)
                await sink.send(chunk)
            await sink.send_eof()  # pass the half-close on: the server closes first
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            link.scope.cancel()  # one side was reset: reset the other


@asynccontextmanager
async def proxy_to(port: int) -> AsyncIterator[Proxy]:
    """A :class:`Proxy` on a free local port relaying to ``port``."""
    proxy = Proxy(port)
    async with await anyio.create_tcp_listener(local_host=LOCAL, local_port=0) as listener, \
            anyio.create_task_group() as task_group:
        proxy.port = listener.extra(SocketAttribute.local_port)
        task_group.start_soon(listener.serve, proxy._handle)
        try:
            yield proxy
        finally:
            task_group.cancel_scope.cancel()


# ----------------------------------------------------------------------------- subprocess server


class InteropServer:
    """``tests/interop_server.py`` running as a subprocess (see that file for its behaviour)."""

    def __init__(self, backend: str, port: int, process: Process) -> None:
        self.backend = backend
        self.port = port
        self.process = process

    async def terminate(self) -> int:
        """SIGTERM (graceful stop); returns the exit status."""
        self.process.terminate()
        return await self.process.wait()

    async def kill(self) -> None:
        """SIGKILL: the process and everything it remembered are gone at once."""
        self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def interop_server(backend: str, port: int = 0) -> AsyncIterator[InteropServer]:
    """Start ``interop_server.py --backend BACKEND`` and wait until it prints its port."""
    process = await anyio.open_process(
        [sys.executable, str(INTEROP_SERVER), "--backend", backend, "--port", str(port)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None)
    try:
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            line += await process.stdout.receive()
        yield InteropServer(backend, int(line), process)
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.aclose()
