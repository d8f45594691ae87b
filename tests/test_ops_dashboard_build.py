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


def test_dashboard_source_type_checks() -> None:
    """Vite's build strips types without checking them: tsc (strict) does, on src/*.ts and
    the TypeScript client they import."""
    tsc = ROOT / "examples" / "chat" / "web" / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():  # build.sh installs the chat web app's tools the same way
        subprocess.run(["bash", str(ROOT / "examples" / "chat" / "build.sh")], check=True,
                       capture_output=True, timeout=600)
    out = subprocess.run([str(tsc), "-p", str(BUNDLE.with_name("tsconfig.json"))],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
