"""The adapters are mirror images: the same public names, the same methods with the same
signatures and defaults, so that code moves between asyncio and trio by changing an import.

What differs on purpose is each framework's idiom, listed here (a new difference fails until
it is listed with its reason): asyncio servers ``start()`` as a task, trio ones ``serve()`` in
a nursery (``task_status``); a trio client ``run()``s in a nursery. ``sigma_asgi``'s app
mirrors the server's commands (its transport is the ASGI server's: no ``start``/``port``).
"""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path
from typing import Any

import pytest

import sigma_asgi
import sigma_asyncio
import sigma_trio
from sigma_core import api
from sigma_core.api import ClientCommands, ServerCommands
from sigma_core.logs import PeerNames

#: Public members one adapter has and the other has not, by design (the framework's idiom).
IDIOMS: dict[str, set[str]] = {
    "sigma_asyncio.SigmaSocketServer": {"start"},
    "sigma_trio.SigmaSocketServer": {"serve"},
    "sigma_asyncio.SigmaSocketClient": set(),
    "sigma_trio.SigmaSocketClient": {"run"},
}
#: Names in one package's __all__ only: asyncio's ``run`` (``asyncio.run`` on uvloop when
#: installed; trio has ``trio.run``).
PACKAGE_IDIOMS = {"sigma_asyncio": {"run"}, "sigma_trio": set[str]()}
#: SigmaSocketServer members the ASGI app does not have: it is served, it does not listen.
NOT_ON_ASGI = {"start", "serve", "port"}
#: ASGI-app members the servers do not have yet (reported, not hidden): the awaitable form of
#: request_presence (an ASGI app's endpoints are async).
ASGI_EXTRA = {"cluster_presence"}
DUNDERS = ("__init__", "__aenter__", "__aexit__", "__aiter__", "__anext__")


def surface(cls: type[Any]) -> dict[str, str]:
    """Public members (and the context/iterator protocol) with their signatures, defaults
    included; ``Self`` and the class's own name read the same."""
    members: dict[str, str] = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") and name not in DUNDERS:
            continue
        try:
            signature = str(inspect.signature(member))
        except (TypeError, ValueError):
            signature = type(member).__name__  # a property or attribute
        members[name] = signature.replace(f"'{cls.__name__}'", "'Self'")
    return members


def test_packages_export_the_same_names() -> None:
    asyncio_names = set(sigma_asyncio.__all__) - PACKAGE_IDIOMS["sigma_asyncio"]
    trio_names = set(sigma_trio.__all__) - PACKAGE_IDIOMS["sigma_trio"]
    assert asyncio_names == trio_names


@pytest.mark.parametrize("name", ["SigmaSocketServer", "SigmaSocketClient"])
def test_classes_have_the_same_members_signatures_and_defaults(name: str) -> None:
    a = surface(getattr(sigma_asyncio, name))
    t = surface(getattr(sigma_trio, name))
    for member in IDIOMS[f"sigma_asyncio.{name}"]:
        assert a.pop(member)  # still there: else drop it from IDIOMS
    for member in IDIOMS[f"sigma_trio.{name}"]:
        assert t.pop(member)
    assert a == t


def test_asgi_app_mirrors_the_server_commands() -> None:
    server = surface(sigma_asyncio.SigmaSocketServer)
    app = surface(sigma_asgi.SigmaASGIApp)
    for member in NOT_ON_ASGI:
        server.pop(member, None)
    for member in ASGI_EXTRA:
        assert app.pop(member)
    # The app takes the host's ASGI app to wrap (app=...) besides the server's options.
    assert app.pop("__init__").replace("*, app: 'ASGIApp | None' = None, ", "") \
        == server.pop("__init__")
    assert app == server


def test_shared_options_have_the_same_defaults() -> None:
    # Both adapters take sigma_core.api's option classes: one definition, one set of defaults.
    for name in ("ServerOptions", "ClientOptions"):
        assert getattr(sigma_asyncio, name) is getattr(sigma_trio, name)
    assert sigma_asgi.ServerOptions is sigma_asyncio.ServerOptions


SERVERS: dict[str, Any] = {
    "sigma_asyncio": sigma_asyncio.SigmaSocketServer,
    "sigma_trio": sigma_trio.SigmaSocketServer,
    "sigma_asgi": sigma_asgi.SigmaASGIApp,
}
CLIENTS: dict[str, Any] = {
    "sigma_asyncio": sigma_asyncio.SigmaSocketClient,
    "sigma_trio": sigma_trio.SigmaSocketClient,
}
ROOT = Path(__file__).resolve().parent.parent


