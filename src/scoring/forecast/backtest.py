"""Backtests: replay history, forecasting at each past date with only what was known then.

At each as-of date the bundle is trained as ``scoring train`` trains it, on the history known at that date
(scale, holdout, calibration, the served model's choice, arrivals and period effects: what the product would
have served then); the deals open then (their state as known then) are forecast over the next periods by every
model of it, and the forecast is compared with the revenue those deals actually brought in each period. The
baselines give only P(win), so their wins are spread over periods by ``StageTiming`` (how long wins from each
stage took before the date); the same goes for the fixed percentages, since past expected close dates are not
known as they were.
Only periods that ended before the data does are scored.

Bookings are judged too, against everything each period booked (deals created after the as-of date
included): the model's bookings forecast (the served model's open deals, the arrival model's new deals, one
period effect moving both), the fixed percentages' weighted pipeline, and a top-down seasonal naive of past
bookings (:mod:`scoring.forecast.topdown`). Per method: the accuracy sales teams know,
max(0, 1 - |A - F| / A) averaged over periods, the bias and how often P10-P90 held what was booked. With a
field history of the rep's expected close dates (SPEC 2.2), the classic forecast of the reps too: the fixed
percentages in the period of each deal's close date as it stood at the as-of date (a deals file alone says
what the dates are now, not what they were then).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scoring.data.contract import DealHistory, data_end
from scoring.data.summary import require_sufficient
from scoring.errors import ConfigError, DataError
from scoring.evaluation.metrics import reliability_table, scores
from scoring.features.scale import HOLDOUT_FRACTION
from scoring.features.snapshots import take_snapshots
from scoring.forecast.revenue import (
    PERIODS,
    by_close_date,
    per_period,
    period_bounds,
    period_horizons,
    simulate_bookings,
    won_revenue_quantiles,
)
from scoring.forecast.topdown import seasonal_naive
from scoring.models.baselines import FixedStageModel
from scoring.train import train_bundle

if TYPE_CHECKING:
    from scoring.bundle import ModelBundle

Progress = Callable[[str], None]


@dataclass
class BacktestResult:
    """``periods``: one row per (as_of, model, period); ``outcomes``: one row per (as_of, deal) with each model's
    P(win); ``bookings``: one row per (as_of, method, period) with the bookings forecast and what was booked."""

    periods: pd.DataFrame
    outcomes: pd.DataFrame
    models: list[str]
    every: str
    bookings: pd.DataFrame = field(default_factory=pd.DataFrame)

    def bookings_summary(self) -> pd.DataFrame:
        """Per method over complete periods: accuracy (mean of max(0, 1 - |A - F| / A)), bias (summed error over
        summed bookings), P10-P90 coverage and the share of bookings from new deals."""
        done = self.bookings[self.bookings["complete"] & self.bookings["expected"].notna()] \
            if not self.bookings.empty else self.bookings
        records = []
        for method in BOOKING_METHODS:
            part = done[done["method"] == method] if not done.empty else done
            if part.empty:
                continue
            actual = part["actual"].to_numpy(dtype=float)
            error = part["expected"].to_numpy(dtype=float) - actual
            records.append({"method": method, "periods": int(len(part)),
                            "accuracy": float(np.mean(accuracy(actual, part["expected"].to_numpy(dtype=float)))),
                            "bias": float(error.sum() / actual.sum()) if actual.sum() else np.nan,
                            "coverage_p10_p90": float(((part["p10"] <= part["actual"]) & (part["actual"] <= part["p90"])).mean()),
                            "new_deal_share": float(part["actual_new"].sum() / actual.sum()) if actual.sum() else np.nan})
        return pd.DataFrame.from_records(records)

    def summary(self) -> pd.DataFrame:
        """Per model over complete periods: error of won revenue, bias, P10-P90 coverage; log-loss and Brier of outcomes.

        ``relative_error`` is the summed absolute error over the summed actual won revenue (robust to
        periods where little closed); ``bias`` the summed signed error over the same.
        """
        done = self.periods[self.periods["complete"]]
        records = []
        known = self.outcomes[self.outcomes["outcome"] != "open"]
        y = known["outcome"].eq("won").to_numpy()
        for name in self.models:
            part = done[done["model"] == name]
            actual = part["actual"].sum()
            quality = scores(y, known[name].to_numpy()) if len(known) else {}
            records.append({
                "model": name, "periods": int(len(part)),
                "mean_abs_error": float(part["abs_error"].mean()) if len(part) else np.nan,
                "relative_error": float(part["abs_error"].sum() / actual) if actual else np.nan,
                "mean_abs_pct_error": float(part["abs_pct_error"].mean()) if len(part) else np.nan,
                "bias": float(part["error"].sum() / actual) if actual else np.nan,
                "coverage_p10_p90": float(part["covered"].mean()) if len(part) else np.nan,
                "log_loss": quality.get("log_loss", np.nan), "brier": quality.get("brier", np.nan),
                "roc_auc": quality.get("roc_auc", np.nan), "ece": quality.get("ece", np.nan)})
        return pd.DataFrame.from_records(records)

    def reliability(self) -> pd.DataFrame:
        known = self.outcomes[self.outcomes["outcome"] != "open"]
        y = known["outcome"].eq("won").to_numpy()
        return pd.concat([reliability_table(y, known[name].to_numpy()).assign(model=name) for name in self.models],
                         ignore_index=True)

    def to_csv_frame(self) -> pd.DataFrame:
        """``periods`` with each (as_of, model)'s log-loss and Brier of deal outcomes beside it."""
        records = []
        for as_of, group in self.outcomes.groupby("as_of"):
            known = group[group["outcome"] != "open"]
            y = known["outcome"].eq("won").to_numpy()
            for name in self.models:
                s = scores(y, known[name].to_numpy()) if len(known) else {"log_loss": np.nan, "brier": np.nan}
                records.append({"as_of": as_of, "model": name, "log_loss": s["log_loss"], "brier": s["brier"]})
        return self.periods.merge(pd.DataFrame.from_records(records), on=["as_of", "model"], how="left")


