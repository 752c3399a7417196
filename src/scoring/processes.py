"""Processes on this machine: whether one still runs (a killed writer or trainer leaves things to tidy)."""
from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
