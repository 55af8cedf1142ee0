import re
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.data import DataError, load_dataset, load_idx_set, parse_idx

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def test_parse_idx_rejects_bad_files():
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x08\x01")
    with pytest.raises(DataError, match="bytes"):
        parse_idx(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")


def test_fixture_idx_files_load_as_uint8_tensors(fake_mnist_dir):
    s = load_idx_set("mnist", fake_mnist_dir, "train", allow_download=False, verify=False)
    assert s.images.shape == (512, 1, 28, 28) and s.images.dtype.is_floating_point is False
    assert s.labels.shape == (512,) and int(s.labels.max()) <= 9
    assert s.as_float().min() >= -1 and s.as_float().max() <= 1


def test_checksum_mismatch_names_the_file(fake_mnist_dir):
    with pytest.raises(DataError, match="checksum mismatch"):
        load_idx_set("mnist", fake_mnist_dir, "train", allow_download=False)


def test_offline_download_gives_a_clear_error(tmp_path, monkeypatch):
    def refuse(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)
    with pytest.raises(DataError, match="offline"):
        load_idx_set("fashion-mnist", tmp_path / "fm", "test")
    assert not any((tmp_path / "fm").glob("*.part"))  # nothing half-written left behind


def test_downloads_verify_checksums(tmp_path, monkeypatch):
    """Serve the canonical files from a local 'mirror' (file:// URL) and download them through the real path."""
    if not SHARED_MNIST.is_dir():
        pytest.skip("shared MNIST copy not present")
    monkeypatch.setitem(data.IDX_SETS["mnist"], "mirrors", [SHARED_MNIST.as_uri() + "/"])
    s = load_idx_set("mnist", tmp_path / "mnist", "test")
    assert len(s) == 10000 and (tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_real_mnist_checksums():
    if not SHARED_MNIST.is_dir():
        pytest.skip("shared MNIST copy not present")
    s = load_dataset("mnist", SHARED_MNIST, "test", allow_download=False)
    assert s.images.shape == (10000, 1, 28, 28)
    assert np.bincount(s.labels.numpy()).tolist()[0] == 980


def test_folder_loader_centre_crops_and_resizes(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (40 + 10 * i, 30), (i * 80, 0, 0)).save(tmp_path / f"{i}.png")
    s = load_dataset("folder", tmp_path, resolution=16, channels=3)
    assert s.images.shape == (3, 3, 16, 16) and s.labels is None
    with pytest.raises(DataError, match="not a folder"):
        load_dataset("folder", tmp_path / "missing-is-not-a-dir")
    with pytest.raises(DataError, match="has no 'test' split"):  # never the same images under another name
        load_dataset("folder", tmp_path, "test", resolution=16, channels=3)


def test_every_data_set_says_how_a_drawing_of_it_looks():
    """The manifest's drawing comes from the data set's definition: MNIST-like sets are light on dark, and every
    value is one the manifest accepts."""
    from typing import get_args

    from spec.manifest import Polarity

    assert set(data.DATASETS) == {*data.IDX_SETS, "svhn", "celeba", "folder", "dsprites", "chairs3d"}
    assert {n: data.dataset_info(n).drawing for n in ("mnist", "fashion-mnist", "svhn")} == {
        "mnist": "light-on-dark",
        "fashion-mnist": "light-on-dark",
        "svhn": "dark-on-light",
    }
    assert all(info.drawing in get_args(Polarity) and "train" in info.splits for info in data.DATASETS.values())
    with pytest.raises(DataError, match="unknown data set"):
        data.dataset_info("no-such-set")


def test_as_float_takes_the_first_n_images(fake_mnist_dir):
    s = load_idx_set("mnist", fake_mnist_dir, "test", allow_download=False, verify=False)
    assert s.as_float(10).shape == (10, 1, 28, 28) and s.as_float().shape == (256, 1, 28, 28)
    before = s.images.clone()
    assert s.as_float(10).equal(s.as_float()[:10]) and s.images.equal(before)  # the uint8 images stay as they were


def test_a_gz_with_a_damaged_deflate_stream_is_one_data_error(fake_mnist_dir, tmp_path):
    # zlib.error (neither OSError nor EOFError) once escaped as a traceback; a truncated .gz already said this
    import shutil

    folder = shutil.copytree(fake_mnist_dir, tmp_path / "mnist")
    path = folder / "train-images-idx3-ubyte.gz"
    raw = bytearray(path.read_bytes())
    raw[20:36] = bytes(b ^ 0xFF for b in raw[20:36])  # past the 10-byte gzip header and the file name
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: cannot read .*delete it and download again"):
        load_dataset("mnist", folder, verify=False, allow_download=False)


@pytest.mark.parametrize(
    "kind, array, says",
    [
        ("labels", lambda lab, img: np.full_like(lab, 200), "a label of 200, expected 0..9"),
        ("labels", lambda lab, img: img, "labels of shape (512, 28, 28)"),
        ("labels", lambda lab, img: lab[:, None], "labels of shape (512, 1)"),
        ("images", lambda lab, img: img.reshape(512, 784), "images of shape (512, 784), expected (N, 28, 28)"),
        ("images", lambda lab, img: np.zeros((), np.uint8), "images of shape ()"),
    ],
)
def test_idx_contents_are_checked_without_the_checksums(fake_mnist_dir, tmp_path, kind, array, says, write_idx):
    # data.verify = false (fixtures, other copies) once loaded labels of 200 or of an image's shape
    import shutil

    folder = shutil.copytree(fake_mnist_dir, tmp_path / "mnist")
    images = parse_idx(data._read_maybe_gz(folder / "train-images-idx3-ubyte.gz"))
    labels = parse_idx(data._read_maybe_gz(folder / "train-labels-idx1-ubyte.gz"))
    write_idx(folder / f"train-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz", array(labels, images))
    with pytest.raises(DataError, match=re.escape(says)):
        load_dataset("mnist", folder, verify=False, allow_download=False)


def test_a_checksum_mismatch_names_the_known_file_it_is(fake_mnist_dir, tmp_path, monkeypatch):
    import shutil

    folder = shutil.copytree(fake_mnist_dir, tmp_path / "mnist")
    # pretend the fixture's test images are MNIST's: then a copy of them under the train name is recognised
    md5 = dict(data.IDX_SETS["mnist"]["md5"])
    md5["t10k-images-idx3-ubyte"] = data.md5_of(data._read_maybe_gz(folder / "t10k-images-idx3-ubyte.gz"))
    monkeypatch.setitem(data.IDX_SETS["mnist"], "md5", md5)
    shutil.copy(folder / "t10k-images-idx3-ubyte.gz", folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="it is mnist's t10k-images-idx3-ubyte file under another name"):
        load_dataset("mnist", folder, allow_download=False)


def test_a_data_dir_under_home_is_expanded(fake_mnist_dir, tmp_path, monkeypatch):
    # data.dir = "~/mnist" in a config (no shell expands it there) read as a folder called "~"
    import shutil

    shutil.copytree(fake_mnist_dir, tmp_path / "home" / "mnist")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    s = load_dataset("mnist", "~/mnist", verify=False, allow_download=False)
    assert len(s.images) == 512 and not (tmp_path / "~").exists()
