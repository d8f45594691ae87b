"""Build sigma_core's hot modules with mypyc when possible; pure Python otherwise.

The compiled modules behave as the Python ones (the test suite runs on both, see scripts/test.sh)
and cost less CPU per message (docs/benchmarks.md). Compiling needs mypy (a build requirement in
pyproject.toml) and a C compiler with the Python headers (Debian: gcc, python3-dev). When either
is missing, or the build fails, the package installs as pure Python, with a warning.
``SIGMA_NO_COMPILE=1`` forces the pure-Python build.

Compiled modules sit next to their sources (``sigma_core/hub.cpython-*.so`` beside ``hub.py``)
and Python imports them first: after editing one of ``COMPILED``, rebuild (``bash
scripts/build.sh``; ``scripts/test.sh`` does it when the sources changed).
"""

from __future__ import annotations

import os
import platform
import sys
import traceback
from pathlib import Path
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

#: The modules compiled. Not messages.py: its dataclasses are what applications build, and
#: compiled they would refuse a wrongly typed field with TypeError at construction instead of
#: the codec's documented validation error. Not the generated _wire code nor the adapters.
COMPILED = ["_framer", "_handshake", "_wsevents", "backplane", "client", "codec",
            "codec._build", "codec._checks", "codec._fast", "codec._readers", "codec._schema",
            "codec._slots", "codec._verify", "connection", "hub", "message_socket", "metrics",
            "pump", "ratelimit", "websocket"]


def _source(module: str) -> Path:
    """``codec._fast`` -> sigma_core/codec/_fast.py; a package -> its __init__.py."""
    path = Path(__file__).resolve().parent / "sigma_core" / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _warn(message: str) -> None:
    print(f"\nsigmasockets: {message}; installing the pure-Python modules\n", file=sys.stderr)


def compiled_extensions() -> list[Any]:
    if os.environ.get("SIGMA_NO_COMPILE", "") not in ("", "0"):
        return []
    if platform.python_implementation() != "CPython":
        return []
    try:
        from mypyc.build import mypycify

        extensions = list(mypycify([str(_source(m)) for m in COMPILED],
                                   group_name="sigma_core._mypyc", opt_level="3"))
    except (Exception, SystemExit):  # mypyc missing, or its type check failed (it exits)
        traceback.print_exc()
        _warn("mypyc could not translate sigma_core")
        return []
    # The framer's unmasking loop in C (mypyc cannot make a per-byte loop fast); built and
    # dropped together with the compiled modules.
    return [*extensions, Extension("sigma_core._speedups", ["sigma_core/_speedups.c"],
                                   extra_compile_args=["-O3"])]


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python when compiling fails (no compiler, no headers):
    all compiled modules or none (they share one runtime library)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, missing Python.h, ...
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            self.extensions = []
            _warn(f"compiling sigma_core failed ({exc})")

    def get_outputs(self) -> list[str]:
        return [p for p in super().get_outputs() if Path(p).exists()]


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": OptionalBuildExt})
