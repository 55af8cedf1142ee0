"""What the rendered ground-truth data sets (dSprites, 3D chairs) share: the file layout, deterministic writing, the
factor grid with its ``subset`` strides, and the cached file behind a loader.

The layout is DeepMind's dSprites npz: ``imgs`` uint8 (N, H, W), ``latents_classes`` int64 (N, F) and
``latents_values`` float64 (N, F), image ``n`` holding the classes whose row-major index over ``factor_sizes`` (last
factor fastest) is ``n``; our files add ``factor_names`` (str (F,)) and ``factor_sizes`` (int64 (F,)). A ``subset``
keeps every ``subset[f]``-th class of factor f (from class 0), rows still in row-major order of the kept classes and
``latents_classes`` still the canonical class indices.
"""

from __future__ import annotations

import io
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from spec.manifest import sha256_of as sha256_file  # one hashing routine for every file the project writes

KEYS = ("imgs", "latents_classes", "latents_values")
_WORDS = {4: "four", 5: "five", 6: "six", 7: "seven"}


def check_strides(
    subset: Sequence[int] | None, factor_names: Sequence[str], set_name: str, factor_sizes: Sequence[int]
) -> tuple[int, ...]:
    """One stride per factor, 1..the factor's class count (all 1 when ``subset`` is None): a larger one keeps only
    class 0 as its count does, and one past 64 bits failed inside numpy."""
    n = len(factor_names)
    strides = tuple(int(s) for s in (subset if subset is not None else (1,) * n))
    if len(strides) != n or min(strides) < 1:
        count = _WORDS.get(n, str(n))
        raise ValueError(
            f"{set_name} subset: {count} strides >= 1 (one per factor {', '.join(factor_names)}), got {subset}"
        )
    for name, stride, size in zip(factor_names, strides, factor_sizes, strict=True):
        if stride > size:
            raise ValueError(f"{set_name} subset: stride {stride} for {name}, which has only {size} classes")
    return strides


def kept_classes(factor_sizes: Sequence[int], strides: Sequence[int]) -> list[np.ndarray]:
    """The class indices each factor keeps under ``strides``."""
    return [np.arange(0, size, s) for size, s in zip(factor_sizes, strides, strict=True)]


def class_grid(kept: Sequence[np.ndarray]) -> np.ndarray:
    """int64 (prod(len(k)), F): every combination of the kept classes, row-major (the last factor fastest)."""
    grids = np.meshgrid(*kept, indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1).astype(np.int64)


def factor_arrays(
    imgs: np.ndarray,
    kept: Sequence[np.ndarray],
    values: Sequence[np.ndarray],
    names: Sequence[str],
    sizes: Sequence[int],
) -> dict[str, np.ndarray]:
    """The set's arrays in DeepMind's npz layout plus our names and sizes: ``imgs`` (N, H, W) row-major over the kept
    classes (the last factor fastest), ``latents_classes`` int64 (N, F) and ``latents_values`` float64 (N, F) read
    from each factor's ``values``."""
    classes = class_grid(kept)
    return {
        "imgs": imgs,
        "latents_classes": classes,
        "latents_values": np.stack([values[f][classes[:, f]] for f in range(len(names))], axis=1),
        "factor_names": np.array(names),
        "factor_sizes": np.array(sizes, np.int64),
    }


def keep_subset(arrays: dict[str, np.ndarray], strides: Sequence[int]) -> dict[str, np.ndarray]:
    """The rows of a full set's arrays that a ``subset`` keeps (row order preserved)."""
    keep = np.all(arrays["latents_classes"] % np.array(strides) == 0, axis=1)
    return {k: arrays[k][keep] for k in KEYS}


