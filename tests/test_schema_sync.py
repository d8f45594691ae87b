"""The committed generated code is exactly what scripts/gen_wire.py makes of the schema with the
pinned flatc: ``sigma_core/_wire`` (flatc's Python) and ``sigma_core/codec/_slots.py`` (the field
slots, body type ids and field descriptions the hand-written codec reads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sigma_core.codec import _slots

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "sigma_core" / "_wire"
COMMITTED_SLOTS = ROOT / "sigma_core" / "codec" / "_slots.py"


def generated_files(directory: Path) -> dict[str, bytes]:
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _generate(out: Path) -> None:
    # gen_wire.py looks for flatc next to sys.executable first (the venv's pinned one).
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_wire.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_generated_code_matches_the_schema(tmp_path: Path) -> None:
    _generate(tmp_path)
    fresh = generated_files(tmp_path / "_wire")
    committed = generated_files(COMMITTED)
    assert sorted(fresh) == sorted(committed), "run scripts/gen_wire.py and commit the result"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"out of date with schemas/sigma.fbs: {stale}; run scripts/gen_wire.py"
    assert (tmp_path / "codec" / "_slots.py").read_text() == COMMITTED_SLOTS.read_text(), (
        "sigma_core/codec/_slots.py is out of date with schemas/sigma.fbs: run scripts/gen_wire.py"
    )


def test_a_schema_change_changes_the_slots(tmp_path: Path) -> None:
    # The generator reads the schema, not a copy of today's numbers: a field appended to Data
    # and a new union member show up in the slot table (what issue 18's Refresh will do).
    schema = (ROOT / "schemas" / "sigma.fbs").read_text()
    grown = schema.replace(
        "  payload: [ubyte];\n}", "  payload: [ubyte];\n  trace_id: string;\n}", 1
    ).replace("table Envelope {", "table Later { note: string; }\n\ntable Envelope {", 1)
    grown = grown.replace("  Goodbye,\n}", "  Goodbye,\n  Later,\n}", 1)
    assert grown.count("trace_id") == 1
    assert grown.count("Later") == 2
    script = (ROOT / "scripts" / "gen_wire.py").read_text().replace(
        'SCHEMA = ROOT / "schemas" / "sigma.fbs"', f"SCHEMA = Path({str(tmp_path / 's.fbs')!r})"
    )
    (tmp_path / "s.fbs").write_text(grown)
    (tmp_path / "gen.py").write_text(script)
    subprocess.run(
        [sys.executable, str(tmp_path / "gen.py"), "--out", str(tmp_path / "out")],
        check=True, capture_output=True, timeout=120,
    )
    text = (tmp_path / "out" / "codec" / "_slots.py").read_text()
    assert "DATA_SLOT_COUNT: Final = 6\n" in text
    assert "DATA_TRACE_ID: Final = 5  # string\n" in text
    assert f"BODY_LATER: Final = {_slots.BODY_GOODBYE + 1}\n" in text
    assert "LATER_NOTE: Final = 0  # string\n" in text
    # What is already there keeps its numbers.
    assert f"DATA_PAYLOAD: Final = {_slots.DATA_PAYLOAD}  # [ubyte]\n" in text
    assert (tmp_path / "out" / "_wire" / "Later.py").exists()
