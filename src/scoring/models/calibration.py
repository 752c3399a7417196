"""Calibration of the win model's P(win): a map fitted out of time that keeps the ranking a CRM sorts by.

Plain isotonic regression is a step function: on the demo's 1,697 open deals it left 53 distinct
probabilities (217 deals tied at one value). :class:`Calibrator` offers maps that keep distinct scores
distinct, each fitted on the calibration window:

- ``none``: the hazards' own P(win). A booster fitted on less history is less sharp than the final one, so
  a map learned on the early booster's window can over-stretch the final booster's scores; on the demo
  companies of the tests the raw P(win) was often the best calibrated of all on the holdout;
- ``platt``: a logistic regression on the logit of the raw P(win) (Platt scaling: two numbers);
- ``platt_amount``: the same with the deal's log amount beside it, for a model whose raw P(win) is off by
  deal size (what a forecast weighted by revenue feels most);
- ``isotonic``: isotonic regression interpolated linearly between the centres of its steps, strictly
  increasing between the first and last (flat only beyond them).

The win model picks one by cross-validated log-loss on its window; training then picks again among them by
the holdout's log-loss (:func:`scoring.train.train_bundle`), which is where the early booster's bias shows.

Outcomes may be probabilities rather than 0 or 1: a deal of the window still open at the cutoff has no outcome
yet, and its chance of winning stands for it (each such row counts as a win with that weight and as a loss with
the rest; isotonic regression takes the mean directly).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

#: Calibrated probabilities stay this far from 0 and 1: a finite sample never proves certainty.
PROBABILITY_FLOOR = 0.001
KINDS = ("none", "platt", "platt_amount", "isotonic")
_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, probabilities kept within 1e-6 of 0 and 1."""
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _filled(log_amount: np.ndarray | None, n: int) -> tuple[np.ndarray, float]:
    """Log amounts with the missing ones at the median (zeros when none is known), and that median."""
    if log_amount is None:
        return np.zeros(n), 0.0
    values = np.asarray(log_amount, dtype=float)
    median = float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0
    return np.nan_to_num(values, nan=median), median


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean log-loss of P(win) ``p`` against outcomes ``y`` (0, 1 or a chance of winning: cross-entropy)."""
    p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _as_weighted(features: np.ndarray, won: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows with outcomes between 0 and 1 as a win of that weight and a loss of the rest: (features, 0/1 outcome,
    weight) for a classifier."""
    soft = (won > 0) & (won < 1)
    if not soft.any():
        return features, won, np.ones(len(won))
    return (np.concatenate([features, features[soft]]), np.concatenate([np.ceil(won), np.zeros(int(soft.sum()))]),
            np.concatenate([np.where(soft, won, 1.0), 1.0 - won[soft]]))


