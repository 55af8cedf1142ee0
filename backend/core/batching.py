"""Batching: concurrent generator requests share one run(). ``MicroBatcher`` (below) serves the sync routes
(/traverse, the /infer-codes reconstruction); ``LoopBatcher`` (further down) serves the async /generate. Each lets
one run() at a time through; both call Model.run_generator, whose per-model lock keeps their runs from overlapping.

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
        except Exception as exc:  # noqa: BLE001 - run() failed
            if len(batch) > 1:
                # merged requests run again one by one: a failure caused by one request's rows is that request's
                for r in batch:
                    self._run_batch([r], len(r.z))
                return
            batch[0].exc, batch[0].finished = exc, True
            batch[0].wake.set()
            return
        except BaseException as exc:  # KeyboardInterrupt and the like: every waiting request gets it, no retry
            for r in batch:
                r.exc, r.finished = exc, True
                r.wake.set()
            return
        start = 0
        for r in batch:
            r.out, r.finished = out[start : start + len(r.z)], True
            start += len(r.z)
            r.wake.set()


class LoopBatcher:
    """Micro-batching for an async route: no thread per request, and the generator never waits for the loop.

    A request submits ``prepare`` (-> its (z, c) rows) and ``finish`` (its images -> its answer, e.g. the response
    body) from the event loop. One pooled executor thread drains the queue while it is non-empty: it takes
    everything queued (at most ``max_rows`` rows per generator run; a larger request alone), prepares each request,
    runs the generator once, finishes each request, hands the answers back to the loop in one
    ``call_soon_threadsafe`` and goes straight on to what queued meanwhile. So the batch grows with the load without
    a waiting window, the generator runs back to back under load (a drain task on the loop left it idle ~30 % of the
    time, waiting for the busy loop to hand over the next batch), and a lone request costs one executor hop, as the
    sync route's thread-pool hop did. The sync route paid under 32 clients a thread hop, an Event wake-up and the
    GIL hand-offs of 32 blocked threads per request; here the loop only parses, checks and sends.

    ``prepare``/``finish`` run in the drain thread (drawing z, PNG and JSON encoding stay off the loop); an
    exception in one of them fails that request only, one in ``run`` fails its run's requests.
    """

    def __init__(self, run: RunFn, *, max_rows: int, on_batch: Callable[[int, int], None] | None = None, executor=None):
        from concurrent.futures import ThreadPoolExecutor

        # its own thread (not asyncio's shared pool, cores + 4 threads): a drain keeps its thread while its queue is
        # non-empty, so with more busy models than pool threads an idle model's request waited for the others' load
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")
        self.run, self.max_rows, self.on_batch = run, max_rows, on_batch
        self._lock = threading.Lock()
        self._pending: deque = deque()  # (rows, prepare, finish, future)
        self._draining = False

    async def submit(
        self, rows: int, prepare: Callable[[], tuple[np.ndarray, np.ndarray]], finish: Callable[[np.ndarray], object]
    ):
        """``rows``: how many rows ``prepare`` will return (bounds a batch before preparing it)."""
        import asyncio

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._pending.append((rows, prepare, finish, fut))
            start, self._draining = not self._draining, True
        if start:
            loop.run_in_executor(self.executor, self._drain)
        return await fut

    def _drain(self) -> None:
        """In an executor thread: serve batches until the queue is empty."""
        while True:
            with self._lock:
                if not self._pending:
                    self._draining = False
                    return
                batch, rows = [], 0  # up to max_rows rows (a larger request alone)
                while self._pending and (not batch or rows + self._pending[0][0] <= self.max_rows):
                    batch.append(self._pending.popleft())
                    rows += batch[-1][0]
            try:
                outcomes = self._work([(p, f) for _, p, f, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every request of the batch gets it; the drain goes on
                outcomes = [(exc, None)] * len(batch)
            by_loop: dict = {}
            for (*_, fut), outcome in zip(batch, outcomes, strict=True):
                by_loop.setdefault(fut.get_loop(), []).append((fut, outcome))
            for loop, results in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, results)
                except RuntimeError:  # that loop closed (its requests are gone)
                    pass

    def _work(self, jobs: list[tuple[Callable, Callable]]) -> list[tuple[BaseException | None, object]]:
        """In the executor thread: prepare each request, run the generator in chunks of at most max_rows rows
        (each request whole), finish each request with its own rows."""
        outcomes: list = [None] * len(jobs)
        ready: list[tuple[int, np.ndarray, np.ndarray]] = []
        for i, (prepare, _) in enumerate(jobs):
            try:
                z, c = prepare()
                ready.append((i, z, c))
            except Exception as exc:  # noqa: BLE001 - this request's own failure
                outcomes[i] = (exc, None)
        chunk: list[tuple[int, np.ndarray, np.ndarray]] = []
        rows = 0
        for item in ready + [None]:
            if item is not None and (not chunk or rows + len(item[1]) <= self.max_rows):
                chunk.append(item)
                rows += len(item[1])
                continue
            if chunk:
                try:
                    self._run_chunk(jobs, chunk, rows, outcomes)
                except Exception as exc:  # noqa: BLE001 - run() failed
                    if len(chunk) == 1:
                        outcomes[chunk[0][0]] = (exc, None)
                    else:
                        # merged requests run again one by one, so a run that fails on one request's rows fails
                        # that request alone, not the others that happened to share its batch
                        for alone in chunk:
                            try:
                                self._run_chunk(jobs, [alone], len(alone[1]), outcomes)
                            except Exception as own:  # noqa: BLE001
                                outcomes[alone[0]] = (own, None)
            chunk, rows = ([item], len(item[1])) if item is not None else ([], 0)
        return outcomes

    def _run_chunk(self, jobs, chunk, rows: int, outcomes: list) -> None:
        if len(chunk) == 1:
            out = self.run(chunk[0][1], chunk[0][2])
        else:
            out = self.run(np.concatenate([z for _, z, _ in chunk]), np.concatenate([c for _, _, c in chunk]))
        if self.on_batch:
            self.on_batch(rows, len(chunk))
        start = 0
        for i, z, _ in chunk:
            try:
                outcomes[i] = (None, jobs[i][1](out[start : start + len(z)]))
            except Exception as exc:  # noqa: BLE001
                outcomes[i] = (exc, None)
            start += len(z)


def _resolve(results: list) -> None:
    for fut, (exc, result) in results:
        if fut.done():  # cancelled: the client went away
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
