"""dSprites (Matthey et al., DeepMind 2017), re-rendered here from its published definition; reads DeepMind's file too.

The layout is DeepMind's ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``: ``imgs`` uint8 (737280, 64, 64) in
{0, 1}; ``latents_classes`` int64 and ``latents_values`` float64 (737280, 6); factors color, shape, scale,
orientation, posX, posY with 1, 3, 6, 40, 32, 32 values, image ``n`` = the row-major index of its classes (posY
changes fastest). Values: color 1; shape 1, 2, 3 = square, ellipse, heart; scale ``linspace(0.5, 1, 6)``; orientation
``linspace(0, 2 pi, 40)`` (so the first and last orientations coincide, as in DeepMind's set); posX, posY
``linspace(0, 1, 32)``. Our file also holds ``factor_names`` and ``factor_sizes``. The pixels are ours, not
DeepMind's (docs/dsprites.md says how they differ); DeepMind's file, where a user has it, is read as it is.

Geometry (every number in pixels):
- Pixel ``(row i, column j)`` is the unit square ``[j, j+1) x [i, i+1)``; x grows to the right, y downwards.
- Centre: ``cx = 16.5 + 31 posX``, ``cy = 16.5 + 31 posY``, so consecutive positions are exactly one pixel apart and a
  sprite of any position is the same picture shifted by whole pixels (rendering is one mask per (shape, scale,
  orientation), then shifts). The centres span [16.5, 47.5]: 16.5 px of room on every side.
- Each outline is defined in the sprite's own frame (u right, v up, origin at the sprite's centre) at size ``R = 16
  scale`` (linear size grows with scale, area with scale^2), and every point of every shape lies within R of the
  centre (its circumradius is at most R <= 16 < 16.5), so every sprite stays inside the 64 x 64 frame:
  - square: ``|u| <= R / sqrt 2`` and ``|v| <= R / sqrt 2`` (side 22.6 px at scale 1; its corners at distance R);
  - ellipse: ``(u / R)^2 + (v / (R / 2))^2 <= 1`` (axes 2R x R, the long axis along u at orientation 0);
  - heart: with ``L = R / 0.9512``, the union of the diamond ``|u| + |v - d| <= L / sqrt 2`` and the two discs of radius
    ``L / 2`` centred at ``(+-L / (2 sqrt 2), L / (2 sqrt 2) + d)``, where ``d = -(1 - 1 / sqrt 2) L / 4 = -0.0732 L``
    puts the centre of its bounding box at the origin (0.9512 L: its circumradius); point down at orientation 0.
- Orientation ``theta`` rotates the sprite about its centre, counter-clockwise as seen on the screen: a pixel's point
  ``(x, y)`` maps to ``u = cos(theta) dx + sin(theta) dy_up``, ``v = -sin(theta) dx + cos(theta) dy_up`` with ``dx = x -
  cx`` and ``dy_up = cy - y`` (the inverse rotation of the point is the rotation of the shape).
- A pixel is 1 when at least 8 of its 4 x 4 sample points ``(j + (k + 0.5) / 4, i + (l + 0.5) / 4)`` lie inside the
  shape (coverage >= 1/2), else 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import factor_sets
from .factor_sets import KEYS, check_strides, factor_arrays, kept_classes, npz_bytes, sha256_file, write_npz

__all__ = ["KEYS", "npz_bytes", "sha256_file", "write_npz", "render", "write_dataset", "read_npz", "load_dsprites"]

FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
SHAPES = ("square", "ellipse", "heart")
SIZE = 64
DEEPMIND_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
RENDERED_FILE = "dsprites_rendered_64x64.npz"

_SUPER = 4  # sample points per pixel side
_HALF = 16  # the mask spans centre pixel +- 16: 33 x 33 pixels
_MAX_RADIUS = 16.0  # R at scale 1


def factor_values() -> list[np.ndarray]:
    """The canonical value of every class of every factor, in FACTOR_NAMES order."""
    return [
        np.array([1.0]),
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    ]


def _heart_frame() -> tuple[float, float]:
    """(d, circumradius) of the heart with L = 1: the vertical offset that centres its bounding box, and the largest
    distance of its points from that centre. Bounding box: v from -1/sqrt2 (the point) to 1/(2 sqrt2) + 1/2 (the
    discs' tops), so its middle is at (1/(2 sqrt2) + 1/2 - 1/sqrt2) / 2 before the shift."""
    r2 = 1 / (2 * np.sqrt(2))
    d = -(r2 + 0.5 - 1 / np.sqrt(2)) / 2
    circum = max(np.hypot(r2, r2 + d) + 0.5, 1 / np.sqrt(2) - d)
    return float(d), float(circum)


def inside(shape: int, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Point-in-shape test in the sprite's frame; ``shape`` is the class 0, 1, 2 (square, ellipse, heart)."""
    if shape == 0:
        half = radius / np.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == 1:
        return (u / radius) ** 2 + (v / (radius / 2)) ** 2 <= 1.0
    d, circum = _heart_frame()
    side = radius / circum  # L: the heart's diamond side
    vv = v / side - d  # back to the unshifted heart with L = 1
    uu = u / side
    r2 = 1 / (2 * np.sqrt(2))
    diamond = np.abs(uu) + np.abs(vv) <= 1 / np.sqrt(2)
    discs = ((uu - r2) ** 2 + (vv - r2) ** 2 <= 0.25) | ((uu + r2) ** 2 + (vv - r2) ** 2 <= 0.25)
    return diamond | discs


def sprite_masks(shapes: Sequence[int], scales: Sequence[int], orientations: Sequence[int]) -> np.ndarray:
    """uint8 (len(shapes), len(scales), len(orientations), 33, 33) in {0, 1}: each sprite centred on the middle
    pixel of its mask (the mask's pixel (16, 16) holds the centre at its own centre, as pixel (16 + k) does in the
    image at position class k)."""
    values = factor_values()
    offs = (np.arange(_SUPER) + 0.5) / _SUPER - 0.5  # sample offsets from a pixel's centre
    grid = np.arange(-_HALF, _HALF + 1, dtype=np.float64)
    # dx, dy_up of every sample point: (33 * 4) per axis; image rows go down, so dy_up = -(row offset)
    dx = (grid[:, None] + offs[None, :]).reshape(-1)
    dy_up = -dx
    X, Y = np.meshgrid(dx, dy_up, indexing="xy")  # (132, 132): [row sample, column sample]
    out = np.zeros((len(shapes), len(scales), len(orientations), 2 * _HALF + 1, 2 * _HALF + 1), np.uint8)
    n = 2 * _HALF + 1
    for a, sh in enumerate(shapes):
        for b, sc in enumerate(scales):
            radius = _MAX_RADIUS * values[2][sc]
            for c, o in enumerate(orientations):
                theta = values[3][o]
                cos, sin = np.cos(theta), np.sin(theta)
                u = cos * X + sin * Y  # R(-theta) of the point
                v = -sin * X + cos * Y
                hits = inside(sh, u, v, radius).reshape(n, _SUPER, n, _SUPER).sum(axis=(1, 3))
                out[a, b, c] = hits >= (_SUPER * _SUPER) // 2
    return out


def _check_strides(subset: Sequence[int] | None) -> tuple[int, ...]:
    return check_strides(subset, FACTOR_NAMES, "dsprites", FACTOR_SIZES)


def render(subset: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The data set (or every ``subset[f]``-th class of each factor f, from class 0) in DeepMind's layout.

    Rows stay in row-major order of the kept classes; ``latents_classes`` keeps the canonical class indices."""
    strides = _check_strides(subset)
    kept = kept_classes(FACTOR_SIZES, strides)
    counts = [len(k) for k in kept]
    masks = sprite_masks(kept[1], kept[2], kept[3])
    n = int(np.prod(counts))
    imgs = np.empty((n, SIZE, SIZE), np.uint8)
    n_mask = 2 * _HALF + 1
    pad = SIZE - n_mask + 1  # 32: the position classes
    canvas = np.zeros((n_mask + 2 * (pad - 1), n_mask + 2 * (pad - 1)), np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (SIZE, SIZE))  # [a, b] = canvas[a:a+64, b:b+64]
    xs, ys = kept[4], kept[5]
    row = 0
    per_mask = len(xs) * len(ys)
    for _ in kept[0]:
        for a in range(counts[1]):
            for b in range(counts[2]):
                for c in range(counts[3]):
                    canvas[pad - 1 : pad - 1 + n_mask, pad - 1 : pad - 1 + n_mask] = masks[a, b, c]
                    # position class k puts the mask's top-left at pixel k: window (31 - ky, 31 - kx)
                    block = windows[(pad - 1) - ys[None, :], (pad - 1) - xs[:, None]]  # (len(xs), len(ys), 64, 64)
                    imgs[row : row + per_mask] = block.reshape(per_mask, SIZE, SIZE)
                    row += per_mask
    return factor_arrays(imgs, kept, factor_values(), FACTOR_NAMES, FACTOR_SIZES)


def write_dataset(path: str | Path, subset: Sequence[int] | None = None) -> dict:
    """Render and write; returns a summary (rows, seconds to render and to write, bytes, sha256 of the file)."""
    return factor_sets.write_dataset(path, lambda: render(subset))


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Our file or DeepMind's, told apart by their keys (DeepMind's has a pickled ``metadata`` we do not read)."""
    return factor_sets.read_npz(path, "dSprites", FACTOR_SIZES, SIZE)


def find_file(root: Path) -> Path | None:
    """DeepMind's file if the folder has it, else ours."""
    for name in (DEEPMIND_FILE, RENDERED_FILE):
        if (root / name).is_file():
            return root / name
    return None


def load_dsprites(root: str | Path | None = None, subset: Sequence[int] | None = None, allow_render: bool = True):
    """The data set as an ImageSet: images uint8 (N, 1, 64, 64) in {0, 255} (light sprite on black), no labels,
    ``factors`` (N, 6) int64 = latents_classes, ``factor_names`` = FACTOR_NAMES.

    ``root`` (``--data-dir``; default ~/.cache/infogan/dsprites): DeepMind's file there is read as it is, else our
    rendered file; with neither, the full set is rendered and written there (about 20 s and 3 GB of memory, 21 MB on
    disk) unless ``allow_render`` is False. ``subset`` (six strides): only every ``subset[f]``-th class of each factor
    -- taken from the file when there is one, else rendered in memory and not written (what tests use)."""
    from .data import DEFAULT_ROOT, DataError, ImageSet

    root = Path(root) if root else DEFAULT_ROOT / "dsprites"
    strides = _check_strides(subset)
    path = find_file(root)
    arrays = factor_sets.cached_arrays(
        "dsprites",
        path,
        root / RENDERED_FILE,
        strides,
        subset is not None,
        render,
        allow_render,
        read_npz,
        "dSprites (737,280 images)",
        full_rows=int(np.prod(FACTOR_SIZES)),
        factor_names=FACTOR_NAMES,
        factor_sizes=FACTOR_SIZES,
    )
    imgs = arrays["imgs"]
    if imgs.max(initial=0) > 1:
        raise DataError(f"dsprites: {path or root / RENDERED_FILE}: imgs must be 0/1, found {imgs.max()}")
    np.multiply(imgs, 255, out=imgs)  # in place: the full set is 3 GB
    import torch

    return ImageSet(
        torch.from_numpy(imgs[:, None]),
        None,
        None,
        "dsprites",
        factors=torch.from_numpy(np.ascontiguousarray(arrays["latents_classes"], np.int64)),
        factor_names=FACTOR_NAMES,
    )
