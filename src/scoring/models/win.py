"""The deal-level win model: a LightGBM discrete-time hazard with competing risks, calibrated out of time.

Each snapshot row (a deal open at date T, described by what was known at T) is followed through
time intervals after T (by default 0-30, 30-60, 60-90, 90-180 and 180-365 days). For each interval
the model gives P(won in it), P(lost in it) and P(still open) given the deal was open at its start:
one multiclass LightGBM on (features, the stage and interval together, interval). An interval enters training
only if it was fully observed before the cutoff, so deals still open at the cutoff are censored, never counted as
lost, and fast closers are not favoured. The stage and interval together (one category per pair) let a single
split tell what a stage means for each interval: a deal in Negotiation is likely to win soon and, still open three
months on, seldom after, a Lead deal the other way round. Without it one booster for every interval carried the
early intervals' stage effects to the late ones, whose rows are few: the open deals' wins in the quarter after
next read 0.85 of the truth on demo companies, 0.90-0.93 with it (README). From the hazards come:

- P(win) eventually (a geometric tail after the last interval; for a deal in a stage where deals are left
  open for good, :mod:`scoring.models.dormancy`, the won share of the deals that close within the intervals
  instead),
- P(win within N days) and the expected days to a win (timing),
- per-feature contributions to the deal's log-odds of winning rather than losing next (LightGBM's own).

The eventual P(win) is calibrated out of time: a model fitted on what was known before a calibration
window scores the window's deals, whose outcomes are then known, and a map that keeps the ranking
(:class:`~scoring.models.calibration.Calibrator`: Platt scaling, with the deal's amount or without, or a
strictly rising isotonic map, chosen by cross-validated log-loss) is fitted on them.

The map and the prior a small history is blended with (logistic regression) learn from deals whose outcome
became known; deals that sat in their stage longer than nearly all of those are beyond what they saw. The
booster's hazards learned from every snapshot, the censored ones too, so there P(win) moves to the booster's own:
in log-odds, all of the calibrated and blended P(win) up to the 95th percentile of the known outcomes' days in the
deal's stage, none from the longest of them on, and in between as the share of them longer than the deal's
falls from 5 % to 0 (:data:`SUPPORT_FROM`). On simulated companies 9-44 % of the open deals lie past the 95th
percentile; the map and the prior served them 2-6x the truth's won revenue, this 1.5-4x (README).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval

from scoring.errors import DataError
from scoring.features.dataset import TrainingSet
from scoring.features.encoder import FeatureEncoder, Rows, entered_amounts
from scoring.models.base import Explanation, Model, WinProbabilityModel
from scoring.models.baselines import LogisticRegressionModel
from scoring.models.calibration import PROBABILITY_FLOOR, Calibrator, logit
from scoring.models.compiled import CompiledHazards
from scoring.models.dormancy import Dormancy
from scoring.models.treeshap import ContributionTable

NONE, WON, LOST = 0, 1, 2
BOUNDARIES = (30, 60, 90, 180, 365)
#: Fewer rows than this are predicted on one thread.
SMALL_BATCH = 2000
#: From this many (row, interval) predictions on, an uncompiled booster is compiled for the call: compiling
#: takes about 2 s, and the compiled booster predicts about 4 µs per row faster than LightGBM (break-even
#: near 500,000).
COMPILE_ABOVE = 1_000_000
#: From this many rows on, :meth:`WinModel.explain` computes the contributions on a thread kept for the purpose
#: while the caller's predicts the hazards, each on its own thread (rather than each in turn on two): the work
#: between the native calls then overlaps too. 1,000 deals of the demo's model: 3.2 -> 2.7 ms for the two;
#: 128: 0.94 -> 0.57 ms; 50: 0.49 -> 0.45 ms.
CONCURRENT_FROM = 64
#: Past this quantile of the known outcomes' days in a stage, a deal's P(win) moves from the calibrated and blended
#: one to the booster's own (the module docstring), reaching it at the longest.
SUPPORT_FROM = 0.95
_SUPPORT_QUANTILES = np.linspace(SUPPORT_FROM, 1.0, 11)
_SUPPORT_SHARES = np.linspace(1.0, 0.0, 11)
_STAGES_APART = 1e6  # days: far more than any stay
#: The booster's inputs after the encoder's: the stage and interval as one category, then the interval's index.
STAGE_INTERVAL, INTERVAL = "stage_interval", "interval"


def blend(p: np.ndarray, prior: np.ndarray, weight: float | np.ndarray) -> np.ndarray:
    """``weight`` (one, or one per row) of ``p``'s log-odds and the rest of ``prior``'s, as a probability."""
    return 1.0 / (1.0 + np.exp(-(weight * logit(p) + (1 - weight) * logit(prior))))


def recensor(rows: pd.DataFrame, shift_days: float) -> pd.DataFrame:
    """The same snapshot rows as if the cutoff were ``shift_days`` earlier (outcomes after it unknown)."""
    observed = rows["days_observed"] - shift_days
    keep = observed >= 0
    rows = rows[keep].copy()
    observed = observed[keep]
    late = rows["days_to_outcome"] > observed
    rows.loc[late, "outcome"] = "open"
    rows.loc[late, "days_to_outcome"] = np.nan
    rows["days_observed"] = observed
    return rows


def toward(p: np.ndarray, raw: np.ndarray, support: np.ndarray) -> np.ndarray:
    """``p`` where ``support`` is 1, ``raw`` where it is 0, and in log-odds between (:data:`SUPPORT_FROM`), kept
    :data:`~scoring.models.calibration.PROBABILITY_FLOOR` from 0 and 1 as calibrated ones are."""
    if not support.ndim:
        return p
    return np.minimum(np.maximum(blend(p, raw, support), PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)


def stage_support(rows: pd.DataFrame) -> np.ndarray:
    """Per stage index, the days in the stage at :data:`_SUPPORT_QUANTILES` of the snapshot ``rows`` whose outcome
    is known (strictly rising; NaN for a stage without any)."""
    known = rows[rows["outcome"] != "open"]
    stage = known["stage_index"].to_numpy(dtype=float)
    days = known["days_in_stage"].to_numpy(dtype=float)
    size = int(np.nanmax(rows["stage_index"].to_numpy(dtype=float), initial=-1)) + 1
    grid = np.full((size, len(_SUPPORT_QUANTILES)), np.nan)
    steps = np.arange(len(_SUPPORT_QUANTILES)) * 1e-6  # ties (whole days) made strictly rising for np.interp
    for k in range(size):
        mine = days[(stage == k) & np.isfinite(days)]
        if len(mine):
            grid[k] = np.maximum.accumulate(np.quantile(mine, _SUPPORT_QUANTILES)) + steps
    return grid


def support_knots(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stage_support`'s grid as the knots of one ``np.interp`` for every stage: stage k's day d at
    ``k * _STAGES_APART + d``, each stage's shares 1 before its grid and 0 after it (1 throughout without one)."""
    xs, fs = [], []
    for k, days in enumerate(grid):
        start, end = k * _STAGES_APART - _STAGES_APART / 2 + 1, k * _STAGES_APART + _STAGES_APART / 2
        inside = np.isfinite(days).all()
        xs += [start, *(k * _STAGES_APART + days if inside else ()), end]
        fs += [1.0, *(_SUPPORT_SHARES if inside else ()), 0.0 if inside else 1.0]
    return np.array(xs), np.array(fs)


