"""Shared fixtures: generated IDX data (never the network) and tiny exported model folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Tests write only to temporary folders: the caches the CLI keeps under ~/.cache/infogan (the reference
    classifier of the generated-class check) go to a session folder, for this process and the CLIs it starts."""
    import os

    old = os.environ.get("INFOGAN_CACHE")
    os.environ["INFOGAN_CACHE"] = str(tmp_path_factory.mktemp("infogan-cache"))
    yield
    if old is None:
        os.environ.pop("INFOGAN_CACHE", None)
    else:
        os.environ["INFOGAN_CACHE"] = old


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip IDX file (magic 0x00000800 | ndim, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_digit_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images of 10 easily separable synthetic classes: class k is a bright bar at row 2k + 4."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 30).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4 : 2 * k + 7, 4:24] = 255
    return images, labels


@pytest.fixture(scope="session", name="make_digit_set")
def make_digit_set_fixture():
    """make_digit_set itself, for test modules below this folder (importing conftest by name is ambiguous there)."""
    return make_digit_set


@pytest.fixture(scope="session")
def chairs_dir(tmp_path_factory) -> Path:
    """A folder with a 16-image rendered 3D chairs set (training/chairs3d.py): every style, azimuths -45/-22/0/22
    deg, one elevation, light and width, for the chairs3d configs and the 'dsprites' architecture's style code."""
    from training import chairs3d

    root = tmp_path_factory.mktemp("chairs3d")
    chairs3d.write_dataset(root / chairs3d.RENDERED_FILE, subset=(1, 8, 5, 5, 5))
    return root


@pytest.fixture(scope="session")
def fake_mnist_dir(tmp_path_factory) -> Path:
    """A folder with the four MNIST IDX files of a small synthetic set (checksums will not match MNIST's)."""
    root = tmp_path_factory.mktemp("fake-mnist")
    for prefix, n, seed in (("train", 512, 0), ("t10k", 256, 1)):
        images, labels = make_digit_set(n, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def build_tiny_model(
    folder: Path, model_id: str, seed: int = 0, title: str | None = None, spec=None, compare_with: str | None = None
) -> Path:
    """An untrained, tiny (fc=32, ch=8) MNIST-shaped InfoGAN exported through the real export path (``spec``:
    another latent spec than MNIST's digit, c1 = slant, c2)."""
    import torch

    from training.export import write_model_folder
    from training.latent import mnist_spec
    from training.networks import build_networks

    torch.manual_seed(seed)
    if spec is None:
        spec = mnist_spec().with_text("digit", labels=[str(i) for i in range(10)]).with_text("c1", label="slant")
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=32, ch=8)
    return write_model_folder(
        G.eval(),
        D.eval(),
        spec,
        folder / model_id,
        model_id=model_id,
        title=title or model_id,
        dataset="mnist",
        drawing="light-on-dark",
        compare_with=compare_with,
        metrics={"digit": {"accuracy": 0.1}},
        provenance={"command": "tests/conftest.py build_tiny_model", "seed": seed},
    )


def save_mnist_checkpoint(path: Path, G, D, spec, data_dir: Path, *, fc: int, ch: int, step: int, seed: int) -> Path:
    """A training checkpoint of an MNIST-shaped G/D (``build_networks(arch="mnist", fc=fc, ch=ch)``) whose config
    points at ``data_dir`` (generated IDX files: no checksum, no download), as `infogan export` and `infogan
    evaluate` read it."""
    from training import checkpoint as ckpt_io

    data_cfg = {
        "name": "mnist",
        "dir": str(data_dir),
        "resolution": 28,
        "channels": 1,
        "verify": False,
        "download": False,
    }
    ckpt_io.save_atomic(
        {
            "format": ckpt_io.FORMAT,
            "spec": spec.to_dict(),
            "model_args": {"arch": "mnist", "channels": 1, "resolution": 28, "fc": fc, "ch": ch},
            "G": G.state_dict(),
            "D": D.state_dict(),
            "step": step,
            "config": {"data": data_cfg, "train": {"seed": seed}},
        },
        path,
    )
    return path


@pytest.fixture(scope="session", name="save_mnist_checkpoint")
def save_mnist_checkpoint_fixture():
    """save_mnist_checkpoint itself, for test modules (importing it by module name is ambiguous there)."""
    return save_mnist_checkpoint


@pytest.fixture(scope="session", name="write_idx")
def write_idx_fixture():
    """write_idx itself, for tests below this folder (importing it by module name is ambiguous there)."""
    return write_idx


@pytest.fixture(scope="session", name="build_tiny_model")
def build_tiny_model_fixture():
    """build_tiny_model itself, for conftests below this one (importing it by module name is ambiguous there)."""
    return build_tiny_model


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    """MODELS_DIR with two tiny models, 'tiny' and 'tiny-gan' (same spec, different weights)."""
    root = tmp_path_factory.mktemp("models")
    build_tiny_model(root, "tiny", seed=0, title="Tiny InfoGAN", compare_with="tiny-gan")
    build_tiny_model(root, "tiny-gan", seed=1, title="Tiny GAN baseline")
    return root
