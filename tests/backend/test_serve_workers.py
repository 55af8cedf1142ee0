"""`infogan serve --workers N` (issue 22): N worker processes, each serving, each with cores / N ONNX Runtime
threads; the header-timeout protocol class reaches the spawned workers by import path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from pathlib import Path

import httpx
import pytest

from backend.core.config import Settings
from benchmarks._server import ROOT, free_port, wait_ready


def test_threads_split_between_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))  # the cores this process may use
    assert Settings(workers=1).threads() == 8
    assert Settings(workers=2).threads() == 4
    assert Settings(workers=16).threads() == 1  # at least one
    assert Settings(workers=2, ort_threads=3).threads() == 3  # an explicit ORT_THREADS wins


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_serve_with_two_workers(tiny_models_dir, tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "DEVICE": "cpu"}
    env.pop("WORKERS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "serve", "--port", str(port), "--workers", "2",
         "--models-dir", str(tiny_models_dir)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        # both workers have loaded (the benchmarks' wait: 10 x 2 answers in a row); raises with the log otherwise
        wait_ready(url, proc, workers=2, timeout=90, log_text=lambda: (tmp_path / "serve.log").read_text())
        r = httpx.post(url + "/generate", json={"n": 2, "seed": 3}, timeout=30)
        assert r.status_code == 200 and len(r.json()["images"]) == 2
        # uvicorn's supervisor plus two serving processes (spawn may add a resource tracker)
        workers = [p for p in children(proc.pid) if "multiprocessing.resource_tracker" not in
                   Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]  # fmt: skip
        assert len(workers) == 2, workers
        for p in workers:
            environ = Path(f"/proc/{p}/environ").read_bytes().split(b"\0")
            assert b"WORKERS=2" in environ
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _fake_readyz(monkeypatch, codes: list[int]) -> list[str]:
    """httpx.get answering /readyz with ``codes`` in turn; returns the list of URLs asked."""
    answers, calls = iter(codes), []

    def fake_get(url, timeout=None):
        calls.append(url)
        return httpx.Response(next(answers), request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    return calls


def _wait(workers: int) -> None:
    """``wait_ready`` against a process that keeps running (no server: /readyz is the fake above)."""
    wait_ready("http://127.0.0.1:9", types.SimpleNamespace(poll=lambda: None, returncode=None), workers, timeout=5)


def test_wait_ready_waits_for_every_worker(monkeypatch):
    # four workers: one 200 only says that some worker has loaded; a 503 after it (another worker still loading)
    # starts the count again, and 10 x 4 answers in a row are needed
    calls = _fake_readyz(monkeypatch, [503, 200, 503] + [200] * 40 + [503])
    _wait(4)
    assert len(calls) == 43


def test_wait_ready_one_worker_needs_one_answer(monkeypatch):
    calls = _fake_readyz(monkeypatch, [503, 503, 200, 503])
    _wait(1)
    assert len(calls) == 3


def test_model_info_says_what_the_server_answered(monkeypatch):
    from benchmarks._server import model_info

    def fake_get(url, timeout=None):
        return httpx.Response(503, text='{"detail": "loading"}', request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    with pytest.raises(RuntimeError, match=r"GET /models/mnist: 503 .*loading"):
        model_info("http://127.0.0.1:9", "mnist")
