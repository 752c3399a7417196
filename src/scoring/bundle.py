"""The trained bundle: everything scoring needs, in one object, saved with the versions that made it.

``train_bundle`` validates sufficiency, fits every model and baseline on what was known at the
holdout start, scores the holdout (snapshots after it, outcomes known by ``as_of``), then refits
everything on all that was known at ``as_of``. ``ModelBundle.score`` scores open deals; ``save`` /
``load`` keep library versions and refuse a mismatch (a LightGBM upgrade can change probabilities
silently: see shared/STACK.md).
"""
from __future__ import annotations

import functools
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import joblib
import numpy as np
import pandas as pd

from scoring.models.baselines import EmpiricalStageRateModel, FixedStageModel, LogisticRegressionModel, OdooNaiveBayesModel
from scoring.data.config import PipelineConfig
from scoring.data.contract import DealHistory
from scoring.features.dataset import Snapshotter, TrainingSet
from scoring.errors import DataError, ModelError
from scoring.evaluation.metrics import compare, reliability_table
from scoring.features.encoder import is_missing
from scoring.forecast.kpis import pipeline_kpis
from scoring.features.snapshots import open_deal_columns, snapshot_dates, take_snapshots
from scoring.data.summary import require_sufficient
from scoring.models.timing import StageTiming
from scoring.models.transitions import StageTransitionModel
from scoring.models.win import Trainer, WinModel, train_here

FORMAT_VERSION = 2
#: A deal is stale when it has been in its stage longer than this share of past stays there lasted.
STALE_QUANTILE = 0.9
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


