"""What the routers share: the model of the request and the documented error answers."""
from __future__ import annotations

from typing import Any

import orjson
from fastapi import HTTPException, Request
from fastapi.responses import Response

from serving.holder import LoadedModel
from serving.schemas import Problem

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid API key."},
    413: {"model": Problem, "description": "Too many deals or too large a body."},
    422: {"model": Problem, "description": "A field is missing or wrong; the message names it."},
    503: {"model": Problem, "description": "No model loaded yet."},
}


def current_model(request: Request) -> LoadedModel:
    """The model in service, read once: a swap during the request does not change it."""
    model = request.app.state.holder.current
    if model is None:
        raise HTTPException(503, f"no model is loaded: {request.app.state.holder.error}")
    return model


def json_response(content: Any, status_code: int = 200) -> Response:
    """JSON by orjson (numpy arrays and dates included; NaN becomes null): several times faster than json."""
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status_code,
                    media_type="application/json")
