"""make install picks one ONNX Runtime build (issue 23, item 7): the CPU build on a machine without an NVIDIA GPU or
when asked (ORT=cpu), removing the other build first, since both install the one module `onnxruntime`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dry_run(*args: str) -> str:
    """The install recipe make would run (-n: print only; -B: as if nothing were installed yet)."""
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    done = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "install", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_ort_cpu_installs_the_cpu_build_and_removes_the_gpu_one():
    out = dry_run("ORT=cpu")
    assert "requirements/ort-cpu.txt" in out and "requirements/ort-gpu.txt" not in out
    assert "uninstall -q -y onnxruntime-gpu" in out


def test_ort_gpu_installs_the_gpu_build_and_removes_the_cpu_one():
    out = dry_run("ORT=gpu")
    assert "requirements/ort-gpu.txt" in out and "uninstall -q -y onnxruntime " in out + " "


def test_default_follows_the_machine():
    has_gpu = os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi") is not None
    out = dry_run()
    assert ("requirements/ort-gpu.txt" in out) == has_gpu and ("requirements/ort-cpu.txt" in out) != has_gpu
