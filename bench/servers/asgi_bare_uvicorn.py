"""The floor for SigmaASGIApp under uvicorn: a bare ASGI echo app (servers._asgi.BareEcho, no
protocol) under the same uvicorn set-up as sigma_asgi_uvicorn.py.

    python bench/servers/asgi_bare_uvicorn.py --port 9001
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

from servers.sigma_asgi_uvicorn import main  # noqa: E402

if __name__ == "__main__":
    main(bare=True)
