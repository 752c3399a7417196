"""How much whole periods move together: the forecast's range beyond independent deals.

A period's won revenue is a sum over many deals, and if each deal were an independent coin its P10-P90
range would be narrow. Real quarters are not: a good or a bad quarter (a market shift, a budget freeze, a
new product) moves the odds of many deals at once. The forecast models that as a **period-level random
effect on the log-odds of winning**: in each period every deal's log-odds of winning within it move by
the same ``z ~ Normal(0, win_sd)``, drawn anew for each period and each Monte Carlo sample.

``win_sd`` is read from history, on the very quantity it moves. At the start of every whole calendar
period (month or quarter) of the last ``LOOKBACK_DAYS`` before the as-of date, the deals open then are
forecast by the fitted model (their state as it was then) and compared with what they won within that
period (known by the as-of date). For each period ``j``: the effect ``z_j`` that would have made the
forecast exact (``sum(amount * expit(logit(p) + z_j)) = won``) and the part of it that independent
outcomes alone would explain (``noise_j = sd(won | z = 0) / (d expected / d z)``). Then
``z_j ~ Normal(0, win_sd^2 + noise_j^2)``. A dozen past quarters say little about ``win_sd`` when each
period's own noise is as large as the effect (the method of moments, ``mean(z^2) - mean(noise^2)``, read 0
at one date and 0.4 at the next on one simulated company, and ranges drawn with such a 0 held too few
periods in backtests), so the forecast does not take one value: it draws ``win_sd`` from its posterior (a
flat prior on ``[0, MAX_EFFECT]``, Gelman 2006's choice for a group-level spread, times the likelihood
above, read on a grid), one value per Monte Carlo sample. The range thereby carries what history does not
know about how periods move together; ``win_sd`` reported is the root mean square of those draws. It
needs ``MIN_PERIODS`` periods with open deals, else it is zero and the forecast says so. The same is done
for the count of new deals created per period (:class:`scoring.models.arrivals.
ArrivalModel`'s ``arrival_sd``, on the log scale beyond Poisson noise). Pipeline, new deals and bookings
are then simulated jointly: one draw of each period's effect moves the open deals and the new deals of
that period together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from scoring.data.contract import DealHistory
from scoring.features.snapshots import take_snapshots
from scoring.models.base import WinProbabilityModel

LOOKBACK_DAYS = 3 * 365
MIN_PERIODS = 6
#: The largest period effect read from one period (log-odds).
MAX_EFFECT = 3.0
FREQ = {"month": "M", "quarter": "Q"}
#: Where the posterior of the spread is read (log-odds), under a flat prior.
SD_GRID = np.linspace(0.0, MAX_EFFECT, 301)
#: How many equally likely values of the spread a forecast draws from.
SD_DRAWS = 64


@dataclass(frozen=True)
class PeriodEffects:
    """The spread of period-level effects read from history, per kind of period."""

    win_sd_draws: dict[str, tuple[float, ...]] = field(default_factory=dict)  # equally likely values (log-odds)
    arrival_sd: dict[str, float] = field(default_factory=dict)  # on the log of the count of new deals
    periods: dict[str, int] = field(default_factory=dict)  # how many past periods each estimate read

    @property
    def win_sd(self) -> dict[str, float]:
        """The spread of each kind's effect on the log-odds of winning: the root mean square of its draws."""
        return {kind: float(np.sqrt(np.mean(np.square(self.win_spread(kind))))) for kind in self.win_sd_draws}

    def win_spread(self, kind: str) -> np.ndarray:
        """Equally likely values of the spread of ``kind``'s period effect ([0.0] when none was read)."""
        return np.asarray(self.win_sd_draws.get(kind) or (0.0,), dtype=float)

    def note(self, kind: str) -> str | None:
        """Why the range treats periods as independent, if it does."""
        if self.periods.get(kind, 0) < MIN_PERIODS:
            return (f"fewer than {MIN_PERIODS} past {kind}s with open deals to learn from: the range cannot read "
                    "from history how periods move together, and treats deals as independent")
        return None


def fit_period_effects(data: DealHistory, as_of: pd.Timestamp, arrival_sd: dict[str, float],
                       model: WinProbabilityModel) -> PeriodEffects:
    """:class:`PeriodEffects` of ``model``'s forecasts of past periods before ``as_of`` (and the arrival
    model's spread)."""
    draws, periods = {}, {}
    for kind in FREQ:
        draws[kind], periods[kind] = win_effect_sd(data, as_of, kind, model)
    return PeriodEffects(win_sd_draws={kind: tuple(float(v) for v in d) for kind, d in draws.items()},
                         arrival_sd=dict(arrival_sd), periods=periods)


