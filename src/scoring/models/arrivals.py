"""New deals: how many will be created, how large, and how fast they win (the part of a period's bookings
that does not exist yet at the as-of date).

``ArrivalModel.fit`` learns, from the deals created in the last ``LOOKBACK_DAYS`` before the as-of date
(only what was known then; deals created in bulk on one or two days, an import into the CRM, left out:
:mod:`scoring.data.bulk`):

- the daily rate of new deals: a Poisson GLM (scikit-learn's ``PoissonRegressor``) of the count created
  each day, in the form of :data:`RATE_SPECS` that forecast best on this company's own recent months
  (a rolling-origin backtest at fit time: from the start of each of the last ``SELECTION_MONTHS`` months,
  each form fitted on what came before forecasts that month's count; a trend with a smooth yearly cycle over
  the whole history is kept unless another form's summed error is lower by more than the months' noise). The
  forms range from a log-linear trend with month of year (or a smooth yearly cycle) and weekday over three years
  to the level of the last 90 days: real exports jump and stall, and a trend read from them can forecast far
  worse than a recent average (``benchmarks/arrivals_bench.py``). Month of year and the yearly cycle need
  ``SEASON_MIN_DAYS`` of history (the cycle also a wave the counts show, :func:`fit_rate`), weekday
  ``WEEKDAY_MIN_DAYS``; the trend's yearly growth is held within ``GROWTH_BOUNDS`` since it is extrapolated.
  By segment where the data supports it (``SEGMENT_MIN_DEALS`` new deals per value in the window), else for
  all deals together;
- how fast a new deal wins: the share of created deals won within ``t`` days of creation, an Aalen-Johansen
  cumulative incidence of winning with losing as the competing outcome, so deals still open at the as-of
  date count for the time they were watched (censored, not lost), and the share of created amount won, the
  same incidence weighted by the amount. Tried and dropped: the count's share tilted by a logistic fit of
  winning on the log amount (unbiased only where one curve fits the amounts; on 400-deal demo companies,
  whose segments differ threefold in win rate, it read a new deal's worth 24 % high, the amount-weighted
  incidence 2 %, and it gained nothing at 30,000 or 100,000 deals); the win model's own P(win) at creation
  (17 % high, being calibrated on snapshots of every age, not on new deals);
- the amounts of recent wins (new deals' won revenue is drawn from them), and how much whole months' counts
  of new deals strayed from the chosen form's own out-of-sample forecasts beyond Poisson noise
  (``arrival_sd``: a period-level multiplicative effect).

``expected`` gives, for calendar periods after the as-of date, the expected won revenue and count of
deals created after the as-of date and won within each period; ``simulate`` draws won revenue per period
(compound Poisson: the count of such wins is Poisson given the period's arrival and win shocks, each
win's amount a recent win's).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import chi2
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import mean_poisson_deviance
from threadpoolctl import threadpool_limits

from scoring.data.bulk import bulk_days

LOOKBACK_DAYS = 3 * 365
SEASON_MIN_DAYS = 2 * 365
#: A whole year of months: over six, a seasonal company's backtest saw one half of its year, and a trend without
#: the yearly cycle, which reads the quiet half as decline, won there and forecast the busy half 28 % short.
SELECTION_MONTHS = 12
#: The history a month's forecast needs behind it to count in the selection.
SELECTION_MIN_DAYS = 120
WEEKDAY_MIN_DAYS = 8 * 7
SEGMENT_MIN_DEALS = 300
#: Least yearly change of the arrival rate that may be extrapolated, and the most.
GROWTH_BOUNDS = (-0.5, 1.0)
#: Days of age the win curves cover (beyond, they stay flat).
MAX_AGE_DAYS = 4 * 366
#: Recent wins kept to draw new deals' amounts from.
AMOUNT_SAMPLE = 5000


@dataclass(frozen=True)
class RateSpec:
    """A form of the daily-rate GLM: the days it is fitted on and its inputs (``season``: a level per month of the
    year; ``cycle``: a smooth yearly cycle, :data:`CYCLE_HARMONICS` sine and cosine pairs)."""

    name: str
    window_days: int
    trend: bool
    season: bool
    weekday: bool
    cycle: bool = False


#: Sine and cosine pairs of a smooth yearly cycle: one, the year's wave (two parameters, where levels per month
#: take eleven).
CYCLE_HARMONICS = 1

RATE_SPECS = (RateSpec("trend, month and weekday over 3 years", LOOKBACK_DAYS, True, True, True),
              RateSpec("trend, yearly cycle and weekday over 3 years", LOOKBACK_DAYS, True, False, True, cycle=True),
              RateSpec("trend and weekday over 3 years", LOOKBACK_DAYS, True, False, True),
              RateSpec("trend and weekday over the last year", 365, True, False, True),
              RateSpec("level and weekday over the last 180 days", 180, False, False, True),
              RateSpec("level over the last 90 days", 90, False, False, False))
#: The form used when the history is too short to choose by backtest.
DEFAULT_SPEC = RATE_SPECS[4]
#: The form kept unless another clearly forecast the company's recent months better (:func:`choose_rate_spec`).
#: Its yearly cycle keeps the trend honest: read without one from a seasonal history, the trend takes the phase
#: at which the history starts and ends for growth or decline (three years of a high first half and a low
#: second read as a 10 % yearly decline, and the next high quarter came out 28 % short; README, simulated
#: companies).
REFERENCE_SPEC = RATE_SPECS[1]


@dataclass
class Rate:
    """A fitted daily rate of new deals."""

    coef: np.ndarray
    intercept: float
    trend: bool
    season: bool
    weekday: bool
    cycle: bool = False  # (a class default: rates saved before it existed had none)

    def daily(self, days: pd.DatetimeIndex, as_of: pd.Timestamp) -> np.ndarray:
        """Expected new deals on each of ``days``."""
        return np.exp(self.intercept + design(days, as_of, self.trend, self.season, self.weekday, self.cycle) @ self.coef)


def fit_rate(created: pd.Series, as_of: pd.Timestamp, spec: RateSpec) -> Rate:
    """The daily rate of deals created (``created``: their creation times, all before ``as_of``) in ``spec``'s form.

    A yearly cycle is kept only where the counts show one: its sines and cosines must lower the deviance by more
    than chance would at the 5 % level (quasi-Poisson: the drop over the full fit's dispersion, against a
    chi-square), so a company without seasons is fitted as without the cycle."""
    first = created.min().normalize() if len(created) else as_of.normalize() - pd.Timedelta(days=1)
    start = max(first, as_of.normalize() - pd.Timedelta(days=spec.window_days))
    days = pd.date_range(start, as_of.normalize() - pd.Timedelta(days=1), freq="D")
    if len(days) == 0:
        days = pd.DatetimeIndex([start])
    inside = created[created >= start]
    counts = np.bincount((inside.dt.normalize() - start).dt.days.to_numpy(), minlength=len(days))[:len(days)]
    trend = spec.trend and len(days) >= 90  # too short a history to read a trend from
    season, weekday = spec.season and len(days) >= SEASON_MIN_DAYS, spec.weekday and len(days) >= WEEKDAY_MIN_DAYS
    cycle = spec.cycle and len(days) >= SEASON_MIN_DAYS
    x = design(days, as_of, trend, season, weekday, cycle)
    coef = _poisson_fit(x, counts)
    if cycle:
        plain = design(days, as_of, trend, season, weekday)
        plain_coef = _poisson_fit(plain, counts)
        mean = _rate_of(x, coef, counts)
        dispersion = max(float(((counts - mean) ** 2 / mean).sum()) / max(len(counts) - x.shape[1] - 1, 1), 1.0)
        drop = len(counts) * (mean_poisson_deviance(counts, _rate_of(plain, plain_coef, counts))
                              - mean_poisson_deviance(counts, mean)) / dispersion
        if drop < chi2.ppf(0.95, 2 * CYCLE_HARMONICS):
            x, coef, cycle = plain, plain_coef, False
    if trend:
        coef[0] = float(np.clip(coef[0], np.log1p(GROWTH_BOUNDS[0]), np.log1p(GROWTH_BOUNDS[1])))
    intercept = float(np.log(max(counts.sum(), 0.5)) - np.log(np.exp(x @ coef).sum()))  # totals match the data
    return Rate(coef, intercept, trend, season, weekday, cycle)


def _poisson_fit(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Coefficients of a Poisson GLM of ``counts`` on ``x`` (none without inputs)."""
    if not x.shape[1]:
        return np.zeros(0)
    glm = PoissonRegressor(alpha=1e-6, solver="newton-cholesky", max_iter=100)
    # One thread: on a thousand days OpenMP's start-up costs 30 times the fit (0.2 s against 7 ms, measured).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        warnings.simplefilter("ignore")  # the solver's convergence chatter; the trend is bounded afterwards
        glm.fit(x, counts)
    return np.asarray(glm.coef_, dtype=float).copy()


