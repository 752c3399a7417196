"""Where training's heavy steps run: here by default, or on a Dask cluster (:mod:`scoring.engines.dask`)."""
from __future__ import annotations

from typing import NamedTuple

from scoring.features.dataset import Snapshotter
from scoring.features.snapshots import take_snapshots
from scoring.models.win import Trainer, train_here


class Engine(NamedTuple):
    """The snapshots of the history and the win model's boosters: here by default; ``engines.dask.dask_engine``
    runs both on a Dask cluster with the same functions."""

    name: str = "local"
    snapshotter: Snapshotter = take_snapshots
    trainer: Trainer = train_here


LOCAL = Engine()

__all__ = ["LOCAL", "Engine"]
