"""The served models and their specs."""

from __future__ import annotations

from fastapi import APIRouter

from ...schemas import Error, ModelInfo, ModelList
from ..deps import ModelDep, RegistryDep, require_loaded

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, responses={503: {"model": Error}})
def list_models(registry: RegistryDep) -> dict:
    """Every served model with its latent spec (the page builds its controls from this). 503 while loading; an
    empty list once loaded means MODELS_DIR has no loadable model (the page says so at once)."""
    require_loaded(registry)
    return {"models": registry.to_json()}


@router.get("/models/{model_id}", response_model=ModelInfo, responses={404: {"model": Error}, 503: {"model": Error}})
def get_model(model: ModelDep, registry: RegistryDep) -> dict:
    return model.to_json(served=registry.models)
