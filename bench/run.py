"""Side-by-side benchmark: SigmaSockets (asyncio, asyncio + uvloop, trio) against websockets,
aiohttp, picows, Node's ``ws`` and python-socketio (plus a naive wsproto + trio server, the
baseline for sigma_trio's broadcast).

    bench/.venv-bench/bin/python bench/run.py [--runs 3] [--quick] [--only a,b,...]
                                              [--servers name,...] [--patterns 100x16,...]

(Any Python will do to start it: it creates ``bench/.venv-bench`` with ``bench/setup.sh`` when it
is missing and re-runs itself there.)

Workloads: (a) the original's 3 clients x 500 sequential 1 KiB round trips; (b) throughput,
echo under each client pattern of ``--patterns`` (connections x messages in flight; by default
10, 100 and 1,000 connections x 1, 16 and 64 in flight); (c) broadcast of 1 KiB to 1,000
clients; (d) memory per connection at 10,000 connections, idle and after one echo each; (e)
time from a server restart until every client has resumed (ours only); (f) the sans-IO core
alone, no sockets (``bench/core_bench.py``); (g) the syscall floor, a raw TCP echo making one
``recv`` + one ``send`` per message (``bench/syscall_floor.py``).

Servers run with ``bench/syscount.so`` preloaded (``bench/syscount.c``; built by setup.sh or
on first use): it counts their socket reads, writes and event-loop waits, reported per message
(``msgs/read``) beside CPU per message. ``--no-syscount`` runs them without it.

Every server runs as its own process pinned to CPU 0 (``bench/servers/*.py``), a fresh one for
every measurement; one load generator (``bench/loadgen.py``, picows clients) pinned to CPU 1
drives it and reads the server's CPU time from /proc at the edges of the measured window.
Each figure is the median of ``--runs`` runs; runs go round the servers in turn (each run
starting one server further on), so slow drift on the machine touches all of them alike, and
run i starts every server with
``PYTHONHASHSEED=i`` (``--random-hash-seed``: each its own), so servers compared in one run
share their dicts' hash layout and differ across runs. Prints one Markdown table per
workload and writes everything to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import resource
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV = BENCH / ".venv-bench"
VENV_PYTHON = VENV / "bin" / "python"
RESULTS = BENCH / "results"
SERVER_CPU, LOADGEN_CPU = 0, 1
#: Environment of every child process: the working tree on PYTHONPATH (packages added after
#: bench/setup.sh's editable install, e.g. sigma_ops, are found too); ``--commit`` puts a
#: snapshot of the packages first (ahead of the working tree).
ENV = dict(os.environ)
ENV["PYTHONPATH"] = os.pathsep.join(p for p in (ENV.get("PYTHONPATH"), str(ROOT)) if p)
#: Environment of the load generator (it imports sigma_core's codec for our protocol): None
#: inherits this process's (so ``PYTHONPATH=<tree>`` changes the client's code too);
#: ``--client-tree DIR`` puts DIR first, holding the client fixed while the servers change.
LOADGEN_ENV: dict[str, str] | None = None


@dataclass(frozen=True)
class ServerSpec:
    name: str
    script: str
    proto: str  # "sigma" (our protocol), "plain" (echo of frames) or "socketio"
    label: str
    runtime: str = "python"  # or "node"
    diagnostic: bool = False  # run only when named in --servers

    @property
    def ours(self) -> bool:
        return self.proto == "sigma"

    def command(self) -> list[str]:
        if self.runtime == "node":
            return ["node", str(BENCH / "servers" / self.script)]
        return [sys.executable, str(BENCH / "servers" / self.script)]


SERVERS = [
    ServerSpec("sigma_asyncio", "sigma_asyncio.py", "sigma", "sigma_asyncio (asyncio loop)"),
    ServerSpec("sigma_asyncio_uvloop", "sigma_asyncio_uvloop.py", "sigma",
               "sigma_asyncio + uvloop"),
    ServerSpec("sigma_asyncio_uvloop_metrics", "sigma_asyncio_uvloop_metrics.py", "sigma",
               "sigma_asyncio + uvloop + sigma_ops metrics"),
    ServerSpec("sigma_asyncio_uvloop_imports", "sigma_asyncio_uvloop_imports.py", "sigma",
               "sigma_asyncio + uvloop, prometheus_client and sigma_ops imported, not attached",
               diagnostic=True),
    ServerSpec("sigma_trio", "sigma_trio.py", "sigma", "sigma_trio"),
    ServerSpec("sigma_asgi_uvicorn", "sigma_asgi_uvicorn.py", "sigma",
               "SigmaASGIApp + uvicorn (uvloop)"),
    ServerSpec("sigma_asgi_hypercorn", "sigma_asgi_hypercorn.py", "sigma",
               "SigmaASGIApp + hypercorn (uvloop)"),
    ServerSpec("asgi_bare_uvicorn", "asgi_bare_uvicorn.py", "plain",
               "bare ASGI echo + uvicorn (uvloop): the floor"),
    ServerSpec("asgi_bare_hypercorn", "asgi_bare_hypercorn.py", "plain",
               "bare ASGI echo + hypercorn (uvloop): the floor"),
    ServerSpec("websockets", "websockets_server.py", "plain", "websockets (asyncio loop)"),
    ServerSpec("aiohttp", "aiohttp_server.py", "plain", "aiohttp (asyncio loop)"),
    ServerSpec("picows", "picows_server.py", "plain", "picows + uvloop"),
    ServerSpec("node_ws", "node_ws_server.js", "plain", "Node ws", runtime="node"),
    ServerSpec("socketio", "socketio_server.py", "socketio",
               "python-socketio (aiohttp, asyncio loop)"),
    ServerSpec("trio_naive", "trio_naive.py", "plain", "wsproto + trio, awaiting each send"),
]
BY_NAME = {s.name: s for s in SERVERS}
WORKLOADS = "abcdefg"
BASELINE = "websockets"
#: (b)'s client patterns: connections x messages in flight per connection. The first is the
#: pattern of the (b) table and of the targets judged on one pattern.
PATTERNS = ["100x16", "10x1", "10x16", "10x64", "100x1", "100x64", "1000x1", "1000x16",
            "1000x64"]
SYSCOUNT_SO = VENV / "syscount.so"


# ----------------------------------------------------------------------------- environment


def ensure_venv(argv: list[str]) -> None:
    """Re-run under bench/.venv-bench, creating it first when it is missing."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PYTHON.exists():
        print("bench/.venv-bench is missing: running bench/setup.sh", file=sys.stderr)
        subprocess.run(["bash", str(BENCH / "setup.sh")], check=True)
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *argv])


