"""The service under a reverse proxy's prefix (/explorer): uvicorn's --root-path (scope["path"] holds the prefix,
scope["root_path"] names it), and ROOT_PATH for `infogan serve` (the proxy strips the prefix, or forwards it). The
page, its static files with their isolation headers, /models, the model files and their ETags, /docs and an upload
must all answer under the prefix, and the page and /docs must name URLs under it (not the proxy's root)."""

from __future__ import annotations

import io
import re
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from backend.core.config import Settings
from backend.main import create_app

PREFIX = "/explorer"


def _client(models_dir, root_path: str = "") -> TestClient:
    app = create_app(Settings(models_dir=models_dir, device="cpu", ort_threads=1))
    return TestClient(app, root_path=root_path, raise_server_exceptions=False)


def _ready(client: TestClient, prefix: str) -> None:
    deadline = time.monotonic() + 30
    while client.get(f"{prefix}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "service not ready"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uvicorn_root_path(tiny_models_dir):
    """As under `uvicorn --root-path /explorer`: every path arrives with the prefix in front (uvicorn adds it)."""
    with _client(tiny_models_dir, root_path=PREFIX) as c:
        _ready(c, PREFIX)
        yield c, PREFIX


@pytest.fixture(scope="module")
def env_root_path(tiny_models_dir):
    """ROOT_PATH=/explorer/ (`infogan serve`, the images): the trailing slash is dropped."""
    app = create_app(Settings(models_dir=tiny_models_dir, device="cpu", ort_threads=1, root_path=PREFIX + "/"))
    with TestClient(app, raise_server_exceptions=False) as c:
        _ready(c, "")
        yield c


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(params=["uvicorn --root-path", "ROOT_PATH, prefix stripped", "ROOT_PATH, prefix forwarded"])
def prefixed(request):
    """(client, the path prefix requests carry on their way in): under ROOT_PATH the proxy may strip the prefix
    (paths arrive as /models) or forward it (/explorer/models)."""
    if request.param == "uvicorn --root-path":
        return request.getfixturevalue("uvicorn_root_path")
    return request.getfixturevalue("env_root_path"), "" if "stripped" in request.param else PREFIX


def test_page_names_its_files_under_the_prefix(prefixed):
    client, sent = prefixed
    page = client.get(f"{sent}/")
    assert page.status_code == 200
    # the page's stylesheet and scripts under the prefix: "/static/app.js" is the proxy's root, a 404 there
    assert re.findall(r'(?:src|href)="([^"]*static[^"]*)"', page.text) == [
        f"{PREFIX}/static/style.css",
        f"{PREFIX}/static/app.js",
    ]
    # cross-origin isolated (multi-threaded WASM): the page and its static files keep COOP + COEP under the prefix
    for response in (page, client.get(f"{sent}/static/engine-worker.js")):
        assert response.status_code == 200
        assert response.headers["cross-origin-opener-policy"] == "same-origin"
        assert response.headers["cross-origin-embedder-policy"] == "require-corp"


def test_api_and_model_files_under_the_prefix(prefixed):
    client, sent = prefixed
    models = client.get(f"{sent}/models").json()["models"]
    assert {"tiny", "tiny-gan"} <= {m["id"] for m in models}
    url = f"{sent}/models/tiny/files/generator.onnx"
    first = client.get(url)
    assert first.status_code == 200 and first.content
    etag = first.headers["etag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert client.post(f"{sent}/generate", json={"model": "tiny", "n": 1, "seed": 3}).status_code == 200
    # an upload reads its own body (not the JSON routes' limits): it was 415 "expected application/json" under
    # the prefix, where the middleware compared the prefixed path with /infer-codes
    upload = client.post(f"{sent}/infer-codes", files={"file": ("x.png", _png(), "image/png")}, data={"model": "tiny"})
    assert upload.status_code == 200, upload.text
    assert client.head(f"{sent}/healthz").status_code == 200


def test_docs_under_the_prefix(prefixed):
    client, sent = prefixed
    page = client.get(f"{sent}/docs").text
    assert f"url: '{PREFIX}/openapi.json'" in page
    assets = re.findall(r'(?:src|href)="([^"]*docs-assets[^"]*)"', page)
    assert assets and all(a.startswith(f"{PREFIX}/docs-assets/") for a in assets), assets
    for asset in assets:  # what the browser fetches through the proxy, which strips the prefix again (or not)
        assert client.get(sent + asset.removeprefix(PREFIX)).status_code == 200, asset
    schema = client.get(f"{sent}/openapi.json").json()
    assert schema["servers"] == [{"url": PREFIX}]  # "Try it out" sends to the prefix


def test_no_prefix_by_default(client):
    """Without a root path nothing changes: the page names /static/..., /docs /openapi.json."""
    page = client.get("/").text
    assert 'src="/static/app.js"' in page
    assert "url: '/openapi.json'" in client.get("/docs").text
    assert "servers" not in client.get("/openapi.json").json()


@pytest.mark.parametrize("bad", ["explorer", "/a b", "/x?y=1", "/<script>", "/a//b"])
def test_root_path_setting_refuses_what_is_no_plain_path(bad):
    with pytest.raises(ValidationError, match="root_path"):
        Settings(root_path=bad)


def test_root_path_setting_drops_a_trailing_slash():
    assert Settings(root_path="/explorer/").root_path == "/explorer"
    assert Settings(root_path="/").root_path == ""
