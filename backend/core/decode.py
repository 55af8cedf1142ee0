"""Bounded concurrency for decoding uploads, apart from generation.

Decoding runs in FastAPI's thread pool (the sync route /infer-codes); /generate runs in its own batch thread.
Without a bound, N large uploads take N threads and N cores while /generate waits for both. The gate lets ``slots``
decodes run at once (default: half the cores, at least one, so generation keeps the rest) and ``queue`` more
wait; a further upload is refused at once with 503 + Retry-After rather than taking a pool thread to wait in. Waiting
is bounded by ``wait_s``. Settings: environment ``DECODE_SLOTS``, ``DECODE_QUEUE``, ``DECODE_WAIT_S``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

from .config import usable_cores


class GateBusy(Exception):
    """No decode slot within the wait (or the queue is full): the caller answers 503 with Retry-After."""


class DecodeGate:
    def __init__(self, slots: int, queue: int, wait_s: float):
        if slots < 1 or queue < 0 or wait_s < 0:
            raise ValueError(f"decode gate: slots >= 1, queue >= 0, wait_s >= 0; got {slots}, {queue}, {wait_s}")
        self.slots, self.queue, self.wait_s = slots, queue, wait_s
        self._sem = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.inside = 0  # decoding + waiting

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self.inside >= self.slots + self.queue:
                raise GateBusy(f"{self.inside} uploads are being decoded or waiting")
            self.inside += 1
        try:
            if not self._sem.acquire(timeout=self.wait_s):
                raise GateBusy(f"no decode slot within {self.wait_s:g} s")
            try:
                yield
            finally:
                self._sem.release()
        finally:
            with self._lock:
                self.inside -= 1


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    return int(text) if text else default


GATE = DecodeGate(
    slots=_env_int("DECODE_SLOTS", max(1, usable_cores() // 2)),
    queue=_env_int("DECODE_QUEUE", 4),
    wait_s=float(os.environ.get("DECODE_WAIT_S") or 10),
)
