"""The compiled build (setup.py, mypyc) is the one imported, and not older than its sources."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
from pathlib import Path

import pytest
from build_support import COMPILED, CORE

SETUP = ast.parse((Path(__file__).resolve().parent.parent / "setup.py").read_text(encoding="utf-8"))
COMPILED_MODULES: list[str] = next(
    ast.literal_eval(node.value) for node in SETUP.body
    if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "COMPILED"
)

SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def test_all_or_none_of_the_compiled_modules_are_imported() -> None:
    for name in COMPILED_MODULES:
        module = importlib.import_module(f"sigma_core.{name}")
        assert (module.__file__ or "").endswith(SUFFIXES) is COMPILED, name


@pytest.mark.skipif(not COMPILED, reason="pure-Python build")
def test_compiled_modules_are_not_older_than_the_sources() -> None:
    # Python imports a compiled module in preference to its source: after an edit, the tests
    # would run the old code. scripts/test.sh rebuilds when the sources change.
    # The code of every module is in one shared library (mypyc's group, the newest file); the
    # per-module files are small shims that are only rewritten when their interface changes.
    built = max(p.stat().st_mtime for p in CORE.glob("*" + SUFFIXES[0]))
    newer = sorted(p.name for p in CORE.glob("*.py") if p.stat().st_mtime > built)
    assert not newer, f"rebuild (bash scripts/build.sh): {newer} changed since compiling"


def test_pure_python_modules_stay_pure() -> None:
    for path in CORE.glob("*.py"):
        if path.stem not in COMPILED_MODULES:
            assert not list(CORE.glob(f"{path.stem}.*{SUFFIXES[-1]}")), path.name
    assert not any(Path(p).suffix == ".so" for p in map(str, (CORE / "_wire").rglob("*")))


def test_the_framer_unmasks_in_c_whenever_the_helper_was_built() -> None:
    # sigma_core/_speedups.c is built with the compiled modules (setup.py), so a compiled build
    # always has it; _framer uses it whenever it can be imported, its Python reference otherwise.
    from sigma_core import _framer

    built = importlib.util.find_spec("sigma_core._speedups") is not None
    assert built or not COMPILED
    assert (_framer.unmask is not _framer.unmask_py) is built
