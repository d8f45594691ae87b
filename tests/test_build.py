"""The compiled build (setup.py, mypyc) is the one imported, and not older than its sources."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
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
    built = max(p.stat().st_mtime for p in CORE.rglob("*" + SUFFIXES[0]))
    newer = sorted(str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
                   if "_wire" not in p.parts and p.stat().st_mtime > built)
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

    # (scripts/test.sh's pure-Python run puts a module that fails to import in its place.)
    spec = importlib.util.find_spec("sigma_core._speedups")
    built = spec is not None and (spec.origin or "").endswith(SUFFIXES)
    assert built or not COMPILED
    assert (_framer.unmask is not _framer.unmask_py) is built


def _import_copy(tmp_path: Path, shim_age: float | None) -> subprocess.CompletedProcess[str]:
    """Import a copy of sigma_core (sources only) in a fresh interpreter, with a fake compiled
    ``hub`` module beside ``hub.py`` that is ``shim_age`` seconds older than the source."""
    copy = tmp_path / "sigma_core"
    shutil.copytree(CORE, copy, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    (tmp_path / "setup.py").write_text("# a source checkout: the package is compiled in place\n")
    if shim_age is not None:
        shim = copy / ("hub" + SUFFIXES[0])
        shim.write_bytes(b"not a real extension: the check runs before any import of it")
        source_mtime = (copy / "hub.py").stat().st_mtime
        os.utime(shim, (source_mtime - shim_age, source_mtime - shim_age))
    return subprocess.run([sys.executable, "-c", "import sigma_core"], capture_output=True,
                          text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                          check=False, timeout=60)


def test_a_compiled_module_older_than_its_source_is_refused_at_import(tmp_path: Path) -> None:
    # Python would import the stale .so first and silently run the old code.
    result = _import_copy(tmp_path, shim_age=100)
    assert result.returncode != 0
    assert "ImportError: sigma_core: sigma_core/hub.py changed after the compiled modules" \
        in result.stderr
    assert "bash scripts/build.sh" in result.stderr


def test_a_fresh_or_absent_compiled_module_imports(tmp_path: Path) -> None:
    assert _import_copy(tmp_path / "pure", shim_age=None).returncode == 0
    fresh = _import_copy(tmp_path / "fresh", shim_age=-100)
    assert fresh.returncode == 0, fresh.stderr


def test_an_installed_package_is_not_checked(tmp_path: Path) -> None:
    # A wheel's installer writes sources and compiled modules in any order: no false alarm.
    copy = tmp_path / "site"
    result = _import_copy(copy, shim_age=100)
    assert result.returncode != 0  # in a checkout...
    (copy / "setup.py").unlink()
    installed = subprocess.run([sys.executable, "-c", "import sigma_core"], capture_output=True,
                               text=True, cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                               check=False, timeout=60)
    assert installed.returncode == 0, installed.stderr  # ...but not once installed
