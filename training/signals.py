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
