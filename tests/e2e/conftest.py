"""A real uvicorn server on a free port serving tiny models (plus any exported models in models/), and Chromium.

Skips when /usr/bin/chromium (or playwright) is missing, unless INFOGAN_REQUIRE_BROWSER=1: then it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 780}

from benchmarks._server import Server  # noqa: E402  (one server helper for tests and benchmarks)

from .sprites_model import BASELINE_SCORES, SPRITES_BASELINE_ID, SPRITES_ID, build_sprites_model  # noqa: E402


def exported_models() -> list[Path]:
    """Exported models in $MODELS_DIR or models/ (served beside the tiny ones; the screenshots use 'mnist')."""
    root = Path(os.environ.get("MODELS_DIR") or ROOT / "models")
    return sorted(p for p in root.glob("*") if (p / "manifest.json").is_file()) if root.is_dir() else []


@pytest.fixture(scope="session")
def e2e_models_dir(tiny_models_dir: Path, tmp_path_factory, build_tiny_model) -> Path:
    from training.latent import Categorical, Continuous, LatentSpec, Noise

    root = tmp_path_factory.mktemp("e2e-models")
    # a model no other one can be compared with (its own spec), with word labels like Fashion-MNIST's
    words = LatentSpec(
        Noise(62, "uniform"),
        (Categorical("item", 4, ("T-shirt/top", "Trouser", "Ankle boot", "Bag")), Continuous("c1")),
    )
    build_tiny_model(root, "tiny-words", seed=2, title="Tiny, word labels", spec=words)
    # 64x64 models with ground-truth metrics (the Disentanglement view) and their baseline (side by side)
    build_sprites_model(root, SPRITES_ID, seed=5, compare_with=SPRITES_BASELINE_ID)
    build_sprites_model(root, SPRITES_BASELINE_ID, seed=6, title="Tiny sprites baseline", scores=BASELINE_SCORES)
    for folder in [*sorted(tiny_models_dir.iterdir()), *exported_models()]:
        if folder.is_dir() and not (root / folder.name).exists():
            (root / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def server(e2e_models_dir: Path, tmp_path_factory):
    srv = Server(e2e_models_dir, tmp_path_factory.mktemp("server") / "uvicorn.log", DEVICE="cpu", ORT_THREADS="1")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def browser():
    required = os.environ.get("INFOGAN_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("INFOGAN_REQUIRE_BROWSER=1 but playwright is not installed")
        pytest.skip("playwright is not installed")
    if not CHROMIUM.is_file():
        if required:
            pytest.fail(f"INFOGAN_REQUIRE_BROWSER=1 but {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def served_models(server) -> list[dict]:
    """GET /models as the page receives it."""
    return httpx.get(f"{server.url}/models", timeout=30).json()["models"]


def route_models(target, models: list[dict]) -> None:
    """Answer GET /models with ``models`` on a page or a context (a page's routes win over its context's)."""
    target.route("**/models", lambda route: route.fulfill(status=200, json={"models": models}))


def new_page(browser, server, **context_args):
    """A page in a fresh browser context on the server (context_args: viewport, is_mobile, ...) -> (context, page)."""
    context = browser.new_context(base_url=server.url, **context_args)
    pg = context.new_page()
    return context, pg


@pytest.fixture
def page(browser, server):
    context, pg = new_page(browser, server, viewport=DESKTOP)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"uncaught errors on the page: {errors}"
