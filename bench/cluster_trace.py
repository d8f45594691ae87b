"""The timeline of one message, from the kernel's side: strace on every process a message
crosses, one node against two nodes on Redis.

    .venv/bin/python bench/cluster_trace.py [--rate 20] [--seconds 6] [--backend asyncio]

Starts Redis, then per scenario its nodes (``bench/cluster_node.py``, library defaults) and a
client process (a publisher on node A, one receiver on node B — on one node both on it) that
sends ``--rate`` 64-byte messages a second. ``perf trace`` (or with ``--tool strace``,
``strace -f -ttt -T``) is attached to the client, the node(s) and redis-server for the paced
window. Each message is followed through the syscalls by their order and sizes:

    client write → A wakes (epoll) → A reads the frame → A writes the append to Redis →
    Redis wakes → Redis reads it → Redis writes the PUBLISH to B → B wakes → B reads it →
    B writes the frame to the receiver → the client wakes → the client reads it

(on one node: client write → node wakes → node reads → node writes → client wakes → reads).
Printed: the median time of each hop since the client's write, the median gap between hops,
and how many ``epoll_wait`` calls each process made per message. Then the floor of the
Redis hop, untraced: a raw client's ``PUBLISH`` reaching a raw subscriber (blocking sockets,
no event loop, no framework) in another process — two process wake-ups through Redis —, and
the same through the engine's append script (``EVALSHA``) instead of a bare ``PUBLISH``.
``perf trace`` records from the kernel's syscall tracepoints without stopping the processes
(a few µs per syscall); strace stops every traced process at each traced syscall (tens of µs
each), so its absolute figures are inflated.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cluster_support import RedisServer, start_node  # noqa: E402
from sigma_redis._lua import APPEND  # noqa: E402

CLIENT = r"""
import asyncio, sys, time
import sigma_asyncio

