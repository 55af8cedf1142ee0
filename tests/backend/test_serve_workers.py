"""`infogan serve --workers N` (issue 22): N worker processes, each serving, each with cores / N ONNX Runtime
threads; the header-timeout protocol class reaches the spawned workers by import path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from backend.core.config import Settings
from benchmarks._server import ROOT, free_port


def test_threads_split_between_workers(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
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
        deadline, ready = time.monotonic() + 90, 0
        while time.monotonic() < deadline and ready < 6:  # several answers: both workers have loaded
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                ready = ready + 1 if httpx.get(url + "/readyz", timeout=2).status_code == 200 else 0
            except httpx.HTTPError:
                ready = 0
            time.sleep(0.1)
        assert ready, (tmp_path / "serve.log").read_text()
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
