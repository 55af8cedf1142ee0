"""Micro-batching: concurrent requests share run() calls and get exactly their own rows back."""

import threading
import time

import numpy as np
from conftest import make_client, wait_ready

from backend.core.batching import MicroBatcher


def test_concurrent_requests_are_merged_and_split_back():
    calls = []

    def run(z, c):
        calls.append(len(z))
        time.sleep(0.01)
        return z * 2 + c

    batcher = MicroBatcher(run, max_rows=8, wait_s=0.005, on_batch=lambda rows, reqs: None)
    results = {}

    def worker(i):
        n = 1 + i % 3
        z = np.full((n, 2), i, np.float32)
        results[i] = (n, batcher(z, np.ones((n, 2), np.float32)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i, (n, out) in results.items():
        assert out.shape == (n, 2) and (out == i * 2 + 1).all()
    assert sum(calls) == sum(n for n, _ in results.values())
    assert len(calls) < 16 and max(calls) <= 8


def test_lone_request_does_not_wait_and_errors_propagate():
    def run(z, c):
        if (z < 0).any():
            raise ValueError("bad batch")
        return z

    batcher = MicroBatcher(run, max_rows=4, wait_s=0.5)
    t = time.perf_counter()
    assert batcher(np.ones((1, 1)), np.ones((1, 1))).shape == (1, 1)
    assert time.perf_counter() - t < 0.25
    try:
        batcher(-np.ones((1, 1)), np.ones((1, 1)))
    except ValueError as exc:
        assert "bad batch" in str(exc)
    else:
        raise AssertionError("no error")
    assert batcher(np.ones((6, 1)), np.ones((6, 1))).shape == (6, 1)  # over max_rows: runs alone
    batcher.close()


def test_lone_request_runs_in_its_own_thread():
    """No hand-off to another thread for a request that finds no batch in flight (sequential latency)."""
    ran_in = []
    batcher = MicroBatcher(lambda z, c: ran_in.append(threading.get_ident()) or z, max_rows=8, wait_s=0.005)
    for _ in range(3):
        batcher(np.ones((1, 1)), np.ones((1, 1)))
    assert ran_in == [threading.get_ident()] * 3


def test_many_threads_all_served_after_a_failing_batch():
    """A run() that fails on one request's rows fails that request alone: its batch runs again request by request,
    so the others merged with it are served; the batch slot passes on, batches stay bounded."""
    sizes, lock = [], threading.Lock()

    def run(z, c):
        with lock:
            sizes.append(len(z))
        time.sleep(0.002)
        if (z < 0).any():
            raise ValueError("bad row")
        return z + c

    batcher = MicroBatcher(run, max_rows=16, wait_s=0.002)
    results = {}

    def worker(i):
        n = 1 + i % 4
        z = np.full((n, 3), -1.0 if i == 7 else float(i), np.float32)
        try:
            results[i] = batcher(z, np.zeros((n, 3), np.float32))
        except ValueError as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    failed = [i for i, r in results.items() if isinstance(r, ValueError)]
    assert failed == [7] and len(results) == 64
    for i, r in results.items():
        if i not in failed:
            assert r.shape == (1 + i % 4, 3) and (r == i).all()
    assert max(sizes) <= 16 and len(sizes) < 64


def test_batched_service_matches_unbatched(tiny_models_dir):
    """Concurrent /generate through the batcher gives the same images as batching off."""
    bodies = [{"n": 1 + i % 2, "seed": i, "codes": {"digit": i % 10}} for i in range(12)]
    outs = {}
    for wait in (2.0, 0.0):
        with make_client(tiny_models_dir, batch_wait_ms=wait) as c:
            wait_ready(c)
            res = [None] * len(bodies)

            def call(i, c=c, res=res):  # bound now: ruff B023 (the threads finish inside this iteration anyway)
                res[i] = c.post("/generate", json=bodies[i]).json()["images"]

            threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outs[wait] = res
    assert outs[2.0] == outs[0.0]


class RecordingSession:
    """A generator session's stand-in around the real one: records the most runs inside it at once and the threads
    that ran it; each run is held ``hold_s`` so concurrent callers would overlap. ``meet``: a barrier the first run
    waits at (it passes only while another model's run waits there too)."""

    def __init__(self, session, hold_s: float, meet: threading.Barrier | None = None):
        self.session, self.hold_s, self.meet = session, hold_s, meet
        self.inside = self.most = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def run(self, names, feeds):
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.threads.add(threading.current_thread().name)
            meet, self.meet = self.meet, None
        try:
            if meet is not None:
                meet.wait()  # BrokenBarrierError (a 500) when the other model's run cannot enter meanwhile
            time.sleep(self.hold_s)
            return self.session.run(names, feeds)
        finally:
            with self._lock:
                self.inside -= 1


def _post_at_once(c, calls: list[tuple[str, dict]]) -> list:
    res = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def call(i):
        start.wait()
        path, body = calls[i]
        res[i] = c.post(path, json=body)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return res


def test_generate_and_traverse_of_one_model_never_run_its_generator_at_once(tiny_models_dir):
    """/generate (LoopBatcher, its own thread) and /traverse (MicroBatcher, the request threads) each let one run
    through per model, but ran the same session side by side: 2 x ORT_THREADS intra-op threads on the cores."""
    with make_client(tiny_models_dir) as c:
        wait_ready(c)
        model = c.app.state.registry.models["tiny"]
        model.generator = recorder = RecordingSession(model.generator, hold_s=0.03)
        gen = ("/generate", {"model": "tiny", "n": 2, "seed": 1})
        trav = ("/traverse", {"model": "tiny", "code": "c1", "rows": 1, "cols": 2, "seed": 1})
        for _ in range(2):
            res = _post_at_once(c, [gen, trav] * 3)
            assert all(r.status_code == 200 for r in res), [r.text for r in res if r.status_code != 200]
    assert any(name.startswith("generate") for name in recorder.threads), recorder.threads  # the LoopBatcher's
    assert any(not name.startswith("generate") for name in recorder.threads), recorder.threads  # MicroBatcher's
    assert recorder.most == 1, f"{recorder.most} runs of one model's generator at once"


def test_different_models_still_run_their_generators_at_once(tiny_models_dir):
    with make_client(tiny_models_dir) as c:
        wait_ready(c)
        meet = threading.Barrier(2, timeout=5)
        for name in ("tiny", "tiny-gan"):
            model = c.app.state.registry.models[name]
            model.generator = RecordingSession(model.generator, hold_s=0.0, meet=meet)
        res = _post_at_once(
            c,
            [
                ("/generate", {"model": "tiny", "n": 1, "seed": 1}),
                ("/traverse", {"model": "tiny-gan", "code": "c1", "rows": 1, "cols": 2, "seed": 1}),
            ],
        )
        assert [r.status_code for r in res] == [200, 200], [r.text for r in res]
        assert not meet.broken


def test_concurrent_readings_never_run_one_models_recognizer_at_once(tiny_models_dir):
    """/infer-codes runs the recognizer in each request's thread: six at once ran one session six times side by
    side (each with ORT_THREADS intra-op threads); they take turns, and every answer is still right."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(buf, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    with make_client(tiny_models_dir) as c:
        wait_ready(c)
        model = c.app.state.registry.models["tiny"]
        model.recognizer = recorder = RecordingSession(model.recognizer, hold_s=0.03)
        res = _post_at_once(c, [("/infer-codes", {"image": url, "model": "tiny"})] * 6)
        assert all(r.status_code == 200 for r in res), [r.text for r in res if r.status_code != 200]
        assert len({r.text for r in res}) == 1
    assert recorder.most == 1, f"{recorder.most} runs of one model's recognizer at once"
