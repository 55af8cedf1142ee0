"""3D chairs rendered here (training/chairs3d.py): the layout, every factor moving the pictures, the frame, determinism,
the loader and the CLI. Only subsets are rendered (every k-th class of each factor), never the 16,000-image set."""

from __future__ import annotations

import numpy as np
import pytest

from training import chairs3d as ch
from training.data import DataError, load_dataset

SUBSET = (1, 3, 2, 2, 2)  # 4 x 11 x 3 x 3 x 3 = 1,188 images (azimuth -45..+42 deg in steps of 8.7: no stool repeats)


@pytest.fixture(scope="module")
def small():
    return ch.render(SUBSET)


def test_layout_and_row_order(small):
    assert ch.FACTOR_NAMES == ("style", "azimuth", "elevation", "light", "width")
    assert ch.FACTOR_SIZES == (4, 32, 5, 5, 5) and int(np.prod(ch.FACTOR_SIZES)) == 16_000
    imgs, classes, values = small["imgs"], small["latents_classes"], small["latents_values"]
    assert imgs.dtype == np.uint8 and imgs.shape == (1188, 64, 64)
    assert classes.dtype == np.int64 and values.dtype == np.float64 and classes.shape == values.shape == (1188, 5)
    assert list(small["factor_names"]) == list(ch.FACTOR_NAMES) and list(small["factor_sizes"]) == [4, 32, 5, 5, 5]
    # row-major over the kept classes, width fastest: canonical indices strictly increasing
    assert np.array_equal(classes[:3, 4], [0, 2, 4]) and (classes[:3, :4] == 0).all()
    assert (np.diff(np.ravel_multi_index(classes.T, ch.FACTOR_SIZES)) > 0).all()
    vals = ch.factor_values()
    for f in range(5):
        np.testing.assert_allclose(values[:, f], vals[f][classes[:, f]])
    np.testing.assert_allclose(vals[1][[0, 31]], [-45.0, 45.0])  # a quarter turn about the front view, ends included
    # an image sits in the row of its classes: the same classes in another subset give the same picture
    other = ch.render((2, 3, 1, 1, 4))
    want = (2, 3, 2, 2, 4)
    row_a = np.flatnonzero((classes == want).all(axis=1))
    row_b = np.flatnonzero((other["latents_classes"] == want).all(axis=1))
    assert len(row_a) == len(row_b) == 1 and np.array_equal(imgs[row_a[0]], other["imgs"][row_b[0]])


@pytest.mark.parametrize("factor", range(5))
def test_every_factor_changes_the_images(small, factor):
    """Every pair of images that differ only in one factor's (adjacent kept) class differs visibly."""
    classes = small["latents_classes"]
    shape = [len(np.unique(classes[:, f])) for f in range(5)]
    imgs = small["imgs"].reshape(*shape, 64, 64).astype(np.int16)
    moved = np.moveaxis(imgs, factor, 0)
    diff = np.abs(np.diff(moved, axis=0))  # (kept - 1, ..., 64, 64)
    mean_diff = diff.mean(axis=(-1, -2))
    changed = (diff > 8).sum(axis=(-1, -2))
    assert mean_diff.min() > 0.3, (ch.FACTOR_NAMES[factor], mean_diff.min())  # grey levels per pixel
    assert changed.min() >= 10, (ch.FACTOR_NAMES[factor], changed.min())  # pixels


def test_light_changes_shading_not_geometry(small):
    imgs = small["imgs"].reshape(4, 11, 3, 3, 3, 64, 64)
    covered = imgs < 255
    assert (covered == covered[:, :, :, :1]).all()


def test_light_makes_chairs_darker_from_the_front_to_the_side(small):
    """v3's light sweep (0..90 degrees off the camera) is not symmetric in brightness, unlike v2's -90..90: the mean
    grey of a chair's pixels, averaged over the other factors, falls at every light step, so one code can read it."""
    imgs = small["imgs"].reshape(4, 11, 3, 3, 3, 64, 64).astype(float)
    chair = np.where(imgs < 255, imgs, np.nan)
    per_light = np.nanmean(chair, axis=(-1, -2)).mean(axis=(0, 1, 2, 4))
    assert ch.factor_values()[3].tolist() == [0.0, 22.5, 45.0, 67.5, 90.0]
    assert (np.diff(per_light) < -5).all(), per_light


def test_every_chair_is_inside_the_frame(small):
    imgs = small["imgs"]
    assert (imgs < 255).any(axis=(1, 2)).all()  # every image shows a chair
    # white background; a pixel the chair covers by 1/16 is at most 255 (15 + 0.85) / 16 = 252.6 -> 253
    assert imgs.max() == 255 and imgs[imgs < 255].max() <= 253
    border = np.concatenate([imgs[:, 0], imgs[:, -1], imgs[:, :, 0], imgs[:, :, -1]], axis=1)
    assert (border == 255).all()  # no chair pixel on the border
    # the geometric guarantee over the whole grid: every part's bounding box at least 2 px inside, and the frame
    # not much larger than needed (the widest view reaches within 4 px of an edge)
    vals, reach = ch.factor_values(), 0.0
    for style in range(4):
        for az in vals[1]:
            for el in vals[2]:
                _, r, u = ch.camera(az, el)
                for w in vals[4]:
                    rel = np.concatenate([ch.part_corners(p) for p in ch.parts(style, w)]) - ch.CENTRE
                    reach = max(reach, np.abs(rel @ r).max(), np.abs(rel @ u).max())
    px = reach / ch.HALF_SIZE * 32
    assert 28 <= px <= 30, px


