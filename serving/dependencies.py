"""What routes depend on, as FastAPI dependencies: the model in service, the settings, the metrics, the deals
of a request as sent.

They only read ``app.state``, so they are ``async``: FastAPI runs a plain ``def`` dependency in a worker
thread, and four thread hops a request cost a single deal about half a millisecond (measured)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from scoring.serving.holder import LoadedModel
from scoring.serving.metrics import Metrics
from scoring.serving.settings import Settings


async def current_model(request: Request) -> LoadedModel:
    """The model in service, read once: a swap during the request does not change it (503 while none)."""
    model: LoadedModel | None = request.app.state.holder.current
    if model is None:
        raise HTTPException(503, f"no model is loaded: {request.app.state.holder.error}")
    return model


async def settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


async def sent_deals(request: Request) -> list[Any]:
    """The request's ``deals`` as sent (JSON objects): their feature fields, which the body's schema does not
    copy (:class:`~scoring.serving.schemas.Deal`). The body is read once (the route's request keeps it); the
    route runs only once its body is valid, so these are then the validated deals, in the same order."""
    body = await request.json()
    deals = body.get("deals") if isinstance(body, dict) else None
    return deals if isinstance(deals, list) else []


ModelDep = Annotated[LoadedModel, Depends(current_model)]
SettingsDep = Annotated[Settings, Depends(settings)]
MetricsDep = Annotated[Metrics, Depends(metrics)]
SentDeals = Annotated[list[Any], Depends(sent_deals)]
