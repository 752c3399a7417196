"""Revenue forecasts for open deals: won revenue per calendar period, with its range, beside the fixed percentages.

For each open deal the model gives P(won by the end of each period) (its hazards) and P(won ever).
Per period, ``expected`` is the sum of amount x P(won in that period); P10/P50/P90 are quantiles of
the won revenue itself, a sum of independent amount-weighted Bernoulli outcomes: computed exactly
(every combination) for a few deals, by seeded Monte Carlo otherwise. With many deals the Monte
Carlo simulates the ``SIMULATED`` deals that carry the most variance one by one and adds the sum
of the rest as a normal draw (each of them is small against that sum's spread, so it is close to
normal); the seed makes it repeatable.

The fixed forecast is the classic weighted pipeline: amount x the stage's fixed percentage, in the
period of the deal's ``expected_close_date`` (overdue dates count in the first period); deals
without one are spread over periods by how long wins from their stage took in the past
(``StageTiming``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from scoring.bundle import ModelBundle
from scoring.data.signals import DealSignals
from scoring.errors import ConfigError
from scoring.features.snapshots import DAY_SECONDS
from scoring.forecast.uncertainty import PeriodEffects, draw_effects
from scoring.models.arrivals import ArrivalModel
from scoring.scores import deal_state

PERIODS = {"month": "M", "quarter": "Q"}
QUANTILES = (0.1, 0.5, 0.9)
#: Up to this many deals, quantiles are exact (2**n combinations per period).
EXACT_MAX_DEALS = 14
SAMPLES = 2000
SIMULATED = 4000
#: Points of the effect at which the rest of the deals' moments are computed (interpolated between).
GRID = 17
BREAKDOWNS = ("stage", "owner", "segment")


def period_bounds(as_of: pd.Timestamp, period: str, periods: int) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first day, last day) of ``periods`` calendar periods; the first runs from ``as_of`` to its period's end."""
    if period not in PERIODS:
        raise ConfigError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    if periods < 1:
        raise ConfigError(f"periods must be at least 1, got {periods}")
    first = pd.Period(as_of, PERIODS[period])
    bounds = []
    for i in range(periods):
        p = first + i
        bounds.append((as_of.normalize() if i == 0 else p.start_time.normalize(), p.end_time.normalize()))
    return bounds


def period_name(start: pd.Timestamp, period: str) -> str:
    """How people name a calendar period: "Q3 2025", "July 2025"."""
    if period == "quarter":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return start.strftime("%B %Y")