class Factor(NamedTuple):
    """One reason behind a score: a feature, its value, and how much it moved the log-odds of winning."""

    feature: str
    value: str
    effect: float


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

    # -- scoring ---------------------------------------------------------------------------------
    # Files and API requests take one path: columns (name -> array) -> state -> model. ``score`` and
    # ``state`` take a validated DataFrame (``load_open_deals``); ``score_columns`` and
    # ``state_columns`` take the arrays directly, which spares a small request pandas' per-call cost.
    def state(self, deals: pd.DataFrame, as_of: pd.Timestamp) -> tuple[pd.DataFrame, list[str]]:
        """The snapshot rows of open deals (canonical columns) at ``as_of``, and warnings about their features."""
        rows, warnings = self.state_columns(_columns(deals), as_of)
        return pd.DataFrame(rows), warnings

    def state_columns(self, deals: Mapping[str, np.ndarray], as_of: pd.Timestamp) -> tuple[dict[str, np.ndarray], list[str]]:
        """:meth:`state` of deals given column by column; the rows come back as a mapping of arrays."""
        as_of = pd.Timestamp(as_of)
        early = np.asarray(deals["created_at"], dtype="datetime64[us]") > as_of.to_datetime64()
        if early.any():
            ids = np.asarray(deals["deal_id"], dtype=object)[early][:5]
            raise DataError(f"deal(s) {', '.join(map(str, ids))} were created after the as-of date {as_of.date()}; "
                            "score them at a later date")
        rows = open_deal_columns(deals, as_of, self.config, list(self.features))
        warnings = [f"feature {name!r}: value(s) never seen in training, scored as rare: {', '.join(values[:5])}"
                    for name, values in self.model.encoder_.unknown_values(rows).items()]
        absent = [f for f in self.features if f not in deals]
        if absent:
            warnings.append(f"feature column(s) {', '.join(absent)} missing: scored as unknown")
        return rows, warnings

    def score(self, deals: pd.DataFrame, as_of: pd.Timestamp | str, top: int = 3) -> tuple[pd.DataFrame, list[str]]:
        """Score open deals (canonical columns, as from ``load_open_deals``); return the scores (factors as
        text) and warnings."""
        scores, warnings = self.score_columns(_columns(deals), as_of, top)
        for side in ("factors_up", "factors_down"):
            scores[side] = [_factor_text(factors) for factors in scores[side]]
        return pd.DataFrame(scores), warnings

    def score_columns(self, deals: Mapping[str, np.ndarray], as_of: pd.Timestamp | str, top: int = 3,
                      period: str = "quarter") -> tuple[dict[str, Any], list[str]]:
        """:meth:`score` of deals given column by column; the scores come back as a mapping of arrays.

        Beside P(win): P(win within 90 days and by the end of the current ``period`` (month or quarter)),
        the expected close date, a stale flag (longer in the stage than 90 % of past stays there) and
        the ``top`` factors that raised and lowered the odds (lists of :class:`Factor`; ``top=0`` skips them,
        which makes large batches several times faster).
        """
        as_of = pd.Timestamp(as_of)
        rows, warnings = self.state_columns(deals, as_of)
        period_end = current_period_end(as_of, period)
        horizons = np.array([90.0, (period_end - as_of) / pd.Timedelta(days=1)])
        p, by, days_to_win, contributions = self.model.explain(rows, horizons, contributions=top > 0)
        fixed = self.models["fixed"].predict_proba(rows)
        amount = rows["amount"]
        close = as_of.to_datetime64().astype("datetime64[D]") + np.round(days_to_win).astype("timedelta64[D]")
        n = len(p)
        up, down = self.factors(rows, contributions, top) if contributions is not None else ([[]] * n, [[]] * n)
        out: dict[str, Any] = {
            "deal_id": rows["deal_id"],
            "stage": rows["stage"],
            "amount": amount,
            "win_probability": p,
            "fixed_probability": fixed,
            "expected_revenue": amount * p,
            "fixed_expected_revenue": amount * fixed,
            "stage_probability": self.stage_model.predict_proba(rows),
            "win_probability_90d": by[:, 0],
            "win_probability_this_period": by[:, 1],
            "period_end": np.full(len(p), period_end.to_datetime64().astype("datetime64[D]").astype("datetime64[us]")),
            "expected_close_date": close.astype("datetime64[us]"),
            "days_in_stage": np.round(rows["days_in_stage"], 1),
            "stale": rows["days_in_stage"] > self.stale_after_days()[rows["stage_index"]],
            "factors_up": up,
            "factors_down": down,
        }
        return out, warnings

    def stale_after_days(self) -> np.ndarray:
        """Per stage: the days in the stage beyond which a deal is stale (90 % of past stays there had ended).
        Worked out once per bundle (it was a tenth of the time to score one deal)."""
        days = self.__dict__.get("_stale_after_days")
        if days is None:
            days = np.array([self.stage_model.days_quantile(i, STALE_QUANTILE) for i in range(len(self.config.stages))])
            days.flags.writeable = False
            self.__dict__["_stale_after_days"] = days
        return days

    def factors(self, rows: Mapping[str, np.ndarray], values: np.ndarray,
                top: int) -> tuple[list[list[Factor]], list[list[Factor]]]:
        """Per row, the ``top`` features that raised and that lowered its odds (``values``: contributions)."""
        names = self.model.encoder_.names_
        order = np.argsort(values, axis=1)
        top = min(top, values.shape[1])
        highest, lowest = order[:, ::-1][:, :top].tolist(), order[:, :top].tolist()
        effects = values.tolist()  # Python floats: indexing them is far cheaper than indexing the array
        texts = _FactorTexts(rows)
        up = [[texts.factor(names[j], i, effects[i][j]) for j in highest[i] if effects[i][j] > 0.01]
              for i in range(len(effects))]
        down = [[texts.factor(names[j], i, effects[i][j]) for j in lowest[i] if effects[i][j] < -0.01]
                for i in range(len(effects))]
        return up, down

    def compile(self, cache_dir: str | Path | None = None) -> str | None:
        """Predict with the win model's booster compiled to native code (same probabilities, ~10x faster).

        Returns None, or a warning when it could not compile and keeps LightGBM's own (slower) prediction.
        """
        try:
            self.model.compile(cache_dir or compile_cache_dir())
        except Exception as exc:  # noqa: BLE001 - the same model still predicts, only slower
            return f"could not compile the model ({type(exc).__name__}: {exc}); predicting with LightGBM itself"
        return None

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


