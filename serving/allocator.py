"""How a server process handles memory: keep freed memory for the next request instead of handing it back to
the system (glibc's malloc), and leave the objects of start-up out of the garbage collector's full passes.

glibc serves an allocation over its mmap threshold (128 KiB at first, raised as such blocks are freed) with
fresh pages from the kernel and unmaps them on free, and it gives the top of its heap back whenever more
than 128 KiB is free there. Scoring a batch allocates arrays of a few MB and frees them; fresh pages fault
in one by one, zeroed. For a batch of 1,000 deals with factors that was about 4.5 ms of 7.5 ms of TreeSHAP
(``benchmarks/serve_bench.py``). A long-lived service that does the same work again and again is better
served by keeping those pages: :func:`keep_freed_memory` raises both thresholds (the process then holds on
to up to ``TRIM_THRESHOLD`` of free memory).

A batch of 1,000 deals with factors makes some 50,000 Python objects (dicts, lists, text), so the garbage
collector's oldest generation is examined every few batches, and with it every object the process holds:
some 250,000 after start-up (modules, functions, classes; MLflow, pandas, scikit-learn), most of a full pass's
work. :func:`keep_startup_objects`, once the model is loaded, moves them out of the collector's sight
(``gc.freeze``, made for the long-lived objects of a server's start-up): they are still freed when no longer
referred to, but a cycle among them is never collected, so it is for a process's start-up, not for objects
that come and go, nor for a process the service shares (``create_app(own_process=True)`` only). In process,
1,000-deal batches took 16.5 ms on average, 15.5 ms frozen (the median about the same: it is the occasional
full pass that goes); two servers side by side, 1.02x the rows/s.
"""
from __future__ import annotations

import ctypes
import gc
import sys

#: mallopt's parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Allocations up to this size come from the heap (glibc's largest allowed value on 64-bit systems).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap kept for reuse, not given back.
TRIM_THRESHOLD = 256 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Tune glibc's malloc for a service (see the module's note); False where there is no glibc (macOS, musl
    builds without mallopt, Windows) or it refuses, in which case nothing changed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # not glibc's malloc
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def keep_startup_objects() -> None:
    """Collect what start-up left as garbage, then leave every object alive now out of the collector's passes
    (see the module's note)."""
    gc.collect()
    gc.freeze()
