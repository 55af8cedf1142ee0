"""Data sets, held in memory as uint8 tensors (N, C, H, W) so a training step does no per-sample Python work.

MNIST and Fashion-MNIST come as IDX files; SVHN as ``.mat``; CelebA and any folder of images are decoded,
centre-cropped and resized once. Downloads use the canonical mirrors and verify MD5 checksums of the
*decompressed* content (so a re-wrapped ``.gz`` with the same bytes inside passes); with no network the error
says which file to put where.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# MD5 of each decompressed IDX file (the canonical content).
IDX_SETS = {
    "mnist": {
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "md5": {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        "classes": [str(i) for i in range(10)],
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
    },
}

SVHN = {
    "url": "http://ufldl.stanford.edu/housenumbers/{split}_32x32.mat",
    "md5": {"train": "e26dedcc434d2e4c54c9b2d4a06d8373", "test": "eb5a983be6a315427106f1b164d9cef3"},
}


@dataclass(frozen=True)
class DataSetInfo:
    """What the rest of the project needs to know about a data set besides its pixels.

    ``drawing``: how a person's drawing of this data looks, for the page's canvas and the service's upload
    inversion (the manifest's ``drawing``): MNIST and Fashion-MNIST are light strokes/objects on a black ground;
    SVHN and CelebA are photographs, for which a drawing is dark ink on a light page (what a person sketches), as
    for an arbitrary image folder. ``splits``: the splits the data set has; asking for another one is an error,
    never a quiet substitute. ``eval_split``: the split an evaluation uses unless told otherwise (dSprites' metrics
    are defined over its one, whole set; chairs3d has one split too). ``traversal_span``: how far the Fig. 2-style
    traversals sweep each continuous code, in half-ranges of its prior either side of the centre: the paper's MNIST
    figure (Fig. 2) sweeps -2..2, past the prior, to show the codes extrapolate; its 3D figures (Figs. 3-4: faces,
    chairs) sweep -1..1, the prior's range, as do the rendered sets with ground-truth factors here."""

    name: str
    drawing: str
    splits: tuple[str, ...]
    labelled: bool
    eval_split: str = "test"
    traversal_span: float = 2.0


DATASETS = {
    "mnist": DataSetInfo("mnist", "light-on-dark", ("train", "test"), labelled=True),
    "fashion-mnist": DataSetInfo("fashion-mnist", "light-on-dark", ("train", "test"), labelled=True),
    "svhn": DataSetInfo("svhn", "dark-on-light", ("train", "test"), labelled=True),
    "celeba": DataSetInfo("celeba", "dark-on-light", ("train",), labelled=False),
    "folder": DataSetInfo("folder", "dark-on-light", ("train",), labelled=False),
    # white sprites on black; no labels, but factor classes (ImageSet.factors) for the disentanglement metrics
    "dsprites": DataSetInfo(
        "dsprites", "light-on-dark", ("train",), labelled=False, eval_split="train", traversal_span=1.0
    ),
    # rendered dark chairs on white (training/chairs3d.py); labels = style, factor classes as for dsprites
    "chairs3d": DataSetInfo(
        "chairs3d", "dark-on-light", ("train",), labelled=True, eval_split="train", traversal_span=1.0
    ),
}


def dataset_info(name: str) -> DataSetInfo:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[name]


# Where the data lives when --data-dir is not given: $INFOGAN_DATA, else ~/.cache/infogan/<name>.
DEFAULT_ROOT = Path(os.environ.get("INFOGAN_DATA", Path.home() / ".cache" / "infogan"))


class DataError(RuntimeError):
    """A data set is missing, corrupt or cannot be downloaded; the message says what to do."""


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor | None  # (N,) int64, or None when the set has no labels
    classes: list[str] | None
    name: str
    factors: torch.Tensor | None = None  # (N, F) int64 ground-truth factor classes (dSprites), or None
    factor_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DataError(f"{self.name}: {len(self.labels)} labels for {len(self.images)} images")
        if self.factors is not None and (
            self.factors.shape[0] != len(self.images)
            or self.factor_names is None
            or self.factors.shape[1] != len(self.factor_names)
        ):
            raise DataError(
                f"{self.name}: factors {tuple(self.factors.shape)} do not match {len(self.images)} "
                f"images and the factor names {self.factor_names}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def as_float(self, n: int | None = None) -> torch.Tensor:
        """The first ``n`` images (all if None) as float32 in [-1, 1], the networks' image space (N, C, H, W)."""
        return as_floats(self.images[:n])

    def spread_float(self, k: int) -> torch.Tensor:
        """``k`` images spread over the whole set (``spread_rows``) as float32 in [-1, 1] (N, C, H, W)."""
        return as_floats(self.images[spread_rows(len(self.images), k)])


def as_floats(x: torch.Tensor) -> torch.Tensor:
    """Images as the networks read them: uint8 (a set kept as bytes, training/loop.FLOAT_DATA_LIMIT) to float32 in
    [-1, 1], which callers do a batch at a time so a large set never exists as floats whole; floats as they are."""
    return x.float().div_(127.5).sub_(1.0) if x.dtype == torch.uint8 else x


def spread_rows(n: int, k: int) -> torch.Tensor:
    """``k`` of ``n`` row indices, a fixed-seed sample without replacement in stored order (all rows if k >= n): the
    real images BatchNorm is recalibrated on and the label-free score reads. Not the first k rows: a set stored in
    factor order has no more than a corner of its factors there (3D chairs, style slowest: no bench among its first
    10,000 of 16,000, so the restarts' score could rank a start that merged styles above one that read all four;
    dSprites: only squares). Its own generator, so no run's random stream is drawn from."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))[:k].sort().values


# ---- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------------------


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _read_maybe_gz(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: a corrupt deflate stream, neither of the others
        raise DataError(f"{path}: cannot read ({e}); delete it and download again") from e


def parse_idx(data: bytes, path: str = "<bytes>") -> np.ndarray:
    """Parse an IDX file (LeCun et al.): magic 0x0000 + dtype code 0x08 (uint8) + ndim, then big-endian sizes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic)")
    if data[2] != 0x08:
        raise DataError(f"{path}: IDX element type 0x{data[2]:02x} unsupported (only uint8)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DataError(f"{path}: IDX says {dims} = {expected} bytes, file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).exists():
            return root / name
    return None


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Fetch url to dest atomically (temp file + rename) so an interrupted download leaves nothing behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_idx_set(
    name: str, root: str | Path | None = None, split: str = "train", allow_download: bool = True, verify: bool = True
) -> ImageSet:
    """Load MNIST or Fashion-MNIST (split 'train' 60k or 'test' 10k) from ``root``; download what is missing."""
    if name not in IDX_SETS:
        raise DataError(f"unknown IDX data set {name!r}; expected one of {sorted(IDX_SETS)}")
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
    meta = IDX_SETS[name]
    root = Path(root) if root else DEFAULT_ROOT / name
    prefix = "train" if split == "train" else "t10k"
    arrays = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        stem = f"{prefix}-{kind}"
        path = _find(root, stem)
        if path is None:
            if not allow_download:
                raise DataError(f"{name}: {root / (stem + '.gz')} is missing and downloads are off")
            path = _download_idx(meta["mirrors"], stem, root, name)
        data = _read_maybe_gz(path)
        digest = md5_of(data) if verify else None
        if verify and digest != meta["md5"][stem]:
            known = next((f for f, md5 in meta["md5"].items() if md5 == digest), None)
            what = f"it is {name}'s {known} file under another name" if known else f"the file is corrupt or not {name}"
            raise DataError(
                f"{path}: checksum mismatch (md5 of the content {digest}, expected "
                f"{meta['md5'][stem]}); {what}: delete it and retry"
            )
        arrays.append(parse_idx(data, str(path)))
    images, labels = arrays
    # the shapes and label range, checked also without the checksums (data.verify = false: fixtures, other copies);
    # labels of 200 or of shape (N, 28, 28) once loaded and failed in the evaluation, or trained on nonsense
    classes = len(meta["classes"])
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{name} {split}: images of shape {images.shape}, expected (N, 28, 28)")
    if labels.ndim != 1:
        raise DataError(f"{name} {split}: labels of shape {labels.shape}, expected one label per image (N,)")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{name} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    if len(labels) and labels.max() >= classes:
        raise DataError(f"{name} {split}: a label of {labels.max()}, expected 0..{classes - 1}")
    return ImageSet(
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        list(meta["classes"]),
        name,
    )


def _download_idx(mirrors: list[str], stem: str, root: Path, name: str) -> Path:
    dest = root / (stem + ".gz")
    errors = []
    for mirror in mirrors:
        try:
            print(f"downloading {mirror}{stem}.gz -> {dest}", flush=True)
            download(mirror + stem + ".gz", dest)
            return dest
        except OSError as e:  # URLError is an OSError
            errors.append(f"{mirror}: {e}")
    raise DataError(
        f"{name}: could not download {stem}.gz ({'; '.join(errors)}). If you are offline, copy the "
        f"four IDX .gz files into {root} or pass --data-dir"
    )


# ---- SVHN (.mat), CelebA and image folders --------------------------------------------------------------


def load_svhn(root: str | Path | None = None, split: str = "train", allow_download: bool = True) -> ImageSet:
    import scipy.io

    if split not in SVHN["md5"]:
        raise DataError(f"unknown SVHN split {split!r}; expected one of {sorted(SVHN['md5'])}")
    root = Path(root) if root else DEFAULT_ROOT / "svhn"
    path = root / f"{split}_32x32.mat"
    if not path.exists():
        if not allow_download:
            raise DataError(f"svhn: {path} is missing and downloads are off")
        url = SVHN["url"].format(split=split)
        try:
            print(f"downloading {url} -> {path}", flush=True)
            download(url, path, timeout=60)
        except OSError as e:
            raise DataError(f"svhn: could not download {url} ({e}); if offline, put {path.name} in {root}") from e
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if digest != SVHN["md5"][split]:
        raise DataError(f"{path}: checksum mismatch ({digest}); delete it and retry")
    mat = scipy.io.loadmat(path)
    x = torch.from_numpy(mat["X"]).permute(3, 2, 0, 1).contiguous()  # (32, 32, 3, N) -> (N, 3, 32, 32)
    y = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1)) % 10  # SVHN stores digit 0 as label 10
    return ImageSet(x, y, [str(i) for i in range(10)], "svhn")


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}


