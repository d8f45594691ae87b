"""SigmaSockets on asyncio with uvloop, busy-polling its sockets for up to ``SIGMA_BUSY_POLL_US``
µs (default 50) after each read instead of going straight back to sleep: a diagnostic for
workload (a)'s p50 (docs/benchmarks.md, "Session 9: latency p50"), never a server to ship, not
in ``bench/run.py``'s servers.

After each read (its replies already written) the server checks its clients' sockets with a
zero-timeout ``select`` until one is readable or the time is up, then returns to the loop, whose
``epoll_wait`` finds that socket ready without sleeping. No reply is delayed and a waiting
message is found within one poll (~2 µs); what changes is that the server's core does not go
idle (and need waking) between the three clients' messages. If this server's p50 is lower than
the plain one's on a quiet machine, the p50 is set by the wake-ups, not by the work per message:

    bench/.venv-bench/bin/python bench/latency_pairs.py --old . --old-server \\
        sigma_asyncio_uvloop_busypoll --pairs 31
"""

from __future__ import annotations

import os
import runpy
import select
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Off the path: this folder's sigma_asyncio.py (the server script) is not the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import sigma_asyncio.server  # noqa: E402

POLL_FOR = float(os.environ.get("SIGMA_BUSY_POLL_US", "50")) / 1e6
_read = sigma_asyncio.server._Protocol.data_received
_clock = time.perf_counter


def _read_then_poll(self: sigma_asyncio.server._Protocol, data: bytes) -> None:
    _read(self, data)
    fds = []
    for transport in self._server._peers.values():
        sock = transport.get_extra_info("socket")
        if sock is not None:
            fds.append(sock.fileno())
    end = _clock() + POLL_FOR
    while _clock() < end:
        if select.select(fds, [], [], 0)[0]:
            return


if __name__ == "__main__":
    sigma_asyncio.server._Protocol.data_received = _read_then_poll  # type: ignore[method-assign]
    sys.argv.append("--uvloop")
    runpy.run_path(str(_HERE / "sigma_asyncio.py"), run_name="__main__")
