"""SigmaSockets on asyncio with uvloop, ``prometheus_client`` and ``sigma_ops`` imported but
nothing attached: ``sigma_asyncio.py --uvloop --imports-only``. A diagnostic for what the
imports alone cost (docs/operations.md, "What metrics cost"); not in ``bench/run.py``'s
default servers.

    python bench/servers/sigma_asyncio_uvloop_imports.py --port 9001
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv += ["--uvloop", "--imports-only"]
    runpy.run_path(str(Path(__file__).resolve().parent / "sigma_asyncio.py"), run_name="__main__")