async def main(pub_port, recv_port, rate, seconds):
    got = []
    def on_message(data, message_id, timestamp_ms, topic):
        if data.startswith(b"t"):
            got.append(time.perf_counter() - float(data[1:33]))
    receiver = sigma_asyncio.SigmaSocketClient(f"ws://127.0.0.1:{recv_port}/")
    receiver.on("message", on_message)
    await receiver.connect()
    receiver.subscribe("room")
    publisher = receiver if pub_port == recv_port else \
        sigma_asyncio.SigmaSocketClient(f"ws://127.0.0.1:{pub_port}/")
    if publisher is not receiver:
        await publisher.connect()
    await asyncio.sleep(2.0)
    print("READY", flush=True)
    await asyncio.sleep(float(sys.stdin.readline() and 0.5))  # strace attached
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        publisher.send(b"t%032.6f" % time.perf_counter() + b"x" * 31)
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
    await asyncio.sleep(0.5)
    got.sort()
    print("DONE", len(got), got[len(got) // 2] * 1000 if got else 0, flush=True)
    for c in {publisher, receiver}:
        await c.disconnect()

asyncio.run(main(*map(int, sys.argv[1:3]), float(sys.argv[3]), float(sys.argv[4])))
"""

FLOOR = r"""
import socket, sys, time
port, role, rate, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
script = sys.argv[5].encode() if len(sys.argv) > 5 else b""  # the append script, or PUBLISH
channel = b"sigma:{floor}:c" if script else b"floor"
sock = socket.create_connection(("127.0.0.1", port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def cmd(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
if role == "sub":
    sock.sendall(cmd(b"SUBSCRIBE", channel))
    sock.recv(1024)
    print("READY", flush=True)
    got = []
    buf = b""
    while True:
        data = sock.recv(65536)
        now = time.perf_counter()
        if not data:
            break
        buf += data
        while b"T" in buf and b"E" in buf[buf.index(b"T"):]:
            start = buf.index(b"T")
            end = buf.index(b"E", start)
            sent = float(buf[start + 1:end])
            buf = buf[end + 1:]
            if sent < 0:
                got.sort()
                p50, p99 = got[len(got) // 2], got[int(len(got) * .99) - 1]
                print("DONE", len(got), p50 * 1000, p99 * 1000, flush=True)
                sys.exit(0)
            got.append(now - sent)
else:
    if script:
        sock.sendall(cmd(b"SCRIPT", b"LOAD", script))
        sha = sock.recv(1024).split(b"\r\n")[1]
    def publish(data):
        if not script:
            return cmd(b"PUBLISH", channel, data)
        now = b"%d" % (time.time() * 1000)
        return cmd(b"EVALSHA", sha, b"2", b"sigma:{floor}:m", b"sigma:{floor}:s", b"7", data,
                   now, b"", channel, b"PUBLISH", b"10000", b"16777216", b"600000",
                   b"86400000", now, b"1")
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        sock.sendall(publish(b"T%.6fE" % time.perf_counter() + b"x" * 140))
        sock.recv(1024)
        n += 1
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    sock.sendall(publish(b"T-1E"))
    sock.recv(1024)
"""


def floor(redis: RedisServer, args: argparse.Namespace, script: str = "") -> None:
    """The physics of the Redis hop: a raw client's PUBLISH (blocking socket, no event loop)
    reaching a raw subscriber in another process (blocking recv) — two process wake-ups
    through redis-server, and nothing else. ``script``: the same through the engine's append
    script (EVALSHA, the message published by the script) instead of a bare PUBLISH."""
    port = str(int(redis.url.rsplit(":", 1)[1].split("/")[0]))
    extra = [script] if script else []
    sub = subprocess.Popen([sys.executable, "-c", FLOOR, port, "sub", "0", "0", *extra],
                           stdout=subprocess.PIPE)
    assert sub.stdout is not None
    assert sub.stdout.readline().startswith(b"READY")
    subprocess.run([sys.executable, "-c", FLOOR, port, "pub", str(args.rate),
                    str(args.seconds), *extra], check=True, timeout=args.seconds + 30)
    done = sub.stdout.readline().split()
    sub.wait(timeout=10)
    sub.stdout.close()
    what = "EVALSHA of the append script" if script else "PUBLISH"
    print(f"\n## the floor: raw {what} → raw subscriber through Redis, {int(done[1])} "
          f"messages at {args.rate:g}/s: p50 {float(done[2]):.3f} ms, p99 "
          f"{float(done[3]):.3f} ms (no tracing)")


LINE = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\d+\.\d+)\s+(\w+)\((\d+)?(.*?)\)\s+=\s+(-?\d+)"
                  r".*<(\d+\.\d+)>$")


class Call:
    __slots__ = ("args", "dur", "fd", "name", "ret", "t")

    def __init__(self, t: float, name: str, fd: int, args: str, ret: int, dur: float) -> None:
        self.t, self.name, self.fd, self.args, self.ret, self.dur = t, name, fd, args, ret, dur

    @property
    def end(self) -> float:
        return self.t + self.dur


PERF_LINE = re.compile(r"^\s*(\d+\.\d+) \(\s*(\d+\.\d+) ms\): \S+?/\d+\s+"
                       r"(?:\.\.\. \[continued\]: )?(\w+)\((.*)\)\)?\s+= (-?\d+)")


def parse_perf(path: Path, pids: dict[int, str]) -> dict[str, list[Call]]:
    """``perf trace`` output: ms since the trace began; every process in one file."""
    traces: dict[str, list[Call]] = {name: [] for name in pids.values()}
    owner = re.compile(r"/(\d+) ")
    for line in path.read_text(errors="replace").splitlines():
        m = PERF_LINE.match(line)
        who = owner.search(line)
        if not m or not who:
            continue
        name = pids.get(int(who[1]))
        if name is None:
            continue
        fd = re.search(r"(?:fd|epfd): (\d+)", m[4])
        traces[name].append(Call(float(m[1]) / 1000, m[3], int(fd[1]) if fd else -1, m[4],
                                 int(m[5]), float(m[2]) / 1000))
    for calls in traces.values():
        calls.sort(key=lambda c: c.t)
    return traces


def parse(path: Path) -> list[Call]:
    calls = []
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            calls.append(Call(float(m[1]), m[2], int(m[3] or -1), m[4], int(m[5]),
                              float(m[6])))
    calls.sort(key=lambda c: c.t)
    return calls


READS = ("read", "recvfrom", "recvmsg")
WRITES = ("write", "sendto", "sendmsg", "writev")
POLLS = ("epoll_wait", "epoll_pwait", "poll", "select")


def first(calls: list[Call], after: float, names: tuple[str, ...], least: int = 1,
          most: int = 1 << 30) -> Call | None:
    """The first call of ``names`` at or after ``after`` that moved ``least`` to ``most``
    bytes (the hops are told apart by their sizes: a 64-byte payload makes a 152-byte
    client frame, a ~450-byte EVALSHA, a ~240-byte pub/sub message, a 164-byte frame out)."""
    for c in calls:
        if c.t >= after and c.name in names and least <= c.ret <= most:
            return c
    return None


def wake_before(calls: list[Call], read: Call, after: float) -> float | None:
    """When the process woke for ``read``: the return of the last poll before it that found
    something (0 µs when it was already awake)."""
    last = None
    for c in calls:
        if c.t >= read.t:
            break
        if c.name in POLLS and c.ret > 0 and c.end >= after:
            last = c
    return last.end if last is not None else None


def timeline(traces: dict[str, list[Call]], cross: bool, sends: list[Call]
             ) -> tuple[list[str], list[list[float]], dict[str, float]]:
    client = traces["client"]
    names: list[str] = []
    rows: list[list[float]] = []
    for send in sends:
        t0 = send.t
        hops: list[tuple[str, float | None]] = []
        node_a = traces["A"]
        a_read = first(node_a, t0, READS, 140)
        if a_read is None:
            continue
        hops.append(("A wakes (epoll returns)", wake_before(node_a, a_read, t0)))
        hops.append(("A reads the frame", a_read.t))
        if cross:
            a_write = first(node_a, a_read.t, WRITES, 400)
            if a_write is None:
                continue
            hops.append(("A writes EVALSHA to Redis", a_write.t))
            redis = traces["redis"]
            r_read = first(redis, a_write.t, READS, 400)
            r_pub = None if r_read is None else first(redis, r_read.t, WRITES, 150)
            if r_read is None or r_pub is None:
                continue
            hops.append(("Redis wakes", wake_before(redis, r_read, a_write.t)))
            hops.append(("Redis reads it", r_read.t))
            hops.append(("Redis writes the PUBLISH to B", r_pub.t))
            node_b = traces["B"]
            b_read = first(node_b, r_pub.t, READS, 150)
            if b_read is None:
                continue
            hops.append(("B wakes", wake_before(node_b, b_read, r_pub.t)))
            hops.append(("B reads it", b_read.t))
            out_proc, out_after = node_b, b_read.t
        else:
            out_proc, out_after = node_a, a_read.t
        out = first(out_proc, out_after, WRITES, 150)
        if out is None:
            continue
        hops.append(("node writes the frame to the receiver", out.t))
        c_read = first(client, out.t, READS, 150)
        if c_read is None:
            continue
        hops.append(("the client wakes", wake_before(client, c_read, out.t)))
        hops.append(("the client reads it", c_read.t))
        if any(t is None for _, t in hops):
            continue
        names = [n for n, _ in hops]
        rows.append([(t - t0) * 1000 for _, t in hops])  # type: ignore[operator]
    # epoll calls per message over the window, per process
    span = (sends[-1].t - sends[0].t) if len(sends) > 1 else 1.0
    polls = {}
    for name, calls in traces.items():
        window = [c for c in calls if sends[0].t <= c.t <= sends[-1].t and c.name in POLLS]
        polls[name] = len(window) / max(1, len(sends) - 1) if span else 0.0
    return names, rows, polls


def run_scenario(label: str, redis: RedisServer | None, args: argparse.Namespace,
                 tmp: Path) -> None:
    cross = redis is not None
    os.environ["SIGMA_NODE_DEFAULTS"] = "1"
    root = Path(args.root).resolve() if args.root else None
    nodes = [start_node(args.backend, redis.url, "ta", root=root),
             start_node(args.backend, redis.url, "tb", root=root)] \
        if redis is not None else [start_node(args.backend, "none", "t1", root=root)]
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(nodes[0].port), str(nodes[-1].port), str(args.rate),
         str(args.seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert client.stdout is not None
    assert client.stdin is not None
    tracers = []
    try:
        assert client.stdout.readline().startswith(b"READY")
        pids = {"client": client.pid, "A": nodes[0].process.pid}
        if cross:
            assert redis is not None
            assert redis.process is not None
            pids["B"] = nodes[1].process.pid
            pids["redis"] = redis.process.pid
        if args.tool == "strace":
            for name, pid in pids.items():
                tracers.append(subprocess.Popen(
                    ["strace", "-f", "--seccomp-bpf", "-ttt", "-T", "-s", "64",
                     "-o", str(tmp / f"{label}.{name}"), "-e",
                     "trace=network,read,write,writev,epoll_wait,epoll_pwait,poll,select",
                     "-p", str(pid)], stderr=subprocess.DEVNULL))
        else:
            tracers.append(subprocess.Popen(
                ["perf", "trace", "-o", str(tmp / f"{label}.perf"), "-e",
                 "read,write,writev,sendto,recvfrom,epoll_wait,epoll_pwait,poll,select",
                 "-p", ",".join(str(pid) for pid in pids.values())],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)
        client.stdin.write(b"go\n")
        client.stdin.flush()
        done = client.stdout.readline().split()
        client.wait(timeout=args.seconds + 30)
    finally:
        for tracer in tracers:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(timeout=10)
        if client.poll() is None:
            client.kill()
        for node in nodes:
            node.stop()
    if args.tool == "strace":
        traces = {name: parse(tmp / f"{label}.{name}") for name in pids}
    else:
        traces = parse_perf(tmp / f"{label}.perf", {pid: name for name, pid in pids.items()})
    # The publisher's writes of a message: a 152-byte client frame (acks are 50 bytes).
    sends = [c for c in traces["client"] if c.name in WRITES and 140 <= c.ret <= 160]
    names, rows, polls = timeline(traces, cross, sends)
    print(f"\n## {label}: {len(rows)} of {len(sends)} messages followed "
          f"(client's own p50 under tracing: {float(done[2]):.2f} ms)\n")
    print("| hop | p50 ms since the client's write | p50 gap from the hop before |")
    print("|---|---|---|")
    previous = 0.0
    for i, name in enumerate(names):
        column = [r[i] for r in rows]
        gaps = [r[i] - (r[i - 1] if i else 0.0) for r in rows]
        print(f"| {name} | {statistics.median(column):.3f} | {statistics.median(gaps):.3f} |")
        previous = statistics.median(column)
    del previous
    print("\npoll calls per message: " +
          ", ".join(f"{name} {n:.1f}" for name, n in polls.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--tool", default="perf", choices=["perf", "strace"],
                        help="perf trace (default: no stop per syscall) or strace")
    parser.add_argument("--floor-only", action="store_true", help="only the raw floors")
    parser.add_argument("--root", metavar="DIR",
                        help="run the nodes from another checkout (git archive + compiled "
                             "sigma_core), for a before/after")
    parser.add_argument("--keep", metavar="DIR", help="keep the trace files in DIR")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(args.keep or tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "redis").mkdir()
        redis = RedisServer(tmp / "redis").start()
        try:
            if not args.floor_only:
                run_scenario("one-node", None, args, tmp)
                run_scenario("cross-node", redis, args, tmp)
            floor(redis, args)
            floor(redis, args, APPEND)
        finally:
            redis.stop()
    print(f"\nload average: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
