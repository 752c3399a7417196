"""The trained bundle: everything scoring needs, in one object, saved with the versions that made it.

``train_bundle`` validates sufficiency, fits every model and baseline on what was known at the
holdout start, scores the holdout (snapshots after it, outcomes known by ``as_of``), then refits
everything on all that was known at ``as_of``. ``ModelBundle.score`` scores open deals; ``save`` /
``load`` keep library versions and refuse a mismatch (a LightGBM upgrade can change probabilities
silently: see shared/STACK.md).
"""
from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from scoring.baselines import EmpiricalStageRateModel, FixedStageModel, LogisticRegressionModel, OdooNaiveBayesModel
from scoring.config import PipelineConfig
from scoring.contract import DealHistory
from scoring.dataset import TrainingSet
from scoring.errors import DataError, ModelError
from scoring.evaluation import compare, reliability_table
from scoring.kpis import pipeline_kpis
from scoring.snapshots import open_deal_state, snapshot_dates, take_snapshots
from scoring.summary import require_sufficient
from scoring.timing import StageTiming
from scoring.transitions import StageTransitionModel
from scoring.winmodel import WinModel

FORMAT_VERSION = 2
#: Libraries whose version must match exactly when a bundle is loaded.
PINNED = ("lightgbm", "scikit-learn", "numpy")
RECORDED = (*PINNED, "pandas", "scipy", "pipeline-scoring")
Progress = Callable[[str], None]


def library_versions() -> dict[str, str]:
    out = {name: version(name) for name in RECORDED}
    out["python"] = platform.python_version()
    return out


def data_end(data: DealHistory) -> pd.Timestamp:
    """The latest date in the data: the natural 'as of' of an export."""
    deals = data.deals
    dates = [deals["created_at"].max(), deals["closed_at"].max(), deals["stage_entered_at"].max()]
    if data.has_history:
        dates.append(data.history["entered_at"].max())
    return max(d for d in dates if pd.notna(d)).normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def new_models(seed: int = 0, win_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fresh, unfitted instances of the model (with ``win_params`` if given) and every baseline, by name."""
    models: list[Any] = [WinModel(random_state=seed, **(win_params or {})), StageTransitionModel(), FixedStageModel(),
                         EmpiricalStageRateModel(), OdooNaiveBayesModel(), LogisticRegressionModel()]
    return {m.name: m for m in models}


@dataclass
class ModelBundle:
    """A trained model with its baselines, holdout metrics and provenance."""

    config: PipelineConfig
    features: dict[str, str]
    models: dict[str, Any]
    metrics: pd.DataFrame
    reliability: pd.DataFrame
    as_of: pd.Timestamp
    holdout_start: pd.Timestamp
    data_digest: str
    n_deals: int
    trained_at: str
    timing: StageTiming
    kpis: dict[str, Any]
    holdout_model: WinModel  # the win model fitted at holdout_start: re-scores a later holdout fairly
    versions: dict[str, str] = field(default_factory=library_versions)
    format_version: int = FORMAT_VERSION

    @property
    def model(self) -> WinModel:
        return self.models["model"]

    @property
    def stage_model(self) -> StageTransitionModel:
        return self.models["stage_transitions"]

    # -- scoring ----------------------------------------------------------------------------------
    def state(self, deals: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, list[str]]:
        """The snapshot rows of open deals (canonical columns) at ``as_of``, and warnings about their features."""
        early = deals["created_at"] > as_of
        if early.any():
            raise DataError(f"deal(s) {', '.join(deals.loc[early, 'deal_id'].astype(str).head(5))} were created after "
                            f"the as-of date {as_of.date()}; score them at a later date")
        rows = open_deal_state(deals, as_of, self.config, list(self.features))
        warnings = [f"feature {name!r}: value(s) never seen in training, scored as rare: {', '.join(values[:5])}"
                    for name, values in self.model.encoder_.unknown_values(rows).items()]
        absent = [f for f in self.features if f not in deals.columns]
        if absent:
            warnings.append(f"feature column(s) {', '.join(absent)} missing: scored as unknown")
        return rows, warnings

    def score(self, deals: pd.DataFrame, as_of: pd.Timestamp | str, top: int = 3) -> tuple[pd.DataFrame, list[str]]:
        """Score open deals (canonical columns, as from ``load_open_deals``); return the scores and warnings."""
        as_of = pd.Timestamp(as_of)
        rows, warnings = self.state(deals, as_of)
        p, p_90d, days_to_win = self.model.outlook(rows, 90.0)
        fixed = self.models["fixed"].predict_proba(rows)
        amount = rows["amount"].to_numpy(dtype=float)
        out = pd.DataFrame({
            "deal_id": rows["deal_id"],
            "stage": rows["stage"],
            "amount": amount,
            "win_probability": p,
            "fixed_probability": fixed,
            "expected_revenue": amount * p,
            "fixed_expected_revenue": amount * fixed,
            "stage_probability": self.stage_model.predict_proba(rows),
            "win_probability_90d": p_90d,
            "expected_close_date": (as_of + pd.to_timedelta(np.round(days_to_win), unit="D")).normalize(),
            "days_in_stage": rows["days_in_stage"].round(1),
        })
        up, down = self._factors(rows, top)
        out["factors_up"], out["factors_down"] = up, down
        return out, warnings

    def _factors(self, rows: pd.DataFrame, top: int) -> tuple[list[str], list[str]]:
        contrib = self.model.contributions(rows)
        names = list(contrib.columns)
        values = contrib.to_numpy()
        up, down = [], []
        for i in range(len(rows)):
            row = rows.iloc[i]
            order = np.argsort(values[i])

            def describe(j: int) -> str:
                return f"{self._label(names[j], row)} ({values[i, j]:+.2f})"

            up.append("; ".join(describe(j) for j in order[::-1][:top] if values[i, j] > 0.01))
            down.append("; ".join(describe(j) for j in order[:top] if values[i, j] < -0.01))
        return up, down

    @staticmethod
    def _label(name: str, row: pd.Series) -> str:
        if name == "stage_index":
            return f"stage={row['stage']}"
        if name == "log_amount":
            return f"amount={row['amount']:,.0f}"
        if name in ("days_in_stage", "age_days"):
            return f"{name}={row[name]:.0f}"
        return f"{name}={row.get(name)}"

    def stage_table(self) -> pd.DataFrame:
        """The learned stage table beside the fixed percentages."""
        return self.stage_model.table_frame()

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path, compress=3)
        return path

    @staticmethod
    def load(path: str | Path) -> ModelBundle:
        """Load a bundle, refusing one made with other versions of the libraries that shape its probabilities."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no model bundle there")
        try:
            bundle = joblib.load(path)
        except Exception as exc:  # a truncated or foreign file: say what it is, not how unpickling failed
            raise ModelError(f"{path}: not a readable model bundle ({type(exc).__name__}: {exc})") from None
        if not isinstance(bundle, ModelBundle) or bundle.format_version != FORMAT_VERSION:
            raise ModelError(f"{path}: not a pipeline-scoring model bundle of format {FORMAT_VERSION}")
        here = library_versions()
        wrong = [f"{lib} {bundle.versions.get(lib)} (this machine has {here[lib]})"
                 for lib in PINNED if bundle.versions.get(lib) != here[lib]]
        if wrong:
            raise ModelError(f"{path} was trained with {', '.join(wrong)}; its probabilities would silently differ "
                             "here. Retrain it, or install the versions it was trained with.")
        return bundle


