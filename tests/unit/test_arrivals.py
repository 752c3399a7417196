"""The arrival model of new deals, the period effects and the seasonal naive: on small worlds made here whose
truth is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.data.bulk import bulk_days
from scoring.forecast.revenue import won_revenue_samples
from scoring.forecast.topdown import past_bookings, seasonal_naive
from scoring.forecast.uncertainty import _effect, draw_effects, posterior_sd
from scoring.models import arrivals
from scoring.models.arrivals import RATE_SPECS, REFERENCE_SPEC, ArrivalModel, choose_rate_spec, fit_rate, win_curves

AS_OF = pd.Timestamp("2025-01-01")


def _deals(rng: np.random.Generator, days: int = 3 * 365, per_day: float = 20.0, growth: float = 0.0,
           win: float = 0.3, cycle: float = 30.0, segment: bool = False, wave: float = 0.0) -> pd.DataFrame:
    """Deals created by a Poisson process (rate growing by ``growth`` a year, twice as many on Mondays, a yearly
    wave of amplitude ``wave`` rising from the history's start), each won with probability ``win`` after an
    exponential ``cycle`` of days, else lost; observed at AS_OF."""
    start = AS_OF - pd.Timedelta(days=days)
    day = pd.date_range(start, AS_OF - pd.Timedelta(days=1), freq="D")
    rate = _rate(day, start, per_day, growth, wave)
    counts = rng.poisson(rate)
    created = np.repeat(day.to_numpy(), counts) + (rng.random(counts.sum()) * 86400e9).astype("timedelta64[ns]")
    n = len(created)
    won = rng.random(n) < win
    closed = pd.to_datetime(created) + pd.to_timedelta(rng.exponential(cycle, n), unit="D")
    observed = closed < AS_OF
    out = pd.DataFrame({"deal_id": [f"D{i}" for i in range(n)], "created_at": pd.to_datetime(created),
                        "amount": rng.lognormal(9, 0.5, n),
                        "status": np.where(observed, np.where(won, "won", "lost"), "open"),
                        "closed_at": pd.to_datetime(np.where(observed, closed, pd.NaT))})
    if segment:
        out["segment"] = rng.choice(["SMB", "Enterprise"], n)
    return out


def _rate(day: pd.DatetimeIndex, start: pd.Timestamp, per_day: float, growth: float = 0.0, wave: float = 0.0
          ) -> np.ndarray:
    years = (day - AS_OF) / pd.Timedelta(days=365.25)
    season = 1 + wave * np.sin(2 * np.pi * ((day - start) / pd.Timedelta(days=365.25)).to_numpy(dtype=float))
    return np.asarray(per_day * (1 + growth) ** years * np.where(day.day_of_week == 0, 2.0, 1.0) * season)


def test_a_yearly_wave_is_not_read_as_growth_or_decline():
    """Three years of a busy first half and a quiet second: a trend read without the yearly cycle takes the wave's
    phase for a decline (about -10 % a year here) and forecasts the next busy quarter short."""
    deals = _deals(np.random.default_rng(12), per_day=5.0, wave=0.25)
    assert abs(fit_rate(deals["created_at"], AS_OF, REFERENCE_SPEC).coef[0]) < 0.04
    quarter = pd.date_range(AS_OF, AS_OF + pd.Timedelta(days=89), freq="D")
    truth = _rate(quarter, AS_OF - pd.Timedelta(days=3 * 365), 5.0, wave=0.25).sum()
    forecast = ArrivalModel().fit(deals, AS_OF).created(AS_OF, [(quarter[0], quarter[-1])])[0]
    assert forecast == pytest.approx(truth, rel=0.08)


def test_the_rate_of_new_deals_its_growth_and_weekday_are_recovered():
    deals = _deals(np.random.default_rng(1), growth=0.4)
    model = ArrivalModel().fit(deals, AS_OF)
    (group,) = model.groups_
    assert group.key == "all"
    assert np.expm1(group.rate.coef[0]) == pytest.approx(0.4, abs=0.06)  # the yearly trend
    days = pd.date_range(AS_OF, periods=14, freq="D")
    rate = group.daily_rate(days, AS_OF)
    assert rate[days.day_of_week == 0].mean() / rate[days.day_of_week == 2].mean() == pytest.approx(2.0, rel=0.1)
    assert rate[days.day_of_week == 2].mean() == pytest.approx(20.0, rel=0.08)


def test_win_curves_count_deals_still_open_as_watched_not_lost():
    deals = _deals(np.random.default_rng(2), win=0.3, cycle=30.0)
    share, count = win_curves(deals, AS_OF)
    # P(won within t) = 0.3 (1 - exp(-t / 30)); deals open at AS_OF are censored, not counted as lost.
    for t in (10, 30, 90, 365):
        assert count[t - 1] == pytest.approx(0.3 * (1 - np.exp(-t / 30)), abs=0.015)
    assert share[-1] == pytest.approx(0.3, abs=0.02)
    naive = (deals["status"] == "won").mean()  # treating open deals as lost: too low
    assert naive < count[-1] - 0.002


def test_expected_new_deal_bookings_follow_rate_win_share_and_speed():
    deals = _deals(np.random.default_rng(3), per_day=10.0, win=0.5, cycle=10.0)
    model = ArrivalModel().fit(deals, AS_OF)
    bounds = [(AS_OF, pd.Timestamp("2025-03-31")), (pd.Timestamp("2025-04-01"), pd.Timestamp("2025-06-30"))]
    new = model.expected(AS_OF, bounds)
    mean_amount = deals["amount"].mean()
    # 90 days of about 10 deals a day (Mondays double: x 8/7), half won, nearly all within the quarter.
    per_quarter = 10 * 8 / 7 * 0.5 * mean_amount
    assert new.revenue[0] == pytest.approx(per_quarter * 90 * (1 - 10 / 90), rel=0.1)
    # The second quarter also gets the first quarter's late wins.
    assert new.revenue[1] == pytest.approx(per_quarter * 91, rel=0.1)
    assert new.count[1] == pytest.approx(10 * 8 / 7 * 0.5 * 91, rel=0.1)


def test_segments_get_their_own_arrivals_where_the_data_supports_them():
    deals = _deals(np.random.default_rng(4), segment=True)
    assert sorted(g.key for g in ArrivalModel().fit(deals, AS_OF).groups_) == ["segment=Enterprise", "segment=SMB"]
    few = _deals(np.random.default_rng(4), per_day=0.3, segment=True)
    assert [g.key for g in ArrivalModel().fit(few, AS_OF).groups_] == ["all"]


def test_nothing_after_as_of_shapes_the_arrival_model():
    deals = _deals(np.random.default_rng(5))
    early = pd.Timestamp("2024-07-01")
    known = deals[deals["created_at"] < early].copy()
    after = known["closed_at"] >= early
    known.loc[after, "status"] = "open"
    known.loc[after, "closed_at"] = pd.NaT
    a, b = ArrivalModel().fit(deals, early), ArrivalModel().fit(known, early)
    bounds = [(early, pd.Timestamp("2024-09-30"))]
    assert a.expected(early, bounds).revenue == pytest.approx(b.expected(early, bounds).revenue)


def test_a_shared_period_effect_widens_the_range_and_keeps_the_middle():
    rng = np.random.default_rng(6)
    amounts, p = rng.lognormal(9, 1, 3000), rng.uniform(0.05, 0.6, (3000, 1))
    alone = won_revenue_samples(amounts, p, np.zeros((4000, 1)), np.random.default_rng(1))[:, 0]
    moved = won_revenue_samples(amounts, p, draw_effects(np.random.default_rng(2), 4000, 1, 0.3),
                                np.random.default_rng(1))[:, 0]
    width = (np.quantile(moved, 0.9) - np.quantile(moved, 0.1)) / (np.quantile(alone, 0.9) - np.quantile(alone, 0.1))
    assert width > 2.0
    assert np.median(moved) == pytest.approx(np.median(alone), rel=0.03)
    # The same effect on every deal: brute force agrees with the normal approximation of the small deals.
    z = draw_effects(np.random.default_rng(3), 2000, 1, 0.3)
    full = ((rng.random((2000, 3000)) < 1 / (1 + np.exp(-(np.log(p[:, 0] / (1 - p[:, 0])) + z)))) @ amounts)
    hybrid = won_revenue_samples(amounts, p, z, np.random.default_rng(4))[:, 0]
    assert np.quantile(hybrid, [0.1, 0.5, 0.9]) == pytest.approx(np.quantile(full, [0.1, 0.5, 0.9]), rel=0.02)


def test_the_effect_that_makes_a_forecast_exact_is_found():
    amounts, p = np.array([100.0, 200.0, 300.0]), np.array([0.2, 0.5, 0.7])
    z = _effect(amounts, p, 400.0)
    assert (amounts / (1 + np.exp(-(np.log(p / (1 - p)) + z)))).sum() == pytest.approx(400.0, abs=0.5)
    assert _effect(amounts, p, 0.0) == -3.0 and _effect(amounts, p, 600.0) == 3.0


def test_the_spread_of_period_effects_is_drawn_from_what_history_says_of_it():
    """Many periods with little noise pin the spread down; a dozen as noisy as the effect leave it uncertain, and
    the draws say so (the method of moments would often read 0 there)."""
    rng = np.random.default_rng(11)
    noise = np.full(400, 0.1)
    known = posterior_sd(rng.normal(0, np.sqrt(0.5 ** 2 + noise ** 2)), noise)
    assert np.sqrt(np.mean(known ** 2)) == pytest.approx(0.5, abs=0.05) and known.max() - known.min() < 0.2
    noise = np.full(12, 0.4)
    z = rng.normal(0, 0.4, 12)
    z *= 0.4 / np.sqrt(np.mean(z ** 2))  # effects exactly as large as their noise: the moments read a spread of 0
    vague = posterior_sd(z, noise)
    assert vague.min() == 0.0 and 0.1 < np.sqrt(np.mean(vague ** 2)) < 0.4
    assert np.all(np.diff(vague) >= 0) and len(vague) == 64


def test_equally_likely_spreads_are_each_taken_by_whole_samples():
    z = draw_effects(np.random.default_rng(5), 1000, 3, np.array([0.0, 1.0]))
    still = np.all(z == 0, axis=1)
    assert still.sum() == 500  # half the samples drew no spread, for every period
    assert np.std(z[~still]) == pytest.approx(1.0, rel=0.05)
    assert np.array_equal(draw_effects(np.random.default_rng(5), 10, 2, np.zeros(4)), np.zeros((10, 2)))


def test_seasonal_naive_is_last_years_same_period_with_a_range_from_its_past_misses():
    closed = pd.to_datetime(["2022-02-01", "2022-05-01", "2022-08-01", "2022-11-01", "2023-02-01", "2023-05-01",
                             "2023-08-01", "2023-11-01", "2024-02-01", "2024-05-01"])
    amounts = [100.0, 200.0, 300.0, 400.0, 110.0, 220.0, 330.0, 440.0, 121.0, 242.0]
    deals = pd.DataFrame({"status": "won", "closed_at": closed, "amount": amounts})
    as_of = pd.Timestamp("2024-07-01")
    history = past_bookings(deals, as_of, "quarter")
    assert history.iloc[-1] == 242.0 and len(history) == 10
    bounds = [(as_of, pd.Timestamp("2024-09-30")), (pd.Timestamp("2024-10-01"), pd.Timestamp("2024-12-31"))]
    expected, quantiles = seasonal_naive(deals, as_of, "quarter", bounds)
    assert expected.tolist() == [330.0, 440.0]
    assert quantiles[0] == pytest.approx([330.0 * 1.1] * 3)  # it always grew 10 %: a range of one value


def test_the_form_of_the_rate_is_chosen_by_how_it_forecast_the_last_months():
    growing = _deals(np.random.default_rng(7), growth=0.6)
    choice = choose_rate_spec(growing["created_at"], AS_OF)
    spec, errors = choice.spec, choice.errors
    assert spec.trend and len(errors) == len(RATE_SPECS) and errors[spec.name] <= errors[REFERENCE_SPEC.name]
    assert choice.spread() < 0.05  # Poisson arrivals on a trend the form follows: nothing beyond Poisson noise
    # A rate that stalled eight months ago, as real exports do: a trend over three years would overshoot.
    shifted = _deals(np.random.default_rng(8), growth=0.6)
    early = shifted["created_at"] < AS_OF - pd.Timedelta(days=240)
    late = shifted[~early]
    stalled = pd.concat([shifted[early], late.iloc[::3]])  # two thirds of the deals stop coming
    spec = choose_rate_spec(stalled["created_at"], AS_OF).spec
    assert spec.window_days <= 365
    model = ArrivalModel().fit(stalled, AS_OF)
    assert model.spec_ == spec
    next_month = model.created(AS_OF, [(AS_OF, pd.Timestamp("2025-01-31"))])[0]
    recent_rate = (stalled["created_at"] >= AS_OF - pd.Timedelta(days=90)).sum() / 90
    assert next_month == pytest.approx(recent_rate * 31, rel=0.15)


def test_a_few_noisy_months_do_not_overturn_a_steady_trend():
    """A small company (0.4 new deals a day, growing 40 % a year): its last months' counts are mostly Poisson
    noise, and the least error among the forms would mostly pick noise (measured: 4 of 20 such companies kept
    the trend that way); the trend stays unless another form is clearly better."""
    kept = [choose_rate_spec(_deals(np.random.default_rng(100 + seed), per_day=0.4, growth=0.4)["created_at"],
                             AS_OF).spec == REFERENCE_SPEC for seed in range(20)]
    assert sum(kept) >= 12


def test_months_that_stray_from_the_forecast_widen_the_range_of_new_deals():
    deals = _deals(np.random.default_rng(10), per_day=30.0)
    month = deals["created_at"].dt.to_period("M")
    keep = np.ones(len(deals), dtype=bool)
    rng = np.random.default_rng(11)
    for period in month.unique():  # each month keeps a random share of its deals: whole months move together
        inside = (month == period).to_numpy()
        keep[inside] = rng.random(inside.sum()) < rng.uniform(0.5, 1.0)
    assert choose_rate_spec(deals[keep]["created_at"], AS_OF).spread() > 0.1
    assert choose_rate_spec(deals["created_at"], AS_OF).spread() < 0.05


def test_simulated_new_deal_bookings_average_their_expected_value_and_zero_wins_book_nothing():
    deals = _deals(np.random.default_rng(9), per_day=5.0, win=0.4, cycle=40.0)
    model = ArrivalModel().fit(deals, AS_OF)
    bounds = [(AS_OF, pd.Timestamp("2025-01-07")), (pd.Timestamp("2025-01-08"), pd.Timestamp("2025-03-31"))]
    new = model.expected(AS_OF, bounds)
    zeros = np.zeros((20_000, 2))
    draws = model.simulate(new, zeros, zeros, np.random.default_rng(1))
    assert draws.mean(axis=0) == pytest.approx(new.revenue, rel=0.03)
    # A week: few wins, often none; a sample without a win books nothing.
    assert (draws[:, 0] == 0).mean() == pytest.approx(np.exp(-new.count[0]), abs=0.02)


def test_a_history_too_short_to_backtest_forecasts_its_recent_level():
    """Five months leave fewer than three months to judge the forms by: the level of the last 180 days serves (a
    trend read from a few months would be extrapolated from noise)."""
    deals = _deals(np.random.default_rng(13), days=150, per_day=3.0)
    choice = choose_rate_spec(deals["created_at"], AS_OF)
    assert not choice.errors and choice.spec.window_days == 180 and not choice.spec.trend


def test_an_imported_pipeline_is_not_read_as_new_deals_that_win_at_once(monkeypatch):
    """A company moved to its CRM a year ago: its open deals then were imported that day (created then, whatever
    their age), and the older closed ones left behind. Read as new deals, the day's hundreds made new deals win
    fast (the next quarter's new deals' won revenue 3x); left out, the forecast is the one of the company's own
    new deals since."""
    rng = np.random.default_rng(8)
    deals = _deals(rng, per_day=4.0, win=0.4)
    closed = deals["created_at"] + pd.to_timedelta(rng.uniform(60, 120, len(deals)), unit="D")  # a cycle of 2-4 months
    outcome = np.where(rng.random(len(deals)) < 0.4, "won", "lost")
    deals = deals.assign(status=np.where(closed < AS_OF, outcome, "open"), closed_at=closed.where(closed < AS_OF))
    moved = AS_OF - pd.Timedelta(days=365)
    kept = deals[deals["closed_at"].isna() | (deals["closed_at"] >= moved)]
    own = kept[kept["created_at"] >= moved]
    imported = kept.assign(created_at=kept["created_at"].where(kept["created_at"] >= moved, moved + pd.Timedelta(hours=9)))
    assert list(bulk_days(imported["created_at"])) == [moved] and bulk_days(deals["created_at"]).empty
    events = pd.concat([own, *(own.head(60).assign(created_at=pd.Timestamp(f"2024-{m:02d}-15 10:00"),
                                                   deal_id=lambda d, m=m: d["deal_id"] + f"-{m}") for m in (3, 6, 9))])
    assert bulk_days(events["created_at"]).empty  # an event's leads each quarter: how the company gets deals
    bounds = [(AS_OF, pd.Timestamp("2025-03-31")), (pd.Timestamp("2025-04-01"), pd.Timestamp("2025-06-30"))]
    fitted = ArrivalModel().fit(imported, AS_OF)
    assert list(fitted.bulk_days_) == [moved]
    got, truth = fitted.expected(AS_OF, bounds), ArrivalModel().fit(own, AS_OF).expected(AS_OF, bounds)
    assert got.revenue == pytest.approx(truth.revenue, rel=0.01) and got.count == pytest.approx(truth.count, rel=0.01)
    monkeypatch.setattr(arrivals, "bulk_days", lambda created: pd.DatetimeIndex([]))
    read_as_new = ArrivalModel().fit(imported, AS_OF).expected(AS_OF, bounds)
    assert read_as_new.revenue[0] > 1.5 * truth.revenue[0]
