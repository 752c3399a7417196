"""The one interface every win-probability model keeps: the win model, the stage-transition model and the
baselines alike, so that training, the holdout comparison, the backtest and scoring treat them all the same.

- ``fit(training) -> self``: learn from a :class:`~scoring.features.dataset.TrainingSet` (what was known at
  its cutoff); learned attributes end in ``_`` and using an unfitted model raises sklearn's ``NotFittedError``;
- ``predict_proba(rows) -> P(win)`` for snapshot rows (a DataFrame or a mapping of arrays);
- ``win_by(rows, horizons) -> (P(win), P(won within each horizon))``, the second of shape (rows, horizons);
- ``explain(rows, horizons, contributions) -> Explanation``: what scoring shows of a deal (P(win), timing, the
  expected days to a win and, from models that have them, per-feature contributions to the log-odds).

Parameters are stored by ``__init__`` and checked when ``fit`` starts (scikit-learn's
``_parameter_constraints``). Models without timing of their own (the baselines) spread their P(win)
over time with the stage's historical time to a win (:class:`StageTimedMixin`).
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple, Protocol, Self, runtime_checkable

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from scoring.features.dataset import TrainingSet
from scoring.features.encoder import Rows
from scoring.models.timing import StageTiming


class Explanation(NamedTuple):
    """A model's account of deals: P(win), P(won within each horizon) (rows, horizons), the expected days to a
    win, and contributions to the log-odds of winning (rows, ``names``) or None where the model has none."""

    p: np.ndarray
    by: np.ndarray
    days_to_win: np.ndarray
    contributions: np.ndarray | None = None
    names: tuple[str, ...] = ()

    @property
    def shares(self) -> np.ndarray:
        """Each deal's share of its P(win) landing within each horizon (rows, horizons): how a model timed like
        this one spreads its own P(win)."""
        return np.minimum(self.by / np.maximum(self.p, 1e-12)[:, None], 1.0)


@runtime_checkable
class WinProbabilityModel(Protocol):
    """What training, evaluation, backtests and scoring ask of a model."""

    name: ClassVar[str]

    def fit(self, training: TrainingSet) -> Self: ...

    def predict_proba(self, rows: Rows) -> np.ndarray: ...

    def win_by(self, rows: Rows, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation: ...


class Model(BaseEstimator):
    """scikit-learn's estimator contract for the models here: parameters checked at ``fit``, ``check_fitted``."""

    name: ClassVar[str]
    #: An attribute ``fit`` sets: its absence means not fitted.
    _fitted_attribute: ClassVar[str]

    def _start_fit(self) -> None:
        self._validate_params()

    def check_fitted(self) -> None:
        """Raise scikit-learn's ``NotFittedError`` unless ``fit`` has run (an attribute test first: sklearn's
        own check costs some 17 us, a tenth of scoring one deal)."""
        if not hasattr(self, self._fitted_attribute):
            check_is_fitted(self, self._fitted_attribute)


class StageTimedMixin:
    """Timing for models that only know P(win): the share of a win that lands within a horizon, per stage,
    from how long past wins from that stage took (:class:`StageTiming`), or, once :meth:`time_like` gave it
    one, from a model with timing of its own."""

    timing_: StageTiming | None
    #: The model whose timing this one's P(win) follows (:meth:`time_like`); None: the stage's.
    timing_model_: WinProbabilityModel | None = None

    def predict_proba(self, rows: Rows) -> np.ndarray:
        raise NotImplementedError

    def _fit_timing(self, training: TrainingSet) -> None:
        self.timing_model_ = None
        try:
            self.timing_ = StageTiming().fit(training)
        except ValueError:  # no win to learn timing from: a win is only known to land within the horizon
            self.timing_ = None

    def time_like(self, model: WinProbabilityModel) -> Self:
        """Spread P(win) over time as ``model`` (fitted, with timing of its own: the win model) spreads its own:
        each deal's share of a win landing within a horizon is ``model``'s for that deal, which knows how long
        the deal has been open and where it stands. The stage's timing is blind to that: a deal open far longer
        than past wins took would have most of its P(win) land in the next weeks."""
        self.timing_model_ = model
        return self

    def _timing(self, rows: Rows, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each deal's share of a win landing within each of ``horizons`` days (rows, horizons) and its expected
        days to a win."""
        if self.timing_model_ is not None:
            theirs = self.timing_model_.explain(rows, horizons, contributions=False)
            return theirs.shares, theirs.days_to_win
        stage = np.asarray(rows["stage_index"], dtype=int)
        if self.timing_ is None:
            return (np.broadcast_to((horizons >= StageTiming().horizon_days).astype(float), (len(stage), horizons.size)),
                    np.full(len(stage), StageTiming().horizon_days / 2))
        return self.timing_.share_within(stage, horizons), self.timing_.expected_days(stage)

    def win_by(self, rows: Rows, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(win) and P(won within each of ``horizons`` days), shape (rows, horizons)."""
        p = self.predict_proba(rows)
        share, _ = self._timing(rows, np.asarray(horizons, dtype=float))
        return p, p[:, None] * share

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        """P(win), its timing and the expected days to a win (the stage's past wins', or the timing model's); no
        contributions."""
        p = self.predict_proba(rows)
        share, days = self._timing(rows, np.asarray(horizons, dtype=float))
        return Explanation(p, p[:, None] * share, days)
