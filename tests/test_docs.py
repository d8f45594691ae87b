"""The Python examples in README.md and docs/*.md run, so the docs cannot drift from the code.

Each fenced ``python`` block runs in a fresh namespace. A block whose first line is
``# not run`` is skipped (for examples that need a network or a server).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        if not doc.exists():
            continue
        for i, match in enumerate(BLOCK.finditer(doc.read_text(encoding="utf-8"))):
            code = match.group(1)
            if not code.startswith("# not run"):
                found.append((f"{doc.relative_to(ROOT)}#{i + 1}", code))
    return found


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[w for w, _ in blocks()])
def test_doc_example_runs(where: str, code: str) -> None:
    exec(compile(code, where, "exec"), {"__name__": "__doc_example__"})


def test_the_testing_guide_has_examples() -> None:
    assert sum(w.startswith("docs/testing.md") for w, _ in blocks()) >= 3
