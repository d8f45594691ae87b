"""The dashboard's cluster view logic (sigma_ops/dashboard/src/cluster.ts: totals over the nodes
that are up, the staleness rule by arrival time, nodes told apart by id), compiled with the chat
web app's TypeScript and run under ``node --test`` (tests/js/cluster_view.test.mjs). The page
that uses it is tested in Chromium by tests/browser/test_dashboard_cluster.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TSC = ROOT / "examples" / "chat" / "web" / "node_modules" / ".bin" / "tsc"
SOURCE = ROOT / "sigma_ops" / "dashboard" / "src" / "cluster.ts"


def test_cluster_view(tmp_path: Path) -> None:
    if not TSC.exists():  # bash examples/chat/build.sh installs it (scripts/test.sh runs it)
        subprocess.run(["bash", str(ROOT / "examples" / "chat" / "build.sh")], check=True,
                       capture_output=True, timeout=600)
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed (scripts/test.sh installs it for the JS client's tests)")
    out = subprocess.run([str(TSC), "--strict", "--target", "es2022", "--module", "es2022",
                          "--outDir", str(tmp_path), str(SOURCE)],
                         capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    compiled = tmp_path / "cluster.js"
    (tmp_path / "package.json").write_text('{"type": "module"}')
    run = subprocess.run([node, "--test", str(ROOT / "tests" / "js" / "cluster_view.test.mjs")],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={"CLUSTER_JS": compiled.as_uri(), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# pass 5" in run.stdout, run.stdout