def pinned(cpu: int) -> Any:
    """A ``preexec_fn`` pinning the child to ``cpu`` with the open-files limit raised (the harness
    starts no threads, so running it between fork and exec is safe)."""
    def preexec() -> None:
        os.sched_setaffinity(0, {cpu})
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return preexec


def snapshot(rev: str) -> tuple[str, str]:
    """Export the packages as of ``rev`` to a temporary folder; returns (folder, commit)."""
    commit = _git("rev-parse", "--short", f"{rev}^{{commit}}")
    if not commit:
        raise SystemExit(f"unknown revision {rev!r}")
    folder = tempfile.mkdtemp(prefix="sigma-bench-")
    packages = [p for p in ("sigma_core", "sigma_asyncio", "sigma_trio", "sigma_asgi",
                            "sigma_ops")
                if _git("cat-file", "-t", f"{commit}:{p}") == "tree"]
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit,
                              *packages],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder, commit


def machine_info(commit: str | None = None) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for dist in ("sigmasockets", "websockets", "aiohttp", "picows", "aiofastnet", "uvloop",
                 "trio", "wsproto", "flatbuffers"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    source = Path(ENV["PYTHONPATH"].split(os.pathsep)[0]) if commit else ROOT
    dirty = False if commit else bool(_git("status", "--porcelain", "--untracked-files=no",
                                           "sigma_core", "sigma_asyncio", "sigma_trio"))
    commit = commit or _git("rev-parse", "--short", "HEAD")
    websocket_py = source / "sigma_core" / "websocket.py"
    framer = (source / "sigma_core" / "_framer.py").exists() and "_framer" in (
        websocket_py.read_text() if websocket_py.exists() else "")
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
        "snapshot_of_commit": source != ROOT,
        "sigma_sources_modified": dirty,
        "sigma_core_uses_framer": framer,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def node_ws_ready() -> bool:
    return shutil.which("node") is not None and (BENCH / "node_modules" / "ws").is_dir()


def build_syscount() -> Path | None:
    """bench/syscount.so (the servers' socket-syscall counter), built when missing or older
    than its source; None without a C compiler."""
    source = BENCH / "syscount.c"
    if SYSCOUNT_SO.exists() and SYSCOUNT_SO.stat().st_mtime >= source.stat().st_mtime:
        return SYSCOUNT_SO
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(SYSCOUNT_SO), str(source),
                           "-ldl"], capture_output=True, text=True, check=False)
    return SYSCOUNT_SO if done.returncode == 0 else None


def trio_adapter_ready() -> bool:
    probe = "import sigma_trio; sigma_trio.SigmaSocketServer.serve"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, env=ENV,
                          check=False).returncode == 0


