"""What a sigma_asyncio server process does, with timestamps: for ``bench/latency_pairs.py
--trace`` (never imported by the library or the other servers).

    python bench/latency_recorder.py OUT.json SERVER_SCRIPT [server args...]

Installs the recorder, then runs ``SERVER_SCRIPT`` as ``__main__``. Recorded, as
``(start, end, kind, detail, cpu)`` in ``time.perf_counter()`` seconds (CLOCK_MONOTONIC, the
load generator's clock too; ``cpu``: the thread's CPU time spent, which a descheduling does
not inflate):

* ``read``: every socket read the server handles (the adapter's ``data_received``, which runs
  the core and writes the replies); detail: bytes read;
* ``timer``: every wake-up of the server's one timer; detail: the hub's timer kinds due;
* ``gc``: every garbage collection; detail: the generation;
* ``heap_trim``: every heap trim (glibc's ``malloc_trim``, ``sigma_asyncio/_heap.py``).

SIGUSR1 writes them to ``OUT.json``. The wrappers add ~1 µs per read: compare traced runs with
traced runs only.
"""

from __future__ import annotations

import asyncio
import gc
import json
import runpy
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EVENTS: list[tuple[float, float, str, Any, float]] = []
perf = time.perf_counter
cpu = time.thread_time


def _dump(out: str) -> None:
    Path(out).write_text(json.dumps(EVENTS))


def _gc_callback(phase: str, info: dict[str, Any],
                 _start: list[float] = [0.0, 0.0]) -> None:  # noqa: B006
    if phase == "start":
        _start[0], _start[1] = perf(), cpu()
    else:
        EVENTS.append((_start[0], perf(), "gc", info["generation"], cpu() - _start[1]))


def _timed(method: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def wrapper(self: Any, arg: Any) -> Any:
        t0, c0 = perf(), cpu()
        try:
            return method(self, arg)
        finally:  # detail: bytes read
            EVENTS.append((t0, perf(), kind, arg if isinstance(arg, int) else len(arg),
                           cpu() - c0))
    return wrapper


def install(out: str) -> None:
    import sigma_asyncio.server as adapter  # the tree on PYTHONPATH

    gc.callbacks.append(_gc_callback)
    for name in ("_Protocol", "_BufferedProtocol"):
        cls = getattr(adapter, name, None)
        for method in ("data_received", "buffer_updated"):
            if cls is not None and method in vars(cls):
                setattr(cls, method, _timed(vars(cls)[method], "read"))
    server_cls = adapter.SigmaSocketServer
    on_timer = getattr(server_cls, "_on_timer", None)
    if on_timer is not None:
        def timer(self: Any) -> Any:
            t0, c0 = perf(), cpu()
            hub = getattr(self, "_hub", None)
            try:
                now = self._loop.time()
                due = sorted({t[2] for t in hub._timers if t[0] <= now}) if hub else []
            except AttributeError:
                due = ["?"]
            try:
                return on_timer(self)
            finally:
                EVENTS.append((t0, perf(), "timer", due, cpu() - c0))
        server_cls._on_timer = timer  # type: ignore[method-assign]
    trimmer = getattr(adapter, "heap_trimmer", None)
    if trimmer is not None:
        def heap_trimmer() -> Callable[[], object] | None:
            trim = trimmer()
            if trim is None:
                return None

            def timed_trim() -> object:
                t0, c0 = perf(), cpu()
                try:
                    return trim()
                finally:
                    EVENTS.append((t0, perf(), "heap_trim", None, cpu() - c0))
            return timed_trim
        adapter.heap_trimmer = heap_trimmer  # type: ignore[assignment]
    start = server_cls.start

    async def started(self: Any) -> None:
        await start(self)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump, out)
    server_cls.start = started  # type: ignore[method-assign]


def main() -> None:
    out, script, *rest = sys.argv[1:]
    install(out)
    sys.argv = [script, *rest]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
