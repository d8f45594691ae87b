"""The committed ``sigma_core/_wire`` is exactly what the pinned flatc makes of the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "sigma_core" / "_wire"


def generated_files(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_code_matches_the_schema(tmp_path: Path) -> None:
    # gen_wire.py looks for flatc next to sys.executable first (the venv's pinned one).
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_wire.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = generated_files(tmp_path / "_wire")
    committed = generated_files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run scripts/gen_wire.py and commit the result"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date with schemas/sigma.fbs: {stale}; run scripts/gen_wire.py"
