"""The MLflow tracking store and registry as training and serving both need them: where the store is, how
it is opened safely, the model names and aliases, and how a bundle is loaded from a URI or a file.

The default is an embedded SQLite store, ``mlflow.db`` in the working directory, with artifacts
beside it in ``mlartifacts/``; ``MLFLOW_TRACKING_URI`` names another (PostgreSQL for teams:
``postgresql://user:password@host/db``), and ``SCORING_ARTIFACT_ROOT`` where artifacts of new
experiments go. A new SQLite store opened by several processes at once can be corrupted for good
(seen with MLflow 3.17), so its creation is serialised by a file lock.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from scoring.errors import ModelError

if TYPE_CHECKING:  # MLflow is imported where used: the names here are read by commands that start fast
    from mlflow.tracking import MlflowClient

    from scoring.bundle import ModelBundle

EXPERIMENT = "pipeline-scoring"
DEFAULT_DB = "mlflow.db"
CHAMPION, CHALLENGER = "champion", "challenger"
#: The registered model's name unless told otherwise, and the model that scores by default.
DEFAULT_NAME = "pipeline-scoring"
#: Promotion under ``--promote auto``: the holdout log-loss by which a new version must beat the champion, and
#: the largest holdout calibration error (ECE) a version may have.
PROMOTION_MARGIN = 0.001
MAX_ECE = 0.05
DEFAULT_URI = f"models:/{DEFAULT_NAME}@{CHAMPION}"


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
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return client, found.experiment_id
    return client, client.create_experiment(experiment, artifact_location=artifact_root(uri))


def require_store(uri: str) -> None:
    """Refuse a SQLite store that does not exist: reading one must not create it (a mistyped path would
    otherwise become an empty store, silently, with its folders). Only training creates a store."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ModelError(f"no tracking store at {path}: train a model first (`scoring train` creates the store), "
                             "or point MLFLOW_TRACKING_URI at an existing one")


def load_bundle(ref: str | Path, store: str | None = None) -> tuple[ModelBundle, dict[str, str]]:
    """A bundle from a file path or an MLflow model URI (``models:/name@alias``, ``models:/name/3``, ``runs:/...``).

    URIs are resolved in ``store`` (default: the tracking store of :func:`scoring.tracking.tracking_uri`).
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from scoring.bundle import ModelBundle

    text = str(ref)
    if ":/" not in text:  # not a URI (models:/, runs:/, file://...): a bundle file
        bundle = ModelBundle.load(text)
        return bundle, {"name": Path(text).stem, "version": f"file trained {bundle.trained_at}"}
    uri = store or tracking_uri()  # resolved now: MLFLOW_TRACKING_URI may have changed since MLflow last looked
    require_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    name, version = _registered(client, text)
    try:
        model = mlflow.pyfunc.load_model(text)
    except (MlflowException, OSError) as exc:
        raise ModelError(f"could not load the model {text}: {str(exc).rstrip('.')}. Train one with `scoring train` "
                         "(it registers the champion), or give --model a bundle file") from None
    info = {"name": name or text, "version": version}
    if name and version:
        tags = client.get_model_version(name, version).tags
        decision = tags.get(DECISION_TAG, "")
        if tags.get(PROMOTED_TAG) == "false" and champion_version(client, name) != version:
            info["warning"] = f"{name} version {version} was not made the champion when trained: {decision}"
    return model.unwrap_python_model().bundle, info


#: The tags on each registered version with training's promotion decision ("true"/"false") and its reason.
PROMOTED_TAG, DECISION_TAG = "promoted_when_trained", "promotion_decision"


def _registered(client: MlflowClient, uri: str) -> tuple[str, str]:
    """(name, version) of a ``models:/`` URI, ("", "") for other URIs. An alias that names no version is
    refused saying what happened: no model of that name, or its versions and why none is the champion."""
    from mlflow.exceptions import MlflowException

    if not uri.startswith("models:/"):
        return "", ""
    name, _, alias = uri.removeprefix("models:/").partition("@")
    if not alias:
        return name.split("/")[0], name.split("/")[-1] if "/" in name else ""
    try:
        return name, str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        pass
    try:
        versions = list(client.search_model_versions(f"name = '{name}'"))
    except MlflowException:
        versions = []
    if not versions:
        raise ModelError(f"no model named {name} in the tracking store: train one with `scoring train` (its first "
                         "version becomes the champion), or give --model a bundle file")
    latest = max(versions, key=lambda v: int(v.version))
    decision = latest.tags.get(DECISION_TAG, "no promotion decision recorded")
    raise ModelError(f"{name} has no version with the alias {alias!r}: its latest, version {latest.version}, was trained "
                     f"and {decision}. Promote one (`scoring promote {latest.version}`), or score with "
                     f"--model models:/{name}/{latest.version}")


def champion_version(client: MlflowClient, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None
