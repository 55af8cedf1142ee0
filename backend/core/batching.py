"""Micro-batching: concurrent /generate requests share one generator run().

Request threads (FastAPI's thread pool) submit (z, c) and block on a future; one worker thread per model
concatenates what is queued (at most ``max_rows`` rows) and runs it once. A lone request never waits: the worker
only lingers (``wait_s``, a few ms) for more requests after it has just seen concurrent ones, so sequential
latency is unchanged and throughput under load rises with the batch size. It also stops lingering as soon as
requests stop arriving for ``gap_s`` (0.5 ms): once every concurrent client has submitted, waiting longer only
leaves the cores idle.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class MicroBatcher:
    def __init__(self, run: RunFn, *, max_rows: int, wait_s: float, name: str = "generator",
                 on_batch: Callable[[int, int], None] | None = None, gap_s: float = 0.0005):
        self.run, self.max_rows, self.wait_s, self.gap_s = run, max_rows, wait_s, gap_s
        self.on_batch = on_batch  # (rows, requests) per run(), for the metrics
        self._queue: queue.Queue[tuple[np.ndarray, np.ndarray, Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if wait_s > 0:
            self._thread = threading.Thread(target=self._loop, name=f"batcher-{name}", daemon=True)
            self._thread.start()

    def __call__(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        # batching off, or a request that fills a batch by itself: run in the caller's thread
        if self._thread is None or len(z) >= self.max_rows:
            if self.on_batch:
                self.on_batch(len(z), 1)
            return self.run(z, c)
        fut: Future = Future()
        self._queue.put((z, c, fut))
        return fut.result()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        carry = None
        busy = False  # did the last batch hold more than one request? then wait a little for company
        while True:
            item = carry or self._queue.get()
            carry = None
            if item is None:
                return
            batch, rows = [item], len(item[0])
            deadline = time.perf_counter() + (self.wait_s if busy else 0.0)
            stop = False
            while rows < self.max_rows:
                timeout = min(deadline - time.perf_counter(), self.gap_s)
                try:
                    nxt = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if rows + len(nxt[0]) > self.max_rows:
                    carry = nxt  # keeps the bound; it opens the next batch
                    break
                batch.append(nxt)
                rows += len(nxt[0])
            busy = len(batch) > 1
            self._run_batch(batch, rows)
            if stop:
                return

    def _run_batch(self, batch: list, rows: int) -> None:
        try:
            if len(batch) == 1:
                out = self.run(batch[0][0], batch[0][1])
            else:
                out = self.run(np.concatenate([b[0] for b in batch]), np.concatenate([b[1] for b in batch]))
            if self.on_batch:
                self.on_batch(rows, len(batch))
        except BaseException as exc:  # hand the failure to every waiting request instead of killing the worker
            for _, _, fut in batch:
                fut.set_exception(exc)
            return
        start = 0
        for z, _, fut in batch:
            fut.set_result(out[start:start + len(z)])
            start += len(z)
