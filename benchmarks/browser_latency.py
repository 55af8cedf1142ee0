"""Input-to-paint latency of the explorer page while a slider is dragged continuously.

Starts its own uvicorn server (MODELS_DIR: --models-dir, default models/, or tiny untrained models built in a
temporary folder when models/ holds none), opens the page in Chromium, drags a continuous code's slider back
and forth for a few seconds, and prints p50/p95 of the time from each slider `input` event to the first
animation frame that shows an image at least as new as that input (the page records both in
`window.explorer.inputToPaint`), in the page's modes: "browser" (the generator runs in the page with
onnxruntime-web: a live one-image frame on the page's own thread when the graph is fast, frontend/static/
page-runner.js, its float output painted with putImageData), "worker" (?runner=worker: every run in the Web Worker,
which misses the input's own frame) and "server" (?engine=server: every frame is a POST /generate). Each latency is
split by the page's performance.now() marks (`window.explorer.latencyParts`) into: queue (input event -> its
request sent: waiting for the run in flight), run (sent -> result back; "graph": the ONNX run's own time inside it,
the rest is sampling z and, in the worker, messaging), paint (result -> pixels on the canvas) and frame (-> the
next animation frame); p50/p95 of each.
Also the time from page open (navigation start) to the first image generated in the page, from a cold HTTP cache,
and the page's main-thread tasks of 50 ms and more (Long Tasks API) while it opened (every model file loaded, in
browser mode the page-thread generator session created and warmed) and while it was dragged.
Target: browser mode p95 <= 16 ms (one frame at 60 Hz) with the shipped MNIST model.

    python benchmarks/browser_latency.py                 # models/ (or tiny models), all three modes
    python benchmarks/browser_latency.py --model mnist --seconds 5 --modes browser --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks._cli import errors_in_one_line, fail, models_dir, positive_float  # noqa: E402
from benchmarks._server import Server  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP  # noqa: E402
from training.machine import cpu_name  # noqa: E402

# one frame at 60 Hz: a drag renders in browser mode within the frame it was made in
TARGET_P95_MS = 16
# The page's main-thread tasks of 50 ms and more (Chromium's Long Tasks API reports no shorter ones), from page open:
# in browser mode they include creating the page-thread generator session and its warm-up runs (page-runner.js).
LONG_TASKS = """window.longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.longTasks.push(e.duration);
}).observe({type: "longtask", buffered: true});
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def served_models(requested: Path | None, scratch: Path) -> tuple[Path, str]:
    """(MODELS_DIR, what it holds): --models-dir (checked before this), else models/, else tiny untrained models."""
    folder = requested or ROOT / "models"
    if requested or (folder.is_dir() and any((p / "manifest.json").is_file() for p in folder.iterdir())):
        return folder, "exported"
    from conftest import build_tiny_model  # tests/conftest.py: the real export path, untrained weights

    build_tiny_model(scratch, "tiny", seed=0, title="Tiny InfoGAN")
    return scratch, "tiny (untrained; models/ holds no exported model)"


def drag(page, slider_name: str | None, seconds: float, step_ms: float) -> str:
    slider = (
        page.get_by_role("slider", name=slider_name, exact=True) if slider_name else page.get_by_role("slider").first
    )
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


def measure(browser, url: str, mode: str, args) -> dict:
    """One fresh context (cold HTTP cache): open the page, wait for `mode` to paint, drag, collect the figures."""
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(LONG_TASKS)
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(
        url
        + {"browser": "", "worker": "?runner=worker", "server": "?engine=server"}[mode]
        + f"#{'model=' + args.model + '&' if args.model else ''}seed=1"
    )
    page.wait_for_function(
        "() => document.body.classList.contains('ready') && window.explorer.idle()"
        " && 'painted' in document.getElementById('main-image').dataset",
        timeout=60_000,
    )
    if mode != "server":
        page.wait_for_function("() => window.explorer.firstLocalPaint !== null", timeout=60_000)
    first_local = page.evaluate("() => window.explorer.firstLocalPaint")  # ms since navigation start
    wall_first = time.perf_counter() - t0
    engine = page.locator("#engine").inner_text()
    if engine != ("server" if mode == "server" else "in browser"):
        fail(f"{mode} mode: the page's badge says {engine!r} ({page.locator('#engine').get_attribute('title')})")
    info = page.evaluate("() => window.explorer.state()")
    threads = page.evaluate("() => window.explorer.engine().threads")
    device = page.locator("#device").inner_text().removeprefix("device ").strip()
    # every model file loaded (idle() waits for the page-thread session too): the long tasks of opening the page
    opening = page.evaluate("() => window.longTasks.splice(0)")
    # warm up (first ONNX runs, image decoder), then measure a fresh drag
    drag(page, args.code, 0.5, args.step_ms)
    page.wait_for_function("() => window.explorer.idle()")
    page.evaluate(
        "() => { window.explorer.inputToPaint.length = 0; window.explorer.latencyParts.length = 0;"
        " window.explorer.requests = 0; window.longTasks.length = 0; }"
    )
    code = drag(page, args.code, args.seconds, args.step_ms)
    page.wait_for_function("() => window.explorer.idle()")
    dragging = page.evaluate("() => window.longTasks.slice()")
    lat = page.evaluate("() => window.explorer.inputToPaint.slice()")
    parts = page.evaluate("() => window.explorer.latencyParts.slice()")
    requests = page.evaluate("() => window.explorer.requests")
    context.close()
    if not lat:
        fail(f"{mode} mode: no slider input reached the screen")
    return {
        "mode": mode,
        "model": info["model"],
        "device": device,
        "wasm_threads": threads if mode != "server" else None,
        "runners": {r: sum(p.get("runner") == r for p in parts) for r in ("page", "worker") if mode != "server"},
        "code": code,
        "inputs": len(lat),
        "renders": requests,
        "p50_ms": round(statistics.median(lat), 1),
        "p95_ms": round(percentile(lat, 95), 1),
        "max_ms": round(max(lat), 1),
        "mean_ms": round(statistics.fmean(lat), 1),
        "parts": breakdown(parts),
        "first_local_image_ms": round(first_local, 0) if first_local is not None else None,
        "first_image_wall_s": round(wall_first, 2),
        "long_tasks": {"opening": long_tasks(opening), "dragging": long_tasks(dragging)},
    }


