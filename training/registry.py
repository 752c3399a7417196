"""The model registry: versions, the ``champion`` and ``challenger`` aliases, promotion and rollback.

Under ``auto`` the first version of a model name always becomes the champion: it serves the best candidate
on its holdout (the win model or a learned baseline, :mod:`scoring.evaluation.selection`), so no company is
left without a model. A later version replaces the champion only when its serving candidate is calibrated
(calibration error at most ``max_ece``) and beats the champion's by at least ``margin`` in log-loss on the
new run's holdout, and predicts no worse what the holdout's deals won within a horizon, deals still open
counting as not won (the two judges that choose what serves, :mod:`scoring.evaluation.selection`: on known
outcomes alone a model of P(win | the deal closes) looks best); the champion is judged on the same rows with its
own holdout-time model, which saw nothing after its own holdout start.
Every move of ``champion`` is recorded on the registered model (tag ``champion_log``) with who,
when, from which version and why.
"""
from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from scoring.atomic import atomic_path
from scoring.bundle import ModelBundle
from scoring.data.contract import DealHistory
from scoring.errors import ModelError
from scoring.evaluation.holdout import followed, holdout_snapshots, known_outcomes
from scoring.evaluation.metrics import scores
from scoring.evaluation.selection import can_judge, judging_horizon, within_log_loss
from scoring.tracking import CHAMPION, MAX_ECE, PROMOTION_MARGIN, champion_version

LOG_TAG = "champion_log"
LOG_KEEP = 50


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    new_log_loss: float
    champion_log_loss: float | None = None


def decide(bundle: ModelBundle, data: DealHistory, load_champion: Callable[[], ModelBundle | None],
           mode: str = "auto", margin: float = PROMOTION_MARGIN, max_ece: float = MAX_ECE) -> Decision:
    """Whether ``bundle``, trained on ``data``, should become the champion, and why.

    The champion (from ``load_champion``, None if there is none) and the holdout rows are fetched only
    when the decision comes down to comparing the two.
    """
    overall = bundle.metrics[bundle.metrics["by"] == "all"].set_index("model")
    new = overall.loc[bundle.served]
    serving = f"{bundle.served} serves: {bundle.served_reason}" if bundle.served_reason else f"{bundle.served} serves"
    if mode == "always":
        return Decision(True, f"promotion forced (--promote always); {serving}", float(new["log_loss"]))
    if mode == "never":
        return Decision(False, f"promotion not asked for (--promote never); {serving}", float(new["log_loss"]))
    champion = load_champion()
    if champion is None:  # every company gets a model: the best candidate of its first training
        caveat = (f"; its calibration error {new['ece']:.3f} is above the limit {max_ece:.3f} for replacing a champion"
                  if new["ece"] > max_ece else "")
        return Decision(True, f"promoted: no champion yet, and {serving}{caveat}", float(new["log_loss"]))
    if new["ece"] > max_ece:
        return Decision(False, f"not promoted: its calibration error {new['ece']:.3f} is above the limit {max_ece:.3f} "
                               f"({serving})", float(new["log_loss"]))
    if tuple(champion.config.stages) != tuple(bundle.config.stages):
        return Decision(False, "not promoted: the champion uses other stages, so the two cannot be compared on one "
                               "holdout; promote it by hand (scoring promote VERSION) if that is intended",
                        float(new["log_loss"]))
    snapshots = holdout_snapshots(data, bundle.holdout_start, bundle.as_of, bundle.every_days)
    holdout = known_outcomes(snapshots, bundle.holdout_start, bundle.as_of)
    y = holdout["outcome"].eq("won").to_numpy()
    mine = scores(y, bundle.holdout_model.predict_proba(holdout))["log_loss"]
    theirs = scores(y, champion.holdout_model.predict_proba(_for(champion, holdout)))["log_loss"]
    caveat = ("" if champion.holdout_start <= bundle.holdout_start else
              " (the champion's holdout model saw part of this holdout, which favours it)")
    if mine > theirs - margin:
        return Decision(False, f"not promoted: holdout log-loss {mine:.4f} does not beat the champion's {theirs:.4f} by "
                               f"the margin {margin}{caveat}", mine, theirs)
    judged = _followed_losses(bundle, champion, snapshots)
    if judged is not None and judged[0] > judged[1]:
        mine_followed, theirs_followed, horizon = judged
        return Decision(False, f"not promoted: holdout log-loss {mine:.4f} beats the champion's {theirs:.4f} on the deals "
                               f"whose outcome became known{caveat}, but it predicts worse what the holdout's deals won "
                               f"within {horizon:.0f} days, deals still open counting as not won ({mine_followed:.4f}; "
                               f"the champion {theirs_followed:.4f})", mine, theirs)
    return Decision(True, f"promoted: holdout log-loss {mine:.4f} beats the champion's {theirs:.4f} by more than "
                          f"the margin {margin}{caveat}; {serving}", mine, theirs)


