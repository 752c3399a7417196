"""Retraining: train a bundle, log everything to MLflow, register a version, promote it when it is better.

One run holds: params (pipeline config, features, hyper-parameters, cut-offs), holdout metrics of
the model and of every baseline (``holdout_<metric>_<model>``), the training data as a dataset
input with its digest, the report (HTML and PNG), the stage, metrics and reliability tables, a tag
with the code version, and the pyfunc model, registered as a new version with the alias
``challenger``. ``champion`` moves only by :func:`scoring.training.registry.decide`.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory, data_end
from scoring.engines import LOCAL, Engine
from scoring.features.scale import HOLDOUT_FRACTION
from scoring.processes import alive
from scoring.report.html import report_inputs, write_report
from scoring.tracking import (
    CHALLENGER,
    DECISION_TAG,
    DEFAULT_NAME,
    MAX_ECE,
    PROMOTED_TAG,
    PROMOTION_MARGIN,
    champion_version,
    load_bundle,
    open_store,
)
from scoring.tracking import tracking_uri as store_uri
from scoring.train import train_bundle
from scoring.training import pyfunc
from scoring.training.registry import Decision, decide, export_champion, move_champion
from scoring.training.tuning import tune

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TrainResult:
    bundle: ModelBundle
    run_id: str
    model_name: str
    version: str
    decision: Decision
    exported: Path | None
    tidied: tuple[str, ...] = ()  # what was done about runs and versions earlier trains left unfinished


def code_version() -> str:
    """The git commit of the code, or the package version outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                               cwd=Path(__file__).parent, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return version("pipeline-scoring")


def train_and_log(data: DealHistory, as_of: pd.Timestamp | str | None = None, holdout_fraction: float = HOLDOUT_FRACTION,
                  seed: int = 0, model_name: str = DEFAULT_NAME, promote: str = "auto", margin: float = PROMOTION_MARGIN,
                  max_ece: float = MAX_ECE, export_dir: Path | None = Path("models"), tracking_uri: str | None = None,
                  tune_trials: int = 0, progress: Progress | None = None, engine: Engine = LOCAL) -> TrainResult:
    """Train on ``data``, log the run, register a version (alias ``challenger``), maybe promote it to ``champion``.
    ``engine`` says where snapshots and boosters are computed (here, or ``dask_engine.dask_engine``)."""
    say = progress or (lambda _: None)
    uri = tracking_uri or store_uri()
    client, experiment_id = open_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    as_of = pd.Timestamp(as_of) if as_of is not None else data_end(data)
    tidied = tuple(tidy_interrupted(client, experiment_id, model_name))
    with mlflow.start_run(experiment_id=experiment_id, tags={"code_version": code_version(),
                                                             "data_digest": data.digest(), HOST_TAG: socket.gethostname(),
                                                             PID_TAG: str(os.getpid())}) as run:
        win_params = None
        if tune_trials:
            say(f"searching hyper-parameters ({tune_trials} trials)")
            win_params, loss = tune(data, as_of, holdout_fraction, tune_trials, seed, experiment_id)
            mlflow.log_metric("tuning_best_validation_log_loss", loss)
            mlflow.log_param("tuning_trials", tune_trials)
        bundle = train_bundle(data, as_of=as_of, holdout_fraction=holdout_fraction, seed=seed, progress=say,
                              win_params=win_params, engine=engine)
        mlflow.log_param("engine", engine.name)
        say("logging the run to MLflow")
        _log_params(bundle, holdout_fraction, seed)
        _log_metrics(bundle)
        mlflow.log_input(_dataset(data, bundle), context="training")
        with tempfile.TemporaryDirectory() as tmp:
            _log_artifacts(data, bundle, Path(tmp))
            bundle_path = bundle.save(Path(tmp) / "bundle.joblib")
            example = pyfunc.input_example(_open_example(data), bundle)
            # MLflow prints "Successfully registered model ..." and "Created version ..." itself; the result says so
            with contextlib.redirect_stderr(io.StringIO()):
                info = mlflow.pyfunc.log_model(name="model", python_model=pyfunc.ScoringModel(),
                                               artifacts={"bundle": str(bundle_path)},
                                               pip_requirements=pyfunc.requirements(),
                                               signature=pyfunc.signature(bundle), input_example=example,
                                               registered_model_name=model_name)
    version_ = str(info.registered_model_version)
    client.set_registered_model_alias(model_name, CHALLENGER, version_)
    say("comparing with the champion")
    current = champion_version(client, model_name)
    decision = decide(bundle, data, lambda: load_bundle(f"models:/{model_name}/{current}", uri)[0] if current else None,
                      promote, margin, max_ece)
    client.set_model_version_tag(model_name, version_, DECISION_TAG, decision.reason)
    client.set_model_version_tag(model_name, version_, PROMOTED_TAG, str(decision.promote).lower())
    exported = None
    if decision.promote:
        move_champion(client, model_name, version_, decision.reason)
        if export_dir is not None:
            exported = export_champion(bundle, model_name, version_, Path(export_dir))
    return TrainResult(bundle, run.info.run_id, model_name, version_, decision, exported, tidied)


