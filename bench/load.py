"""Load runs: many connections, a churn storm, slow consumers among fast ones (loopback only,
bounded in time and count). Method and figures: docs/load.md.

    bench/.venv-bench/bin/python bench/load.py --scenario 10k|churn|slow|all \\
        --server sigma_asyncio_uvloop|sigma_asyncio|sigma_trio [--runs N] [--quick]

* ``10k`` -- 10,000 connections to one server process, each with Hello/Welcome, held with
  heartbeats every 5 s (timeout 15 s); then one broadcast to all of them.
* ``churn`` -- connect, Hello/Welcome, a message or two, then Goodbye, close, RST or vanish
  (and sometimes a resume first), as fast as it goes; then, after the session TTL: no
  session, no connection, and memory back to the baseline taken after a warm-up round.
* ``slow`` -- 200 fast readers and 20 slow ones while the server streams at a steady rate,
  against the same run without the slow ones.

The server (``bench/servers/sigma_load.py``) runs pinned to CPU 0, the load generators
(``bench/load_worker.py``, picows on uvloop) to CPU 1; the server is stopped by PID. The
harness reads the server's counters through an out-of-band control port (no session, no
connection). Prints a Markdown table per scenario, writes the raw results to
``bench/results/load-<scenario>-<server>.json``, and exits 1 when an invariant broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SERVER_CPU, LOADGEN_CPU = 0, 1
#: Where the servers' stderr goes (the adapters log disconnections): set by main().
LOG: dict[str, Any] = {"server": subprocess.DEVNULL}
BACKENDS = {"sigma_asyncio_uvloop": "uvloop", "sigma_asyncio": "asyncio", "sigma_trio": "trio"}


def pinned(cpu: int) -> Callable[[], None]:
    def preexec() -> None:
        if cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return preexec


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process (utime + stime, clock ticks)."""
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds all CPUs have spent busy (user, nice, system; ``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return sum(int(x) for x in fields[1:4]) / os.sysconf("SC_CLK_TCK")


class Window:
    """CPU shares over a measured window: of the given processes, and of everything else on
    the machine (other people's work competing with the run), in CPUs (0-2 on 2 cores)."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.t0 = time.monotonic()
        self.cpu0 = [proc_cpu(pid) for pid in pids]
        self.busy0 = machine_busy()

    def close(self) -> tuple[list[float], float]:
        wall = time.monotonic() - self.t0
        used = [proc_cpu(pid) - c for pid, c in zip(self.pids, self.cpu0, strict=True)]
        foreign = max(0.0, machine_busy() - self.busy0 - sum(used)) / wall
        return [u / wall for u in used], foreign


class Server:
    """``bench/servers/sigma_load.py`` in its own process, pinned to CPU 0, stopped by PID."""

    def __init__(self, name: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "servers" / "sigma_load.py"),
             "--backend", BACKENDS[name], *options],
            stdout=subprocess.PIPE, stderr=LOG["server"], text=True,
            preexec_fn=pinned(SERVER_CPU))  # noqa: PLW1509
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        _, port, control = line.split()
        self.url = f"ws://127.0.0.1:{port}/"
        self.control = socket.create_connection(("127.0.0.1", int(control)))
        self.replies = self.control.makefile("rb")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ask(self, line: str) -> dict[str, Any]:
        self.control.sendall(line.encode() + b"\n")
        reply: dict[str, Any] = json.loads(self.replies.readline())
        return reply

    def stats(self, full: bool = False) -> dict[str, Any]:
        return self.ask("stats full" if full else "stats")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class Worker:
    """``bench/load_worker.py`` pinned to CPU 1; its JSON lines arrive on a queue."""

    def __init__(self, role: str, url: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "load_worker.py"), role, "--url", url, *options],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            preexec_fn=pinned(LOADGEN_CPU))  # noqa: PLW1509
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.last: dict[str, dict[str, Any]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put({"event": "exit", "code": self.proc.wait()})

    def wait(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no {event!r} from the worker in {timeout} s") from None
            self.last[msg["event"]] = msg
            if msg["event"] == event:
                return msg
            if msg["event"] == "exit":
                raise RuntimeError(f"worker ended (exit {msg['code']}) before {event!r}")

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stats(self) -> dict[str, Any]:
        self.tell("stats")
        return self.wait("stats", 30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


class Checks:
    """Invariants of a run: each is printed; any failure makes the exit status 1."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bool, str]] = []

    def check(self, what: str, ok: bool, detail: object = "") -> None:
        self.items.append((what, bool(ok), str(detail)))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.items)


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


