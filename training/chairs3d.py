"""3D chairs, rendered here: a stand-in for Aubry et al.'s chairs (InfoGAN paper, Fig. 4) and the lighting/pose
factors of its 3D faces (Fig. 3), with ground truth. A vectorised numpy ray caster; no external renderer, no GPU.

Layout (training/factor_sets.py, as dSprites): ``imgs`` uint8 (16000, 64, 64), grey 0..255; ``latents_classes`` int64
and ``latents_values`` float64 (16000, 5); ``factor_names``, ``factor_sizes``. Factors, row-major (width fastest):

====  ===========  =====  ==================================================================================
 f    name         size   value of class k
====  ===========  =====  ==================================================================================
 0    style        4      k: 0 chair, 1 armchair, 2 stool, 3 bench (the labels of the loader's ImageSet)
 1    azimuth      32     camera azimuth, degrees: linspace(-45, 45, 32) (a quarter turn about the front view)
 2    elevation    5      camera elevation above the floor plane, degrees: linspace(10, 50, 5)
 3    light        5      light azimuth relative to the camera, degrees: linspace(0, 90, 5) (front to right)
 4    width        5      seat width factor: linspace(0.7, 1.3, 5)
====  ===========  =====  ==================================================================================

Chair frame (units: metres of a real chair): x to the chair's side, y from its front (-y) to its back (+y), z up;
the floor is z = 0 and the chair stands centred on the z axis. Parts are axis-aligned boxes and vertical cylinders
(``parts``); ``width`` w multiplies every x extent of the seat and of what spans it (back, arms, stretchers; leg
positions move with it, leg thickness does not); the stool's round seat (and its leg circle) scale by w in x and y:
- chair: seat 0.46w x 0.44 x 0.05 (top at 0.46), four 0.045 m square legs under its corners, the two rear ones
  rising to 0.95 as back posts, a back panel between them from z 0.60 to 0.93;
- armchair: a club chair 0.62w wide, 0.56 deep: a seat block (top 0.42), solid arms 0.09 thick up to 0.62, a back
  0.12 thick up to 0.86, on four short round feet 0.08 high;
- stool: a bar stool, round seat radius 0.2w (top at 0.72, 0.05 thick) on four round legs (radius 0.022) at
  0.72 x the seat radius along +-x and +-y, joined by a cross of stretchers at z 0.24..0.27;
- bench: seat 0.85w long, 0.36 deep (top 0.46), two slab legs 0.05 thick inset 0.07 from the ends, a stretcher.

Camera: orthographic, looking at ``CENTRE`` = (0, 0, 0.42) for every image, from the direction
``o = (sin(az) cos(el), -cos(az) cos(el), sin(el))``: azimuth 0 looks at the chair's front, azimuth grows
counter-clockwise seen from above (the camera moves to its own right). Screen axes: right ``r = (cos az, sin az, 0)``,
up ``u = r x f`` with ``f = -o`` the viewing direction. Image pixel (row i, column j) is the square
``[j, j+1) x [i, i+1)``; point (x, y) of the image is the screen point ``(x - 32) / 32 * HALF_SIZE`` right and
``(32 - y) / 32 * HALF_SIZE`` up of the centre. ``HALF_SIZE`` is the same for every image (so the width factor is a
real width), chosen so every part's bounding-box corner at every factor combination projects at least 2 px inside
the frame (tests/training/test_chairs3d.py checks it).

Shading: Lambertian, ``albedo * (0.25 + 0.75 max(0, n . l))`` with albedo 0.85 for upholstery/seats and 0.55 for legs
and frames, one directional light ``l = (sin(az + light) cos 35deg, -cos(az + light) cos 35deg, sin 35deg)`` (35
degrees above the floor plane, turning with the camera, so ``light`` is "from the viewer's left/front/right" at any
pose), no shadows; the background is white (255), every lit surface is at most 0.85 * 255 = 217, so a pixel below
255 is covered by the chair. Anti-aliasing: the mean of 4 x 4 rays per pixel at ``(j + (l + 0.5) / 4, i + (k + 0.5)
/ 4)``, rounded to uint8. The light changes no geometry: each (style, azimuth, elevation, width) is ray cast once
and shaded for all five lights.

Why a quarter turn about the front view, not a full turn: a full turn is a circle, which one uniform code can only
cover with a seam, so InfoGAN spreads it over two or three codes (cosine- and sine-like) and no single code reads
it. In a 1-thread run of the ``chairs3d`` config on the full-turn set (160,000 images) three of five continuous
codes matched azimuth best and its MIG was 0.010 (docs/training/chairs3d.md). The paper's own chairs and faces
turn through an arc too (Chen et al., 2016, Figs. 3-4). 90 degrees keeps every style's views distinct except the
stool's two ends (4-fold symmetric: -45 and +45 degrees are one picture); the chair and the armchair show their
left and right sides, the bench its ends.

Why the light turns from the front to the right, not from the left to the right (v3): a chair's mean grey is
symmetric in the light's angle about the front (v2's -90..90 degrees: 114, 141, 156, 141, 114 on the plain chair's
pixels), so how bright a chair is tells |light|, not light; no code of the v2 runs held light (MIG 0.02 for it, R^2
of a linear fit <= 0.08 in every style, docs/training/chairs3d.md). Over 0..90 degrees the mean grey falls
monotonically (156 to 114) while the lit side moves to the right: one uniform code can read both.

Grey, not colour: the factors are shape, pose and shading, all visible in luminance; RGB would triple the file
and the networks' input (docs/chairs3d.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import factor_sets
from .factor_sets import check_strides, factor_arrays, kept_classes

FACTOR_NAMES = ("style", "azimuth", "elevation", "light", "width")
FACTOR_SIZES = (4, 32, 5, 5, 5)
STYLES = ("chair", "armchair", "stool", "bench")
SIZE = 64
# v3: light from the front to the right (v2: from the left to the right, -90..90 degrees; v1: v2 with a full turn of
# azimuth); a file of another version is another data set and is never read as this one (read_npz)
RENDERED_FILE = "chairs3d_v3_64x64.npz"
CENTRE = np.array([0.0, 0.0, 0.42])
HALF_SIZE = 0.71  # metres from the image centre to its edge (see the module docstring)
LIGHT_ELEVATION = 35.0
AMBIENT, DIFFUSE = 0.25, 0.75
CLOTH, FRAME = 0.85, 0.55  # albedos
_SUPER = 4  # rays per pixel side
_FAR = 10.0  # rays start this far behind the screen plane through CENTRE (every chair lies within 2 m of it)


def factor_values() -> list[np.ndarray]:
    """The value of every class of every factor, in FACTOR_NAMES order (degrees for the angles)."""
    return [
        np.arange(4.0),
        np.linspace(-45.0, 45.0, 32),
        np.linspace(10.0, 50.0, 5),
        np.linspace(0.0, 90.0, 5),
        np.linspace(0.7, 1.3, 5),
    ]


def _box(x0, x1, y0, y1, z0, z1, albedo):
    return ("box", (x0, x1, y0, y1, z0, z1), albedo)


def _cyl(cx, cy, r, z0, z1, albedo):
    return ("cyl", (cx, cy, r, z0, z1), albedo)


def parts(style: int, w: float) -> list[tuple]:
    """The chair's parts in its own frame: ("box", (x0, x1, y0, y1, z0, z1), albedo) or ("cyl", (cx, cy, radius,
    z0, z1), albedo) for a vertical cylinder."""
    if style == 0:  # chair
        hw, hd, leg, top = 0.23 * w, 0.22, 0.045, 0.46
        out = [_box(-hw, hw, -hd, hd, top - 0.05, top, CLOTH)]
        for sx in (-1, 1):
            x0, x1 = sorted((sx * hw, sx * (hw - leg)))
            out.append(_box(x0, x1, -hd, -hd + leg, 0.0, top - 0.05, FRAME))  # front leg
            out.append(_box(x0, x1, hd - leg, hd, 0.0, 0.95, FRAME))  # rear leg and back post
        out.append(_box(-hw + leg, hw - leg, hd - 0.035, hd - 0.005, 0.60, 0.93, CLOTH))  # back panel
        return out
    if style == 1:  # armchair
        hw, hd, arm, foot = 0.31 * w, 0.28, 0.09, 0.08
        out = [
            _box(-hw + arm, hw - arm, -hd, hd - 0.12, foot, 0.42, CLOTH),
            _box(-hw, hw, hd - 0.12, hd, foot, 0.86, CLOTH),
        ]  # seat block, back
        for sx in (-1, 1):
            x0, x1 = sorted((sx * hw, sx * (hw - arm)))
            out.append(_box(x0, x1, -hd, hd - 0.12, foot, 0.62, CLOTH))  # arm
            for y in (-hd + 0.05, hd - 0.05):
                out.append(_cyl(sx * (hw - 0.05), y, 0.025, 0.0, foot, FRAME))
        return out
    if style == 2:  # stool
        r = 0.2 * w
        a = 0.72 * r
        out = [_cyl(0.0, 0.0, r, 0.67, 0.72, CLOTH)]
        out += [_cyl(cx, cy, 0.022, 0.0, 0.67, FRAME) for cx, cy in ((a, 0), (-a, 0), (0, a), (0, -a))]
        out += [_box(-a, a, -0.012, 0.012, 0.24, 0.27, FRAME), _box(-0.012, 0.012, -a, a, 0.24, 0.27, FRAME)]
        return out
    if style == 3:  # bench
        hl, hd, top = 0.425 * w, 0.18, 0.46
        out = [_box(-hl, hl, -hd, hd, top - 0.06, top, CLOTH)]
        for sx in (-1, 1):
            x0, x1 = sorted((sx * (hl - 0.07), sx * (hl - 0.12)))
            out.append(_box(x0, x1, -hd + 0.02, hd - 0.02, 0.0, top - 0.06, FRAME))
        out.append(_box(-hl + 0.12, hl - 0.12, -0.02, 0.02, 0.10, 0.15, FRAME))
        return out
    raise ValueError(f"chairs3d: style {style} is not one of 0..{len(STYLES) - 1}")


def part_corners(part: tuple) -> np.ndarray:
    """(8, 3): the corners of the part's axis-aligned bounding box."""
    kind, g, _ = part
    x0, x1, y0, y1, z0, z1 = g if kind == "box" else (g[0] - g[2], g[0] + g[2], g[1] - g[2], g[1] + g[2], g[3], g[4])
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])


