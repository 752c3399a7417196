"""What the routers share: the documented error answers."""
from __future__ import annotations

from typing import Any

from scoring.serving.schemas import Problem

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid API key."},
    413: {"model": Problem, "description": "Too many deals or too large a body."},
    422: {"model": Problem, "description": "A field is missing or wrong; the message names it."},
    503: {"model": Problem, "description": "No model loaded yet, or the model cannot be used."},
}