def long_tasks(durations: list[float]) -> dict:
    """{count, max_ms} of main-thread tasks >= 50 ms."""
    return {"count": len(durations), "max_ms": round(max(durations), 0) if durations else None}


PARTS = ("queue", "run", "graph", "paint", "frame")


def breakdown(parts: list[dict]) -> dict:
    """{part: {p50_ms, p95_ms}} over the inputs (graph: in-page modes only; each part's percentiles on its own)."""
    out = {}
    for name in PARTS:
        values = [p[name] for p in parts if p.get(name) is not None]
        if values:
            out[name] = {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 95), 1)}
    return out


def check_model_and_code(parser: argparse.ArgumentParser, folder: Path, model: str | None, code: str | None) -> None:
    """--model one of the models in ``folder`` (by id), --code a continuous code (a slider) of it, or of the model the
    page opens (order.json's first, else the first by name), else ``parser.error``."""
    from spec.manifest import ManifestError, ordered_folders, read_order

    specs = {}
    for p in folder.glob("*/manifest.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a broken folder: the server reports it
            manifest = json.loads(p.read_text())
            specs[manifest.get("id")] = manifest.get("spec", {})
    if model is not None and model not in specs:
        parser.error(f"--model {model}: not among the models of {folder}: {sorted(map(str, specs))}")
    if code is None:
        return
    if model is None:
        try:
            first = [f.name for f in ordered_folders(folder, read_order(folder)) if f.name in specs]
        except ManifestError:  # a bad order.json: the server says so
            return
        model = first[0] if first else None
    sliders = [c.get("name") for c in specs.get(model, {}).get("codes", []) if c.get("type") == "continuous"]
    if code not in sliders:
        parser.error(f"--code {code}: not a continuous code (a slider) of model {model}: {sliders}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--model", default=None, help="model id (default: the server's first)")
    parser.add_argument("--code", default=None, help="continuous code to drag (default: the first slider)")
    parser.add_argument("--seconds", type=positive_float, default=4.0, help="length of each drag")
    parser.add_argument("--step-ms", type=positive_float, default=16.0, help="pause between mouse moves (~60 Hz)")
    parser.add_argument(
        "--modes", nargs="+", choices=["browser", "worker", "server"], default=["browser", "worker", "server"]
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    if args.models_dir is not None:
        models_dir(parser, args.models_dir)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, kind = served_models(args.models_dir, Path(tmp) / "models")
        folder.mkdir(exist_ok=True)
        # else the page waits a minute for a model or a slider it lacks
        check_model_and_code(parser, folder, args.model, args.code)
        if not CHROMIUM.is_file():
            fail(f"{CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM)")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            fail("playwright is not installed (pip install -r requirements/test.txt)")

        server = Server(folder, Path(tmp) / "uvicorn.log", DEVICE="cpu", ORT_THREADS="1")
        try:
            server.wait_ready()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                for mode in args.modes:
                    results.append(measure(browser, server.url + "/", mode, args))
                browser.close()
        finally:
            server.stop()
    summary = {"cpu": cpu_name(), "models": kind, "target_p95_ms": TARGET_P95_MS, "results": results}
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{summary['cpu']}; models: {kind}; dragging for {args.seconds:g} s per mode")
    for r in results:
        if r["mode"] == "server":
            where = f"server ({r['device']})"
        else:
            runs = ", ".join(f"{n} on the {k}" for k, n in r["runners"].items() if n)
            where = f"in browser, {r['mode']} mode (WASM; frames: {runs}; worker threads {r['wasm_threads']})"
        verdict = ("OK" if r["p95_ms"] <= TARGET_P95_MS else "ABOVE TARGET") if r["mode"] == "browser" else ""
        print(
            f"{r['model']} {where}: {r['inputs']} inputs -> {r['renders']} renders; input -> painted p50 "
            f"{r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms {verdict}"
        )
        print(
            "  parts (p50 / p95 ms): "
            + ", ".join(f"{name} {v['p50_ms']} / {v['p95_ms']}" for name, v in r["parts"].items())
        )
        if r["mode"] == "browser":
            print(f"  page open -> first image generated in the page: {r['first_local_image_ms']:.0f} ms")
        print(
            "  main-thread tasks >= 50 ms: "
            + "; ".join(
                f"{when} {t['count']}" + (f" (longest {t['max_ms']:.0f} ms)" if t["count"] else "")
                for when, t in r["long_tasks"].items()
            )
        )


if __name__ == "__main__":
    with errors_in_one_line(RuntimeError):  # the server did not start (its log); a page that never got ready
        main()
