"""Is CUDA usable by ONNX Runtime here? Asked quietly: one (ok, reason) answer, no red library errors at start-up.

onnxruntime-gpu lists CUDAExecutionProvider even on a machine with no GPU or no CUDA libraries; creating a session
then prints ``Failed to load library ... libcublasLt.so.12 ...`` on stderr from C++ before falling back to CPU.
``probe_cuda`` answers without a GPU device node at once, and otherwise builds the probe session in a child process
whose stderr it keeps, so the reason (e.g. the missing library) becomes one log line instead.

Use: ``ok, reason = probe_cuda(path_to_any_model.onnx)``; log ``"device: cpu (%s)", reason`` when not ok.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CUDA = "CUDAExecutionProvider"
_CHILD = (
    "import sys, onnxruntime as ort; ort.set_default_logger_severity(3); "
    "s = ort.InferenceSession(sys.argv[1], providers=['CUDAExecutionProvider', 'CPUExecutionProvider']); "
    "print('PROVIDER', s.get_providers()[0])"
)


def nvidia_present() -> bool:
    """A GPU device node or the driver's tool: without either, CUDA cannot work (checked without ONNX Runtime)."""
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def _why(stderr: str) -> str:
    missing = re.search(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object file", stderr)
    if missing:
        return f"CUDA library {missing.group(1)} not found"
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "CUDAExecutionProvider could not be initialised"


def probe_cuda(model: str | Path | None, timeout_s: float = 120.0) -> tuple[bool, str]:
    """(True, "") when a session on ``model`` really runs on CUDA, else (False, one-line reason)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime is not installed"
    if CUDA not in ort.get_available_providers():
        return False, "this onnxruntime build has no CUDAExecutionProvider (CPU-only install)"
    if not nvidia_present():
        return False, "no NVIDIA GPU found (no /dev/nvidia0, no nvidia-smi)"
    if model is None:
        return False, "no model to probe CUDA with"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(model)], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return False, f"the CUDA probe did not finish within {timeout_s:g} s"
    if f"PROVIDER {CUDA}" in done.stdout:
        return True, ""
    return False, _why(done.stderr)