def camera(azimuth_deg: float, elevation_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f, r, u): viewing direction, screen right, screen up (unit vectors in the chair's frame)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    f = -np.array([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)])
    r = np.array([np.cos(az), np.sin(az), 0.0])
    return f, r, np.cross(r, f)


def light_direction(azimuth_deg: float, light_deg: float) -> np.ndarray:
    a, e = np.radians(azimuth_deg + light_deg), np.radians(LIGHT_ELEVATION)
    return np.array([np.sin(a) * np.cos(e), -np.cos(a) * np.cos(e), np.sin(e)])


def _screen_samples() -> np.ndarray:
    """(64 * _SUPER,): screen coordinate (metres, right of the centre) of each column of rays; rows use its negative
    (row k of rays is as far below the centre as column k is left of it)."""
    x = (np.arange(SIZE * _SUPER) + 0.5) / _SUPER
    return (x - SIZE / 2) / (SIZE / 2) * HALF_SIZE


def cast(style: int, azimuth_deg: float, elevation_deg: float, w: float) -> tuple[np.ndarray, np.ndarray]:
    """Ray cast one view: (normals (3, S, S) of the nearest surface, albedo (S, S), 0 where no part is hit),
    S = 64 * _SUPER, rows top to bottom. Each part is tested only against the rays inside its projected bounding box."""
    f, r, u = camera(azimuth_deg, elevation_deg)
    s = _screen_samples()
    n = len(s)
    depth = np.full((n, n), np.inf, np.float32)
    normal = np.zeros((3, n, n), np.float32)
    albedo = np.zeros((n, n), np.float32)
    fd = np.where(np.abs(f) < 1e-9, 1e-9, f)  # a ray parallel to a slab: its t's become +-huge, not nan
    for part in parts(style, w):
        rel = part_corners(part) - CENTRE
        px, py = rel @ r, rel @ u
        c0, c1 = np.searchsorted(s, px.min()), np.searchsorted(s, px.max(), side="right")
        r0, r1 = np.searchsorted(s, -py.max()), np.searchsorted(s, -py.min(), side="right")
        if c0 >= c1 or r0 >= r1:
            continue
        sx, sy = s[None, c0:c1], -s[r0:r1, None]
        # ray origins (3 coordinates, each (rows, cols)); every ray has direction f
        o = [CENTRE[k] + sx * r[k] + sy * u[k] - _FAR * f[k] for k in range(3)]
        kind, g, alb = part
        if kind == "box":
            lo, hi = g[0::2], g[1::2]
            t_near, t_far = np.full(o[0].shape, -np.inf), np.full(o[0].shape, np.inf)
            axis = np.zeros(o[0].shape, np.int8)
            for k in range(3):
                t1, t2 = (lo[k] - o[k]) / fd[k], (hi[k] - o[k]) / fd[k]
                tmin = np.minimum(t1, t2)
                axis[tmin > t_near] = k
                t_near = np.maximum(t_near, tmin)
                t_far = np.minimum(t_far, np.maximum(t1, t2))
            hit = t_near <= t_far
            # the entry face's outward normal: along the axis of the last slab entered, against the ray
            nrm = [np.where(axis == k, -np.sign(fd[k]), 0.0) for k in range(3)]
        else:
            cx, cy, rad, z0, z1 = g
            dx, dy = o[0] - cx, o[1] - cy
            a = f[0] ** 2 + f[1] ** 2  # cos(el)^2 > 0: no ray is vertical
            b = 2 * (dx * f[0] + dy * f[1])
            disc = b * b - 4 * a * (dx * dx + dy * dy - rad * rad)
            root = np.sqrt(np.maximum(disc, 0.0))
            ts0, ts1 = (-b - root) / (2 * a), (-b + root) / (2 * a)
            tz0, tz1 = (z1 - o[2]) / f[2], (z0 - o[2]) / f[2]  # f_z < 0: the top plane is entered first
            t_near, t_far = np.maximum(ts0, tz0), np.minimum(ts1, tz1)
            hit = (disc > 0) & (t_near <= t_far)
            side = ts0 >= tz0
            nrm = [
                np.where(side, (dx + t_near * f[0]) / rad, 0.0),
                np.where(side, (dy + t_near * f[1]) / rad, 0.0),
                np.where(side, 0.0, 1.0),
            ]
        win = depth[r0:r1, c0:c1]
        upd = hit & (t_near < win)
        win[upd] = t_near[upd]
        for k in range(3):
            normal[k, r0:r1, c0:c1][upd] = nrm[k][upd]
        albedo[r0:r1, c0:c1][upd] = alb
    return normal, albedo


def shade(normal: np.ndarray, albedo: np.ndarray, light: np.ndarray) -> np.ndarray:
    """uint8 (64, 64): Lambertian shading of one cast view under one light, white background, 4 x 4 box filter."""
    lam = np.maximum(np.tensordot(light.astype(np.float32), normal, axes=1), 0.0)
    val = np.where(albedo > 0, albedo * (AMBIENT + DIFFUSE * lam), 1.0)
    val = val.reshape(SIZE, _SUPER, SIZE, _SUPER).mean(axis=(1, 3))
    return np.round(val * 255).astype(np.uint8)


def _check_strides(subset: Sequence[int] | None) -> tuple[int, ...]:
    return check_strides(subset, FACTOR_NAMES, "chairs3d", FACTOR_SIZES)


def render(subset: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The data set (or every ``subset[f]``-th class of each factor f, from class 0) in the layout above."""
    kept = kept_classes(FACTOR_SIZES, _check_strides(subset))
    counts = [len(k) for k in kept]
    vals = factor_values()
    imgs = np.empty((*counts, SIZE, SIZE), np.uint8)
    for a, st in enumerate(kept[0]):
        for b, az in enumerate(vals[1][kept[1]]):
            lights = [light_direction(az, lt) for lt in vals[3][kept[3]]]
            for c, el in enumerate(vals[2][kept[2]]):
                for e, w in enumerate(vals[4][kept[4]]):
                    normal, albedo = cast(int(st), az, el, w)
                    for d, light in enumerate(lights):
                        imgs[a, b, c, d, e] = shade(normal, albedo, light)
    return factor_arrays(imgs.reshape(-1, SIZE, SIZE), kept, vals, FACTOR_NAMES, FACTOR_SIZES)


def write_dataset(path: str | Path, subset: Sequence[int] | None = None) -> dict:
    """Render and write; returns a summary (rows, seconds to render and to write, bytes, sha256 of the file)."""
    return factor_sets.write_dataset(path, lambda: render(subset))


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The file's arrays; a file whose factor values are not this module's definition (e.g. one rendered before
    azimuth became a quarter turn) is an error, never read as this data set."""
    arrays = factor_sets.read_npz(path, "chairs3d", FACTOR_SIZES, SIZE)
    classes, values = arrays["latents_classes"], arrays["latents_values"]
    for f, (name, expected) in enumerate(zip(FACTOR_NAMES, factor_values(), strict=True)):
        k = classes[:, f]
        if k.min() < 0 or k.max() >= len(expected) or not np.allclose(values[:, f], expected[k]):
            raise ValueError(f"{path}: its {name} values are not this renderer's (a file from another definition)")
    return arrays


def load_chairs3d(root: str | Path | None = None, subset: Sequence[int] | None = None, allow_render: bool = True):
    """The data set as an ImageSet: images uint8 (N, 1, 64, 64), a dark chair on white; labels = style classes
    (classes STYLES), ``factors`` (N, 5) int64 = latents_classes, ``factor_names`` = FACTOR_NAMES.

    ``root`` (``--data-dir``; default ~/.cache/infogan/chairs3d): the file ``chairs3d_v3_64x64.npz`` there, else the
    full set is rendered and written there (docs/chairs3d.md: time and size) unless ``allow_render`` is False.
    ``subset`` (five strides): every ``subset[f]``-th class of each factor, from the file when there is one, else
    rendered in memory and not written (what tests use)."""
    import torch

    from .data import DEFAULT_ROOT, ImageSet

    root = Path(root) if root else DEFAULT_ROOT / "chairs3d"
    strides = _check_strides(subset)
    path = root / RENDERED_FILE
    arrays = factor_sets.cached_arrays(
        "chairs3d",
        path if path.is_file() else None,
        path,
        strides,
        subset is not None,
        render,
        allow_render,
        read_npz,
        "3D chairs (16,000 images)",
        full_rows=int(np.prod(FACTOR_SIZES)),
        factor_names=FACTOR_NAMES,
        factor_sizes=FACTOR_SIZES,
    )
    classes = np.ascontiguousarray(arrays["latents_classes"], np.int64)
    return ImageSet(
        torch.from_numpy(np.ascontiguousarray(arrays["imgs"][:, None])),
        torch.from_numpy(classes[:, 0].copy()),
        list(STYLES),
        "chairs3d",
        factors=torch.from_numpy(classes),
        factor_names=FACTOR_NAMES,
    )


def contact_sheet(base: Sequence[int] = (0, 24, 2, 1, 2), per_row: int = 16, scale: int = 2) -> np.ndarray:
    """uint8 image: one row per factor, that factor's classes (at most ``per_row``, evenly spaced) left to right with
    the others at ``base``; the factor's name on the left. docs/chairs3d-contact-sheet.png is
    ``PIL.Image.fromarray(contact_sheet()).save(...)``."""
    from PIL import Image, ImageDraw

    vals, label_w, cell = factor_values(), 80, SIZE + 2
    sheet = np.full((len(FACTOR_NAMES) * cell, label_w + per_row * cell), 255, np.uint8)
    for f, size in enumerate(FACTOR_SIZES):
        for n, k in enumerate(np.unique(np.linspace(0, size - 1, min(size, per_row)).round().astype(int))):
            cl = list(base)
            cl[f] = int(k)
            normal, albedo = cast(cl[0], vals[1][cl[1]], vals[2][cl[2]], vals[4][cl[4]])
            img = shade(normal, albedo, light_direction(vals[1][cl[1]], vals[3][cl[3]]))
            sheet[f * cell : (f + 1) * cell, label_w + n * cell : label_w + (n + 1) * cell] = np.pad(
                img, 1, constant_values=160
            )
    im = Image.fromarray(sheet)
    draw = ImageDraw.Draw(im)
    for f, name in enumerate(FACTOR_NAMES):
        draw.text((4, f * cell + cell // 2 - 5), f"{name} ({FACTOR_SIZES[f]})", fill=0)
    return np.asarray(im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST))
