"""POST /v1/score and POST /v1/forecast."""
from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.datastructures import State

from scoring.forecast.revenue import forecast
from scoring.scores import score_columns
from scoring.serving.deals import deal_columns
from scoring.serving.holder import LoadedModel
from scoring.serving.routes.common import ERRORS, body_schema, json_response, model_of, off_loop, parse_body
from scoring.serving.schemas import ForecastRequest, ScoreRequest, ScoreResponse

Request_ = TypeVar("Request_", ScoreRequest, ForecastRequest)

router = APIRouter(prefix="/v1", tags=["scoring"])


@router.post("/score", response_model=ScoreResponse, responses=ERRORS, openapi_extra=body_schema(ScoreRequest))
async def score(request: Request) -> Response:
    """Win probability, expected revenue, timing, stale flag and top factors of each open deal,
    beside the fixed stage percentage. Body: ``ScoreRequest``."""
    model = model_of(request)
    return await off_loop(request, _score, await request.body(), request.app.state, model)


@router.post("/forecast", responses=ERRORS, openapi_extra=body_schema(ForecastRequest))
async def forecast_deals(request: Request) -> Response:
    """Probability-weighted won revenue per calendar month or quarter with P10/P50/P90, and the total,
    beside the fixed-percentage forecast (the forecast JSON of the SPEC, section 5). Body: ``ForecastRequest``."""
    model = model_of(request)
    return await off_loop(request, _forecast, await request.body(), request.app.state, model)


def _score(raw: bytes, state: State, model: LoadedModel) -> Response:
    """The CPU work of /v1/score, in the thread pool: validation, columns, the model, JSON."""
    body, as_of, columns, warnings = _request(ScoreRequest, raw, state, model)
    scores, more = score_columns(model.bundle, columns, as_of, top=body.top_factors, period=body.period)
    state.metrics.scored("/v1/score", len(body.deals))
    return json_response({"model": model.ref, "as_of": as_of.isoformat(),
                         "scores": _score_dicts(scores), "warnings": warnings + more})


def _forecast(raw: bytes, state: State, model: LoadedModel) -> Response:
    body, as_of, columns, warnings = _request(ForecastRequest, raw, state, model)
    result = forecast(model.bundle, pd.DataFrame(columns), as_of, body.period, body.periods,
                      model_info=model.ref)
    result.warnings[:0] = warnings
    state.metrics.scored("/v1/forecast", len(body.deals))
    return json_response(result.to_json())


def _request(kind: type[Request_], raw: bytes, state: State, model: LoadedModel
             ) -> tuple[Request_, pd.Timestamp, dict[str, np.ndarray], list[str]]:
    """The validated body, its as_of, its deals as the model's columns and the warnings about them."""
    body = parse_body(kind, raw)
    _check_size(body.deals, state)
    as_of = _as_of(body.as_of)
    return body, as_of, deal_columns(body.deals), []


def _check_size(deals: list[Any], state: State) -> None:
    limit = state.settings.max_deals
    if len(deals) > limit:
        raise HTTPException(413, f"deals: {len(deals)} deals in one request; the limit is {limit}. "
                                 "Send them in batches.")


def _as_of(value: Any) -> pd.Timestamp:
    return pd.Timestamp(value) if value is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")


def _score_dicts(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of scores -> one JSON object per deal (numbers at full precision: the same as the CLI's)."""
    def floats(name: str) -> list[float]:
        return np.asarray(scores[name], dtype=float).tolist()

    def days(name: str) -> list[date]:  # orjson writes dates as ISO text, several times faster than numpy
        return np.asarray(scores[name]).astype("datetime64[D]").tolist()

    def money(name: str) -> list[float]:
        return np.round(np.asarray(scores[name], dtype=float), 2).tolist()

    def factors(name: str) -> list[list[dict[str, Any]]]:  # (an empty row spares a list comprehension's call)
        return [[{"feature": f.feature, "value": f.value, "effect": f.effect} for f in row] if row else []
                for row in scores[name]]

    columns = zip(scores["deal_id"], scores["stage"], floats("win_probability"), floats("fixed_probability"),
                  money("expected_revenue"), money("fixed_expected_revenue"), floats("stage_probability"),
                  floats("days_in_stage"), np.asarray(scores["stale"]).tolist(), floats("win_probability_this_period"),
                  days("period_end"), floats("win_probability_90d"), days("expected_close_date"),
                  factors("factors_up"), factors("factors_down"))
    return [{"deal_id": deal_id, "stage": stage, "win_probability": p, "fixed_probability": fixed,
             "expected_revenue": revenue, "fixed_expected_revenue": fixed_revenue, "stage_probability": stage_p,
             "days_in_stage": in_stage, "stale": stale,
             "timing": {"win_probability_this_period": this_period, "period_end": period_end,
                        "win_probability_90d": p90, "expected_close_date": close},
             "factors_up": up, "factors_down": down}
            for (deal_id, stage, p, fixed, revenue, fixed_revenue, stage_p, in_stage, stale, this_period, period_end,
                 p90, close, up, down) in columns]
