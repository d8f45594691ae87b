"""The adapters are mirror images: the same public names, the same methods with the same
signatures and defaults, so that code moves between asyncio and trio by changing an import.

What differs on purpose is each framework's idiom, listed here (a new difference fails until
it is listed with its reason): asyncio servers ``start()`` as a task, trio ones ``serve()`` in
a nursery (``task_status``); a trio client ``run()``s in a nursery. ``sigma_asgi``'s app
mirrors the server's commands (its transport is the ASGI server's: no ``start``/``port``).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import sigma_asgi
import sigma_asyncio
import sigma_trio

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
#: ASGI-app members the servers do not have yet (reported, not hidden).
ASGI_EXTRA = {"presence", "cluster_presence"}
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
