"""The syscall floor: what one ``recv`` + one ``send`` per 1 KiB message costs on this machine.

    bench/.venv-bench/bin/python bench/syscall_floor.py [--patterns 100x16,10x1] [--seconds 2]

A raw TCP echo (no WebSocket, no framing) over loopback, under the same client patterns as
``bench/run.py`` (b) (connections x 1 KiB messages in flight per connection): the server
process (pinned to CPU 0, like the servers there) waits in ``epoll`` for readable sockets and,
for each, reads exactly one 1 KiB message with one ``recv`` (``MSG_WAITALL`` on a blocking
socket: messages arrive whole) and writes it back with one ``send``; a client process pinned to
CPU 1 keeps the pattern's messages in flight. The server's CPU per message
(``/proc/<pid>/task/*/schedstat``), split into kernel and user time (``/proc/<pid>/stat``), is
the floor the WebSocket servers are measured against: the kernel part is the two syscalls, the
epoll waits and the wake-ups when every socket is empty; the user part is a minimal Python loop
around them. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import proc_cpu, proc_user_sys

SIZE = 1024
SERVER_CPU, CLIENT_CPU = 0, 1


def serve(conns: int) -> None:
    """Child: accept ``conns`` connections, then echo 1 KiB messages, one recv + one send
    each, for whichever sockets epoll reports readable."""
    os.sched_setaffinity(0, {SERVER_CPU})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(conns)
    print(f"READY {listener.getsockname()[1]}", flush=True)
    socks = {}
    poll = select.epoll()
    for _ in range(conns):
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks[conn.fileno()] = conn
        poll.register(conn.fileno(), select.EPOLLIN)
    buf = bytearray(SIZE)
    view = memoryview(buf)
    waitall = socket.MSG_WAITALL
    while True:
        for fd, _ in poll.poll():
            sock = socks[fd]
            if sock.recv_into(view, SIZE, waitall) != SIZE:
                return
            sock.send(view)


def measure(conns: int, in_flight: int, seconds: float) -> dict[str, float]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(conns)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        os.sched_setaffinity(0, {CLIENT_CPU})
        socks = []
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
        by_fd = {s.fileno(): s for s in socks}
        pending = dict.fromkeys(by_fd, 0)  # bytes of a message received so far, per socket
        poll = select.epoll()
        for fd in by_fd:
            poll.register(fd, select.EPOLLIN)
        payload = bytes(range(256)) * 4
        batch = payload * in_flight
        for sock in socks:
            sock.sendall(batch)
        buf = bytearray(65536)

        def run(duration: float) -> int:
            count = 0
            end = time.perf_counter() + duration
            while time.perf_counter() < end:
                for fd, _ in poll.poll(1.0):
                    got = by_fd[fd].recv_into(buf)
                    whole, pending[fd] = divmod(pending[fd] + got, SIZE)
                    if whole:
                        by_fd[fd].sendall(payload * whole)
                        count += whole
            return count

        run(0.3)
        cpu0, us0, wall0 = proc_cpu(server.pid), proc_user_sys(server.pid), time.perf_counter()
        count = run(seconds)
        cpu1, us1, wall1 = proc_cpu(server.pid), proc_user_sys(server.pid), time.perf_counter()
        for sock in socks:
            sock.close()
    finally:
        server.kill()
        server.wait()
    cpu = cpu1 - cpu0
    user, kernel = us1[0] - us0[0], us1[1] - us0[1]
    share = kernel / (user + kernel) if user + kernel else 0.0
    return {
        "pattern": f"{conns}x{in_flight}",
        "messages": count,
        "msgs_per_s": count / (wall1 - wall0),
        "server_cpu_us_per_msg": cpu * 1e6 / count,
        "server_kernel_us_per_msg": cpu * share * 1e6 / count,
        "server_user_us_per_msg": cpu * (1 - share) * 1e6 / count,
        "server_cpu_share": cpu / (wall1 - wall0),
    }


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patterns", default="100x16,10x1",
                        help="CONNSxIN_FLIGHT, comma-separated (100x16,10x1)")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for pattern in args.patterns.split(","):
        conns, in_flight = (int(x) for x in pattern.split("x"))
        print(json.dumps(measure(conns, in_flight, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
