"""SigmaASGIApp under hypercorn (asyncio worker on uvloop): the full protocol through ASGI.

    python bench/servers/sigma_asgi_hypercorn.py --port 9001
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for servers._*

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config

from servers._asgi import listen, make_app, run
from servers._common import parse_args, raise_nofile


def main() -> None:
    args = parse_args(__doc__ or "")
    raise_nofile()
    app = make_app()
    sock = listen(args.host, args.port)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.websocket_ping_interval = None
    config.backlog = 4096
    uvloop.run(run(app, sock, lambda: serve(app, config)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
