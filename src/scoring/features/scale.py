"""The scale of a company's deals, read from its own history: how often to take snapshots, the win model's
time intervals, calibration window and smallest leaf, and how much of the history to hold out.

Fixed choices fit one kind of company: snapshots every 14 days and intervals of 30 to 365 days suit B2B
deals that take months, but loan applications decided within a day (BPI Challenge 2012) never appear in a
14-day snapshot, and a holdout of the last fifth of the calendar can hold one snapshot date. Here the
scale follows the cycle: the days from creation to close of the deals closed by the as-of date. And a
leaf of 300 snapshot rows suits 100,000 deals, while on 300 deals no tree can split and the model is a
constant: the smallest leaf follows the number of closed deals.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.data.contract import DealHistory

#: The win model's intervals for a cycle whose 90th percentile is REFERENCE_DAYS or more (months-long B2B);
#: shorter cycles get them shrunk in proportion.
BASE_BOUNDARIES = (30, 60, 90, 180, 365)
REFERENCE_DAYS = 60.0
#: Snapshots every half of the median cycle, between these bounds (days).
SPACING_BOUNDS = (1, 14)
#: The calibration window and its follow-up: three times the 90th percentile of the cycle, within these
#: bounds, and at most a quarter of the history.
WINDOW_BOUNDS = (14, 180)
#: The share of the history (by time) a model is judged on before it is refitted on everything.
HOLDOUT_FRACTION = 0.2
#: The holdout grows from the requested share of the history until it holds this many snapshot rows of the
#: rarer outcome (won or lost), or reaches MAX_HOLDOUT_SHARE of the history.
MIN_OUTCOME_ROWS = 100
MAX_HOLDOUT_SHARE = 0.5
#: The win model's smallest leaf: one row per this many closed deals, within LEAF_BOUNDS.
DEALS_PER_LEAF_ROW = 50
LEAF_BOUNDS = (20, 300)


@dataclass(frozen=True)
class DataScale:
    """The chosen values (logged with each run)."""

    cycle_days_p50: float
    cycle_days_p90: float
    every_days: int
    boundaries: tuple[int, ...]
    calibration_days: int
    followup_days: int
    closed_deals: int
    min_child_samples: int

    def win_params(self) -> dict[str, Any]:
        """The win model's parameters that follow the data's scale."""
        return {"boundaries": self.boundaries, "calibration_days": self.calibration_days,
                "followup_days": self.followup_days, "min_child_samples": self.min_child_samples}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_scale(data: DealHistory, as_of: pd.Timestamp) -> DataScale:
    """The scale of the deals closed by ``as_of`` (months-long cycles and many deals keep the fixed values)."""
    deals = data.deals
    closed = deals[deals["closed_at"].notna() & (deals["closed_at"] <= as_of)]
    cycle = ((closed["closed_at"] - closed["created_at"]) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    cycle = cycle[np.isfinite(cycle) & (cycle >= 0)]
    p50, p90 = (np.quantile(cycle, [0.5, 0.9]) if len(cycle) else (REFERENCE_DAYS, REFERENCE_DAYS))
    every = int(np.clip(round(p50 / 2), *SPACING_BOUNDS))
    scale = float(np.clip(p90 / REFERENCE_DAYS, 1 / 30, 1.0))
    boundaries = tuple(sorted({max(1, round(b * scale)) for b in BASE_BOUNDARIES}))
    if len(boundaries) < 3:  # a cycle of a day or two: at least three intervals
        boundaries = (1, 2, 4, 8, 16)
    span = float((as_of - deals["created_at"].min()) / pd.Timedelta(days=1))
    window = int(max(min(np.clip(3 * p90, *WINDOW_BOUNDS), span / 4), 2 * every))
    leaf = int(np.clip(len(closed) // DEALS_PER_LEAF_ROW, *LEAF_BOUNDS))
    return DataScale(round(float(p50), 2), round(float(p90), 2), every, boundaries, window, window, len(closed), leaf)
