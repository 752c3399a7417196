"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, checked against stored hashes."""
from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.settings import hash_key

bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


async def require_key(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer),
                api_key: str | None = Security(header)) -> None:
    """Let the request through if no keys are configured or it carries a valid one (compared in constant time).
    A coroutine: a microsecond of work is cheaper on the event loop than a trip to the thread pool."""
    hashes: frozenset[str] = request.app.state.key_hashes
    if not hashes:
        return
    given = credentials.credentials if credentials is not None else api_key
    if given:
        digest = hash_key(given)
        # compare against every stored hash, without stopping early, so timing tells nothing
        if sum(hmac.compare_digest(digest, stored) for stored in hashes):
            return
    raise HTTPException(status_code=401, detail="a valid API key is required (Authorization: Bearer <key> or X-API-Key)",
                        headers={"WWW-Authenticate": "Bearer"})