# ----------------------------------------------------------------------------- processes


class Server:
    """A server under test: its own process, pinned to CPU 0, stopped by PID. With the syscall
    counter (``SYSCOUNT``), its counters go to a fresh file, ``self.syscount``."""

    syscount_so: Path | None = None

    def __init__(self, spec: ServerSpec, port: int = 0, log: TextIO | None = None) -> None:
        self.spec = spec
        self.started = time.monotonic()
        env = ENV
        self.syscount: str | None = None
        if self.syscount_so is not None:
            fd, self.syscount = tempfile.mkstemp(prefix="sigma-syscount-")
            os.close(fd)
            env = {**ENV, "LD_PRELOAD": str(self.syscount_so), "SIGMA_SYSCOUNT": self.syscount}
        self.proc = subprocess.Popen(
            [*spec.command(), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL, text=True, env=env,
            preexec_fn=pinned(SERVER_CPU), cwd=BENCH)  # noqa: PLW1509
        self.port = int(_read_line(self.proc, "READY", 30).split()[1])
        self.ready_after = time.monotonic() - self.started

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.syscount is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.syscount)


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {prefix!r} line from {proc.args!r}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{proc.args!r} ended (exit {proc.wait()}) before {prefix!r}")
            if line.startswith(prefix):
                return line.strip()


def loadgen_cmd(workload: str, spec: ServerSpec, server: Server, quick: bool,
                pattern: str | None = None) -> list[str]:
    cmd = [sys.executable, str(BENCH / "loadgen.py"), workload,
           "--url", f"ws://127.0.0.1:{server.port}/", "--proto", spec.proto,
           "--server-pid", str(server.pid)]
    if pattern is not None:
        conns, in_flight = pattern.split("x")
        cmd += ["--conns", conns, "--in-flight", in_flight]
    if server.syscount is not None:
        cmd += ["--syscount", server.syscount]
    return [*cmd, "--quick"] if quick else cmd


def _parse_result(stdout: str, stderr: str, what: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError(f"{what}: no result\n{stderr[-3000:]}")


def run_loadgen(workload: str, spec: ServerSpec, quick: bool, log: TextIO) -> dict[str, Any]:
    """One measurement; ``workload`` is a letter, or ``b:<conns>x<in flight>``."""
    letter, _, pattern = workload.partition(":")
    server = Server(spec, log=log)
    try:
        proc = subprocess.run(loadgen_cmd(letter, spec, server, quick, pattern or None),
                              capture_output=True,
                              text=True, timeout=300, check=False, cwd=BENCH, env=LOADGEN_ENV,
                              preexec_fn=pinned(LOADGEN_CPU))
    finally:
        server.kill()
    return _parse_result(proc.stdout, proc.stderr, f"{workload}/{spec.name}")


def run_restart(spec: ServerSpec, quick: bool, log: TextIO) -> dict[str, Any]:
    """(e): clients connected; kill the server, start a new one on the same port, wait."""
    server = Server(spec, log=log)
    gen = subprocess.Popen(loadgen_cmd("e", spec, server, quick), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=BENCH, env=ENV,
                           preexec_fn=pinned(LOADGEN_CPU))  # noqa: PLW1509
    replacement: Server | None = None
    try:
        _read_line(gen, "READY", 120)
        killed_at = time.monotonic()
        server.kill()
        replacement = Server(spec, port=server.port, log=log)
        stdout, stderr = gen.communicate(timeout=180)
    finally:
        if gen.poll() is None:
            gen.kill()
            gen.wait()
        server.kill()
        if replacement is not None:
            replacement.kill()
    result = _parse_result(stdout, stderr, f"e/{spec.name}")
    result["new_server_ready_s"] = replacement.started - killed_at + replacement.ready_after
    result["all_resumed_s"] = result["last_welcome_monotonic"] - killed_at
    result["half_resumed_s"] = result["median_welcome_monotonic"] - killed_at
    result["loss_detected_s"] = result["first_lost_monotonic"] - killed_at
    return result


CORE_SCRIPT = """
import json, sys
import sigma_core.client, sigma_core.entropy, sigma_core.hub  # from PYTHONPATH when --commit
sys.path.insert(0, {bench!r})
import core_bench
echo = core_bench.bench_echo(100, {echo_rounds})
bcast = core_bench.bench_broadcast(1000, {bc_rounds})
print(json.dumps({{"echo_msgs_per_s": echo[0], "echo_cpu_us_per_msg": echo[1],
                  "broadcast_server_deliveries_per_s": bcast[0],
                  "broadcast_e2e_deliveries_per_s": bcast[1]}}))
"""


def run_core(quick: bool, log: TextIO) -> dict[str, Any]:
    """(f): bench/core_bench.py's two measurements in a process pinned to CPU 0."""
    echo_rounds, bc_rounds = (5, 3) if quick else (50, 30)
    script = CORE_SCRIPT.format(bench=str(BENCH), echo_rounds=echo_rounds, bc_rounds=bc_rounds)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False, cwd=BENCH,
                          preexec_fn=pinned(SERVER_CPU))
    log.write(proc.stderr)
    return _parse_result(proc.stdout, proc.stderr, "f/core")


