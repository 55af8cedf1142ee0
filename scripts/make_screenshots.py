"""Screenshots of the explorer for the docs (run by `make figures`, never by the tests): the service on the shipped
models, Chromium at desktop (1280x860) and phone (390x844, 2x) size, every view.

Writes docs/screenshot.png and docs/screenshot-phone.png (the explore view, under the model chooser's thumbnails),
and docs/screenshot-<view>.png / docs/screenshot-<view>-phone.png for the traversal grid, side by side and
infer-codes views. For each --factors-model (default dsprites and chairs3d) that is served with ground-truth metrics
in its manifest, also its Disentanglement view (screenshot-factors-<id>[-phone].png) and its side by side
(screenshot-compare-<id>[-phone].png).

    .venv/bin/python scripts/make_screenshots.py [--models-dir models] [--model mnist]
        [--factors-model dsprites chairs3d] [--out docs]
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._server import Server  # noqa: E402  (the tests' and benchmarks' server helper)
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402  (one Chromium setup, as benchmarks/browser_latency.py)

DESKTOP = {"viewport": {"width": 1280, "height": 860}}
# an iPhone 12-15 class screen (the size issue 23 names), at its pixel density
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
# one picture per view; the codes are the Fig. 2 look of the shipped MNIST model (a 3, slightly wide and slanted)
VIEWS = {"explore": "", "traverse": "&grid=c1&rows=5", "compare": "", "infer": "", "factors": ""}
DIGIT_CODES = "&c.digit=3&c.c1=0.6&c.c2=-0.4"
# the shipped models with ground-truth metrics whose Disentanglement view and side by side the docs show
FACTORS_MODELS = ("dsprites", "chairs3d")
# the main model's views; each factors model adds its Disentanglement view and its side by side
MAIN_VIEWS = ("explore", "traverse", "compare", "infer")
SETTLED = (
    "() => document.body.classList.contains('ready') && window.explorer.idle()"
    " && [...document.querySelectorAll('.view:not([hidden]) img')].every((i) => !i.src || i.complete)"
)


def shoot(page, url: str, model: str, view: str, path: Path, full_page: bool, codes: str = DIGIT_CODES) -> None:
    page.goto(f"/#model={model}&seed=7&view={view}{codes}{VIEWS[view]}")
    page.wait_for_function(SETTLED, timeout=30_000)
    if view == "infer":  # a result to show: one of the model's own digits, read back by the recognizer
        digit = httpx.post(f"{url}/generate", json={"model": model, "seed": 21, "codes": {"digit": 4}}, timeout=30)
        png = path.with_suffix(".input.png")
        png.write_bytes(base64.b64decode(digit.json()["images"][0]))
        page.locator("#file").set_input_files(str(png))
        page.wait_for_selector("#infer-result:not([hidden])", timeout=30_000)
        png.unlink()
    if view == "explore":
        page.wait_for_function("() => document.querySelectorAll('#gallery img').length > 0", timeout=30_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    errors = page.locator("#error")
    if errors.is_visible():
        raise SystemExit(f"make_screenshots: error: the page shows an error for {view}: {errors.inner_text()}")
    page.screenshot(path=str(path), full_page=full_page)


def make_screenshots(
    models_dir: Path, out: Path, model: str = "mnist", factors_models: Sequence[str] = FACTORS_MODELS
) -> list[Path]:
    """Start the service on models_dir, write every view's desktop and phone screenshot into out; return the paths.
    Each of ``factors_models`` served with ground-truth metrics adds its Disentanglement view and side by side."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise SystemExit(f"make_screenshots: error: {CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(models_dir, Path(tmp) / "uvicorn.log", DEVICE="cpu")
        try:
            server.wait_ready()
            listing = httpx.get(f"{server.url}/models", timeout=30).json()["models"]
            served = [m["id"] for m in listing]
            if model not in served:
                shown = ", ".join(served)
                raise SystemExit(f"make_screenshots: error: model {model!r} is not served from {models_dir} ({shown})")
            with_factors = {m["id"] for m in listing if (m.get("metrics") or {}).get("disentanglement")}
            for missing in [f for f in factors_models if f not in with_factors]:
                print(f"no Disentanglement screenshots of {missing!r}: not served with ground-truth metrics")
            factors_models = [f for f in factors_models if f in with_factors]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for suffix, context_args, full_page in (("", DESKTOP, False), ("-phone", PHONE, True)):
                    context = browser.new_context(base_url=server.url, **context_args)
                    page = context.new_page()
                    shots = [(model, view, f"screenshot-{view}", DIGIT_CODES) for view in MAIN_VIEWS]
                    for factors_model in factors_models:
                        shots += [
                            (factors_model, "factors", f"screenshot-factors-{factors_model}", ""),
                            (factors_model, "compare", f"screenshot-compare-{factors_model}", ""),
                        ]
                    for shown, view, name, codes in shots:
                        path = out / f"{name.replace('screenshot-explore', 'screenshot')}{suffix}.png"
                        shoot(page, server.url, shown, view, path, full_page, codes)
                        written.append(path)
                    context.close()
                browser.close()
        finally:
            server.stop()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--model", default="mnist", help="the model shown (its compare_with is the side-by-side peer)")
    ap.add_argument(
        "--factors-model",
        nargs="*",
        default=list(FACTORS_MODELS),
        help=f"models with ground-truth metrics (default: {' '.join(FACTORS_MODELS)}; none given: none)",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    args = ap.parse_args()
    if not (args.models_dir / args.model / "manifest.json").is_file():
        ap.error(f"--model {args.model}: no model folder {args.models_dir / args.model} (with a manifest.json)")
    for path in make_screenshots(args.models_dir, args.out, args.model, args.factors_model):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
