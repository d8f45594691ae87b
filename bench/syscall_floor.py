"""The syscall floor: what one ``recv`` + one ``send`` per 1 KiB message costs on this machine.

    bench/.venv-bench/bin/python bench/syscall_floor.py [--in-flight 1,16,64] [--seconds 2]

A raw TCP echo (no WebSocket, no framing) over loopback: the server process (pinned to CPU 0,
like the servers in ``bench/run.py``) reads exactly one 1 KiB message per ``recv`` call
(``MSG_WAITALL``, blocking socket) and writes it back with one ``send``; a client process
pinned to CPU 1 keeps ``--in-flight`` messages in flight on one connection. The server's CPU
per message (``/proc/<pid>/task/*/schedstat``) split into kernel and user time
(``/proc/<pid>/stat``) is the floor the WebSocket servers are measured against: the kernel part
is the two syscalls (and the wake-ups when the socket is empty), the user part is a minimal
Python loop around them. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import proc_cpu, proc_user_sys  # noqa: E402

SIZE = 1024
SERVER_CPU, CLIENT_CPU = 0, 1


def serve() -> None:
    """Child: accept one connection, echo 1 KiB messages one recv + one send each."""
    os.sched_setaffinity(0, {SERVER_CPU})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(SIZE)
    view = memoryview(buf)
    recv_into, send = conn.recv_into, conn.send
    waitall = socket.MSG_WAITALL
    while recv_into(view, SIZE, waitall) == SIZE:
        send(view)


def measure(in_flight: int, seconds: float) -> dict[str, float]:
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        os.sched_setaffinity(0, {CLIENT_CPU})
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = bytes(range(256)) * 4
        buf = bytearray(SIZE)
        waitall = socket.MSG_WAITALL
        for _ in range(in_flight):
            sock.sendall(payload)

        def run(duration: float) -> int:
            count = 0
            end = time.perf_counter() + duration
            while True:
                for _ in range(256):
                    sock.recv_into(buf, SIZE, waitall)
                    sock.sendall(payload)
                count += 256
                if time.perf_counter() >= end:
                    return count

        run(0.3)
        cpu0, us0, wall0 = proc_cpu(server.pid), proc_user_sys(server.pid), time.perf_counter()
        count = run(seconds)
        cpu1, us1, wall1 = proc_cpu(server.pid), proc_user_sys(server.pid), time.perf_counter()
        sock.close()
    finally:
        server.kill()
        server.wait()
    cpu = cpu1 - cpu0
    user, kernel = us1[0] - us0[0], us1[1] - us0[1]
    share = kernel / (user + kernel) if user + kernel else 0.0
    return {
        "in_flight": in_flight,
        "messages": count,
        "msgs_per_s": count / (wall1 - wall0),
        "server_cpu_us_per_msg": cpu * 1e6 / count,
        "server_kernel_us_per_msg": cpu * share * 1e6 / count,
        "server_user_us_per_msg": cpu * (1 - share) * 1e6 / count,
        "server_cpu_share": cpu / (wall1 - wall0),
    }


def main() -> None:
    if "--serve" in sys.argv:
        serve()
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-flight", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for k in args.in_flight.split(","):
        print(json.dumps(measure(int(k), args.seconds)), flush=True)


if __name__ == "__main__":
    main()