def run_floor(patterns: list[str], quick: bool, log: TextIO) -> dict[str, Any]:
    """(g): bench/syscall_floor.py, one recv + one send per message, under each pattern."""
    proc = subprocess.run([sys.executable, str(BENCH / "syscall_floor.py"), "--patterns",
                           ",".join(patterns), "--seconds", "1" if quick else "2"],
                          capture_output=True, text=True, timeout=600, check=False, cwd=BENCH)
    log.write(proc.stderr)
    out: dict[str, Any] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            for key, value in row.items():
                if key != "pattern":
                    out[f"{row['pattern']}_{key}"] = value
    if not out:
        raise RuntimeError(f"g/floor: no result\n{proc.stderr[-3000:]}")
    return out


# ----------------------------------------------------------------------------- reporting


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in runs if key in r]
            out[key] = statistics.median(values)
            out[key + "_min"] = min(values)
            out[key + "_max"] = max(values)
    return out


def fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "n/a"
    return f"{value / base:.2f}"


def spread(m: dict[str, Any], key: str, digits: int = 0) -> str:
    return f"{fmt(m[key + '_min'], digits)}-{fmt(m[key + '_max'], digits)}"


def pct(value: float) -> str:
    return f"{100 * value:.0f}"


def noise_line(medians: dict[str, dict[str, Any]]) -> str:
    foreign0 = [m["foreign_cpu0_share_max"] for m in medians.values()
                if "foreign_cpu0_share_max" in m]
    foreign1 = [m["foreign_cpu1_share_max"] for m in medians.values()
                if "foreign_cpu1_share_max" in m]
    if not foreign0:
        return ""
    return (f"\nOther processes' CPU during the measured windows (worst run): core 0 (server) up "
            f"to {pct(max(foreign0))} %, core 1 (load generator) up to {pct(max(foreign1))} %.")


