"""Keep freed memory for the next request instead of handing it back to the system (glibc's malloc).

glibc serves an allocation over its mmap threshold (128 KiB at first, raised as such blocks are freed) with
fresh pages from the kernel and unmaps them on free, and it gives the top of its heap back whenever more
than 128 KiB is free there. Scoring a batch allocates arrays of a few MB and frees them; fresh pages fault
in one by one, zeroed. For a batch of 1,000 deals with factors that was about 4.5 ms of 7.5 ms of TreeSHAP
(``benchmarks/serve_bench.py``). A long-lived service that does the same work again and again is better
served by keeping those pages: :func:`keep_freed_memory` raises both thresholds (the process then holds on
to up to ``TRIM_THRESHOLD`` of free memory).
"""
from __future__ import annotations

import ctypes
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
