"""LoopBatcher (issue 22): async /generate requests share generator runs without a thread per request."""

import asyncio
import threading
import time

import numpy as np
import pytest
from conftest import make_client, wait_ready

import backend.api.routes.generate as generate_route
from backend.core.batching import LoopBatcher


def run_async(coro):
    """``asyncio.run`` in a thread of its own: the browser tests' session fixtures keep an event loop running in the
    main thread, where ``asyncio.run`` refuses to start (whichever order the suite runs in)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def rows(i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, 2), i, np.float32), np.ones((n, 1), np.float32)


def test_concurrent_submits_share_runs_and_get_their_own_rows():
    runs, batches = [], []

    def run(z, c):
        runs.append(len(z))
        time.sleep(0.01)  # requests queue meanwhile: the next run carries them all
        return z * 2 + c

    batcher = LoopBatcher(run, max_rows=8, on_batch=lambda r, q: batches.append((r, q)))

    async def main():
        return await asyncio.gather(
            *(batcher.submit(1 + i % 3, lambda i=i: rows(i, 1 + i % 3), lambda out: out) for i in range(40))
        )

    results = run_async(main())
    for i, out in enumerate(results):
        assert out.shape == (1 + i % 3, 2) and (out == 2 * i + 1).all()
    assert sum(runs) == sum(1 + i % 3 for i in range(40))
    assert max(runs) <= 8 and len(runs) < 40  # merged, never over max_rows
    assert sum(q for _, q in batches) == 40 and [r for r, _ in batches] == runs
    # the drain thread leaves once it finds the queue empty: just after it resolved the last futures, so on a loaded
    # machine it may not have looked yet when gather returns (a bounded wait, not a sleep-and-hope)
    deadline = time.monotonic() + 5.0
    while batcher._draining and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not batcher._draining


def test_a_failing_request_or_run_fails_only_its_own_and_the_drain_goes_on():
    def run(z, c):
        if (z < 0).any():
            raise ValueError("bad run")
        return z

    batcher = LoopBatcher(run, max_rows=1)  # one request per run: a bad run fails exactly its request

    def prepare(i):
        if i == 3:
            raise KeyError("bad prepare")
        return rows(-1 if i == 5 else i, 1)

    def finish(i, out):
        if i == 7:
            raise RuntimeError("bad finish")
        return out

    async def main():
        return await asyncio.gather(
            *(batcher.submit(1, lambda i=i: prepare(i), lambda out, i=i: finish(i, out)) for i in range(10)),
            return_exceptions=True,
        )

    results = run_async(main())
    assert isinstance(results[3], KeyError) and isinstance(results[5], ValueError)
    assert isinstance(results[7], RuntimeError)
    for i in (0, 1, 2, 4, 6, 8, 9):
        assert (results[i] == i).all()
    # and the batcher serves again afterwards, from another event loop
    assert (run_async(batcher.submit(2, lambda: rows(11, 2), lambda out: out)) == 11).all()


def test_a_run_that_fails_on_one_request_fails_it_alone_when_merged():
    runs = []

    def run(z, c):
        runs.append(len(z))
        if (z < 0).any():
            raise ValueError("bad rows")
        return z

    batcher = LoopBatcher(run, max_rows=64)  # every request merges into one run, which fails for request 5's rows

    async def main():
        return await asyncio.gather(
            *(batcher.submit(1, lambda i=i: rows(-1 if i == 5 else i, 1), lambda out: out) for i in range(10)),
            return_exceptions=True,
        )

    results = run_async(main())
    assert isinstance(results[5], ValueError)
    for i in (0, 1, 2, 3, 4, 6, 7, 8, 9):
        assert (results[i] == i).all()
    assert max(runs) > 1  # they were merged, and then run again one by one


def test_a_cancelled_request_does_not_disturb_the_others():
    started = threading.Event()

    def run(z, c):
        started.set()
        time.sleep(0.05)
        return z

    batcher = LoopBatcher(run, max_rows=4)

    async def main():
        first = asyncio.ensure_future(batcher.submit(1, lambda: rows(1, 1), lambda out: out))
        await asyncio.to_thread(started.wait, 5)
        queued = [asyncio.ensure_future(batcher.submit(1, lambda i=i: rows(i, 1), lambda out: out)) for i in (2, 3)]
        await asyncio.sleep(0)
        queued[0].cancel()  # the client went away while its request waited
        return await first, await queued[1], queued[0].cancelled()

    a, b, cancelled = run_async(main())
    assert (a == 1).all() and (b == 3).all() and cancelled


@pytest.mark.parametrize("batch_wait_ms", [2.0, 0.0])
def test_generate_does_not_hold_a_thread_per_request(tiny_models_dir, monkeypatch, batch_wait_ms):
    """16 concurrent /generate requests against a slow generator: the drawing (and so each request's model work)
    runs in the batch's thread, not in one pool thread per request as the sync route did (there: 16 threads)."""
    threads: set[int] = set()
    draw = generate_route.draw

    def recording_draw(*args, **kwargs):
        threads.add(threading.get_ident())
        return draw(*args, **kwargs)

    monkeypatch.setattr(generate_route, "draw", recording_draw)
    with make_client(tiny_models_dir, batch_wait_ms=batch_wait_ms) as c:
        wait_ready(c)
        model = next(iter(c.app.state.registry.models.values()))
        run = model.run_generator
        monkeypatch.setattr(model, "run_generator", lambda z, cc: (time.sleep(0.02), run(z, cc))[1])
        res = [None] * 16

        def call(i):
            res[i] = c.post("/generate", json={"seed": i, "n": 1 + i % 2})

        pool = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    assert all(r.status_code == 200 for r in res), [r.text for r in res if r.status_code != 200]
    assert [len(r.json()["images"]) for r in res] == [1 + i % 2 for i in range(16)]
    assert [r.json()["seed"] for r in res] == list(range(16))
    assert len(threads) <= 2, f"drawn in {len(threads)} threads"


def test_an_idle_model_is_not_kept_waiting_by_busy_ones():
    """A drain keeps its thread while its model's queue is non-empty; on asyncio's shared pool (cores + 4 threads),
    more busy models than pool threads made an idle model's request wait for all of their load (1.7 s seen)."""
    from concurrent.futures import ThreadPoolExecutor

    def run(z, c):
        time.sleep(0.005)
        return z

    busy = [LoopBatcher(run, max_rows=8) for _ in range(4)]
    idle = LoopBatcher(run, max_rows=8)

    async def main():
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))  # fewer threads than busy models
        stop = time.monotonic() + 1.0

        async def client(b, k):  # one of 16 per busy model, out of step: its queue is never empty
            while time.monotonic() < stop:
                await asyncio.sleep((k % 5) * 0.001)
                await b.submit(1, lambda: rows(0, 1), lambda out: out)

        load = [asyncio.create_task(client(b, k)) for b in busy for k in range(16)]
        await asyncio.sleep(0.1)  # the busy models' drains are running
        t0 = time.monotonic()
        await idle.submit(1, lambda: rows(1, 1), lambda out: out)
        waited = time.monotonic() - t0
        await asyncio.gather(*load)
        return waited

    assert run_async(main()) < 0.3  # a run of 5 ms and a thread hop, not the busy models' whole second
