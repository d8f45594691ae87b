"""What importing modules costs the broadcast (workload (c)): paired runs of the uvloop server.

    bench/.venv-bench/bin/python bench/imports_pairs.py --pairs 7 \\
        'plain|imports|metrics|code:import prometheus_client'

Each pair starts every variant once, in alternating order, each with the pair's
``PYTHONHASHSEED``; the server is pinned to CPU 0 and ``bench/loadgen.py c`` to CPU 1, as in
``bench/run.py``. Variants: ``plain`` (``servers/sigma_asyncio.py --uvloop``), ``imports``
(``--imports-only``), ``metrics`` (``--metrics``), ``code:STATEMENTS`` (the plain server after
running STATEMENTS, e.g. ``code:import csv, uuid``). Prints each run and, per variant, the
median server µs CPU per delivery and the median of its ratios to ``plain`` in the same pair
(docs/operations.md, "What metrics cost"). A diagnostic, not a benchmark of record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SERVER = BENCH / "servers" / "sigma_asyncio.py"
FLAGS = {"plain": [], "imports": ["--imports-only"], "metrics": ["--metrics"]}


def server_command(variant: str) -> list[str]:
    if variant.startswith("code:"):
        code = (f"{variant[5:]}\nimport runpy, sys\nsys.argv = [{str(SERVER)!r}] + sys.argv[1:]\n"
                f"runpy.run_path({str(SERVER)!r}, run_name='__main__')")
        return ["-c", code, "--uvloop"]
    return [str(SERVER), "--uvloop", *FLAGS[variant]]


def one_run(variant: str, seed: int, port: int) -> float:
    env = dict(os.environ, PYTHONHASHSEED=str(seed), PYTHONPATH=str(ROOT))
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, *server_command(variant),
                               "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"{variant}: the server did not start ({line!r})")
        done = subprocess.run(["taskset", "-c", "1", sys.executable, str(BENCH / "loadgen.py"),
                               "c", "--url", f"ws://127.0.0.1:{port}/", "--proto", "sigma",
                               "--server-pid", str(server.pid)],
                              capture_output=True, text=True, env=env, check=True, timeout=300)
    finally:
        server.kill()
        server.wait()
    return float(json.loads(done.stdout.strip().splitlines()[-1])["server_cpu_us_per_delivery"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", help="'|'-separated, the first is the baseline")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--port", type=int, default=19000)
    args = parser.parse_args()
    variants = args.variants.split("|")
    for v in variants:
        if v not in FLAGS and not v.startswith("code:"):
            parser.error(f"unknown variant {v!r}")
    runs: dict[str, list[float]] = {v: [] for v in variants}
    for i in range(args.pairs):
        for v in variants if i % 2 == 0 else variants[::-1]:
            us = one_run(v, i + 1, args.port + i)
            runs[v].append(us)
            print(f"pair {i + 1} {v}: {us:.3f} µs per delivery", flush=True)
    base = runs[variants[0]]
    for v in variants:
        ratios = [a / b for a, b in zip(runs[v], base, strict=True)]
        print(f"{v}: median {statistics.median(runs[v]):.3f} µs, paired ratio median "
              f"{statistics.median(ratios):.3f} (pairs {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
