"""GET /v1/model (the model card), /v1/stages (the learned stage table), /v1/pipeline/kpis."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter

from scoring.evaluation.metrics import calibration_error
from scoring.serving.dependencies import ModelDep
from scoring.serving.routes.common import READ_ERRORS
from scoring.serving.schemas import KpisResponse, ModelCard, StagesResponse

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", responses=READ_ERRORS)
def model_card(model: ModelDep) -> ModelCard:
    """Which model answers (the registry's version, and which of its candidates serves and why), when and on what
    data it was trained, and its holdout metrics beside the baselines."""
    bundle = model.bundle
    overall = bundle.metrics[bundle.metrics["by"] == "all"].drop(columns=["by", "group"], errors="ignore")
    reliability = bundle.reliability[bundle.reliability["model"] == bundle.served]
    return _clean({
        "name": model.name, "version": model.version, "source": model.source, "loaded_at": model.loaded_at,
        "detail": model.detail,
        "serving": {"model": bundle.served, "reason": bundle.served_reason,
                    "calibration": getattr(bundle.model.calibrator_, "kind", "none"),
                    "blend_weight": bundle.model.blend_weight_, "blend_with": bundle.model.prior_name_,
                    "calibration_holdout_log_loss": bundle.calibration, "dormancy": bundle.dormancy.summary()},
        "trained_at": bundle.trained_at,
        "data": {"deals": bundle.n_deals, "as_of": str(bundle.as_of.date()), "digest": bundle.data_digest,
                 "holdout_start": str(bundle.holdout_start.date()), "features": bundle.features,
                 "stages": list(bundle.config.stages)},
        "holdout_metrics": overall.to_dict(orient="records"),
        "calibration_error": calibration_error(reliability),
        "libraries": bundle.versions,
    })


@router.get("/stages", responses=READ_ERRORS)
def stages(model: ModelDep) -> StagesResponse:
    """Per stage: the learned P(win), the fixed percentage, where deals go next and how long they stay."""
    table = model.bundle.stage_table()
    return _clean({"model": model.ref, "stages": table.to_dict(orient="records")})


@router.get("/pipeline/kpis", responses=READ_ERRORS)
def kpis(model: ModelDep) -> KpisResponse:
    """The classic pipeline KPIs of the training data at its as-of date."""
    return _clean({"model": model.ref, **model.bundle.kpis.to_dict()})


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
