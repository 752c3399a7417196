"""GET /v1/pipeline/forecast and /v1/pipeline/flow: the stored pipeline's bookings forecast and how it moved
(SPEC section 8)."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, cast

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from scoring.report.pipeline import pipeline_flow
from scoring.serving.dependencies import ModelDep
from scoring.serving.routes.common import READ_ERRORS
from scoring.serving.schemas import FlowResponse, ForecastResponse
from scoring.serving.store import StoreHolder

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"])
NO_STORE = {404: {"model": READ_ERRORS[401]["model"], "description": "No pipeline store yet (scoring import)."}}


def as_of_day(value: date | None) -> pd.Timestamp:
    """The as-of date of the pipeline's views: the given day, else today (UTC), at its start."""
    return pd.Timestamp(value) if value is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()


@router.get("/forecast", responses={**READ_ERRORS, **NO_STORE})
async def pipeline_forecast(request: Request, model: ModelDep,
                            period: Literal["month", "quarter"] = "quarter",
                            periods: Annotated[int, Query(ge=1, le=12)] = 2,
                            as_of: date | None = None) -> ForecastResponse:
    """The bookings forecast of the deals in the pipeline store as of a date (default today): booked, open
    deals, new deals and bookings per period, beside the fixed percentages (the forecast JSON)."""
    holder: StoreHolder = request.app.state.store
    result = await run_in_threadpool(holder.forecast, model, as_of_day(as_of), period, periods)
    if result is None:
        raise HTTPException(404, f"no pipeline store: {holder.error}")
    return cast(ForecastResponse, result.to_json())


@router.get("/flow", responses={**READ_ERRORS, **NO_STORE, 422: {"model": READ_ERRORS[401]["model"],
                                                                  "description": "`to` before `from`."}})
async def flow(request: Request, from_: Annotated[date, Query(alias="from")], to: date | None = None,
               period: Literal["month", "quarter"] = "quarter") -> FlowResponse:
    """How the stored pipeline moved between two dates (default to: today): its value at the start, created, won,
    lost, amounts raised and cut, close dates pushed out of and pulled into the period, its value at the end;
    in total, per owner and (start and end values) per stage."""
    end = as_of_day(to)
    start = pd.Timestamp(from_)
    if end < start:
        raise HTTPException(422, f"to: {end.date()} is before from ({start.date()})")
    holder: StoreHolder = request.app.state.store
    read = await run_in_threadpool(holder.pipeline)
    if read is None or holder.store is None:
        raise HTTPException(404, f"no pipeline store: {holder.error}")
    changes = await run_in_threadpool(holder.store.field_changes)
    return cast(FlowResponse, pipeline_flow(read[1], changes, start, end, period))
