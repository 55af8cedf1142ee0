"""A run's folder: its number, the command that made it, and its metrics file.

Runs live in numbered folders (``runs/00003-mnist-s0/``, stylegan3's layout) holding ``training_options.json``,
``metrics.jsonl`` (one JSON object per line), ``samples/epoch-NNN.png`` and ``checkpoint.pt`` (training/checkpoint.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt_io

# metrics.jsonl and RESTART_ROW_KEY, its field naming the label-free restart a row belongs to (absent: the main run):
# defined beside the file's reader. The key is the one the format has had since before the concept was called
# "restarts": report.py, scripts/seed_study.py and the committed docs/training/*.jsonl read it.
from .metrics_file import METRICS_FILE, RESTART_ROW_KEY

OPTIONS_FILE = "training_options.json"
CHECKPOINT_FILE = ckpt_io.CHECKPOINT_FILE


def new_run_dir(root: str | Path, name: str) -> Path:
    """runs/00000-<name>, numbered after the highest existing run (stylegan3's layout)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    path = root / f"{max(ids, default=-1) + 1:05d}-{name}"
    path.mkdir()
    return path


def writable_folder(path: str | Path, option: str, holds: str) -> Path:
    """``path``, or one line naming ``option`` (as the user gave it: --runs-dir) when it cannot hold what the
    command writes (a file, a read-only folder, a path below a file). Asked before minutes of work, by writing a
    hidden probe folder in it, or in its nearest existing parent when it is still to be made (the command makes it
    when it writes: a command that fails first leaves no empty folder behind), rather than asking os.access, which
    says yes to root on a read-only mount."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file, not a folder of {holds}")
    probe_in = path
    while not probe_in.exists() and probe_in != probe_in.parent:
        probe_in = probe_in.parent
    try:
        if not probe_in.is_dir():  # a path below a file
            raise NotADirectoryError(20, "Not a directory")
        tempfile.TemporaryDirectory(dir=probe_in, prefix=".probe.").cleanup()
    except OSError as e:
        raise PermissionError(f"{option} {path} is not writable ({e.strerror or e})") from None
    return path


def check_runs_root(root: str | Path) -> None:
    """Fail in one line, before the data loads, when runs cannot be written under ``root``."""
    writable_folder(root, "--runs-dir", "runs")


LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(folder: str | Path):
    """Hold ``folder``'s run lock while the block runs, or TrainingError when another process holds it: two
    processes training one run write one checkpoint.pt, log rows twice, and a resume's clean-up of stale temporary
    files can delete the live run's checkpoint mid-write. An advisory flock: the kernel releases it when the process
    ends, however it ends, so a killed run leaves nothing to clear."""
    import fcntl

    from .runtime import TrainingError

    with open(Path(folder) / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise TrainingError(
                f"{folder} is being trained by {holder}; wait for it to stop, or stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def discard_if_untrained(path: Path, untrained_checkpoint: bool = False) -> bool:
    """Remove a new run's folder that a failed start left with nothing trained in it (its options file and an empty
    metrics.jsonl at most; no restart, metrics row or sample, and no checkpoint unless ``untrained_checkpoint`` says
    it is the one a new run writes before its first step). Returns whether it was removed."""
    if not path.is_dir():
        return False
    for p in path.iterdir():
        if p.name in (OPTIONS_FILE, LOCK_FILE) or (p.name == METRICS_FILE and p.is_file() and p.stat().st_size == 0):
            continue
        if untrained_checkpoint and (p.name == CHECKPOINT_FILE or p.name.startswith(CHECKPOINT_FILE + ".")):
            continue  # the step-0 checkpoint, or the temp file of its write
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def command_line() -> str:
    """This process's command line as a user would type it (``python -m training ...`` or ``infogan ...``)."""
    prog = ["python", "-m", "training"] if Path(sys.argv[0]).name == "__main__.py" else [Path(sys.argv[0]).name]
    return shlex.join([*prog, *sys.argv[1:]])


def trim_metrics(path: Path, step: int, restart: int | None = None) -> int:
    """Drop the rows a killed run logged after its checkpoint's step, and a line the kill tore: the resumed run logs
    those steps again (identically, as resume is exact), so the file keeps one row per step. Rewritten atomically;
    returns the number of lines dropped. ``restart``: the checkpoint is inside the label-free restarts, at that
    restart's ``step``; rows are ordered by (restart, step), the main run's after every restart's."""
    after_all = float("inf")
    here = (after_all if restart is None else restart, step)
    ckpt_io.remove_stale_temps(path)  # from a trim a kill interrupted
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if (
            isinstance(row, dict)
            and isinstance(row.get("step"), int)
            and (row.get(RESTART_ROW_KEY, after_all), row["step"]) > here
        ):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        text = "".join(line + "\n" for line in kept).encode()
        ckpt_io.write_atomic(path, lambda f: f.write(text))
    return dropped


class MetricsLog:
    """metrics.jsonl, appended to one flushed row at a time (a kill loses no logged row); a no-op off rank 0."""

    def __init__(self, path: Path | None):
        self.f = open(path, "a") if path is not None else None

    def write(self, row: dict[str, Any]) -> None:
        if self.f:
            self.f.write(json.dumps(row) + "\n")
            self.f.flush()

    def close(self) -> None:
        if self.f:
            self.f.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
