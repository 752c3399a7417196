"""Files written whole: a killed writer's temporary file is removed by the next write, a live one's kept."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scoring.atomic import atomic_path


def test_the_next_write_removes_what_a_killed_writer_left_and_keeps_a_live_ones(tmp_path: Path):
    target = tmp_path / "bundle.joblib"
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)
    orphan = tmp_path / f".bundle.joblib.{dead}.x1y2.tmp"
    orphan.write_bytes(b"half a bundle")
    concurrent = tmp_path / f".bundle.joblib.{os.getppid()}.a1b2.tmp"  # a running process: a concurrent writer
    concurrent.write_bytes(b"being written")
    other = tmp_path / f".other.joblib.{dead}.c3d4.tmp"  # another target's: not this write's business
    other.write_bytes(b"x")
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert not orphan.exists() and concurrent.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, concurrent.name, other.name])
