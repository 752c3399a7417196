"""The MLflow tracking store: where it is and how it is opened safely.

The default is an embedded SQLite store, ``mlflow.db`` in the working directory, with artifacts
beside it in ``mlartifacts/``; ``MLFLOW_TRACKING_URI`` names another (PostgreSQL for teams:
``postgresql://user:password@host/db``), and ``SCORING_ARTIFACT_ROOT`` where artifacts of new
experiments go. A new SQLite store opened by several processes at once can be corrupted for good
(shared/STACK.md trap 6), so its creation is serialised by a file lock.
"""
from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock
from mlflow.tracking import MlflowClient

EXPERIMENT = "pipeline-scoring"
DEFAULT_DB = "mlflow.db"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def artifact_root(uri: str) -> str | None:
    """Where new experiments keep artifacts: ``SCORING_ARTIFACT_ROOT``, else ``mlartifacts`` beside a SQLite file."""
    if os.environ.get("SCORING_ARTIFACT_ROOT"):
        return os.environ["SCORING_ARTIFACT_ROOT"]
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return None


def open_store(uri: str | None = None, experiment: str = EXPERIMENT) -> tuple[MlflowClient, str]:
    """A client on the store (created if new, under a lock for SQLite) and the id of ``experiment``."""
    uri = uri or tracking_uri()
    lock = None
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=120)
    if lock is not None:
        with lock:
            return _open(uri, experiment)
    return _open(uri, experiment)


def _open(uri: str, experiment: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return client, found.experiment_id
    return client, client.create_experiment(experiment, artifact_location=artifact_root(uri))
