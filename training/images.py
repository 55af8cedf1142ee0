"""Image grids and PNG encoding shared by training samples, evaluation figures and export checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Network image space [-1, 1] -> [0, 1]."""
    return (x.clamp(-1, 1) + 1) * 0.5


def grid(images: torch.Tensor, rows: int, pad: int = 2, value: float = 1.0) -> np.ndarray:
    """(R*K, C, H, W) in [0, 1], row-major -> uint8 (H', W', C) mosaic with ``pad`` pixels between tiles."""
    n, c, h, w = images.shape
    cols = (n + rows - 1) // rows
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), value, np.float32)
    arr = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, k = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = arr[i]
    return (out.clip(0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path, scale: int = 1) -> None:
    from PIL import Image

    a = array[..., 0] if array.shape[-1] == 1 else array
    im = Image.fromarray(a)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    im.save(path)
