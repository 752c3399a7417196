"""The training set every model fits on: a validated history, a cutoff, and its snapshots (made once)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from scoring.data.config import PipelineConfig
from scoring.data.contract import DealHistory
from scoring.features.snapshots import SnapshotTable, as_often_unknown, snapshot_dates, sojourns, take_snapshots

#: ``snapshotter(data, dates, cutoff)``: :func:`take_snapshots` or the same computed elsewhere
#: (``dask_engine.DaskSnapshots`` runs it on partitions of the deals on a cluster).
Snapshotter = Callable[[DealHistory, pd.DatetimeIndex, pd.Timestamp], SnapshotTable]


@dataclass
class TrainingSet:
    """What was known at ``cutoff``: the models learn from this and nothing later.

    Snapshots are taken every ``every_days`` days from the first deal's creation to the cutoff, by
    ``snapshotter`` (here by default).
    """

    data: DealHistory
    cutoff: pd.Timestamp
    every_days: int = 14
    snapshotter: Snapshotter = field(default=take_snapshots, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.cutoff = pd.Timestamp(self.cutoff)

    @cached_property
    def snapshots(self) -> SnapshotTable:
        start = self.data.deals["created_at"].min()
        table = self.snapshotter(self.data, snapshot_dates(start, self.cutoff, self.every_days), self.cutoff)
        return as_often_unknown(table, self.data)

    @cached_property
    def stays(self) -> pd.DataFrame:
        """Every stay in a stage known by the cutoff (:func:`sojourns`): the stage model and the dormancy read them."""
        return sojourns(self.data, self.cutoff)

    @cached_property
    def closed_deals(self) -> pd.DataFrame:
        """Deals won or lost by the cutoff (what the classic baselines count)."""
        deals = self.data.deals
        return deals[deals["closed_at"].notna() & (deals["closed_at"] <= self.cutoff)]

    @property
    def features(self) -> dict[str, str]:
        return dict(self.data.features)

    @property
    def config(self) -> PipelineConfig:
        return self.data.config
