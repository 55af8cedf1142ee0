"""Self-describing checkpoints, written atomically.

A checkpoint holds weights (unwrapped ``state_dict``s, never pickled modules), the latent spec, the networks'
constructor arguments, optimizer states, the step, RNG states and the resolved config, so ``load_networks``
rebuilds G and D from the file alone and ``--resume`` continues exactly.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .latent import LatentSpec
from .networks import Discriminator, Generator, bake_spectral_norm, build_networks

FORMAT = "infogan-checkpoint/1"


def _current_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it; put back at once
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(f)`` to a temp file in the same folder, fsync, then rename: a kill -9 at any point leaves either the
    old complete file or the new complete file, never a torn one (and at most a temp file, which
    ``remove_stale_temps`` deletes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would make it (mkstemp's 0600 hid evaluation.json from the group)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path) -> None:
    write_atomic(path, lambda f: torch.save(obj, f))


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files a killed ``save_atomic`` left beside ``path`` (kill -9 mid-write skips its cleanup).

    Call only when no process is writing that checkpoint, i.e. when a run resumes."""
    path = Path(path)
    stale = list(path.parent.glob(path.name + ".*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


# a run folder's checkpoint (training/run_dir.py names the rest of the folder)
CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_path(path: str | Path) -> Path:
    """The checkpoint file of a run folder, or ``path`` itself when it names a file (every command that reads a
    checkpoint takes either: train --resume and --init-from, evaluate, export)."""
    path = Path(path)
    return path / CHECKPOINT_FILE if path.is_dir() else path


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint file, or a run folder's checkpoint.pt, as saved."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for torn or foreign files
        # torch's own words, first line, for a torn file ("failed finding central directory"); not for a file that
        # is no torch archive at all, where torch talks for a page about the weights-only unpickler
        first = "" if isinstance(e, pickle.UnpicklingError) else (str(e).strip().splitlines() or [""])[0]
        raise ValueError(
            f"{path}: not a readable checkpoint" + (f" ({type(e).__name__}: {first})" if first else "")
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} file")
    missing = [key for key in REQUIRED if key not in ckpt]
    if missing or not isinstance(ckpt["config"], dict):
        what = f"no entry {missing[0]!r}" if missing else "its config is not a table"
        raise ValueError(f"{path} does not fit this version's networks ({what})")
    return ckpt


# what every reader of a checkpoint takes from it (export, evaluate, resume); every version has written them
REQUIRED = ("step", "spec", "model_args", "config", "G", "D")


@contextlib.contextmanager
def fits_networks(where: str):
    """A checkpoint whose entries or tensors do not fit this version's networks (written by another version: a
    missing entry, a renamed or reshaped layer) as one line naming it, not torch's page of missing keys."""
    try:
        yield
    except (KeyError, RuntimeError, TypeError) as e:
        first = (str(e).strip().splitlines() or [""])[0]
        detail = f"no entry {first}" if isinstance(e, KeyError) else f"{type(e).__name__}: {first[:200]}"
        raise ValueError(f"{where} does not fit this version's networks ({detail})") from None


def generator_weights(ckpt: dict[str, Any], *, ema: bool = True) -> str:
    """Which of a checkpoint's G weights draw its images: "ema", the moving average the run kept
    (train.ema_half_life), unless ``ema`` is False or there is none; else "trained"."""
    return "ema" if ema and ckpt.get("G_ema") else "trained"


def load_networks(
    path_or_ckpt: str | Path | dict[str, Any], *, ema: bool = True
) -> tuple[Generator, Discriminator, dict[str, Any]]:
    """Rebuild (G, D) in eval mode from a checkpoint path or a loaded checkpoint dict. G is the moving average of
    G's weights where the run kept one (train.ema_half_life) unless ``ema`` is False, else the trained G."""
    ckpt = path_or_ckpt if isinstance(path_or_ckpt, dict) else load(path_or_ckpt)
    where = "the checkpoint" if isinstance(path_or_ckpt, dict) else str(path_or_ckpt)
    with fits_networks(where):
        spec = LatentSpec.from_dict(ckpt["spec"])
        G, D = build_networks(spec, **ckpt["model_args"])
        G.load_state_dict(ckpt["G_ema" if generator_weights(ckpt, ema=ema) == "ema" else "G"])
        D.load_state_dict(ckpt["D"])
    bake_spectral_norm(D)  # for inference: plain weights, the same function (ONNX export, weight rounding)
    return G.eval(), D.eval(), ckpt
