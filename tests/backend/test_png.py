"""The service's own PNG writer against PIL's decoder."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from backend.core.images import png_base64, pngs_base64


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB")])
def test_batch_pngs_decode_to_the_rounded_clipped_pixels(channels, mode):
    rng = np.random.default_rng(0)
    images = rng.uniform(-0.3, 1.3, (5, channels, 7, 9)).astype(np.float32)  # out of range on purpose: clipped
    encoded = pngs_base64(images)
    assert len(encoded) == 5
    for image, b64 in zip(images, encoded, strict=False):
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert (im.mode, im.size) == (mode, (9, 7))
        expected = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        got = np.asarray(im)
        np.testing.assert_array_equal(got[None] if channels == 1 else got.transpose(2, 0, 1), expected)
        assert png_base64(image) == b64  # one image alone encodes the same as in a batch
