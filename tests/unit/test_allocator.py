"""The service keeps freed memory for the next request (arrays of a few MB no longer fault in fresh pages), and its
start-up objects out of the garbage collector's passes."""
from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys
import numpy as np
from scoring.serving.allocator import keep_freed_memory
tuned = keep_freed_memory() if sys.argv[1] == "tuned" else None
def batch():  # temporaries of a few MB alive together, then all freed, as a batch's are
    return sum(a.sum() for a in [np.ones(300_000) for _ in range(4)])
for _ in range(3):
    batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    batch()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True).stdout
    tuned, faults = out.split()
    return tuned, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_reused_not_faulted_in_again() -> None:
    _, plain = _faults("plain")
    tuned, kept = _faults("tuned")
    assert tuned == "True"
    assert plain > 50 * 1000  # glibc gives the freed 10 MB back and faults them in again, 4 KiB at a time
    assert kept < 100


STARTUP = """
import gc, weakref
import pandas, sklearn.linear_model  # a start-up's heap of long-lived objects
from scoring.serving.allocator import keep_startup_objects
class Kept:
    pass
kept = Kept()
gone = weakref.ref(kept)
keep_startup_objects()
oldest = len(gc.get_objects(generation=2))
del kept  # frozen objects are still freed when nothing refers to them
print(gc.get_freeze_count(), oldest, gone() is None)
"""


def test_startup_objects_leave_the_collectors_passes_but_are_still_freed() -> None:
    out = subprocess.run([sys.executable, "-c", STARTUP], capture_output=True, text=True, check=True).stdout
    frozen, oldest, freed = out.split()
    assert int(frozen) > 50_000 and int(oldest) < 1_000
    assert freed == "True"
