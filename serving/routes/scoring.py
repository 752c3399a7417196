"""POST /v1/score and POST /v1/forecast."""
from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from scoring.forecast import forecast
from serving.deals import deal_columns
from serving.holder import LoadedModel
from serving.routes.common import ERRORS, body_schema, current_model, json_response, parse_body
from serving.schemas import ForecastRequest, ScoreRequest, ScoreResponse
from serving.security import require_key

Request_ = TypeVar("Request_", ScoreRequest, ForecastRequest)

router = APIRouter(prefix="/v1", tags=["scoring"], dependencies=[Depends(require_key)])


@router.post("/score", response_model=ScoreResponse, responses=ERRORS, openapi_extra=body_schema(ScoreRequest))
async def score(request: Request, model: LoadedModel = Depends(current_model)) -> Response:
    """Win probability, expected revenue, timing, stale flag and top factors of each open deal,
    beside the fixed stage percentage. Body: ``ScoreRequest``."""
    return await run_in_threadpool(_score, await request.body(), request.app.state, model)


@router.post("/forecast", responses=ERRORS, openapi_extra=body_schema(ForecastRequest))
async def forecast_deals(request: Request, model: LoadedModel = Depends(current_model)) -> Response:
    """Probability-weighted won revenue per calendar month or quarter with P10/P50/P90, and the total,
    beside the fixed-percentage forecast (the forecast JSON of the SPEC, section 5). Body: ``ForecastRequest``."""
    return await run_in_threadpool(_forecast, await request.body(), request.app.state, model)


def _score(raw: bytes, state: State, model: LoadedModel) -> Response:
    """The CPU work of /v1/score, in the thread pool: validation, columns, the model, JSON."""
    body, as_of, columns, warnings = _request(ScoreRequest, raw, state, model)
    scores, more = model.bundle.score_columns(columns, as_of, top=body.top_factors, period=body.period)
    state.metrics.deals.labels("/v1/score").inc(len(body.deals))
    return json_response({"model": {"name": model.name, "version": model.version}, "as_of": as_of.isoformat(),
                         "scores": _score_dicts(scores), "warnings": warnings + more})


def _forecast(raw: bytes, state: State, model: LoadedModel) -> Response:
    body, as_of, columns, warnings = _request(ForecastRequest, raw, state, model)
    result = forecast(model.bundle, pd.DataFrame(columns), as_of, body.period, body.periods,
                      model_info={"name": model.name, "version": model.version})
    result.warnings[:0] = warnings
    state.metrics.deals.labels("/v1/forecast").inc(len(body.deals))
    return json_response(result.to_json())


def _request(kind: type[Request_], raw: bytes, state: State, model: LoadedModel
             ) -> tuple[Request_, pd.Timestamp, dict[str, np.ndarray], list[str]]:
    """The validated body, its as_of, its deals as the model's columns and the warnings about them."""
    body = parse_body(kind, raw)
    _check_size(body.deals, state)
    as_of = _as_of(body.as_of)
    columns, warnings = deal_columns(body.deals, model.bundle, as_of)
    return body, as_of, columns, warnings


def _check_size(deals: list[Any], state: State) -> None:
    limit = state.settings.max_deals
    if len(deals) > limit:
        raise HTTPException(413, f"deals: {len(deals)} deals in one request; the limit is {limit}. "
                                 "Send them in batches.")


def _as_of(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value) if value is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")


def _score_dicts(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of scores -> one JSON object per deal."""
    def day(values: np.ndarray) -> list[str]:
        return np.datetime_as_string(values.astype("datetime64[D]")).tolist()

    floats = {k: np.asarray(scores[k], dtype=float).tolist()  # full precision: the same numbers as the CLI
              for k in ("win_probability", "fixed_probability", "stage_probability", "win_probability_90d",
                        "win_probability_this_period")}
    money = {k: np.round(np.asarray(scores[k], dtype=float), 2).tolist()
             for k in ("expected_revenue", "fixed_expected_revenue")}
    close, period_end = day(scores["expected_close_date"]), day(scores["period_end"])
    days, stale = np.asarray(scores["days_in_stage"], float).tolist(), np.asarray(scores["stale"]).tolist()
    out = []
    for i, deal_id in enumerate(scores["deal_id"]):
        out.append({
            "deal_id": deal_id, "stage": scores["stage"][i],
            "win_probability": floats["win_probability"][i], "fixed_probability": floats["fixed_probability"][i],
            "expected_revenue": money["expected_revenue"][i], "fixed_expected_revenue": money["fixed_expected_revenue"][i],
            "stage_probability": floats["stage_probability"][i], "days_in_stage": days[i], "stale": stale[i],
            "timing": {"win_probability_this_period": floats["win_probability_this_period"][i],
                       "period_end": period_end[i], "win_probability_90d": floats["win_probability_90d"][i],
                       "expected_close_date": close[i]},
            "factors_up": [f._asdict() for f in scores["factors_up"][i]],
            "factors_down": [f._asdict() for f in scores["factors_down"][i]],
        })
    return out
