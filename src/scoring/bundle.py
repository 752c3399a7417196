"""The trained bundle: the artefact that scoring needs, saved with the versions that made it.

It holds the fitted models (the win model, the stage-transition model and the baselines), which of them
serves (the best on the holdout) and why, their holdout metrics, the stage timing, the arrival model of new
deals and how periods move together (for the bookings forecast), the pipeline KPIs at training time and
provenance. ``save`` / ``load`` keep library versions and refuse a mismatch (a LightGBM
upgrade can change probabilities silently). Training makes it (:mod:`scoring.train`); :mod:`scoring.scores` scores deals with it.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import cast

import joblib
import pandas as pd

from scoring.atomic import atomic_path
from scoring.data.config import PipelineConfig
from scoring.data.signals import SignalSpec
from scoring.errors import ModelError
from scoring.features.scale import DataScale
from scoring.forecast.kpis import PipelineKpis
from scoring.forecast.uncertainty import PeriodEffects
from scoring.models.arrivals import ArrivalModel
from scoring.models.base import WinProbabilityModel
from scoring.models.dormancy import Dormancy, WithDormancy
from scoring.models.timing import StageTiming
from scoring.models.transitions import StageTransitionModel
from scoring.models.win import WinModel

FORMAT_VERSION = 8
#: Libraries whose version must match exactly when a bundle is loaded.
PINNED = ("lightgbm", "scikit-learn", "numpy")
RECORDED = (*PINNED, "pandas", "scipy", "pipeline-scoring")


def library_versions() -> dict[str, str]:
    out = {name: version(name) for name in RECORDED}
    out["python"] = platform.python_version()
    return out


@dataclass
class ModelBundle:
    """A trained model with its baselines, holdout metrics and provenance."""

    config: PipelineConfig
    features: dict[str, str]
    models: dict[str, WinProbabilityModel]
    metrics: pd.DataFrame
    reliability: pd.DataFrame
    as_of: pd.Timestamp
    holdout_start: pd.Timestamp
    data_digest: str
    n_deals: int
    trained_at: str
    timing: StageTiming
    kpis: PipelineKpis
    holdout_model: WinProbabilityModel  # the serving candidate fitted at holdout_start: re-scores a later holdout fairly
    arrivals: ArrivalModel  # deals not yet created: how many, how large, how fast they win
    effects: PeriodEffects  # how much whole periods move together (the forecast's range)
    dormancy: Dormancy  # per stage, the chance a deal in it so long ever leaves it (served P(win) counts it)
    served: str = WinModel.name  # which of ``models`` gives the answers (the best on the holdout)
    served_reason: str = ""
    calibration: dict[str, float] = field(default_factory=dict)  # the win model's holdout log-loss per calibration
    scale: DataScale | None = None  # the data's scale the snapshots and the win model followed
    every_days: int = 14  # the snapshot spacing (a later holdout is taken the same way)
    signals: SignalSpec = field(default_factory=SignalSpec)  # the features derived from field history and activities
    versions: dict[str, str] = field(default_factory=library_versions)
    format_version: int = FORMAT_VERSION

    @property
    def model(self) -> WinModel:
        """The win model (always trained; it serves unless a candidate beat it on the holdout)."""
        return cast(WinModel, self.models[WinModel.name])

    @property
    def served_model(self) -> WinProbabilityModel:
        """The model whose P(win), timing and factors the answers give: :attr:`served`, its P(win) times the chance
        the deal ever leaves its stage (:mod:`scoring.models.dormancy`)."""
        return WithDormancy(self.models[self.served], self.dormancy)

    @property
    def stage_model(self) -> StageTransitionModel:
        return cast(StageTransitionModel, self.models[StageTransitionModel.name])

    def compile(self, cache_dir: str | Path) -> str | None:
        """Predict with the win model's booster compiled to native code (same probabilities, ~10x faster).

        Returns None, or a warning when it could not compile and keeps LightGBM's own (slower) prediction.
        """
        try:
            self.model.compile(cache_dir)
        except Exception as exc:  # noqa: BLE001 - the same model still predicts, only slower
            return f"could not compile the model ({type(exc).__name__}: {exc}); predicting with LightGBM itself"
        return None

    def stage_table(self) -> pd.DataFrame:
        """The learned stage table beside the fixed percentages, and per stage the share of its stays that never
        end (deals left there for good; the learned P(win) is that of the deals that leave)."""
        return self.stage_model.table_frame().assign(never_leave_share=self.dormancy.never_leave_shares)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the bundle whole or not at all: a kill mid-write leaves the previous file as it was."""
        path = Path(path)
        with atomic_path(path) as temporary:
            joblib.dump(self, temporary, compress=3)
        return path

    @staticmethod
    def load(path: str | Path) -> ModelBundle:
        """Load a bundle, refusing one made with other versions of the libraries that shape its probabilities."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no model bundle there")
        try:
            bundle = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: say what it is, not how unpickling failed
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