def win_effect_sd(data: DealHistory, as_of: pd.Timestamp, kind: str, model: WinProbabilityModel
                  ) -> tuple[np.ndarray, int]:
    """Equally likely values of the spread of the period effect on the log-odds of winning (its posterior; [0.0]
    with too few periods), and how many past periods it was read from."""
    as_of = pd.Timestamp(as_of)
    first = pd.Period(as_of - pd.Timedelta(days=LOOKBACK_DAYS), FREQ[kind]) + 1
    starts = [p.start_time for p in pd.period_range(first, pd.Period(as_of, FREQ[kind]) - 1, freq=FREQ[kind])]
    starts = [s for s in starts if s >= data.deals["created_at"].min()]
    if len(starts) < MIN_PERIODS:
        return np.zeros(1), len(starts)
    rows = take_snapshots(data, starts, as_of).rows
    effects, noise = [], []
    for start in starts:
        part = rows[rows["as_of"] == start]
        if part.empty:
            continue
        days = ((pd.Period(start, FREQ[kind]).end_time - start) / pd.Timedelta(days=1))
        _, by = model.win_by(part, np.array([days]))
        p = np.clip(by[:, 0], 1e-9, 1 - 1e-9)
        amount = np.nan_to_num(part["amount"].to_numpy(dtype=float))
        won = part["outcome"].eq("won").to_numpy() & (part["days_to_outcome"].to_numpy(dtype=float) < days)
        slope = float(amount @ (p * (1 - p)))
        if slope <= 0:
            continue
        effects.append(_effect(amount, p, float(amount[won].sum())))
        noise.append(float(np.sqrt((amount ** 2) @ (p * (1 - p)))) / slope)
    if len(effects) < MIN_PERIODS:
        return np.zeros(1), len(effects)
    return posterior_sd(np.array(effects), np.array(noise)), len(effects)


def posterior_sd(effects: np.ndarray, noise: np.ndarray, draws: int = SD_DRAWS) -> np.ndarray:
    """``draws`` equally likely values of the spread ``s`` given past periods' effects ``z_j`` and their noise
    ``n_j``: quantiles of the posterior of ``s`` under ``z_j ~ Normal(0, s^2 + n_j^2)`` and a flat prior on
    :data:`SD_GRID`."""
    variance = np.square(SD_GRID)[None, :] + np.square(noise)[:, None]
    log_likelihood = -0.5 * (np.log(variance) + np.square(effects)[:, None] / variance).sum(axis=0)
    weight = np.exp(log_likelihood - log_likelihood.max())
    cdf = np.cumsum(weight) / weight.sum()
    return np.interp((np.arange(draws) + 0.5) / draws, cdf, SD_GRID)


def _effect(amount: np.ndarray, p: np.ndarray, won: float) -> float:
    """The shift of every deal's log-odds that makes the expected won revenue equal ``won`` (within +-MAX_EFFECT)."""
    odds = np.log(p / (1 - p))

    def gap(z: float) -> float:
        return float(amount @ (1.0 / (1.0 + np.exp(-(odds + z))))) - won

    if gap(-MAX_EFFECT) >= 0:
        return -MAX_EFFECT
    if gap(MAX_EFFECT) <= 0:
        return MAX_EFFECT
    return float(brentq(gap, -MAX_EFFECT, MAX_EFFECT, xtol=1e-4))


def draw_effects(rng: np.random.Generator, samples: int, periods: int, sd: float | np.ndarray) -> np.ndarray:
    """Period effects for each (sample, period): stratified normal draws (each period's samples cover the
    distribution evenly, in a random order), so few samples give steady quantiles. ``sd`` is one spread or
    equally likely values of it: then each sample takes one of them (evenly, in a random order) for all its
    periods."""
    spreads = np.atleast_1d(np.asarray(sd, dtype=float))
    if not (spreads > 0).any():
        return np.zeros((samples, periods))
    grid = norm.ppf((np.arange(samples) + 0.5) / samples)
    z = np.column_stack([rng.permutation(grid) for _ in range(periods)])
    if len(spreads) == 1:
        return z * spreads[0]
    return z * rng.permutation(spreads[np.arange(samples) * len(spreads) // samples])[:, None]
