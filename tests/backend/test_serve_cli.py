"""`infogan serve` refuses bad arguments and settings with one line, before uvicorn starts (issue 23 items 8, 9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.core.cuda_probe import _why, probe_cuda

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "training.cli", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    "args,env,needle",
    [
        (["--port", "99999"], {}, "must be 1..65535"),
        (["--port", "0"], {}, "must be 1..65535"),
        (["--port", "http"], {}, "whole number"),
        (["--host", "garbage..x"], {}, "--host"),
        (["--models-dir", "README.md"], {}, "is a file"),
        ([], {"DEVICE": "gpu"}, "setting DEVICE"),
        ([], {"MODELS_DIR": "README.md"}, "is a file"),
        # a typo in the folder started a server with no models and only a log warning
        (["--models-dir", "no-such-models"], {}, "--models-dir no-such-models does not exist"),
        ([], {"MODELS_DIR": "no-such-models"}, "MODELS_DIR no-such-models does not exist"),
        (["--workers", "two"], {}, "--workers: must be a whole number >= 1, got 'two'"),
        (["--workers", "0"], {}, "--workers: must be >= 1, got 0"),
        (["--workers", "65"], {}, "--workers: must be 1..64, got 65"),  # was refused as "setting WORKERS"
        ([], {"MODELS_DIR": ""}, "setting MODELS_DIR: Value error, is empty"),  # was the current folder
        ([], {"ORT_THREADS": "3000"}, "setting ORT_THREADS"),
    ],
)
def test_one_line_errors(args, env, needle):
    p = serve(*args, **env)
    assert p.returncode in (1, 2) and needle in p.stderr and "Traceback" not in p.stderr
    assert len([ln for ln in p.stderr.splitlines() if "error" in ln]) == 1


def test_device_cuda_without_gpu_is_one_line():
    ok, _ = probe_cuda(None)
    if ok:
        pytest.skip("a GPU is present")
    p = serve(DEVICE="cuda")
    assert p.returncode == 1 and "DEVICE=cuda but" in p.stderr and "Traceback" not in p.stderr


def test_probe_reason_names_the_missing_library():
    err = (
        "[E:onnxruntime:Default, provider_bridge_ort.cc:2] Failed to load library libonnxruntime_providers_cuda.so "
        "with error: libcublasLt.so.12: cannot open shared object file: No such file or directory"
    )
    assert _why(err) == "CUDA library libcublasLt.so.12 not found"


def test_a_port_in_use_is_one_line_before_the_models_load():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = serve("--port", str(port))
    assert p.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and "loaded from" not in p.stderr  # refused before any model loaded


def test_uvicorn_on_the_app_module_says_a_bad_setting_in_one_line():
    # `uvicorn backend.main:app` imports the app: a bad setting was a 50-line pydantic traceback
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, "-m", "uvicorn", "backend.main:app", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "MAX_BATCH": "0"},
    )
    assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr  # 3: uvicorn's STARTUP_FAILURE
    assert p.stderr.strip() == "backend.main: error: setting MAX_BATCH: Input should be greater than or equal to 1"


def uvicorn_app(*args: str, models_dir, **env: str) -> subprocess.CompletedProcess:
    """`uvicorn backend.main:app` from the repository root on 127.0.0.1 and a free port (it should not get to serve)."""
    import os
    from pathlib import Path

    from benchmarks._server import free_port

    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "uvicorn", "backend.main:app", "--host", "127.0.0.1", "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "MODELS_DIR": str(models_dir), "ORT_THREADS": "1", **env},
    )


def test_uvicorn_on_the_app_module_says_device_cuda_without_cuda_in_one_line(tiny_models_dir):
    # raised in the lifespan, DeviceError was uvicorn's 40-line start-up traceback (and exit status 3)
    ok, _ = probe_cuda(None)
    if ok:
        pytest.skip("ONNX Runtime can use CUDA here")
    p = uvicorn_app(models_dir=tiny_models_dir, DEVICE="cuda")
    assert p.returncode == 3 and "Traceback" not in p.stderr, p.stderr
    line = p.stderr.strip()
    assert "\n" not in line and line.startswith("backend.main: error: DEVICE=cuda but "), p.stderr
    assert "loaded from" not in p.stderr and "Started server" not in p.stderr  # refused before uvicorn started


@pytest.mark.parametrize("env", [{"MAX_BATCH": "0"}, {"DEVICE": "cuda"}])
def test_uvicorn_workers_stop_on_a_start_up_failure_instead_of_restarting_for_ever(tiny_models_dir, env):
    # a worker's exit status 1 made uvicorn's parent start another, which failed the same way, every few seconds
    if env.get("DEVICE") == "cuda" and probe_cuda(None)[0]:
        pytest.skip("ONNX Runtime can use CUDA here")
    p = uvicorn_app("--workers", "2", models_dir=tiny_models_dir, **env)  # TimeoutExpired while it restarts them
    assert "failed to start, stopping the parent process" in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert 1 <= p.stderr.count("backend.main: error: ") <= 2, p.stderr  # once per worker, not again


def test_importing_the_module_for_create_app_reads_no_settings_and_probes_nothing():
    """Only ``app`` (uvicorn's import) is built from the environment: a caller importing create_app with its own
    Settings must not exit on DEVICE=cuda (no CUDA here) or on a bad setting of the environment."""
    for env in ({"DEVICE": "cuda"}, {"MAX_BATCH": "0"}):
        done = subprocess.run(
            [sys.executable, "-c", "from backend.main import create_app; print('imported')"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stdout.strip() == "imported", (env, done.stderr)


def test_the_resolved_device_is_logged_when_cuda_is_checked_before_serving():
    """DEVICE=cuda is checked while ``app`` is built, before create_app: logging must already be set up, or the
    "device: cuda (...)" line (resolve_device's) was never printed."""
    script = (
        "import logging\n"
        "import backend.core.device as d\n"
        "def ok(requested, probe, threads):\n"
        "    logging.getLogger('backend.models').info('device: cuda (a stand-in probe)')\n"
        "    return 'cuda'\n"
        "d.resolve_device = ok\n"
        "import backend.main\n"
        "backend.main.app\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DEVICE": "cuda"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "backend.models: device: cuda (a stand-in probe)" in done.stderr, done.stderr
