"""The exact int8 matrix product of an int8 model (training/int8_matmul.py) against the plain fp32 Gemm, in one run.

    python benchmarks/int8_matmul.py [--model mnist] [--network generator|recognizer] [--models-dir models]
        [--repeats 300]

Builds both variants from the model folder's generator.onnx (or recognizer.onnx): the file as exported (integer path
up to its threshold) and the same graph with the threshold set to 0 (every batch through the fp32 Gemm), or, for a
file exported before the path existed, the file itself and the file with the path added. Prints, per batch size, the
median run() time back to back, after 2 ms of busy Python and after a 2 ms sleep (between requests a server does
other work or idles, and the weights leave the cache), the speed-up, and how far the outputs differ (max
|difference|, and 8-bit pixels that differ).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from backend.core.device import session_options  # noqa: E402
from benchmarks._cli import count, fail, model_folder  # noqa: E402
from benchmarks.export_latency import latent_batch  # noqa: E402
from spec.manifest import Manifest  # noqa: E402
from training.int8_matmul import MIN_ELEMENTS, add_int8_matmul, rewritten_layers, set_max_rows  # noqa: E402


def variants(path: Path) -> tuple[bytes, bytes]:
    """(fp32 Gemm only, with the integer path) as serialised models."""
    model = onnx.load(str(path))
    if not rewritten_layers(model):  # exported before the path existed: add it
        if not add_int8_matmul(model):
            fail(f"{path}: no int8 FC layer of >= {MIN_ELEMENTS} weights (export with --weights int8)")
        return path.read_bytes(), model.SerializeToString()
    with_path = model.SerializeToString()
    set_max_rows(model, 0)
    return model.SerializeToString(), with_path


def session(blob: bytes, threads: int) -> ort.InferenceSession:
    return ort.InferenceSession(blob, session_options(threads), providers=["CPUExecutionProvider"])  # as served


def pause(kind: str, seconds: float = 0.002) -> None:
    """Between runs: nothing, 2 ms idle (the cores may sleep), or 2 ms of busy Python (caches stay in use)."""
    if kind == "sleep":
        time.sleep(seconds)
    elif kind == "busy":
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass


def median_ms(sess: ort.InferenceSession, feed: dict, repeats: int, gap: str) -> float:
    for _ in range(5):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        pause(gap)
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mnist")
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--repeats", type=count(1), default=300)
    ap.add_argument("--threads", type=count(1), default=os.cpu_count() or 1)
    ap.add_argument("--network", choices=("generator", "recognizer"), default="generator")
    args = ap.parse_args()
    folder = model_folder(ap, args.models_dir, args.model)
    try:
        manifest = Manifest.read(folder)
    except ValueError as e:  # ManifestError: "<id>: manifest.json is ..."
        ap.error(f"--model {args.model}: {e}")
    network = folder / f"{args.network}.onnx"
    if not network.is_file():
        ap.error(f"--network {args.network}: {network} is missing")
    plain, fast = (session(b, args.threads) for b in variants(network))
    rng = np.random.default_rng(0)
    spec, shape = manifest.latent(), manifest.image.chw()

    def batch(n: int) -> dict[str, np.ndarray]:
        if args.network == "generator":
            return latent_batch(spec, n, rng)
        return {"images": rng.uniform(0, 1, (n, *shape)).astype(np.float32)}

    worst, pixels, total = 0.0, 0, 0
    for n in (1, 2, 3, 4, 5, 8, 64):
        for _ in range(30 if n < 64 else 3):
            feed = batch(n)
            for a, b in zip(plain.run(None, feed), fast.run(None, feed), strict=False):
                worst = max(worst, float(np.abs(a - b).max()))
                if args.network == "generator":
                    pixels += int(((a * 255 + 0.5).astype(np.uint8) != (b * 255 + 0.5).astype(np.uint8)).sum())
                    total += a.size
    print(
        f"{folder.name} {args.network}: onnxruntime {ort.__version__}, {args.threads} threads; outputs differ by "
        f"at most {worst:.1e}" + (f"; 8-bit pixels that differ: {pixels} of {total}" if total else "")
    )
    gaps = ("none", "busy", "sleep")
    print("median run() ms, fp32 Gemm -> integer path (speed-up), with 2 ms between runs of: " + ", ".join(gaps))
    for n in (1, 2, 4, 8, 16, 64):
        feed = batch(n)
        reps = args.repeats if n <= 8 else max(20, args.repeats // 5)
        cells = []
        for gap in gaps:
            p, f = median_ms(plain, feed, reps, gap), median_ms(fast, feed, reps, gap)
            cells.append(f"{p:6.3f} -> {f:6.3f} (x{p / f:.2f})")
        print(f"batch {n:3d} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
