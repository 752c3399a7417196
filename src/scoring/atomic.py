"""Files written whole or not at all: to a temporary file in the same folder, flushed to disk, then renamed over
the target (a rename within a folder is atomic), so a crash or a kill mid-write leaves the previous file as it was.
A temporary file names the process writing it; the next write of the same target removes those of processes
that are gone (killed mid-write), and leaves a concurrent writer's alone."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from scoring.processes import alive


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself reaches the disk
        finally:
            os.close(folder)
    finally:
        temporary.unlink(missing_ok=True)


def _remove_orphans(path: Path) -> None:
    """Remove temporary files of ``path`` left by writers that no longer run (on this machine)."""
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        pid = leftover.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not alive(int(pid)):
            leftover.unlink(missing_ok=True)

