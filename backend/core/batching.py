"""Micro-batching: concurrent /generate requests share one generator run().

Leader/follower combining, no worker thread: request threads (FastAPI's thread pool) queue their (z, c); the thread
that finds no batch in flight becomes the leader, takes what is queued (at most ``max_rows`` rows), runs it once
in its own thread and hands each follower its rows; if more requests queued meanwhile, it wakes the first of them
as the next leader. So a lone request runs at once in its own thread, with no hand-off to another thread (the
former worker-thread design cost 0.04-0.07 ms per lone call on a 2-core AVX2 VM: 1.50/1.57 ms against 1.35/1.49 ms,
mnist generator), there is no thread to start or stop, and under load every run() carries everything that arrived
while the previous one ran. A leader lingers for company (``wait_s``, a few ms) only after the last
batch merged several requests, and stops lingering as soon as requests stop arriving for ``gap_s`` (0.5 ms):
once every concurrent client has submitted, waiting longer only leaves the cores idle.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class _Request:
    __slots__ = ("z", "c", "wake", "finished", "out", "exc")

    def __init__(self, z: np.ndarray, c: np.ndarray):
        self.z, self.c = z, c
        # set when the rows are ready (finished), or, while not finished, when this request is to lead the next batch
        self.wake = threading.Event()
        self.finished = False
        self.out: np.ndarray | None = None
        self.exc: BaseException | None = None

    def result(self) -> np.ndarray:
        if self.exc is not None:
            raise self.exc
        return self.out


class MicroBatcher:
    def __init__(
        self,
        run: RunFn,
        *,
        max_rows: int,
        wait_s: float,
        on_batch: Callable[[int, int], None] | None = None,
        gap_s: float = 0.0005,
    ):
        self.run, self.max_rows, self.wait_s, self.gap_s = run, max_rows, wait_s, gap_s
        self.on_batch = on_batch  # (rows, requests) per run(), for the metrics
        self._cond = threading.Condition()
        self._pending: deque[_Request] = deque()
        self._leading = False  # a leader holds the batch slot
        self._busy = False  # did the last batch merge several requests? then the next leader waits for company

    def __call__(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        # batching off, or a request that fills a batch by itself: run in the caller's thread, outside the queue
        if self.wait_s <= 0 or len(z) >= self.max_rows:
            out = self.run(z, c)
            if self.on_batch:
                self.on_batch(len(z), 1)
            return out
        req = _Request(z, c)
        with self._cond:
            self._pending.append(req)
            self._cond.notify()  # a lingering leader counts arrivals
            lead = not self._leading
            self._leading = True
        if not lead:
            req.wake.wait()
            lead = not req.finished  # woken to lead: the previous leader passed the slot on
        if lead:
            self._lead()
        return req.result()

    def close(self) -> None:
        """Nothing to stop: there is no worker thread, and every queued request is served by some leader."""

    def _lead(self) -> None:
        """Collect one batch (this thread's own request is first in the queue), run it, pass the slot on."""
        batch: list[_Request] = []
        try:
            with self._cond:
                if self._busy:
                    self._linger()
                rows = 0
                while self._pending and rows + len(self._pending[0].z) <= self.max_rows:
                    batch.append(self._pending.popleft())
                    rows += len(batch[-1].z)
            self._run_batch(batch, rows)
        finally:
            with self._cond:
                self._busy = len(batch) > 1
                if self._pending:
                    self._pending[0].wake.set()  # not finished, so it wakes to lead
                else:
                    self._leading = False

    def _linger(self) -> None:
        """Wait (holding the condition) up to wait_s for more rows, but only while requests keep arriving."""
        deadline = time.perf_counter() + self.wait_s
        while sum(len(r.z) for r in self._pending) < self.max_rows:
            timeout = min(deadline - time.perf_counter(), self.gap_s)
            if timeout <= 0:
                return
            before = len(self._pending)
            self._cond.wait(timeout)
            if len(self._pending) == before:
                return

    def _run_batch(self, batch: list[_Request], rows: int) -> None:
        try:
            if len(batch) == 1:
                out = self.run(batch[0].z, batch[0].c)
            else:
                out = self.run(np.concatenate([r.z for r in batch]), np.concatenate([r.c for r in batch]))
            if self.on_batch:
                self.on_batch(rows, len(batch))
        except BaseException as exc:  # every waiting request gets the failure; the slot still passes on
            for r in batch:
                r.exc, r.finished = exc, True
                r.wake.set()
            return
        start = 0
        for r in batch:
            r.out, r.finished = out[start : start + len(r.z)], True
            start += len(r.z)
            r.wake.set()