def accuracy(actual: np.ndarray, forecast: np.ndarray) -> np.ndarray:
    """max(0, 1 - |A - F| / A) per period (0 where nothing was booked but something forecast, 1 if neither)."""
    actual, forecast = np.asarray(actual, dtype=float), np.asarray(forecast, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.maximum(0.0, 1.0 - np.abs(actual - forecast) / actual)
    return np.where(actual > 0, value, np.where(np.abs(forecast) > 0, 0.0, 1.0))


def as_of_dates(start: pd.Timestamp | str, end: pd.Timestamp | str, every: str) -> list[pd.Timestamp]:
    """The first day of every month or quarter from ``start`` to ``end``."""
    if every not in PERIODS:
        raise ConfigError(f"--every must be one of {', '.join(PERIODS)}, got {every!r}")
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end < start:
        raise ConfigError(f"the backtest end {end.date()} is before its start {start.date()}")
    first = pd.Period(start, PERIODS[every])
    dates = [p.start_time for p in pd.period_range(first, pd.Period(end, PERIODS[every]), freq=PERIODS[every])]
    dates = [d for d in dates if start <= d <= end]
    if not dates:
        raise ConfigError(f"no {every} starts between {start.date()} and {end.date()}")
    return dates


@dataclass(frozen=True)
class DateSetup:
    """What every as-of date of one backtest shares (sent once to each worker of a cluster)."""

    data: DealHistory
    last: pd.Timestamp
    every: str
    periods: int
    seed: int


#: ``mapper(function, setup, dates)``: ``[function(setup, d) for d in dates]``, in order, anywhere (see
#: ``dask_engine.map_on_cluster``).
Mapper = Callable[[Callable[[DateSetup, pd.Timestamp], "DateResult"], DateSetup, list[pd.Timestamp]], list["DateResult"]]


@dataclass
class DateResult:
    """One as-of date: its period rows, its deals with each model's P(win) (None when none was open)."""

    period_rows: list[dict[str, object]]
    outcomes: pd.DataFrame | None
    models: list[str]
    bookings_rows: list[dict[str, object]] = field(default_factory=list)


def backtest(data: DealHistory, start: pd.Timestamp | str, end: pd.Timestamp | str, every: str = "quarter",
             periods: int = 1, seed: int = 0, progress: Progress | None = None, mapper: Mapper | None = None
             ) -> BacktestResult:
    """At each as-of date from ``start`` to ``end``: fit on what was known, forecast ``periods`` periods, compare.
    The dates are independent: ``mapper`` may run them in parallel (default: one after another here)."""
    say = progress or (lambda _: None)
    require_sufficient(data)
    dates = as_of_dates(start, end, every)
    last = data_end(data)
    if dates[0] >= last:
        raise ConfigError(f"the backtest starts at {dates[0].date()}, after the data ends ({last.date()})")
    setup = DateSetup(data, last, every, periods, seed)
    if mapper is None:
        results = []
        for i, as_of in enumerate(dates, 1):
            say(f"as of {as_of.date()} ({i}/{len(dates)})")
            results.append(backtest_date(setup, as_of))
    else:
        say(f"{len(dates)} as-of dates in parallel")
        results = mapper(backtest_date, setup, dates)
    period_rows = [row for result in results for row in result.period_rows]
    if not period_rows:
        raise DataError(f"no deals were open at any as-of date from {dates[0].date()} to {dates[-1].date()}")
    table = pd.DataFrame.from_records(period_rows)
    table["error"] = table["expected"] - table["actual"]
    table["abs_error"] = table["error"].abs()
    positive = table["actual"] > 0
    table["abs_pct_error"] = np.where(positive, table["abs_error"] / table["actual"].where(positive), np.nan)
    table["covered"] = (table["p10"] <= table["actual"]) & (table["actual"] <= table["p90"])
    outcomes = [r.outcomes for r in results if r.outcomes is not None]
    bookings = pd.DataFrame.from_records([row for result in results for row in result.bookings_rows])
    return BacktestResult(periods=table, outcomes=pd.concat(outcomes, ignore_index=True), models=results[-1].models,
                          every=every, bookings=bookings)


#: Months in each kind of period.
PERIOD_MONTHS = {"month": 1, "quarter": 3}
#: Days a closed outcome needs behind an as-of date to teach the models: the win model's first interval
#: (30 days) must be fully observed, on the 14-day snapshot grid.
LEARNING_DAYS = 30 + 14


def earliest_start(data: DealHistory) -> pd.Timestamp:
    """The first as-of date at which the models can learn: training first fits on what was known at its
    holdout's start (the last :data:`~scoring.features.scale.HOLDOUT_FRACTION` of the time from the first deal), and by
    then ``min_won`` wins and ``min_lost`` losses had closed :data:`LEARNING_DAYS` days before (what a failed
    backtest date suggests instead; the latest date there is when there are not that many)."""
    deals, need = data.deals, data.config.sufficiency
    enough = []
    for status, count in (("won", need.min_won), ("lost", need.min_lost)):
        closed = deals.loc[deals["status"] == status, "closed_at"].dropna().sort_values()
        if len(closed) < count:
            return pd.Timestamp.max.floor("D")
        enough.append(closed.iloc[count - 1])
    learns = max(enough) + pd.Timedelta(days=LEARNING_DAYS)
    first = deals["created_at"].min()
    return (first + (learns - first) / (1 - HOLDOUT_FRACTION)).ceil("D")


def backtest_date(setup: DateSetup, as_of: pd.Timestamp) -> DateResult:
    """One as-of date of a backtest: train the bundle on what was known then, forecast the deals open then."""
    data, last, every = setup.data, setup.last, setup.every
    try:
        bundle = train_bundle(data, as_of, seed=setup.seed)
    except DataError as exc:
        later = earliest_start(data)
        advice = (f"start the backtest on {later.date()} or later ({(later - as_of).days} days later): by then "
                  f"{data.config.sufficiency.min_won} deals had been won and {data.config.sufficiency.min_lost} lost "
                  f"at least {LEARNING_DAYS} days before" if later > as_of else "start the backtest later")
        raise DataError(f"as of {as_of.date()}: {exc}; {advice}") from None
    models = bundle.models
    rows = take_snapshots(data, [as_of], last).rows
    if rows.empty:
        return DateResult([], None, list(models))
    bounds = period_bounds(as_of, every, setup.periods)
    horizon = period_horizons(as_of, bounds)
    amount = np.nan_to_num(rows["amount"].to_numpy(dtype=float))  # a blank amount adds no revenue
    actual = _actual(rows, horizon)
    outcomes = rows[["deal_id", "stage", "amount", "outcome"]].assign(as_of=as_of)
    period_rows: list[dict[str, object]] = []
    forecasts = {}
    for name, model in models.items():  # the served one as it serves: counting deals that never close
        p_win, by_end = (bundle.served_model if name == bundle.served else model).win_by(rows, horizon)
        outcomes[name] = p_win
        in_period = per_period(by_end)
        forecasts[name] = (p_win, in_period)
        q = won_revenue_quantiles(amount, in_period, seed=setup.seed)
        for k, (s, e) in enumerate(bounds):
            expected = float(in_period[:, k] @ amount)
            period_rows.append({"as_of": as_of, "model": name, "period": k + 1, "start": s, "end": e,
                                "expected": expected, "p10": q[k, 0], "p50": q[k, 1], "p90": q[k, 2],
                                "actual": actual[k], "complete": bool(e + pd.Timedelta(days=1) <= last),
                                "open_deals": int(len(rows))})
    return DateResult(period_rows, outcomes, list(models),
                      _bookings_rows(setup, as_of, bounds, amount, actual, forecasts, bundle, _rep_dates(rows, as_of)))


#: The bookings forecasts a backtest compares, in the order tables show them (``rep_dates`` with a field history
#: of the rep's close dates only).
BOOKING_METHODS = ("model", "fixed", "rep_dates", "seasonal_naive")


def _rep_dates(rows: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray | None:
    """Each open deal's expected close date as it stood at ``as_of`` (NaT: none set yet); None without a field
    history of close dates."""
    if "days_to_close_date" not in rows.columns:
        return None
    days = rows["days_to_close_date"].to_numpy(dtype=float)
    micros = np.where(np.isnan(days), 0, np.round(days * 86_400e6)).astype(np.int64)
    close = np.datetime64(as_of.to_datetime64(), "us") + micros.astype("timedelta64[us]")
    return np.where(np.isnan(days), np.datetime64("NaT", "us"), close)


def _bookings_rows(setup: DateSetup, as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
                   amount: np.ndarray, actual_open: np.ndarray, forecasts: dict[str, tuple[np.ndarray, np.ndarray]],
                   bundle: ModelBundle, rep_close: np.ndarray | None) -> list[dict[str, object]]:
    """One row per (method, period): the bookings forecast at ``as_of`` beside everything the period booked (the
    model's by the bundle's served model, arrivals and period effects, as a forecast then would have been)."""
    deals, every, last = setup.data.with_imported(), setup.every, setup.last  # what was booked: imports too
    booked = np.zeros(len(bounds))  # as-of dates are period starts: nothing is booked yet
    p_win, in_period = forecasts[bundle.served]
    joint = simulate_bookings(bundle.arrivals, bundle.effects, every, as_of, bounds, amount, in_period, p_win, booked,
                              seed=setup.seed)
    fixed_p, fixed_in = forecasts[FixedStageModel.name]
    fixed_q = won_revenue_quantiles(amount, fixed_in, seed=setup.seed)
    if rep_close is not None:  # the reps' dates as they stood then; timing by stage where a deal had none yet
        timing = np.cumsum(fixed_in, axis=1) / np.maximum(fixed_p, 1e-12)[:, None]
        rep_in = per_period(fixed_p[:, None] * by_close_date(rep_close, timing, bounds))
        rep_q = won_revenue_quantiles(amount, rep_in, seed=setup.seed)
    naive, naive_q = seasonal_naive(deals, as_of, every, bounds)
    booked_all = _booked_in_periods(deals, bounds)
    rows: list[dict[str, object]] = []
    for k, (s, e) in enumerate(bounds):
        common = {"as_of": as_of, "period": k + 1, "start": s, "end": e, "actual": booked_all[k],
                  "actual_open": actual_open[k], "actual_new": booked_all[k] - actual_open[k],
                  "complete": bool(e + pd.Timedelta(days=1) <= last)}
        rows.append({**common, "method": "model", "expected": joint.bookings.expected[k],
                     **_q(joint.bookings.quantiles[k]), "booked": booked[k], "pipeline": joint.pipeline.expected[k],
                     "new_deals": joint.new_deals.expected[k], "served": bundle.served})
        fixed = float(fixed_in[:, k] @ amount)
        rows.append({**common, "method": "fixed", "expected": fixed, **_q(fixed_q[k]), "booked": booked[k],
                     "pipeline": fixed, "new_deals": 0.0})
        if rep_close is not None:
            rep = float(rep_in[:, k] @ amount)
            rows.append({**common, "method": "rep_dates", "expected": rep, **_q(rep_q[k]), "booked": booked[k],
                         "pipeline": rep, "new_deals": 0.0})
        rows.append({**common, "method": "seasonal_naive", "expected": naive[k], **_q(naive_q[k]),
                     "booked": np.nan, "pipeline": np.nan, "new_deals": np.nan})
    return rows


def _q(values: np.ndarray) -> dict[str, float]:
    return {"p10": float(values[0]), "p50": float(values[1]), "p90": float(values[2])}


def _booked_in_periods(deals: pd.DataFrame, bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
    """Everything won in each period, whenever the deal was created."""
    won = deals[deals["status"] == "won"]
    closed, amount = won["closed_at"], won["amount"].fillna(0.0)
    return np.array([float(amount[(closed >= s) & (closed < e + pd.Timedelta(days=1))].sum()) for s, e in bounds])


def _actual(rows: pd.DataFrame, horizon: np.ndarray) -> np.ndarray:
    """Won revenue of these deals in each period (period k ends ``horizon[k]`` days after the as-of date)."""
    won = rows["outcome"].eq("won").to_numpy()
    days = rows["days_to_outcome"].to_numpy(dtype=float)
    amount = np.nan_to_num(rows["amount"].to_numpy(dtype=float))
    edges = np.concatenate([[-np.inf], horizon])
    return np.array([float(amount[won & (days >= lo) & (days < hi)].sum()) for lo, hi in zip(edges[:-1], edges[1:])])
