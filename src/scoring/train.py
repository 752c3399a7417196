"""Training: validate sufficiency, fit every model on what was known at the holdout start, judge them on the
holdout (which also picks the win model's calibration and the candidate that serves), then refit everything
on all that was known at the as-of date, into a :class:`ModelBundle`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pandas as pd

from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory, data_end
from scoring.data.summary import require_sufficient
from scoring.engines import LOCAL, Engine
from scoring.evaluation.holdout import choose_holdout, evaluate, followed, holdout_start_of
from scoring.evaluation.selection import choose_calibration, choose_served, horizon_losses, judging_horizon, known_losses
from scoring.features.dataset import TrainingSet
from scoring.features.scale import HOLDOUT_FRACTION, data_scale
from scoring.forecast.kpis import pipeline_kpis
from scoring.forecast.uncertainty import fit_period_effects
from scoring.models import MODELS
from scoring.models.arrivals import ArrivalModel
from scoring.models.base import StageTimedMixin, WinProbabilityModel
from scoring.models.dormancy import Dormancy, WithDormancy
from scoring.models.timing import StageTiming
from scoring.models.transitions import StageTransitionModel
from scoring.models.win import Trainer, WinModel, train_here

Progress = Callable[[str], None]


def new_models(seed: int = 0, win_params: dict[str, Any] | None = None,
               trainer: Trainer = train_here) -> dict[str, WinProbabilityModel]:
    """Fresh, unfitted instances of every model in :data:`~scoring.models.MODELS`, by name: the win model with
    ``win_params`` (if given), ``seed`` and ``trainer`` (which fits its boosters: here, or on a cluster)."""
    models: dict[str, WinProbabilityModel] = {}
    for kind in MODELS:
        model = WinModel(random_state=seed, trainer=trainer, **(win_params or {})) if kind is WinModel else kind()
        models[kind.name] = model
    return models


def train_bundle(data: DealHistory, as_of: pd.Timestamp | str | None = None, holdout_fraction: float = HOLDOUT_FRACTION,
                 every_days: int | None = None, seed: int = 0, progress: Progress | None = None,
                 win_params: dict[str, Any] | None = None, engine: Engine = LOCAL) -> ModelBundle:
    """Fit the model and every baseline, evaluate them on a time-based holdout, refit on everything.

    The snapshot spacing (unless ``every_days`` is given), the win model's intervals, calibration window and
    smallest leaf (unless ``win_params`` set them) follow the data's own scale (:func:`data_scale`), read
    from the deals closed before the holdout; the holdout grows until both outcomes are well represented."""
    say = progress or (lambda _: None)
    require_sufficient(data)
    when: pd.Timestamp = pd.Timestamp(as_of) if as_of is not None else data_end(data)
    scale = data_scale(data, holdout_start_of(data, when, holdout_fraction))
    every_days = every_days or scale.every_days
    win_params = {**scale.win_params(), **(win_params or {})}
    holdout_start, holdout, snapshots = choose_holdout(data, when, holdout_fraction, every_days, engine.snapshotter)

    say(f"fitting on what was known at {holdout_start.date()} (holdout: {holdout_start.date()} to {when.date()})")
    early_training = TrainingSet(data, holdout_start, every_days, engine.snapshotter)
    early_models = fit_models(early_training, seed, say, win_params, engine.trainer)
    early_dormancy = Dormancy().fit(data, holdout_start, early_training.stays)
    del early_training  # the refit's snapshots need the memory
    calibration = choose_calibration(cast(WinModel, early_models[WinModel.name]), holdout)
    metrics, reliability = evaluate(early_models, holdout, by=tuple(f for f in ("segment",) if f in data.features))
    horizon = judging_horizon(scale.cycle_days_p90, (when - holdout_start) / pd.Timedelta(days=1))
    served = choose_served(known_losses(metrics), horizon_losses(early_models, early_dormancy, *followed(snapshots, horizon),
                                                                 horizon), horizon)
    del snapshots
    say(f"serving: {served.name} ({served.reason})")

    say(f"refitting on everything known at {when.date()}")
    training = TrainingSet(data, when, every_days, engine.snapshotter)
    models = fit_models(training, seed, say, win_params, engine.trainer)
    final, early = cast(WinModel, models[WinModel.name]), cast(WinModel, early_models[WinModel.name])
    kind = early.calibrator_.kind if early.calibrator_ is not None else None
    final.use_calibration(kind if kind in final.calibrators_ else None, early.blend_weight_, early.prior_name_)
    for fitted, win in ((models, final), (early_models, early)):
        if isinstance(fitted[served.name], StageTimedMixin):  # a baseline serves: its P(win), the win model's timing
            cast(StageTimedMixin, fitted[served.name]).time_like(win)
    stage_model = cast(StageTransitionModel, models[StageTransitionModel.name])
    say("fitting the arrivals of new deals")
    arrivals = ArrivalModel().fit(data.deals, when)
    dormancy = Dormancy().fit(data, when, training.stays)
    for stage, found in dormancy.summary()["stages"].items():
        say(f"deals left in {stage} for good: {found['never_leave_share']:.1%} of its stays; none left after "
            f"{found['longest_exit_days']:.0f} days")
    return ModelBundle(config=data.config, features=dict(data.features), models=models, metrics=metrics,
                       reliability=reliability, as_of=when, holdout_start=holdout_start,
                       data_digest=data.digest(), n_deals=len(data.deals),
                       trained_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                       timing=StageTiming().fit(training),
                       kpis=pipeline_kpis(data, when, stale_after=stage_model.stale_after_days()),
                       holdout_model=early_models[served.name], arrivals=arrivals, dormancy=dormancy,
                       effects=fit_period_effects(data, when, arrivals.arrival_sd_,
                                                  WithDormancy(models[served.name], dormancy)),
                       served=served.name, served_reason=served.reason,
                       calibration=calibration, scale=scale, every_days=every_days, signals=data.spec)


def fit_models(training: TrainingSet, seed: int = 0, progress: Progress | None = None,
               win_params: dict[str, Any] | None = None, trainer: Trainer = train_here
               ) -> dict[str, WinProbabilityModel]:
    """Every model, fitted on ``training``."""
    models = new_models(seed, win_params, trainer)
    for name, model in models.items():
        if progress:
            progress(f"  {name}")
        model.fit(training)
    return models