def _public(cls: type[Any]) -> list[str]:
    return [name for name in vars(cls) if not name.startswith("_")]


@pytest.mark.parametrize("package", sorted(SERVERS))
def test_server_commands_are_written_once(package: str) -> None:
    # Every command and query is sigma_core.api.ServerCommands' own: an adapter that writes
    # one again (and lets it drift) fails here. sigma_asgi wraps the hub commands to run them
    # on its event loop; the wrapped function is still the shared one.
    cls = SERVERS[package]
    for name in _public(ServerCommands):
        member = inspect.getattr_static(cls, name)
        member = getattr(member, "__wrapped__", member)
        assert member is vars(ServerCommands)[name], f"{package}: {name} is redefined"


@pytest.mark.parametrize("package", sorted(CLIENTS))
def test_client_commands_are_written_once(package: str) -> None:
    cls = CLIENTS[package]
    for name in _public(ClientCommands):
        assert inspect.getattr_static(cls, name) is vars(ClientCommands)[name], (
            f"{package}: {name} is redefined")


def test_default_options_are_the_same_everywhere() -> None:
    # One definition of the options (sigma_core.api): an adapter built without options has
    # exactly the defaults of ServerOptions()/ClientOptions(url) -- nothing overridden.
    for cls in SERVERS.values():
        assert cls().options == api.ServerOptions(), cls
    for cls in CLIENTS.values():
        assert cls("ws://127.0.0.1:1/").options == api.ClientOptions(url="ws://127.0.0.1:1/")
    assert api.ServerOptions().close_timeout == api.ClientOptions(url="ws://h/").close_timeout \
        == api.CLOSE_TIMEOUT


def test_internal_names_mean_the_same_thing() -> None:
    # conn_id -> the connection's I/O object: ``_peers``; conn_id -> its address for the log:
    # ``_addresses``; listener errors go to the adapter's logger, named the same way.
    for package, cls in SERVERS.items():
        server = cls()
        assert isinstance(server._peers, dict), package
        assert isinstance(server._addresses, dict | PeerNames), package
        assert server._emitter._logger is logging.getLogger(f"{package}.server")
    for package, cls in CLIENTS.items():
        client = cls("ws://127.0.0.1:1/")
        assert client._emitter._logger is logging.getLogger(f"{package}.client")
    owners = {cls()._emitter._owner for cls in SERVERS.values()}
    assert owners == {"SigmaSocketServer", "SigmaASGIApp"}


@pytest.mark.parametrize("package", [*sorted(SERVERS), "sigma_trio/client", "sigma_asyncio/client"])
def test_adapters_hold_no_copy_of_shared_code(package: str) -> None:
    # What sigma_core.api holds once is not defined again in an adapter module: the client
    # reference types and their id helpers, a close timeout of its own, a listener-error
    # reporter of its own.
    paths = [ROOT / f"{package}.py"] if "/" in package else sorted((ROOT / package).glob("*.py"))
    shared = {"ClientRef", "Exclude", "_id", "_ids", "_session_id", "_session_ids",
              "_CLOSE_TIMEOUT", "_report", "_log_listener_error"}
    for path in paths:
        tree = ast.parse(path.read_text())
        defined = {node.name for node in ast.walk(tree)
                   if isinstance(node, ast.FunctionDef | ast.ClassDef)}
        defined |= {target.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        assert not defined & shared, f"{path.name}: {sorted(defined & shared)}"


def test_a_raising_listener_goes_to_the_error_listeners_with_its_event_named() -> None:
    emitter = api.EventEmitter(logger=logging.getLogger("test.mirror"), owner="SigmaSocketServer")
    seen: list[BaseException] = []
    failure = RuntimeError("boom")

    def boom(*_: object) -> None:
        raise failure

    emitter.on("connection", boom)
    emitter.on("connection", lambda *_: seen.append(KeyError("second listener ran")))
    emitter.on("error", seen.append)
    emitter.emit("connection", "session")
    assert seen[0] is failure
    assert "raised by a SigmaSocketServer 'connection' listener" in failure.__notes__
    assert isinstance(seen[1], KeyError)
