"""SigmaASGIApp under uvicorn (uvloop, websockets-sansio): the full protocol through ASGI.

    python bench/servers/sigma_asgi_uvicorn.py --port 9001
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/servers holds files named like the packages (sigma_asyncio.py): take it off the path
# and put bench/ on it (for servers._*).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

import uvicorn  # noqa: E402
import uvloop  # noqa: E402

from servers._asgi import BareEcho, listen, make_app, run  # noqa: E402
from servers._common import parse_args, raise_nofile  # noqa: E402


def main(*, bare: bool = False) -> None:
    args = parse_args(__doc__ or "")
    raise_nofile()
    app = BareEcho() if bare else make_app()
    sock = listen(args.host, args.port)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning",
                                           ws="websockets-sansio", loop="none",
                                           ws_max_size=1 << 20, ws_ping_interval=None))
    uvloop.run(run(app, sock, lambda: server.serve(sockets=[sock])))


if __name__ == "__main__":
    main()
