"""The stage-transition model: the pipeline as an empirical semi-Markov process.

Each stay in a stage ends by moving to another stage (forward, a skip, or back), by a win, by a
loss, or is still going at the cutoff (censored). Per stage, the Aalen-Johansen estimator gives the
cumulative probability of each exit over days in stage with censoring handled properly (a deal
still in Proposal at the cutoff counts as "at least this long in Proposal", not as lost and not
ignored). From those:

- the transition matrix (where deals go from each stage),
- the win probability on entering each stage (absorbing Markov chain over the exits),
- days-in-stage distributions (Kaplan-Meier), and
- P(win | stage, days already in it), which falls as a deal goes stale.

It is the direct, explainable replacement for the fixed stage percentages.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import Interval

from scoring.features.dataset import TrainingSet
from scoring.models.base import Model, StageTimedMixin
from scoring.models.dormancy import Dormancy

WON, LOST = "won", "lost"
#: Days-in-stage grid of the fitted curves; later days use the last value.
MAX_DAYS = 1095
#: A deal is stale when it has been in its stage longer than this share of past stays there lasted.
STALE_QUANTILE = 0.9


@dataclass(frozen=True)
class StageRow:
    """One row of the learned stage table."""

    stage: str
    fixed_probability: float
    win_probability: float
    exits: int
    censored: int
    transitions: dict[str, float]
    days_quantiles: dict[str, float]
    win_probability_after: dict[int, float]


class StageTransitionModel(StageTimedMixin, Model):
    """Empirical semi-Markov model of the pipeline. ``fit`` learns, ``predict_proba`` gives P(win).

    Parameters
    ----------
    tail_share:
        Exits still unresolved at the end of the observed days (heavy censoring) are split like the
        exits observed after this quantile of exit times (late leavers, not early ones).
    min_exits:
        A stage with fewer observed exits falls back to its fixed percentage (and says so).
    """

    name: ClassVar[str] = "stage_transitions"
    _fitted_attribute: ClassVar[str] = "transition_"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "tail_share": [Interval(Real, 0, 1, closed="both")], "min_exits": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, tail_share: float = 0.75, min_exits: int = 5) -> None:
        self.tail_share = tail_share
        self.min_exits = min_exits

    # -- learning ---------------------------------------------------------------------------------
    def fit(self, training: TrainingSet) -> Self:
        self._start_fit()
        self._fit_timing(training)
        for derived in ("_exit_value", "_stale_after_days"):  # of an earlier fit
            self.__dict__.pop(derived, None)
        data, cutoff = training.data, training.cutoff
        config = data.config
        stages = list(config.stages)
        self.stages_ = stages
        self.destinations_ = stages + [WON, LOST]
        self.fixed_ = config.fixed_array()
        stays = training.stays
        # A stage holding deals left in it for good: the stays that outlast every exit are mostly theirs, so its
        # P(win) is that of the exits seen (the served P(win) then counts the chance of leaving at all), not the
        # late exits' mix given to them.
        self.dormant_ = Dormancy().fit(data, cutoff, stays).dormant_stages
        n, k = len(stages), len(self.destinations_)
        self.cif_ = np.zeros((n, MAX_DAYS + 1, k))   # cumulative incidence of each exit by day
        self.survival_ = np.ones((n, MAX_DAYS + 1))  # P(still in stage) by day
        self.transition_ = np.zeros((n, k))
        self.exits_ = np.zeros(n, dtype=int)
        self.censored_ = np.zeros(n, dtype=int)
        self.fallback_ = np.zeros(n, dtype=bool)
        for i, stage in enumerate(stages):
            part = stays[stays["stage"] == stage]
            dest = part["to"].map({d: j for j, d in enumerate(self.destinations_)}).fillna(-1).to_numpy(int)
            self.exits_[i] = int((dest >= 0).sum())
            self.censored_[i] = int((dest < 0).sum())
            if self.exits_[i] < self.min_exits:
                self.fallback_[i] = True
                self.transition_[i, k - 2] = self.fixed_[i]
                self.transition_[i, k - 1] = 1 - self.fixed_[i]
                self.cif_[i, :, :] = self.transition_[i]  # immediate, for lack of data
                # how long stays last is still known from the few that ended (and those still going)
                self.survival_[i] = (_aalen_johansen(part["days"].to_numpy(float), dest, k, self.tail_share)[1]
                                     if self.exits_[i] else 1.0)
                continue
            self.cif_[i], self.survival_[i], self.transition_[i] = _aalen_johansen(
                part["days"].to_numpy(float), dest, k, self.tail_share, bool(self.dormant_[i]))
        self.entry_win_ = _absorbing_win(self.transition_, n)
        return self

    # -- prediction -------------------------------------------------------------------------------
    def win_probability(self, stage_index: np.ndarray, days_in_stage: np.ndarray) -> np.ndarray:
        """P(win | in stage ``stage_index`` for ``days_in_stage`` days so far)."""
        self.check_fitted()
        stage_index = np.asarray(stage_index, dtype=int)
        days = np.asarray(days_in_stage, float)
        day = np.minimum(np.maximum(np.floor(np.where(np.isnan(days), 0.0, days)), 0), MAX_DAYS).astype(int)
        value = self.__dict__.get("_exit_value")
        if value is None:  # P(win) after each exit: through an open stage, won, lost (worked out once)
            value = self.__dict__["_exit_value"] = np.concatenate([self.entry_win_, [1.0, 0.0]])
        # CIF at infinity (in a stage with dormant deals: of the exits seen, the stays past them never leaving)
        total = self.transition_[stage_index]
        if self.dormant_.any():
            total = np.where(self.dormant_[stage_index][:, None], self.cif_[stage_index, -1], total)
        so_far = self.cif_[stage_index, day]                       # exits already happened by that day
        remaining = np.maximum(total - so_far, 0.0)
        mass = remaining.sum(axis=1)
        later = (remaining @ value) / np.where(mass > 1e-12, mass, 1.0)
        # Past all observed exits, the stay is "long" but nothing says more: use the late-exit mix.
        return np.where(mass > 1e-12, later, self.transition_[stage_index] @ value)

    def predict_proba(self, rows: pd.DataFrame) -> np.ndarray:
        """P(win) of snapshot rows (needs ``stage_index`` and ``days_in_stage``)."""
        return self.win_probability(np.asarray(rows["stage_index"]), np.asarray(rows["days_in_stage"]))

    def days_quantile(self, stage_index: int, q: float) -> float:
        """Days by which a share ``q`` of stays in the stage have ended (Kaplan-Meier); inf if never."""
        self.check_fitted()
        ended = 1 - self.survival_[stage_index]
        hit = np.nonzero(ended >= q)[0]
        return float(hit[0]) if len(hit) else float("inf")

    def stale_after_days(self) -> np.ndarray:
        """Per stage: the days in the stage beyond which a deal is stale, the one definition of stale (longer
        than ``STALE_QUANTILE`` of past stays there had lasted; inf where too few ended). Worked out once."""
        days = self.__dict__.get("_stale_after_days")
        if days is None:
            days = np.array([self.days_quantile(i, STALE_QUANTILE) for i in range(len(self.stages_))])
            days.flags.writeable = False
            self.__dict__["_stale_after_days"] = days
        return days

    def table(self, after_days: tuple[int, ...] = (30, 90, 180)) -> list[StageRow]:
        """The learned stage table, stage by stage."""
        self.check_fitted()
        rows = []
        for i, stage in enumerate(self.stages_):
            rows.append(StageRow(
                stage=stage,
                fixed_probability=float(self.fixed_[i]),
                win_probability=float(self.entry_win_[i]),
                exits=int(self.exits_[i]),
                censored=int(self.censored_[i]),
                transitions={d: float(p) for d, p in zip(self.destinations_, self.transition_[i]) if p > 0},
                days_quantiles={f"p{int(q * 100)}": self.days_quantile(i, q) for q in (0.25, 0.5, 0.75, 0.9)},
                win_probability_after={d: float(self.win_probability(np.array([i]), np.array([d]))[0])
                                       for d in after_days},
            ))
        return rows

    def table_frame(self) -> pd.DataFrame:
        """The learned stage table as one frame: learned beside fixed P(win), P(win) after days in stage, days."""
        records = []
        for r in self.table():
            records.append({"stage": r.stage, "fixed_probability": r.fixed_probability,
                            "learned_probability": r.win_probability,
                            **{f"p_win_after_{d}d": v for d, v in r.win_probability_after.items()},
                            **{f"days_{k}": v for k, v in r.days_quantiles.items()},
                            "exits": r.exits, "still_in_stage": r.censored})
        return pd.DataFrame.from_records(records)

    def transition_matrix(self) -> pd.DataFrame:
        """Rows: from-stage; columns: to-stage, won, lost."""
        self.check_fitted()
        return pd.DataFrame(self.transition_, index=self.stages_, columns=self.destinations_)


def _aalen_johansen(days: np.ndarray, dest: np.ndarray, k: int, tail_share: float, conditional: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative incidence of each exit (k kinds) and survival, on a daily grid; and the exit mix at infinity
    (``conditional``: the mix of the exits seen, the stays that outlast them never leaving)."""
    day = np.clip(np.floor(days), 0, MAX_DAYS).astype(int)
    exits = np.zeros((MAX_DAYS + 1, k))
    np.add.at(exits, (day[dest >= 0], dest[dest >= 0]), 1.0)
    leaving = np.bincount(day, minlength=MAX_DAYS + 1).astype(float)  # exits and censorings by day
    at_risk = len(day) - np.concatenate([[0.0], np.cumsum(leaving)[:-1]])
    hazard = np.divide(exits, at_risk[:, None], out=np.zeros_like(exits), where=at_risk[:, None] > 0)
    all_hazard = hazard.sum(axis=1)
    survival = np.cumprod(1 - all_hazard)
    before = np.concatenate([[1.0], survival[:-1]])
    cif = np.cumsum(before[:, None] * hazard, axis=0)
    total = cif[-1].copy()
    rest = survival[-1]
    if rest > 1e-9 and not conditional:  # stays that outlast every observed exit: split them like the late exits
        observed = day[dest >= 0]
        late = dest[(dest >= 0) & (day >= np.quantile(observed, tail_share))]
        mix = np.bincount(late, minlength=k).astype(float)
        total += rest * (mix / mix.sum() if mix.sum() else total / max(total.sum(), 1e-12))
    return cif, survival, total / total.sum()


def _absorbing_win(transition: np.ndarray, n: int) -> np.ndarray:
    """P(eventually won) on entering each open stage, from the exit mix of every stage."""
    q = transition[:, :n]
    r_won = transition[:, n]
    try:
        return np.clip(np.linalg.solve(np.eye(n) - q, r_won), 0.0, 1.0)
    except np.linalg.LinAlgError:  # a closed loop with no way out: fall back to least squares
        return np.clip(np.linalg.lstsq(np.eye(n) - q, r_won, rcond=None)[0], 0.0, 1.0)