def train_bundle(data: DealHistory, as_of: pd.Timestamp | str | None = None, holdout_fraction: float = 0.2,
                 every_days: int = 14, seed: int = 0, progress: Progress | None = None,
                 win_params: dict[str, Any] | None = None) -> ModelBundle:
    """Fit the model and every baseline, evaluate them on a time-based holdout, refit on everything."""
    say = progress or (lambda _: None)
    require_sufficient(data)
    as_of = pd.Timestamp(as_of) if as_of is not None else data_end(data)
    holdout_start = holdout_start_of(data, as_of, holdout_fraction)

    say(f"fitting on what was known at {holdout_start.date()} (holdout: {holdout_start.date()} to {as_of.date()})")
    early_models = fit_models(TrainingSet(data, holdout_start, every_days), seed, say, win_params)
    holdout = holdout_rows(data, holdout_start, as_of, every_days)
    y = holdout["outcome"].eq("won").to_numpy()
    predictions = {name: model.predict_proba(holdout) for name, model in early_models.items()}
    metrics = pd.concat([compare(y, predictions).assign(by="all"),
                         _grouped(y, predictions, holdout, "stage"),
                         *[_grouped(y, predictions, holdout, f) for f in ("segment",) if f in data.features]],
                        ignore_index=True)
    reliability = pd.concat([reliability_table(y, p).assign(model=name) for name, p in predictions.items()],
                            ignore_index=True)

    say(f"refitting on everything known at {as_of.date()}")
    training = TrainingSet(data, as_of, every_days)
    models = fit_models(training, seed, say, win_params)
    return ModelBundle(config=data.config, features=dict(data.features), models=models, metrics=metrics,
                       reliability=reliability, as_of=as_of, holdout_start=holdout_start,
                       data_digest=data.digest(), n_deals=len(data.deals),
                       trained_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                       timing=StageTiming().fit(training), kpis=pipeline_kpis(data, as_of).to_dict(),
                       holdout_model=early_models["model"])


def holdout_start_of(data: DealHistory, as_of: pd.Timestamp, holdout_fraction: float) -> pd.Timestamp:
    """The start of the holdout: the last ``holdout_fraction`` of the time from the first deal to ``as_of``."""
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    start = data.deals["created_at"].min()
    return (as_of - (as_of - start) * holdout_fraction).normalize()


def holdout_rows(data: DealHistory, holdout_start: pd.Timestamp, as_of: pd.Timestamp,
                 every_days: int = 14) -> pd.DataFrame:
    """Snapshot rows after ``holdout_start`` whose outcome was known by ``as_of``: what models are judged on."""
    dates = snapshot_dates(holdout_start + pd.Timedelta(days=every_days), as_of, every_days)
    holdout = take_snapshots(data, dates[dates > holdout_start], as_of).rows
    holdout = holdout[holdout["outcome"] != "open"]
    if holdout.empty or holdout["outcome"].nunique() < 2:
        raise DataError(f"the holdout ({holdout_start.date()} to {as_of.date()}) has no deals with both outcomes "
                        "known; give more history or a larger holdout")
    return holdout


def fit_models(training: TrainingSet, seed: int = 0, progress: Progress | None = None,
               win_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model and every baseline, fitted on ``training``."""
    models = new_models(seed, win_params)
    for name, model in models.items():
        if progress:
            progress(f"  {name}")
        model.fit(training)
    return models


def _grouped(y: np.ndarray, predictions: dict[str, np.ndarray], rows: pd.DataFrame, column: str) -> pd.DataFrame:
    table = compare(y, predictions, rows[column].astype(str).reset_index(drop=True))
    return table[table["group"] != "all"].assign(by=column)
