"""Responses of the model routes, validated and serialised off the event loop (a sync route's worker thread,
/generate's batch thread).

FastAPI validates a sync route's return value against its ``response_model`` in a second thread-pool hop
(``serialize_response`` goes through ``run_in_threadpool``) and only then back on the event loop renders it; a
route that returns a ``Response`` skips both. The schema still holds: the body is the response model's own
``model_dump_json`` after ``model_validate``, and ``response_model`` still documents it in the OpenAPI schema.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Response
from pydantic import BaseModel


def json_body(model: type[BaseModel], data: dict[str, Any]) -> bytes:
    """The response model's JSON of ``data``, validated against it (any thread: /generate renders in its batch's)."""
    return model.model_validate(data).model_dump_json().encode()


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def validated_json(model: type[BaseModel], data: dict[str, Any]) -> Response:
    return json_response(json_body(model, data))


def error_response(detail: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """The API's error body {"detail": ...}, ASCII-escaped: a message may quote what a client sent, and a lone
    surrogate ("\\ud800" in a JSON key) cannot be encoded as UTF-8 (starlette's JSONResponse raised, a plain-text
    500)."""
    return Response(json.dumps({"detail": detail}), status_code=status, headers=headers, media_type="application/json")