def load_folder(
    root: str | Path, resolution: int, channels: int = 3, name: str = "folder", limit: int | None = None
) -> ImageSet:
    """Every image under root (recursively), centre-cropped to a square and resized to resolution^2."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{name}: {root} is not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise DataError(f"{name}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    try:  # the whole set is held in memory, as uint8
        out = np.empty((len(files), resolution, resolution, channels), np.uint8)
    except MemoryError:
        gib = len(files) * resolution * resolution * channels / 2**30
        raise DataError(
            f"{name}: {len(files)} images of {resolution}x{resolution}x{channels} need {gib:.1f} GiB of memory; "
            f"lower data.resolution or use fewer images"
        ) from None
    mode = "L" if channels == 1 else "RGB"
    for i, p in enumerate(files):
        try:
            with Image.open(p) as im:
                im = im.convert(mode)
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                im = im.resize((resolution, resolution), Image.Resampling.LANCZOS)
                out[i] = np.asarray(im).reshape(resolution, resolution, channels)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            # PIL: OSError/UnidentifiedImageError for foreign or torn files, SyntaxError for some broken PNG chunks,
            # DecompressionBombError (not an OSError) past 2 x Image.MAX_IMAGE_PIXELS (~179 M pixels)
            raise DataError(f"{p}: cannot decode image ({e})") from e
    return ImageSet(torch.from_numpy(out).permute(0, 3, 1, 2).contiguous(), None, None, name)


def load_dataset(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    *,
    resolution: int = 28,
    channels: int = 1,
    allow_download: bool = True,
    verify: bool = True,
    subset: list[int] | None = None,
) -> ImageSet:
    """Dispatch on the data set name (the config's ``data.name``); a split the data set lacks is an error.
    ``subset``: rendered factor sets only (dsprites, chairs3d), every subset[f]-th class of each factor."""
    if split not in dataset_info(name).splits:
        raise DataError(f"{name} has no {split!r} split (it has: {', '.join(dataset_info(name).splits)})")
    if root is not None:  # data.dir = "~/mnist" in a config: the shell does not expand it there
        root = Path(root).expanduser()
    if root is not None and root.exists() and not root.is_dir():
        # every loader reads (and downloads or renders into) a folder; a file there failed as a download error
        raise DataError(f"{name}: --data-dir {root} is a file, not the folder that holds the data set's files")
    if name in IDX_SETS:
        return load_idx_set(name, root, split, allow_download, verify)
    if name == "svhn":
        return load_svhn(root, split, allow_download)
    if name in ("celeba", "folder"):
        if root is None:
            raise DataError(f"{name}: pass --data-dir (for CelebA, the img_align_celeba folder); it is not downloaded")
        return load_folder(root, resolution, channels, name)
    if subset is not None and name not in ("dsprites", "chairs3d"):
        raise DataError(f"{name}: subset is an option of the rendered sets (dsprites, chairs3d)")
    if name == "dsprites":
        from .dsprites import load_dsprites

        return load_dsprites(root, subset, allow_render=allow_download)
    if name == "chairs3d":
        from .chairs3d import load_chairs3d

        return load_chairs3d(root, subset, allow_render=allow_download)
    raise DataError(f"data set {name!r} is defined in DATASETS but has no loader here")
