"""What serves, decided on the holdout: the win model's calibration, and the candidate whose P(win) serves.

Every company gets the best model its data supports (SPEC section 6): on a small or unusual history a
baseline can beat the win model, and then it serves (through the same API) rather than leaving no model.

The holdout judges the candidates two ways (:func:`choose_served`): on the deals whose outcome became known, and
as they would serve (P(win) times the chance of ever leaving the stage, spread over time by the win model's
timing) on what the holdout's deals won within a horizon, deals still open counting as not won
(:func:`~scoring.evaluation.holdout.followed`). Judged on known outcomes alone, a model of P(win | the deal
closes) looks best and then gives the stale deals that fill a real pipeline the odds of deals that close; a
baseline replaces the win model only when it predicts better both ways (README, simulated companies).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.evaluation.metrics import scores
from scoring.features.encoder import Rows
from scoring.models.base import WinProbabilityModel
from scoring.models.dormancy import Dormancy
from scoring.models.win import WinModel, blend, toward

#: The win model keeps serving when no candidate beats its holdout log-loss by more than this: it alone
#: gives factors and its own timing.
WIN_MODEL_TOLERANCE = 0.001
#: The booster's shares of the log-odds tried when blending with a prior (1.0: no blend, always tried).
BLEND_WEIGHTS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
#: Not a candidate to serve: it is what every answer is compared with.
COMPARISON = "fixed"
#: The shortest horizon the candidates are judged on (days after each holdout snapshot).
MIN_HORIZON_DAYS = 30.0
#: Judged on the horizon only when the followed rows hold at least this many wins and as many others.
MIN_FOLLOWED_OUTCOMES = 30


@dataclass(frozen=True)
class Served:
    """The candidate that serves and why (said in the training output, the model card and ``/v1/model``)."""

    name: str
    reason: str
    log_loss: float


def choose_calibration(model: WinModel, holdout: pd.DataFrame) -> dict[str, float]:
    """Holdout log-loss of each calibration the (holdout-time) win model fitted, each alone and blended with
    each of its priors (the stage-transition model, logistic regression: the shrinkage small or noisy
    histories need), and switch the model to the best. Keys are ``kind`` or ``kind+prior@w`` (``w``: the
    booster's share of the log-odds)."""
    y = holdout["outcome"].eq("won").to_numpy()
    # each judged as it would serve: the booster's own P(win) beyond the known outcomes' days in the stage
    options, raw, support = model.calibrations(holdout)
    options = options or {"-": model.predict_proba(holdout)}
    priors = {name: model.prior_proba(holdout, name) for name in model.priors_}
    losses: dict[str, float] = {}
    choices: dict[str, tuple[str | None, float, str | None]] = {}
    for kind, p in options.items():
        losses[kind] = float(scores(y, toward(np.asarray(p), raw, support))["log_loss"])
        choices[kind] = (None if kind == "-" else kind, 1.0, None)
        for name, prior in priors.items():
            for weight in BLEND_WEIGHTS:
                key = f"{kind}+{name}@{weight:g}"
                losses[key] = float(scores(y, toward(blend(np.asarray(p), prior, weight), raw, support))["log_loss"])
                choices[key] = (None if kind == "-" else kind, weight, name)
    model.use_calibration(*choices[min(losses, key=lambda key: losses[key])])
    return losses


def judging_horizon(cycle_days_p90: float, holdout_days: float) -> float:
    """How long after each holdout snapshot its deal is followed in judging the candidates: long enough for most
    deals that close to have closed (the 90th percentile of past sales cycles, at least :data:`MIN_HORIZON_DAYS`),
    short enough that the first half of the holdout was followed that long."""
    cycle = cycle_days_p90 if np.isfinite(cycle_days_p90) else MIN_HORIZON_DAYS
    return float(min(max(cycle, MIN_HORIZON_DAYS), holdout_days / 2))


def horizon_losses(models: Mapping[str, WinProbabilityModel], dormancy: Dormancy, rows: Rows, won: np.ndarray,
                   horizon: float) -> dict[str, float] | None:
    """Each candidate's log-loss of P(won within ``horizon`` days) on ``rows`` (``won``: whether each was), as it
    would serve: the win model's own, a baseline's P(win) spread over time by the win model's timing, each times
    the chance the deal ever leaves its stage (``dormancy``, fitted when the candidates were). None when the rows
    hold too few wins or too few others to judge by."""
    if not can_judge(won):
        return None
    explained = models[WinModel.name].explain(rows, np.array([horizon]), contributions=False)  # once for all
    share = explained.shares[:, 0]
    leaving = dormancy.leaving_share(np.asarray(rows["stage_index"]), np.asarray(rows["days_in_stage"]))
    within = {name: explained.by[:, 0] if name == WinModel.name else model.predict_proba(rows) * share
              for name, model in models.items() if name != COMPARISON}
    return {name: within_log_loss(won, p * leaving) for name, p in within.items()}


def can_judge(won: np.ndarray) -> bool:
    """Whether followed rows (``won``: whether each was won within the horizon) hold enough wins and others to judge
    candidates by."""
    return min(int(won.sum()), int((~won).sum())) >= MIN_FOLLOWED_OUTCOMES


def within_log_loss(won: np.ndarray, within: np.ndarray) -> float:
    """Log-loss of P(won within the horizon) ``within`` against what the followed rows won (``won``)."""
    return float(scores(won, np.clip(within, 1e-9, 1 - 1e-9))["log_loss"])


def known_losses(metrics: pd.DataFrame) -> dict[str, float]:
    """Each candidate's holdout log-loss on the deals whose outcome became known (overall rows of ``metrics``)."""
    overall = metrics[metrics["by"] == "all"].set_index("model")["log_loss"].drop(index=COMPARISON, errors="ignore")
    return {str(name): float(loss) for name, loss in overall.dropna().items()}


def choose_served(known: Mapping[str, float], followed: Mapping[str, float] | None = None,
                  horizon: float | None = None) -> Served:
    """The win model, unless a candidate beats its holdout log-loss by more than :data:`WIN_MODEL_TOLERANCE` on the
    deals whose outcome became known (``known``) and, where the followed deals can judge (``followed``: log-loss of
    P(won within ``horizon`` days), :func:`horizon_losses`), there as well; of those, the best on the followed deals
    (on the known outcomes when they cannot judge).

    Each judge alone misleads some companies: on known outcomes a model of P(win | the deal closes) looks best,
    and gives stale deals the odds of deals that close; on the followed deals, fewer wins count (those within the
    horizon) and a small company's noise can pick a model that ignores the deal's amount."""
    scored = pd.Series(known, dtype=float).drop(index=COMPARISON, errors="ignore").dropna()
    win = float(scored.get(WinModel.name, np.inf))
    beats = scored[scored < win - WIN_MODEL_TOLERANCE].sort_values()
    if followed is not None and len(beats):
        win_followed = followed.get(WinModel.name, np.inf)
        worse = [name for name in beats.index if not followed.get(name, np.inf) < win_followed]
        if len(worse) == len(beats):  # every candidate better on known outcomes predicts worse what deals won
            best = str(beats.index[0])
            return Served(WinModel.name, f"{best} has the better holdout log-loss on the deals whose outcome became "
                                         f"known ({beats.iloc[0]:.4f}; the win model {win:.4f}) but "
                                         f"predicts worse what the holdout's deals won within {horizon:.0f} days, deals "
                                         f"still open counting as not won ({followed.get(best, np.inf):.4f}; the win "
                                         f"model {win_followed:.4f})", win)
        beats = beats.drop(index=worse)
        beats = beats.loc[sorted(beats.index, key=lambda name: followed[name])]
    if not len(beats):
        runner_up = scored.drop(index=WinModel.name, errors="ignore").sort_values()
        other = (f"; the best other candidate, {runner_up.index[0]}, {runner_up.iloc[0]:.4f}" if len(runner_up) else "")
        return Served(WinModel.name, f"the win model has the best holdout log-loss ({win:.4f}{other})", win)
    best = str(beats.index[0])
    judged = (f"has the best holdout log-loss ({beats.iloc[0]:.4f}; the win model {win:.4f})" if followed is None else
              f"beats the win model both on the holdout's known outcomes (log-loss {beats.iloc[0]:.4f}; the win model "
              f"{win:.4f}) and on what the holdout's deals won within {horizon:.0f} days ({followed[best]:.4f}; the win "
              f"model {followed[WinModel.name]:.4f})")
    return Served(best, f"{best} {judged}: on this history it predicts better, so it serves (its P(win), spread over "
                        "time by the win model's timing)", float(beats.iloc[0]))