def compile_cache_dir() -> Path:
    """Where compiled boosters are cached: SCORING_CACHE_DIR, else the user's cache folder."""
    if os.environ.get("SCORING_CACHE_DIR"):
        return Path(os.environ["SCORING_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pipeline-scoring" / "compiled"


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in frame.columns}


class _FactorTexts:
    """Features of rows as factors: (feature, its value as text, effect on the log-odds). Each column is turned
    into Python values once, when a factor first needs it."""

    def __init__(self, rows: Mapping[str, np.ndarray]) -> None:
        self.rows = rows
        self.columns: dict[str, list[Any]] = {}

    def factor(self, name: str, i: int, effect: float) -> Factor:
        if name == "stage_index":
            name, value = "stage", str(self._column("stage")[i])
        elif name == "log_amount":
            name, value = "amount", f"{self._column('amount')[i]:,.0f}"
        elif name in ("days_in_stage", "age_days"):
            value = f"{self._column(name)[i]:.0f}"
        else:
            raw = self._column(name)[i] if name in self.rows else None
            value = "(missing)" if is_missing(raw) else str(raw)
        return Factor(name, value, round(effect, 4))

    def _column(self, name: str) -> list[Any]:
        if name not in self.columns:
            self.columns[name] = np.asarray(self.rows[name]).tolist()
        return self.columns[name]


def _factor_text(factors: list[Factor]) -> str:
    return "; ".join(f"{f.feature}={f.value} ({f.effect:+.2f})" for f in factors)


@functools.lru_cache(maxsize=256)  # a service asks for the same few dates again and again
def current_period_end(as_of: pd.Timestamp, period: str) -> pd.Timestamp:
    """The last moment of the calendar month or quarter that contains ``as_of``."""
    if period not in ("month", "quarter"):
        raise ValueError(f"period must be month or quarter, got {period!r}")
    month = as_of.month if period == "month" else (as_of.month - 1) // 3 * 3 + 3
    year, month = (as_of.year + 1, 1) if month == 12 else (as_of.year, month + 1)
    return pd.Timestamp(year, month, 1) - pd.Timedelta(microseconds=1)  # pd.Period(...).end_time, without its cost


class Engine(NamedTuple):
    """Where training's heavy steps run: the snapshots of the history and the win model's boosters. Here by
    default; ``dask_engine.dask_engine`` runs both on a Dask cluster with the same functions."""

    name: str = "local"
    snapshotter: Snapshotter = take_snapshots
    trainer: Trainer = train_here


LOCAL = Engine()


def train_bundle(data: DealHistory, as_of: pd.Timestamp | str | None = None, holdout_fraction: float = 0.2,
                 every_days: int = 14, seed: int = 0, progress: Progress | None = None,
                 win_params: dict[str, Any] | None = None, engine: Engine = LOCAL) -> ModelBundle:
    """Fit the model and every baseline, evaluate them on a time-based holdout, refit on everything."""
    say = progress or (lambda _: None)
    require_sufficient(data)
    as_of = pd.Timestamp(as_of) if as_of is not None else data_end(data)
    holdout_start = holdout_start_of(data, as_of, holdout_fraction)

    say(f"fitting on what was known at {holdout_start.date()} (holdout: {holdout_start.date()} to {as_of.date()})")
    early_models = fit_models(TrainingSet(data, holdout_start, every_days, engine.snapshotter), seed, say, win_params,
                              engine.trainer)
    holdout = holdout_rows(data, holdout_start, as_of, every_days, engine.snapshotter)
    y = holdout["outcome"].eq("won").to_numpy()
    predictions = {name: model.predict_proba(holdout) for name, model in early_models.items()}
    metrics = pd.concat([compare(y, predictions).assign(by="all"),
                         _grouped(y, predictions, holdout, "stage"),
                         *[_grouped(y, predictions, holdout, f) for f in ("segment",) if f in data.features]],
                        ignore_index=True)
    reliability = pd.concat([reliability_table(y, p).assign(model=name) for name, p in predictions.items()],
                            ignore_index=True)

    say(f"refitting on everything known at {as_of.date()}")
    training = TrainingSet(data, as_of, every_days, engine.snapshotter)
    models = fit_models(training, seed, say, win_params, engine.trainer)
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
                 every_days: int = 14, snapshotter: Snapshotter = take_snapshots) -> pd.DataFrame:
    """Snapshot rows after ``holdout_start`` whose outcome was known by ``as_of``: what models are judged on."""
    dates = snapshot_dates(holdout_start + pd.Timedelta(days=every_days), as_of, every_days)
    holdout = snapshotter(data, dates[dates > holdout_start], as_of).rows
    holdout = holdout[holdout["outcome"] != "open"]
    if holdout.empty or holdout["outcome"].nunique() < 2:
        raise DataError(f"the holdout ({holdout_start.date()} to {as_of.date()}) has no deals with both outcomes "
                        "known; give more history or a larger holdout")
    return holdout


def fit_models(training: TrainingSet, seed: int = 0, progress: Progress | None = None,
               win_params: dict[str, Any] | None = None, trainer: Trainer = train_here) -> dict[str, Any]:
    """The model and every baseline, fitted on ``training``; ``trainer`` fits the win model's boosters."""
    models = new_models(seed, win_params)
    for name, model in models.items():
        if progress:
            progress(f"  {name}")
        if isinstance(model, WinModel):
            model.fit(training, trainer)
        else:
            model.fit(training)
    return models


def _grouped(y: np.ndarray, predictions: dict[str, np.ndarray], rows: pd.DataFrame, column: str) -> pd.DataFrame:
    table = compare(y, predictions, rows[column].astype(str).reset_index(drop=True))
    return table[table["group"] != "all"].assign(by=column)
