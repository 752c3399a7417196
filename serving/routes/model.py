"""GET /v1/model (the model card), /v1/stages (the learned stage table), /v1/pipeline/kpis."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from scoring.evaluation.metrics import calibration_error
from scoring.serving.routes.common import ERRORS, json_response, model_of

router = APIRouter(prefix="/v1", tags=["model"])


@router.get("/model", responses=ERRORS)
def model_card(request: Request) -> Response:
    """Which model answers, when and on what data it was trained, and its holdout metrics beside the baselines."""
    model = model_of(request)
    bundle = model.bundle
    overall = bundle.metrics[bundle.metrics["by"] == "all"].drop(columns=["by", "group"], errors="ignore")
    reliability = bundle.reliability[bundle.reliability["model"] == "model"]
    return json_response(_clean({
        "name": model.name, "version": model.version, "source": model.source, "loaded_at": model.loaded_at,
        "detail": model.detail,
        "trained_at": bundle.trained_at,
        "data": {"deals": bundle.n_deals, "as_of": str(bundle.as_of.date()), "digest": bundle.data_digest,
                 "holdout_start": str(bundle.holdout_start.date()), "features": bundle.features,
                 "stages": list(bundle.config.stages)},
        "holdout_metrics": overall.to_dict(orient="records"),
        "calibration_error": calibration_error(reliability),
        "libraries": bundle.versions,
    }))


@router.get("/stages", responses=ERRORS)
def stages(request: Request) -> Response:
    """Per stage: the learned P(win), the fixed percentage, where deals go next and how long they stay."""
    model = model_of(request)
    table = model.bundle.stage_table()
    return json_response(_clean({"model": model.ref, "stages": table.to_dict(orient="records")}))


@router.get("/pipeline/kpis", responses=ERRORS)
def kpis(request: Request) -> Response:
    """The classic pipeline KPIs of the training data at its as-of date."""
    model = model_of(request)
    return json_response(_clean({"model": model.ref, **model.bundle.kpis}))


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