# ----------------------------------------------------------------------------- 10k


def scenario_10k(name: str, args: argparse.Namespace, checks: Checks) -> dict[str, Any]:
    n = 2000 if args.quick else args.connections
    hold = 15.0 if args.quick else args.hold
    interval, timeout = 5.0, 15.0
    workers_n = 2
    server = Server(name, "--heartbeat-interval", str(interval),
                    "--heartbeat-timeout", str(timeout), "--max-connections", str(n))
    workers: list[Worker] = []
    try:
        time.sleep(0.5)
        base = server.stats(full=True)
        t0 = time.monotonic()
        per = [n // workers_n + (i < n % workers_n) for i in range(workers_n)]
        workers = [Worker("hold", server.url, "--conns", str(k)) for k in per]
        connected = [w.wait("connected", 300) for w in workers]
        connect_s = time.monotonic() - t0
        after_connect = server.stats()
        samples = []
        window, w0 = Window(server.pid, *(w.proc.pid for w in workers)), time.monotonic()
        while (left := w0 + hold - time.monotonic()) > 0:
            time.sleep(min(5.0, left))
            s = server.stats()
            samples.append({"t": round(time.monotonic() - w0, 1), "sockets": s["sockets"],
                            "rss_kib": s["rss_kib"], "rtt_ms": s["average_latency"] * 1e3})
        (cpu_share, *_), foreign = window.close()
        held = server.stats()
        before_bcast = [w.stats() for w in workers]
        sent = server.ask("bcast 64")
        deadline = time.monotonic() + 60
        while True:
            ws = [w.stats() for w in workers]
            got = sum(s["stamps_total"] for s in ws)
            if got >= sum(s["open"] for s in before_bcast) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        bcast_s = (max(s["last_stamp_ns"] for s in ws) - sent["sent_ns"]) / 1e9
        end = server.stats()
    finally:
        for w in workers:
            w.kill()
        server.kill()
    opened = sum(c["open"] for c in connected)
    open_end = sum(s["open"] for s in ws)
    codes: dict[str, int] = {}
    for s in ws:
        for code, k in s["close_codes"].items():
            codes[code] = codes.get(code, 0) + k
    pings_min = min(s["pings_min"] for s in before_bcast)
    rounds_expected = int(hold / interval) - 1
    result = {
        "connections": n, "connected": opened,
        "connect_failed": sum(c["failed"] for c in connected), "connect_s": connect_s,
        "hold_s": hold, "heartbeat_interval_s": interval, "heartbeat_timeout_s": timeout,
        "open_at_end": open_end, "closed": sum(s["closed"] for s in ws), "close_codes": codes,
        "pings_min": pings_min, "pings_max": max(s["pings_max"] for s in before_bcast),
        "pings_total": sum(s["pings_total"] for s in before_bcast),
        "server_sockets": held["sockets"], "server_connected_clients": held["connected_clients"],
        "rss_base_kib": base["rss_kib"], "rss_connected_kib": after_connect["rss_kib"],
        "rss_held_kib": held["rss_kib"],
        "kib_per_conn": (held["rss_kib"] - base["rss_kib"]) / n,
        "server_cpu_share_hold": cpu_share, "foreign_cpus_hold": foreign,
        "avg_rtt_ms": held["average_latency"] * 1e3,
        "bcast_deliveries": got, "bcast_s": bcast_s,
        "messages_sent_delta": end["messages_sent"] - held["messages_sent"],
        "samples": samples,
    }
    checks.check("every connection opened", opened == n, f"{opened}/{n}")
    checks.check("all open at the end (none cut by heartbeat)", open_end == n and not codes,
                 f"{open_end}/{n}, close codes {codes}")
    checks.check("server holds them all", held["sockets"] == n and
                 held["connected_clients"] == n, f"{held['sockets']} sockets, "
                 f"{held['connected_clients']} connected clients")
    checks.check(f"every client answered >= {rounds_expected} heartbeat pings",
                 pings_min >= rounds_expected, f"min {pings_min}")
    checks.check("the broadcast reached every connection", got == n, f"{got}/{n}")
    return result


def table_10k(name: str, r: dict[str, Any]) -> str:
    rows = [
        ("connections held", f"{fmt(r['open_at_end'])} / {fmt(r['connections'])}"),
        ("time to connect all (Hello/Welcome)", f"{r['connect_s']:.1f} s"),
        ("hold, heartbeat interval / timeout",
         f"{r['hold_s']:.0f} s, {r['heartbeat_interval_s']:.0f} s / "
         f"{r['heartbeat_timeout_s']:.0f} s"),
        ("closed during the hold (codes)", f"{r['closed']} {r['close_codes'] or ''}"),
        ("pings answered per connection (min-max)", f"{r['pings_min']}-{r['pings_max']}"),
        ("pings answered in all", fmt(r["pings_total"])),
        ("server RSS idle -> 10k held", f"{fmt(r['rss_base_kib'] / 1024, 1)} -> "
                                        f"{fmt(r['rss_held_kib'] / 1024, 1)} MiB"),
        ("server RSS per connection", f"{r['kib_per_conn']:.1f} KiB"),
        ("server CPU during the hold", f"{100 * r['server_cpu_share_hold']:.1f} %"),
        ("other processes' CPU meanwhile", f"{r['foreign_cpus_hold']:.2f} CPUs"),
        ("average heartbeat RTT (server's stats)", f"{r['avg_rtt_ms']:.2f} ms"),
        ("broadcast of 64 B to all: deliveries, time",
         f"{fmt(r['bcast_deliveries'])} in {1000 * r['bcast_s']:.0f} ms"),
    ]
    return _table(f"10k connections on {name}", ("", "value"), rows)


# ----------------------------------------------------------------------------- churn


def settle(server: Server, limit: float) -> tuple[dict[str, Any], float]:
    """Wait until the server holds no socket and no session (or ``limit`` s)."""
    t0 = time.monotonic()
    while True:
        s = server.stats()
        if (s["sockets"] == 0 and s["sessions"] == 0 and s["hub_connections"] == 0) \
                or time.monotonic() - t0 > limit:
            return s, time.monotonic() - t0
        time.sleep(0.25)


def scenario_churn(name: str, args: argparse.Namespace, checks: Checks) -> dict[str, Any]:
    storm = 15.0 if args.quick else args.storm
    warm = 5.0
    ttl, interval, timeout = 5.0, 1.0, 3.0
    options = ["--heartbeat-interval", str(interval), "--heartbeat-timeout", str(timeout),
               "--session-ttl", str(ttl)]
    if args.tracemalloc:
        options.append("--tracemalloc")
    server = Server(name, *options)
    loops = str(args.loops)
    try:
        warm_w = Worker("churn", server.url, "--loops", loops, "--seconds", str(warm),
                        "--seed", "1", "--vanish-wait", str(timeout + 5))
        warm_r = warm_w.wait("result", warm + 60)
        warm_w.kill()
        _, warm_settle = settle(server, ttl + timeout + 30)
        time.sleep(1.0)
        base = server.stats(full=True)
        worker = Worker("churn", server.url, "--loops", loops, "--seconds", str(storm),
                        "--seed", "2", "--vanish-wait", str(timeout + 5))
        samples = []
        t0 = time.monotonic()
        window = Window(server.pid, worker.proc.pid)
        shares: tuple[list[float], float] | None = None
        result: dict[str, Any] | None = None
        while result is None:
            with contextlib.suppress(TimeoutError):
                result = worker.wait("result", 2.0)
            s = server.stats()
            progress = worker.last.get("progress", {})
            if time.monotonic() - t0 <= storm + 0.5:
                samples.append({
                    "t": round(time.monotonic() - t0, 1), "cycles": progress.get("cycles", 0),
                    "sockets": s["sockets"], "sessions": s["sessions"],
                    "rss_kib": s["rss_kib"], "allocated_blocks": s["allocated_blocks"],
                    "backplane_streams": s["backplane_streams"], "timer_heap": s["timer_heap"]})
            if time.monotonic() - t0 > storm + 120:
                raise TimeoutError("the churn worker did not finish")
            if result is None and time.monotonic() - t0 >= storm and shares is None:
                shares = window.close()
        if shares is None:
            shares = window.close()
        worker.kill()
        _after, settle_s = settle(server, ttl + timeout + 30)
        time.sleep(1.0)
        final = server.stats(full=True)
    finally:
        server.kill()
    cycles = result.get("cycles", 0) + result.get("vanish", 0)
    out = {
        "storm_s": result["storm_s"], "cycles": cycles, "cycles_per_s": cycles / result["storm_s"],
        "loops": args.loops, "session_ttl_s": ttl, "heartbeat_interval_s": interval,
        "heartbeat_timeout_s": timeout, "worker": result, "warmup": warm_r,
        "server_cpu_share": shares[0][0], "loadgen_cpu_share": shares[0][1],
        "foreign_cpus": shares[1],
        "total_connections": final["total_connections"] - base["total_connections"],
        "settle_s": settle_s, "warm_settle_s": warm_settle,
        "base": base, "final": final, "samples": samples,
        "peak_sessions": max(s["sessions"] for s in samples),
        "peak_sockets": max(s["sockets"] for s in samples),
        "peak_rss_kib": max(s["rss_kib"] for s in samples),
    }
    d_objects = final["gc_objects"] - base["gc_objects"]
    d_blocks = final["allocated_blocks"] - base["allocated_blocks"]
    d_rss = final["rss_kib"] - base["rss_kib"]
    out.update(d_gc_objects=d_objects, d_allocated_blocks=d_blocks, d_rss_kib=d_rss)
    # A leak of one object (or one allocated block) per cycle would add `cycles` of them.
    checks.check("no session left after the TTL", final["sessions"] == 0, final["sessions"])
    checks.check("no connection left", final["sockets"] == 0 and final["hub_connections"] == 0
                 and final["connected_clients"] == 0,
                 f"{final['sockets']} sockets, {final['hub_connections']} in the hub")
    checks.check("no topic stream left behind (inboxes dropped)",
                 final["backplane_streams"] == base["backplane_streams"],
                 f"{base['backplane_streams']} -> {final['backplane_streams']}")
    checks.check("gc-tracked objects back to baseline (< 1 per 10 cycles)",
                 abs(d_objects) < max(500, cycles // 10), f"{d_objects:+,} over {cycles:,} cycles")
    checks.check("allocated blocks back to baseline (< 1 per 10 cycles)",
                 abs(d_blocks) < max(2000, cycles // 10), f"{d_blocks:+,} over {cycles:,} cycles")
    if "tracemalloc_bytes" in final:
        d_traced = final["tracemalloc_bytes"] - base["tracemalloc_bytes"]
        out["d_tracemalloc_bytes"] = d_traced
        checks.check("traced memory back to baseline (< 16 B per cycle)",
                     d_traced < max(256 * 1024, 16 * cycles), f"{d_traced:+,} B")
    checks.check("vanished clients cut by the heartbeat",
                 result.get("vanished_not_cut", 0) == 0, result.get("vanish_close_codes"))
    checks.check("no connect failures, no missing echoes",
                 not result.get("connect_failed") and not result.get("echo_timeout"),
                 f"{result.get('connect_failed', 0)} failed, "
                 f"{result.get('echo_timeout', 0)} echo timeouts")
    return out


def table_churn(name: str, r: dict[str, Any]) -> str:
    w, b, f = r["worker"], r["base"], r["final"]
    rows = [
        ("cycles in the storm", f"{fmt(r['cycles'])} in {r['storm_s']:.0f} s "
                                f"({r['loops']} loops)"),
        ("rate", f"{fmt(r['cycles_per_s'])} connect/disconnect cycles/s"),
        ("CPU: server / load generator / other processes",
         f"{100 * r['server_cpu_share']:.0f} % / {100 * r['loadgen_cpu_share']:.0f} % / "
         f"{r['foreign_cpus']:.2f} CPUs"),
        ("endings: Goodbye / close / RST / vanish",
         f"{w.get('goodbye', 0)} / {w.get('close', 0)} / {w.get('rst', 0)} / "
         f"{w.get('vanish', 0)}"),
        ("resumes: accepted / refused (expired)",
         f"{w.get('resumed', 0)} / {w.get('resume_refused', 0)}"),
        ("vanished cut by heartbeat (close codes)", str(w.get("vanish_close_codes"))),
        ("peak during storm: sockets / sessions",
         f"{r['peak_sockets']} / {r['peak_sessions']}"),
        ("after TTL: sessions / sockets / hub connections",
         f"{f['sessions']} / {f['sockets']} / {f['hub_connections']} "
         f"(settled in {r['settle_s']:.1f} s)"),
        ("topic streams (baseline -> after)",
         f"{b['backplane_streams']} -> {f['backplane_streams']}"),
        ("gc-tracked objects (baseline -> after)",
         f"{fmt(b['gc_objects'])} -> {fmt(f['gc_objects'])} ({r['d_gc_objects']:+,})"),
        ("allocated blocks (baseline -> after)",
         f"{fmt(b['allocated_blocks'])} -> {fmt(f['allocated_blocks'])} "
         f"({r['d_allocated_blocks']:+,})"),
        ("RSS (baseline -> peak -> after)",
         f"{fmt(b['rss_kib'] / 1024, 1)} -> {fmt(r['peak_rss_kib'] / 1024, 1)} -> "
         f"{fmt(f['rss_kib'] / 1024, 1)} MiB"),
    ]
    if "d_tracemalloc_bytes" in r:
        rows.append(("tracemalloc (baseline -> after)",
                     f"{fmt(b['tracemalloc_bytes'])} -> {fmt(f['tracemalloc_bytes'])} B "
                     f"({r['d_tracemalloc_bytes']:+,})"))
    text = _table(f"churn storm on {name}", ("", "value"), rows)
    series = [(str(s["t"]), fmt(s["cycles"]), str(s["sockets"]), str(s["sessions"]),
               fmt(s["rss_kib"] / 1024, 1), fmt(s["allocated_blocks"]))
              for s in r["samples"]]
    return text + "\n" + _table(f"churn storm on {name}: server over time",
                                ("t s", "cycles", "sockets", "sessions", "RSS MiB",
                                 "allocated blocks"), series)


# ----------------------------------------------------------------------------- slow


def stream_run(name: str, args: argparse.Namespace, slow: int) -> dict[str, Any]:
    rate, seconds, size = args.rate, (8.0 if args.quick else args.stream), args.size
    count = int(rate * seconds)
    server = Server(name, "--high-water", str(args.high_water), "--heartbeat-interval", "5",
                    "--heartbeat-timeout", "15", "--history-count", str(args.history))
    try:
        worker = Worker("stream", server.url, "--fast", str(args.fast), "--slow", str(slow))
        worker.wait("connected", 60)
        base = server.stats(full=True)
        window, t0 = Window(server.pid, worker.proc.pid), time.monotonic()
        server.ask(f"stream {rate} {count} {size}")
        samples = []
        while True:
            time.sleep(0.5)
            s = server.stats()
            samples.append({"t": round(time.monotonic() - t0, 1), "rss_kib": s["rss_kib"],
                            "slow_cuts": s["slow_consumer_disconnects"],
                            "sockets": s["sockets"]})
            if s["stream_sent"] >= count:
                break
        (cpu_share, worker_share), foreign = window.close()
        deadline = time.monotonic() + 30
        while True:  # the fast ones' last deliveries, the slow ones' catching up
            ws = worker.stats()
            if ws["fast_received"] >= args.fast * count and time.monotonic() > t0 + seconds + 3:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        end = server.stats()
        worker.tell("quit")
        result = worker.wait("result", 60)
    finally:
        server.kill()
    return {"count": count, "rate": rate, "size": size, "fast_n": args.fast, "slow_n": slow,
            "high_water": args.high_water, "history": args.history,
            "server_cpu_share": cpu_share, "loadgen_cpu_share": worker_share,
            "foreign_cpus": foreign,
            "rss_base_kib": base["rss_kib"], "rss_peak_kib": max(s["rss_kib"] for s in samples),
            "slow_consumer_disconnects": end["slow_consumer_disconnects"],
            "failed_recoveries": end["failed_recoveries"], "resumes": end["resumes"],
            "samples": samples, **result}


def scenario_slow(name: str, args: argparse.Namespace, checks: Checks) -> dict[str, Any]:
    alone = stream_run(name, args, 0)
    mixed = stream_run(name, args, args.slow)
    for label, run in (("without slow", alone), ("with slow", mixed)):
        fast = run["fast"]
        checks.check(f"{label}: every fast client got every message, in order, once",
                     fast["received_min"] == run["count"] and not fast["gaps"]
                     and not fast["duplicates"] and not fast["cuts"],
                     f"min {fast['received_min']}/{run['count']}, gaps {fast['gaps']}, "
                     f"dups {fast['duplicates']}")
    s = mixed["slow"]
    outcomes = [x["status"] for x in s["recovery"]]
    checks.check("every slow consumer was cut (4007) and came back",
                 mixed["slow_consumer_disconnects"] >= args.slow and s["cuts"] == args.slow,
                 f"{mixed['slow_consumer_disconnects']} cuts by the server, "
                 f"{s['cuts']} seen by clients")
    checks.check("slow ones: nothing lost silently (recovered from history, or told)",
                 not s["gaps"] and not s["duplicates"]
                 and s["received_total"] + s["lost_reported"] == args.slow * mixed["count"],
                 f"received {s['received_total']} + reported lost {s['lost_reported']} "
                 f"vs {args.slow * mixed['count']}; gaps {s['gaps']}")
    # Unbounded, the server would hold every slow one's share of the stream (the run's length
    # times its rate); bounded, a slow one costs about the high-water mark (twice, with room).
    bound = alone["rss_peak_kib"] + args.slow * 2 * (args.high_water + (1 << 20)) / 1024
    checks.check("server memory bounded by the high-water mark",
                 mixed["rss_peak_kib"] <= bound,
                 f"peak {mixed['rss_peak_kib']} KiB <= {bound:.0f} KiB")
    return {"without_slow": alone, "with_slow": mixed,
            "recovered": outcomes.count("RECOVERED"), "failed": outcomes.count("FAILED")}


def table_slow(name: str, r: dict[str, Any]) -> str:
    a, m = r["without_slow"], r["with_slow"]
    rows = []
    for label, run in ((f"{a['fast_n']} fast", a), (f"{m['fast_n']} fast + {m['slow_n']} slow", m)):
        f = run["fast"]
        rows.append((label, f"{fmt(f['received_min'])}/{fmt(run['count'])}",
                     f"{fmt(run['fast_n'] * run['count'] / (run['count'] / run['rate']))}",
                     fmt(f["p50_us"]), fmt(f["p99_us"]), fmt(f["max_us"]),
                     f"{100 * run['server_cpu_share']:.0f} / "
                     f"{100 * run['loadgen_cpu_share']:.0f} / {run['foreign_cpus']:.2f}",
                     f"{fmt(run['rss_base_kib'] / 1024, 1)} -> "
                     f"{fmt(run['rss_peak_kib'] / 1024, 1)}",
                     str(run["slow_consumer_disconnects"])))
    s = m["slow"]
    text = _table(f"slow consumers on {name}: {a['rate']} msgs/s of {a['size']} B for "
                  f"{a['count'] / a['rate']:.0f} s, high water {a['high_water'] // 1024} KiB, "
                  f"history {a['history']} messages",
                  ("clients", "fast min received", "fast deliveries/s", "p50 µs", "p99 µs",
                   "max µs", "CPU % server / loadgen / others (CPUs)", "RSS MiB base -> peak",
                   "4007 cuts"), rows)
    return text + (f"\nSlow ones: {s['cuts']} cut and back; on resume {r['recovered']} recovered "
                   f"from history, {r['failed']} got RecoveryFailed ({fmt(s['lost_reported'])} "
                   f"messages reported lost); received {fmt(s['received_total'])}; "
                   f"gaps {s['gaps']}, duplicates {s['duplicates']}.\n")


# ----------------------------------------------------------------------------- main


def _table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = [f"#### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


SCENARIOS: dict[str, tuple[Callable[[str, argparse.Namespace, Checks], dict[str, Any]],
                           Callable[[str, dict[str, Any]], str]]] = {
    "10k": (scenario_10k, table_10k),
    "churn": (scenario_churn, table_churn),
    "slow": (scenario_slow, table_slow),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=(*SCENARIOS, "all"), default="all")
    parser.add_argument("--server", default="sigma_asyncio_uvloop",
                        help="comma-separated: " + ", ".join(BACKENDS))
    parser.add_argument("--runs", type=int, default=1, help="repeat each scenario N times")
    parser.add_argument("--quick", action="store_true", help="smaller and shorter: a smoke run")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--hold", type=float, default=60.0, help="10k: seconds to hold")
    parser.add_argument("--storm", type=float, default=60.0, help="churn: seconds")
    parser.add_argument("--loops", type=int, default=48, help="churn: concurrent cycles")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="churn: trace the server's allocations (slower)")
    parser.add_argument("--fast", type=int, default=200)
    parser.add_argument("--slow", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100, help="slow: broadcasts per second")
    parser.add_argument("--stream", type=float, default=20.0, help="slow: seconds of stream")
    parser.add_argument("--history", type=int, default=600,
                        help="slow: messages of history per topic")
    parser.add_argument("--size", type=int, default=8192, help="slow: bytes per broadcast")
    parser.add_argument("--high-water", type=int, default=1 << 20,
                        help="slow: the server's outgoing_high_water, bytes")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    names = args.server.split(",")
    for name in names:
        if name not in BACKENDS:
            parser.error(f"unknown server {name!r}")
    scenarios = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    RESULTS.mkdir(exist_ok=True)
    LOG["server"] = (RESULTS / "load-servers.log").open("a")
    failed = False
    print(f"load average at start: {loadavg()}", flush=True)
    for scenario in scenarios:
        run, table = SCENARIOS[scenario]
        for name in names:
            for i in range(args.runs):
                checks = Checks()
                started = time.monotonic()
                load_start = loadavg()
                try:
                    result = run(name, args, checks)
                    completed = True
                except Exception as exc:  # a broken run is a failed invariant, and reported
                    checks.check("the run completed", False, repr(exc))
                    result, completed = {}, False
                result.update(load_start=load_start, load_end=loadavg(),
                              wall_s=time.monotonic() - started,
                              checks=[{"what": w, "ok": ok, "detail": d}
                                      for w, ok, d in checks.items])
                suffix = f"-{i + 1}" if args.runs > 1 else ""
                path = RESULTS / f"load-{scenario}-{name}{suffix}.json"
                path.write_text(json.dumps(result, indent=1))
                if completed:
                    print(table(name, result))
                print(f"run {i + 1}/{args.runs}, {time.monotonic() - started:.0f} s, "
                      f"load average {load_start} -> {result['load_end']}; raw: {path}")
                for what, ok, detail in checks.items:
                    print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}")
                print(flush=True)
                failed |= not checks.ok
    print(f"load average at end: {loadavg()}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
