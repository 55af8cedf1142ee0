"""Regenerate the figures under docs/ from the shipped models' training logs and the exported generators.

    python scripts/make_docs_figures.py

Fig. 1 from docs/training/*-metrics.jsonl; Fig. 2-style traversals from models/<id>/generator.onnx (ONNX Runtime,
so they show exactly what the service serves): (a) the categorical code, (c) c1 and (d) c2 from -2 to 2.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from training.images import grid, save_png  # noqa: E402
from training.report import plot_info_curves  # noqa: E402


def traversal(model: str, code: str, out: Path, rows: int = 10, cols: int = 9, seed: int = 0) -> None:
    import onnxruntime as ort
    import torch

    manifest = json.loads((ROOT / "models" / model / "manifest.json").read_text())
    spec = manifest["spec"]
    sess = ort.InferenceSession(str(ROOT / "models" / model / "generator.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    cat = next(c for c in spec["codes"] if c["type"] == "categorical")
    target = next(c for c in spec["codes"] if c["name"] == code)
    sweep = np.arange(target["categories"]) if target["type"] == "categorical" else np.linspace(-2, 2, cols)
    cols = len(sweep)
    zs, cs = [], []
    for r in range(rows):
        z = rng.uniform(-1, 1, spec["noise"]["dim"]) if spec["noise"]["distribution"] == "uniform" else rng.normal(size=spec["noise"]["dim"])
        for v in sweep:
            parts = []
            for c in spec["codes"]:
                if c["type"] == "categorical":
                    k = int(v) if c["name"] == code else (r % c["categories"] if target["type"] == "continuous" else rng.integers(c["categories"]))
                    parts.append(np.eye(c["categories"])[k])
                else:
                    parts.append([v if c["name"] == code else 0.0])
            zs.append(z)
            cs.append(np.concatenate(parts))
    x = sess.run(None, {"z": np.array(zs, np.float32), "c": np.array(cs, np.float32)})[0]
    save_png(grid(torch.from_numpy(x), rows), out, scale=2)


def main() -> None:
    docs = ROOT / "docs"
    plot_info_curves({"InfoGAN (lambda = 1)": docs / "training/mnist-metrics.jsonl",
                      "GAN (lambda = 0)": docs / "training/mnist-gan-metrics.jsonl"},
                     "digit", docs / "fig1-info-curves.png", entropy=math.log(10))
    for model in ("mnist", "mnist-gan", "fashion-mnist"):
        manifest = json.loads((ROOT / "models" / model / "manifest.json").read_text())
        for c in manifest["spec"]["codes"]:
            traversal(model, c["name"], docs / f"fig2-{model}-{c['name']}.png")
    print("wrote", sorted(p.name for p in docs.glob("fig*.png")))


if __name__ == "__main__":
    main()
