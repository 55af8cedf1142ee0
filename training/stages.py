"""Stage lines for the commands that work for minutes without a training loop's bar (``infogan evaluate`` and
``infogan export``: a full-size dSprites evaluation is 5-13 min on 2 CPU cores, about half of it encoding the
737,280 images once and most of the rest DCI's trees; README.md gives the measured figures). Each stage is one line
on stderr with the seconds since the command started, so ``--json`` on stdout stays clean and a log file shows where
the time went."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# a stage's one-line description -> (nothing); the functions that take one call it before each stage
Progress = Callable[[str], None]


def quiet(message: str) -> None:
    """No stage lines (the default of the library functions: tests and the training loop's per-epoch evaluation)."""


def stage_printer(stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> Progress:
    """A ``Progress`` that writes ``[  12 s] message`` to ``stream`` (stderr by default), flushed at once so a log
    written through ``nohup`` or a pipe shows the stage while it runs."""
    start = clock()

    def say(message: str) -> None:
        out = stream if stream is not None else sys.stderr
        print(f"[{clock() - start:6.0f} s] {message}", file=out, flush=True)

    return say
