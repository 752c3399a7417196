"""Health, readiness, metrics (open) and the admin reload (under /v1/: needs a key when keys are configured)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scoring.serving.routes.common import READ_ERRORS
from scoring.serving.schemas import Ready, ReloadResult
from scoring.serving.security import given_key, is_valid

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready}})
async def readyz(request: Request) -> JSONResponse:
    """Ready only when a model is loaded; says when it is the exported fallback rather than the registry's. The
    detail (paths, errors) goes only to callers with a valid key when keys are configured (and to the log)."""
    holder = request.app.state.holder
    model = holder.current
    hashes = request.app.state.settings.key_hashes()
    trusted = not hashes or is_valid(given_key(request.scope), hashes)
    detail = (model.detail or holder.error) if model else holder.error
    body = Ready(ready=model is not None,
                 model=model.ref if model else None,
                 source=model.source if model else None,
                 detail=detail if trusted else ("see the service log, or ask with an API key" if detail else None))
    return JSONResponse(body.model_dump(), status_code=200 if model is not None else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/v1/admin/reload", response_model=ReloadResult, responses=READ_ERRORS)
async def reload(request: Request) -> ReloadResult:
    """Look for a new champion now and swap it in if there is one (a version that fails to load is refused)."""
    holder = request.app.state.holder
    changed = await asyncio.to_thread(holder.refresh, True)
    if changed:
        request.app.state.on_swap()
    model = holder.current
    return ReloadResult(changed=changed, model=model.ref if model else None,
                        detail=holder.error)
