"""Run one fuzz target under atheris (libFuzzer).

Usage: ``python fuzz/atheris_main.py <target> [libFuzzer args]``, e.g.::

    mkdir -p /tmp/corpus/codec
    .venv/bin/python fuzz/atheris_main.py codec /tmp/corpus/codec fuzz/corpus/codec \\
        -max_total_time=600 -rss_limit_mb=2048 -artifact_prefix=fuzz/findings/codec/

Targets: see :data:`fuzz.targets.TARGETS`. libFuzzer writes new inputs to the *first* corpus
directory: give it a scratch one, so the committed seeds stay as they are.

Findings already saved under ``fuzz/findings/<target>/`` and still reproducing are tolerated
(matched by :func:`fuzz.targets.signature`), so a run goes on looking for new ones; set
``SIGMA_FUZZ_REPORT_KNOWN=1`` to stop on them too.

Only ``sigma_core``, ``wsproto`` and ``h11`` are instrumented for coverage (everything they
import after :func:`atheris.instrument_imports` is entered, not the standard library).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-not-found, import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if list((ROOT / "sigma_core").glob("*.so")):
    # The mypyc build sits beside the sources and would be imported first: atheris sees
    # nothing inside compiled code. Fuzz the pure-Python modules, copied without the .so files
    # (the compiled build runs the same targets, bounded, in the test suite).
    _pure = Path(tempfile.mkdtemp(prefix="sigma-fuzz-pure-"))
    shutil.copytree(ROOT / "sigma_core", _pure / "sigma_core",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    sys.path.insert(0, str(_pure))

for _module in ("sigma_core", "wsproto", "h11"):
    if _module in sys.modules:  # pragma: no cover - would silently run uninstrumented
        raise RuntimeError(f"{_module} was imported before instrumentation")

with atheris.instrument_imports(include=["sigma_core", "wsproto", "h11"]):
    from fuzz import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        names = ", ".join(targets.TARGETS)
        print(f"usage: {sys.argv[0]} <target> [libFuzzer args]; targets: {names}",
              file=sys.stderr)
        raise SystemExit(2)
    name = sys.argv[1]
    print(f"fuzzing {targets.__name__} over sigma_core from "
          f"{Path(sys.modules['sigma_core'].__file__ or '?').parent}", file=sys.stderr)
    known: dict[str, Path] = {}
    if os.environ.get("SIGMA_FUZZ_REPORT_KNOWN") != "1":
        known = targets.known_findings(name)
        for sig, path in known.items():
            print(f"known finding (tolerated): {sig}  [{path.relative_to(ROOT)}]",
                  file=sys.stderr)

    def test_one_input(data: bytes) -> None:
        targets.run_tolerating(name, data, known)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
