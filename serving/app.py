"""``create_app(settings)``: the FastAPI service that CRMs call.

The model is loaded in the lifespan (never at import; the store gets ``store_timeout_seconds`` before the
exported bundle serves), then a background task polls the champion alias and swaps new versions in. Routes
take typed bodies and the model as a dependency; scoring runs in worker threads, off the event loop
(``routes/scoring.py``). Every error is JSON
naming the field; library errors map to HTTP codes in one place (bad deals 422, a model that cannot
be used 503), and nothing else is caught: a bug is a bug, logged by the server.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from scoring.errors import InvalidDeals, ModelError, ScoringError
from scoring.serving.allocator import keep_freed_memory, keep_startup_objects
from scoring.serving.holder import ModelHolder
from scoring.serving.metrics import Metrics, RequestLimits
from scoring.serving.routes import model, ops, pages, pipeline, scoring
from scoring.serving.schemas import ProblemDetail
from scoring.serving.security import ApiKeys, document
from scoring.serving.sessions import Sessions
from scoring.serving.settings import Settings
from scoring.serving.store import StoreHolder

log = logging.getLogger("serving")
#: At most this many problems are listed in an error answer (the message says how many more).
MAX_LISTED = 100


def create_app(settings: Settings | None = None, own_process: bool = False) -> FastAPI:
    """The service, configured by ``settings`` (default: from the environment). ``own_process``: the app is all
    this process serves (``scoring serve``): its memory is tuned for a long-lived service
    (:mod:`scoring.serving.allocator`), the collector's once the model is loaded."""
    settings = settings or Settings()
    if own_process:
        keep_freed_memory()
    metrics = Metrics()

    def on_swap() -> None:
        current = holder.current
        if current is not None:
            metrics.serving(current.name, current.version, current.source)
        metrics.swaps.inc()

    holder = ModelHolder(settings, on_swap)
    store = StoreHolder(settings.store_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # scoring runs in anyio's worker threads, as many as asked
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        await asyncio.to_thread(holder.load_at_start)
        if own_process:
            keep_startup_objects()
        if holder.current is not None:
            metrics.serving(holder.current.name, holder.current.version, holder.current.source)
        tasks = [asyncio.create_task(_poll(holder, settings.poll_seconds, on_swap))] if settings.poll_seconds else []
        if settings.snapshot_seconds:
            tasks.append(asyncio.create_task(_snapshots(holder, store, settings.snapshot_seconds)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            metrics.close()

    # FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN (blank offline): these serve the
    # files installed with fastapi-offline, under /static-offline-docs
    app = FastAPIOffline(title="pipeline-scoring", version=_version(), lifespan=lifespan,
                         description="Win probabilities and revenue forecasts learned from your own deal history, "
                                     "always beside the fixed stage percentages.")
    app.state.settings = settings
    app.state.holder = holder
    app.state.metrics = metrics
    app.state.on_swap = on_swap
    app.state.store = store
    app.state.sessions = Sessions(settings.key_hashes(), settings.session_hours)
    for router in (scoring.router, model.router, pipeline.router, pipeline.deals_router, ops.router, pages.router):
        app.include_router(router)
    app.add_middleware(ApiKeys, hashes=settings.key_hashes(), open_network=settings.allow_open_network)
    app.add_middleware(RequestLimits, metrics=metrics, max_bytes=settings.max_body_bytes)  # outermost: counts 401s too
    _add_error_handlers(app)
    _document_keys(app)
    return app


def worker_app() -> FastAPI:
    """The app of one of several server processes (``scoring serve --workers N`` starts uvicorn with this
    factory): settings from the environment, the process's memory tuned as ``scoring serve`` tunes its own."""
    return create_app(own_process=True)


def _document_keys(app: FastAPI) -> None:
    """Show the API keys the middleware asks for in the OpenAPI document (FastAPI's "extending OpenAPI" hook):
    a security dependency per route would check the same keys again, at some 70 us a request."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _poll(holder: ModelHolder, seconds: float, on_swap: Any) -> None:
    """Look for a new champion every ``seconds``; load it off the event loop."""
    while True:
        await asyncio.sleep(seconds)
        try:
            if await asyncio.to_thread(holder.refresh):
                on_swap()
        except Exception:  # noqa: BLE001 - polling must outlive any one failure
            log.exception("polling for a new champion failed")


async def _snapshots(holder: ModelHolder, store: StoreHolder, seconds: float) -> None:
    """Keep today's forecast snapshot in the pipeline store: now, then every ``seconds`` (a no-op once written)."""
    while True:
        model = holder.current
        if model is not None:
            try:
                written = await asyncio.to_thread(store.snapshot_today, model)
                if written:
                    log.info("kept today's forecast snapshot (%d period(s))", written)
            except Exception:  # noqa: BLE001 - snapshots must outlive any one failure
                log.exception("keeping today's forecast snapshot failed")
        await asyncio.sleep(seconds)


def _add_error_handlers(app: FastAPI) -> None:
    def problem(status: int, error: str, details: list[ProblemDetail], headers: dict[str, str] | None = None
                ) -> JSONResponse:
        message = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in details[:10])
        if len(details) > 10:
            message += f"; and {len(details) - 10} more"
        listed = [d.model_dump() for d in details[:MAX_LISTED]]
        return JSONResponse({"error": error, "message": message, "errors": listed},
                            status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [ProblemDetail(field="body", message=_json_message(e)) if e.get("type") == "json_invalid"
                   else ProblemDetail(field=_field(e.get("loc", ())), message=_message(e)) for e in exc.errors()]
        return problem(422, "invalid request", details)

    @app.exception_handler(InvalidDeals)
    async def unscorable(_: Request, exc: InvalidDeals) -> JSONResponse:
        return problem(422, "invalid deals", [ProblemDetail(field=exc.where(p), message=p.message)
                                              for p in exc.problems])

    @app.exception_handler(ModelError)
    async def model_error(_: Request, exc: ModelError) -> JSONResponse:  # the service's problem, not the caller's
        log.error("model error: %s", exc)
        return problem(503, "model unavailable", [ProblemDetail(field="", message=str(exc))])

    @app.exception_handler(ScoringError)
    async def library(_: Request, exc: ScoringError) -> JSONResponse:
        return problem(422, "cannot score these deals", [ProblemDetail(field="deals", message=str(exc))])

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        field, _, message = detail.partition(": ") if detail.startswith("deals:") else ("", "", detail)
        return problem(exc.status_code, _reason(exc.status_code), [ProblemDetail(field=field, message=message)],
                       headers=getattr(exc, "headers", None))


def _field(loc: tuple[Any, ...]) -> str:
    """("body", "deals", 3, "amount") -> "deals[3].amount"."""
    out = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith(("function-", "constrained-")):  # pydantic's validator steps
            out += f".{part}" if out else str(part)
    return out or "body"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    if "input" in error and error.get("type") not in ("missing",):
        given = repr(error["input"])
        message += f" (got {given if len(given) <= 60 else given[:57] + '...'})"
    return message


def _json_message(error: dict[str, Any]) -> str:
    """A body that is not JSON (cut short, text after the end, not UTF-8): where and why."""
    where = error.get("loc", ())[-1]
    return f"not valid JSON at character {where}: {error.get('ctx', {}).get('error', 'cannot be read')}"


def _reason(status: int) -> str:
    return {401: "unauthorized", 404: "not found", 405: "method not allowed", 413: "request too large",
            503: "not ready"}.get(status, "error")


def _version() -> str:
    from importlib.metadata import version

    return version("pipeline-scoring")
