"""Handing the heap that released history leaves free back to the OS (``Hub.heap_trim``).

glibc keeps freed heap mapped: after a burst (10,000 replies held for a second until their
clients acknowledged them, then freed) the process would keep ~1 KiB per session resident
that it no longer uses. ``malloc_trim(0)`` returns the free pages (``madvise``); the hub calls
it after a release of at least ``sigma_core.hub.HEAP_TRIM_AFTER`` bytes, once releases pause.
Measured: ~0.7 ms for a 27 MiB heap holding 12 MiB free (docs/benchmarks.md, "Memory per
session, session 7"). sigma_trio and sigma_asgi use it too.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Callable

__all__ = ["heap_trimmer"]


def heap_trimmer() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` as a call without arguments; None where there is none (not
    Linux, or another C library such as musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return functools.partial(trim, 0)
