"""Revenue forecasts: periods, quantiles of won revenue, the fixed-percentage forecast beside, the JSON."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.bundle import ModelBundle
from scoring.data.contract import load_open_deals
from scoring.errors import ConfigError, DataError
from scoring.forecast.revenue import _exact_quantiles, forecast, period_bounds, won_revenue_quantiles
from scoring.scores import deal_state, score_deals
from tests.conftest import END


def test_periods_are_calendar_months_or_quarters_and_the_first_starts_at_as_of():
    assert period_bounds(pd.Timestamp("2025-02-10"), "quarter", 3) == [
        (pd.Timestamp("2025-02-10"), pd.Timestamp("2025-03-31")),
        (pd.Timestamp("2025-04-01"), pd.Timestamp("2025-06-30")),
        (pd.Timestamp("2025-07-01"), pd.Timestamp("2025-09-30"))]
    assert period_bounds(pd.Timestamp("2024-12-31 15:00"), "month", 2) == [
        (pd.Timestamp("2024-12-31"), pd.Timestamp("2024-12-31")),
        (pd.Timestamp("2025-01-01"), pd.Timestamp("2025-01-31"))]
    with pytest.raises(ConfigError, match="period must be one of"):
        period_bounds(pd.Timestamp("2025-01-01"), "week", 2)
    with pytest.raises(ConfigError, match="at least 1"):
        period_bounds(pd.Timestamp("2025-01-01"), "month", 0)


def test_exact_quantiles_match_enumeration_by_hand():
    # Two deals: 100 with p=0.5, 300 with p=0.2. Outcomes 0 (.4), 100 (.4), 300 (.1), 400 (.1).
    q = won_revenue_quantiles(np.array([100.0, 300.0]), np.array([[0.5], [0.2]]), quantiles=(0.1, 0.4, 0.5, 0.85, 0.9, 0.95))
    assert q[0].tolist() == [0.0, 0.0, 100.0, 300.0, 300.0, 400.0]


def test_monte_carlo_quantiles_agree_with_exact_ones_and_repeat_with_the_seed():
    rng = np.random.default_rng(0)
    amounts = rng.lognormal(10, 1, 18)
    p = rng.uniform(0.05, 0.9, (18, 1))
    exact = _exact_quantiles(amounts, p[:, 0], (0.1, 0.5, 0.9))
    simulated = won_revenue_quantiles(amounts, p, samples=20_000, seed=1)[0]
    spread = exact[2] - exact[0]
    assert np.all(np.abs(simulated - exact) < 0.05 * spread)
    assert np.array_equal(simulated, won_revenue_quantiles(amounts, p, samples=20_000, seed=1)[0])


def test_many_small_deals_use_a_normal_for_the_rest_and_stay_close_to_full_simulation():
    rng = np.random.default_rng(2)
    amounts = rng.lognormal(8, 1.2, 9000)
    p = rng.uniform(0, 0.6, (9000, 1))
    hybrid = won_revenue_quantiles(amounts, p, samples=4000, seed=3)[0]
    won = rng.random((4000, 9000)) < p[:, 0]
    full = np.quantile(won @ amounts, (0.1, 0.5, 0.9))
    assert np.all(np.abs(hybrid - full) < 0.01 * full[1])


def test_no_deals_forecast_zero():
    assert won_revenue_quantiles(np.array([]), np.empty((0, 2))).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


@pytest.fixture(scope="module")
def open_deals(company: Path, bundle: ModelBundle) -> pd.DataFrame:
    return load_open_deals(company / "open_deals.csv", bundle.config)


def test_forecast_sums_deal_probabilities_per_period_and_keeps_fixed_beside(bundle: ModelBundle,
                                                                             open_deals: pd.DataFrame):
    as_of = pd.Timestamp(END)
    result = forecast(bundle, open_deals, as_of, "month", 3)
    scores, _ = score_deals(bundle, open_deals, as_of)
    amount = open_deals["amount"].to_numpy()
    # Total: amount x P(win) ever, the same probabilities `score` gives; fixed: the weighted pipeline.
    assert result.total_expected == pytest.approx(scores["expected_revenue"].sum(), rel=1e-9)
    assert result.total_fixed == pytest.approx((amount * scores["fixed_probability"]).sum(), rel=1e-9)
    assert np.all(result.model_expected >= 0) and result.model_expected.sum() <= result.total_expected + 1e-6
    low, mid, high = result.model_quantiles.T
    assert np.all(low <= mid) and np.all(mid <= high)
    assert low[1] < result.model_expected[1] < high[1]
    # Later horizons only add wins: P(won by the end of each period) grows with the period.
    _, by_end = bundle.model.win_by(deal_state(bundle, open_deals, as_of)[0], np.array([10.0, 40.0, 70.0]))
    assert np.all(np.diff(by_end, axis=1) >= -1e-12)


def test_fixed_forecast_goes_by_expected_close_date_and_overdue_counts_now(bundle: ModelBundle,
                                                                            open_deals: pd.DataFrame):
    deals = open_deals.head(3).copy()
    deals["expected_close_date"] = pd.to_datetime(["2025-05-01", "2025-08-15", "2026-03-01"])
    result = forecast(bundle, deals, pd.Timestamp(END), "quarter", 2)
    fixed = bundle.models["fixed"].predict_proba(deal_state(bundle, deals, pd.Timestamp(END))[0]) * deals["amount"]
    # Q2 (just 30 June): the overdue deal; Q3: the August one; the March 2026 one is beyond both.
    assert result.fixed_expected.tolist() == pytest.approx([fixed.iloc[0], fixed.iloc[1]])
    assert result.total_fixed == pytest.approx(fixed.sum())
    assert result.fixed_undated == 0


def test_json_has_the_spec_shape_and_breakdowns_add_up(bundle: ModelBundle, open_deals: pd.DataFrame):
    document = forecast(bundle, open_deals, pd.Timestamp(END), "quarter", 2,
                        model_info={"name": "pipeline-scoring", "version": "3"}).to_json()
    assert document["as_of"] == END and document["period"] == "quarter"
    assert document["model"] == {"name": "pipeline-scoring", "version": "3"}
    assert [p["start"] for p in document["periods"]] == ["2025-06-30", "2025-07-01"]
    for part in [*document["periods"], document["total"]]:
        assert set(part["model"]) == {"expected", "p10", "p50", "p90"} and "expected" in part["fixed"]
    for name in ("stage", "owner", "segment"):
        groups = document["breakdowns"][name]
        assert sum(g["model"]["expected"] for g in groups) == pytest.approx(document["total"]["model"]["expected"],
                                                                            rel=1e-6)
        assert sum(g["deals"] for g in groups) == len(open_deals)
    assert document["method"]["quantiles"] == "monte carlo"


def test_forecast_refuses_deals_created_after_as_of(bundle: ModelBundle, open_deals: pd.DataFrame):
    with pytest.raises(DataError, match="created after"):
        forecast(bundle, open_deals, pd.Timestamp("2020-01-01"))


def test_quantiles_of_two_deals_by_brute_force():
    amounts, p = np.array([5.0, 7.0, 11.0]), np.array([0.3, 0.6, 0.1])
    outcomes = {}
    for bits in itertools.product([0, 1], repeat=3):
        value = float(np.dot(bits, amounts))
        outcomes[value] = outcomes.get(value, 0.0) + float(np.prod([q if b else 1 - q for b, q in zip(bits, p)]))
    values = sorted(outcomes)
    cdf = np.cumsum([outcomes[v] for v in values])
    expected = [values[int(np.searchsorted(cdf, q - 1e-12))] for q in (0.1, 0.5, 0.9)]
    assert won_revenue_quantiles(amounts, p[:, None])[0].tolist() == expected


def test_bookings_add_booked_open_and_new_deals_and_the_first_period_is_the_whole_calendar_one(
        company: Path, bundle: ModelBundle, open_deals: pd.DataFrame):
    history = pd.read_csv(company / "deals.csv", parse_dates=["created_at", "closed_at"])
    as_of = pd.Timestamp(END) - pd.Timedelta(days=40)  # inside a quarter: part of it already booked
    still_open = open_deals[open_deals["created_at"] < as_of].copy()
    still_open["stage_entered_at"] = still_open["stage_entered_at"].clip(upper=as_of - pd.Timedelta(days=1))
    document = forecast(bundle, still_open, as_of, "quarter", 3, history=history).to_json()
    first = document["periods"][0]
    assert first["start"] == str(as_of.date()) and first["calendar_start"] == "2025-04-01"
    won = (history["status"] == "won") & (history["closed_at"] >= "2025-04-01") & (history["closed_at"] < as_of)
    assert first["booked"] == pytest.approx(history.loc[won, "amount"].sum()) and first["booked"] > 0
    assert document["booked_known"] and not any("booked" in w for w in document["warnings"])
    for part in [*document["periods"], document["total"]]:
        assert part["pipeline"] == part["model"]
        assert part["bookings"]["expected"] == pytest.approx(
            part["booked"] + part["pipeline"]["expected"] + part["new_deals"]["expected"], abs=0.05)
        for name in ("pipeline", "new_deals", "bookings"):
            q = part[name]
            assert q["p10"] <= q["p50"] <= q["p90"]
        assert part["bookings"]["p10"] >= part["booked"] and part["commit"] is None
    assert [p["booked"] for p in document["periods"][1:]] == [0.0, 0.0]
    # New deals grow period by period: later periods hold more of what does not exist yet.
    news = [p["new_deals"]["expected"] for p in document["periods"]]
    assert 0 < news[0] < news[1]
    assert document["method"]["period_effects"]["past_periods"] >= 1


def test_without_the_history_booked_is_zero_and_said(bundle: ModelBundle, open_deals: pd.DataFrame):
    result = forecast(bundle, open_deals, pd.Timestamp(END), "month", 2)
    assert result.booked.tolist() == [0.0, 0.0] and not result.booked_known
    assert any("booked is 0" in w for w in result.warnings)
    given = forecast(bundle, open_deals, pd.Timestamp(END), "month", 2, booked=1234.0).to_json()
    assert given["periods"][0]["booked"] == 1234.0 and given["booked_known"]


def test_commit_is_booked_plus_the_deals_reps_commit_by_close_date(bundle: ModelBundle, open_deals: pd.DataFrame):
    deals = open_deals.head(4).copy()
    deals["forecast_category"] = ["Commit", " commit ", "Best Case", "Commit"]
    deals["expected_close_date"] = pd.to_datetime(["2025-06-30", "2025-08-01", "2025-07-15", "2026-02-01"])
    result = forecast(bundle, deals, pd.Timestamp(END), "quarter", 2, booked=100.0)
    a = deals["amount"].to_numpy()
    assert result.commit is not None
    assert result.commit.tolist() == pytest.approx([100.0 + a[0], a[1], 100.0 + a[0] + a[1] + a[3]])


def test_each_deal_wins_this_period_slips_or_is_lost(bundle: ModelBundle, open_deals: pd.DataFrame):
    scores, _ = score_deals(bundle, open_deals, pd.Timestamp(END))
    total = scores["win_probability_this_period"] + scores["slip_probability"] + scores["loss_probability"]
    assert np.allclose(total, 1.0) and (scores["slip_probability"] >= 0).all()
