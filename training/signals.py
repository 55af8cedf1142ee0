"""Stopping a run on SIGINT/SIGTERM between two steps, with a checkpoint of the step reached."""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
from pathlib import Path


class Interrupted(Exception):
    """SIGINT/SIGTERM stopped the run after a whole step; its checkpoint holds that step."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        self.signum, self.step, self.run_dir = signum, step, run_dir
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved; continue with: "
            f"infogan train --resume {shlex.quote(str(run_dir))}"  # a folder with a space stays one argument
        )


@contextlib.contextmanager
def stop_requests(enabled: bool):
    """Signals received while training, checked by the loop between steps: a Ctrl-C or a scheduler's SIGTERM
    then writes a checkpoint at that step and stops, losing nothing (a kill -9 still loses at most the steps since
    the last periodic checkpoint, and never the file: checkpoints are written atomically). A second signal takes
    its usual action at once. Off under torchrun (the ranks would stop at different steps and the next collective
    would hang) and outside the main thread (Python delivers signals only there)."""
    received: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        signal.signal(signum, previous[signum])

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Stopped(BaseException):
    """SIGTERM stopped a command that is not a training run (``export``, ``evaluate``, ``data``, ``site``). Raised by
    ``stop_as_exception``'s handler, so the command unwinds as on Ctrl-C: its clean-ups run (an export's or a site's
    staging folder and a render's part file are removed, where the default action left them, a dSprites part file
    3 GB) and the command line ends with one line. A BaseException, like KeyboardInterrupt: no ``except
    Exception`` takes it for an error of its own."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


@contextlib.contextmanager
def stop_as_exception():
    """SIGTERM raises ``Stopped`` while inside (SIGINT already raises KeyboardInterrupt); main thread only, where
    Python delivers signals. The previous handler is put back on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
