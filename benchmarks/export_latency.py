"""Exported model budgets: folder size on disk, generator latency for one image (median) and images/second at
batch 256, with ONNX Runtime on the CPU, for every folder under models/.

    python benchmarks/export_latency.py [--models-dir models] [--model ID] [--repeats 200]

Budgets (issue: export): folder <= 16 MB, one-image median latency <= 2 ms. Prints each figure as a ratio to its
budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._cli import count, fail, model_folder  # noqa: E402
from spec.latent import LatentSpec  # noqa: E402
from spec.manifest import GENERATOR_FILE, GENERATOR_INPUTS, MANIFEST_FILE, Manifest  # noqa: E402

SIZE_BUDGET_MB = 16.0
LATENCY_BUDGET_MS = 2.0


def latent_batch(spec: LatentSpec, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """G's feed for n prior draws: {"z": (n, noise dim), "c": (n, spec.c_dim)} float32."""
    z, values = spec.sample_np(rng, n)
    return dict(zip(GENERATOR_INPUTS, (z, spec.encode_np(values)), strict=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parents[1] / "models"))
    ap.add_argument("--model", help="only this model id (default: every model folder)")
    ap.add_argument("--repeats", type=count(1), default=200, help="one-image runs timed per model")
    args = ap.parse_args()
    one_model = model_folder(ap, args.models_dir, args.model)
    root = Path(args.models_dir)
    folders = [one_model] if one_model else sorted(p for p in root.iterdir() if (p / MANIFEST_FILE).exists())
    manifests = {}
    option = f"--model {args.model}" if args.model else f"--models-dir {args.models_dir}"
    for folder in folders:  # every manifest read before the first figure: a broken folder is named at once
        try:
            manifests[folder] = Manifest.read(folder)
        except ValueError as e:  # ManifestError: "<folder name>: manifest.json is ..."
            ap.error(f"{option}: {e}")
        if not (folder / GENERATOR_FILE).is_file():
            ap.error(f"{option}: {folder.name}: {GENERATOR_FILE} is missing")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    rng = np.random.default_rng(0)
    print(f"onnxruntime {ort.__version__}, {opts.intra_op_num_threads} threads, CPUExecutionProvider")
    for folder, manifest in manifests.items():
        spec = manifest.latent()
        size_mb = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
        try:  # ONNX Runtime's errors (a torn or foreign file) are no Python exception class of their own
            sess = ort.InferenceSession(str(folder / GENERATOR_FILE), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            fail(f"{folder / GENERATOR_FILE}: {e}")
        one = latent_batch(spec, 1, rng)
        for _ in range(20):
            sess.run(None, one)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            sess.run(None, one)
            times.append((time.perf_counter() - t0) * 1e3)
        big = latent_batch(spec, 256, rng)
        sess.run(None, big)
        t0 = time.perf_counter()
        reps = 10
        for _ in range(reps):
            sess.run(None, big)
        ips = reps * 256 / (time.perf_counter() - t0)
        p50 = statistics.median(times)
        print(
            f"{folder.name:14s} size {size_mb:6.1f} MB ({size_mb / SIZE_BUDGET_MB:.2f}x budget)  "
            f"1-image p50 {p50:.3f} ms ({p50 / LATENCY_BUDGET_MS:.2f}x budget)  batch-256 {ips:8.0f} images/s  "
            f"weights {manifest.weights}"
        )


if __name__ == "__main__":
    main()
