"""Backend fixtures: an in-process app (lifespan run by TestClient) over the tiny model folders."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import pytest
from fastapi.testclient import TestClient

from backend.core.config import Settings
from backend.main import create_app


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/readyz")
        if r.status_code == 200 or r.json().get("status") == "no models":
            return
        time.sleep(0.02)
    raise TimeoutError("service not ready")


def make_client(models_dir: Path, **overrides) -> TestClient:
    overrides = {"device": "cpu", "ort_threads": 1, **overrides}
    settings = Settings(models_dir=models_dir, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(tiny_models_dir) -> TestClient:
    with make_client(tiny_models_dir) as c:
        wait_ready(c)
        yield c


ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def uvicorn_server(models_dir: Path, **env):
    """`uvicorn backend.main:app` from the repository root on a free port; yields the base URL once ready."""
    port = free_port()
    env = {**os.environ, "MODELS_DIR": str(models_dir), "ORT_THREADS": "1", **env}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tiny_models_dir) -> str:
    with uvicorn_server(tiny_models_dir, DEVICE="auto") as base:
        yield base
