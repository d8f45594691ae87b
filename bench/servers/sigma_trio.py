"""SigmaSockets on trio: full protocol, echo through the sender's inbox.

    python bench/servers/sigma_trio.py --port 9001
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it serves: take its folder off the path (so the import
# below finds the package) and put bench/ on it (for servers._common).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

import trio  # noqa: E402

from servers._common import (  # noqa: E402
    PAYLOAD,
    SIGMA_BENCH_OPTIONS,
    broadcast_count,
    parse_args,
    raise_nofile,
    ready,
)
from sigma_trio import SigmaSocketServer  # noqa: E402


async def serve(host: str, port: int) -> None:
    server = SigmaSocketServer(host=host, port=port, **SIGMA_BENCH_OPTIONS)

    def on_message(client: object, data: bytes, topic: str) -> None:
        n = broadcast_count(data)
        if n is None:
            server.send_to_client(client, data)  # type: ignore[arg-type]
        else:
            for _ in range(n):
                server.broadcast(PAYLOAD)

    server.on("message", on_message)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(server.serve)
        ready(bound)


def main() -> None:
    args = parse_args(__doc__ or "")
    raise_nofile()
    trio.run(serve, args.host, args.port)


if __name__ == "__main__":
    main()
