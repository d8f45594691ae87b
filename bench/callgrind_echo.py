"""Instructions per echoed message of a server under test, counted by callgrind.

    bench/.venv-bench/bin/python bench/callgrind_echo.py sigma_asyncio_uvloop \\
        [--pattern 10x1] [--messages 2000,6000] [--profile OUT]

Wall-clock and CPU figures move with whatever else runs on the machine; instruction counts do
not. This starts the server (``bench/servers/<name>``, as ``bench/run.py`` knows it) under
``valgrind --tool=callgrind`` twice, drives a fixed number of 1 KiB echoes through it with the
load generator's clients (``bench/loadgen.py``; CONNSxIN_FLIGHT), stops it with SIGINT (so
callgrind writes its counts) and prints the difference between the two runs divided by the
difference in messages: instructions per echoed message, start-up and connection set-up
cancelled out. Under callgrind the server runs ~50x slower, so with more than one message in
flight it finds every one of them waiting at each read: ``10x16`` measures the batched path,
``10x1`` one message per read. ``--profile OUT`` keeps both runs' callgrind files
(``OUT.small``, ``OUT.large``; ``callgrind_annotate OUT.large``) and prints the functions whose
own instructions grew most between them, per message: where the steady state spends its time,
start-up excluded.

``--broadcast``: instructions per delivered copy of a broadcast instead (bench/run.py's (c)):
CONNS clients connect, the first asks for ``BCAST 10`` rounds until each message count (here
deliveries, multiples of 10 x CONNS) is reached, e.g.
``callgrind_echo.py sigma_asyncio_uvloop --broadcast --pattern 100x1 --messages 2000,10000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import uvloop  # noqa: E402
from loadgen import PAYLOAD, PROTOCOLS, close_all, open_many  # noqa: E402
from run import BY_NAME  # noqa: E402

#: Extra valgrind options (``--valgrind-arg``), e.g. ``--cache-sim=yes``.
VALGRIND_ARGS: list[str] = []


async def drive(url: str, proto: str, conns: int, in_flight: int, total: int) -> None:
    cls = PROTOCOLS[proto]
    clients = await open_many(url, cls, conns, concurrency=min(conns, 50))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    sent = received = 0

    def on_message(conn: object) -> None:
        nonlocal sent, received
        received += 1
        if sent < total:
            sent += 1
            conn.send(PAYLOAD)  # type: ignore[attr-defined]
        elif received == total and not done.done():
            done.set_result(None)

    for conn in clients:
        conn.on_message = on_message
    for _ in range(in_flight):
        for conn in clients:
            if sent < total:
                sent += 1
                conn.send(PAYLOAD)
    await asyncio.wait_for(done, 600)
    close_all(clients)
    await asyncio.sleep(0.5)


async def drive_broadcast(url: str, proto: str, conns: int, rounds: int) -> None:
    """``rounds`` times ``BCAST 10`` from the first client; every client receives each copy."""
    cls = PROTOCOLS[proto]
    clients = await open_many(url, cls, conns, concurrency=min(conns, 50))
    loop = asyncio.get_running_loop()
    received = target = 0
    done: asyncio.Future[None] = loop.create_future()

    def on_message(conn: object) -> None:
        nonlocal received
        received += 1
        if received == target and not done.done():
            done.set_result(None)

    for conn in clients:
        conn.on_message = on_message
    await asyncio.sleep(0.5)
    for _ in range(rounds):
        target = received + 10 * conns
        done = loop.create_future()
        clients[0].send(b"BCAST 10")
        await asyncio.wait_for(done, 600)
    close_all(clients)
    await asyncio.sleep(0.5)


def per_function(path: Path, inclusive: bool = False) -> dict[str, int]:
    """Own (or inclusive) instructions per function (``callgrind_annotate``)."""
    text = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                           "--threshold=100", "--show=Ir",
                           "--auto=no", str(path)], capture_output=True, text=True,
                          check=True).stdout
    out: dict[str, int] = {}
    listing = text[text.index("file:function"):].splitlines()[2:]
    for line in listing:
        if not line.strip():
            break
        match = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)$", line)
        if match and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^.*/", "", match.group(2).split(" [")[0])
            out[name] = out.get(name, 0) + int(match.group(1).replace(",", ""))
    return out


def top_growth(small: Path, large: Path, messages: int, n: int = 40,
               inclusive: bool = False) -> list[tuple[str, float]]:
    a, b = per_function(small, inclusive), per_function(large, inclusive)
    growth = {k: (b.get(k, 0) - a.get(k, 0)) / messages for k in set(a) | set(b)}
    return sorted(growth.items(), key=lambda kv: -kv[1])[:n]


def count(name: str, conns: int, in_flight: int, total: int, keep: Path | None,
          broadcast: bool = False) -> int:
    spec = BY_NAME[name]
    out = Path(tempfile.mkdtemp(prefix="sigma-cg-")) / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *VALGRIND_ARGS,
           *spec.command(), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=BENCH)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 300
        while True:
            line = proc.stdout.readline()
            if line.startswith("READY"):
                port = int(line.split()[1])
                break
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start under valgrind")
        url = f"ws://127.0.0.1:{port}/"
        if broadcast:  # total = deliveries: rounds of 10 broadcasts to every client
            uvloop.run(drive_broadcast(url, spec.proto, conns, total // (10 * conns)))
        else:
            uvloop.run(drive(url, spec.proto, conns, in_flight, total))
        # Dump the counts through callgrind's control channel, then stop the server: under
        # valgrind a SIGINT does not end the uvloop server on this machine (checked: it keeps
        # running), and a SIGKILL writes nothing. SIGINT remains the fallback.
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True,
                       timeout=120, check=False)
        dumped = sorted(out.parent.glob(out.name + ".*"))
        if not dumped:
            proc.send_signal(signal.SIGINT)
            proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    dumped = sorted(out.parent.glob(out.name + ".*"))
    if dumped:
        out = dumped[-1]
    text = out.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s*(\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no totals in {out}")
    if keep is not None:
        shutil.copy(out, keep)
    shutil.rmtree(out.parent, ignore_errors=True)
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server", choices=sorted(BY_NAME))
    parser.add_argument("--pattern", default="10x1", help="CONNSxIN_FLIGHT (10x1)")
    parser.add_argument("--messages", default="2000,6000",
                        help="the two message counts (2000,6000)")
    parser.add_argument("--profile", type=Path, help="keep the larger run's callgrind file")
    parser.add_argument("--broadcast", action="store_true",
                        help="per delivery of a broadcast instead: CONNS clients, the messages "
                             "counts are deliveries (multiples of 10 x CONNS; IN_FLIGHT unused)")
    parser.add_argument("--valgrind-arg", action="append", default=[],
                        help="an extra valgrind option, e.g. --valgrind-arg=--cache-sim=yes "
                             "(repeatable; the first event, instructions, is the one printed)")
    args = parser.parse_args()
    VALGRIND_ARGS.extend(args.valgrind_arg)
    conns, in_flight = (int(x) for x in args.pattern.split("x"))
    small, large = (int(x) for x in args.messages.split(","))
    keep_small = keep_large = None
    if args.profile is not None:
        keep_small = args.profile.with_name(args.profile.name + ".small")
        keep_large = args.profile.with_name(args.profile.name + ".large")
    a = count(args.server, conns, in_flight, small, keep_small, args.broadcast)
    b = count(args.server, conns, in_flight, large, keep_large, args.broadcast)
    if keep_small is not None and keep_large is not None:
        for inclusive in (False, True):
            print(f"instructions per message, {'inclusive' if inclusive else 'own'}:",
                  file=sys.stderr)
            for fn, per in top_growth(keep_small, keep_large, large - small,
                                      inclusive=inclusive):
                print(f"{per:10,.0f}  {fn}", file=sys.stderr)
    print(json.dumps({"server": args.server, "pattern": args.pattern,
                      "workload": "broadcast" if args.broadcast else "echo",
                      "messages": [small, large], "instructions": [a, b],
                      "instructions_per_msg": (b - a) / (large - small),
                      "commit": subprocess.run(["git", "-C", str(BENCH), "rev-parse", "--short",
                                                "HEAD"], capture_output=True, text=True,
                                               check=False).stdout.strip(),
                      "pid": os.getpid()}))


if __name__ == "__main__":
    main()
