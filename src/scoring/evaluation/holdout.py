"""The time-based holdout every model is judged on: snapshots after its start, scored by models fitted on what
was known at its start. The metrics table judges P(win) on the snapshots whose outcome was known by the as-of
date; what serves is judged on those followed long enough, deals still open included (:func:`followed`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from scoring.data.contract import DealHistory
from scoring.errors import DataError
from scoring.evaluation.metrics import compare, reliability_table
from scoring.features.dataset import Snapshotter
from scoring.features.scale import MAX_HOLDOUT_SHARE, MIN_OUTCOME_ROWS
from scoring.features.snapshots import snapshot_dates, take_snapshots
from scoring.models.base import WinProbabilityModel


def holdout_start_of(data: DealHistory, as_of: pd.Timestamp, holdout_fraction: float) -> pd.Timestamp:
    """The start of the holdout: the last ``holdout_fraction`` of the time from the first deal to ``as_of``."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    start = data.deals["created_at"].min()
    return (as_of - (as_of - start) * holdout_fraction).normalize()


class Holdout(NamedTuple):
    """The holdout's start, its snapshot rows whose outcome was known by the as-of date, and all its snapshot
    rows (deals still open at the as-of date too)."""

    start: pd.Timestamp
    rows: pd.DataFrame
    snapshots: pd.DataFrame


def choose_holdout(data: DealHistory, as_of: pd.Timestamp, holdout_fraction: float, every_days: int = 14,
                   snapshotter: Snapshotter = take_snapshots, min_outcome_rows: int = MIN_OUTCOME_ROWS,
                   max_share: float = MAX_HOLDOUT_SHARE) -> Holdout:
    """The holdout: the last ``holdout_fraction`` of the history, grown (a tenth of the history at a time, up to
    ``max_share``) until its rarer outcome has ``min_outcome_rows`` snapshot rows. A short holdout of a fast
    business can otherwise hold a single snapshot date, or only one outcome."""
    fraction = holdout_fraction
    while True:
        start = holdout_start_of(data, as_of, fraction)
        try:
            snapshots = holdout_snapshots(data, start, as_of, every_days, snapshotter)
            rows = known_outcomes(snapshots, start, as_of)
        except DataError:
            if fraction >= max_share:
                raise
            rows = None
        if rows is not None:
            counts = rows["outcome"].value_counts()
            if min(counts.get("won", 0), counts.get("lost", 0)) >= min_outcome_rows or fraction >= max_share:
                return Holdout(start, rows, snapshots)
        fraction = min(fraction + 0.1, max(max_share, holdout_fraction))


def holdout_snapshots(data: DealHistory, holdout_start: pd.Timestamp, as_of: pd.Timestamp,
                      every_days: int = 14, snapshotter: Snapshotter = take_snapshots) -> pd.DataFrame:
    """Every snapshot row after ``holdout_start``, its outcome as known at ``as_of`` (``open`` if not yet)."""
    dates = snapshot_dates(holdout_start + pd.Timedelta(days=every_days), as_of, every_days)
    return snapshotter(data, dates[dates > holdout_start], as_of).rows


def known_outcomes(snapshots: pd.DataFrame, holdout_start: pd.Timestamp, as_of: pd.Timestamp) -> pd.DataFrame:
    """The snapshot rows whose outcome was known by the as-of date: what the metrics table judges."""
    holdout = snapshots[snapshots["outcome"] != "open"]
    if holdout.empty or holdout["outcome"].nunique() < 2:
        raise DataError(f"the holdout ({holdout_start.date()} to {as_of.date()}) has no deals with both outcomes "
                        "known; give more history or a larger holdout")
    return holdout


def holdout_rows(data: DealHistory, holdout_start: pd.Timestamp, as_of: pd.Timestamp,
                 every_days: int = 14, snapshotter: Snapshotter = take_snapshots) -> pd.DataFrame:
    """Snapshot rows after ``holdout_start`` whose outcome was known by ``as_of``: what models are judged on."""
    return known_outcomes(holdout_snapshots(data, holdout_start, as_of, every_days, snapshotter), holdout_start, as_of)


def followed(snapshots: pd.DataFrame, horizon: float) -> tuple[pd.DataFrame, np.ndarray]:
    """The snapshot rows followed for at least ``horizon`` days by the as-of date, deals still open included, and
    whether each deal was won within ``horizon`` days of its snapshot.

    Rows whose outcome is known are not a fair sample of the open pipeline: deals that close are in them, deals
    left sitting in a stage mostly are not, so a model of P(win | it closes) looks best there and then gives
    every stale deal in the pipeline the odds of one that closes. Followed for a fixed time, every deal counts."""
    rows = snapshots[snapshots["days_observed"] >= horizon]
    won = (rows["outcome"].eq("won") & (rows["days_to_outcome"] <= horizon)).to_numpy()
    return rows, won


def evaluate(models: Mapping[str, WinProbabilityModel], holdout: pd.DataFrame,
             by: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each model's metrics on the holdout rows (overall, per stage and per column of ``by``) and its
    reliability table."""
    y = holdout["outcome"].eq("won").to_numpy()
    predictions = {name: model.predict_proba(holdout) for name, model in models.items()}
    amount = holdout["amount"].to_numpy(dtype=float)
    metrics = pd.concat([compare(y, predictions, amount=amount).assign(by="all"),
                         *[_grouped(y, predictions, holdout, column, amount) for column in ("stage", *by)]],
                        ignore_index=True)
    reliability = pd.concat([reliability_table(y, p).assign(model=name) for name, p in predictions.items()],
                            ignore_index=True)
    return metrics, reliability


def _grouped(y: np.ndarray, predictions: dict[str, np.ndarray], rows: pd.DataFrame, column: str,
             amount: np.ndarray) -> pd.DataFrame:
    table = compare(y, predictions, rows[column].astype(str).reset_index(drop=True), amount=amount)
    return table[table["group"] != "all"].assign(by=column)
