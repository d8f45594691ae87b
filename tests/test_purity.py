"""sigma_core is sans-IO: it never imports I/O, clock, thread or entropy modules.

Checked two ways: statically (every import statement in every module, including imports inside
functions) and dynamically (importing all of sigma_core in a fresh interpreter does not load
those modules). ``sigma_core.testing`` is part of the same rule: simulations are deterministic.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

FORBIDDEN = {"asyncio", "trio", "anyio", "socket", "selectors", "threading", "time", "random",
             "secrets", "uuid", "os", "ssl", "multiprocessing", "subprocess", "signal"}
CORE = Path(__file__).resolve().parent.parent / "sigma_core"
MODULES = sorted(p for p in CORE.rglob("*.py") if "_wire" not in p.parts)


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_module_imports_nothing_impure(path: Path) -> None:
    # `ssl` appears only under TYPE_CHECKING (a type for options), never at run time.
    source = path.read_text(encoding="utf-8")
    bad = imported_roots(path) & FORBIDDEN
    if "ssl" in bad and "if TYPE_CHECKING:\n    import ssl" in source:
        bad.discard("ssl")
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_checker_catches_an_impure_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from time import monotonic\n    return monotonic()\n")
    assert imported_roots(sneaky) & FORBIDDEN == {"time"}


def test_importing_the_core_loads_no_impure_module() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "before = set(sys.modules)\n"
        "import sigma_core\n"
        "for m in pkgutil.walk_packages(sigma_core.__path__, 'sigma_core.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted((set(sys.modules) - before) & set({sorted(FORBIDDEN - {'os'})!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=CORE.parent)
    assert out.stdout.strip() == ""