def tables(results: dict[str, dict[str, dict[str, Any]]], names: list[str], runs: int,
           quick: bool) -> str:
    out: list[str] = []

    def label(name: str) -> str:
        return BY_NAME[name].label

    def add(title: str, header: list[str], rows: list[list[str]], note: str = "") -> None:
        out.append(f"### {title}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
        out.extend("| " + " | ".join(r) + " |" for r in rows)
        if note:
            out.append(note)
        out.append("")

    med = {w: {s: r["median"] for s, r in per.items()} for w, per in results.items()}
    for w in WORKLOADS:
        med.setdefault(w, {})
    patterns = [w.split(":", 1)[1] for w in results if w.startswith("b:")]
    if med["a"]:
        base = med["a"].get(BASELINE, {})
        add("(a) the original's workload: 3 clients x 500 sequential 1 KiB round trips",
            ["server", "msgs/s", "x websockets", "p50 µs", "p99 µs", "max µs",
             "server µs CPU/msg"],
            [[label(s), fmt(m["msgs_per_s"]), ratio(m["msgs_per_s"], base.get("msgs_per_s")),
              fmt(m["p50_us"]), fmt(m["p99_us"]), fmt(m["max_us"]),
              fmt(m["server_cpu_us_per_msg"], 1)] for s, m in med["a"].items()],
            noise_line(med["a"]))
    if patterns:
        first = patterns[0]
        mb = med[f"b:{first}"]
        base = mb.get(BASELINE, {})
        conns, depth = first.split("x")
        add(f"(b) throughput: {int(conns):,} connections x {depth} in flight, 1 KiB echo",
            ["server", "msgs/s", "(min-max)", "x websockets", "server µs CPU/msg",
             "CPU/msg x websockets", "msgs/read", "writes/msg", "kernel %", "server CPU %",
             "load gen CPU %"],
            [[label(s), fmt(m["msgs_per_s"]), spread(m, "msgs_per_s"),
              ratio(m["msgs_per_s"], base.get("msgs_per_s")),
              fmt(m["server_cpu_us_per_msg"], 1),
              ratio(m["server_cpu_us_per_msg"], base.get("server_cpu_us_per_msg")),
              fmt(m.get("msgs_per_read"), 1), fmt(m.get("writes_per_msg"), 2),
              pct(m["server_kernel_share"]),
              pct(m["server_cpu_share"]), pct(m["loadgen_cpu_share"])]
             for s, m in mb.items()],
            noise_line(mb))
        if len(patterns) > 1:
            servers = list(dict.fromkeys(s for p in patterns for s in med[f"b:{p}"]))
            add("(b) every client pattern: server µs CPU per echoed message (messages per "
                "socket read)", ["server", *[f"{p.replace('x', ' conns x ')} in flight"
                                             for p in patterns]],
                [[label(s), *[(f"{fmt(m['server_cpu_us_per_msg'], 1)} "
                               f"({fmt(m.get('msgs_per_read'), 1)})"
                               if (m := med[f"b:{p}"].get(s)) else "n/a")
                              for p in patterns]] for s in servers],
                noise_line({f"{p}/{s}": m for p in patterns
                            for s, m in med[f"b:{p}"].items()}))
    if med["c"]:
        base = med["c"].get(BASELINE, {})
        add("(c) broadcast of 1 KiB to 1,000 clients",
            ["server", "deliveries/s", "(min-max)", "x websockets", "server µs CPU/delivery",
             "CPU/delivery x websockets", "server CPU %", "load gen CPU %"],
            [[label(s), fmt(m["deliveries_per_s"]), spread(m, "deliveries_per_s"),
              ratio(m["deliveries_per_s"], base.get("deliveries_per_s")),
              fmt(m["server_cpu_us_per_delivery"], 2),
              ratio(m["server_cpu_us_per_delivery"], base.get("server_cpu_us_per_delivery")),
              pct(m["server_cpu_share"]), pct(m["loadgen_cpu_share"])]
             for s, m in med["c"].items()],
            noise_line(med["c"]))
    if med["d"]:
        base = med["d"].get(BASELINE, {})
        n = next(iter(med["d"].values()))["connections"]
        add(f"(d) memory per connection at {n:,.0f} connections (server VmRSS)",
            ["server", "KiB/connection idle", "(min-max)", "x websockets",
             "KiB/connection after one echo each", "(min-max)", "RSS before MiB",
             "RSS idle MiB", "RSS after the echoes MiB"],
            [[label(s), fmt(m["kib_per_conn"], 1), spread(m, "kib_per_conn", 1),
              ratio(m["kib_per_conn"], base.get("kib_per_conn")),
              fmt(m["kib_per_conn_after_echo"], 1), spread(m, "kib_per_conn_after_echo", 1),
              fmt(m["rss_before_kib"] / 1024, 1), fmt(m["rss_after_kib"] / 1024, 1),
              fmt(m["rss_after_echo_kib"] / 1024, 1)]
             for s, m in med["d"].items()])
    if "e" in results:
        rows = []
        for s in names:
            m = med["e"].get(s)
            if m is None:
                rows.append([label(s), "n/a (no resume)", "n/a", "n/a", "n/a", "n/a"])
                continue
            rows.append([label(s), fmt(m["all_resumed_s"], 2), spread(m, "all_resumed_s", 2),
                         fmt(m["half_resumed_s"], 2), fmt(m["new_server_ready_s"], 2),
                         f"{m['attempts_max']:.0f}"])
        n = next(iter(med["e"].values()))["clients"] if med["e"] else 1000
        add(f"(e) server restart (kill, start a new process on the same port): {n:,.0f} clients",
            ["server", "all have a Welcome again after s", "(min-max)", "half after s",
             "new server listening after s", "most attempts by one client"], rows,
            "\nClients reconnect with full jitter (initial 1 s, x2, cap 30 s). The new process "
            "has no sessions, so every client gets an explicit fresh session (resumed=false).")
    if "f" in results:
        m = results["f"]["core"]["median"]
        add("(f) the sans-IO core alone, no sockets (bench/core_bench.py)",
            ["workload", "figure"],
            [["echo, 100 sessions (client core → hub → client core)",
              f"{fmt(m['echo_msgs_per_s'])} msgs/s, {fmt(m['echo_cpu_us_per_msg'], 1)} µs CPU "
              "per echoed message (client and server work)"],
             ["broadcast to 1,000 sessions, server side (publish + flush)",
              f"{fmt(m['broadcast_server_deliveries_per_s'])} deliveries/s"],
             ["broadcast to 1,000 sessions, end to end (clients decode too)",
              f"{fmt(m['broadcast_e2e_deliveries_per_s'])} deliveries/s"]])
    if "g" in results:
        g = results["g"]["floor"]["median"]
        floor_patterns = [k[:-len("_messages")] for k in g
                          if k.endswith("_messages") and not k.endswith(("_min", "_max"))]
        add("(g) the syscall floor: raw TCP echo, one recv + one send per 1 KiB message "
            "(bench/syscall_floor.py)",
            ["pattern", "server µs CPU/msg", "of which kernel", "of which user (Python loop)"],
            [[p, fmt(g[f"{p}_server_cpu_us_per_msg"], 2),
              fmt(g[f"{p}_server_kernel_us_per_msg"], 2),
              fmt(g[f"{p}_server_user_us_per_msg"], 2)] for p in floor_patterns])
        rows = []
        for p in patterns:
            floor = g.get(f"{p}_server_cpu_us_per_msg")
            for s, m in med[f"b:{p}"].items():
                if floor and (BY_NAME[s].ours or s in ("picows", "node_ws")):
                    above = m["server_cpu_us_per_msg"] - floor
                    rows.append([p, label(s), fmt(m["server_cpu_us_per_msg"], 1),
                                 fmt(floor, 1), fmt(above, 1),
                                 f"{100 * above / m['server_cpu_us_per_msg']:.0f}",
                                 fmt(m.get("reads_per_msg"), 2),
                                 fmt(m.get("writes_per_msg"), 2)])
        if rows:
            add("(b) against the floor: server µs CPU per message above one recv + one send",
                ["pattern", "server", "µs CPU/msg", "floor µs", "above floor µs",
                 "above floor %", "reads/msg", "writes/msg"], rows)
    head = f"Medians of {runs} run{'s' if runs != 1 else ''}" + (" (--quick)" if quick else "")
    return head + ".\n\n" + "\n".join(out)


def targets(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The issue's targets, each judged twice where it is a speed: on the rate (noisy here) and
    on server CPU per message (the stable figure), as "how many times better"."""
    def median(w: str, s: str, key: str) -> float | None:
        entry = results.get(w, {}).get(s)
        return entry["median"].get(key) if entry else None

    checks: list[dict[str, Any]] = []

    def better(w: str, ours: str, peer: str, want: float, text: str) -> None:
        echo = w.startswith("b")
        rate_key, cost_key = (("msgs_per_s", "server_cpu_us_per_msg") if echo
                              else ("deliveries_per_s", "server_cpu_us_per_delivery"))
        per = "message" if echo else "delivery"
        pairs = ((rate_key, "rate", median(w, ours, rate_key), median(w, peer, rate_key)),
                 (cost_key, f"server CPU per {per}", median(w, peer, cost_key),
                  median(w, ours, cost_key)))
        for _key, what, num, den in pairs:
            if num is not None and den:
                got = num / den
                checks.append({"target": f"{text} ({what})", "value": got, "want": want,
                               "unit": "x", "met": got >= want})

    patterns = [w for w in results if w.startswith("b:")]
    if patterns:
        first = patterns[0]
        better(first, "sigma_asyncio_uvloop", "websockets", 2.0,
               "(b) sigma_asyncio+uvloop ≥ 2x websockets")
        better(first, "sigma_trio", "websockets", 1.0, "(b) sigma_trio ≥ websockets")
    for w in patterns:
        p = w.split(":")[1]
        ours = median(w, "sigma_asyncio_uvloop", "server_cpu_us_per_msg")
        for peer in ("picows", "node_ws"):
            theirs = median(w, peer, "server_cpu_us_per_msg")
            if ours and theirs:
                checks.append({"target": f"(b {p}) sigma_asyncio+uvloop CPU/msg ≤ {peer}",
                               "value": ours / theirs, "want": 1.0, "unit": "x (≤)",
                               "met": ours <= theirs})
        trio = median(w, "sigma_trio", "server_cpu_us_per_msg")
        if ours and trio:
            checks.append({"target": f"(b {p}) sigma_trio CPU/msg within 1.25x of "
                                     "sigma_asyncio+uvloop", "value": trio / ours,
                           "want": 1.25, "unit": "x (≤)", "met": trio <= 1.25 * ours})
        plain = median(w, "sigma_asyncio", "server_cpu_us_per_msg")
        aio = median(w, "aiohttp", "server_cpu_us_per_msg")
        if plain and aio:
            checks.append({"target": f"(b {p}) sigma_asyncio (asyncio loop) CPU/msg ≤ aiohttp",
                           "value": plain / aio, "want": 1.0, "unit": "x (≤)",
                           "met": plain <= aio})
    for ours in ("sigma_asyncio_uvloop", "sigma_asyncio", "sigma_trio"):
        better("c", ours, "picows", 2.0, f"(c) {ours} ≥ 2x picows")
    better("c", "sigma_trio", "trio_naive", 4.0, "(c) sigma_trio ≥ 4x naive trio")
    for ours in ("sigma_asyncio", "sigma_asyncio_uvloop", "sigma_trio"):
        kib = median("d", ours, "kib_per_conn")
        echoed = median("d", ours, "kib_per_conn_after_echo")
        if kib is not None:
            checks.append({"target": f"(d) {ours} ≤ 3 KiB per idle session", "value": kib,
                           "want": 3.0, "unit": "KiB", "met": kib <= 3.0})
        if echoed is not None:
            checks.append({"target": f"(d) {ours} ≤ 4 KiB per session after one echo",
                           "value": echoed, "want": 4.0, "unit": "KiB", "met": echoed <= 4.0})
    return checks


def targets_table(checks: list[dict[str, Any]]) -> str:
    lines = ["### Issue targets\n", "| target | measured | met |", "|---|---:|---|"]
    for c in checks:
        value = (f"{c['value']:.2f} x" if c["unit"].startswith("x")
                 else f"{c['value']:.1f} KiB")
        lines.append(f"| {c['target']} | {value} | {'yes' if c['met'] else '**no**'} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def main() -> None:
    argv = sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per figure (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="shorter windows, 1,000 connections for (d), 200 clients for (e)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="workloads to run, e.g. a,b,c (default: all)")
    parser.add_argument("--servers",
                        default=",".join(s.name for s in SERVERS if not s.diagnostic),
                        help="servers to run (default: all but the diagnostic "
                             "sigma_asyncio_uvloop_imports): " + ", ".join(BY_NAME))
    parser.add_argument("--patterns", default=",".join(PATTERNS),
                        help="(b)'s client patterns, CONNSxIN_FLIGHT, the first one also in its "
                             "own table (default: " + ",".join(PATTERNS) + ")")
    parser.add_argument("--no-syscount", action="store_true",
                        help="run the servers without bench/syscount.so (no msgs/read figures)")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--commit", metavar="REV",
                        help="benchmark the packages as of this git revision (exported to a "
                             "temporary folder) instead of the working tree, which may change "
                             "while a run goes on")
    parser.add_argument("--client-tree", metavar="DIR", type=Path,
                        help="the load generator imports sigma_core from DIR (a source tree, "
                             "compiled or not) whatever the servers run: an A/B of server code "
                             "with the client held fixed (default: the client follows "
                             "PYTHONPATH like the servers)")
    parser.add_argument("--max-foreign", type=float, default=0.2,
                        help="a measured window in which other processes took more than this "
                             "share of a pinned core is measured again (default 0.2)")
    parser.add_argument("--retries", type=int, default=1,
                        help="how many times such a window is measured again; the least "
                             "disturbed try is kept (default 1)")
    parser.add_argument("--retry-budget", type=float, default=120.0,
                        help="seconds the whole run may spend on such repeats (default 120)")
    parser.add_argument("--random-hash-seed", action="store_true",
                        help="let every server process draw its own string-hash seed; by "
                             "default run i gives every server PYTHONHASHSEED=i (1, 2, ...), so "
                             "servers compared in one run share their dicts' hash layout")
    args = parser.parse_args(argv)
    ensure_venv(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r}")
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    for n in names:
        if n not in BY_NAME:
            parser.error(f"unknown server {n!r} (known: {', '.join(BY_NAME)})")
    notes: list[str] = []
    folder, commit = snapshot(args.commit) if args.commit else ("", "")
    if folder:
        ENV["PYTHONPATH"] = os.pathsep.join(p for p in (folder, ENV.get("PYTHONPATH")) if p)
        notes.append(f"packages as of commit {commit} (snapshot), not the working tree")
    if args.client_tree is not None:
        global LOADGEN_ENV  # noqa: PLW0603
        tree = args.client_tree.resolve()
        if not (tree / "sigma_core" / "__init__.py").exists():
            parser.error(f"--client-tree {tree}: no sigma_core package there")
        LOADGEN_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(tree), os.environ.get("PYTHONPATH")) if p))
        notes.append(f"load generator's sigma_core from {tree}")
    patterns = [p.strip() for p in args.patterns.split(",") if p.strip()]
    for p in patterns:
        conns, _, depth = p.partition("x")
        if not (conns.isdigit() and depth.isdigit() and int(conns) > 0 and int(depth) > 0):
            parser.error(f"bad pattern {p!r}: want CONNSxIN_FLIGHT, e.g. 100x16")
    if "node_ws" in names and not node_ws_ready():
        names.remove("node_ws")
        notes.append("node_ws skipped: node or bench/node_modules/ws missing (bench/setup.sh)")
    if not args.no_syscount:
        Server.syscount_so = build_syscount()
        if Server.syscount_so is None:
            notes.append("no syscall counts: bench/syscount.c could not be built (no cc?)")
    if "sigma_trio" in names and not trio_adapter_ready():
        names.remove("sigma_trio")
        notes.append("sigma_trio skipped: the trio adapter is not importable yet")
    specs = [BY_NAME[n] for n in names]
    os.sched_setaffinity(0, {LOADGEN_CPU})  # the harness mostly sleeps; keep it off the server
    RESULTS.mkdir(exist_ok=True)
    log_path = RESULTS / "servers.log"
    command = " ".join(["bench/.venv-bench/bin/python bench/run.py", shlex.join(argv)]).strip()
    info = machine_info(commit or None)
    print(f"# {command}\n# {info['cpu_model']}, nproc {info['nproc']}, Python {info['python']},"
          f" commit {info['git_commit']}"
          + (" + uncommitted changes" if info["sigma_sources_modified"] else "")
          + "".join(f"\n# {n}" for n in notes), flush=True)
    started = time.monotonic()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    retried_s = 0.0
    with open(log_path, "w") as log:
        keys = [k for w in workloads
                for k in ([f"b:{p}" for p in patterns] if w == "b" else [w])]
        for w in keys:
            if w == "f":
                raw["f"] = {"core": []}
                for i in range(runs):
                    _progress(w, "core", i, runs, started)
                    raw["f"]["core"].append(run_core(args.quick, log))
                continue
            if w == "g":
                raw["g"] = {"floor": []}
                for i in range(runs):
                    _progress(w, "floor", i, runs, started)
                    raw["g"]["floor"].append(run_floor(patterns, args.quick, log))
                continue
            raw[w] = {s.name: [] for s in specs if w != "e" or s.ours}
            for i in range(runs):
                if not args.random_hash_seed:  # run i: the same seed for every server
                    ENV["PYTHONHASHSEED"] = str(i + 1)
                # Each run starts with the next server, so none always runs first or right
                # after the same neighbour.
                for spec in specs[i % len(specs):] + specs[:i % len(specs)]:
                    if w == "e" and not spec.ours:
                        continue
                    _progress(w, spec.name, i, runs, started)
                    log.write(f"--- {w} {spec.name} run {i + 1}\n")
                    log.flush()
                    try:
                        result = (run_restart(spec, args.quick, log) if w == "e"
                                  else run_loadgen(w, spec, args.quick, log))
                    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
                        # One server failing one workload (e.g. a peer that cannot keep 1,000
                        # connections) is reported, and the run goes on.
                        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        notes.append(f"({w}) {spec.name} run {i + 1} failed: {first_line}")
                        log.write(f"FAILED {w} {spec.name}: {exc}\n")
                        continue
                    if w != "e":
                        for _retry in range(args.retries):
                            if (foreign(result) <= args.max_foreign
                                    or retried_s > args.retry_budget):
                                break
                            t0 = time.monotonic()
                            _progress(w, spec.name, i, runs, started,
                                      f"again: {100 * foreign(result):.0f} % foreign CPU")
                            try:
                                again = run_loadgen(w, spec, args.quick, log)
                            except (RuntimeError, subprocess.TimeoutExpired):
                                break
                            again["retried"] = result.get("retried", 0) + 1
                            result = min(result, again, key=foreign)
                            retried_s += time.monotonic() - t0
                    result["hash_seed"] = ENV.get("PYTHONHASHSEED", "random")
                    raw[w][spec.name].append(result)
    results = {w: {s: {"runs": r, "median": median_of(r)} for s, r in per.items() if r}
               for w, per in raw.items()}
    checks = targets(results)
    elapsed = time.monotonic() - started
    report = tables(results, names, runs, args.quick) + "\n" + targets_table(checks)
    if notes:
        report += "\nNotes:\n" + "".join(f"* {n}\n" for n in notes)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    print("\n" + report)
    print(f"total time {elapsed:.0f} s; raw results in {args.output}")
    info["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    args.output.write_text(json.dumps({
        "command": command,
        "runs": runs,
        "quick": args.quick,
        "machine": info,
        "notes": notes,
        "elapsed_s": elapsed,
        "results": results,
        "targets": checks,
        "report_markdown": report,
    }, indent=1))


def foreign(result: dict[str, Any]) -> float:
    """The larger share of either pinned core that other processes took during the window."""
    return float(max(result.get("foreign_cpu0_share", 0.0),
                     result.get("foreign_cpu1_share", 0.0)))


def _progress(w: str, name: str, i: int, runs: int, started: float, note: str = "") -> None:
    print(f"  [{time.monotonic() - started:5.0f} s] ({w}) {name} run {i + 1}/{runs}"
          + (f" {note}" if note else ""), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
