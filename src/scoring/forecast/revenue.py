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

from scoring.bundle import ModelBundle
from scoring.errors import ConfigError
from scoring.features.snapshots import DAY_SECONDS
from scoring.scores import deal_state

PERIODS = {"month": "M", "quarter": "Q"}
QUANTILES = (0.1, 0.5, 0.9)
#: Up to this many deals, quantiles are exact (2**n combinations per period).
EXACT_MAX_DEALS = 14
SAMPLES = 2000
SIMULATED = 4000
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
    amounts = np.asarray(amounts, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim == 1:
        probabilities = probabilities[:, None]
    if probabilities.shape[0] != len(amounts):
        raise ValueError(f"{len(amounts)} amounts but probabilities for {probabilities.shape[0]} deals")
    probabilities = np.clip(probabilities, 0.0, 1.0)
    if len(amounts) == 0:
        return np.zeros((probabilities.shape[1], len(quantiles)))
    if len(amounts) <= EXACT_MAX_DEALS:
        return np.array([_exact_quantiles(amounts, probabilities[:, j], quantiles)
                         for j in range(probabilities.shape[1])])
    return _simulated_quantiles(amounts, probabilities, quantiles, samples, seed)


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


def _simulated_quantiles(amounts: np.ndarray, p: np.ndarray, quantiles: Sequence[float], samples: int,
                         seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((p.shape[1], len(quantiles)))
    chunk = max(1, 2_000_000 // max(min(len(amounts), SIMULATED), 1))
    for j in range(p.shape[1]):
        variance = amounts ** 2 * p[:, j] * (1 - p[:, j])
        big = np.argsort(-variance, kind="stable")[:SIMULATED]
        rest = np.ones(len(amounts), dtype=bool)
        rest[big] = False
        rest_mean = float((amounts[rest] * p[rest, j]).sum())
        rest_sd = float(np.sqrt(variance[rest].sum()))
        a, q = amounts[big], p[big, j]
        totals = np.empty(samples)
        for s0 in range(0, samples, chunk):
            s1 = min(samples, s0 + chunk)
            won = rng.random((s1 - s0, len(a))) < q
            totals[s0:s1] = won @ a
        totals += np.maximum(rest_mean + rest_sd * rng.standard_normal(samples), 0.0) if rest.any() else 0.0
        out[j] = np.quantile(totals, quantiles, method="inverted_cdf")
    return out


@dataclass
class Forecast:
    """A forecast at ``as_of``: per period and in total, the model's won revenue and range beside the fixed one."""

    as_of: pd.Timestamp
    period: str
    bounds: list[tuple[pd.Timestamp, pd.Timestamp]]
    model_expected: np.ndarray  # (periods,)
    model_quantiles: np.ndarray  # (periods, 3)
    fixed_expected: np.ndarray  # (periods,)
    total_expected: float
    total_quantiles: np.ndarray  # (3,)
    total_fixed: float
    fixed_undated: float  # share of the fixed total placed by StageTiming (no expected_close_date)
    deals: pd.DataFrame  # per deal: id, stage, amount, p_win, fixed, won per period (for breakdowns)
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    method: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The SPEC's forecast JSON (section 5), with breakdowns, warnings and the method added."""
        def q(values: np.ndarray) -> dict[str, float]:
            return {f"p{int(round(x * 100))}": round(float(v), 2) for x, v in zip(QUANTILES, values)}

        periods = [{"start": str(s.date()), "end": str(e.date()),
                    "model": {"expected": round(float(m), 2), **q(mq)}, "fixed": {"expected": round(float(f), 2)}}
                   for (s, e), m, mq, f in zip(self.bounds, self.model_expected, self.model_quantiles,
                                               self.fixed_expected)]
        return {"as_of": str(self.as_of.date()), "period": self.period, "model": self.model_info,
                "periods": periods,
                "total": {"model": {"expected": round(self.total_expected, 2), **q(self.total_quantiles)},
                          "fixed": {"expected": round(self.total_fixed, 2),
                                    "placed_by_stage_timing": round(self.fixed_undated, 2)}},
                "deals": int(len(self.deals)), "breakdowns": self.breakdowns, "warnings": self.warnings,
                "method": self.method}


def forecast(bundle: ModelBundle, deals: pd.DataFrame, as_of: pd.Timestamp | str, period: str = "quarter",
             periods: int = 4, seed: int = 0, samples: int = SAMPLES,
             model_info: dict[str, str] | None = None) -> Forecast:
    """Forecast won revenue of open ``deals`` (canonical columns) with ``bundle``'s model beside the fixed percentages."""
    as_of = pd.Timestamp(as_of)
    bounds = period_bounds(as_of, period, periods)
    rows, warnings = deal_state(bundle, deals, as_of)
    horizon = period_horizons(as_of, bounds)
    p_win, by_end = bundle.served_model.win_by(rows, horizon)
    fixed = bundle.models["fixed"].predict_proba(rows)
    fixed_by_end = _fixed_by_end(deals, rows, fixed, bundle, as_of, bounds, horizon)
    amount = rows["amount"].to_numpy(dtype=float)
    blank = np.isnan(amount)
    if blank.any():  # scored (their probabilities are in the breakdowns), but no revenue to weigh
        warnings.append(f"{int(blank.sum()):,} deal(s) without an amount are counted aside: no revenue in the forecast")
        amount = np.where(blank, 0.0, amount)
    return summarize_forecast(as_of, period, bounds, deals, amount, p_win, by_end,
                              fixed, fixed_by_end, seed=seed, samples=samples, warnings=warnings,
                              model_info=model_info or {})


def _fixed_by_end(deals: pd.DataFrame, rows: pd.DataFrame, fixed: np.ndarray, bundle: ModelBundle,
                  as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
                  horizon: np.ndarray) -> np.ndarray:
    """Cumulative fixed probability by the end of each period: by expected close date, else by stage timing."""
    share = bundle.timing.share_within(rows["stage_index"].to_numpy(), horizon)
    if "expected_close_date" in deals.columns:
        close = pd.to_datetime(deals["expected_close_date"]).to_numpy(dtype="datetime64[us]")
        ends = np.array([e.to_datetime64() for _, e in bounds], dtype="datetime64[us]")
        dated = ~np.isnat(close)
        by_date = (close[:, None] <= ends[None, :] + np.timedelta64(1, "D") - np.timedelta64(1, "us")).astype(float)
        share = np.where(dated[:, None], by_date, share)
    return fixed[:, None] * share


def summarize_forecast(as_of: pd.Timestamp, period: str, bounds: list[tuple[pd.Timestamp, pd.Timestamp]],
                       deals: pd.DataFrame, amount: np.ndarray, p_win: np.ndarray, by_end: np.ndarray,
                       fixed: np.ndarray, fixed_by_end: np.ndarray, seed: int = 0, samples: int = SAMPLES,
                       warnings: list[str] | None = None, model_info: dict[str, str] | None = None) -> Forecast:
    """Sum per-deal probabilities into a forecast: P(win) ever and cumulative P(won by each period's end)."""
    in_period = per_period(by_end)
    fixed_in = per_period(fixed_by_end)
    quantiles = won_revenue_quantiles(amount, np.column_stack([in_period, p_win]), samples=samples, seed=seed)
    per_deal = pd.DataFrame({"deal_id": deals["deal_id"].to_numpy(), "amount": amount, "p_win": p_win,
                             "fixed": fixed})
    for name in BREAKDOWNS:
        if name in deals.columns:
            per_deal[name] = deals[name].astype("str").to_numpy()
    dated = deals["expected_close_date"].notna().to_numpy() if "expected_close_date" in deals.columns \
        else np.zeros(len(amount), dtype=bool)
    result = Forecast(
        as_of=as_of, period=period, bounds=bounds,
        model_expected=in_period.T @ amount, model_quantiles=quantiles[:-1], fixed_expected=fixed_in.T @ amount,
        total_expected=float(p_win @ amount), total_quantiles=quantiles[-1], total_fixed=float(fixed @ amount),
        fixed_undated=float(fixed[~dated] @ amount[~dated]), deals=per_deal, warnings=list(warnings or []),
        method={"quantiles": "exact" if len(amount) <= EXACT_MAX_DEALS else "monte carlo",
                "samples": samples, "seed": seed, "simulated_deals": min(len(amount), SIMULATED)},
        model_info=dict(model_info or {}))
    result.breakdowns = {name: _breakdown(per_deal, name, in_period, amount)
                         for name in BREAKDOWNS if name in per_deal.columns}
    return result


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
