"""SigmaSockets on asyncio (default event loop): full protocol, echo through the sender's inbox.

    python bench/servers/sigma_asyncio.py --port 9001 [--uvloop] [--metrics | --imports-only]

``--metrics``: with sigma_ops attached (``/metrics``, probes, dashboard routes) and its
Prometheus collector read once a second in the server process, as a scrape would: what
operating metrics cost (docs/operations.md). ``--imports-only``: ``prometheus_client`` and
``sigma_ops`` imported, nothing attached (a diagnostic: what the imports alone cost).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the package it serves: take its folder off the path (so the import
# below finds the package) and put bench/ on it (for servers._common).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

import asyncio  # noqa: E402

import sigma_asyncio  # noqa: E402
from servers._common import (  # noqa: E402
    PAYLOAD,
    SIGMA_BENCH_OPTIONS,
    broadcast_count,
    parse_args,
    raise_nofile,
    ready,
)
from sigma_asyncio import SigmaSocketServer  # noqa: E402


async def serve(host: str, port: int, metrics: bool = False) -> None:
    ops = None
    if metrics:
        from sigma_core.api import ServerOptions
        from sigma_ops import Ops

        ops = Ops(node="bench", dashboard=False)
        server = SigmaSocketServer(ops.server_options(
            ServerOptions(host=host, port=port, **SIGMA_BENCH_OPTIONS)))  # type: ignore[arg-type]
        ops.attach(server)
    else:
        server = SigmaSocketServer(host=host, port=port, **SIGMA_BENCH_OPTIONS)

    def on_message(client: object, data: bytes, topic: str) -> None:
        n = broadcast_count(data)
        if n is None:
            server.send_to_client(client, data)  # type: ignore[arg-type]
        else:
            for _ in range(n):
                server.broadcast(PAYLOAD)

    server.on("message", on_message)
    await server.start()
    ready(server.port)
    if ops is not None and ops.registry is not None:
        from prometheus_client import generate_latest

        while True:  # a scrape a second (Prometheus' default is one per 15 s)
            await asyncio.sleep(1.0)
            generate_latest(ops.registry)
    await asyncio.Event().wait()


def main() -> None:
    use_uvloop = "--uvloop" in sys.argv
    if use_uvloop:
        sys.argv.remove("--uvloop")
    metrics = "--metrics" in sys.argv
    if metrics:
        sys.argv.remove("--metrics")
    if "--imports-only" in sys.argv:  # what the imports alone cost: nothing attached
        sys.argv.remove("--imports-only")
        import prometheus_client  # noqa: F401

        import sigma_ops  # noqa: F401
    args = parse_args(__doc__ or "")
    raise_nofile()
    sigma_asyncio.run(serve(args.host, args.port, metrics), use_uvloop=use_uvloop)


if __name__ == "__main__":
    main()
