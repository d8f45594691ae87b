"""Paired latency comparison of two source trees on workload (a): the original's 3 clients x 500
sequential 1 KiB round trips (after 50 unmeasured each), driven by TODAY's ``bench/loadgen.py``.

    bench/.venv-bench/bin/python bench/latency_pairs.py --old /tmp/old659 [--new .] \\
        [--pairs 15] [--server sigma_asyncio_uvloop] [--old-server NAME] [--new-server NAME] \\
        [--no-control] [--no-syscount]
    bench/.venv-bench/bin/python bench/latency_pairs.py --trace [--runs 5]

``--old`` / ``--new``: source trees (``git worktree add /tmp/old659 659a332`` and build it
there with its own ``scripts/_env.sh``: ``ensure_venv && ensure_build``, so its sigma_core is
compiled with mypyc as it was). Each tree's server runs from its own
``bench/servers/<server>.py`` with that tree first on PYTHONPATH; the load generator always
runs from this tree (its codec, its picows clients). Pair i starts both servers with
``PYTHONHASHSEED=i``; the order alternates (old first in even pairs, new first in odd ones)
so a drift on the machine does not favour one side. Server pinned to CPU 0, load generator
to CPU 1, a fresh server per run, as ``bench/run.py`` does (without its syscall counter).
``picows + uvloop`` (plain WebSocket echo) runs once per pair as a control: what the machine's
own noise does to p99.

The servers run with ``bench/syscount.so`` preloaded, as in ``bench/run.py`` (``--no-syscount``:
without). Besides the latencies each run keeps the closed loop's pace (messages per second: with
3 round trips always in flight the mean round trip is 3 / msgs_per_s), the server's CPU per
message, the load generator's CPU share and the server's event-loop waits and socket writes
per message; the report prints their medians per side. A server that needs less CPU per
message does not by itself give a lower p50 here: the load generator's one process drives all
three clients, and how it is paced by the replies' arrival is part of every round trip
(docs/benchmarks.md, "Session 9: latency p50").

Prints each run's p50 / p99 / max, then the medians and the paired ratios new/old (median,
and in how many pairs new was the slower), and writes ``bench/results/latency_pairs.json``.

``--trace``: ``--runs`` runs of the ``--new`` tree's server under ``bench/latency_recorder.py``
(every read, timer wake-up, GC collection and heap trim with timestamps), the load generator
writing every round trip's send and reply times; prints what the server did during the round
trips at or above each run's p99, against what it did during the others.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: venv, pinning, READY lines)

LOADGEN = BENCH / "loadgen.py"


#: Reads by size: one Data envelope of workload (a) (1 KiB payload) framed, and one with the
#: client's ``$inbox`` Ack (after 128 replies) in the same read.
READ_KINDS = {1104: "read, one Data", 1214: "read, Data + inbox Ack", 110: "read, inbox Ack"}


class Side:
    """A server to measure: a source tree and the server script in it."""

    def __init__(self, name: str, tree: Path, script: str, proto: str) -> None:
        self.name, self.tree, self.script, self.proto = name, tree.resolve(), script, proto

    def env(self, seed: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
        env["PYTHONPATH"] = str(self.tree)
        env["PYTHONHASHSEED"] = str(seed)
        return env


#: What each run keeps beside p50/p99/max: the closed loop's pace (``msgs_per_s``: with 3
#: round trips always in flight, the mean round trip is 3 / msgs_per_s), who is busy (the
#: server's CPU per message, the load generator's CPU share) and how the server's loop ran
#: (event-loop waits and socket writes per message; with the syscall counter).
KEPT = ("p50_us", "p99_us", "max_us", "foreign_cpu0_share", "foreign_cpu1_share", "msgs_per_s",
        "server_cpu_us_per_msg", "loadgen_cpu_share", "waits_per_msg", "writes_per_msg")


def start_server(side: Side, seed: int, trace: str | None = None,
                 syscount: tuple[Path, str] | None = None) -> subprocess.Popen[str]:
    """``syscount``: (bench/syscount.so, its counters' file) to count the server's socket
    syscalls and event-loop waits, as bench/run.py does (one atomic add per call)."""
    script = str(side.tree / "bench" / "servers" / side.script)
    cmd = [sys.executable, script, "--port", "0"]
    if trace is not None:
        cmd = [sys.executable, str(BENCH / "latency_recorder.py"), trace, script, "--port", "0"]
    env = side.env(seed)
    if syscount is not None:
        env = {**env, "LD_PRELOAD": str(syscount[0]), "SIGMA_SYSCOUNT": syscount[1]}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=side.tree / "bench",
                            preexec_fn=run.pinned(run.SERVER_CPU))  # noqa: PLW1509


def measure(side: Side, seed: int, trace: bool = False,
            syscount_so: Path | None = None) -> dict[str, Any]:
    """One run of workload (a) against a fresh server of ``side``."""
    events_file = lat_file = None
    if trace:
        events_file = tempfile.mktemp(prefix="sigma-trace-", suffix=".json")
        lat_file = tempfile.mktemp(prefix="sigma-lat-", suffix=".json")
    syscount = None
    if syscount_so is not None and not trace:
        fd, syscount = tempfile.mkstemp(prefix="sigma-syscount-")
        os.close(fd)
    server = start_server(side, seed, events_file,
                          None if syscount is None or syscount_so is None
                          else (syscount_so, syscount))
    try:
        port = int(run._read_line(server, "READY", 30).split()[1])
        cmd = [sys.executable, str(LOADGEN), "a", "--url", f"ws://127.0.0.1:{port}/",
               "--proto", side.proto, "--server-pid", str(server.pid)]
        if syscount is not None:
            cmd += ["--syscount", syscount]
        if lat_file is not None:
            cmd += ["--latencies", lat_file]
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        env["PYTHONPATH"] = str(run.ROOT)  # this tree's client side, whatever the server's
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                              cwd=BENCH, env=env, preexec_fn=run.pinned(run.LOADGEN_CPU))
        result = run._parse_result(proc.stdout, proc.stderr, f"a/{side.name}")
        if events_file is not None and lat_file is not None:
            os.kill(server.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while not Path(events_file).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # let the write finish
            result["events"] = json.loads(Path(events_file).read_text())
            result["trips"] = json.loads(Path(lat_file).read_text())
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
        for name in (events_file, lat_file, syscount):
            if name is not None and Path(name).exists():
                os.unlink(name)
    return result


def pairs(args: argparse.Namespace) -> None:
    old = Side("old", Path(args.old), f"{args.old_server or args.server}.py", "sigma")
    new = Side("new", Path(args.new), f"{args.new_server or args.server}.py", "sigma")
    control = None if args.no_control else Side("picows", Path(args.new), "picows_server.py",
                                                "plain")
    syscount_so = None if args.no_syscount else run.build_syscount()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    print(f"old: {old.tree} ({commit(old.tree)}), new: {new.tree} ({commit(new.tree)}), "
          f"servers {old.script} (old), {new.script} (new), {args.pairs} pairs; "
          f"load average at start "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}", flush=True)
    print("pair  side    p50 µs  p99 µs  max µs  foreign cpu0/cpu1", flush=True)
    for i in range(args.pairs):
        order = [old, new] if i % 2 == 0 else [new, old]
        if control is not None:
            order.append(control)
        row: dict[str, Any] = {"pair": i}
        for side in order:
            r = measure(side, i, syscount_so=syscount_so)
            row[side.name] = {k: r[k] for k in KEPT if k in r}
            print(f"{i:4d}  {side.name:6s} {r['p50_us']:7.0f} {r['p99_us']:7.0f} "
                  f"{r['max_us']:7.0f}  {r['foreign_cpu0_share']:.2f}/"
                  f"{r['foreign_cpu1_share']:.2f}", flush=True)
        rows.append(row)
    report(rows, [s.name for s in (old, new, control) if s is not None])
    out = run.RESULTS / "latency_pairs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"old": str(old.tree), "old_commit": commit(old.tree),
                               "new": str(new.tree), "new_commit": commit(new.tree),
                               "server": args.server,
                               "old_server": old.script, "new_server": new.script,
                               "pairs": rows}, indent=1))
    print(f"\nwritten to {out} ({time.monotonic() - started:.0f} s)")


def report(rows: list[dict[str, Any]], names: list[str]) -> None:
    print("\n| | p50 µs (median, min-max) | p99 µs (median, min-max) | max µs (median) |")
    print("|---|---:|---:|---:|")
    for name in names:
        cells = []
        for key in ("p50_us", "p99_us"):
            values = [row[name][key] for row in rows]
            cells.append(f"{statistics.median(values):.0f} ({min(values):.0f}-"
                         f"{max(values):.0f})")
        cells.append(f"{statistics.median(row[name]['max_us'] for row in rows):.0f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| | msgs/s | server CPU µs/msg | load generator CPU share | server loop waits/msg "
          "| server writes/msg |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        cells = []
        for key, fmt in (("msgs_per_s", ",.0f"), ("server_cpu_us_per_msg", ".1f"),
                         ("loadgen_cpu_share", ".2f"), ("waits_per_msg", ".2f"),
                         ("writes_per_msg", ".2f")):
            values = [row[name][key] for row in rows if key in row[name]]
            cells.append(format(statistics.median(values), fmt) if values else "—")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for key in ("p50_us", "p99_us", "max_us"):
        ratios = sorted(row["new"][key] / row["old"][key] for row in rows)
        slower = sum(r > 1 for r in ratios)
        q = len(ratios) // 4
        print(f"new/old {key[:-3]:4s}: median ratio {statistics.median(ratios):.3f} "
              f"(middle half {ratios[q]:.2f}-{ratios[-1 - q]:.2f}); new slower in "
              f"{slower} of {len(ratios)} pairs")


def commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def trace(args: argparse.Namespace) -> None:
    """What the server did during the slowest round trips (see the module's docstring)."""
    side = Side("new", Path(args.new), f"{args.server}.py", "sigma")
    slow_stats: dict[str, list[float]] = {}
    fast_stats: dict[str, list[float]] = {}
    costs: dict[str, list[float]] = {}  # CPU µs per event kind, measured window only
    costly: list[list[Any]] = []
    for i in range(args.runs):
        r = measure(side, i, trace=True)
        trips, events = r["trips"], r["events"]
        lat = sorted(b - a for a, b in trips)
        p99 = lat[min(len(lat) - 1, round(len(lat) * 0.99))]
        first = min(a for a, _ in trips)
        print(f"\nrun {i}: p50 {lat[len(lat) // 2] * 1e6:.0f} µs, p99 {p99 * 1e6:.0f} µs, "
              f"max {lat[-1] * 1e6:.0f} µs; server events in the window: "
              + ", ".join(f"{k} {n}" for k, n in sorted(count_kinds(events, first).items())))
        for e in events:
            if e[0] >= first:
                kind = e[2] if e[2] != "read" else READ_KINDS.get(e[3], "read, other")
                add(costs, kind, e[4] * 1e6)
                costly.append([e[4] * 1e6, i, *e[2:4]])
        shown = 0
        for sent, answered in trips:
            inside = [e for e in events if e[0] < answered and e[1] > sent]
            busy = sum(min(e[1], answered) - max(e[0], sent) for e in inside
                       if e[2] == "read")
            stats = slow_stats if answered - sent >= p99 else fast_stats
            add(stats, "latency", answered - sent)
            add(stats, "server busy in reads", busy)
            add(stats, "server idle (neither read nor timer)", answered - sent - busy - sum(
                min(e[1], answered) - max(e[0], sent) for e in inside if e[2] == "timer"))
            add(stats, "longest read inside", max((e[1] - e[0] for e in inside
                                                   if e[2] == "read"), default=0.0))
            for kind in ("gc", "heap_trim", "timer"):
                add(stats, f"with a {kind}", float(any(e[2] == kind for e in inside)))
            if answered - sent >= p99 and shown < args.show:
                shown += 1
                detail = "; ".join(
                    f"{e[2]}{'' if e[3] is None else e[3]} {(e[1] - e[0]) * 1e6:.0f} µs "
                    f"(cpu {e[4] * 1e6:.0f}) at +{(e[0] - sent) * 1e6:.0f}" for e in inside)
                print(f"  slow {(answered - sent) * 1e6:6.0f} µs at +{(sent - first) * 1e3:5.1f}"
                      f" ms: {detail}")
    print("\nround trips at/above p99 against the others (medians; 'with a': share):")
    for key, slow in slow_stats.items():
        scale, unit = (1.0, "") if key.startswith("with") else (1e6, " µs")
        middle = statistics.mean if key.startswith("with") else statistics.median
        print(f"  {key:40s} slow {middle(slow) * scale:8.2f}{unit}   "
              f"others {middle(fast_stats[key]) * scale:8.2f}{unit}")
    print("\nserver CPU per event in the measured windows (thread CPU time, µs; what a round "
          "trip waits for when it lands behind one):")
    print("  kind                  count   median      p99      max")
    for kind, values in sorted(costs.items()):
        values.sort()
        print(f"  {kind:20s} {len(values):6d} {values[len(values) // 2]:8.1f} "
              f"{values[min(len(values) - 1, round(len(values) * 0.99))]:8.1f} "
              f"{values[-1]:8.1f}")
    print("  costliest: " + "; ".join(f"{c[2]}{'' if c[3] is None else c[3]} {c[0]:.0f} "
                                      f"(run {c[1]})" for c in sorted(costly)[::-1][:12]))


def count_kinds(events: list[list[Any]], since: float) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        if e[0] >= since:
            key = e[2] if e[2] != "gc" else f"gc{e[3]}"
            out[key] = out.get(key, 0) + 1
    return out


def add(stats: dict[str, list[float]], key: str, value: float) -> None:
    stats.setdefault(key, []).append(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", help="the source tree to compare against (e.g. /tmp/old659)")
    parser.add_argument("--new", default=str(run.ROOT), help="this tree (default)")
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--server", default="sigma_asyncio_uvloop",
                        help="bench/servers/<name>.py in both trees (sigma_asyncio_uvloop)")
    parser.add_argument("--old-server", help="the old side's bench/servers/<name>.py instead "
                        "(e.g. sigma_asyncio_uvloop_busypoll with --old .: a diagnostic)")
    parser.add_argument("--new-server", help="the new side's bench/servers/<name>.py instead")
    parser.add_argument("--no-control", action="store_true", help="without picows")
    parser.add_argument("--no-syscount", action="store_true",
                        help="servers without bench/syscount.so (no waits/writes per message)")
    parser.add_argument("--trace", action="store_true",
                        help="trace the new tree's server instead (bench/latency_recorder.py)")
    parser.add_argument("--runs", type=int, default=5, help="--trace: runs (5)")
    parser.add_argument("--show", type=int, default=4,
                        help="--trace: slow round trips listed per run (4)")
    args = parser.parse_args()
    if not args.trace and not args.old:
        parser.error("--old TREE is needed (or --trace)")
    run.ensure_venv(sys.argv[1:])
    if args.trace:
        trace(args)
    else:
        pairs(args)


if __name__ == "__main__":
    main()
