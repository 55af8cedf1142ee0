"""Typed dependencies: settings, the model registry, a model by id, and the /infer-codes upload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import ValidationError

from spec.latent import sent_text
from spec.manifest import validation_errors

from ..core.config import Settings
from ..core.images import UploadError, decode_data_url
from ..core.model import Model
from ..core.registry import Registry
from ..schemas import InferRequest
from .limits import is_json_type


# Async because they only read app state: FastAPI runs a sync dependency in the thread pool, one more thread hop
# per request before the (sync) route's own.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_registry(request: Request) -> Registry:
    return request.app.state.registry


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(get_registry)]


def require_loaded(registry: Registry) -> None:
    """503 (with Retry-After) until every model folder has been tried, so no answer lists a partial set."""
    if not registry.ready.is_set():
        raise HTTPException(503, "models are still loading; see /readyz", headers={"Retry-After": "1"})


def resolve_model(registry: Registry, model_id: str | None, field: str = "model") -> Model:
    """A served model by id (None: the first one); 503 while loading, 404 for an unknown id."""
    require_loaded(registry)
    if model_id is None:
        if not registry.models:
            raise HTTPException(404, f"{field}: no model is served (MODELS_DIR has no loadable model folder)")
        return next(iter(registry.models.values()))
    model = registry.models.get(model_id)
    if model is None:
        # a path id has no length limit: quoted and clipped
        raise HTTPException(404, f"{field}: unknown model {sent_text(model_id)}; served: {list(registry.models)}")
    return model


def path_model(model_id: str, registry: RegistryDep) -> Model:
    return resolve_model(registry, model_id, "model_id")


ModelDep = Annotated[Model, Depends(path_model)]


@dataclass
class Upload:
    data: bytes
    model: str | None
    field: str


async def read_upload(request: Request, settings: SettingsDep) -> Upload:
    """The image of /infer-codes, as a multipart ``file`` (optional ``model`` field) or JSON ``{"image": data URL,
    "model"}``. Async only to read the body; the route that decodes and runs the model is a sync def."""
    limit = settings.max_upload_bytes
    # the whole body may hold the file plus multipart framing, or the base64 form (4/3 of the bytes) in JSON
    body_limit = limit * 4 // 3 + 64 * 1024
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # the field the client sent the image in; an answer before the whole body is read closes the connection (the
    # rest of the body stays unread), as the JSON routes' 413 does
    field = "image" if is_json_type(ctype) else "file"
    too_large = UploadError(413, f"{field}: upload over the limit of {limit} bytes", {"Connection": "close"})
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > body_limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    if is_json_type(ctype):  # application/json or application/*+json, as the other JSON routes take
        try:
            req = InferRequest.model_validate_json(body)
        except ValidationError as exc:
            raise HTTPException(422, validation_errors(exc, most=None, whole="body")) from None
        data = decode_data_url(req.image)
        if len(data) > limit:
            raise UploadError(413, f"image: upload over the limit of {limit} bytes")
        return Upload(data, req.model, "image")
    if ctype == "multipart/form-data":
        request._body = body  # starlette re-reads the cached body when parsing the form
        try:
            form = await request.form(max_files=2, max_fields=8)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - malformed multipart framing
            raise HTTPException(422, f"body: malformed multipart form ({exc})") from None
        try:
            unknown = sorted(set(form.keys()) - {"file", "model"})
            if unknown:
                raise HTTPException(422, f"{unknown[0]}: unknown form field; expected 'file' and optional 'model'")
            for name in ("file", "model"):
                if len(form.getlist(name)) > 1:
                    raise HTTPException(422, f"{name}: given more than once")
            file, model = form.get("file"), form.get("model")
            if file is None or isinstance(file, str):
                raise HTTPException(422, "file: an image file is required")
            if model is not None and not isinstance(model, str):
                raise HTTPException(422, "model: must be a text field")
            if model is not None and not 1 <= len(model) <= 128:
                # as the JSON form's ModelId: an empty field is a mistake, not "the default model"
                raise HTTPException(422, "model: must be 1-128 characters (omit the field for the default model)")
            data = await file.read()
        finally:
            await form.close()
        if len(data) > limit:
            raise UploadError(413, f"file: upload over the limit of {limit} bytes")
        return Upload(data, model, "file")
    sent = sent_text(ctype) if ctype else "none"
    raise UploadError(415, f"content-type: expected multipart/form-data or application/json, got {sent}")


UploadDep = Annotated[Upload, Depends(read_upload)]
