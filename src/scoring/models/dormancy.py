"""Deals that never close: left open in the CRM, sitting in a stage long after anyone works them (dormant deals).

Every model learns P(win) from deals whose outcome became known, and the holdout judges it on them: its P(win)
is the chance a deal is won *if it closes*. Real CRMs keep some deals open for good: in a public sales log a
fifth of the deals open at one date had been open more than 90 days, and none of them closed in the six months
after, while every model gave them the 0.7 of the deals that did close. A deal that
moves on is being worked; one that sits in its stage past every exit anyone made from it is not. So what is
served is

    P(win) = P(leaves its stage | in it for d days) * P(win | it closes)

with, per stage, ``P(leaves | d) = (S(d) - S_end) / S(d)``: ``S`` is the Kaplan-Meier survival of stays in the
stage (a stay ends when the deal moves on, is won or is lost; stays still going at the as-of date are censored
there; ``scipy.stats.ecdf``), and ``S_end`` its value at the longest stay that ended, the usual
non-parametric estimate of the share that never ends (a "cure fraction", Maller and Zhou). A deal in its stage
longer than that gets 0: no deal that long in it ever left.

That plateau means something only if stays were watched long enough past it. The stays still going beyond the
last exit were watched for some deal-days past it; had they ended at the rate stays ended late (exits per
deal-day over the last quarter of exit times), ``expected`` exits would have been seen, and none was. The
chance of that is ``exp(-expected)``; since the time after the last exit holds no exit by definition, a stage
without dormant deals shows about 1 expected exit there, and more than 3 one time in twenty. So the weight kept
on "they still leave like the late ones" is that chance relative to 5 %:

    P(leaves | d) = w + (1 - w) * (S(d) - S_end) / S(d),   w = min(1, exp(-expected) / 0.05)

A stage whose deals all leave, or a history too short to have watched stays long past the last exit, changes
nothing (w = 1); one that watched them for more than 6 expected exits takes the plateau whole (w < 0.05).
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.stats import CensoredData, ecdf
from sklearn.utils._param_validation import Interval

from scoring.data.contract import DealHistory
from scoring.features.dataset import TrainingSet
from scoring.features.encoder import Rows
from scoring.features.snapshots import sojourns
from scoring.models.base import Explanation, Model, WinProbabilityModel

#: No exit where exits were due counts as evidence of deals that never leave only when its chance is below this:
#: the time after the last exit has no exit by definition, and its expected count is about 1 in a stage without
#: dormant deals (it exceeds 3 one time in twenty).
EVIDENCE = 0.05
#: A stage is said to hold dormant deals when the weight on "they still leave" is below this.
FOUND_BELOW = 0.99


@dataclass
class StageStays:
    """The Kaplan-Meier curve of stays in one stage and what the history says past its last exit."""

    days: np.ndarray  # the curve's steps: days in the stage ...
    survival: np.ndarray  # ... and the share of stays still going then
    never_share: float  # the curve at the longest stay that ended (0 when every stay ended)
    longest_exit_days: float  # the longest stay that ended (nan: none did)
    expected_exits: float  # exits the stays past it would have shown, leaving like the late ones
    weight: float  # kept on "they still leave like the late ones" (1: no dormant deals here)

    @property
    def dormant(self) -> bool:
        """Whether the stage holds deals left in it for good."""
        return self.weight < FOUND_BELOW

    def leaving_share(self, days: np.ndarray) -> np.ndarray:
        """P(the deal leaves the stage some day | in it for ``days`` days)."""
        if not self.dormant:
            return np.ones(len(days))
        i = np.searchsorted(self.days, np.nan_to_num(days), side="right") - 1
        s = np.where(i >= 0, self.survival[np.maximum(i, 0)], 1.0)
        leaving = np.maximum(s - self.never_share, 0.0) / np.maximum(s, 1e-12)
        return np.where(np.isnan(days), 1.0, self.weight + (1 - self.weight) * leaving)


class Dormancy(Model):
    """Per stage, P(a deal in it for ``d`` days ever leaves it), learned from the stays in it (see the module).

    ``late_share``: the late exits whose rate tests the plateau are the last ``late_share`` of exit times."""

    name: ClassVar[str] = "dormancy"
    _fitted_attribute: ClassVar[str] = "stays_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {"late_share": [Interval(Real, 0, 1, closed="right")]}

    def __init__(self, late_share: float = 0.25) -> None:
        self.late_share = late_share

    def fit(self, data: DealHistory, as_of: pd.Timestamp | str, stays: pd.DataFrame | None = None) -> Self:
        """Learn from the stays in each stage of ``data`` known at ``as_of`` (``stays``: their
        :func:`~scoring.features.snapshots.sojourns`, when already at hand)."""
        self._start_fit()
        stays = sojourns(data, pd.Timestamp(as_of)) if stays is None else stays
        self.stages_ = list(data.config.stages)
        by_stage = {stage: part for stage, part in stays.groupby("stage", sort=False)}
        self.stays_ = [self._stage(by_stage.get(stage)) for stage in self.stages_]
        return self

    def _stage(self, stays: pd.DataFrame | None) -> StageStays:
        none = StageStays(np.zeros(0), np.zeros(0), 0.0, float("nan"), 0.0, 1.0)
        if stays is None:
            return none
        days = stays["days"].to_numpy(dtype=float)
        left = stays["to"].notna().to_numpy()
        exits, going = days[left], days[~left]
        if len(exits) == 0 or len(going) == 0:
            return none
        curve = ecdf(CensoredData(uncensored=exits, right=going)).sf
        steps, survival = np.asarray(curve.quantiles, float), np.asarray(curve.probabilities, float)
        last = float(exits.max())
        never = float(survival[np.searchsorted(steps, last, side="right") - 1])
        start = float(np.quantile(exits, 1 - self.late_share))
        at_risk = float(np.maximum(np.minimum(days, last) - start, 0.0).sum())
        rate = float(np.sum(exits > start)) / at_risk if at_risk > 0 else 0.0
        expected = rate * float(np.maximum(going - last, 0.0).sum())
        weight = min(1.0, float(np.exp(-expected)) / EVIDENCE) if never > 0 else 1.0
        return StageStays(steps, survival, never, last, expected, weight)

    @property
    def dormant_stages(self) -> np.ndarray:
        """Per stage, whether it holds deals left in it for good."""
        self.check_fitted()
        return np.array([s.dormant for s in self.stays_], dtype=bool)

    @property
    def never_leave_shares(self) -> np.ndarray:
        """Per stage, the share of its stays that never end (0 where the history shows no dormant deals)."""
        self.check_fitted()
        return np.array([s.never_share * (1 - s.weight) if s.dormant else 0.0 for s in self.stays_])

    @property
    def found(self) -> bool:
        """Whether the history shows deals left in some stage for good."""
        self.check_fitted()
        return bool(self.dormant_stages.any())

    def leaving_share(self, stage_index: np.ndarray, days_in_stage: np.ndarray) -> np.ndarray:
        """P(the deal ever leaves its stage), for deals in stage ``stage_index`` for ``days_in_stage`` days."""
        self.check_fitted()
        stage_index = np.asarray(stage_index, dtype=int)
        days = np.asarray(days_in_stage, dtype=float)
        out = np.ones(len(days))
        for i, stays in enumerate(self.stays_):
            if stays.dormant and (here := stage_index == i).any():
                out[here] = stays.leaving_share(days[here])
        return out

    def never_leaving(self, stage_index: np.ndarray, days_in_stage: np.ndarray) -> int:
        """How many deals sit in a stage with dormant deals longer than any stay in it that ended."""
        self.check_fitted()
        stage_index = np.asarray(stage_index, dtype=int)
        longest = np.array([s.longest_exit_days if s.dormant else np.inf for s in self.stays_])
        return int(np.sum(np.asarray(days_in_stage, dtype=float) > longest[stage_index]))

    def summary(self) -> dict[str, Any]:
        """What the model card says of it: whether found, and per stage holding dormant deals, the share of stays
        that never end, the longest stay that ended and the exits the stays past it would have shown."""
        self.check_fitted()
        shares = self.never_leave_shares
        return {"found": self.found,
                "stages": {stage: {"never_leave_share": round(float(share), 4),
                                   "longest_exit_days": round(s.longest_exit_days, 1),
                                   "expected_exits_after": round(s.expected_exits, 1)}
                           for stage, s, share in zip(self.stages_, self.stays_, shares, strict=True) if s.dormant}}


class WithDormancy:
    """A win-probability model whose P(win) (and its timing) counts the chance a deal never closes: ``model``'s
    P(win | it closes) times :class:`Dormancy`'s P(leaves its stage). Contributions and the expected days to a
    win are ``model``'s (they describe a deal that does close)."""

    name: ClassVar[str] = "with_dormancy"

    def __init__(self, model: WinProbabilityModel, dormancy: Dormancy) -> None:
        self.model, self.dormancy = model, dormancy

    def fit(self, training: TrainingSet) -> Self:
        self.model.fit(training)
        self.dormancy.fit(training.data, training.cutoff, training.stays)
        return self

    def _share(self, rows: Rows) -> np.ndarray:
        return self.dormancy.leaving_share(np.asarray(rows["stage_index"]), np.asarray(rows["days_in_stage"]))

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
