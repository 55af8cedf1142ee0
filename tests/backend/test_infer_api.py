"""POST /infer-codes: multipart and JSON uploads, any size/mode, inversion, and every upload error."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from backend.core.images import UploadError, decode_upload, prepare

LIMIT = 4096 * 4096


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def digit(size=(28, 28), dark_on_light=False, mode="L") -> Image.Image:
    a = np.zeros(size[::-1], np.uint8)
    h, w = a.shape
    a[h // 5 : 4 * h // 5, w // 2 - max(1, w // 14) : w // 2 + max(1, w // 14)] = 255  # a "1"
    if dark_on_light:
        a = 255 - a
    return Image.fromarray(a, "L").convert(mode)


NOISY_JPEG = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8)), "JPEG")


def wav() -> bytes:
    """A real WAV (RIFF....WAVE): the same container as WebP, another form."""
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(800))
    return buf.getvalue()


def check_response(r, model="tiny"):
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == model
    d = body["codes"]["digit"]
    assert d["type"] == "categorical" and len(d["probabilities"]) == 10
    assert abs(sum(d["probabilities"]) - 1) < 1e-6 and d["value"] == int(np.argmax(d["probabilities"]))
    c1 = body["codes"]["c1"]
    assert c1["type"] == "continuous" and c1["std"] > 0 and -3 <= c1["value"] <= 3
    assert Image.open(io.BytesIO(base64.b64decode(body["reconstruction"]))).size == (28, 28)
    return body


@pytest.mark.parametrize(
    "fmt, mode",
    [
        ("PNG", "L"),
        ("JPEG", "RGB"),
        ("WEBP", "RGB"),
        ("GIF", "P"),
        ("BMP", "RGB"),
        ("PNG", "RGBA"),
        ("PNG", "I;16"),
        ("PNG", "1"),
    ],
)
def test_formats_and_modes(client, fmt, mode):
    data = encode(digit(mode=mode), fmt)
    check_response(client.post("/infer-codes", files={"file": ("x", data, "application/octet-stream")}))


def test_model_field_and_odd_sizes(client):
    data = encode(digit((300, 90)), "PNG")
    check_response(
        client.post("/infer-codes", files={"file": ("x.png", data, "image/png")}, data={"model": "tiny-gan"}),
        model="tiny-gan",
    )
    check_response(client.post("/infer-codes", files={"file": ("x.png", encode(digit((1, 1)), "PNG"), "image/png")}))


def test_json_data_url(client):
    url = "data:image/png;base64," + base64.b64encode(encode(digit((280, 280)), "PNG")).decode()
    check_response(client.post("/infer-codes", json={"image": url}))
    check_response(client.post("/infer-codes", json={"image": url, "model": "tiny-gan"}), model="tiny-gan")


def test_dark_on_light_is_inverted_and_canvas_alpha():
    light = prepare(digit((56, 56)), channels=1, height=28, width=28, light_on_dark=True)
    paper = prepare(digit((56, 56), dark_on_light=True), channels=1, height=28, width=28, light_on_dark=True)
    assert np.abs(light - paper).max() < 0.02 and light[0, 0, 0, 0] < 0.05
    kept = prepare(digit((56, 56), dark_on_light=True), channels=1, height=28, width=28, light_on_dark=False)
    assert kept[0, 0, 0, 0] > 0.95
    # dark strokes on a transparent canvas
    a = np.zeros((56, 56, 4), np.uint8)
    a[11:44, 24:32] = (0, 0, 0, 255)
    canvas = prepare(Image.fromarray(a, "RGBA"), channels=1, height=28, width=28, light_on_dark=True)
    assert np.abs(canvas - light).max() < 0.1
    # aspect ratio kept: a wide image is padded top and bottom with the ground colour
    wide = prepare(Image.new("L", (280, 28), 255), channels=1, height=28, width=28, light_on_dark=False)
    assert wide.shape == (1, 1, 28, 28) and wide.min() > 0.95
    rgb = prepare(digit((40, 20)), channels=3, height=32, width=32, light_on_dark=False)
    assert rgb.shape == (1, 3, 32, 32)


def test_too_large_upload(client):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024)
    r = client.post("/infer-codes", files={"file": ("x.png", big, "image/png")})
    assert r.status_code == 413 and r.json()["detail"].startswith("file")
    r = client.post("/infer-codes", json={"image": base64.b64encode(big).decode()})
    assert r.status_code == 413


def test_decompression_bomb(client):
    bomb = encode(Image.new("L", (5000, 5000)), "PNG")  # ~25 Mpx, a few KiB compressed
    assert len(bomb) < 100_000
    r = client.post("/infer-codes", files={"file": ("x.png", bomb, "image/png")})
    assert r.status_code == 413 and "pixels" in r.json()["detail"]


@pytest.mark.parametrize(
    "data, status",
    [
        (b"hello, not an image", 415),
        (b"", 415),
        (encode(Image.new("L", (8, 8)), "TIFF"), 415),
        (encode(digit(), "PNG")[:60], 422),
        (NOISY_JPEG[: len(NOISY_JPEG) // 2], 422),
        # cut inside their headers: a known format's first bytes, so cut or corrupt (422), not another format (415)
        (encode(digit(), "PNG")[:40], 422),
        (NOISY_JPEG[:40], 422),
        (encode(digit(), "GIF")[:12], 422),
        (encode(digit(mode="RGB"), "BMP")[:20], 422),
        (encode(digit(mode="RGB"), "WEBP")[:40], 422),
        # another format sharing a bare prefix was taken for a cut image: 422 "truncated or corrupt" for a WAV
        (wav(), 415),
        (b"RIFF\x24\x00\x00\x00AVI LIST\x00\x00\x00\x00", 415),
        (b"BM hello", 415),
        (b"BM is a text that starts like a BMP file header, and is long enough for one", 415),
    ],
)
def test_bad_files(client, data, status):
    r = client.post("/infer-codes", files={"file": ("x", data, "image/png")})
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith("file")


# each accepted format's signature: the whole of it is "cut or corrupt" (422), one byte less another format (415)
SIGNATURE_BYTES = {"PNG": 8, "JPEG": 4, "GIF": 6, "WEBP": 12, "BMP": 18}


@pytest.mark.parametrize("fmt", list(SIGNATURE_BYTES))
def test_a_format_is_known_by_its_whole_signature(fmt):
    data = encode(digit(mode="RGB"), fmt)
    assert decode_upload(data, max_pixels=LIMIT).size == (28, 28)
    n = SIGNATURE_BYTES[fmt]
    for cut, status in ((data[:n], 422), (data[: n - 1], 415)):
        with pytest.raises(UploadError) as e:
            decode_upload(cut, max_pixels=LIMIT)
        assert e.value.status == status, (len(cut), e.value.detail)


@pytest.mark.parametrize(
    "patch, status",
    [
        ((3, b"\xe1"), 422),  # an EXIF JPEG
        ((3, b"\x00"), 415),  # not a marker after SOI
        ((14, b"\x7c"), 422),  # a BMP V5 header
        ((14, b"\x10"), 415),  # a DIB header of 16 bytes: no BMP version PIL reads
        ((8, b"WAVE"), 415),  # RIFF of another form
    ],
)
def test_signature_fields_past_the_magic_are_checked(patch, status):
    at, value = patch
    fmt = {3: "JPEG", 14: "BMP", 8: "WEBP"}[at]
    data = bytearray(encode(digit(mode="RGB"), fmt)[:20])  # cut in the header: PIL cannot open it
    data[at : at + len(value)] = value
    with pytest.raises(UploadError) as e:
        decode_upload(bytes(data), max_pixels=LIMIT)
    assert e.value.status == status, e.value.detail


@pytest.mark.parametrize(
    "kwargs, status, field",
    [
        ({"data": {"model": "tiny"}}, 415, "content-type"),
        ({"files": {"other": ("x.png", b"x", "image/png")}, "data": {"model": "tiny"}}, 422, "other"),
        ({"files": {"model": (None, "tiny")}}, 422, "file"),
        ({"files": {"file": ("x.png", encode(digit(), "PNG"), "image/png")}, "data": {"model": "nope"}}, 404, "model"),
        ({"json": {"image": "data:image/png;base64,@@@"}}, 422, "image"),
        ({"json": {"image": "data:image/png,abc"}}, 422, "image"),
        ({"json": {"model": "tiny"}}, 422, "image"),
        ({"json": {"image": base64.b64encode(encode(digit(), "PNG")[:60]).decode()}}, 422, "image"),
        ({"json": {"image": base64.b64encode(b"text").decode()}}, 415, "image"),
        ({"content": b"raw", "headers": {"content-type": "text/plain"}}, 415, "content-type"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 422, "body"),
    ],
)
def test_request_errors(client, kwargs, status, field):
    r = client.post("/infer-codes", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["detail"].startswith(field), r.text
    assert client.get("/healthz").status_code == 200


def test_an_upload_over_the_limit_names_its_field_and_closes_the_connection(client):
    # bodies past what the route reads (5 MiB x 4/3 + 64 KiB): answered before the rest of the body
    big = b"\x89PNG" + bytes(6 * 1024 * 1024)
    as_json = {"image": "data:image/png;base64," + base64.b64encode(big).decode(), "model": "tiny"}
    bigger = big + bytes(2 * 1024 * 1024)
    for kwargs, field in (({"json": as_json}, "image"), ({"files": {"file": ("a.png", bigger, "image/png")}}, "file")):
        r = client.post("/infer-codes", **kwargs)
        assert r.status_code == 413 and r.json()["detail"].startswith(f"{field}: upload over the limit"), r.text
        assert r.headers["connection"] == "close"  # the rest of the body is not read


@pytest.mark.parametrize("path", ["/infer-codes", "/generate"])
def test_a_long_content_type_is_clipped_in_the_answer(client, path):
    r = client.post(path, content=b"x", headers={"content-type": "application/x" + "y" * 3000})
    assert r.status_code == 415 and len(r.content) < 300 and r.json()["detail"].endswith("...")


def test_a_repeated_content_type_is_read_as_the_app_reads_it(client):
    # the body limit kept the last (application/json) while the app parsed by the first: 422 "body: not a dict"
    headers = [("content-type", "text/plain"), ("content-type", "application/json")]
    r = client.post("/generate", content=b'{"model": "tiny"}', headers=headers)
    assert r.status_code == 415 and "got 'text/plain'" in r.json()["detail"], r.text


@pytest.mark.parametrize("scheme", ["data:image/png;base64,", "DATA:image/png;BASE64,", "Data:Image/PNG;base64,"])
def test_data_urls_in_any_case_and_wrapped_base64(client, scheme):
    png = encode(digit(), "PNG")
    for text in (base64.b64encode(png).decode(), base64.encodebytes(png).decode()):  # one line, or 76 columns
        check_response(client.post("/infer-codes", json={"image": scheme + text, "model": "tiny"}))