def write_npz(path: str | Path, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """np.savez_compressed's format with fixed member timestamps (1980-01-01), so the same arrays give the same bytes;
    written to a temporary name and renamed, so an interrupted write leaves nothing under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            _write_zip(f, arrays, compress)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_zip(fileobj, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fileobj, "w", compression=method, allowZip64=True) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(arr), allow_pickle=False)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes ``write_npz`` would write (for tests: determinism without touching the disk)."""
    buf = io.BytesIO()
    _write_zip(buf, arrays)
    return buf.getvalue()


def write_dataset(path: str | Path, render: Callable[[], dict[str, np.ndarray]]) -> dict:
    """Render and write; returns a summary (rows, seconds to render and to write, bytes, sha256 of the file)."""
    t0 = time.perf_counter()
    arrays = render()
    t1 = time.perf_counter()
    write_npz(path, arrays)
    t2 = time.perf_counter()
    return {
        "path": str(path),
        "rows": len(arrays["imgs"]),
        "render_s": round(t1 - t0, 2),
        "write_s": round(t2 - t1, 2),
        "bytes": Path(path).stat().st_size,
        "sha256": sha256_file(path),
    }


def read_npz(path: str | Path, set_name: str, factor_sizes: Sequence[int], size: int) -> dict[str, np.ndarray]:
    """``KEYS`` of a file in the layout above, dtypes, shapes and class ranges checked (a file that passes is
    served as it is: a class out of ``factor_sizes`` would be a wrong factor label, not an error, further on);
    ``source`` is "rendered" for our files (they hold ``factor_names``), else "deepmind" (DeepMind's dSprites holds
    a pickled ``metadata`` instead, not read here)."""
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy saved under the .npz name
        raise ValueError(f"{path}: not a {set_name} file (one array, not an .npz archive)")
    with loaded as z:
        missing = [k for k in KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: not a {set_name} file (no {', '.join(missing)}; keys: {', '.join(z.files)})")
        out = {k: z[k] for k in KEYS}
        out["source"] = np.array("rendered" if "factor_names" in z.files else "deepmind")
    imgs, classes, values = out["imgs"], out["latents_classes"], out["latents_values"]
    n_factors = len(factor_sizes)
    if imgs.ndim != 3 or imgs.shape[1:] != (size, size) or classes.shape != (len(imgs), n_factors):
        raise ValueError(f"{path}: imgs {imgs.shape} / latents_classes {classes.shape} are not {set_name}'s shapes")
    if values.shape != classes.shape:
        raise ValueError(f"{path}: latents_values {values.shape} is not latents_classes' shape {classes.shape}")
    if imgs.dtype != np.uint8 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(f"{path}: imgs {imgs.dtype} / latents_classes {classes.dtype} are not uint8 / integers")
    if len(classes):
        low, high = classes.min(axis=0), classes.max(axis=0)
        for f, k in enumerate(factor_sizes):
            if low[f] < 0 or high[f] >= k:
                raise ValueError(
                    f"{path}: latents_classes[:, {f}] spans {low[f]}..{high[f]}, not {set_name}'s 0..{k - 1}"
                )
    return out


def cached_arrays(
    set_name: str,
    path: Path | None,
    target: Path,
    strides: Sequence[int],
    subset_given: bool,
    render: Callable[[Sequence[int] | None], dict[str, np.ndarray]],
    allow_render: bool,
    read: Callable[[Path], dict[str, np.ndarray]],
    what: str,
    full_rows: int,
    factor_names: Sequence[str] | None = None,
    factor_sizes: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays a loader serves. ``path``: the file found in the data folder (None: none there). With no file, a
    subset is rendered in memory and not written (what tests use), the full set is rendered and written to
    ``target`` (the cache) unless ``allow_render`` is False; a file's rows are filtered by ``strides``. ``what``
    names the full render in the message printed before it. A file of fewer than ``full_rows`` images (written by
    `infogan data --subset`, as test fixtures are) is served as it is, with a note on stderr: a run on it would
    otherwise look like a run on the whole set. A ``subset`` asked of such a file must find every class it keeps
    there (``factor_sizes``: the full set's): a stride the file's own strides do not divide would keep only the classes
    both have, a smaller grid than the same subset rendered (posY stride 6 of a stride-4 file: 3 classes, not 6)."""
    from .data import DataError

    if path is None and subset_given:
        return render(strides)
    if path is None:
        if not allow_render:
            raise DataError(
                f"{set_name}: no data file in {target.parent} and rendering is off; "
                f"run `infogan data {set_name} --out {target}`"
            )
        print(f"rendering {what} -> {target}", flush=True)
        write_dataset(target, lambda: render(None))
        path = target
    try:
        arrays = read(path)
    except (OSError, ValueError, zipfile.BadZipFile, zlib.error) as e:  # zlib: a corrupt member's stream
        raise DataError(f"{set_name}: cannot read {path} ({e}); delete it to render it again") from e
    rows = len(arrays["imgs"])
    if rows < full_rows:
        from .config import note

        note(
            f"{set_name}: {path} holds {rows:,} of the full set's {full_rows:,} images (a --subset render); "
            f"`infogan data {set_name} --out {path}` writes the whole set"
        )
    if subset_given and rows < full_rows and factor_sizes is not None:
        names = factor_names or [str(f) for f in range(len(factor_sizes))]
        classes = arrays["latents_classes"]
        for f, wanted in enumerate(kept_classes(factor_sizes, strides)):
            missing = np.setdiff1d(wanted, classes[:, f])
            if len(missing):
                raise DataError(
                    f"{set_name}: {path} (a --subset render) lacks {names[f]} classes {missing.tolist()[:8]} that "
                    f"subset stride {strides[f]} keeps; give a subset whose strides are multiples of the file's, or "
                    f"`infogan data {set_name} --out {path}` for the whole set"
                )
    return keep_subset(arrays, strides) if subset_given else arrays