def period_horizons(as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
    """Days from ``as_of`` to the end of each period (the end of its last day)."""
    return np.array([((end + pd.Timedelta(days=1)) - as_of).total_seconds() / DAY_SECONDS for _, end in bounds])


def per_period(by_end: np.ndarray) -> np.ndarray:
    """Probabilities in each period from cumulative ones by each period's end (columns)."""
    return np.diff(by_end, axis=1, prepend=0.0)


def won_revenue_quantiles(amounts: np.ndarray, probabilities: np.ndarray, quantiles: Sequence[float] = QUANTILES,
                          samples: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """Quantiles of sum(amount_i * B_i), B_i ~ Bernoulli(p_i) independent, for each column of ``probabilities``.

    ``probabilities`` has shape (deals, columns); the answer has shape (columns, quantiles).
    """
    amounts, probabilities = _checked(amounts, probabilities)
    if len(amounts) == 0:
        return np.zeros((probabilities.shape[1], len(quantiles)))
    if len(amounts) <= EXACT_MAX_DEALS:
        return np.array([_exact_quantiles(amounts, probabilities[:, j], quantiles)
                         for j in range(probabilities.shape[1])])
    totals = won_revenue_samples(amounts, probabilities, np.zeros((samples, probabilities.shape[1])),
                                 np.random.default_rng(seed))
    return np.quantile(totals, quantiles, axis=0, method="inverted_cdf").T


def _checked(amounts: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    amounts = np.asarray(amounts, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim == 1:
        probabilities = probabilities[:, None]
    if probabilities.shape[0] != len(amounts):
        raise ValueError(f"{len(amounts)} amounts but probabilities for {probabilities.shape[0]} deals")
    return amounts, np.clip(probabilities, 0.0, 1.0)


def _exact_quantiles(amounts: np.ndarray, p: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    values, weights = np.zeros(1), np.ones(1)
    for a, q in zip(amounts, p):
        values = np.concatenate([values, values + a])
        weights = np.concatenate([weights * (1 - q), weights * q])
    return _weighted_quantiles(values, weights, quantiles)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """The smallest value whose cumulative probability reaches each quantile (inverted CDF)."""
    order = np.argsort(values, kind="stable")
    cdf = np.cumsum(weights[order])
    cdf /= cdf[-1]
    at = np.searchsorted(cdf, np.asarray(quantiles) - 1e-12, side="left")
    return values[order][np.minimum(at, len(values) - 1)]


def won_revenue_samples(amounts: np.ndarray, probabilities: np.ndarray, effects: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """Draws of sum(amount_i * B_i) per (sample, column): B_i ~ Bernoulli(expit(logit(p_i) + z)) with ``z`` =
    ``effects[sample, column]`` shared by every deal (zeros: independent deals).

    The ``SIMULATED`` deals with the most variance are drawn one by one; the rest's sum is a normal draw
    with the mean and variance it has given ``z`` (interpolated over a grid of ``z``). A deal wins when a
    standard logistic draw, logit(U), falls below logit(p_i) + z: the same Bernoulli without computing each
    (sample, deal)'s probability; draws and sums in float32 (twice as fast as float64 and the logistic
    function; a sum of a few thousand amounts off by about one part in a million).
    """
    amounts, p = _checked(amounts, probabilities)
    samples, columns = effects.shape
    out = np.zeros((samples, columns))
    if len(amounts) == 0:
        return out
    chunk = max(1, 2_000_000 // max(min(len(amounts), SIMULATED), 1))
    for j in range(columns):
        z = effects[:, j]
        shifted = bool(np.any(z))
        variance = amounts ** 2 * p[:, j] * (1 - p[:, j])
        big = np.argsort(-variance, kind="stable")[:SIMULATED]
        rest = np.ones(len(amounts), dtype=bool)
        rest[big] = False
        a, q = amounts[big].astype(np.float32), p[big, j]
        odds = (logit(np.clip(q, 1e-12, 1 - 1e-12)) if shifted else q).astype(np.float32)
        totals = out[:, j]
        for s0 in range(0, samples, chunk):
            s1 = min(samples, s0 + chunk)
            u = rng.random((s1 - s0, len(a)), dtype=np.float32)
            if shifted:  # logit(U) - logit(p_i) < z; U = 0 (one draw in 2**24) wins
                with np.errstate(divide="ignore"):
                    draw = np.log(u)
                draw -= np.log1p(-u)
                draw -= odds
                won = draw < z[s0:s1, None].astype(np.float32)
            else:
                won = u < odds
            totals[s0:s1] = won.astype(np.float32) @ a
        if rest.any():
            mean, sd = _rest_moments(amounts[rest], p[rest, j], z)
            totals += np.maximum(mean + sd * rng.standard_normal(samples), 0.0)
    return out


def _rest_moments(amounts: np.ndarray, p: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of sum(amount_i * B_i) given each effect ``z``."""
    if not np.any(z):
        return np.full(len(z), float(amounts @ p)), np.full(len(z), float(np.sqrt((amounts ** 2) @ (p * (1 - p)))))
    grid = np.linspace(z.min(), z.max(), GRID)
    odds = logit(np.clip(p, 1e-12, 1 - 1e-12))
    shifted = expit(odds[None, :] + grid[:, None])
    means = shifted @ amounts
    sds = np.sqrt((shifted * (1 - shifted)) @ (amounts ** 2))
    return np.interp(z, grid, means), np.interp(z, grid, sds)


def quantiles_of(draws: np.ndarray) -> np.ndarray:
    """P10/P50/P90 of each column of ``draws`` (samples x columns): shape (columns, 3)."""
    return np.quantile(draws, QUANTILES, axis=0, method="inverted_cdf").T


@dataclass
class Spread:
    """Expected value and P10/P50/P90 per period and in total."""

    expected: np.ndarray  # (periods,)
    quantiles: np.ndarray  # (periods, 3)
    total_expected: float
    total_quantiles: np.ndarray  # (3,)

    def period(self, k: int) -> dict[str, float]:
        return _spread_json(self.expected[k], self.quantiles[k])

    def total(self) -> dict[str, float]:
        return _spread_json(self.total_expected, self.total_quantiles)


def _spread_json(expected: float, quantiles: np.ndarray) -> dict[str, float]:
    return {"expected": round(float(expected), 2),
            **{f"p{int(round(x * 100))}": round(float(v), 2) for x, v in zip(QUANTILES, quantiles)}}


@dataclass
class Forecast:
    """A forecast at ``as_of``: per period and in total, what the open deals (``pipeline``), the deals not yet
    created (``new_deals``) and both with what was already won (``bookings``) will bring, beside the fixed
    percentages."""

    as_of: pd.Timestamp
    period: str
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]]
    pipeline: Spread
    new_deals: Spread
    bookings: Spread
    booked: np.ndarray  # (periods,): won before as_of in the first (calendar) period; zeros after it
    booked_known: bool
    commit: np.ndarray | None  # (periods + 1,): booked + amounts of deals in commit per period, then in total
    fixed_expected: np.ndarray  # (periods,)
    total_fixed: float
    fixed_undated: float  # share of the fixed total placed by StageTiming (no expected_close_date)
    deals: pd.DataFrame  # per deal: id, stage, amount, p_win, fixed, won per period (for breakdowns)
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, str] = field(default_factory=dict)

    # The open deals' forecast under its first names (``model`` in the JSON).
    @property
    def model_expected(self) -> np.ndarray:
        return self.pipeline.expected

    @property
    def model_quantiles(self) -> np.ndarray:
        return self.pipeline.quantiles

    @property
    def total_expected(self) -> float:
        return self.pipeline.total_expected

    @property
    def total_quantiles(self) -> np.ndarray:
        return self.pipeline.total_quantiles

    def to_json(self) -> dict[str, Any]:
        """The SPEC's forecast JSON (section 5), with breakdowns, warnings and the method added."""
        periods = []
        for k, (s, e) in enumerate(self.bounds):
            periods.append({
                "start": str(s.date()), "end": str(e.date()),
                "calendar_start": str(pd.Period(s, PERIODS[self.period]).start_time.date()),
                "model": self.pipeline.period(k), "fixed": {"expected": round(float(self.fixed_expected[k]), 2)},
                "booked": round(float(self.booked[k]), 2), "pipeline": self.pipeline.period(k),
                "new_deals": self.new_deals.period(k), "bookings": self.bookings.period(k),
                "commit": None if self.commit is None else {"expected": round(float(self.commit[k]), 2)}})
        total = {"model": self.pipeline.total(),
                 "fixed": {"expected": round(self.total_fixed, 2), "placed_by_stage_timing": round(self.fixed_undated, 2)},
                 "booked": round(float(self.booked.sum()), 2), "pipeline": self.pipeline.total(),
                 "new_deals": self.new_deals.total(), "bookings": self.bookings.total(),
                 "commit": None if self.commit is None else {"expected": round(float(self.commit[-1]), 2)}}
        return {"as_of": str(self.as_of.date()), "period": self.period, "model": self.model_info,
                "periods": periods, "total": total, "booked_known": self.booked_known,
                "deals": int(len(self.deals)), "breakdowns": self.breakdowns, "warnings": self.warnings,
                "method": self.method}


def forecast(bundle: ModelBundle, deals: pd.DataFrame, as_of: pd.Timestamp | str, period: str = "quarter",
             periods: int = 4, seed: int = 0, samples: int = SAMPLES,
             model_info: dict[str, str] | None = None, history: pd.DataFrame | None = None,
             booked: float | None = None, signals: DealSignals | None = None) -> Forecast:
    """Forecast what each period books: the open ``deals`` (canonical columns, with their field history and
    activities in ``signals`` when the model learned from them) by ``bundle``'s model, the
    deals not yet created by its arrival model, and what the first period had already won (from the deal
    ``history``: the deals of a deal history, canonical columns; or ``booked`` as given); beside the fixed
    percentages."""
    as_of = pd.Timestamp(as_of)
    bounds = period_bounds(as_of, period, periods)
    rows, warnings = deal_state(bundle, deals, as_of, signals)
    horizon = period_horizons(as_of, bounds)
    p_win, by_end = bundle.served_model.win_by(rows, horizon)
    fixed = bundle.models["fixed"].predict_proba(rows)
    fixed_by_end = _fixed_by_end(deals, rows, fixed, bundle, as_of, bounds, horizon)
    amount = rows["amount"].to_numpy(dtype=float)
    blank = np.isnan(amount)
    if blank.any():  # scored (their probabilities are in the breakdowns), but no revenue to weigh
        warnings.append(f"{int(blank.sum()):,} deal(s) without an amount are counted aside: no revenue in the forecast")
        amount = np.where(blank, 0.0, amount)
    known = history is not None or booked is not None
    won = booked_in(history, as_of, bounds, period) if history is not None else np.zeros(len(bounds))
    if booked is not None:
        won[0] = booked
    if not known:
        warnings.append("revenue already won this period is not known (no deal history given): booked is 0")
    note = bundle.effects.note(period)
    if note:
        warnings.append(note)
    result = summarize_forecast(bundle, as_of, period, bounds, deals, amount, p_win, by_end, fixed, fixed_by_end,
                                won, seed=seed, samples=samples, warnings=warnings, model_info=model_info or {})
    result.booked_known = known
    return result


def booked_in(history: pd.DataFrame, as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
              period: str) -> np.ndarray:
    """Revenue won from the start of the first calendar period to ``as_of`` (zeros for later periods)."""
    start = pd.Period(bounds[0][0], PERIODS[period]).start_time
    closed = history["closed_at"]
    won = (history["status"] == "won") & (closed >= start) & (closed < as_of)
    out = np.zeros(len(bounds))
    out[0] = float(np.nansum(history.loc[won, "amount"].to_numpy(dtype=float)))
    return out


def _fixed_by_end(deals: pd.DataFrame, rows: pd.DataFrame, fixed: np.ndarray, bundle: ModelBundle,
                  as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
                  horizon: np.ndarray) -> np.ndarray:
    """Cumulative fixed probability by the end of each period: by expected close date, else by stage timing."""
    share = bundle.timing.share_within(rows["stage_index"].to_numpy(), horizon)
    if "expected_close_date" in deals.columns:
        close = pd.to_datetime(deals["expected_close_date"]).to_numpy(dtype="datetime64[us]")
        share = by_close_date(close, share, bounds)
    return fixed[:, None] * share


def by_close_date(close: np.ndarray, share: np.ndarray, bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
    """The cumulative share of each deal's win by the end of each period: 1 from the period of the rep's expected
    ``close`` date on (an overdue date counts in the first period), ``share`` (by stage timing) where it has none."""
    ends = np.array([e.to_datetime64() for _, e in bounds], dtype="datetime64[us]")
    dated = ~np.isnat(close)
    by_date = (close[:, None] <= ends[None, :] + np.timedelta64(1, "D") - np.timedelta64(1, "us")).astype(float)
    return np.where(dated[:, None], by_date, share)


def summarize_forecast(bundle: ModelBundle, as_of: pd.Timestamp, period: str,
                       bounds: list[tuple[pd.Timestamp, pd.Timestamp]], deals: pd.DataFrame, amount: np.ndarray,
                       p_win: np.ndarray, by_end: np.ndarray, fixed: np.ndarray, fixed_by_end: np.ndarray,
                       booked: np.ndarray, seed: int = 0, samples: int = SAMPLES, warnings: list[str] | None = None,
                       model_info: dict[str, str] | None = None) -> Forecast:
    """Sum per-deal probabilities (P(win) ever, cumulative P(won by each period's end)) and the new deals into
    a forecast; draw pipeline, new deals and bookings jointly (one period effect moves them together)."""
    in_period = per_period(by_end)
    fixed_in = per_period(fixed_by_end)
    joint = simulate_bookings(bundle.arrivals, bundle.effects, period, as_of, bounds, amount, in_period, p_win,
                              booked, samples, seed)
    per_deal = pd.DataFrame({"deal_id": deals["deal_id"].to_numpy(), "amount": amount, "p_win": p_win,
                             "fixed": fixed})
    for name in BREAKDOWNS:
        if name in deals.columns:
            per_deal[name] = deals[name].astype("str").to_numpy()
    dated = deals["expected_close_date"].notna().to_numpy() if "expected_close_date" in deals.columns \
        else np.zeros(len(amount), dtype=bool)
    result = Forecast(
        as_of=as_of, period=period, bounds=bounds, pipeline=joint.pipeline, new_deals=joint.new_deals,
        bookings=joint.bookings,
        booked=booked, booked_known=False, commit=_commit(deals, amount, booked, bounds),
        fixed_expected=fixed_in.T @ amount, total_fixed=float(fixed @ amount),
        fixed_undated=float(fixed[~dated] @ amount[~dated]), deals=per_deal, warnings=list(warnings or []),
        method={"samples": samples, "seed": seed, "simulated_deals": min(len(amount), SIMULATED), **joint.method},
        model_info=dict(model_info or {}))
    result.breakdowns = {name: _breakdown(per_deal, name, in_period, amount)
                         for name in BREAKDOWNS if name in per_deal.columns}
    return result


@dataclass
class Joint:
    """The open deals', the new deals' and the bookings' spreads, drawn together, and how."""

    pipeline: Spread
    new_deals: Spread
    bookings: Spread
    method: dict[str, Any]


def simulate_bookings(arrivals: ArrivalModel, effects: PeriodEffects, period: str, as_of: pd.Timestamp,
                      bounds: list[tuple[pd.Timestamp, pd.Timestamp]], amount: np.ndarray, in_period: np.ndarray,
                      p_win: np.ndarray, booked: np.ndarray, samples: int = SAMPLES, seed: int = 0) -> Joint:
    """Draw the open deals' wins per period (``in_period``: P(won in each period)) and in total (``p_win``),
    the new deals' wins per period, and bookings (``booked`` + both), with one period effect per period and
    sample moving open and new deals together (:mod:`scoring.forecast.uncertainty`)."""
    k = len(bounds)
    rng = np.random.default_rng(seed)
    win_sd, arrival_sd = effects.win_sd.get(period, 0.0), effects.arrival_sd.get(period, 0.0)
    z = draw_effects(rng, samples, k + 1, effects.win_spread(period))  # per period, and for wins after the last
    expected_in = in_period.T @ amount
    expected_total = float(p_win @ amount)
    weights = np.append(expected_in, max(expected_total - float(expected_in.sum()), 0.0))
    z_total = z @ (weights / weights.sum()) if weights.sum() > 0 else z[:, 0]
    columns = np.column_stack([in_period, p_win])
    pipeline_draws = won_revenue_samples(amount, columns, np.column_stack([z[:, :k], z_total]), rng)
    exact = len(amount) <= EXACT_MAX_DEALS and win_sd == 0
    pipeline_q = won_revenue_quantiles(amount, columns) if exact else quantiles_of(pipeline_draws)
    new = arrivals.expected(as_of, bounds)
    shift = draw_effects(rng, samples, k, arrival_sd) - arrival_sd ** 2 / 2
    new_draws = arrivals.simulate(new, z[:, :k], shift, rng)
    new_total = new_draws.sum(axis=1, keepdims=True)
    bookings_draws = booked[None, :] + pipeline_draws[:, :k] + new_draws
    bookings_total = booked.sum() + pipeline_draws[:, k:] + new_total
    return Joint(
        pipeline=Spread(expected_in, pipeline_q[:k], expected_total, pipeline_q[k]),
        new_deals=Spread(new.revenue, quantiles_of(new_draws), float(new.revenue.sum()), quantiles_of(new_total)[0]),
        bookings=Spread(booked + expected_in + new.revenue, quantiles_of(bookings_draws),
                        float(booked.sum()) + expected_total + float(new.revenue.sum()), quantiles_of(bookings_total)[0]),
        method={"quantiles": "exact" if exact else "monte carlo",
                "period_effects": {"win_sd": round(win_sd, 4), "arrival_sd": round(arrival_sd, 4),
                                   "past_periods": effects.periods.get(period, 0)},
                "new_deals": {"rate": arrivals.spec_.name, "groups": [g.key for g in arrivals.groups_ or []],
                              "expected_wins": [round(float(c), 1) for c in new.count]}})


#: Forecast categories that count as commit (Salesforce's and HubSpot's name for it).
COMMIT = "commit"


def _commit(deals: pd.DataFrame, amount: np.ndarray, booked: np.ndarray,
            bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray | None:
    """Per period: booked + the amounts of deals the reps put in commit, by expected close date (overdue and
    undated ones in the first period), then the total; None when the deals carry no ``forecast_category``."""
    if "forecast_category" not in deals.columns:
        return None
    committed = deals["forecast_category"].astype("string").str.strip().str.lower().eq(COMMIT).fillna(False)
    committed = committed.to_numpy(dtype=bool)
    close = (pd.to_datetime(deals["expected_close_date"]) if "expected_close_date" in deals.columns
             else pd.Series(pd.NaT, index=deals.index))
    out = booked.astype(float).copy()
    for k, (_, end) in enumerate(bounds):
        due = close.lt(end + pd.Timedelta(days=1)).to_numpy(dtype=bool)
        if k > 0:
            due = due & close.ge(bounds[k - 1][1] + pd.Timedelta(days=1)).to_numpy(dtype=bool)
        else:
            due = due | close.isna().to_numpy(dtype=bool)
        out[k] += float(amount[committed & due].sum())
    return np.append(out, booked.sum() + amount[committed].sum())


def _breakdown(per_deal: pd.DataFrame, column: str, in_period: np.ndarray, amount: np.ndarray) -> list[dict[str, Any]]:
    weighted = in_period * amount[:, None]
    out = []
    for key, index in per_deal.groupby(column, sort=True).indices.items():
        part = per_deal.iloc[index]
        out.append({"key": str(key), "deals": int(len(index)), "amount": round(float(part["amount"].sum()), 2),
                    "model": {"expected": round(float(part["p_win"] @ part["amount"]), 2),
                              "periods": [round(float(v), 2) for v in weighted[index].sum(axis=0)]},
                    "fixed": {"expected": round(float(part["fixed"] @ part["amount"]), 2)}})
    return sorted(out, key=lambda r: -r["model"]["expected"])
