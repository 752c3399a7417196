"""The data's own scale: snapshot spacing, the win model's intervals and window, its smallest leaf, the holdout."""
from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.data.contract import load_deal_history
from scoring.evaluation.holdout import choose_holdout
from scoring.features.scale import BASE_BOUNDARIES, LEAF_BOUNDS, data_scale

START = pd.Timestamp("2024-01-01")


def _company(n: int, cycle_days: np.ndarray, won: np.ndarray, days: int = 400):
    created = START + pd.to_timedelta(np.linspace(0, days, n), unit="D")
    closed = created + pd.to_timedelta(cycle_days, unit="D")
    deals = pd.DataFrame({"deal_id": [f"D{i}" for i in range(n)], "created_at": created.strftime("%Y-%m-%dT%H:%M:%S"),
                          "amount": 1000.0, "stage": "Lead", "status": np.where(won, "won", "lost"),
                          "closed_at": closed.strftime("%Y-%m-%dT%H:%M:%S")})
    return load_deal_history(deals)


def test_a_business_deciding_within_a_day_gets_daily_snapshots_and_short_intervals():
    rng = np.random.default_rng(0)
    data = _company(2000, rng.exponential(0.6, 2000) + np.where(rng.random(2000) < 0.2, 20, 0), rng.random(2000) < 0.3)
    scale = data_scale(data, pd.Timestamp("2025-03-01"))
    assert scale.every_days == 1 and scale.cycle_days_p50 < 1
    assert scale.boundaries[-1] < 365 and len(scale.boundaries) >= 3 and list(scale.boundaries) == sorted(scale.boundaries)
    assert 2 <= scale.calibration_days <= 400 / 4 and scale.min_child_samples == 2000 // 50


def test_months_long_cycles_keep_the_fixed_values_and_the_leaf_follows_the_closed_deals():
    rng = np.random.default_rng(1)
    data = _company(300, rng.uniform(30, 150, 300), rng.random(300) < 0.4, days=1000)
    scale = data_scale(data, pd.Timestamp("2028-01-01"))
    assert scale.every_days == 14 and scale.boundaries == BASE_BOUNDARIES and scale.calibration_days == 180
    assert scale.min_child_samples == LEAF_BOUNDS[0] and scale.closed_deals == 300
    assert data_scale(data, pd.Timestamp("2024-01-01")).closed_deals == 0  # nothing closed yet: nothing read


def test_the_holdout_grows_until_both_outcomes_are_well_represented():
    n = 3000
    won = np.ones(n, dtype=bool)
    won[: int(n * 0.6)] = np.arange(int(n * 0.6)) % 2 == 0  # losses only in the first 60 % of the history
    won[int(n * 0.6):] = np.arange(n - int(n * 0.6)) % 40 != 0  # then one loss in forty
    data = _company(n, np.full(n, 3.0), won)
    as_of = pd.Timestamp("2025-02-10")
    start, rows, _ = choose_holdout(data, as_of, 0.2, every_days=1, min_outcome_rows=100)
    counts = rows["outcome"].value_counts()
    span = as_of - data.deals["created_at"].min()
    assert min(counts) >= 100 and (as_of - start) > 0.2 * span * 1.05
    fixed_start, fixed_rows, _ = choose_holdout(data, as_of, 0.2, every_days=1, min_outcome_rows=1)
    assert (as_of - fixed_start) < (as_of - start) and fixed_rows["outcome"].value_counts()["lost"] < 100
