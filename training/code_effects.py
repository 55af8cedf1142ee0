"""What each continuous code does to G's images, measured: the image statistics that move with it.

The paper names MNIST's continuous codes "rotation" and "width" from its Fig. 2 traversals, by eye. A name chosen
that way can be wrong (a code that mostly thickens strokes looks like "width" in a 10-image grid), and nothing
checks it stays right when a model is retrained. Here every continuous code is swept over its Fig. 2 values
(``code.fig2_values``: -2 to 2 half-ranges of its prior) for ``draws`` independent draws of the noise and the other
codes, and a few interpretable statistics of each image's intensity mass are computed:

- ``ink``: mean intensity (stroke thickness / area of the object);
- ``width``, ``height``: the intensity-weighted standard deviation of the column / row coordinate (pixels);
- ``aspect``: ln(width / height) (wide against narrow at any size: the paper's MNIST "width" code flattens digits
  as it widens them, so its width and height move in opposite directions);
- ``slant``: the shear mu_xy / mu_yy (columns moved per row; positive leans right at the top, as italic text);
- ``x``, ``y``: the intensity centroid (pixels from the left / top);
- ``brightness``: the intensity-weighted mean intensity, sum(m^2) / sum(m) (how light the object is, not its size);
- ``texture``: the summed absolute differences between horizontally and vertically neighbouring pixels over the
  summed intensity (edges per unit of ink: a plain garment has edges only at its outline, a patterned one inside too).

Intensity m is the image in [0, 1] with the data set's object bright (the manifest's ``drawing``: "light-on-dark" as
MNIST; "dark-on-light" flips it); for a colour image its channel mean. ``generate`` is a checkpoint's G
(``torch_generator``) or a shipped model's ONNX generator (``onnx_generator``), so a model whose checkpoint is gone
can still be measured.

Per code and statistic: ``effect`` = the mean change of the statistic from the sweep's first to its last value,
in units of the statistic's standard deviation over all the sweep's images (so statistics in pixels and in
intensity compare), and ``r`` = the mean over draws of the Pearson correlation between code value and statistic
(how consistently it moves; 1 = monotone and linear in every draw). The statistic with the largest |effect| is the
code's ``strongest``; ``infogan evaluate`` prints it and ``infogan export`` writes it to the manifest, beside the
label a person gives the code (``--label c1=width``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .evaluate import traversal_latents
from .images import to_unit
from .latent import LatentSpec

STATISTICS = ("ink", "width", "height", "aspect", "slant", "x", "y", "brightness", "texture")


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """images (N, H, W), intensity in [0, 1], object bright -> {statistic: (N,)} (see the module docstring)."""
    n, h, w = images.shape
    m = images.astype(np.float64)
    mass = m.sum((1, 2))
    safe = np.maximum(mass, 1e-9)
    rows = np.arange(h, dtype=np.float64)[None, :, None]
    cols = np.arange(w, dtype=np.float64)[None, None, :]
    y = (m * rows).sum((1, 2)) / safe
    x = (m * cols).sum((1, 2)) / safe
    dy = rows - y[:, None, None]
    dx = cols - x[:, None, None]
    mu_yy = (m * dy**2).sum((1, 2)) / safe
    mu_xx = (m * dx**2).sum((1, 2)) / safe
    # row index grows downwards: a stroke leaning right at the top has x falling as the row index grows, so the
    # shear is the negated regression slope of column on row
    mu_xy = (m * dx * dy).sum((1, 2)) / safe
    return {
        "ink": m.mean((1, 2)),
        "width": np.sqrt(mu_xx),
        "height": np.sqrt(mu_yy),
        "aspect": 0.5 * np.log(np.maximum(mu_xx, 1e-9) / np.maximum(mu_yy, 1e-9)),
        "slant": -mu_xy / np.maximum(mu_yy, 1e-9),
        "x": x,
        "y": y,
        "brightness": (m**2).sum((1, 2)) / safe,
        "texture": (np.abs(np.diff(m, axis=1)).sum((1, 2)) + np.abs(np.diff(m, axis=2)).sum((1, 2))) / safe,
    }


def intensity(images: np.ndarray | torch.Tensor, drawing: str = "light-on-dark") -> np.ndarray:
    """Images (N, C, H, W) in [0, 1] -> (N, H, W) in [0, 1] with the object bright (``drawing``: the manifest's
    "light-on-dark" or "dark-on-light")."""
    x = images.float().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images, np.float32)
    m = x.clip(0, 1).mean(1)
    return 1.0 - m if drawing == "dark-on-light" else m


Generate = Callable[[torch.Tensor, torch.Tensor], "np.ndarray | torch.Tensor"]


def torch_generator(G: torch.nn.Module) -> Generate:
    """A checkpoint's G as ``code_effects``' ``generate``: (z, c) -> images in [0, 1], in eval mode, no grad."""
    device = next((p.device for p in G.parameters()), torch.device("cpu"))

    @torch.no_grad()
    def generate(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        G.eval()
        return to_unit(G(z.to(device), c.to(device)))

    return generate


def onnx_generator(folder: str | Path) -> Generate:
    """A shipped model's ``generator.onnx`` (sha256 checked against its manifest) as ``generate``."""
    import onnxruntime as ort

    from spec.manifest import GENERATOR_FILE, GENERATOR_INPUTS, GENERATOR_OUTPUT, Manifest

    manifest = Manifest.read(folder)
    sess = ort.InferenceSession(str(manifest.verify_file(folder, GENERATOR_FILE)), providers=["CPUExecutionProvider"])

    def generate(z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        feeds = dict(zip(GENERATOR_INPUTS, (z.numpy().astype(np.float32), c.numpy().astype(np.float32)), strict=True))
        return sess.run([GENERATOR_OUTPUT], feeds)[0]

    return generate


def code_effects(
    spec: LatentSpec,
    generate: Generate,
    *,
    draws: int = 200,
    cols: int = 9,
    seed: int = 0,
    drawing: str = "light-on-dark",
    batch: int = 500,
) -> dict[str, dict[str, Any]]:
    """Per continuous code of ``spec``: {"statistics": {name: {"effect", "r"}}, "strongest": name, "values": the
    sweep}. ``draws`` rows of ``cols`` images each (noise and the other codes from the prior); ``generate`` maps
    (z, c) batches to images in [0, 1] (``torch_generator`` / ``onnx_generator``)."""
    out: dict[str, dict[str, Any]] = {}
    for code in spec.continuous_codes():
        values = np.asarray(code.fig2_values(2.0, cols), np.float64)
        z, c = traversal_latents(spec, code.name, draws, cols, seed=seed)
        images = np.concatenate(
            [intensity(generate(z[i : i + batch], c[i : i + batch]), drawing) for i in range(0, len(z), batch)]
        )
        stats = image_statistics(images)
        table: dict[str, dict[str, float]] = {}
        for name in STATISTICS:
            s = stats[name].reshape(draws, len(values))
            spread = float(s.std())
            effect = float((s[:, -1] - s[:, 0]).mean() / spread) if spread > 0 else 0.0
            table[name] = {"effect": effect, "r": mean_correlation(values, s)}
        strongest = max(STATISTICS, key=lambda k: abs(table[k]["effect"]))
        out[code.name] = {"statistics": table, "strongest": strongest, "values": values.tolist()}
    return out


def mean_correlation(values: np.ndarray, s: np.ndarray) -> float:
    """Mean over rows of the Pearson correlation between ``values`` (K,) and each row of ``s`` (R, K); a constant
    row counts 0."""
    v = values - values.mean()
    d = s - s.mean(1, keepdims=True)
    denom = np.sqrt((v**2).sum() * (d**2).sum(1))
    r = np.where(denom > 0, (d * v).sum(1) / np.where(denom > 0, denom, 1.0), 0.0)
    return float(r.mean())


def describe(effects: dict[str, dict[str, Any]], top: int = 2) -> str:
    """One line per code, its ``top`` statistics by |effect|: "c1: width +1.9 sd (r +0.97), ink +0.8 sd (r +0.90)"."""
    lines = []
    for name, e in effects.items():
        ranked = sorted(e["statistics"].items(), key=lambda kv: -abs(kv[1]["effect"]))[:top]
        lines.append(f"{name}: " + ", ".join(f"{k} {v['effect']:+.1f} sd (r {v['r']:+.2f})" for k, v in ranked))
    return "\n".join(lines)
