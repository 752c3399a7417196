"""Deals that never close: left open in the CRM long after anyone works them (dormant deals).

Every model learns P(win) from deals whose outcome became known, and the holdout judges it on them: its P(win)
is the chance a deal is won *if it closes*. Real CRMs keep some deals open for good: in a public sales log a
quarter of the deals open at one date were older than any deal that had ever closed, and none of them closed in
the six months after, while every model gave them the 0.7 of the deals that did close. So what is served is

    P(win) = P(closes | open at age a) * P(win | closes)

with ``P(closes | open at age a) = (S(a) - S_end) / S(a)``: ``S`` is the Kaplan-Meier survival of the time from
a deal's creation to its close (won or lost; deals open at the as-of date are censored there, by
``scipy.stats.ecdf``), and ``S_end`` its value at the longest age at which any deal closed, the usual
non-parametric estimate of the share that never closes (a "cure fraction", Maller and Zhou). A deal older than
that gets 0: no deal that old ever closed.

That plateau means something only if deals were watched long enough past it. The deals still open beyond the
last close were watched for some deal-days past it; had they closed at the rate deals closed late in life
(closes per deal-day over the last quarter of closing ages), ``expected`` closes would have been seen, and none
was. The chance of that is ``exp(-expected)``; since the time after the last close holds no close by
definition, a history without dormant deals shows about 1 expected close there, and more than 3 one time in
twenty. So the weight kept on "they still close like the late ones" is that chance relative to 5 %:

    P(closes | a) = w + (1 - w) * (S(a) - S_end) / S(a),   w = min(1, exp(-expected) / 0.05)

A history whose deals all closed, or too short to have watched deals long past the last close, changes
nothing (w = 1); one that watched them for more than 6 expected closes takes the plateau whole (w < 0.05).
"""
from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.stats import CensoredData, ecdf
from sklearn.utils._param_validation import Interval

from scoring.features.dataset import TrainingSet
from scoring.features.encoder import Rows
from scoring.models.base import Explanation, Model, WinProbabilityModel

DAY = pd.Timedelta(days=1)
#: No close where closes were due counts as evidence of deals that never close only when its chance is below this:
#: the time after the last close has no close by definition, and its expected count is about 1 in a history
#: without dormant deals (it exceeds 3 one time in twenty).
EVIDENCE = 0.05


class Dormancy(Model):
    """P(a deal open at age ``a`` days ever closes), learned from when deals closed (see the module).

    ``late_share``: the late closes whose rate tests the plateau are the last ``late_share`` of closing ages."""

    name: ClassVar[str] = "dormancy"
    _fitted_attribute: ClassVar[str] = "weight_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"late_share": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, late_share: float = 0.25) -> None:
        self.late_share = late_share

    def fit(self, deals: pd.DataFrame, as_of: pd.Timestamp | str) -> Self:
        """Learn from ``deals`` (``created_at``, ``closed_at``) as known at ``as_of``."""
        self._start_fit()
        as_of = pd.Timestamp(as_of)
        deals = deals[deals["created_at"] <= as_of]
        closed = (deals["closed_at"].notna() & (deals["closed_at"] <= as_of)).to_numpy()
        age = ((deals["closed_at"].where(closed, as_of) - deals["created_at"]) / DAY).to_numpy(dtype=float)
        age = np.maximum(age, 0.0)
        closes, still_open = age[closed], age[~closed]
        self.ages_, self.survival_ = np.zeros(0), np.zeros(0)
        self.never_share_, self.longest_close_days_, self.expected_closes_ = 0.0, float("nan"), 0.0
        self.weight_ = 1.0
        if len(closes) == 0 or len(still_open) == 0:
            return self
        survival = ecdf(CensoredData(uncensored=closes, right=still_open)).sf
        self.ages_, self.survival_ = np.asarray(survival.quantiles, float), np.asarray(survival.probabilities, float)
        last = float(closes.max())
        self.longest_close_days_, self.never_share_ = last, float(self._survival(np.array([last]))[0])
        start = float(np.quantile(closes, 1 - self.late_share))
        at_risk = float(np.maximum(np.minimum(age, last) - start, 0.0).sum())
        rate = float(np.sum(closes > start)) / at_risk if at_risk > 0 else 0.0
        self.expected_closes_ = rate * float(np.maximum(still_open - last, 0.0).sum())
        chance = float(np.exp(-self.expected_closes_))  # of no close in that time, were they closing like the late ones
        self.weight_ = min(1.0, chance / EVIDENCE) if self.never_share_ > 0 else 1.0
        return self

    @property
    def found(self) -> bool:
        """Whether the history shows deals that never close (a plateau that counts for something)."""
        self.check_fitted()
        return self.weight_ < 0.99

    def closing_share(self, age_days: np.ndarray) -> np.ndarray:
        """P(closes) of deals open at ``age_days`` (1 where the history shows no dormant deals)."""
        self.check_fitted()
        age = np.asarray(age_days, dtype=float)
        if not self.found:
            return np.ones(len(age))
        s = self._survival(age)
        closing = np.maximum(s - self.never_share_, 0.0) / np.maximum(s, 1e-12)
        return self.weight_ + (1 - self.weight_) * np.where(np.isnan(age), 1.0, closing)

    def _survival(self, age: np.ndarray) -> np.ndarray:
        """S(age): the share of deals still open at ``age`` days (1 before the first close)."""
        i = np.searchsorted(self.ages_, np.nan_to_num(age), side="right") - 1
        return np.where(i >= 0, self.survival_[np.maximum(i, 0)], 1.0)

    def summary(self) -> dict[str, float | bool | None]:
        """What the model card says of it."""
        self.check_fitted()
        last = self.longest_close_days_
        return {"found": self.found, "never_close_share": round(self.never_share_ * (1 - self.weight_), 4),
                "longest_close_days": None if np.isnan(last) else round(last, 1),
                "expected_closes_after": round(self.expected_closes_, 1)}

    def never_closing(self, age_days: np.ndarray) -> int:
        """How many of the deals open at ``age_days`` are older than any deal that closed, when :attr:`found`."""
        self.check_fitted()
        return int(np.sum(np.asarray(age_days, dtype=float) > self.longest_close_days_)) if self.found else 0


class WithDormancy:
    """A win-probability model whose P(win) (and its timing) counts the chance a deal never closes:
    ``model``'s P(win | closes) times :class:`Dormancy`'s P(closes) at the deal's age. Contributions and the
    expected days to a win are ``model``'s (they describe a deal that does close)."""

    name: ClassVar[str] = "with_dormancy"

    def __init__(self, model: WinProbabilityModel, dormancy: Dormancy) -> None:
        self.model, self.dormancy = model, dormancy

    def fit(self, training: TrainingSet) -> Self:
        self.model.fit(training)
        self.dormancy.fit(training.data.deals, training.cutoff)
        return self

    def _share(self, rows: Rows) -> np.ndarray:
        return self.dormancy.closing_share(np.asarray(rows["age_days"], dtype=float))

    def predict_proba(self, rows: Rows) -> np.ndarray:
        return self.model.predict_proba(rows) * self._share(rows)

    def win_by(self, rows: Rows, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, by = self.model.win_by(rows, horizons)
        share = self._share(rows)
        return p * share, by * share[:, None]

    def explain(self, rows: Rows, horizons: np.ndarray, contributions: bool = True) -> Explanation:
        theirs = self.model.explain(rows, horizons, contributions)
        share = self._share(rows)
        return theirs._replace(p=theirs.p * share, by=theirs.by * share[:, None])
