"""Regenerate the figures under docs/ from the shipped models' training logs and the exported generators.

    python scripts/make_docs_figures.py

Fig. 1 from docs/training/*-metrics.jsonl; Fig. 2-style traversals from models/<id>/generator.onnx (ONNX Runtime,
so they show exactly what the service serves), for every model under models/: (a) the categorical code, then each
continuous code from -2 to 2 (the paper's Fig. 2 c/d), one row per category of the first categorical code; for the
rendered sets with ground-truth factors from -1 to 1, as the paper's Figs. 3-4 of its 3D sets.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from spec.manifest import MANIFEST_FILE, Manifest  # noqa: E402
from training.code_effects import onnx_generator  # noqa: E402
from training.data import DataError, dataset_info  # noqa: E402
from training.evaluate import figure_latents  # noqa: E402
from training.evaluate_cmd import plot_info_curves  # noqa: E402
from training.images import grid, save_png  # noqa: E402
from training.latent import LatentSpec  # noqa: E402

# the paper's figure each data set's traversals stand for (file names docs/<figure>-<model>-<code>.png): Fig. 2 is
# MNIST's, Fig. 4 the 3D chairs' (a categorical style, one row each), Fig. 3 the faces' (continuous codes only, as
# dSprites in InfoGAN-CR's setting: one row per noise sample)
PAPER_FIGURE = {"chairs3d": "fig4", "dsprites": "fig3"}


def traversal(model: str, code: str, out: Path) -> None:
    """Render ``figure_latents`` (the same panels ``infogan evaluate`` draws) with the exported generator."""
    import torch

    folder = ROOT / "models" / model
    manifest = Manifest.read(folder)
    spec = manifest.latent(LatentSpec)
    try:
        span = dataset_info(manifest.dataset).traversal_span  # -2..2 as Fig. 2, -1..1 as Figs. 3-4
    except DataError:  # a data set this checkout does not define: the Fig. 2 sweep
        span = 2.0
    z, c, rows = figure_latents(spec, code, span=span)
    x = onnx_generator(folder)(z, c)  # sha256-checked against the manifest, the service's tensor names
    save_png(grid(torch.from_numpy(x), rows), out, scale=2)


def main(argv: list[str] | None = None) -> None:
    # no options: --help says what it rewrites instead of rewriting it (a bare run rewrote docs/ on any argument)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Writes docs/fig*.png in place.")
    parser.parse_args(argv)
    docs = ROOT / "docs"
    plot_info_curves(
        {
            "InfoGAN (lambda = 1)": docs / "training/mnist-metrics.jsonl",
            "GAN (lambda = 0)": docs / "training/mnist-gan-metrics.jsonl",
        },
        "digit",
        docs / "fig1-info-curves.png",
        entropy=math.log(10),
    )
    for folder in sorted(p.parent for p in (ROOT / "models").glob(f"*/{MANIFEST_FILE}")):  # every shipped model
        manifest = Manifest.read(folder)
        figure = PAPER_FIGURE.get(manifest.dataset, "fig2")
        for c in manifest.latent().codes:
            traversal(folder.name, c.name, docs / f"{figure}-{folder.name}-{c.name}.png")
    print("wrote", sorted(p.name for p in docs.glob("fig*.png")))


if __name__ == "__main__":
    main()
