"""What serves, decided on the holdout: the win model's calibration, and the candidate whose P(win) serves.

Every company gets the best model its data supports (SPEC section 6): on a small or unusual history a
baseline can beat the win model, and then it serves (through the same API) rather than leaving no model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.evaluation.metrics import scores
from scoring.models.win import WinModel, blend

#: The win model keeps serving when no candidate beats its holdout log-loss by more than this: it alone
#: gives factors and its own timing.
WIN_MODEL_TOLERANCE = 0.001
#: The booster's shares of the log-odds tried when blending with a prior (1.0: no blend, always tried).
BLEND_WEIGHTS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)
#: Not a candidate to serve: it is what every answer is compared with.
COMPARISON = "fixed"


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
    options = model.calibrations(holdout) if model.calibrators_ else {"-": model.predict_proba(holdout)}
    priors = {name: model.prior_proba(holdout, name) for name in model.priors_}
    losses: dict[str, float] = {}
    choices: dict[str, tuple[str | None, float, str | None]] = {}
    for kind, p in options.items():
        losses[kind] = float(scores(y, np.asarray(p))["log_loss"])
        choices[kind] = (None if kind == "-" else kind, 1.0, None)
        for name, prior in priors.items():
            for weight in BLEND_WEIGHTS:
                key = f"{kind}+{name}@{weight:g}"
                losses[key] = float(scores(y, blend(np.asarray(p), prior, weight))["log_loss"])
                choices[key] = (None if kind == "-" else kind, weight, name)
    model.use_calibration(*choices[min(losses, key=lambda key: losses[key])])
    return losses


def choose_served(metrics: pd.DataFrame) -> Served:
    """The candidate with the lowest holdout log-loss (overall rows of ``metrics``), the win model when within
    :data:`WIN_MODEL_TOLERANCE` of it."""
    overall = metrics[metrics["by"] == "all"].set_index("model")["log_loss"].drop(index=COMPARISON, errors="ignore")
    overall = overall.dropna()
    best = str(overall.idxmin())
    win = float(overall.get(WinModel.name, np.inf))
    if best == WinModel.name or win <= overall[best] + WIN_MODEL_TOLERANCE:
        runner_up = overall.drop(index=WinModel.name).sort_values()
        other = (f"; the best other candidate, {runner_up.index[0]}, {runner_up.iloc[0]:.4f}" if len(runner_up) else "")
        return Served(WinModel.name, f"the win model has the best holdout log-loss ({win:.4f}{other})", win)
    return Served(best, f"{best} has the best holdout log-loss ({overall[best]:.4f}; the win model {win:.4f}): on this "
                        "history it predicts better, so it serves (its P(win), spread over time by the win model's "
                        "timing)", float(overall[best]))
