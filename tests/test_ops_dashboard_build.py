"""The dashboard's script is committed built (an installed package serves it without Node):
it must be exactly what sigma_ops/dashboard/build.sh makes from src/main.ts and the TypeScript
client today, like the generated wire code and its schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "sigma_ops" / "dashboard" / "dashboard.js"


def test_committed_dashboard_bundle_is_up_to_date() -> None:
    committed = BUNDLE.read_bytes()
    try:
        out = subprocess.run(["bash", str(BUNDLE.with_name("build.sh"))], capture_output=True,
                             text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        assert BUNDLE.read_bytes() == committed, (
            "sigma_ops/dashboard/dashboard.js is stale: run bash sigma_ops/dashboard/build.sh "
            "and commit it")
    finally:
        BUNDLE.write_bytes(committed)
