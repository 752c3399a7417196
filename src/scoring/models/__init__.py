"""The models, all behind one interface (:mod:`scoring.models.base`): the win model, the stage-transition model
and the baselines. :data:`MODELS` lists them in the order tables show them; each class's ``name`` is how
metrics, bundles and reports refer to it."""
from __future__ import annotations

from scoring.models.base import Model, StageTimedMixin, WinProbabilityModel
from scoring.models.baselines import (
    EmpiricalStageRateModel,
    FixedStageModel,
    LogisticRegressionModel,
    OdooNaiveBayesModel,
)
from scoring.models.transitions import StageTransitionModel
from scoring.models.win import WinModel

MODELS: tuple[type[WinProbabilityModel], ...] = (WinModel, StageTransitionModel, FixedStageModel,
                                                 EmpiricalStageRateModel, OdooNaiveBayesModel, LogisticRegressionModel)

__all__ = ["MODELS", "EmpiricalStageRateModel", "FixedStageModel", "LogisticRegressionModel", "Model",
           "OdooNaiveBayesModel", "StageTimedMixin", "StageTransitionModel", "WinModel", "WinProbabilityModel"]
