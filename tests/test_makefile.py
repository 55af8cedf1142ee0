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


FAKE_NPM = """#!/bin/sh
# npm ci as far as the Makefile sees it: node_modules/onnxruntime-web/dist with the files listed in $NPM_GIVES
mkdir -p node_modules/onnxruntime-web/dist
for f in $NPM_GIVES; do echo x > node_modules/onnxruntime-web/dist/$f; done
"""
ORT_WEB = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


@pytest.mark.parametrize("gives", [ORT_WEB, ORT_WEB[:2], ORT_WEB[1:]])
def test_the_runtime_copy_fails_when_npm_left_out_a_file(tmp_path, gives):
    # the recipe once copied the files in a loop whose status was the last copy's: a missing file passed
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    for name in ("Makefile", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NPM_GIVES": " ".join(gives)}
    done = subprocess.run(
        ["make", "-C", str(tmp_path), "frontend/static/ort/ort.wasm.min.mjs"], capture_output=True, text=True, env=env
    )
    copied = sorted(p.name for p in (tmp_path / "frontend" / "static" / "ort").glob("*"))
    if len(gives) == len(ORT_WEB):
        assert done.returncode == 0 and copied == sorted(ORT_WEB), done.stderr
    else:
        assert done.returncode != 0 and "cannot stat" in done.stderr, done.stderr
