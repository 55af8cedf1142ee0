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


# engine.generate in the page, its image i painted on a probe canvas as the explorer paints (frames.js)
GENERATE_AND_PAINT = """async ([id, p, i]) => {
  const e = window.explorer.engine();
  const { paint, isFrame } = await import('/static/frames.js');
  const m = (await e.models()).body.models.find((x) => x.id === id);
  const r = await e.generate(m, {model: id, ...p});
  let c = document.getElementById('probe');
  if (!c) { c = document.createElement('canvas'); c.id = 'probe'; document.body.append(c); }
  const frame = isFrame(r.body.images[i]);
  await paint(c, r.body.images[i]);
  return [r.where, r.runner, frame, {z: r.body.z[i], codes: r.body.codes[i]}];
}"""


def canvas_pixels(page, selector: str) -> np.ndarray:
    """What a canvas holds, read back at its own size (RGBA from getImageData -> (H, W, 3) uint8): exactly the
    bytes the page painted, no PNG in between."""
    width, height, data = page.evaluate(
        "(s) => { const c = document.querySelector(s);"
        " return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }",
        selector,
    )
    return np.asarray(data, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]


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
            # ?runner=page: one-image runs on the page's thread even when the loaded machine makes them slow
            page.goto(f"/?runner=page#model={model['id']}&seed=1")
            wait_local(page, model["id"])
            assert page.locator("#engine").inner_text() == "in browser"
            for case in cases(model):
                # n = 1: a live frame, on the page's thread (page-runner.js); n = 2: a batch, in the worker. Each
                # image as the page paints it: floats written with putImageData (frames.js) on a canvas, read back
                for n, runner in ((1, "page"), (2, "worker")):
                    served = httpx.post(
                        f"{server.url}/generate", json={"model": model["id"], "n": n, **case}, timeout=30
                    )
                    served = served.json()
                    for i in range(n):
                        where, ran, frame, body = page.evaluate(GENERATE_AND_PAINT, [model["id"], {"n": n, **case}, i])
                        where_ = (model["id"], case, n, i)
                        assert (where, ran, frame) == ("browser", runner, True), where_  # floats, not a PNG
                        # the same z, bit for bit (float32 through JSON), and the same code values
                        assert np.array_equal(np.float32(body["z"]), np.float32(served["z"][i])), where_
                        assert body["codes"] == pytest.approx(served["codes"][i], abs=0), where_
                        a = canvas_pixels(page, "#probe").astype(int)
                        b = png_pixels(f"data:image/png;base64,{served['images'][i]}").astype(int)
                        assert a.shape == b.shape
                        assert np.abs(a - b).max() <= 1, (*where_, int(np.abs(a - b).max()))
        # the image on screen is the page's own: the one for the URL's state
        state = page.evaluate("() => window.explorer.state()")
        served = httpx.post(
            f"{server.url}/generate",
            json={"model": state["model"], "n": 1, "seed": state["seed"], "codes": state["codes"]},
            timeout=30,
        ).json()
        shown = canvas_pixels(page, "#main-image").astype(int)
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
            " && 'painted' in document.getElementById('main-image').dataset",
            timeout=30_000,
        )
        assert page.locator("#engine").inner_text() == "server"
        assert "runtime unavailable" in page.locator("#engine").get_attribute("title")
        assert page.evaluate("() => window.explorer.engine().worker") is None
        served = httpx.post(
            f"{server.url}/generate",
            json={"model": "tiny", "n": 1, "seed": 5, "codes": page.evaluate("() => window.explorer.state().codes")},
            timeout=30,
        ).json()
        # the server's own PNG, decoded onto the canvas: exactly its pixels
        expected = png_pixels(f"data:image/png;base64,{served['images'][0]}")
        assert np.array_equal(canvas_pixels(page, "#main-image"), expected)
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
