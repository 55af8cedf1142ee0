"""Shared by the benchmark scripts' command lines: argparse types for counts and durations, checks of model folders,
URLs and output paths, and one way to report a failure. As the project's CLIs do (argparse's ``ap.error``, scripts/,
``infogan``): a bad value or a failed run is one line ``<script>: error: ...`` and a non-zero exit, never a
traceback, and a bad value is refused before any work (no server started, nothing measured or downloaded).

    ap.add_argument("--seconds", type=positive_float, default=6.0)
    ap.add_argument("--requests", type=count(1), default=300)
    args = ap.parse_args()
    folder = model_folder(ap, args.models_dir, args.model)  # ap.error naming --models-dir or --model
    with errors_in_one_line(RuntimeError):                   # a failure while it runs: one line, exit 1
        ...
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from spec.manifest import MANIFEST_FILE


def count(minimum: int = 1) -> Callable[[str], int]:
    """argparse type: a whole number >= ``minimum`` ("argument --requests: must be at least 1, got 0")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # nan passes no comparison, inf never ends a timed loop
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a duration to measure for, a pause between moves)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (a warm-up that may be skipped, a bound)."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def prog() -> str:
    """The script's name as argparse prints it in its own errors (``serve_latency.py``)."""
    return os.path.basename(sys.argv[0]) or "benchmark"


def fail(message: str) -> NoReturn:
    """Stop with one line ``<script>: error: message`` on stderr and exit status 1."""
    raise SystemExit(f"{prog()}: error: {message}")


@contextlib.contextmanager
def errors_in_one_line(*errors: type[BaseException]) -> Iterator[None]:
    """Any of ``errors`` raised inside (a server that did not start, a data set that cannot be read): ``fail`` with its
    message instead of a traceback."""
    try:
        yield
    except errors as exc:
        fail(str(exc) or type(exc).__name__)


def model_names(root: Path) -> list[str]:
    """The model folders (``<id>/manifest.json``) under ``root``, by name."""
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST_FILE}"))


def models_dir(ap: argparse.ArgumentParser, path: str | Path, option: str = "--models-dir") -> Path:
    """``path`` as a folder holding at least one model folder, else ``ap.error`` naming ``option``."""
    root = Path(path)
    if not root.exists():
        ap.error(f"{option} {path}: no such folder")
    if not root.is_dir():
        ap.error(f"{option} {path}: a file, not a folder of models")
    if not model_names(root):
        ap.error(f"{option} {path}: holds no model folders (<id>/{MANIFEST_FILE})")
    return root


def model_folder(
    ap: argparse.ArgumentParser, root: str | Path, model: str | None, option: str = "--model"
) -> Path | None:
    """``root``/``model`` once ``root`` is a folder of models (``models_dir``) and ``model`` one of them, else
    ``ap.error`` naming the option; None for ``model`` None (the caller's default model)."""
    root = models_dir(ap, root)
    if model is None:
        return None
    folder = root / model
    if not (folder / MANIFEST_FILE).is_file():
        ap.error(f"{option} {model}: no model folder {folder} (<id>/{MANIFEST_FILE}); there: {model_names(root)}")
    return folder


def http_url(ap: argparse.ArgumentParser, url: str, option: str = "--url", hosts: tuple[str, ...] = ()) -> str:
    """``url`` (http(s)://HOST[:PORT]; with ``hosts``, only those hosts) where a server answers GET /readyz at all,
    else ``ap.error`` naming ``option``. Its status is not judged: a server still loading answers 503."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        ap.error(f"{option} {url}: not a URL ({exc})")
    if parsed.scheme not in ("http", "https") or not parsed.host:
        ap.error(f"{option} {url}: expected http://HOST:PORT")
    if hosts and parsed.host not in hosts:
        ap.error(f"{option} {url}: {prog()} only targets {' or '.join(hosts)}")
    try:
        httpx.get(f"{str(parsed).rstrip('/')}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        ap.error(f"{option} {url}: no server answers there ({exc or type(exc).__name__})")
    return str(parsed).rstrip("/")


def output_file(ap: argparse.ArgumentParser, path: str | Path, option: str) -> Path:
    """``path`` as a file this run can write at its end (its folder exists; it is not a folder), else ``ap.error``:
    found out before the run, not after it."""
    out = Path(path)
    if out.is_dir():
        ap.error(f"{option} {path}: a folder, not a file")
    if not out.parent.is_dir():
        ap.error(f"{option} {path}: no folder {out.parent} to write it in")
    return out
