"""dSprites re-rendered from its definition: DeepMind's layout, the geometry, determinism, the loader and the CLI.
Only small subsets are rendered (every k-th class of each factor); never the 737,280-image set."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

from training import dsprites as ds
from training.data import DataError, load_dataset

SUBSET = (1, 1, 2, 8, 4, 4)  # 1 x 3 x 3 x 5 x 8 x 8 = 2,880 images


@pytest.fixture(scope="module")
def small():
    return ds.render(SUBSET)


def test_canonical_layout_of_a_subset(small):
    assert int(np.prod(ds.FACTOR_SIZES)) == 737_280 and ds.FACTOR_SIZES == (1, 3, 6, 40, 32, 32)
    imgs, classes, values = small["imgs"], small["latents_classes"], small["latents_values"]
    assert imgs.dtype == np.uint8 and imgs.shape == (2880, 64, 64) and set(np.unique(imgs)) == {0, 1}
    assert classes.dtype == np.int64 and values.dtype == np.float64 and classes.shape == values.shape == (2880, 6)
    assert list(small["factor_names"]) == ["color", "shape", "scale", "orientation", "posX", "posY"]
    assert list(small["factor_sizes"]) == [1, 3, 6, 40, 32, 32]
    # row-major over the kept classes, posY fastest: the rows are sorted by their class tuples, posY changing first
    assert np.array_equal(classes[:3, 5], [0, 4, 8]) and (classes[:3, :5] == 0).all()
    assert np.array_equal(np.lexsort(classes.T[::-1]), np.arange(len(classes)))
    # the canonical values of the classes
    assert (values[:, 0] == 1).all() and set(values[:, 1]) == {1.0, 2.0, 3.0}
    np.testing.assert_allclose(values[:, 2], np.linspace(0.5, 1, 6)[classes[:, 2]])
    np.testing.assert_allclose(values[:, 3], np.linspace(0, 2 * np.pi, 40)[classes[:, 3]])
    np.testing.assert_allclose(values[:, 4], np.linspace(0, 1, 32)[classes[:, 4]])
    np.testing.assert_allclose(values[:, 5], np.linspace(0, 1, 32)[classes[:, 5]])


def test_full_row_order_matches_the_canonical_index():
    # every class of posX/posY/orientation for one (shape, scale): the row of classes c is ravel(c, FACTOR_SIZES)
    arrays = ds.render((1, 3, 6, 1, 1, 1))
    flat = np.ravel_multi_index(arrays["latents_classes"].T, ds.FACTOR_SIZES)
    assert len(arrays["imgs"]) == 40 * 32 * 32 and np.array_equal(flat, np.arange(len(flat)))


def test_same_bytes_every_time(tmp_path, small):
    again = ds.render(SUBSET)
    assert hashlib.sha256(ds.npz_bytes(small)).hexdigest() == hashlib.sha256(ds.npz_bytes(again)).hexdigest()
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    ds.write_npz(a, small)
    ds.write_npz(b, again)
    assert ds.sha256_file(a) == ds.sha256_file(b)
    back = ds.read_npz(a)
    assert str(back["source"]) == "rendered" and np.array_equal(back["imgs"], small["imgs"])


def test_every_shape_lies_within_radius_16_scale():
    # the circumradius bound that keeps every sprite inside the frame at every position and orientation
    angles = np.linspace(0, 2 * np.pi, 3600, endpoint=False)
    for shape in range(3):
        for scale in (0.5, 1.0):
            r = ds._MAX_RADIUS * scale
            assert not ds.inside(shape, (r + 1e-6) * np.cos(angles), (r + 1e-6) * np.sin(angles), r).any()
            # ... and it is tight: some point at 0.98 R is inside (the sprites use their room)
            assert ds.inside(shape, 0.98 * r * np.cos(angles), 0.98 * r * np.sin(angles), r).any()


def test_area_grows_with_scale_squared_and_rotation_keeps_the_centre():
    m = ds.sprite_masks(range(3), range(6), range(0, 40, 3)).astype(np.float64)  # (3, 6, 14, 33, 33)
    area = m.sum(axis=(3, 4)).mean(axis=2)  # (shape, scale)
    np.testing.assert_allclose(
        area / area[:, :1], np.broadcast_to((np.linspace(0.5, 1, 6) / 0.5) ** 2, (3, 6)), rtol=0.12
    )
    ys, xs = np.mgrid[0:33, 0:33]
    for shape in (0, 1):  # point-symmetric shapes: the centroid is the centre of rotation, pixel (16, 16)
        w = m[shape]
        np.testing.assert_allclose((w * xs).sum((2, 3)) / w.sum((2, 3)), 16, atol=1e-9)
        np.testing.assert_allclose((w * ys).sum((2, 3)) / w.sum((2, 3)), 16, atol=1e-9)
    # the heart points down at orientation 0 and rotates counter-clockwise: a quarter turn points it right
    heart = ds.sprite_masks([2], [5], [0, 10])[0, 0]
    # tip 13.1 px below the centre (row 29), the notch 10.7 px above it (row 5)
    assert heart[0, 28, 16] and not heart[0, 30, 16] and not heart[0, 4, 16] and heart[0, 7, 16]
    assert heart[1, 15:18, 28].any() and not heart[1, 15:18, 3].any()  # ~92 degrees on: the tip is on the right
    orient = ds.sprite_masks(range(3), [5], [0, 39])[:, 0]
    assert np.array_equal(orient[:, 0], orient[:, 1])  # 0 and 2 pi: the same picture, as in DeepMind's set


def test_positions_shift_by_whole_pixels_along_their_axis(small):
    imgs, c = small["imgs"], small["latents_classes"]
    base = np.flatnonzero((c[:, 1:] == [1, 4, 0, 0, 0]).all(axis=1))[0]
    right = np.flatnonzero((c[:, 1:] == [1, 4, 0, 8, 0]).all(axis=1))[0]
    down = np.flatnonzero((c[:, 1:] == [1, 4, 0, 0, 12]).all(axis=1))[0]
    assert np.array_equal(np.roll(imgs[base], 8, axis=1), imgs[right])  # posX: columns
    assert np.array_equal(np.roll(imgs[base], 12, axis=0), imgs[down])  # posY: rows, downwards
    corner = ds.render((1, 1, 1, 1, 31, 31))["imgs"]  # posX, posY in {0, 31}: the extremes
    assert corner.any(axis=(1, 2)).all()  # every sprite drawn, none clipped away
    assert all(corner[..., :, k].any() and corner[..., k, :].any() for k in (0, 63))  # the largest reach the edges


def test_loader_renders_subsets_in_memory_and_reads_files(tmp_path, small):
    s = load_dataset("dsprites", tmp_path, subset=list(SUBSET))
    assert list(tmp_path.iterdir()) == []  # a subset is never written
    assert tuple(s.images.shape) == (2880, 1, 64, 64) and s.labels is None and s.name == "dsprites"
    assert set(np.unique(s.images.numpy())) == {0, 255}
    assert np.array_equal(s.factors.numpy(), small["latents_classes"]) and s.factor_names == ds.FACTOR_NAMES
    # a rendered file in --data-dir: subset rows taken from it
    ds.write_npz(tmp_path / ds.RENDERED_FILE, ds.render((1, 1, 2, 4, 4, 4)))
    s2 = load_dataset("dsprites", tmp_path, subset=list(SUBSET))
    assert np.array_equal(s2.images.numpy()[:, 0] // 255, small["imgs"])
    # DeepMind's file (told apart by its keys; its pickled metadata is not read) wins over ours
    np.savez(
        tmp_path / ds.DEEPMIND_FILE,
        imgs=small["imgs"][::-1],
        latents_classes=small["latents_classes"][::-1],
        latents_values=small["latents_values"][::-1],
        metadata=np.array({"x": 1}, dtype=object),
    )
    s3 = load_dataset("dsprites", tmp_path)
    assert np.array_equal(s3.factors.numpy(), small["latents_classes"][::-1])


def test_loader_errors(tmp_path):
    with pytest.raises(DataError, match="rendering is off"):
        load_dataset("dsprites", tmp_path, allow_download=False)
    with pytest.raises(DataError, match="no 'test' split"):
        load_dataset("dsprites", tmp_path, split="test")
    np.savez(tmp_path / ds.RENDERED_FILE, imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match="not a dSprites file"):
        load_dataset("dsprites", tmp_path)
    with pytest.raises(ValueError, match="six strides"):
        ds.render((1, 2))


def test_cli_writes_the_layout(tmp_path, capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as e:
        main(["data", "dsprites", "--out", str(tmp_path), "--subset", "1,1,3,20,16,16"])
    assert e.value.code == 0
    with np.load(tmp_path / ds.RENDERED_FILE) as z:
        assert set(z.files) == {"imgs", "latents_classes", "latents_values", "factor_names", "factor_sizes"}
        assert z["imgs"].shape == (3 * 2 * 2 * 2 * 2, 64, 64)
    assert '"rows": 48' in capsys.readouterr().out


def _save_broken(path, small, **change):
    arrays = {k: small[k] for k in ("imgs", "latents_classes", "latents_values", "factor_names", "factor_sizes")}
    np.savez(path, **{**arrays, **change})


@pytest.mark.parametrize(
    "change, says",
    [
        ({"latents_classes": "over"}, r"latents_classes\[:, 3\] spans 99..99, not dSprites's 0..39"),
        ({"latents_classes": "negative"}, r"latents_classes\[:, 4\] spans -7"),
        ({"latents_classes": "float"}, "are not uint8 / integers"),
        ({"imgs": "bool"}, "are not uint8 / integers"),
        ({"latents_values": "1d"}, "latents_values .* is not latents_classes' shape"),
    ],
)
def test_a_file_with_wrong_contents_is_refused_not_served(tmp_path, small, change, says):
    # such files once loaded (classes 99 or -7 as factor labels; 1.7 read as 1) or ended in a traceback
    classes, (key, how) = small["latents_classes"].copy(), next(iter(change.items()))
    value = {
        "over": lambda: np.where(np.arange(6) == 3, 99, classes),
        "negative": lambda: np.where(np.arange(6) == 4, -7, classes),
        "float": lambda: classes + 0.7,
        "bool": lambda: small["imgs"].astype(bool),
        "1d": lambda: small["latents_values"][:, 0],
    }[how]()
    _save_broken(tmp_path / ds.RENDERED_FILE, small, **{key: value})
    with pytest.raises(DataError, match=says):
        load_dataset("dsprites", tmp_path)


def test_an_unreadable_file_is_one_data_error(tmp_path, small):
    np.save(tmp_path / "x.npy", small["imgs"])  # one array saved under the .npz name
    (tmp_path / "x.npy").rename(tmp_path / ds.RENDERED_FILE)
    with pytest.raises(DataError, match="not an .npz archive"):
        load_dataset("dsprites", tmp_path)
    # a compressed member whose deflate stream is damaged (zlib.error, which is neither OSError nor ValueError)
    np.savez_compressed(tmp_path / ds.RENDERED_FILE, **{k: small[k] for k in ds.KEYS})
    raw = bytearray((tmp_path / ds.RENDERED_FILE).read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[26:30])  # the first member's local header (30 bytes + name)
    start = 30 + name_len + extra_len
    raw[start : start + 16] = bytes(b ^ 0xFF for b in raw[start : start + 16])
    (tmp_path / ds.RENDERED_FILE).write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("dsprites", tmp_path)


def test_a_subset_the_files_strides_cannot_give_is_refused(tmp_path):
    """A file written with --subset (posY every 4th class) read with posY stride 6 would keep classes 0, 12, 24 only
    (3 of the 6 the same subset renders): refused, naming the classes it lacks; a stride the file's divides is read."""
    ds.write_npz(tmp_path / ds.RENDERED_FILE, ds.render((1, 1, 6, 40, 4, 4)))
    with pytest.raises(DataError, match=r"lacks posY classes \[6, 18, 30\] that subset stride 6 keeps"):
        load_dataset("dsprites", tmp_path, subset=[1, 1, 6, 40, 4, 6])
    s = load_dataset("dsprites", tmp_path, subset=[1, 1, 6, 40, 8, 4])
    assert len(s.images) == 3 * 1 * 1 * 4 * 8 and sorted(set(s.factors.numpy()[:, 4].tolist())) == [0, 8, 16, 24]