#: Tags of each training run: the machine and process that run it (a run whose process is gone was killed).
HOST_TAG, PID_TAG = "host", "pid"


def tidy_interrupted(client: MlflowClient, experiment_id: str, model_name: str) -> list[str]:
    """Mark as failed the runs still RUNNING whose training process on this machine is gone (killed mid-way),
    and tag the versions registered without a promotion decision; what was done, as sentences. Runs of other
    machines, or of live processes (a concurrent train), are left alone."""
    notes = []
    here = socket.gethostname()
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get(HOST_TAG) != here or not tags.get(PID_TAG, "").isdigit() or alive(int(tags[PID_TAG])):
            continue
        client.set_tag(run.info.run_id, "interrupted", "its training process ended before the run did (killed)")
        client.set_terminated(run.info.run_id, status="FAILED")
        notes.append(f"marked run {run.info.run_id} failed: its training process (pid {tags[PID_TAG]}) is gone")
    try:
        versions = list(client.search_model_versions(f"name = '{model_name}'"))
    except MlflowException:
        versions = []
    for registered in versions:
        if DECISION_TAG in registered.tags:
            continue
        if registered.run_id and _still_deciding(client.get_run(registered.run_id), here):
            continue
        client.set_model_version_tag(model_name, registered.version, DECISION_TAG,
                                     "not decided: the training run was interrupted before its promotion decision")
        client.set_model_version_tag(model_name, registered.version, PROMOTED_TAG, "false")
        notes.append(f"tagged {model_name} version {registered.version}: registered by an interrupted run, never decided")
    return notes


def _still_deciding(run: Any, here: str) -> bool:
    """Whether a run's train may still tag its version: running, or ended but its process (here) is alive (it
    decides after the run ends), or of another machine and not failed (nothing tells)."""
    tags = run.data.tags
    if run.info.status == "RUNNING":
        return True
    if tags.get(HOST_TAG) == here and tags.get(PID_TAG, "").isdigit():
        return alive(int(tags[PID_TAG]))
    return run.info.status != "FAILED"


def _dataset(data: DealHistory, bundle: ModelBundle) -> mlflow.data.dataset.Dataset:
    """The training deals as an MLflow dataset, its source the deals file, its digest ours."""
    deals = data.deals.drop(columns=[c for c in data.deals if c.startswith("_")])
    source = Path(data.sources[0]).resolve().as_uri() if data.sources and Path(data.sources[0]).exists() else None
    with warnings.catch_warnings():  # a local file fits two of MLflow's source kinds; it picks the right one
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        return mlflow.data.from_pandas(deals, source=source, name="deals", digest=bundle.data_digest[:16])


#: Characters MLflow refuses in a param's name; stage names are a CRM's own ("Buyer's approval", "R&D (tech)").
_REFUSED_IN_NAMES = re.compile(r"[^\w.\- :/]")


