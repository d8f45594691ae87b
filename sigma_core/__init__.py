"""SigmaSockets' sans-IO core: bytes in, events and bytes out.

Nothing here does I/O, reads a clock or draws randomness: time arrives as ``now`` arguments and
entropy through injected objects, so every behaviour can be replayed deterministically.

In a source checkout (compiled in place), importing the package first checks that no compiled
module (mypyc, ``setup.py``) is older than its source: Python imports ``hub.cpython-*.so`` in
preference to ``hub.py``, so after an edit without a rebuild the old code would run silently.
That raises :class:`ImportError` naming the sources; rebuild (``bash scripts/build.sh``) or
delete the ``.so`` files (pure Python).
"""

from __future__ import annotations

from ._version import VERSION as __version__

__all__: list[str] = ["__version__"]


def _check_compiled_build() -> None:
    from importlib.machinery import EXTENSION_SUFFIXES
    from pathlib import Path

    package = Path(__file__).resolve().parent
    if not (package.parent / "setup.py").is_file():
        # Installed from a wheel: built in one go, and the installer writes sources and
        # compiled modules in any order. Only an in-place build can go stale.
        return
    shims: set[Path] = set()  # (".so" also matches ".cpython-311-x86_64-linux-gnu.so")
    for suffix in EXTENSION_SUFFIXES:
        shims.update(p for p in package.rglob("*" + suffix) if "_wire" not in p.parts)
    if not shims:
        return  # pure Python
    # mypyc puts the code of every module in one shared library (the newest file); the
    # per-module shims are only rewritten when a module's interface changes.
    built = max(p.stat().st_mtime for p in shims)
    stale: set[str] = set()
    for shim in shims:
        stem = shim.name.split(".", 1)[0]
        source = shim.with_name(stem + ".py")
        if source.is_file() and source.stat().st_mtime > built:
            stale.add(str(source.relative_to(package.parent)))
    if stale:
        raise ImportError(
            f"sigma_core: {', '.join(sorted(stale))} changed after the compiled modules were "
            f"built ({package}/*.so); Python would import the old compiled code. Rebuild "
            "(bash scripts/build.sh, or pip install again) or delete the .so files to run the "
            "pure-Python sources.")


_check_compiled_build()
