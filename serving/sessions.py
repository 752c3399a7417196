"""Logins to the managers' page: an API key, once, into a signed, HTTP-only session cookie.

The cookie holds which key (the first 16 hex digits of its hash) and when, signed by itsdangerous with a
secret derived from the configured key hashes (every worker derives the same one; removing a key ends
its sessions). Form posts carry a token that must equal the ``csrf`` cookie set with the form
(double submit) and come from this origin, so another site cannot post them; cookies are SameSite=Strict.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request

SESSION = "scoring_session"
CSRF = "scoring_csrf"


class Sessions:
    """Signs and checks session cookies for a set of API key hashes."""

    def __init__(self, hashes: frozenset[str], hours: float) -> None:
        self.hashes = hashes
        self.max_age = int(hours * 3600)
        secret = hmac.new(b"pipeline-scoring session", ",".join(sorted(hashes)).encode(), hashlib.sha256).hexdigest()
        self.signer = URLSafeTimedSerializer(secret, salt="managers-page")

    @property
    def required(self) -> bool:
        """Whether the page asks for a key (only when keys are configured)."""
        return bool(self.hashes)

    def cookie_for(self, key_hash: str) -> str:
        return self.signer.dumps({"key": key_hash[:16]})

    def valid(self, request: Request) -> bool:
        """Whether the request carries a live session of a key still configured."""
        if not self.required:
            return True
        value = request.cookies.get(SESSION)
        if not value:
            return False
        try:
            data = self.signer.loads(value, max_age=self.max_age)
        except BadSignature:
            return False
        return any(h.startswith(str(data.get("key", "-"))) for h in self.hashes)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def same_origin(request: Request) -> bool:
    """A form post from this origin (browsers send Origin on POST; an absent one is a non-browser client)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


def csrf_ok(request: Request, token: str | None) -> bool:
    cookie = request.cookies.get(CSRF)
    return bool(token and cookie and hmac.compare_digest(token, cookie) and same_origin(request))