def test_same_bytes_twice():
    a, b = ch.render((2, 8, 4, 4, 4)), ch.render((2, 8, 4, 4, 4))
    assert ch.factor_sets.npz_bytes(a) == ch.factor_sets.npz_bytes(b)


def test_loader_subsets_files_and_errors(tmp_path, small):
    s = load_dataset("chairs3d", tmp_path, subset=list(SUBSET))
    assert list(tmp_path.iterdir()) == []  # a subset is never written
    assert tuple(s.images.shape) == (1188, 1, 64, 64) and s.name == "chairs3d" and s.classes == list(ch.STYLES)
    assert np.array_equal(s.images.numpy()[:, 0], small["imgs"])
    assert np.array_equal(s.factors.numpy(), small["latents_classes"]) and s.factor_names == ch.FACTOR_NAMES
    assert np.array_equal(s.labels.numpy(), small["latents_classes"][:, 0])  # labels = style
    # a file in --data-dir: the subset's rows are taken from it
    ch.factor_sets.write_npz(tmp_path / ch.RENDERED_FILE, ch.render((1, 3, 1, 2, 2)))
    s2 = load_dataset("chairs3d", tmp_path, subset=list(SUBSET))
    assert np.array_equal(s2.images.numpy()[:, 0], small["imgs"])
    with pytest.raises(DataError, match="rendering is off"):
        load_dataset("chairs3d", tmp_path / "empty", allow_download=False)
    with pytest.raises(DataError, match="no 'test' split"):
        load_dataset("chairs3d", tmp_path, split="test")
    with pytest.raises(ValueError, match="five strides"):
        ch.render((1, 2))
    (tmp_path / "bad").mkdir()
    np.savez(tmp_path / "bad" / ch.RENDERED_FILE, imgs=np.zeros((2, 64, 64), np.uint8))
    with pytest.raises(DataError, match="not a chairs3d file"):
        load_dataset("chairs3d", tmp_path / "bad")
    # a file of another definition (v1's full-turn azimuth) is refused, never read as this set
    old = ch.render((1, 3, 1, 2, 2))
    old["latents_values"][:, 1] = 360.0 * old["latents_classes"][:, 1] / 32
    (tmp_path / "v1").mkdir()
    ch.factor_sets.write_npz(tmp_path / "v1" / ch.RENDERED_FILE, old)
    with pytest.raises(DataError, match="azimuth values are not this renderer's"):
        load_dataset("chairs3d", tmp_path / "v1", subset=list(SUBSET))


def test_cli_writes_the_layout(tmp_path, capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as e:
        main(["data", "chairs3d", "--out", str(tmp_path), "--subset", "2,8,4,4,4"])
    assert e.value.code == 0
    with np.load(tmp_path / ch.RENDERED_FILE) as z:
        assert set(z.files) == {"imgs", "latents_classes", "latents_values", "factor_names", "factor_sizes"}
        assert z["imgs"].shape == (2 * 4 * 2 * 2 * 2, 64, 64)
    assert '"rows": 64' in capsys.readouterr().out


@pytest.mark.parametrize("out", ["data/", "data", "data/chairs.npz"])
def test_cli_out_is_a_folder_unless_it_names_an_npz(tmp_path, capsys, monkeypatch, out):
    """`--out data/` (or `data`) once wrote a file named "data", where `--data-dir data` never looked."""
    from training.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["data", "chairs3d", "--out", out, "--subset", "4,32,5,5,5"])
    assert e.value.code == 0
    written = tmp_path / out if out.endswith(".npz") else tmp_path / "data" / ch.RENDERED_FILE
    assert written.is_file() and "rendering chairs3d (subset 4,32,5,5,5) into" in capsys.readouterr().err
    if not out.endswith(".npz"):
        assert len(load_dataset("chairs3d", tmp_path / "data").images) == 1


def test_a_subset_file_is_served_with_a_note_and_a_full_one_without(tmp_path, capsys):
    from training import factor_sets

    arrays = factor_sets.factor_arrays(
        np.zeros((4, 2, 2), np.uint8), [np.arange(2), np.arange(2)], [np.arange(2.0)] * 2, ["a", "b"], [2, 2]
    )
    path = tmp_path / "set.npz"
    factor_sets.write_npz(path, arrays)

    def serve(full_rows):
        got = factor_sets.cached_arrays(
            "toy", path, path, (1, 1), False, None, False, lambda p: dict(np.load(p)), "toy", full_rows=full_rows
        )
        return len(got["imgs"]), capsys.readouterr().err

    assert serve(4) == (4, "")
    rows, err = serve(16)
    assert rows == 4 and "holds 4 of the full set's 16 images (a --subset render)" in err