def _rate_of(x: np.ndarray, coef: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The fitted daily means, their total the counts' (as :func:`fit_rate` scales them)."""
    shape = np.exp(x @ coef)
    return shape * max(float(counts.sum()), 0.5) / shape.sum()


@dataclass(frozen=True)
class RateChoice:
    """The form chosen, every form's error, and the chosen form's monthly forecasts and what came."""

    spec: RateSpec
    errors: dict[str, float]
    forecasts: np.ndarray
    actuals: np.ndarray

    def spread(self) -> float:
        """How far whole months' counts strayed from the chosen form's forecasts beyond Poisson noise (log
        scale): the spread of a period-level effect on the count of new deals (0 with fewer than 3 months)."""
        keep = self.forecasts > 0
        if keep.sum() < 3:
            return 0.0
        ratio = np.log(np.maximum(self.actuals[keep], 0.5) / self.forecasts[keep])
        return float(np.sqrt(max(float(np.mean(ratio ** 2) - np.mean(1.0 / self.forecasts[keep])), 0.0)))


def choose_rate_spec(created: pd.Series, as_of: pd.Timestamp) -> RateChoice:
    """The form of the rate that forecast the last ``SELECTION_MONTHS`` months' counts best, each month forecast
    from what came before it (errors: summed absolute error over summed counts).

    :data:`REFERENCE_SPEC` (a trend over all the history, the form with the most days behind it and so the
    steadiest) stays unless another form forecast those months better by more than one standard error of the
    months' paired differences: a few months of small counts are mostly Poisson noise, and picking the least
    error among them picked noise, while a rate that jumped or stalled, as real exports do, misses by far more
    than the noise. Measured (the next year's count of new deals, root-mean-square error): 400-deal demo
    companies 27 % by the least error, 21 % by this rule (13 % had the reference always been kept); 2,000-deal
    ones 16 %, 7 % (4 %). The next month's count on the real sets of ``benchmarks/arrivals_bench.py``: IT
    consulting 82.0 -> 84.5 %, Maven 47.7 -> 53.0 % (MAPE over 12 and 10 months, within their noise)."""
    last = pd.Period(as_of, "M")
    origins = [(last - k).start_time for k in range(SELECTION_MONTHS, 0, -1)]
    origins = [o for o in origins if len(created) and (o - created.min()).days >= SELECTION_MIN_DAYS]
    if len(origins) < 3:
        return RateChoice(DEFAULT_SPEC, {}, np.zeros(0), np.zeros(0))
    errors, pairs, misses = {}, {}, {}
    for spec in RATE_SPECS:
        forecasts, actuals = [], []
        for origin in origins:
            end = pd.Period(origin, "M").end_time.normalize()
            actuals.append(float(((created >= origin) & (created < end + pd.Timedelta(days=1))).sum()))
            rate = fit_rate(created[created < origin], origin, spec)
            forecasts.append(float(rate.daily(pd.date_range(origin, end, freq="D"), origin).sum()))
        f, a = np.array(forecasts), np.array(actuals)
        misses[spec.name] = np.abs(f - a)
        errors[spec.name] = float(misses[spec.name].sum() / max(a.sum(), 1.0))
        pairs[spec.name] = (f, a)
    best = REFERENCE_SPEC
    for spec in RATE_SPECS:
        gain = misses[REFERENCE_SPEC.name] - misses[spec.name]  # per month: how much less this form missed
        clearly = gain.mean() > gain.std(ddof=1) / np.sqrt(len(gain))
        if clearly and errors[spec.name] < errors[best.name]:
            best = spec
    return RateChoice(best, errors, *pairs[best.name])


@dataclass
class Arrivals:
    """One group's (a segment's, or all deals') arrival rate, win curves and won amounts."""

    key: str
    deals: int
    rate: Rate
    mean_amount: float
    won_share: np.ndarray  # share of created amount won within each whole day of age (cumulative)
    won_count: np.ndarray  # share of created deals won within each whole day of age (cumulative)
    won_amounts: np.ndarray  # amounts of recent wins

    def daily_rate(self, days: pd.DatetimeIndex, as_of: pd.Timestamp) -> np.ndarray:
        """Expected new deals on each of ``days``."""
        return self.rate.daily(days, as_of)


@dataclass
class NewDeals:
    """Per period: expected won revenue and won count of deals created after the as-of date."""

    revenue: np.ndarray
    count: np.ndarray
    # (group, expected wins per period, expected won revenue per period)
    by_group: list[tuple[Arrivals, np.ndarray, np.ndarray]] = field(default_factory=list)


class ArrivalModel:
    """New deals per day, their size and how fast they win; see the module docstring."""

    def __init__(self, segment: str | None = "segment") -> None:
        self.segment = segment
        self.groups_: list[Arrivals] | None = None
        self.arrival_sd_: dict[str, float] = {}
        self.as_of_: pd.Timestamp | None = None
        self.window_days_: int = 0
        self.spec_: RateSpec = DEFAULT_SPEC
        self.spec_errors_: dict[str, float] = {}
        self.bulk_days_ = pd.DatetimeIndex([])

    def fit(self, deals: pd.DataFrame, as_of: pd.Timestamp) -> ArrivalModel:
        """Learn from ``deals`` (canonical columns) as they were known at ``as_of``."""
        as_of = pd.Timestamp(as_of)
        created = deals["created_at"]
        known = deals[created < as_of]
        if known.empty:
            raise ValueError(f"no deals were created before {as_of.date()}")
        start = max(known["created_at"].min().normalize(), (as_of - pd.Timedelta(days=LOOKBACK_DAYS)).normalize())
        window = known[known["created_at"] >= start]
        self.bulk_days_ = bulk_days(window["created_at"])  # an import's: not new deals, of no age known
        bulk = window["created_at"].dt.normalize().isin(self.bulk_days_).to_numpy()
        if bulk.any() and not bulk.all():
            window = window[~bulk]
        self.window_days_ = max(int((as_of.normalize() - start).days), 1)
        by = self.segment if self.segment in window.columns else None
        groups: list[tuple[str, pd.DataFrame]] = []
        if by is not None:
            counts = window[by].astype("string").fillna("(missing)").value_counts()
            if len(counts) > 1 and counts.min() >= SEGMENT_MIN_DEALS:
                keys = window[by].astype("string").fillna("(missing)")
                groups = [(f"{by}={key}", window[keys == key]) for key in counts.index]
        if not groups:
            groups = [("all", window)]
        choice = choose_rate_spec(window["created_at"], as_of)
        self.spec_, self.spec_errors_ = choice.spec, choice.errors
        self.groups_ = [self._fit_group(key, part, as_of) for key, part in groups]
        self.as_of_ = as_of
        # Read on months out of sample; a quarter's effect is taken as the same (a persistent shift, not noise).
        self.arrival_sd_ = {kind: choice.spread() for kind in ("month", "quarter")}
        return self

    def _fit_group(self, key: str, part: pd.DataFrame, as_of: pd.Timestamp) -> Arrivals:
        rate = fit_rate(part["created_at"], as_of, self.spec_)
        amount = part["amount"].to_numpy(dtype=float)
        amount_known = ~np.isnan(amount)
        won = _won_before(part, as_of)
        won_amounts = amount[won & amount_known]
        recent = np.argsort(part["closed_at"].to_numpy()[won & amount_known])[-AMOUNT_SAMPLE:]
        won_share, won_count = win_curves(part, as_of)
        return Arrivals(key=key, deals=len(part), rate=rate,
                        mean_amount=float(np.nanmean(amount)) if amount_known.any() else 0.0,
                        won_share=won_share, won_count=won_count,
                        won_amounts=won_amounts[recent] if len(won_amounts) else np.zeros(1))

    # -- use --------------------------------------------------------------------------------------
    def expected(self, as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> NewDeals:
        """Expected won revenue and count, per period of ``bounds``, of deals created after ``as_of`` and won
        within the period (a deal created in one period may win in a later one)."""
        if self.groups_ is None:
            raise NotFittedError("ArrivalModel is not fitted; call fit() first")
        as_of = pd.Timestamp(as_of)
        first = as_of.normalize()
        days = pd.date_range(first, bounds[-1][1], freq="D")
        # Ages (days after creation) at each period's start and end; creation is spread over its day.
        offset = np.arange(len(days), dtype=float) + 0.5
        share_today = np.ones(len(days))
        share_today[0] = max(0.0, 1.0 - (as_of - first) / pd.Timedelta(days=1))  # the rest of the as-of day
        starts = np.array([(max(s, as_of) - first) / pd.Timedelta(days=1) for s, _ in bounds])
        ends = np.array([((e + pd.Timedelta(days=1)) - first) / pd.Timedelta(days=1) for _, e in bounds])
        revenue, count = np.zeros(len(bounds)), np.zeros(len(bounds))
        by_group = []
        for group in self.groups_:
            rate = group.daily_rate(days, as_of) * share_today
            within_end = _curve_at(group.won_share, ends[None, :] - offset[:, None])
            within_start = _curve_at(group.won_share, starts[None, :] - offset[:, None])
            g_revenue = rate @ (within_end - within_start) * group.mean_amount
            n_end = _curve_at(group.won_count, ends[None, :] - offset[:, None])
            n_start = _curve_at(group.won_count, starts[None, :] - offset[:, None])
            g_count = rate @ (n_end - n_start)
            revenue += g_revenue
            count += g_count
            by_group.append((group, g_count, g_revenue))
        return NewDeals(revenue=revenue, count=count, by_group=by_group)

    def created(self, as_of: pd.Timestamp, bounds: list[tuple[pd.Timestamp, pd.Timestamp]]) -> np.ndarray:
        """Expected count of deals created in each period of ``bounds`` (after ``as_of``)."""
        if self.groups_ is None:
            raise NotFittedError("ArrivalModel is not fitted; call fit() first")
        as_of = pd.Timestamp(as_of)
        days = pd.date_range(as_of.normalize(), bounds[-1][1], freq="D")
        rate = sum(g.daily_rate(days, as_of) for g in self.groups_)
        rate = np.asarray(rate, dtype=float)
        rate[0] *= max(0.0, 1.0 - (as_of - as_of.normalize()) / pd.Timedelta(days=1))
        return np.array([rate[(days >= max(s, as_of.normalize())) & (days <= e)].sum() for s, e in bounds])

    def win_rate(self) -> float:
        """The share of new deals won eventually (within the curves' span), over all groups."""
        if self.groups_ is None:
            raise NotFittedError("ArrivalModel is not fitted; call fit() first")
        weights = np.array([g.deals for g in self.groups_], dtype=float)
        rates = np.array([g.won_count[-1] for g in self.groups_])
        return float(weights @ rates / weights.sum())

    def simulate(self, new: NewDeals, win_shift: np.ndarray, arrival_shift: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
        """Won revenue of new deals per (sample, period): ``win_shift`` (log-odds) and ``arrival_shift`` (log
        rate) per (sample, period) move whole periods together. Each win's amount is a recent win's, scaled
        so that a period's draws average its expected revenue (wins soon after creation are smaller deals
        than wins in general)."""
        samples, periods = win_shift.shape
        p = min(max(self.win_rate(), 1e-6), 1 - 1e-6)
        factor = expit(logit(p) + win_shift) / p * np.exp(arrival_shift)
        out = np.zeros((samples, periods))
        for group, count, revenue in new.by_group:
            amounts = group.won_amounts
            typical = float(amounts.mean())
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where((count > 0) & (typical > 0), revenue / (count * typical), 0.0)
            wins = rng.poisson(np.maximum(count[None, :] * factor, 0.0))
            total = int(wins.sum())
            if total <= 2_000_000:
                drawn = amounts[rng.integers(0, len(amounts), total)]
                cell = np.repeat(np.arange(wins.size), wins.ravel())
                sums = np.bincount(cell, weights=drawn, minlength=wins.size).reshape(samples, periods)
            else:  # many wins per sample: the sum of their amounts is close to normal
                sums = wins * typical + np.sqrt(wins) * float(amounts.std()) * rng.standard_normal(wins.shape)
            out += sums * scale[None, :]
        return out


def design(days: pd.DatetimeIndex, as_of: pd.Timestamp, trend: bool, season: bool, weekday: bool,
           cycle: bool = False) -> np.ndarray:
    """The rate's inputs per day: years from ``as_of`` (trend), month-of-year indicators, the yearly cycle's sines
    and cosines, weekday indicators."""
    parts = [np.empty((len(days), 0))]
    years = ((days - as_of.normalize()) / pd.Timedelta(days=365.25)).to_numpy(dtype=float)
    if trend:
        parts.append(years[:, None])
    if season:
        parts.append((days.month.to_numpy()[:, None] == np.arange(2, 13)[None, :]).astype(float))
    if cycle:
        angle = 2 * np.pi * years[:, None] * np.arange(1, CYCLE_HARMONICS + 1)[None, :]
        parts += [np.sin(angle), np.cos(angle)]
    if weekday:
        parts.append((days.day_of_week.to_numpy()[:, None] == np.arange(1, 7)[None, :]).astype(float))
    return np.hstack(parts)


def _won_before(deals: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    return ((deals["status"] == "won") & (deals["closed_at"] < as_of)).to_numpy()


def win_curves(deals: pd.DataFrame, as_of: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of created amount, and of deals, won within each whole day of age (0..MAX_AGE_DAYS):
    Aalen-Johansen with losing as the competing outcome, deals open at ``as_of`` censored there."""
    closed = (deals["closed_at"] < as_of).to_numpy() & deals["status"].isin(["won", "lost"]).to_numpy()
    end = np.where(closed, deals["closed_at"].to_numpy(dtype="datetime64[ns]"), as_of.to_datetime64())
    age = (end - deals["created_at"].to_numpy(dtype="datetime64[ns]")) / np.timedelta64(1, "D")
    age = np.clip(np.nan_to_num(age.astype(float)), 0.0, MAX_AGE_DAYS)
    day = np.minimum(np.floor(age).astype(int), MAX_AGE_DAYS)
    won = closed & (deals["status"] == "won").to_numpy()
    amount = deals["amount"].to_numpy(dtype=float)
    amount = np.where(np.isnan(amount), np.nanmean(amount) if (~np.isnan(amount)).any() else 1.0, amount)
    return _incidence(day, won, closed, amount), _incidence(day, won, closed, np.ones(len(day)))


def _incidence(day: np.ndarray, won: np.ndarray, closed: np.ndarray, weight: np.ndarray) -> np.ndarray:
    size = MAX_AGE_DAYS + 1
    leaving = np.bincount(day, weights=weight, minlength=size)  # leave the risk set after day d (event or censor)
    at_risk = np.cumsum(leaving[::-1])[::-1]  # watched for at least d days
    wins = np.bincount(day[won], weights=weight[won], minlength=size)
    ends = np.bincount(day[closed], weights=weight[closed], minlength=size)
    total = weight.sum()
    thin = at_risk < 0.01 * total  # too few watched that long: no more events are read from there
    with np.errstate(invalid="ignore", divide="ignore"):
        h_win = np.where(thin | (at_risk <= 0), 0.0, wins / at_risk)
        h_end = np.where(thin | (at_risk <= 0), 0.0, ends / at_risk)
    survival = np.concatenate([[1.0], np.cumprod(1.0 - h_end)[:-1]])
    return np.cumsum(survival * h_win)


def _curve_at(curve: np.ndarray, age: np.ndarray) -> np.ndarray:
    """A cumulative daily curve at fractional ages (0 before creation, flat beyond its end)."""
    return np.interp(age, np.arange(len(curve) + 1, dtype=float), np.concatenate([[0.0], curve]), left=0.0)
