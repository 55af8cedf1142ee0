"""A served model's ONNX files, for the page's in-browser generator (onnxruntime-web) and recognizer.

The manifest holds each file's sha256, checked when the model loaded; it is the file's strong ETag, so a browser
revalidates with If-None-Match and gets a 304 without the body (6.9 MB for the int8 MNIST generator)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from spec.latent import sent_text
from spec.manifest import GENERATOR_FILE, RECOGNIZER_FILE

from ...core.model import file_identity
from ..deps import ModelDep
from ..responses import error_response

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
    identity = file_identity(model.folder / name)  # (size, mtime_ns, inode)
    if identity is None or identity != model.files_on_disk.get(name):
        # swapped or removed since the sha256 check at load: its bytes would go out under the old file's ETag (and
        # the service still runs the old one); a restart loads and checks the new file
        raise HTTPException(
            503, f"{name} of model {model.id!r} changed on disk since the service loaded it; restart the service"
        )
    etag = f'"{model.manifest.files[name].sha256}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Cross-Origin-Resource-Policy": "same-origin"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    wanted = request.headers.get("range")
    if wanted is not None and request.headers.get("if-range") is None:  # with If-Range the file may go whole
        size = identity[0]
        try:
            ModelFile._parse_range_header(wanted, size)  # a malformed range: the whole file, as the response sends
        except RangeNotSatisfiable:  # answered as every error is, JSON, with the size a client can ask within
            return error_response(
                f"range: {sent_text(wanted)} lies beyond the file's {size} bytes",
                416,
                {"Content-Range": f"bytes */{size}"},
            )
    return ModelFile(model.folder / name, media_type="application/octet-stream", headers=headers)


class ModelFile(FileResponse):
    """A Range header this cannot serve (another unit than bytes, or a malformed one) is ignored and the whole file
    sent with 200 (RFC 9110 14.2: a server ignores a range unit it does not know, and may ignore an invalid range);
    Starlette answered 400 in plain text."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []  # no range: the whole file
