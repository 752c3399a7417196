"""A top-down baseline of bookings: the seasonal naive forecast of a time series of past bookings.

What a finance team does without any deal-level model: next quarter books what the same quarter booked
a year ago (a month: the same month a year ago). Its range comes from how far that rule has been off
before: the P10/P50/P90 of the ratio actual / naive over the past periods where both are known, applied
to the naive figure (no range until ``MIN_RATIOS`` past periods give one).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.forecast.uncertainty import FREQ

SEASON = {"month": 12, "quarter": 4}
MIN_RATIOS = 3


def past_bookings(deals: pd.DataFrame, as_of: pd.Timestamp, period: str) -> pd.Series:
    """Won revenue per whole calendar period before ``as_of`` (periods without a win count zero)."""
    won = deals[(deals["status"] == "won") & (deals["closed_at"] < as_of)]
    if won.empty:
        return pd.Series(dtype=float)
    periods = won["closed_at"].dt.to_period(FREQ[period])
    totals = won["amount"].fillna(0.0).groupby(periods).sum()
    last = pd.Period(as_of, FREQ[period]) - 1
    index = pd.period_range(totals.index.min(), last, freq=FREQ[period])
    return totals.reindex(index, fill_value=0.0)


def seasonal_naive(deals: pd.DataFrame, as_of: pd.Timestamp, period: str,
                   bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> tuple[np.ndarray, np.ndarray]:
    """Expected bookings (NaN where no year-ago period is known) and P10/P50/P90 per period of ``bounds``."""
    history = past_bookings(deals, pd.Timestamp(as_of), period)
    season = SEASON[period]
    expected = np.full(len(bounds), np.nan)
    for k, (start, _) in enumerate(bounds):
        target = pd.Period(start, FREQ[period])
        back = target - season * (1 + (k // season))  # the latest same period of a year known at as_of
        if back in history.index:
            expected[k] = float(history[back])
    values = history.to_numpy(dtype=float)
    ratios = values[season:] / np.where(values[:-season] > 0, values[:-season], np.nan) if len(values) > season \
        else np.array([])
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) >= MIN_RATIOS:
        spread = np.quantile(ratios, (0.1, 0.5, 0.9))
    else:
        spread = np.ones(3)
    return expected, expected[:, None] * spread[None, :]
