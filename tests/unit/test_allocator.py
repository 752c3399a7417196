"""The service keeps freed memory for the next request: arrays of a few MB no longer fault in fresh pages."""
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
