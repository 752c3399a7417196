"""The pipeline store over HTTP (SPEC section 8): PUT /v1/deals keeps a CRM's batch of deals, PATCH /v1/deals
the fields of deals that changed; GET
/v1/pipeline/forecast and /v1/pipeline/flow give the stored pipeline's bookings forecast and how it moved."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Annotated, Any, Literal, cast

import pandas as pd
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import OperationalError

from scoring.data.contract import DealHistory, load_deal_history
from scoring.errors import DataError, InvalidDeals
from scoring.report.pipeline import pipeline_flow
from scoring.serving.deals import deal_signals, deal_tables, located
from scoring.serving.dependencies import ModelDep, SettingsDep
from scoring.serving.holder import LoadedModel
from scoring.serving.routes.common import ERRORS, READ_ERRORS, JSONRoute
from scoring.serving.schemas import Day, DealsPatch, DealsRequest, DealsStored, FlowResponse, ForecastResponse
from scoring.serving.settings import Settings
from scoring.serving.store import StoreHolder
from scoring.store.patches import merge_patches
from scoring.store.pipeline import ImportResult

router = APIRouter(prefix="/v1/pipeline", tags=["pipeline"])
deals_router = APIRouter(prefix="/v1", tags=["pipeline"], route_class=JSONRoute)
#: Seconds a client is asked to wait before writing again to a busy store.
RETRY_SECONDS = 5
WRITE_ERRORS = {**ERRORS, 503: {"model": ERRORS[503]["model"], "description": "No model loaded yet, or the pipeline "
                                "store cannot be written now (Retry-After says when to try again)."}}
NO_STORE = {404: {"model": READ_ERRORS[401]["model"], "description": "No pipeline store yet (scoring import)."}}


def as_of_day(value: date | None) -> pd.Timestamp:
    """The as-of date of the pipeline's views: the given day, else today (UTC), at its start."""
    return pd.Timestamp(value) if value is not None else pd.Timestamp.now(tz="UTC").tz_localize(None).normalize()


@router.get("/forecast", responses={**READ_ERRORS, **NO_STORE})
async def pipeline_forecast(request: Request, model: ModelDep,
                            period: Literal["month", "quarter"] = "quarter",
                            periods: Annotated[int, Query(ge=1, le=12)] = 2,
                            as_of: Day | None = None) -> ForecastResponse:
    """The bookings forecast of the deals in the pipeline store as of a date (default today): booked, open
    deals, new deals and bookings per period, beside the fixed percentages (the forecast JSON)."""
    holder: StoreHolder = request.app.state.store
    result = await run_in_threadpool(holder.forecast, model, as_of_day(as_of), period, periods)
    if result is None:
        raise HTTPException(404, f"no pipeline store: {holder.error}")
    return cast(ForecastResponse, result.to_json())


@router.get("/flow", responses={**READ_ERRORS, **NO_STORE, 422: {"model": READ_ERRORS[401]["model"],
                                                                  "description": "`to` before `from`."}})
