"""GET /: the managers' page, rendered on the server (Jinja2, SVG charts; no script, nothing from the
network). With API keys configured it asks for one at /login and keeps a signed session cookie."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from scoring.forecast.revenue import period_name
from scoring.report.pipeline import PAGE_PERIODS, deals_at_risk, past_accuracy, pipeline_flow
from scoring.serving.charts import bookings_bars, money, trend_line
from scoring.serving.holder import LoadedModel
from scoring.serving.routes.pipeline import as_of_day
from scoring.serving.schemas import Day
from scoring.serving.security import is_valid
from scoring.serving.sessions import CSRF, SESSION, Sessions, csrf_ok, new_csrf_token
from scoring.serving.settings import hash_key
from scoring.serving.store import StoreHolder

router = APIRouter(include_in_schema=False)
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent.parent / "templates"),
                        autoescape=select_autoescape(["html"]))
TEMPLATES.filters["money"] = money
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                               "form-action 'self'; frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


@router.get("/")
async def page(request: Request, as_of: Day | None = None, period: Literal["month", "quarter"] = "quarter"
               ) -> Response:
    sessions: Sessions = request.app.state.sessions
    if not sessions.valid(request):
        return RedirectResponse("/login", status_code=303)
    model: LoadedModel | None = request.app.state.holder.current
    holder: StoreHolder = request.app.state.store
    day = as_of_day(as_of)
    if model is None:
        context = _context(holder, model, day, period)
    else:
        context = await run_in_threadpool(holder.page, model, day, period, lambda: _context(holder, model, day, period))
    context["csrf"] = request.cookies.get(CSRF) or new_csrf_token()
    context["login_required"] = sessions.required
    response = HTMLResponse(TEMPLATES.get_template("page.html").render(**context), headers=SECURITY_HEADERS)
    if CSRF not in request.cookies:
        response.set_cookie(CSRF, context["csrf"], httponly=True, samesite="strict", secure=_https(request))
    return response


@router.get("/login")
async def login_form(request: Request, failed: bool = False) -> Response:
    token = new_csrf_token()
    html = TEMPLATES.get_template("login.html").render(csrf=token, failed=failed)
    response = HTMLResponse(html, status_code=401 if failed else 200, headers=SECURITY_HEADERS)
    response.set_cookie(CSRF, token, httponly=True, samesite="strict", secure=_https(request))
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    sessions: Sessions = request.app.state.sessions
    form = await _form(request)
    if not csrf_ok(request, form.get("csrf")):
        return HTMLResponse("This form has expired or came from another site: open the page again.", status_code=403,
                            headers=SECURITY_HEADERS)
    key = form.get("key", "")
    if not sessions.required or not is_valid(key, sessions.hashes):
        return RedirectResponse("/login?failed=true", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION, sessions.cookie_for(hash_key(key)), max_age=sessions.max_age, httponly=True,
                        samesite="strict", secure=_https(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    if not csrf_ok(request, form.get("csrf")):
        return HTMLResponse("This form has expired or came from another site.", status_code=403)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A small url-encoded form (the login's key and token)."""
    body = (await request.body())[:10_000].decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body).items()}


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _context(holder: StoreHolder, model: LoadedModel | None, as_of: pd.Timestamp, period: str) -> dict[str, Any]:
    """Everything the page shows, computed off the event loop."""
    context: dict[str, Any] = {"as_of": as_of.date(), "period": period, "model": model, "store_error": None,
                               "model_error": None}
    if model is None:
        context["model_error"] = "no model is loaded yet"
        return context
    result = holder.forecast(model, as_of, period, PAGE_PERIODS)
    if result is None:
        context["store_error"] = holder.error
        return context
    document = result.to_json()
    first = document["periods"][0]
    labels = [period_name(pd.Timestamp(p["calendar_start"]), period) for p in document["periods"]]
    bars = bookings_bars(labels, [p["booked"] for p in document["periods"]],
                         [p["pipeline"]["expected"] for p in document["periods"]],
                         [p["new_deals"]["expected"] for p in document["periods"]],
                         [p["bookings"]["p10"] for p in document["periods"]],
                         [p["bookings"]["p90"] for p in document["periods"]],
                         [p["fixed"]["expected"] for p in document["periods"]])
    read = holder.pipeline()
    assert read is not None and holder.store is not None
    pipeline = read[1]
    snapshots = holder.store.snapshots(period)
    this = snapshots[snapshots["period_start"] == pd.Timestamp(first["calendar_start"])]
    this = this[this["taken_on"] <= as_of]
    trend = trend_line([d.strftime("%d %b") for d in this["taken_on"]], this["bookings"].tolist(),
                       this["bookings_p10"].tolist(), this["bookings_p90"].tolist(), this["booked"].tolist())
    accuracy = past_accuracy(snapshots, pipeline, as_of)
    at_risk = deals_at_risk(model.bundle, pipeline.open_at(as_of), as_of, period, pipeline.signals_at(as_of),
                            pipeline.changes)
    flow = pipeline_flow(pipeline, pd.Timestamp(first["calendar_start"]), as_of, period)
    stage_table = model.bundle.stage_table()
    metrics = model.bundle.metrics
    overall = metrics[metrics["by"] == "all"] if "by" in metrics.columns else metrics
    context.update(
        first=first, label=labels[0], bars=bars, trend=trend, breakdowns=document["breakdowns"],
        at_risk=at_risk.to_dict("records"),
        stages=stage_table.to_dict("records"), stage_columns=list(stage_table.columns),
        metrics=overall.to_dict("records"), accuracy=accuracy.to_dict("records"),
        deals_open=document["deals"], snapshots=len(this), last_import=holder.store.last_import(),
        served=model.bundle.served, served_reason=model.bundle.served_reason, dormancy=model.bundle.dormancy.summary(),
        flow=flow)
    return context


def finite(value: Any) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False


TEMPLATES.tests["finite"] = finite
