"""The service's answers to faults of its own and to odd requests: every error is JSON {"detail": ...} (a key no
UTF-8 can hold, a fault inside the service), HEAD on the GET routes, the model files as verified at load, and the
multipart form's model field read like the JSON form's."""

from __future__ import annotations

import base64
import io
import shutil

import pytest
from conftest import make_client, wait_ready
from PIL import Image


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("path, body", [("/generate", {}), ("/traverse", {"code": "c1"})])
@pytest.mark.parametrize("key", ["\\ud800", "x" * 100_000, "a.b"])
def test_any_code_key_gets_a_json_422_that_quotes_it_clipped(client, path, body, key):
    # a lone surrogate escaped in the JSON text: a valid JSON string that no UTF-8 can encode
    extra = "".join(f', "{k}": "{v}"' for k, v in body.items())
    raw = '{"codes": {"' + key + '": 1}' + extra + "}"
    r = client.post(path, content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/json", r.text[:200]
    detail = r.json()["detail"]
    assert detail.startswith("codes[") and "unknown code" in detail and len(detail) < 400


def test_a_fault_inside_the_service_is_a_json_500(tiny_models_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    with make_client(models) as c:
        wait_ready(c)
        c.app.state.registry.models["tiny"].generator = None  # every run of its generator now fails
        r = c.post("/generate", json={"model": "tiny"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "internal error: the service could not answer this request (see its log)"}
        assert c.post("/generate", json={"model": "tiny-gan"}).status_code == 200  # the others still answer


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/models", "/models/tiny", "/metrics", "/", "/docs"])
def test_head_answers_like_get_without_a_body(client, path):
    get, head = client.get(path), client.head(path)
    assert get.status_code == 200 and head.status_code == 200, (path, head.status_code)
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/no-such-route").status_code == 404 and client.head("/generate").status_code == 405


def test_model_files_are_served_only_as_verified_at_load(tiny_models_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    with make_client(models) as c:
        wait_ready(c)
        url = "/models/tiny/files/generator.onnx"
        first = c.get(url)
        assert first.status_code == 200 and first.headers["etag"]
        path = models / "tiny" / "generator.onnx"
        path.write_bytes(path.read_bytes() + b"\0")  # rewritten in place: other bytes under the old ETag
        r = c.get(url)
        assert r.status_code == 503 and "changed on disk since the service loaded it" in r.json()["detail"]
        path.unlink()  # gone: the same JSON answer, not a plain-text 500
        r = c.get(url)
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        assert c.get("/models/tiny/files/recognizer.onnx").status_code == 200  # the untouched file still is


def test_the_form_model_field_is_read_like_the_json_one(client):
    files = {"file": ("a.png", png(), "image/png")}
    r = client.post("/infer-codes", files=files, data={"model": ""})
    assert r.status_code == 422 and r.json()["detail"].startswith("model: must be 1-128 characters")
    assert client.post("/infer-codes", files=files, data={"model": "tiny"}).status_code == 200
    assert client.post("/infer-codes", files=files).status_code == 200  # no field: the default model
    # a JSON type like application/merge-patch+json is JSON here too, as on /generate
    body = {"image": "data:image/png;base64," + base64.b64encode(png()).decode()}
    r = client.post("/infer-codes", json=body, headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def test_a_mount_answers_other_methods_with_405_not_a_json_routes_415(client):
    r = client.post("/static/app.js", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 405, r.text
    assert client.head("/static/app.js").status_code == 200


def test_an_error_body_holds_any_text_a_message_quotes():
    import json

    from backend.api.responses import error_response

    r = error_response("codes.\ud800: é", 422)  # a lone surrogate: no UTF-8 encoder takes it
    assert r.status_code == 422 and json.loads(r.body) == {"detail": "codes.\ud800: é"}


def test_model_file_ranges_are_served_ignored_or_refused_as_json(client):
    url = "/models/tiny/files/generator.onnx"
    whole = client.get(url).content
    size = len(whole)
    part = client.get(url, headers={"range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == whole[:10]
    # a unit this does not serve, or a malformed range: ignored, the whole file (was 400 in plain text)
    for header in ("items=0-1", "bytes=5-2", "bytes=abc"):
        r = client.get(url, headers={"range": header})
        assert r.status_code == 200 and r.content == whole, header
    # beyond the end: 416 as every error is, JSON, saying the size
    r = client.get(url, headers={"range": f"bytes={size + 10}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
    assert r.json()["detail"].startswith("range: ") and f"{size} bytes" in r.json()["detail"]


def test_a_405_of_a_get_route_lists_head_in_allow(client):
    for path in ("/models/tiny", "/healthz", "/models/tiny/files/generator.onnx"):
        r = client.delete(path)
        assert r.status_code == 405 and "HEAD" in r.headers["allow"].split(", "), (path, r.headers)
        assert client.head(path).status_code == 200  # as Allow says
    r = client.get("/generate")  # a POST route: no HEAD to add
    assert r.status_code == 405 and r.headers["allow"] == "POST"