@dataclass
class Calibrator:
    """A fitted map from (raw P(win), log amount) to P(win); ``kind`` says which (see the module)."""

    kind: str = "platt"
    coef: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0]))  # platt: logit, log amount
    intercept: float = 0.0
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # isotonic: knots
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scores: dict[str, float] = field(default_factory=dict)  # cross-validated log-loss of each kind tried
    missing_amount: float = 0.0  # the log amount a missing one is read as: the fitted deals' median, as in fitting

    @classmethod
    def fit_each(cls, raw: np.ndarray, log_amount: np.ndarray | None, won: np.ndarray, folds: int = 5,
                 seed: int = 0) -> dict[str, Calibrator]:
        """Every kind fitted on (``raw``, ``log_amount``, ``won``: 1 won, 0 lost, or a chance of winning), each
        with its ``folds``-fold cross-validated log-loss in ``scores`` (the same for all: a comparison)."""
        raw, won = np.asarray(raw, dtype=float), np.asarray(won, dtype=float)
        if np.any((won < 0) | (won > 1)) or not np.all(np.isfinite(won)):
            raise ValueError("outcomes must be 0 (lost), 1 (won) or a chance of winning between them")
        log_amount, median = _filled(log_amount, len(raw))
        strata = won >= 0.5  # folds stratified by the likelier outcome
        k = int(min(folds, strata.sum(), (~strata).sum()))
        scores: dict[str, float] = {}
        if k >= 2:
            predicted = {kind: np.empty(len(raw)) for kind in KINDS}
            for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(raw, strata):
                for kind in KINDS:
                    predicted[kind][test] = cls.fit(kind, raw[train], log_amount[train], won[train])(
                        raw[test], log_amount[test])
            scores = {kind: _log_loss(won, p) for kind, p in predicted.items()}
        fitted = {kind: cls.fit(kind, raw, log_amount, won) for kind in KINDS}
        for calibrator in fitted.values():
            calibrator.scores, calibrator.missing_amount = scores, median
        return fitted

    @classmethod
    def choose(cls, raw: np.ndarray, log_amount: np.ndarray | None, won: np.ndarray, folds: int = 5,
               seed: int = 0) -> Calibrator:
        """The kind with the lowest cross-validated log-loss (:meth:`fit_each`)."""
        return cls.best(cls.fit_each(raw, log_amount, won, folds, seed))

    @staticmethod
    def best(fitted: dict[str, Calibrator]) -> Calibrator:
        """Of :meth:`fit_each`'s calibrators, the one with the lowest cross-validated log-loss (Platt when too
        few outcomes allowed cross-validation)."""
        scores = next(iter(fitted.values())).scores
        return fitted[min(scores, key=lambda kind: scores[kind]) if scores else "platt"]

    @classmethod
    def fit(cls, kind: str, raw: np.ndarray, log_amount: np.ndarray, won: np.ndarray) -> Calibrator:
        """The map of ``kind`` fitted on raw P(win), log amounts and outcomes (0, 1 or a chance of winning)."""
        if kind == "none":
            return cls(kind)
        if kind == "isotonic":
            iso = IsotonicRegression(y_min=PROBABILITY_FLOOR, y_max=1 - PROBABILITY_FLOOR, out_of_bounds="clip")
            iso.fit(raw, won)
            x, y = _step_centres(iso.X_thresholds_, iso.y_thresholds_)
            return cls(kind, x=x, y=y)
        features = np.column_stack([logit(raw), log_amount if kind == "platt_amount" else np.zeros(len(raw))])
        regression = LogisticRegression(C=100.0, max_iter=1000).fit(*_as_weighted(features, np.asarray(won, float)))
        return cls(kind, coef=regression.coef_[0].copy(), intercept=float(regression.intercept_[0]))

    def __call__(self, raw: np.ndarray, log_amount: np.ndarray | None = None) -> np.ndarray:
        """Calibrated P(win) of raw P(win) (and the deals' log amounts, which ``platt_amount`` reads)."""
        raw = np.asarray(raw, dtype=float)
        if self.kind == "none":
            p = raw
        elif self.kind == "isotonic":
            p = np.interp(raw, self.x, self.y)
        else:
            z = self.intercept + self.coef[0] * logit(raw)
            if self.coef[1] != 0.0 and log_amount is not None:
                z = z + self.coef[1] * np.nan_to_num(np.asarray(log_amount, dtype=float), nan=self.missing_amount)
            p = 1.0 / (1.0 + np.exp(-z))
        return np.minimum(np.maximum(p, PROBABILITY_FLOOR), 1 - PROBABILITY_FLOOR)


def _step_centres(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots through the middle of each constant step of an isotonic fit (its thresholds come in pairs at
    the ends of each step), so that interpolation between them rises strictly."""
    xs, ys = [], []
    start = 0
    for i in range(1, len(y) + 1):
        if i == len(y) or y[i] != y[start]:
            xs.append((x[start] + x[i - 1]) / 2)
            ys.append(y[start])
            start = i
    if len(xs) == 1:  # one step: a constant
        return np.array([x[0], x[-1] + _EPS]), np.array([ys[0], ys[0]])
    return np.array(xs), np.array(ys)
