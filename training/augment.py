"""Nuisance transforms under which Q must still recognise a categorical code (``loss.invariance``).

Why: for InfoGAN the information term is maximal (L_I = H(c) = ln 10 on MNIST) for *any* partition of the images
into 10 equally likely, easily told apart groups: digit identity, but also "4 or 9" in one group with "upright 1"
and "slanted 1" in two others. The paper's objective cannot prefer the first, which is why runs plateau at ~0.90
with one digit pair merged and another digit split by style. Asking Q to recover the category from a randomly
rotated, sheared, rescaled and shifted copy of G's image (as Elastic-InfoGAN's transformation consistency does,
Ojha et al., 2020) makes style-based groups un-decodable, so only identity-like groups keep L_I at H(c). The
continuous codes (which *should* capture slant and width) are trained on untransformed images.

Transforms are differentiable (``grid_sample``) so G learns through them in the generator phase. Parameters are
drawn from torch's global generator, which a checkpoint stores, so a resumed run draws the same transforms.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# name -> meaning; every range is symmetric around the identity and 0 turns that transform off
PARAMS = {
    "rotate": "maximum rotation, degrees",
    "shear": "maximum horizontal shear (x shift per unit of y)",
    "scale": "maximum relative change of width and of height, independently",
    "translate": "maximum shift, pixels",
    "contrast": "maximum relative change of the object's intensity above the background (a gain on x + 1)",
}


class NuisanceAugment:
    def __init__(
        self,
        *,
        rotate: float = 0.0,
        shear: float = 0.0,
        scale: float = 0.0,
        translate: float = 0.0,
        contrast: float = 0.0,
    ):
        values = (("rotate", rotate), ("shear", shear), ("scale", scale), ("translate", translate))
        for name, v in (*values, ("contrast", contrast)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0):
                raise ValueError(f"loss.invariance.{name} must be a finite number >= 0, got {v!r}")
        for name, v in (("scale", scale), ("contrast", contrast)):
            if v >= 1:
                raise ValueError(f"loss.invariance.{name} must be < 1 (a relative change), got {v}")
        self.contrast = float(contrast)
        self.rotate, self.shear, self.scale, self.translate = (
            float(rotate),
            float(shear),
            float(scale),
            float(translate),
        )

    @classmethod
    def from_config(cls, d: dict[str, float]) -> NuisanceAugment | None:
        """{} (the paper) -> None; otherwise the transform, with a message naming any unknown key."""
        if not d:
            return None
        unknown = sorted(set(d) - set(PARAMS))
        if unknown:
            raise ValueError(f"unknown keys in loss.invariance: {unknown}; expected some of {sorted(PARAMS)}")
        return cls(**{k: float(v) for k, v in d.items()})

    def theta(self, n: int, size: int) -> torch.Tensor:
        """(n, 2, 3) affine maps in grid_sample's normalised coordinates ([-1, 1] across the image)."""
        u = torch.rand(n, 6) * 2 - 1  # global generator: stored in checkpoints, so resumes are exact
        a = u[:, 0] * math.radians(self.rotate)
        sh = u[:, 1] * self.shear
        sx, sy = 1 + u[:, 2] * self.scale, 1 + u[:, 3] * self.scale
        cos, sin = torch.cos(a), torch.sin(a)
        # output -> input sampling map: rotation @ shear @ scale
        m = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (n, 2, 2)
        m = m @ torch.stack(
            [torch.stack([torch.ones_like(sh), sh], 1), torch.stack([torch.zeros_like(sh), torch.ones_like(sh)], 1)], 1
        )
        m = m * torch.stack([sx, sy], 1)[:, None, :]
        t = u[:, 4:6] * (2 * self.translate / size)
        return torch.cat([m, t[:, :, None]], 2)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) in [-1, 1], background -1 -> transformed copy, same shape, differentiable in x."""
        n, _, h, w = x.shape
        theta = self.theta(n, max(h, w)).to(device=x.device, dtype=torch.float32)
        grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
        # shift so the zero padding outside the image is the background (-1), not mid grey
        y = F.grid_sample(x.float() + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.contrast > 0:
            # a gain on the intensity above the background (-1 stays -1): a dark and a light shirt differ by about
            # this, so a category cannot stand for how light an object is. Drawn only when on, after theta, so the
            # transforms of configs without it (and their resumed runs) are the same random stream as before.
            gain = 1 + (torch.rand(n, 1, 1, 1) * 2 - 1) * self.contrast
            y = (y * gain.to(device=y.device)).clamp(max=2.0)  # white stays white; no value above the image range
        return y - 1
