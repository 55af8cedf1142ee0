"""A served model's ONNX files, for the page's in-browser generator (onnxruntime-web) and recognizer.

The manifest holds each file's sha256, checked when the model loaded; it is the file's strong ETag, so a browser
revalidates with If-None-Match and gets a 304 without the body (6.9 MB for the int8 MNIST generator)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse

from spec.latent import sent_text
from spec.manifest import GENERATOR_FILE, RECOGNIZER_FILE

from ...core.model import file_identity
from ..deps import ModelDep

router = APIRouter(tags=["models"])

FILES = (GENERATOR_FILE, RECOGNIZER_FILE)
# Revalidate on every use (the URL names a model, not a version: a re-export swaps the file in place); the 304
# costs one round trip and no body.
CACHE_CONTROL = "no-cache"


def etag_matches(header: str | None, etag: str) -> bool:
    # If-None-Match: "*" or a comma-separated list of (possibly weak, W/"...") tags
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


@router.head("/models/{model_id}/files/{name}", include_in_schema=False)  # one operation id in the schema
@router.get(
    "/models/{model_id}/files/{name}",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the ONNX file"},
        304: {"description": "If-None-Match holds the file's sha256"},
        404: {"description": "unknown model or file"},
        503: {"description": "the file changed on disk since the service loaded it"},
    },
)
def model_file(name: str, model: ModelDep, request: Request) -> Response:
    """One of the model's ONNX files (generator.onnx, recognizer.onnx); ETag: its sha256 from the manifest."""
    if name not in FILES:
        raise HTTPException(404, f"name: no file {sent_text(name)}; a model serves {list(FILES)}")
    if file_identity(model.folder / name) != model.files_on_disk.get(name):
        # swapped or removed since the sha256 check at load: its bytes would go out under the old file's ETag (and
        # the service still runs the old one); a restart loads and checks the new file
        raise HTTPException(
            503, f"{name} of model {model.id!r} changed on disk since the service loaded it; restart the service"
        )
    etag = f'"{model.manifest.files[name].sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Cross-Origin-Resource-Policy": "same-origin"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(model.folder / name, media_type="application/octet-stream", headers=headers)
