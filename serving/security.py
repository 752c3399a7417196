"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, checked against stored hashes.

One pure ASGI middleware guards every path under /v1/ (health, readiness, metrics and the docs stay
open): a FastAPI dependency per route cost about 70 us a request, as much as HTTP itself. The OpenAPI
document still shows both schemes on each guarded operation (:func:`document`).
"""
from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from scoring.serving.metrics import ASGIApp, Receive, Scope, Send, header, send_problem
from scoring.serving.settings import hash_key, is_loopback

GUARDED = "/v1/"
#: The managers' page and its login: served to loopback only when no keys are configured.
PAGES = ("/", "/login", "/logout")
REFUSAL = "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
EXPOSED = ("this service answers on {host}, beyond loopback, without API keys: set SCORING_API_KEYS (or "
           "SCORING_API_KEY_HASHES), listen on 127.0.0.1, or set SCORING_ALLOW_OPEN_NETWORK=true if something in "
           "front of it checks callers")
SCHEMES = {"HTTPBearer": {"type": "http", "scheme": "bearer", "description": "An API key as a bearer token."},
           "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An API key."}}


def given_key(scope: Scope) -> str | None:
    """The key a request carries: the bearer token if there is one, else X-API-Key (the first of each header)."""
    scheme, _, token = (header(scope, b"authorization") or b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = (header(scope, b"x-api-key") or b"").decode("latin-1").strip()
    return api_key or None


def is_valid(key: str | None, hashes: frozenset[str]) -> bool:
    """Whether ``key`` hashes to one of ``hashes``; compared against every one without stopping early, so
    timing tells nothing."""
    if not key:
        return False
    digest = hash_key(key)
    return sum(hmac.compare_digest(digest, stored) for stored in hashes) > 0


class ApiKeys:
    """Pure ASGI middleware: with keys configured, a request under /v1/ without a valid one gets a 401 (the
    managers' page asks for a key itself, into a session cookie).

    Without keys (and without ``open_network``), a request to /v1/ or the page that reached the server on an
    address beyond loopback gets a 403: the CLI refuses to listen there at start, but the app can be started other ways
    (``uvicorn --factory scoring.serving.app:create_app --host 0.0.0.0``), and this check holds for all.
    """

    def __init__(self, app: ASGIApp, hashes: frozenset[str], open_network: bool = False) -> None:
        self.app, self.hashes, self.open_network = app, hashes, open_network

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api = scope["type"] == "http" and scope["path"].startswith(GUARDED)
        if api or (scope["type"] == "http" and scope["path"] in PAGES):
            if api and self.hashes and not is_valid(given_key(scope), self.hashes):
                await send_problem(send, 401, "unauthorized", REFUSAL, headers=[(b"www-authenticate", b"Bearer")])
                return
            server = scope.get("server")
            if not self.hashes and not self.open_network and server and _beyond_loopback(str(server[0])):
                await send_problem(send, 403, "forbidden", EXPOSED.format(host=server[0]))
                return
        await self.app(scope, receive, send)


def _beyond_loopback(host: str) -> bool:
    """Whether a server address is an IP beyond loopback (test transports name a host instead: not checked)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return not is_loopback(host)


def document(openapi: dict[str, Any]) -> None:
    """Declare the two schemes in an OpenAPI document and require one of them on every guarded operation."""
    openapi.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEMES)
    for path, operations in openapi.get("paths", {}).items():
        if path.startswith(GUARDED):
            for operation in operations.values():
                operation["security"] = [{name: []} for name in SCHEMES]
