"""Backend fixtures: an in-process app (lifespan run by TestClient) over the tiny model folders."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.core.config import Settings
from backend.main import create_app
from benchmarks._server import server as start_server

ROOT = Path(__file__).resolve().parents[2]


def migration_script():
    """scripts/migrate_manifests.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("migrate_manifests", ROOT / "scripts" / "migrate_manifests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wait_ready(client: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("/readyz")
        if r.status_code == 200 or r.json().get("status") == "no models":
            return
        time.sleep(0.02)
    raise TimeoutError("service not ready")


def make_client(models_dir: Path, **overrides) -> TestClient:
    # DEVICE=cuda (benchmarks/gpu_check.sh) runs these tests on the GPU; CPU otherwise
    overrides = {"device": os.environ.get("DEVICE", "cpu"), "ort_threads": 1, **overrides}
    settings = Settings(models_dir=models_dir, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(tiny_models_dir) -> TestClient:
    with make_client(tiny_models_dir) as c:
        wait_ready(c)
        yield c


@contextlib.contextmanager
def uvicorn_server(models_dir: Path, **env):
    """`uvicorn backend.main:app` from the repository root on a free port; yields the base URL once ready."""
    with start_server(models_dir, ready_timeout=60, ORT_THREADS="1", **env) as (base, _pid):
        yield base


@pytest.fixture(scope="session")
def server(tiny_models_dir) -> str:
    with uvicorn_server(tiny_models_dir, DEVICE="auto") as base:
        yield base
