"""Optional hyper-parameter search for the win model (Optuna), each trial a nested MLflow run.

Trials are judged on a validation window *before* the holdout (as long as the holdout, ending at
its start), so the holdout that decides promotion stays untouched by the search. The holdout, the snapshot
spacing and the win model's scale-bound parameters are those training will use (:func:`data_scale`).
"""
from __future__ import annotations

from typing import Any

import mlflow
import optuna
import pandas as pd

from scoring.data.contract import DealHistory
from scoring.evaluation.holdout import choose_holdout, holdout_rows, holdout_start_of
from scoring.evaluation.metrics import scores
from scoring.features.dataset import TrainingSet
from scoring.features.scale import data_scale
from scoring.models.win import WinModel


def search_space(trial: optuna.Trial, smallest_leaf: int = 50) -> dict[str, Any]:
    """The searched parameters; the smallest leaf from ``smallest_leaf`` (the data's scale) up."""
    return {"learning_rate": trial.suggest_float("learning_rate", 0.03, 0.2, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 80, 400, step=20),
            "num_leaves": trial.suggest_int("num_leaves", 4, 31, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", min(50, smallest_leaf), 800, log=True),
            "reg_lambda": trial.suggest_float("reg_lambda", 0.1, 30.0, log=True)}


def tune(data: DealHistory, as_of: pd.Timestamp, holdout_fraction: float, trials: int, seed: int = 0,
         experiment_id: str | None = None) -> tuple[dict[str, Any], float]:
    """The best win-model parameters over ``trials`` Optuna trials and their validation log-loss."""
    scale = data_scale(data, holdout_start_of(data, as_of, holdout_fraction))
    holdout_start = choose_holdout(data, as_of, holdout_fraction, scale.every_days).start
    valid_start = holdout_start - (as_of - holdout_start)
    training = TrainingSet(data, valid_start, scale.every_days)
    valid = holdout_rows(data, valid_start, holdout_start, scale.every_days)
    y = valid["outcome"].eq("won").to_numpy()

    def objective(trial: optuna.Trial) -> float:
        params = search_space(trial, scale.min_child_samples)
        with mlflow.start_run(experiment_id=experiment_id, nested=True, run_name=f"trial-{trial.number}"):
            model = WinModel(random_state=seed, **{**scale.win_params(), **params}).fit(training)
            loss = scores(y, model.predict_proba(valid))["log_loss"]
            mlflow.log_params(params)
            mlflow.log_metrics({"validation_log_loss": loss, "validation_rows": float(len(valid))})
        return loss

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials)
    return dict(study.best_params), float(study.best_value)
