"""What the routers share: the documented error answers."""
from __future__ import annotations

from typing import Any

from scoring.serving.schemas import Problem

#: The error answers of a route that reads a JSON body, and of one that reads none (GET): each lists only
#: what it can give.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid API key."},
    413: {"model": Problem, "description": "Too many deals or too large a body."},
    415: {"model": Problem, "description": "The body is not JSON."},
    422: {"model": Problem, "description": "A field is missing or wrong; the message names it."},
    503: {"model": Problem, "description": "No model loaded yet, or the model cannot be used."},
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {code: ERRORS[code] for code in (401, 503)}