async def flow(request: Request, from_: Annotated[Day, Query(alias="from")], to: Day | None = None,
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
    return cast(FlowResponse, await run_in_threadpool(pipeline_flow, read[1], start, end, period))


@deals_router.put("/deals", responses=WRITE_ERRORS)
async def put_deals(body: DealsRequest, request: Request, settings: SettingsDep) -> DealsStored:
    """Keep a batch of deals in the pipeline store, as `scoring import` does with a file: new deals inserted,
    changed ones updated (each change kept), new stage entries appended, in one transaction; the same batch
    again changes nothing. Each deal is sent whole, as PUT means: a field left out is cleared (PATCH keeps it).
    Checked by the same contract as files (the model's stages; strict: a row a file would set aside is refused)."""
    model = _writer(body.deals, request, settings)
    holder: StoreHolder = request.app.state.store

    def write() -> ImportResult:  # checking a large batch takes a while: off the event loop too
        return holder.put(_checked(body.deals, model), f"PUT /v1/deals ({len(body.deals)} deals)", model)

    return await _stored(write)


@deals_router.patch("/deals", responses=WRITE_ERRORS)
async def patch_deals(body: DealsPatch, request: Request, settings: SettingsDep) -> DealsStored:
    """Change deals in the pipeline store by the fields sent: a field left out keeps its stored value, null clears
    it; history and activities are appended. A new stage without `stage_entered_at` was entered now, a deal
    closed without `closed_at` closed now. Each deal, completed from the store, goes through the same contract
    and import as PUT, read and written in one transaction; a deal not in the store needs `stage` and
    `created_at`."""
    ids = [str(deal["deal_id"]) for deal in body.deals]
    if len(set(ids)) < len(ids):
        raise HTTPException(422, f"deals: deal {next(i for i in ids if ids.count(i) > 1)} is sent more than once; "
                                 "send each deal's changes together")
    return await _patched(body.deals, request, settings, f"PATCH /v1/deals ({len(ids)} deals)")


@deals_router.delete("/deals/{deal_id:path}", responses={**WRITE_ERRORS, 404: {"model": ERRORS[401]["model"],
                                                                        "description": "No such deal in the store."}})
async def delete_deal(deal_id: Annotated[str, Path(min_length=1, max_length=200)], request: Request,
                      settings: SettingsDep) -> DealsStored:
    """Take a deal deleted in the CRM out of the pipeline (as `PATCH` with `"status": "deleted"`): it stays in
    the store, open until now in views of past dates, and counts as removed in the pipeline's flow. An id with
    slashes is sent with them encoded (`%2F`) or as they are."""
    return await _patched([{"deal_id": deal_id, "status": "deleted"}], request, settings,
                          f"DELETE /v1/deals/{deal_id}", missing=f"deal_id: no deal {deal_id!r} in the pipeline store")


async def _patched(patches: Sequence[Mapping[str, Any]], request: Request, settings: Settings, source: str,
                   missing: str | None = None) -> DealsStored:
    """Keep ``patches``, each completed from its stored deal (read and written in one transaction); with
    ``missing``, a 404 saying it when the store holds none of their deals."""
    model = _writer(patches, request, settings)
    holder: StoreHolder = request.app.state.store

    def complete(stored: pd.DataFrame, at: pd.Timestamp) -> DealHistory:
        if missing is not None and stored.empty:
            raise HTTPException(404, missing)
        return _checked(merge_patches(stored, patches, model.bundle.config, at), model)

    ids = [str(patch["deal_id"]) for patch in patches]
    return await _stored(lambda: holder.patch(ids, complete, source, model))


def _writer(deals: Sequence[Any], request: Request, settings: Settings) -> LoadedModel:
    """The model whose configuration checks deals to keep (a 503 without one), once the batch's size is checked."""
    if len(deals) > settings.max_deals:
        raise HTTPException(413, f"deals: {len(deals)} deals in one request; the limit is {settings.max_deals}. "
                                 "Send them in batches.")
    model: LoadedModel | None = request.app.state.holder.current
    if model is None:
        raise HTTPException(503, "no model is loaded: its pipeline configuration checks the deals")
    return model


def _checked(deals: Sequence[Mapping[str, Any]], model: LoadedModel) -> DealHistory:
    """Whole deals -> a deal history, by the contract of files, strict (a row a file would set aside is refused,
    but for a deal kept without its amount, as a file's is: a CRM's deal often has none yet; and a deal marked
    deleted, which the store takes out of the pipeline)."""
    tables, history, where = deal_tables(deals)
    try:
        data = load_deal_history(tables, history if len(history) else None, model.bundle.config, strict=True,
                                 writes=True)
        signals = deal_signals(deals, model.bundle.config, strict=True)
    except DataError as exc:
        if isinstance(exc, InvalidDeals):  # located as deals[i].history[j].value: answered as such
            raise
        report = exc.report
        if report is not None and report.errors and all(e.rows and where.get(e.source) for e in report.errors):
            raise InvalidDeals(located(report, where, "deal")) from None  # each named by its field
        raise HTTPException(422, f"deals: {exc}") from None
    return replace(data, signals=signals) if signals is not None else data


async def _stored(write: Callable[[], ImportResult]) -> DealsStored:
    """Run ``write`` off the event loop; what it kept. A store that cannot be written now (another import holds
    SQLite's write lock beyond its wait, the database is unreachable) is a 503 to retry, saying why."""
    try:
        result = await run_in_threadpool(write)
    except OperationalError as exc:
        reason = str(exc.orig or exc).splitlines()[0]
        raise HTTPException(503, f"the pipeline store cannot be written now ({reason}); nothing was kept, try again",
                            headers={"Retry-After": str(RETRY_SECONDS)}) from None
    return {"deals_read": result.deals_read, "deals_new": result.deals_new, "deals_changed": result.deals_changed,
            "history_new": result.history_new, "field_changes": result.field_changes,
            "field_history_new": result.field_history_new, "activities_new": result.activities_new,
            "deals_deleted": result.deals_deleted}
