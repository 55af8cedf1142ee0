"""The served models and their specs."""
from __future__ import annotations

from fastapi import APIRouter

from ...schemas import Error, ModelInfo, ModelList
from ..deps import ModelDep, RegistryDep, resolve_model

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelList, responses={503: {"model": Error}})
def list_models(registry: RegistryDep) -> dict:
    """Every served model with its latent spec (the page builds its controls from this)."""
    if registry.models:
        resolve_model(registry, None)  # 503 while loading
    return {"models": [m.info() for m in registry.models.values()]}


@router.get("/models/{model_id}", response_model=ModelInfo, responses={404: {"model": Error}, 503: {"model": Error}})
def get_model(model: ModelDep) -> dict:
    return model.info()
