"""When wins land, by stage: the timing the baselines lack.

The fixed percentages and the other baselines give only P(win) eventually. To spread their
forecast over periods (and to place the fixed forecast of deals without an expected close date),
``StageTiming`` learns from history how long after a date a deal in each stage took to be won:
the share of a stage's eventual wins that land within N days. The win model has its own timing
(its hazards) and does not use this.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from scoring.features.dataset import TrainingSet

#: Wins are followed this many days; a share "within" a longer time is 1.
HORIZON_DAYS = 365.0
QUANTILES = np.linspace(0.0, 1.0, 101)


class StageTiming:
    """Per stage, the distribution of days from a snapshot to its win (among wins within the horizon).

    Only snapshots watched for the whole horizon count, so short observation does not favour quick
    wins. A stage with fewer than ``min_wins`` such wins uses the pooled distribution of all stages.
    """

    def __init__(self, horizon_days: float = HORIZON_DAYS, min_wins: int = 20) -> None:
        self.horizon_days = horizon_days
        self.min_wins = min_wins

    def fit(self, training: TrainingSet) -> StageTiming:
        rows = training.snapshots.rows
        won = rows[rows["outcome"].eq("won") & (rows["days_to_outcome"] <= self.horizon_days)]
        watched = won[won["days_observed"] >= self.horizon_days]
        if len(watched) >= self.min_wins:
            won = watched  # else the history is short: use what there is, biased to quick wins
        if won.empty:
            raise ValueError("no won snapshot rows to learn the timing of wins from")
        pooled = np.quantile(won["days_to_outcome"].to_numpy(dtype=float), QUANTILES)
        n_stages = len(training.config.stages)
        self.days_quantiles_ = np.tile(pooled, (n_stages, 1))
        for index, group in won.groupby("stage_index"):
            if len(group) >= self.min_wins:
                self.days_quantiles_[int(index)] = np.quantile(group["days_to_outcome"].to_numpy(dtype=float), QUANTILES)
        return self

    def share_within(self, stage_index: np.ndarray, horizons: np.ndarray) -> np.ndarray:
        """Share of each deal's eventual win probability that lands within each of ``horizons`` days: (n, k)."""
        if not hasattr(self, "days_quantiles_"):
            raise NotFittedError("StageTiming is not fitted; call fit first")
        horizons = np.asarray(horizons, dtype=float)
        per_stage = (self.days_quantiles_[:, :, None] <= horizons).mean(axis=1)  # (stages, k): a deal's is its stage's
        per_stage = np.where(horizons >= self.horizon_days, 1.0, np.where(horizons <= 0, 0.0, per_stage))
        return per_stage[np.asarray(stage_index, dtype=int)]

    def expected_days(self, stage_index: np.ndarray) -> np.ndarray:
        """The mean days from now to a win (among wins within the horizon) of deals in each stage."""
        if not hasattr(self, "days_quantiles_"):
            raise NotFittedError("StageTiming is not fitted; call fit first")
        return self.days_quantiles_.mean(axis=1)[np.asarray(stage_index, dtype=int)]

    def median_days(self) -> pd.Series:
        return pd.Series(self.days_quantiles_[:, 50], name="median_days_to_win")
