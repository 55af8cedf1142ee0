"""`infogan site --out DIR` served by `python -m http.server` (no Python app behind it): the page generates images,
traversals and live readings of a drawing in the browser."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest

from training.site import build_site

from .conftest import DESKTOP
from .sprites_model import SPRITES_ID

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def site(e2e_models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "out"
    ids = build_site(out, e2e_models_dir)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, ids
    finally:
        proc.terminate()
        proc.wait(10)


def test_static_site_generates_in_the_browser(browser, site):
    url, ids = site
    assert {"tiny", "tiny-gan"} <= set(ids)
    context = browser.new_context(base_url=url, viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto("/#model=tiny&seed=3")
        page.wait_for_function(
            "() => document.body.classList.contains('ready') && window.explorer.idle()"
            " && 'painted' in document.getElementById('main-image').dataset"
            " || !document.getElementById('error').hidden",
            timeout=60_000,
        )
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        assert page.locator("#engine").inner_text() == "in browser"
        assert page.evaluate("() => crossOriginIsolated") is False  # a plain host: single-threaded WASM
        assert page.locator("#main-image").evaluate("(c) => 'painted' in c.dataset && c.width > 0")
        assert page.locator("#gallery img").count() == 8
        # the traversal grid, computed in the page
        page.get_by_role("tab", name="Traversal grid").click()
        page.wait_for_function("() => window.explorer.idle() && document.querySelectorAll('#grid canvas').length > 0")
        state = page.evaluate("() => window.explorer.state()")
        assert page.locator("#grid canvas").count() >= state["rows"] * 2
        # side by side: both models in the page
        page.get_by_role("tab", name="Side by side").click()
        page.wait_for_function(
            "() => window.explorer.idle() && 'painted' in document.getElementById('compare-b').dataset"
        )
        # reading codes: the upload (server-only) is hidden, the drawing is read live, stroke by stroke
        page.get_by_role("tab", name="Infer codes").click()
        assert page.locator("#dropzone").is_hidden()
        box = page.locator("#draw").bounding_box()
        x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2
        page.mouse.move(x, y)
        page.mouse.down()
        readings = []
        for i in range(1, 9):
            page.mouse.move(x, y + i * box["height"] * 0.08)
            page.wait_for_timeout(120)
            readings.append(int(page.locator("#infer-result").get_attribute("data-readings") or 0))
        page.mouse.up()
        assert readings[-1] >= 3 and readings[0] < readings[-1], readings  # updated while the pen moved
        assert page.locator("#infer-codes .infer-code").count() == 3  # tiny: digit, c1, c2
        assert page.locator("#infer-recon").get_attribute("src").startswith("data:image/png;base64,")
    finally:
        context.close()
    assert not errors, errors


def test_static_site_paints_the_thumbnails_in_the_page(browser, site):
    """No server behind the page: each thumbnail is generated in the browser, 64x64 and 28x28 alike."""
    url, ids = site
    context = browser.new_context(base_url=url, viewport=DESKTOP)
    page = context.new_page()
    try:
        page.goto(f"/#model={SPRITES_ID}&seed=3")
        page.wait_for_function(
            "() => document.body.classList.contains('ready') && window.explorer.idle()", timeout=60_000
        )
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        thumbs = page.locator("#chooser .thumb")
        assert [t.get_attribute("data-model") for t in thumbs.all()] == ids
        painted = page.locator("#chooser .thumb canvas[data-painted]")
        assert painted.count() == len(ids)
        assert {tuple(c.evaluate("(c) => [c.width, c.height]")) for c in painted.all()} >= {(28, 28), (64, 64)}
        assert page.get_by_role("tab", name="Disentanglement").is_visible()
    finally:
        context.close()
