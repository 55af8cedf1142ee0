"""Responses of the sync model routes, validated and serialised in the route's own worker thread.

FastAPI validates a sync route's return value against its ``response_model`` in a second thread-pool hop
(``serialize_response`` goes through ``run_in_threadpool``) and only then back on the event loop renders it; a
route that returns a ``Response`` skips both. The schema still holds: the body is the response model's own
``model_dump_json`` after ``model_validate``, and ``response_model`` still documents it in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import BaseModel


def validated_json(model: type[BaseModel], data: dict[str, Any]) -> Response:
    return Response(model.model_validate(data).model_dump_json(), media_type="application/json")
