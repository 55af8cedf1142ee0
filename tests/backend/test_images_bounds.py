"""Decode cost bounded before decoding (issue 23 items 1 and 5): header budget, reduction while decoding, EXIF
orientation, MPO, and the decode gate apart from generation."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from backend.core.images import REDUCE_TO, UploadError, decode_upload, prepare

LIMIT = 4096 * 4096


def png(w: int, h: int, depth: int, ctype: int, channels: int) -> bytes:
    """A blank PNG written row by row (a 4096^2 16-bit RGBA one is ~130 KB, built without 128 MB in memory)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    co = zlib.compressobj(9)
    row = b"\0" * (1 + w * channels * depth // 8)
    idat = b"".join(co.compress(row) for _ in range(h)) + co.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "w,h,depth,ctype,ch",
    [
        (4096, 4096, 16, 6, 4),  # the 130 KB 16-bit RGBA
        (4096, 4096, 16, 2, 3),  # 16-bit RGB: 96 MiB
        (4096, 2900, 16, 6, 4),
    ],
)  # fewer pixels, still over by depth
def test_decoded_bytes_over_budget_refused_from_header(w, h, depth, ctype, ch):
    t = time.perf_counter()
    with pytest.raises(UploadError) as e:
        decode_upload(png(w, h, depth, ctype, ch), max_pixels=LIMIT)
    assert e.value.status == 413 and "bits" in e.value.detail and "bytes decoded" in e.value.detail
    assert time.perf_counter() - t < 2.0  # includes building the PNG; refusing is from the header


@pytest.mark.parametrize("w,h", [(16_777_216, 1), (1, 16_777_216), (4096, 4096), (5000, 3)])
def test_large_but_allowed_images_are_reduced_while_decoding(w, h):
    im = decode_upload(png(w, h, 8, 0, 1), max_pixels=LIMIT)
    assert max(im.size) <= REDUCE_TO
    x = prepare(im, channels=1, height=28, width=28, light_on_dark=True)
    assert x.shape == (1, 1, 28, 28)


def test_16_bit_grey_is_read_by_its_top_8_bits_whatever_its_brightest_value():
    # 255 of 65535 is near black; it was read as full white (the scale followed the image's maximum, so 255 and 256
    # were 250 times apart)
    for top, expected in ((255, 0), (256, 1), (0xFFFF, 255)):
        arr = np.zeros((64, 64), np.uint16)
        arr[20:40, 20:40] = top
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")  # mode I;16
        im = decode_upload(buf.getvalue(), max_pixels=LIMIT)
        assert int(np.asarray(im).max()) == expected, top


def test_16_bit_grey_keeps_its_grey():
    arr = np.full((64, 64), 0x8000, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")  # mode I;16
    im = decode_upload(buf.getvalue(), max_pixels=LIMIT)
    assert im.mode == "L" and abs(int(np.asarray(im).mean()) - 128) <= 1


def test_large_jpeg_decodes_at_reduced_scale():
    buf = io.BytesIO()
    Image.new("RGB", (4032, 3024), (200, 30, 30)).save(buf, "JPEG", quality=50)  # a phone photo's size
    im = decode_upload(buf.getvalue(), max_pixels=LIMIT)
    assert max(im.size) <= REDUCE_TO and im.size[0] > im.size[1]


def _oriented_jpeg(orientation: int, fmt: str = "JPEG") -> bytes:
    # 40 wide x 20 high, left half white: stored landscape; orientation 6 means "rotate 90 clockwise to view"
    a = np.zeros((20, 40), np.uint8)
    a[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, exif=exif.tobytes(), quality=95)
    return buf.getvalue()


@pytest.mark.parametrize(
    "orientation,size,white_at",
    [(6, (20, 40), (10, 5)), (8, (20, 40), (10, 35)), (3, (40, 20), (35, 10)), (1, (40, 20), (5, 10))],
)
def test_exif_orientation_applied(orientation, size, white_at):
    im = decode_upload(_oriented_jpeg(orientation), max_pixels=LIMIT)
    assert im.size == size
    assert im.getpixel(white_at) > 200


def test_mpo_first_frame_accepted():
    frames = [Image.new("L", (30, 30), 255), Image.new("L", (30, 30), 0)]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    im = decode_upload(buf.getvalue(), max_pixels=LIMIT)
    assert im.size == (30, 30) and np.asarray(im).mean() > 200  # the first (white) frame


def test_decode_gate_bounds_concurrency_and_answers_503():
    from backend.core import decode
    from backend.core.decode import DecodeGate, GateBusy

    gate = DecodeGate(slots=1, queue=0, wait_s=5)
    held, release = threading.Event(), threading.Event()

    def hold():
        with gate.slot():
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    t0 = time.perf_counter()
    with pytest.raises(GateBusy):  # queue full: refused at once, no thread parked waiting
        with gate.slot():
            pass
    assert time.perf_counter() - t0 < 0.5
    queued = DecodeGate(slots=1, queue=1, wait_s=0.05)
    with queued.slot(), pytest.raises(GateBusy):
        with queued.slot():
            pass
    old, decode.GATE = decode.GATE, gate
    try:
        with pytest.raises(UploadError) as e:
            decode_upload(png(8, 8, 8, 0, 1), max_pixels=LIMIT)
        assert e.value.status == 503 and e.value.headers == {"Retry-After": "1"}
    finally:
        decode.GATE = old
        release.set()
        t.join()