def _for(champion: ModelBundle, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the champion's features the new data lacks, as missing."""
    return rows.assign(**{f: np.nan for f in champion.features if f not in rows.columns})


def _followed_losses(bundle: ModelBundle, champion: ModelBundle, snapshots: pd.DataFrame
                     ) -> tuple[float, float, float] | None:
    """Log-loss of P(won within the judging horizon) of the new bundle's and the champion's holdout-time models on
    the holdout's rows followed that long, deals still open included, and the horizon (days); None when those rows
    hold too few wins or too few others."""
    cycle = bundle.scale.cycle_days_p90 if bundle.scale is not None else float("nan")
    horizon = judging_horizon(cycle, (bundle.as_of - bundle.holdout_start) / pd.Timedelta(days=1))
    rows, won = followed(snapshots, horizon)
    if not can_judge(won):
        return None
    days = np.array([horizon])
    mine = bundle.holdout_model.win_by(rows, days)[1][:, 0]
    theirs = champion.holdout_model.win_by(_for(champion, rows), days)[1][:, 0]
    return within_log_loss(won, mine), within_log_loss(won, theirs), horizon


def require_version(client: MlflowClient, name: str, version: str) -> None:
    """Refuse a version the registered model does not have."""
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ModelError(f"{name} has no version {version}") from None


def move_champion(client: MlflowClient, name: str, version: str, reason: str) -> dict[str, Any]:
    """Point ``champion`` at ``version`` and record the move (from, to, who, when, why)."""
    require_version(client, name, version)
    previous = champion_version(client, name)
    entry = {"from": previous, "to": str(version), "by": getpass.getuser(),
             "at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), "reason": reason,
             "changed": previous != str(version)}
    if not entry["changed"]:  # already the champion: nothing to move, nothing to record
        return entry
    client.set_registered_model_alias(name, CHAMPION, version)
    log = champion_log(client, name)[-(LOG_KEEP - 1):] + [entry]
    client.set_registered_model_tag(name, LOG_TAG, json.dumps(log))
    client.set_model_version_tag(name, version, "promoted", f"{entry['at']} by {entry['by']}: {reason}")
    return entry


def champion_log(client: MlflowClient, name: str) -> list[dict[str, Any]]:
    try:
        tags = client.get_registered_model(name).tags
    except MlflowException:
        raise ModelError(f"no registered model named {name}") from None
    return json.loads(tags.get(LOG_TAG, "[]"))


def rollback_target(client: MlflowClient, name: str) -> tuple[str, str]:
    """(current champion, the version it replaced when it was promoted): where a rollback goes. Rollbacks are
    not promotions, so a second rollback goes further back, not forth."""
    current = champion_version(client, name)
    for entry in reversed(champion_log(client, name)):
        if str(entry["to"]) == current and not str(entry.get("reason", "")).startswith("rollback"):
            if entry["from"]:
                return str(current), str(entry["from"])
            break
    raise ModelError(f"{name}: version {current} replaced no earlier champion, so there is none to roll back to; "
                     "nothing changed")


def rollback(client: MlflowClient, name: str) -> dict[str, Any]:
    """Move ``champion`` back to the version the current one replaced (:func:`rollback_target`)."""
    current, target = rollback_target(client, name)
    return move_champion(client, name, target, f"rollback from version {current}")


def export_champion(bundle: ModelBundle, name: str, version: str, export_dir: Path) -> Path:
    """Write the champion's bundle where the service falls back to it when the store is down, whole or not at
    all: after training, and after every promote and rollback (else a restart would serve a rejected one)."""
    path = bundle.save(Path(export_dir) / f"{name}.joblib")
    with atomic_path(path.with_suffix(".version")) as temporary:
        temporary.write_text(f"{version}\n", encoding="utf-8")
    return path
