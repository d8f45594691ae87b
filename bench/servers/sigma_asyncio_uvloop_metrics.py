"""SigmaSockets on asyncio with uvloop and sigma_ops metrics:
``sigma_asyncio.py --uvloop --metrics``.

    python bench/servers/sigma_asyncio_uvloop_metrics.py --port 9001
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv += ["--uvloop", "--metrics"]
    runpy.run_path(str(Path(__file__).resolve().parent / "sigma_asyncio.py"), run_name="__main__")
