"""Code inference for an uploaded or drawn image with Q, and G's reconstruction at the inferred codes."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Response

from ...core.images import decode_upload, png_base64, prepare
from ...schemas import Error, InferRequest, InferResponse
from ..deps import RegistryDep, SettingsDep, UploadDep, resolve_model
from ..responses import validated_json

router = APIRouter(tags=["infer"])

_MULTIPART = {
    "type": "object",
    "required": ["file"],
    "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP, GIF or BMP, at most 5 MiB"},
        "model": {"type": "string", "description": "a model id (default: the first model)"},
    },
}
_JSON = InferRequest.model_json_schema()
_JSON.pop("title", None)


@router.post(
    "/infer-codes",
    response_model=InferResponse,
    responses={
        404: {"model": Error, "description": "unknown model"},
        408: {"model": Error, "description": "the body did not arrive in time"},
        413: {"model": Error, "description": "upload over 5 MiB or too many pixels"},
        415: {"model": Error, "description": "not an image, or an unsupported format or content type"},
        422: {"model": Error, "description": "truncated or corrupt image, or a malformed request"},
        503: {"model": Error, "description": "models still loading"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _MULTIPART}, "application/json": {"schema": _JSON}},
        }
    },
)
def infer_codes(upload: UploadDep, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Q's posterior over every code for one image. Any size and mode: converted to the model's channels, fitted
    with padding, and a dark-on-light upload inverted for light-on-dark models (MNIST)."""
    model = resolve_model(registry, upload.model)
    spec = model.spec
    im = decode_upload(upload.data, max_pixels=settings.max_upload_pixels, field=upload.field)
    c, h, w = model.image_shape
    x = prepare(im, channels=c, height=h, width=w, light_on_dark=model.light_on_dark)
    out = model.recognize(x)
    codes = spec.read(out, 0)
    # reconstruction: noise at the prior's centre, codes at Q's estimates
    z = spec.noise.centre_np(1)
    c_vec = spec.encode_np({name: np.array([v["value"]], np.float64) for name, v in codes.items()})
    recon = model.generate(z, c_vec)[0]
    return validated_json(InferResponse, {"model": model.id, "codes": codes, "reconstruction": png_base64(recon)})