def _part(values: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    """The rows ``keep`` of optional values."""
    return None if values is None else values[keep]


def person_periods(rows: pd.DataFrame, boundaries: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row index, interval index, class) for every fully observed interval a row was at risk in."""
    starts = np.array((0, *boundaries[:-1]), dtype=float)
    ends = np.array(boundaries, dtype=float)
    t = rows["days_to_outcome"].to_numpy(dtype=float)
    observed = rows["days_observed"].to_numpy(dtype=float)
    outcome = rows["outcome"].to_numpy()
    kind = np.where(outcome == "won", WON, np.where(outcome == "lost", LOST, NONE))
    idx, interval, label = [], [], []
    for k, (start, end) in enumerate(zip(starts, ends)):
        at_risk = (np.isnan(t) | (t > start)) & (observed >= end)
        event = at_risk & ~np.isnan(t) & (t <= end)
        rows_k = np.nonzero(at_risk)[0]
        idx.append(rows_k)
        interval.append(np.full(len(rows_k), k))
        label.append(np.where(event[rows_k], kind[rows_k], NONE))
    return np.concatenate(idx), np.concatenate(interval), np.concatenate(label)


#: ``trainer(x, label, params, feature_names, categorical, rounds)``: a multiclass booster fitted on rows ``x``
#: with classes ``label`` (0 none, 1 won, 2 lost). :func:`train_here` by default; ``dask_engine.DaskTrainer``
#: fits the same with lightgbm.dask on a cluster.
Trainer = Callable[[np.ndarray, np.ndarray, dict[str, Any], list[str], list[int], int], lgb.Booster]


def train_here(x: np.ndarray, label: np.ndarray, params: dict[str, Any], feature_names: list[str],
               categorical: list[int], rounds: int) -> lgb.Booster:
    """LightGBM's ``train`` in this process."""
    data = lgb.Dataset(x, label=label, feature_name=feature_names, categorical_feature=categorical,
                       free_raw_data=True)
    return lgb.train(params, data, num_boost_round=rounds)


def _predict(booster: lgb.Booster, x: np.ndarray, one_thread_below: int = SMALL_BATCH, **kwargs: Any) -> np.ndarray:
    """``booster.predict``, on one thread for fewer than ``one_thread_below`` rows: starting OpenMP threads costs
    more than a few rows."""
    return np.asarray(booster.predict(x, num_threads=1 if len(x) < one_thread_below else 0, **kwargs))


class WinModel(Model):
    """LightGBM competing-risk hazard over snapshot features; ``predict_proba`` is the calibrated P(win).

    Parameters are LightGBM's usual ones plus the interval ``boundaries`` (days after the snapshot),
    the calibration window (``calibration_days`` of snapshots that then had ``followup_days`` to
    resolve before the cutoff), ``calibrate`` to switch calibration off, and the ``trainer`` that fits
    the boosters (:func:`train_here` by default; the Dask engine's fits them on a cluster).
    """

    name: ClassVar[str] = "model"
    _fitted_attribute: ClassVar[str] = "booster_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "boundaries": [tuple], "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "num_leaves": [Interval(Integral, 2, None, closed="left")],
        "min_child_samples": [Interval(Integral, 1, None, closed="left")],
        "reg_lambda": [Interval(Real, 0, None, closed="left")], "cat_smooth": [Interval(Real, 0, None, closed="left")],
        "cat_l2": [Interval(Real, 0, None, closed="left")], "calibrate": ["boolean"],
        "calibration_days": [Interval(Integral, 1, None, closed="left")],
        "followup_days": [Interval(Integral, 1, None, closed="left")], "random_state": [Integral],
        "n_jobs": [Interval(Integral, 1, None, closed="left")], "trainer": [callable, None],
    }

    def __init__(self, boundaries: tuple[int, ...] = BOUNDARIES, n_estimators: int = 150,
                 learning_rate: float = 0.1, num_leaves: int = 7, min_child_samples: int = 300,
                 reg_lambda: float = 5.0, cat_smooth: float = 50.0, cat_l2: float = 30.0, calibrate: bool = True,
                 calibration_days: int = 180, followup_days: int = 180, random_state: int = 0, n_jobs: int = 2,
                 trainer: Trainer | None = None) -> None:
        self.boundaries = boundaries
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.cat_smooth = cat_smooth
        self.cat_l2 = cat_l2
        self.calibrate = calibrate
        self.calibration_days = calibration_days
        self.followup_days = followup_days
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.trainer = trainer

    # -- learning ---------------------------------------------------------------------------------
    def fit(self, training: TrainingSet) -> Self:
        """Fit on the training set's snapshots."""
        self._start_fit()
        if any(b <= a for a, b in zip((0, *self.boundaries), self.boundaries, strict=False)):
            raise ValueError(f"boundaries must be increasing days after 0, got {self.boundaries}")
        trainer = self.trainer or train_here
        rows = training.snapshots.rows
        for derived in ("compiled_", "contribution_table_", "support_knots_"):  # of a booster fitted before
            self.__dict__.pop(derived, None)
        self.encoder_ = FeatureEncoder(training.features).fit(rows)
        self.feature_names_ = [*self.encoder_.names_, STAGE_INTERVAL, INTERVAL]
        # Per stage, whether deals are left in it for good: there the deals still open after the last interval
        # are mostly those, so P(win) is the won share of the deals that close within the intervals, not the
        # last interval's split of everything left (the served P(win) then counts the chance of leaving the
        # stage at all). Elsewhere, slow deals are not dormant ones, and the tail is kept.
        self.conditional_ = Dormancy().fit(training.data, training.cutoff, training.stays).dormant_stages
        self.support_ = stage_support(rows)
        self.calibrator_: Calibrator | None = None
        self.calibrators_: dict[str, Calibrator] = {}
        self.calibration_rows_ = 0
        if self.calibrate:
            self._fit_calibrator(rows, trainer)
        booster = self._fit_booster(rows, trainer)  # says first when the rows cannot teach anything
        # What a blend may shrink toward: logistic regression on the same rows. Not the stage-transition model: it
        # knows neither amount nor segment, and where larger deals are won less often (as usual) shrinking toward
        # it overstates the large deals' revenue (simulated companies, README); it also has no contributions, so
        # the factors would leave its share of the log-odds unexplained.
        self.priors_: dict[str, WinProbabilityModel] = {LogisticRegressionModel.name: LogisticRegressionModel().fit(training)}
        self.prior_name_ = LogisticRegressionModel.name
        self.blend_weight_ = 1.0
        self.booster_ = booster  # last: its presence means fitted
        return self

    def _params(self) -> dict[str, object]:
        return {"objective": "multiclass", "num_class": 3, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
                "lambda_l2": self.reg_lambda, "cat_smooth": self.cat_smooth, "cat_l2": self.cat_l2,
                "seed": self.random_state, "deterministic": True, "force_row_wise": True,
                "num_threads": self.n_jobs, "verbosity": -1}

    def _fit_booster(self, rows: pd.DataFrame, trainer: Trainer) -> lgb.Booster:
        idx, interval, label = person_periods(rows, self.boundaries)
        if not {WON, LOST} <= set(np.unique(label).tolist()):
            raise DataError("the training snapshots need both won and lost outcomes within the observed intervals "
                            f"to learn from; got {int((label == WON).sum())} won and {int((label == LOST).sum())} lost")
        x = self._at_intervals(self.encoder_.transform(rows)[idx], interval)
        categorical = [*self.encoder_.categorical_indices_, *self._interval_features()[:-1]]  # the pair; not the index
        return trainer(x, label, self._params(), self.feature_names_, categorical, self.n_estimators)

    def _paired(self) -> bool:
        """Whether the booster reads the stage and interval as one category (not in models saved before it)."""
        return STAGE_INTERVAL in self.feature_names_

    def _at_intervals(self, x: np.ndarray, interval: np.ndarray | float) -> np.ndarray:
        """Encoded rows ``x`` as the booster reads them at ``interval`` (one index, or one per row): the stage and
        interval as one category (stage index x intervals + interval; missing for a stage of none), then the
        interval."""
        interval = np.broadcast_to(np.asarray(interval, dtype=float), (len(x),))
        if not self._paired():
            return np.column_stack([x, interval])
        return np.column_stack([x, self._pair_base(x) + interval, interval])

    def _pair_base(self, x: np.ndarray) -> np.ndarray:
        """Per encoded row, its stage and interval category in the first interval (stage index x intervals; the
        interval's index is added to it): missing for a row of no stage."""
        stage = x[:, self._stage_column()]
        return np.where(stage >= 0, stage * len(self.boundaries), np.nan)

    def _stage_column(self) -> int:
        """The encoded rows' column of the stage's index."""
        return self.encoder_.names_.index("stage_index")

    def _interval_features(self) -> tuple[int, ...]:
        """The booster's inputs that change with the interval (their indices; the interval's own last)."""
        n = len(self.encoder_.names_)
        return (n, n + 1) if self._paired() else (n,)

    def _fit_calibrator(self, rows: pd.DataFrame, trainer: Trainer) -> None:
        """The calibration map of P(win), fitted on a window the calibration model never saw.

        The window's deals still open at the cutoff (a sixth of its rows on simulated companies, half where deals
        are left sitting) count with their chance of winning from where they are now: the calibration model's
        P(win) of their latest snapshot, through the map fitted on the window's closed deals (the raw P(win) would
        carry the booster's own overconfidence into their outcomes). Left out, they would leave the deals that
        closed, and the map would learn P(win | the deal closes within the follow-up): up to 12 % above the truth
        of open pipelines whose slow deals mostly end lost (README, simulated companies)."""
        shift = self.calibration_days + self.followup_days
        early = recensor(rows, shift)
        window = rows[(rows["days_observed"] >= self.followup_days) & (rows["days_observed"] < shift)]
        outcomes = early["outcome"].value_counts()
        if (window["outcome"] != "open").sum() < 200 or min(outcomes.get("won", 0), outcomes.get("lost", 0)) < 20:
            return  # too little history for an out-of-time window: leave uncalibrated, and say so (calibration_rows_ == 0)
        booster = self._fit_booster(early, trainer)
        x = self.encoder_.transform(window)
        raw, log_amount = self._eventual(self._hazards_of(booster, x), self._conditional(x)), self._log_amount(x)
        won = window["outcome"].eq("won").to_numpy(dtype=float)
        closed = window["outcome"].ne("open").to_numpy()
        self.calibrators_ = Calibrator.fit_each(raw[closed], _part(log_amount, closed), won[closed],
                                                seed=self.random_state)
        if not closed.all():  # the open deals' chance from their latest snapshot, through the map of the closed ones
            waiting = window["deal_id"].to_numpy()[~closed]
            mine = rows[rows["deal_id"].isin(waiting)]
            latest = mine.loc[mine.groupby("deal_id", sort=False)["days_observed"].idxmin()]
            now = self.encoder_.transform(latest)
            chance = pd.Series(Calibrator.best(self.calibrators_)(
                self._eventual(self._hazards_of(booster, now), self._conditional(now)), self._log_amount(now)),
                index=latest["deal_id"].to_numpy())
            won[~closed] = chance.reindex(waiting).to_numpy()
            self.calibrators_ = Calibrator.fit_each(raw, log_amount, won, seed=self.random_state)
        self.calibrator_ = Calibrator.best(self.calibrators_)
        self.calibration_rows_ = len(window)

    def calibrations(self, rows: Rows) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """P(win) of ``rows`` under each calibration the model fitted (none if its window was too small), and from the
        same pass their raw P(win) and how much of a calibrated, blended P(win) they keep (1: all; 0: none, beyond
        every known outcome's days in the stage): :func:`toward`'s last arguments."""
        self.check_fitted()
        x = self.encoder_.transform(rows)
        raw = self._eventual(self._hazards_of(self.booster_, x), self._conditional(x))
        return ({kind: calibrator(raw, self._log_amount(x)) for kind, calibrator in self.calibrators_.items()}, raw,
                self._support(x))

    def use_calibration(self, kind: str | None, blend_weight: float = 1.0, prior: str | None = None) -> Self:
        """Calibrate with the map of ``kind`` (one of :attr:`calibrators_`; None: keep the current one) and give
        the booster ``blend_weight`` of the log-odds, the model ``prior`` (one of :attr:`priors_`) the rest."""
        if kind is not None:
            if kind not in self.calibrators_:
                raise ValueError(f"no calibration {kind!r}; the model has {sorted(self.calibrators_)}")
            self.calibrator_ = self.calibrators_[kind]
        if not 0.0 <= blend_weight <= 1.0:
            raise ValueError(f"blend_weight must be between 0 and 1, got {blend_weight}")
        if prior is not None:
            if prior not in self.priors_:
                raise ValueError(f"no prior {prior!r}; the model has {sorted(self.priors_)}")
            self.prior_name_ = prior
        self.blend_weight_ = float(blend_weight)
        return self

    def _support(self, x: np.ndarray) -> np.ndarray:
        """Per encoded row, the share of the calibrated and blended log-odds it keeps (:data:`SUPPORT_FROM`): 1 up to
        the first of its stage's :attr:`support_`, 0 past the last, linear between them; a 0-d 1 when every row
        keeps all (or the model predates this)."""
        grid = getattr(self, "support_", None)
        if grid is None or not len(x):
            return np.array(1.0)
        if "support_knots_" not in self.__dict__:  # derived once (never pickled)
            self.support_knots_ = support_knots(grid)
        knots = self.support_knots_
        stage, days = x[:, 0], np.maximum(x[:, 1], 0.0)
        out = np.interp(stage * _STAGES_APART + days, *knots)
        out[~((stage >= 0) & (stage < len(grid)) & np.isfinite(days))] = 1.0
        return out if (out < 1.0).any() else np.array(1.0)

    def prior_proba(self, rows: Rows, prior: str | None = None) -> np.ndarray:
        """P(win) of a model fitted beside the booster (``prior``, default the one blended with)."""
        self.check_fitted()
        return self.priors_[prior or self.prior_name_].predict_proba(rows)

    # -- prediction -------------------------------------------------------------------------------
    def _hazards(self, booster: lgb.Booster, rows: Rows) -> np.ndarray:
        """(n, intervals, 3) probabilities of none/won/lost in each interval, given open at its start."""
        return self._hazards_of(booster, self.encoder_.transform(rows))

    def _hazards_of(self, booster: lgb.Booster, x: np.ndarray, threads: bool = True) -> np.ndarray:
        k = len(self.boundaries)
        width = x.shape[1] + len(self._interval_features())
        stacked = np.empty((len(x), k, width))  # each row once per interval, the interval last
        stacked[:, :, :x.shape[1]] = x[:, None, :]
        stacked[:, :, -1] = np.arange(k)
        if self._paired():
            stacked[:, :, -2] = self._pair_base(x)[:, None] + np.arange(k)
        stacked = stacked.reshape(len(x) * k, width)
        compiled = getattr(self, "compiled_", None) if booster is getattr(self, "booster_", None) else None
        if compiled is None and len(stacked) >= COMPILE_ABOVE:  # e.g. the calibration window in training
            with tempfile.TemporaryDirectory(prefix="scoring-booster-") as folder:  # in memory: the folder can go
                compiled = CompiledHazards.compile(booster, self._interval_features(), folder)
        if compiled is not None:
            return compiled.predict(stacked, k, threads)
        return _predict(booster, stacked).reshape(len(x), k, 3)

    def compile(self, cache_dir: str | Path) -> WinModel:
        """Predict hazards with the booster compiled to native code (:class:`CompiledHazards`) from now on."""
        self.check_fitted()
        self.compiled_ = CompiledHazards.compile(self.booster_, self._interval_features(), cache_dir)
        self.contribution_table()
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("compiled_", None)  # native code belongs to this process and machine: never pickled
        state.pop("contribution_table_", None)  # derived from the booster when needed
        state.pop("support_knots_", None)  # derived from support_ when needed
        state.pop("_pool", None)  # a thread of this process
        state["trainer"] = None  # it may hold a cluster's client; a loaded model predicts, and refits here
        return state

    def hazards(self, rows: Rows) -> np.ndarray:
        self.check_fitted()
        return self._hazards(self.booster_, rows)

    def _eventual(self, hazards: np.ndarray, conditional: np.ndarray) -> np.ndarray:
        return self._cumulative(hazards, conditional)[:, -1]

    def _conditional(self, x: np.ndarray) -> np.ndarray:
        """Per encoded row, whether its P(win) ever is the won share of the deals closing within the intervals:
        rows in a stage where deals are left open for good (a model saved before this was per stage: all rows or
        none)."""
        dormant = np.asarray(self.conditional_, dtype=bool)
        if dormant.ndim == 0:
            return np.full(len(x), bool(dormant))
        stage = x[:, self._stage_column()].astype(int)
        return dormant[np.clip(stage, 0, len(dormant) - 1)]

    def _cumulative(self, hazards: np.ndarray, conditional: np.ndarray) -> np.ndarray:
        """P(won by the end of each interval, and ever): shape (n, intervals + 1); ``conditional``: the rows'
        :meth:`_conditional`. (Filled in place: for a few rows numpy's per-call cost is most of the time.)"""
        n, k = hazards.shape[:2]
        won, lost = hazards[:, :, WON], hazards[:, :, LOST]
        survive = np.cumprod(1 - won - lost, axis=1)
        before = np.empty((n, k))
        before[:, 0] = 1.0
        before[:, 1:] = survive[:, :-1]
        out = np.empty((n, k + 1))
        np.cumsum(before * won, axis=1, out=out[:, :k])
        within = out[:, k - 1]
        out[:, k] = np.where(conditional,
                             within / np.maximum(1.0 - survive[:, -1], 1e-12),  # P(won | closed within the intervals)
                             # the survivors split like the last interval's closes
                             within + survive[:, -1] * won[:, -1] / np.maximum(won[:, -1] + lost[:, -1], 1e-12))
        return out

    def raw_proba(self, rows: Rows) -> np.ndarray:
        """Uncalibrated P(win) from the hazards."""
        self.check_fitted()
        x = self.encoder_.transform(rows)
        return self._eventual(self._hazards_of(self.booster_, x), self._conditional(x))

    def _log_amount(self, x: np.ndarray) -> np.ndarray | None:
        """The encoded rows' log amounts, for the calibration (linear in them): an amount of 0 unknown, as
        :func:`~scoring.features.encoder.entered_amounts` reads it."""
        if "log_amount" not in self.encoder_.names_:
            return None
        return entered_amounts(x[:, self.encoder_.names_.index("log_amount")])  # log1p(amount) > 0 where amount > 0

    def _calibrated(self, raw: np.ndarray, x: np.ndarray, rows: Rows, prior: Explanation | None = None,
                    support: np.ndarray | None = None) -> np.ndarray:
        """The calibration map applied to raw P(win) of ``rows`` (encoded: ``x``), blended with the prior's
        P(win) in log-odds when :attr:`blend_weight_` is below 1 (``prior``: its explanation of the rows, when
        already made), and moved to ``raw`` beyond the known outcomes' days in the stage (``support``: the rows'
        :meth:`_support`, when already read)."""
        if self.calibrator_ is None and self.blend_weight_ >= 1.0:
            return raw
        p = raw if self.calibrator_ is None else self.calibrator_(raw, self._log_amount(x))
        weight = self.blend_weight_
        if weight < 1.0:
            q = prior.p if prior is not None else self.priors_[self.prior_name_].predict_proba(rows)
            p = blend(p, q, weight)
        return toward(p, raw, self._support(x) if support is None else support)

    def predict_proba(self, rows: Rows) -> np.ndarray:
        """Calibrated P(win) eventually."""
        self.check_fitted()
        x = self.encoder_.transform(rows)
        return self._calibrated(self._eventual(self._hazards_of(self.booster_, x), self._conditional(x)), x, rows)

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        """P(win), P(won within each of ``horizons``), expected days to a win and :meth:`contribution_matrix`
        (None unless ``contributions``: TreeSHAP costs more than the probabilities), from one encoding of the rows
        (and one look of a blended prior at them)."""
        self.check_fitted()
        x = self.encoder_.transform(rows)
        own = self._contributions_started(x) if contributions else None
        hazards = self._hazards_of(self.booster_, x, threads=own is None)
        conditional = self._conditional(x)
        cumulative = self._cumulative(hazards, conditional)
        prior = self._prior_explained(rows) if contributions else None
        support = self._support(x)
        p, by = self._win_by(hazards, horizons, cumulative, conditional, x, rows, prior, support)
        return Explanation(p, by, self._days_to_win(cumulative, conditional),
                           self._blended_contributions(x, prior, own, support) if contributions else None,
                           tuple(self.encoder_.names_))

    def _contributions_started(self, x: np.ndarray) -> Future[np.ndarray] | None:
        """The booster's contributions of ``x`` under way on the kept thread (:data:`CONCURRENT_FROM`), one thread's
        work; None for fewer rows or without a lookup table (LightGBM's TreeSHAP runs on threads of its own)."""
        if len(x) < CONCURRENT_FROM or self.contribution_table() is None:
            return None
        if getattr(self, "_pool", None) is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="contributions")
        return self._pool.submit(self._contributions_of, x, False)

    def _prior_explained(self, rows: Rows) -> Explanation | None:
        """The blended prior's P(win) and contributions of ``rows``, from one pass; None when there is no blend."""
        if self.blend_weight_ >= 1.0:
            return None
        return self.priors_[self.prior_name_].explain(rows, np.array([0.0]))

    def _blended_contributions(self, x: np.ndarray, prior: Explanation | None,
                               own: Future[np.ndarray] | None = None, support: np.ndarray | None = None) -> np.ndarray:
        """The booster's contributions (times its share of a blend; ``own``: under way) plus, from a prior that has
        them (logistic regression; ``prior``: its explanation), the prior's times its share, each on the input it
        describes; beyond the known outcomes' days in the stage (``support``: :meth:`_support`), the booster's
        alone."""
        out = own.result() if own is not None else self._contributions_of(x)
        if self.blend_weight_ >= 1.0:
            return out
        # the prior's share of the blended log-odds: none beyond the support (one, or one per row)
        rest = (1.0 - self.blend_weight_) * (self._support(x) if support is None else support)
        out *= (1.0 - rest)[:, None] if rest.ndim else 1.0 - rest  # the booster's share
        if prior is None or prior.contributions is None:
            return out
        names = self.encoder_.names_
        for j, name in enumerate(prior.names):
            mine = "log_amount" if name == "amount" else name
            if mine in names:
                out[:, names.index(mine)] += rest * prior.contributions[:, j]
        return out

    def win_by(self, rows: Rows, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(win) and P(won within each of ``horizons`` days), shape (rows, horizons), from one pass."""
        self.check_fitted()
        x = self.encoder_.transform(rows)
        hazards = self._hazards_of(self.booster_, x)
        conditional = self._conditional(x)
        return self._win_by(hazards, horizons, self._cumulative(hazards, conditional), conditional, x, rows)

    def _win_by(self, hazards: np.ndarray, horizons: np.ndarray, cumulative: np.ndarray, conditional: np.ndarray,
                x: np.ndarray, rows: Rows, prior: Explanation | None = None,
                support: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        p = self._calibrated(cumulative[:, -1], x, rows, prior, support)
        days = np.broadcast_to(np.asarray(horizons, dtype=float).reshape(1, -1), (len(hazards), np.size(horizons)))
        return p, self._win_within(hazards, days, cumulative, p, conditional)

    def _win_within(self, hazards: np.ndarray, days: np.ndarray, cumulative: np.ndarray,
                    calibrated: np.ndarray, conditional: np.ndarray) -> np.ndarray:
        """P(won within ``days``), shape (rows, horizons) like ``days``, given the hazards, their cumulative
        P(won), the calibrated P(win) and the rows' :meth:`_conditional`."""
        rows_ix = np.arange(len(hazards))[:, None]
        # the wins ``calibrated`` stands for: all of them, or (:meth:`_conditional`) those within the intervals
        raw_total = np.where(conditional[:, None], cumulative[:, -2:-1], cumulative[:, -1:])
        bounds = np.array((0, *self.boundaries), dtype=float)
        k = np.minimum(np.maximum(np.searchsorted(bounds, days, side="right") - 1, 0), len(self.boundaries) - 1)
        previous = np.maximum(k - 1, 0)
        survive = np.cumprod(1 - hazards[:, :, WON] - hazards[:, :, LOST], axis=1)
        start_cum = np.where(k > 0, cumulative[rows_ix, previous], 0.0)
        survive_start = np.where(k > 0, survive[rows_ix, previous], 1.0)
        won, lost = hazards[rows_ix, k, WON], hazards[rows_ix, k, LOST]
        width = bounds[k + 1] - bounds[k]
        # past the last interval: keep its hazard, interval after interval
        frac = np.where(days >= bounds[-1], (days - bounds[-2]) / width, (days - bounds[k]) / width)
        total = np.minimum(np.maximum(won + lost, 1e-12), 1.0)  # np.clip costs more per call
        share = 1 - (1 - total) ** frac
        by_t = start_cum + survive_start * share * won / total
        by_t = np.where(days <= 0, 0.0, np.minimum(by_t, raw_total))
        scale = calibrated[:, None] / np.maximum(raw_total, 1e-12)
        return np.minimum(np.maximum(by_t * scale, 0.0), 1.0)

    def _days_to_win(self, cumulative: np.ndarray, conditional: np.ndarray) -> np.ndarray:
        bounds = np.array((0, *self.boundaries), dtype=float)
        mids = np.concatenate([(bounds[:-1] + bounds[1:]) / 2, [bounds[-1] + (bounds[-1] - bounds[-2])]])
        per_interval = np.diff(cumulative, axis=1, prepend=0.0)
        with_tail = (per_interval * mids).sum(axis=1) / np.maximum(cumulative[:, -1], 1e-12)
        # conditional rows: no win after the intervals (the last column is a share, not a time)
        within = (per_interval[:, :-1] * mids[:-1]).sum(axis=1) / np.maximum(cumulative[:, -2], 1e-12)
        return np.where(conditional, within, with_tail)

    def unknown_values(self, rows: Rows) -> dict[str, list[str]]:
        """Per categorical input, the values in ``rows`` never seen in training (scored as rare)."""
        self.check_fitted()
        return self.encoder_.unknown_values(rows)

    def contribution_matrix(self, rows: Rows) -> np.ndarray:
        """:meth:`contributions` as an array (rows x ``encoder_.names_``), for rows given as a mapping of arrays."""
        self.check_fitted()
        return self._contributions_of(self.encoder_.transform(rows))

    def contribution_table(self) -> ContributionTable | None:
        """The booster's won-minus-lost TreeSHAP as a lookup table (built once, ~0.1 s; None for large trees)."""
        self.check_fitted()
        if not hasattr(self, "contribution_table_"):
            self.contribution_table_ = ContributionTable.from_booster(self.booster_, {WON: 1.0, LOST: -1.0})
        return self.contribution_table_

    def _contributions_of(self, x: np.ndarray, threads: bool = True) -> np.ndarray:
        """The booster's won-minus-lost TreeSHAP of encoded rows ``x`` in the first interval, per encoder input: the
        stage and interval's share is the stage's (in the first interval it is the stage), the interval's none."""
        n = x.shape[1]
        x = self._at_intervals(x, 0.0)
        table = self.contribution_table()
        if table is not None:  # LightGBM's numbers, 5-10x faster
            out = table(x, threads)
        else:  # TreeSHAP costs about 0.2 ms a row: threads pay from far fewer rows than for predictions
            raw = _predict(self.booster_, x, one_thread_below=50, pred_contrib=True)  # (n, 3 * (features + 1))
            width = len(self.feature_names_) + 1
            out = raw[:, WON * width:(WON + 1) * width] - raw[:, LOST * width:(LOST + 1) * width]
        if self._paired():
            out[:, self._stage_column()] += out[:, n]
        return out[:, :n]  # without the interval's columns (and LightGBM's bias)
