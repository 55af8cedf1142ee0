"""Input-to-paint latency of the explorer page while a slider is dragged continuously.

Starts its own uvicorn server (MODELS_DIR: --models-dir, default models/, or tiny untrained models built in a
temporary folder when models/ holds none), opens the page in Chromium, drags a continuous code's slider back
and forth for a few seconds, and prints p50/p95 of the time from each slider `input` event to the first
animation frame that shows an image at least as new as that input (the page records both in
`window.explorer.inputToPaint`). Target: p95 <= 50 ms with the shipped MNIST model on CPU.

    python benchmarks/browser_latency.py                 # models/ (or tiny models)
    python benchmarks/browser_latency.py --model mnist --seconds 5 --json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks._server import Server  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def models_dir(requested: Path | None, scratch: Path) -> tuple[Path, str]:
    folder = requested or ROOT / "models"
    if folder.is_dir() and any((p / "manifest.json").is_file() for p in folder.iterdir()):
        return folder, "exported"
    if requested:
        raise SystemExit(f"--models-dir {requested} holds no model folders (<id>/manifest.json)")
    from conftest import build_tiny_model  # tests/conftest.py: the real export path, untrained weights

    build_tiny_model(scratch, "tiny", seed=0, title="Tiny InfoGAN")
    return scratch, "tiny (untrained; models/ holds no exported model)"


def drag(page, slider_name: str | None, seconds: float, step_ms: float) -> str:
    slider = page.get_by_role("slider", name=slider_name, exact=True) if slider_name else page.get_by_role("slider").first
    name = slider.get_attribute("aria-label")
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    left, width = box["x"] + 12, box["width"] - 24
    page.mouse.move(left + width / 2, y)
    page.mouse.down()
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds:
        # a triangle wave over the whole track, ~1.5 s per sweep: every move changes the value
        phase = (i * step_ms / 1500.0) % 2.0
        x = left + width * (phase if phase <= 1 else 2 - phase)
        page.mouse.move(x, y)
        page.wait_for_timeout(step_ms)
        i += 1
    page.mouse.up()
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--model", default=None, help="model id (default: the server's first)")
    parser.add_argument("--code", default=None, help="continuous code to drag (default: the first slider)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the drag")
    parser.add_argument("--step-ms", type=float, default=16.0, help="pause between mouse moves (~60 Hz)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder, kind = models_dir(args.models_dir, Path(tmp) / "models")
        folder.mkdir(exist_ok=True)
        server = Server(folder, Path(tmp) / "uvicorn.log", DEVICE="cpu", ORT_THREADS="1")
        try:
            server.wait_ready()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=DESKTOP)
                model = args.model or ""
                page.goto(f"{server.url}/#{'model=' + model + '&' if model else ''}seed=1")
                page.wait_for_function("() => document.body.classList.contains('ready') && window.explorer.idle()"
                                       " && !!document.getElementById('main-image').src", timeout=30_000)
                info = page.evaluate("() => window.explorer.state()")
                device = page.locator("#device").inner_text().removeprefix("device ").strip()
                # warm up (first ONNX runs, image decoder), then measure a fresh drag
                drag(page, args.code, 0.5, args.step_ms)
                page.wait_for_function("() => window.explorer.idle()")
                page.evaluate("() => { window.explorer.inputToPaint.length = 0; window.explorer.requests = 0; }")
                code = drag(page, args.code, args.seconds, args.step_ms)
                page.wait_for_function("() => window.explorer.idle()")
                lat = page.evaluate("() => window.explorer.inputToPaint.slice()")
                requests = page.evaluate("() => window.explorer.requests")
                browser.close()
        finally:
            server.stop()
    if not lat:
        raise SystemExit("no slider input reached the screen")
    result = {
        "model": info["model"], "models": kind, "device": device, "code": code, "inputs": len(lat),
        "requests": requests, "p50_ms": round(statistics.median(lat), 1), "p95_ms": round(percentile(lat, 95), 1),
        "max_ms": round(max(lat), 1), "mean_ms": round(statistics.fmean(lat), 1), "target_p95_ms": 50,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"model {result['model']} [{kind}], {device}, dragging {code} for {args.seconds:g} s")
    print(f"{result['inputs']} slider inputs -> {result['requests']} /generate requests (one in flight, frame-paced)")
    print(f"input -> painted: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, max {result['max_ms']} ms "
          f"(target p95 <= 50 ms) {'OK' if result['p95_ms'] <= 50 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
