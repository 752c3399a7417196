"""Prometheus metrics of one app: requests, latencies, deals scored, the model in service.

With several server processes (``scoring serve --workers N``) each writes its figures to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, set up by ``scoring serve``) and /metrics,
whichever worker answers it, reads them all: counts and latencies summed over the workers, the model in
service as the most any live worker serves (1 while one still does)."""
from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """The app's own registry (several apps in one process, as in tests, do not collide); in multiprocess mode
    (``PROMETHEUS_MULTIPROC_DIR`` set) the registry /metrics reads collects every worker's files instead."""

    def __init__(self) -> None:
        self.shared = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = CollectorRegistry()
        if self.shared:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry)
        else:
            self.registry = own
        self.requests = Counter("scoring_http_requests", "HTTP requests by route, method and status.",
                                ["route", "method", "status"], registry=own)
        self.latency = Histogram("scoring_http_request_seconds", "Time to answer, by route.", ["route"],
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=own)
        self.deals = Counter("scoring_deals_scored", "Deals scored or forecast.", ["route"], registry=own)
        self.model = Gauge("scoring_model_info", "The model in service (value 1).", ["name", "version", "source"],
                           registry=own, multiprocess_mode="livemax")
        self.swaps = Counter("scoring_model_swaps", "Times a new model version was swapped in (by any worker).",
                             registry=own)
        self._children: dict[tuple[str, ...], Any] = {}  # labelled series, looked up once (labels() costs ~4 us)
        self._serving: tuple[str, str, str] | None = None

    def answered(self, route: str, method: str, status: str, seconds: float) -> None:
        """Count a request and its time to answer."""
        count, latency = self._series(("answered", route, method, status),
                                      lambda: (self.requests.labels(route, method, status), self.latency.labels(route)))
        count.inc()
        latency.observe(seconds)

    def scored(self, route: str, deals: int) -> None:
        """Count deals scored or forecast by a route."""
        self._series(("scored", route), lambda: self.deals.labels(route)).inc(deals)

    def _series(self, key: tuple[str, ...], labelled: Callable[[], Any]) -> Any:
        """The labelled series of ``key``, made by ``labelled()`` the first time."""
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = labelled()
        return series

    def serving(self, name: str, version: str, source: str) -> None:
        """Say which model this process serves now."""
        if not self.shared:
            self.model.clear()
        elif self._serving is not None:
            self.model.labels(*self._serving).set(0)  # its file keeps the series: 0, not gone
        self._serving = (name, version, source)
        self.model.labels(name, version, source).set(1)

    def close(self) -> None:
        """This worker stops: its live series (the model it served) leave the shared figures."""
        if self.shared:
            multiprocess.mark_process_dead(os.getpid())


#: Methods whose body must be JSON (415 otherwise: a form or text/plain post from another site is refused too;
#: a post with no body and no content type, such as /v1/admin/reload, is let through).
_BODIED = {"POST", "PUT", "PATCH"}
#: The managers' page's own forms (login, logout): url-encoded, each checked against cross-site posts itself.
FORMS = {"/login", "/logout"}


def _is_json(content_type: bytes | None) -> bool:
    kind = (content_type or b"").split(b";")[0].strip().lower()
    return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))


class RequestLimits:
    """Pure ASGI middleware: counts and times requests, answers 413 to bodies beyond ``max_bytes`` and 415 to a
    body that is not JSON."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_bytes: int) -> None:
        self.app, self.metrics, self.max_bytes = app, metrics, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}
        started = {"yes": False}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                started["yes"] = True
            await send(message)

        declared = header(scope, b"content-length")
        try:
            kind = header(scope, b"content-type")
            bodied = kind is not None or declared not in (None, b"0") or header(scope, b"transfer-encoding") is not None
            form = scope["path"] in FORMS and (kind or b"").startswith(b"application/x-www-form-urlencoded")
            if scope["method"] in _BODIED and bodied and not _is_json(kind) and not form:
                await send_problem(send_counted, 415, "unsupported media type",
                                   "the body must be JSON: send it with Content-Type: application/json")
            elif declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                await _too_large(send_counted, self.max_bytes)
            else:
                await self.app(scope, self._limited(receive), send_counted)
        except BodyTooLarge:
            if started["yes"]:
                raise
            await _too_large(send_counted, self.max_bytes)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.metrics.answered(path, scope["method"], str(status["code"]), time.perf_counter() - start)

    def _limited(self, receive: Receive) -> Receive:
        seen = {"bytes": 0}

        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_bytes:
                    raise BodyTooLarge
            return message

        return wrapped


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case) of a request."""
    return next((value for key, value in scope["headers"] if key == name), None)


class BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    await send_problem(send, 413, "request too large", f"the request body is larger than the limit of {limit} bytes; "
                       "send fewer deals per request")


async def send_problem(send: Send, status: int, error: str, message: str,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """An error answer from ASGI middleware, in the shape of every other (``schemas.Problem``)."""
    body = orjson.dumps({"error": error, "message": message, "errors": [{"field": "", "message": message}]})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