def _name(*parts: str) -> str:
    """A param name MLflow takes: ``parts`` joined by dots, each character it refuses as ``_``."""
    return ".".join(_REFUSED_IN_NAMES.sub("_", part) for part in parts)


def _log_params(bundle: ModelBundle, holdout_fraction: float, seed: int) -> None:
    model = bundle.model
    params = {
        "stages": ",".join(bundle.config.stages),
        **{_name("fixed_probability", s): p for s, p in bundle.config.fixed_probabilities.items()},
        "features": ",".join(f"{k}:{v}" for k, v in bundle.features.items()) or "(none)",
        "preset": bundle.config.preset or "(canonical)",
        "as_of": str(bundle.as_of.date()), "holdout_start": str(bundle.holdout_start.date()),
        "holdout_fraction": holdout_fraction, "seed": seed, "n_deals": bundle.n_deals,
        "serving_model": bundle.served, "calibration": getattr(model.calibrator_, "kind", "none"),
        "win_model.blend_weight": model.blend_weight_, "win_model.blend_with": model.prior_name_,
        "snapshot_every_days": bundle.every_days,
        **({f"scale.{k}": v for k, v in bundle.scale.to_dict().items()} if bundle.scale else {}),
        "arrivals.rate": bundle.arrivals.spec_.name,
        "arrivals.groups": ",".join(g.key for g in bundle.arrivals.groups_ or []),
        **{f"period_effects.win_sd.{k}": round(v, 4) for k, v in bundle.effects.win_sd.items()},
        **{f"period_effects.arrival_sd.{k}": round(v, 4) for k, v in bundle.effects.arrival_sd.items()},
        "dormancy.found": bundle.dormancy.found,
        **{_name("dormancy", stage, k): v for stage, found in bundle.dormancy.summary()["stages"].items()
           for k, v in found.items()},
        **{f"win_model.{k}": getattr(model, k) for k in ("boundaries", "n_estimators", "learning_rate", "num_leaves",
                                                           "min_child_samples", "reg_lambda", "calibration_days",
                                                           "followup_days")},
    }
    mlflow.log_params(params)


def _log_metrics(bundle: ModelBundle) -> None:
    overall = bundle.metrics[bundle.metrics["by"] == "all"]
    metrics = {}
    for _, row in overall.iterrows():
        for metric in ("log_loss", "brier", "roc_auc", "ece", "revenue_ratio"):
            if pd.notna(row[metric]):
                metrics[f"holdout_{metric}_{row['model']}"] = float(row[metric])
    metrics["holdout_rows"] = float(overall["n"].iloc[0])
    mlflow.log_metrics(metrics)


def _log_artifacts(data: DealHistory, bundle: ModelBundle, tmp: Path) -> None:
    report_dir = tmp / "report"
    overall = bundle.metrics[bundle.metrics["by"] == "all"]
    title = f"Training run as of {bundle.as_of:%Y-%m-%d}: {bundle.served} serves ({bundle.served_reason})"
    write_report(report_inputs(data, title, metrics=overall,
                               reliability=bundle.reliability, as_of=bundle.as_of, stage_table=bundle.stage_table(),
                               kpis=bundle.kpis),
                 report_dir)
    mlflow.log_artifacts(str(report_dir), "report")
    tables = tmp / "tables"
    tables.mkdir()
    bundle.stage_table().to_csv(tables / "stage_table.csv", index=False)
    bundle.stage_model.transition_matrix().to_csv(tables / "transition_matrix.csv")
    bundle.metrics.to_csv(tables / "holdout_metrics.csv", index=False)
    bundle.reliability.to_csv(tables / "reliability.csv", index=False)
    mlflow.log_artifacts(str(tables), "tables")


def _open_example(data: DealHistory) -> pd.DataFrame:
    """Deals to show as the model's input example: open ones if any, else the latest."""
    deals = data.deals
    chosen = deals[deals["status"] == "open"]
    return (chosen if len(chosen) else deals.sort_values("created_at").tail(3)).head(3)
