"""Load-independent counts per round trip of a source tree's server at 3 x 1 (workload (a)'s
shape: 3 clients, one message in flight each), for bisecting a latency change without trusting
the wall clock of a shared machine.

    bench/.venv-bench/bin/python bench/round_trip_counts.py TREE [TREE ...] \\
        [--server sigma_asyncio_uvloop] [--skip callgrind,dumps,strace,syscount]

Each TREE is a source tree with its own build (``git worktree add /tmp/t COMMIT``, then its own
``scripts/_env.sh``: ``ensure_venv && ensure_build``, or ``.venv/bin/python setup.py build_ext
--inplace`` with this tree's venv); its server runs from its own ``bench/servers/<server>.py``
with that tree first on PYTHONPATH, driven by this tree's load generator clients. Per round
trip, each as the difference between a run of N and one of 3N round trips (start-up and
connection set-up cancelled out):

* ``instructions``: user-space instructions (callgrind, as ``bench/callgrind_echo.py``);
* ``read_to_write``: the median instructions from a socket read's return to the next socket
  write (``write``/``writev``): the reply's own path. Callgrind dumps its counts at each read's
  return and before each write (``--dump-after``/``--dump-before``), 150 round trips, the
  first third left out;
* ``timer_arms``: the event loop's ``call_at`` calls (callgrind's call counts; under valgrind the
  server runs ~50x slower, so time-driven work such as ack timers is over-represented);
* ``syscalls``: every syscall kind above 0.005 per round trip (``strace -c -f`` attached after
  start-up; the server is slowed, so ``epoll_pwait`` counts are not real-speed ones);
* ``waits``/``writes``: the server's event-loop waits and socket writes at full speed, pinned
  as ``bench/run.py`` pins (``bench/syscount.so``); medians of 3. Waits per round trip are
  timing-dependent: a server that finishes a message before the next arrives waits (sleeps)
  once per message, one still busy reads the next without waiting.

Prints one JSON line per tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402
import uvloop  # noqa: E402
from callgrind_echo import drive  # noqa: E402

CONNS, IN_FLIGHT = 3, 1


class Tree:
    def __init__(self, path: Path, server: str) -> None:
        self.path = path.resolve()
        self.script = self.path / "bench" / "servers" / f"{server}.py"
        if not self.script.exists():
            raise SystemExit(f"{self.script} does not exist")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
        return {**env, "PYTHONPATH": str(self.path), "PYTHONHASHSEED": "0", **extra}

    def start(self, wrapper: list[str], **env: str) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen([*wrapper, sys.executable, str(self.script), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=self.path / "bench", env=self.env(**env),
                                preexec_fn=run.pinned(run.SERVER_CPU))  # noqa: PLW1509
        port = int(run._read_line(proc, "READY", 300).split()[1])
        return proc, port


def echo(port: int, total: int) -> None:
    uvloop.run(drive(f"ws://127.0.0.1:{port}/", "sigma", CONNS, IN_FLIGHT, total))


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def callgrind(tree: Tree, total: int, out: Path, extra: list[str]) -> list[Path]:
    """The server under callgrind for ``total`` round trips; its dump files."""
    proc, port = tree.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             *extra])
    try:
        first = len(list(out.parent.glob(out.name + ".*")))
        echo(port, total)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True,
                       timeout=120, check=False)
    finally:
        stop(proc)
    dumps = sorted(out.parent.glob(out.name + ".*"),
                   key=lambda p: int(p.name.rsplit(".", 1)[1].split("-")[0]))
    return dumps[first:] if extra else dumps[-1:]


def totals(path: Path) -> int:
    match = re.search(r"^(?:summary|totals):\s*(\d+)", path.read_text(errors="replace"), re.M)
    return int(match.group(1)) if match else 0


def call_counts(path: Path, pattern: re.Pattern[str]) -> dict[str, int]:
    names: dict[str, str] = {}
    counts: dict[str, int] = {}
    callee = None
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
        if match:
            if match.group(2):
                names[match.group(1)] = match.group(2)
            if line.startswith("cfn="):
                callee = match.group(1)
        elif line.startswith("calls=") and callee is not None:
            counts[callee] = counts.get(callee, 0) + int(line[6:].split()[0])
    return {names.get(k, k): n for k, n in counts.items() if pattern.search(names.get(k, k))}


def instructions(tree: Tree, small: int, large: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sigma-rt-"))
    try:
        a = callgrind(tree, small, folder / "a.out", [])[0]
        b = callgrind(tree, large, folder / "b.out", [])[0]
        arms = re.compile(r"Loop_\d+call_at$")
        ca, cb = call_counts(a, arms), call_counts(b, arms)
        return {"instructions": round((totals(b) - totals(a)) / (large - small)),
                "timer_arms": round((sum(cb.values()) - sum(ca.values())) / (large - small), 3)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_to_write(tree: Tree, total: int = 150) -> float:
    folder = Path(tempfile.mkdtemp(prefix="sigma-rt-"))
    try:
        dumps = callgrind(tree, total, folder / "c.out",
                          ["--dump-after=read", "--dump-before=write", "--dump-before=writev"])
        marks = []
        for path in dumps:
            text = path.read_text(errors="replace")
            trigger = re.search(r"^desc: Trigger: (.*)$", text, re.M)
            marks.append((trigger.group(1) if trigger else "", totals(path)))
        spans = [cost for (before, _), (after, cost) in itertools.pairwise(marks)
                 if before.endswith("=read") and "before=write" in after]
        spans = spans[len(spans) // 3:]
        return statistics.median(spans) if spans else float("nan")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def strace(tree: Tree, total: int) -> dict[str, int]:
    proc, port = tree.start([])
    out = tempfile.mktemp(prefix="sigma-rt-strace-")
    try:
        tracer = subprocess.Popen(["strace", "-f", "-c", "-o", out, "-p", str(proc.pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # attached to every thread
        echo(port, total)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(60)
    finally:
        stop(proc)
    counts: dict[str, int] = {}
    for line in Path(out).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[3].isdigit() \
                and parts[-1] != "total":
            counts[parts[-1]] = int(parts[3])
    os.unlink(out)
    return counts


def syscount(tree: Tree, so: Path, total: int) -> tuple[int, ...]:
    fd, counters = tempfile.mkstemp(prefix="sigma-rt-syscount-")
    os.write(fd, bytes(64))
    os.close(fd)
    proc, port = tree.start([], LD_PRELOAD=str(so), SIGMA_SYSCOUNT=counters)
    try:
        echo(port, total)
        return struct.unpack("6Q", Path(counters).read_bytes()[:48])
    finally:
        stop(proc)
        os.unlink(counters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--server", default="sigma_asyncio_uvloop")
    parser.add_argument("--skip", default="", help="comma-separated: callgrind,dumps,strace,"
                        "syscount")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    os.sched_setaffinity(0, {run.LOADGEN_CPU})
    so = run.build_syscount()
    for path in args.trees:
        tree = Tree(path, args.server)
        commit = subprocess.run(["git", "-C", str(tree.path), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=False).stdout.strip()
        row: dict[str, Any] = {"tree": str(tree.path), "commit": commit or "?"}
        if "callgrind" not in skip:
            row.update(instructions(tree, 600, 1800))
        if "dumps" not in skip:
            row["read_to_write"] = read_to_write(tree)
        if "strace" not in skip:
            a, b = strace(tree, 1500), strace(tree, 4500)
            row["syscalls"] = {k: round((b.get(k, 0) - a.get(k, 0)) / 3000, 3)
                               for k in sorted(set(a) | set(b))
                               if abs(b.get(k, 0) - a.get(k, 0)) / 3000 > 0.005}
        if "syscount" not in skip and so is not None:
            waits, writes = [], []
            for _ in range(3):
                a6, b6 = syscount(tree, so, 1500), syscount(tree, so, 4500)
                waits.append((b6[5] - a6[5]) / 3000)
                writes.append((b6[3] - a6[3]) / 3000)
            row["waits"] = round(statistics.median(waits), 3)
            row["writes"] = round(statistics.median(writes), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
