"""What each continuous code does, measured from the images: a known generator's codes are named right."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from training.code_effects import code_effects, describe, image_statistics, torch_generator
from training.latent import mnist_spec


class Bar(nn.Module):
    """A stand-in generator: two bright vertical strokes (a "0" or "H" drawn with the same ink whatever its width)
    whose distance apart follows c1 (4-16 px) and whose shear follows c2 (the top leans right for c2 > 0); the noise
    moves nothing; the digit code is ignored."""

    def __init__(self, swap: bool = False):
        super().__init__()
        self.spec, self.swap = mnist_spec(), swap

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        width_code, shear_code = (c[:, 11], c[:, 10]) if self.swap else (c[:, 10], c[:, 11])
        rows = torch.arange(28.0)[None, :, None]
        cols = torch.arange(28.0)[None, None, :]
        half_gap = 5 + 1.5 * width_code.clamp(-2, 2).round()[:, None, None]  # whole pixels: the ink stays the same
        centre = 13.5 + shear_code.clamp(-2, 2)[:, None, None] * (13.5 - rows) * 0.3
        off = (cols - centre).abs()
        inside = (off >= half_gap) & (off <= half_gap + 1.5) & (rows >= 4) & (rows <= 23)
        return torch.where(inside, 1.0, -1.0)[:, None]


def test_statistics_of_known_images():
    img = np.zeros((2, 28, 28))
    img[0, 10:20, 5:9] = 1.0  # 4 columns, 10 rows, at x 5..8
    img[1, 10:20, 15:23] = 0.5  # 8 columns wide, half as bright
    s = image_statistics(img)
    assert s["x"][0] == 6.5 and s["x"][1] == 18.5 and s["y"][0] == 14.5
    assert s["width"][1] > 1.9 * s["width"][0]
    assert s["brightness"][0] == 1.0 and s["brightness"][1] == 0.5
    assert abs(s["slant"][0]) < 1e-9
    striped = img[:1].copy()
    striped[0, 10:20:2, 5:9] = 0.2  # the same patch with stripes inside: more edges per unit of ink
    assert image_statistics(striped)["texture"][0] > 2 * s["texture"][0]


def test_each_code_is_named_by_what_it_moves():
    effects = code_effects(Bar().spec, torch_generator(Bar()), draws=8, cols=9)
    assert effects["c1"]["strongest"] == "width" and effects["c1"]["statistics"]["width"]["r"] > 0.95
    assert effects["c2"]["strongest"] == "slant" and effects["c2"]["statistics"]["slant"]["r"] > 0.95
    assert effects["c2"]["statistics"]["slant"]["effect"] > 1  # positive code leans the top right: positive slant
    assert effects["c1"]["values"] == [-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    swapped = code_effects(mnist_spec(), torch_generator(Bar(swap=True)), draws=8, cols=9)
    assert swapped["c1"]["strongest"] == "slant" and swapped["c2"]["strongest"] == "width"
    assert describe(effects).splitlines()[0].startswith("c1: width +")


def test_dark_drawing_measures_the_dark_object():
    class Inverted(Bar):
        def forward(self, z, c):
            return -super().forward(z, c)

    effects = code_effects(mnist_spec(), torch_generator(Inverted()), draws=4, drawing="dark-on-light")
    assert effects["c1"]["strongest"] == "width"
