"""Days on which a CRM created deals in bulk: an import (a company moving to a new CRM, merging another team's)
or an uploaded list.

A CRM dates a deal's creation when the record is made: deals imported in one go are created that day, whatever
their age, and a migrated pipeline starts with one day of hundreds of deals, some in late stages, closing in the
weeks after. Read as new deals, they made the new-deal forecast expect such quick wins from every new deal: on a
3,000-deal demo company whose last year came through an import, the next quarter's new deals' won revenue 3.0x
what the company's own new deals since say (``tests/unit/test_arrivals.py``: 2.1x). The arrival model
(:mod:`scoring.models.arrivals`) leaves them out; ``validate`` and ``train`` name the days.
A day is bulk when its creations are at least :data:`BULK_MIN` and :data:`BULK_FACTOR` times the mean daily
count of the :data:`BULK_WINDOW_DAYS` around it (the day left out): ordinary days, month ends and weekday peaks
stay far below (a Poisson count of mean 2 reaches 25 about once in 10^17 days). An import happens once or twice
in a CRM's life; more such days (:data:`BULK_MAX_DAYS`) are how the company gets its deals (an event's leads, a
list uploaded each month): new deals, kept, and none is called bulk.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Fewest deals created on one day for it to be a bulk day.
BULK_MIN = 25
#: How many times the mean daily count around it a bulk day's creations are, at least.
BULK_FACTOR = 10.0
#: The days around a day (centred) whose mean daily count is its ordinary level.
BULK_WINDOW_DAYS = 91
#: Most days of bulk creation that are imports; more are a habit of the company (events, lists), not imports.
BULK_MAX_DAYS = 2


def bulk_days(created: pd.Series) -> pd.DatetimeIndex:
    """The days (midnight) on which :data:`BULK_MIN` or more deals were created, :data:`BULK_FACTOR` times or more
    the mean daily count of the days around; none when more than :data:`BULK_MAX_DAYS` are (a habit, not an
    import)."""
    days = pd.to_datetime(created.dropna()).dt.normalize()
    if len(days) < BULK_MIN:
        return pd.DatetimeIndex([])
    counts = days.value_counts().sort_index().asfreq("D", fill_value=0)
    values = counts.to_numpy(dtype=float)
    if values.max() < BULK_MIN:
        return pd.DatetimeIndex([])
    half = BULK_WINDOW_DAYS // 2
    padded = np.concatenate([np.full(half, np.nan), values, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, BULK_WINDOW_DAYS)
    others = (np.nansum(windows, axis=1) - values) / np.maximum(np.sum(~np.isnan(windows), axis=1) - 1, 1)
    bulk = (values >= BULK_MIN) & (values >= BULK_FACTOR * others)
    if bulk.sum() > BULK_MAX_DAYS:
        return pd.DatetimeIndex([])
    return pd.DatetimeIndex(counts.index[bulk])

