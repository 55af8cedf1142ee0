"""Hosting under a path prefix, as real users do.

* The static build (`infogan site`) in a sub-folder of a static host (`python -m http.server` serving a parent
  folder, as GitHub Pages serves a project at /repo/), opened with and without the trailing slash and from a link
  with the page's state.
* The service behind a reverse proxy that serves it under /explorer and strips the prefix (`uvicorn --root-path
  /explorer`), the page opened at /explorer/ and at /explorer (a proxy that forwards the bare prefix as "/").

Every request the page, its worker and the WASM runtime make must stay under the prefix: the proxy (or the static
host's parent folder) answers 404 anywhere else, as the host's own root would."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from training.site import build_site

from .conftest import DESKTOP, ROOT
from .prefix_proxy import PrefixProxy, _free_port

pytestmark = pytest.mark.browser

SUB = "/some/sub/path"
PREFIX = "/explorer"
LOADED = "document.body.classList.contains('ready') && window.explorer.idle()"
FAILED = "!document.getElementById('error').hidden"
# the main picture is painted only while Explore is shown
READY = f"() => {LOADED} && 'painted' in document.getElementById('main-image').dataset || {FAILED}"


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s")


@pytest.fixture(scope="module")
def sub_site(tiny_models_dir, tmp_path_factory):
    """The static build in <root>/some/sub/path, the host serving <root>; -> (base URL, request paths seen)."""
    root = tmp_path_factory.mktemp("host")
    build_site(root / SUB.strip("/"), tiny_models_dir)
    port = _free_port()
    log = root.parent / "http.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=out,  # http.server logs each request on stderr
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}{SUB}/")
        yield f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def proxied(tiny_models_dir, tmp_path_factory):
    """`uvicorn backend.main:app --root-path /explorer` behind a prefix-stripping proxy -> the proxy's base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("prefixed") / "uvicorn.log"
    env = {**os.environ, "MODELS_DIR": str(tiny_models_dir), "DEVICE": "cpu", "ORT_THREADS": "1", "WORKERS": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(port)]
            + ["--root-path", PREFIX, "--log-level", "warning", "--no-access-log"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"http://127.0.0.1:{port}/readyz")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _open(browser, url: str):
    """-> (context, page, errors: uncaught errors, answers >= 400, failed requests), once the page is idle."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: errors.append(f"failed {r.url}"))
    page.goto(url)
    try:
        page.wait_for_function(READY if "view=" not in url else f"() => {LOADED} || {FAILED}", timeout=60_000)
    except PlaywrightTimeout:
        context.close()
        pytest.fail(f"the page at {url} never became ready: {errors}")  # e.g. its scripts 404 at the host's root
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    return context, page, errors


def _every_view(page, tmp_path) -> None:
    """Explore (and its download), the traversal grid, side by side, and a drawing read in the page."""
    assert page.locator("#gallery img").count() == 8
    with page.expect_download() as info:
        page.locator("#download-image").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert np.asarray(Image.open(saved)).shape[:2] == (28 * 8, 28 * 8)
    page.get_by_role("tab", name="Traversal grid").click()
    page.wait_for_function("() => window.explorer.idle() && document.querySelectorAll('#grid canvas').length > 0")
    page.get_by_role("tab", name="Side by side").click()
    page.wait_for_function("() => window.explorer.idle() && 'painted' in document.getElementById('compare-b').dataset")
    page.get_by_role("tab", name="Infer codes").click()
    box = page.locator("#draw").bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 6):
        page.mouse.move(x, y + i * box["height"] * 0.1)
    page.mouse.up()
    page.wait_for_function("() => window.explorer.idle() && !document.getElementById('infer-result').hidden")
    assert page.locator("#infer-recon").get_attribute("src").startswith("data:image/png;base64,")
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()


@pytest.mark.parametrize("path", [f"{SUB}/", SUB, f"{SUB}/#model=tiny-gan&seed=5&view=compare&vs=tiny"])
def test_static_site_in_a_sub_folder(browser, sub_site, path, tmp_path):
    """With or without the trailing slash (the host redirects a folder to it) and from a link holding the state:
    the page, its worker, the runtime and the model files all load from the sub-folder, and every view works."""
    base, log = sub_site
    start = len(log.read_text())
    context, page, errors = _open(browser, base + path)
    try:
        if "#" in path:  # the link's state is shown, not the defaults
            assert page.evaluate("() => window.explorer.state()")["model"] == "tiny-gan"
            assert page.evaluate("() => window.explorer.state()")["seed"] == 5
            assert page.locator("#view-compare").is_visible()
            page.get_by_role("tab", name="Explore").click()
            page.wait_for_function(READY)
        assert page.locator("#engine").inner_text() == "in browser"
        _every_view(page, tmp_path)
    finally:
        context.close()
    assert not errors, errors
    requested = [line.split('"')[1].split()[1] for line in log.read_text()[start:].splitlines() if '"GET ' in line]
    assert requested and all(p.startswith(SUB) for p in requested), requested


@pytest.mark.parametrize("path", [f"{PREFIX}/", PREFIX, f"{PREFIX}/#model=tiny&seed=5&view=traverse"])
def test_service_under_a_proxy_prefix(browser, proxied, path, tmp_path):
    """The page served at /explorer/ (and at /explorer itself, the bare prefix forwarded as "/") loads its files,
    asks /models and fetches the ONNX files under the prefix, and generates in the browser. Before, it asked for
    /static/app.js at the proxy's root (the page stayed blank), and with the page at /explorer the model files were
    looked for at the root (the page fell back to the server)."""
    with PrefixProxy(proxied, PREFIX, redirect=False) as proxy:
        context, page, errors = _open(browser, proxy.url + path)
        try:
            assert page.url.startswith(proxy.url + PREFIX)
            assert page.locator("#engine").inner_text() == "in browser", page.locator("#engine").get_attribute("title")
            assert page.evaluate("() => crossOriginIsolated")  # COOP + COEP under the prefix too
            if "#" in path:
                assert page.locator("#view-traverse").is_visible()
                page.get_by_role("tab", name="Explore").click()
                page.wait_for_function(READY)
            _every_view(page, tmp_path)
        finally:
            context.close()
    assert not errors, errors
    outside = [p for p in proxy.seen if p != PREFIX and not p.startswith(PREFIX + "/")]
    assert not outside, outside
    assert f"{PREFIX}/models" in proxy.seen and f"{PREFIX}/models/tiny/files/generator.onnx" in proxy.seen


def test_server_fallback_and_docs_under_a_proxy_prefix(browser, proxied):
    """?engine=server: every picture comes from POST /explorer/generate; /explorer/docs loads Swagger UI, its assets
    and the schema under the prefix. Model files answer with their ETag and 304 through the proxy."""
    with PrefixProxy(proxied, PREFIX) as proxy:
        context, page, errors = _open(browser, f"{proxy.url}{PREFIX}/?engine=server#model=tiny&seed=4")
        try:
            assert page.locator("#engine").inner_text() == "server"
            page.get_by_role("tab", name="Traversal grid").click()
            page.wait_for_function("() => window.explorer.idle() && document.querySelectorAll('#grid canvas').length")
            assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
            page.goto(f"{proxy.url}{PREFIX}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)  # the operations, read from /explorer/openapi.json
            assert page.locator(".opblock").count() >= 5
        finally:
            context.close()
        url = f"{proxy.url}{PREFIX}/models/tiny/files/generator.onnx"
        etag = httpx.get(url, timeout=30).headers["etag"]
        assert httpx.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
    assert not errors, errors
    assert f"{PREFIX}/generate" in proxy.seen and f"{PREFIX}/traverse" in proxy.seen
    outside = [p for p in proxy.seen if p != PREFIX and not p.startswith(PREFIX + "/")]
    assert not outside, outside
