"""The generator in the page (onnxruntime-web in a Web Worker) against the service, and the server fallback.

Same (seed, codes) -> same pixels (max difference 1/255) from the page's own generator and from POST /generate,
for several seeds and codes of each served model (the tiny test models and the shipped ones in models/)."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import DESKTOP, new_page, served_models

pytestmark = pytest.mark.browser


def png_pixels(data_url: str) -> np.ndarray:
    """A PNG data URL -> (H, W, C) uint8; the page's canvas PNGs are RGBA (opaque), the service's grey or RGB."""
    im = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    arr = np.asarray(im.convert("RGB"))
    return arr


def wait_local(page, model_id: str) -> None:
    page.wait_for_function(
        "(id) => window.explorer.engine()?.mode({id}) === 'browser' && window.explorer.idle()",
        arg=model_id,
        timeout=60_000,
    )


def cases(model: dict) -> list[dict]:
    """Three seeds (one near 2**53) with the default codes, a random draw of every code and extreme values."""
    rng = np.random.default_rng(len(model["id"]))
    out = []
    for seed in (0, 12345, 2**53 - 3):
        codes = {}
        for code in model["codes"]:
            control = code["control"]
            if control["widget"] == "range":
                codes[code["name"]] = float(rng.uniform(control["hard_min"], control["hard_max"]))
            else:
                codes[code["name"]] = int(rng.integers(len(control["choices"])))
        out.append({"seed": seed, "codes": codes})
    out.append({"seed": 7, "codes": {}})  # every code from the prior: the portable sampler's draw of the codes
    return out


def test_local_pixels_match_the_service(browser, server):
    context, page = new_page(browser, server, viewport=DESKTOP)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        for model in served_models(server):
            page.goto(f"/#model={model['id']}&seed=1")
            wait_local(page, model["id"])
            assert page.locator("#engine").inner_text() == "in browser"
            for case in cases(model):
                local = page.evaluate(
                    "async ([id, p]) => { const e = window.explorer.engine();"
                    " const m = (await e.models()).body.models.find((x) => x.id === id);"
                    " const r = await e.generate(m, {model: id, n: 1, ...p}); return [r.where, r.body]; }",
                    [model["id"], case],
                )
                where, body = local
                assert where == "browser"
                served = httpx.post(f"{server.url}/generate", json={"model": model["id"], "n": 1, **case}, timeout=30)
                served = served.json()
                # the same z, bit for bit (float32 through JSON), and the same code values
                assert np.array_equal(np.float32(body["z"]), np.float32(served["z"])), (model["id"], case)
                assert body["codes"][0] == pytest.approx(served["codes"][0], abs=0), (model["id"], case)
                a = png_pixels(body["images"][0]).astype(int)
                b = png_pixels(f"data:image/png;base64,{served['images'][0]}").astype(int)
                assert a.shape == b.shape
                assert np.abs(a - b).max() <= 1, (model["id"], case, int(np.abs(a - b).max()))
        # the image on screen is the page's own: the one for the URL's state
        state = page.evaluate("() => window.explorer.state()")
        served = httpx.post(
            f"{server.url}/generate",
            json={"model": state["model"], "n": 1, "seed": state["seed"], "codes": state["codes"]},
            timeout=30,
        ).json()
        shown = png_pixels(page.locator("#main-image").get_attribute("src")).astype(int)
        assert np.abs(shown - png_pixels(f"data:image/png;base64,{served['images'][0]}")).max() <= 1
    finally:
        context.close()
    assert not errors, errors


def test_fallback_without_the_runtime(browser, server):
    """onnxruntime-web unavailable (npm absent at install): the badge says "server" and images still come."""
    context, page = new_page(browser, server, viewport=DESKTOP)
    page.route("**/static/ort/**", lambda route: route.fulfill(status=404, body="not installed"))
    try:
        page.goto("/#model=tiny&seed=5")
        page.wait_for_function(
            "() => document.body.classList.contains('ready') && window.explorer.idle()"
            " && !!document.getElementById('main-image').src",
            timeout=30_000,
        )
        assert page.locator("#engine").inner_text() == "server"
        assert "runtime unavailable" in page.locator("#engine").get_attribute("title")
        assert page.evaluate("() => window.explorer.engine().worker") is None
        src = page.locator("#main-image").get_attribute("src")
        served = httpx.post(
            f"{server.url}/generate",
            json={"model": "tiny", "n": 1, "seed": 5, "codes": page.evaluate("() => window.explorer.state().codes")},
            timeout=30,
        ).json()
        assert src == f"data:image/png;base64,{served['images'][0]}"  # the server's own PNG, unchanged
    finally:
        context.close()


def test_model_files_have_etags(server):
    model = served_models(server)[0]["id"]
    url = f"{server.url}/models/{model}/files/generator.onnx"
    first = httpx.get(url, timeout=30)
    assert first.status_code == 200 and len(first.content) > 0
    import hashlib

    etag = first.headers["etag"]
    assert etag == f'"{hashlib.sha256(first.content).hexdigest()}"'
    assert first.headers["cache-control"] == "no-cache"
    again = httpx.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(url, headers={"If-None-Match": '"other"'}, timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/models/{model}/files/manifest.json", timeout=30).status_code == 404
    page = httpx.get(f"{server.url}/", timeout=30)
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
