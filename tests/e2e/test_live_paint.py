"""The live paint path in browser mode: a drag paints floats with putImageData (no PNG per frame), one-image frames
run on the page's own thread when the graph is fast, and values that arrive while a run is in flight are dropped
(only the newest is run)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from .conftest import DESKTOP, new_page
from .test_local_generation import canvas_pixels, png_pixels, wait_local

pytestmark = pytest.mark.browser

# counts the page's PNG work: encodes (canvas.toDataURL / toBlob) and decodes (HTMLImageElement.decode)
COUNT_PNG = """
window.pngWork = 0;
for (const [proto, name] of [[HTMLCanvasElement.prototype, 'toDataURL'], [HTMLCanvasElement.prototype, 'toBlob'],
                             [HTMLImageElement.prototype, 'decode']]) {
  const original = proto[name];
  proto[name] = function (...args) { window.pngWork++; return original.apply(this, args); };
}
"""


def open_local(browser, server, hash_: str, query: str = ""):
    context, page = new_page(browser, server, viewport=DESKTOP)
    context.add_init_script(COUNT_PNG)
    page.goto(f"/{query}#{hash_}")
    wait_local(page, "tiny")
    page.wait_for_function("() => window.explorer.firstLocalPaint !== null", timeout=30_000)
    return context, page


def test_drag_paints_floats_in_the_input_frame(browser, server):
    context, page = open_local(browser, server, "model=tiny&seed=4", "?runner=page")
    try:
        slider = page.get_by_role("slider", name="c1", exact=True)
        box = slider.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + 12, y)
        page.mouse.down()
        page.evaluate(
            "() => { window.pngWork = 0; window.explorer.inputToPaint.length = 0;"
            " window.explorer.latencyParts.length = 0; }"
        )
        for i in range(1, 16):
            page.mouse.move(box["x"] + 12 + i * (box["width"] - 24) / 15, y)
            page.wait_for_timeout(16)
        page.wait_for_function("() => window.explorer.idle()")
        png_work, parts = page.evaluate("() => [window.pngWork, window.explorer.latencyParts.slice()]")
        page.mouse.up()
        assert png_work == 0  # no PNG encoded or decoded while dragging (the old path: one of each per frame)
        assert len(parts) >= 5, parts
        # every frame ran on the page's thread and was painted at once
        assert {p["runner"] for p in parts} == {"page"}, parts
        assert all(p["graph"] is not None and p["paint"] >= 0 and p["frame"] >= 0 for p in parts)
        assert page.locator("#engine").inner_text() == "in browser"
        assert "page's thread" in page.locator("#engine").get_attribute("title")
    finally:
        context.close()


@pytest.mark.parametrize("query", ["?runner=page", "?runner=worker"])
def test_values_arriving_during_a_run_are_dropped(browser, server, query):
    """20 input events in one task: the first starts a run, the other 19 replace each other while it is in flight;
    two runs in all, and the canvas ends on the last value's image."""
    context, page = open_local(browser, server, "model=tiny&seed=6", query)
    try:
        page.evaluate("() => { window.explorer.requests = 0; }")
        page.evaluate(
            """() => { const s = document.querySelector('[aria-label=c1]');
            for (let i = 0; i < 20; i++) {
              s.value = String(Number(s.min) + (i + 1) * (Number(s.max) - Number(s.min)) / 20);
              s.dispatchEvent(new Event('input', { bubbles: true }));
            } }"""
        )
        page.wait_for_function("() => window.explorer.idle()")
        assert page.evaluate("() => window.explorer.requests") == 2
        state = page.evaluate("() => window.explorer.state()")
        served = httpx.post(
            f"{server.url}/generate", json={"model": "tiny", "n": 1, "seed": 6, "codes": state["codes"]}, timeout=30
        ).json()
        expected = png_pixels(f"data:image/png;base64,{served['images'][0]}").astype(int)
        assert np.abs(canvas_pixels(page, "#main-image").astype(int) - expected).max() <= 1
    finally:
        context.close()


def test_downloads_are_pngs_of_the_painted_pixels(browser, server, tmp_path):
    """PNGs are made only on download: the main picture 8x (nearest neighbour), the traversal grid 4x with gaps."""
    from PIL import Image

    context, page = open_local(browser, server, "model=tiny&seed=9")
    try:
        shown = canvas_pixels(page, "#main-image")
        with page.expect_download() as info:
            page.get_by_role("button", name="Download PNG").first.click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        png = np.asarray(Image.open(path).convert("RGB"))
        assert png.shape == (shown.shape[0] * 8, shown.shape[1] * 8, 3)
        assert np.array_equal(png[::8, ::8], shown)
        page.get_by_role("tab", name="Traversal grid").click()
        page.wait_for_function("() => window.explorer.idle() && document.querySelectorAll('#grid canvas').length > 0")
        rows, cols = page.evaluate("() => [window.explorer.state().rows, document.getElementById('grid-cols').value]")
        first = canvas_pixels(page, "#grid canvas")
        with page.expect_download() as info:
            page.locator("#download-grid").click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        grid = np.asarray(Image.open(path).convert("RGB"))
        h, w = first.shape[0] * 4, first.shape[1] * 4
        assert grid.shape == (rows * h + (rows - 1) * 4, int(cols) * w + (int(cols) - 1) * 4, 3)
        assert np.array_equal(grid[:h:4, :w:4], first)  # the top-left tile is the first cell's pixels
    finally:
        context.close()
