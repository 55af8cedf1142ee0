"""Liveness, readiness, Prometheus metrics, and the benchmark's HTTP floor."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...core.device import providers
from ...core.images import png_base64
from ...schemas import GenerateResponse, Health, Ready
from ..deps import RegistryDep
from ..responses import validated_json

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict:
    """The process is alive (models may still be loading)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": "not ready"}})
def readyz(registry: RegistryDep) -> JSONResponse:
    """200 once every model folder has been loaded and warmed up (broken ones are listed under errors)."""
    first = next(iter(registry.models.values()), None)
    provider = first.generator.get_providers()[0] if first else providers(registry.device)[0]
    loaded = registry.ready.is_set()
    status = "ready" if loaded and registry.models else ("loading" if not loaded else "no models")
    body = Ready(
        status=status,
        provider=provider,
        device=registry.device,
        models=list(registry.models),
        errors=dict(registry.errors),
    )
    return JSONResponse(body.model_dump(), status_code=200 if status == "ready" else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format: requests and latency per route, inference time, batch sizes."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/_floor", include_in_schema=False)
def floor(registry: RegistryDep) -> Response:
    """Benchmark floor: the /generate response shape with a fixed PNG of the first model's size and no model run,
    through the same stack (sync route, validated JSON, middleware). benchmarks/serve_latency.py compares against it."""
    first = next(iter(registry.models.values()), None)
    c, h, w = first.image_shape if first else (1, 28, 28)
    dim = first.spec.noise.dim if first else 62
    cached = getattr(registry, "_floor_png", None)
    if cached is None:
        cached = registry._floor_png = png_base64(np.full((c, h, w), 0.5, np.float32))
    return validated_json(
        GenerateResponse, {"model": "floor", "seed": 0, "images": [cached], "z": [[0.0] * dim], "codes": [{}]}
    )
