"""Which ONNX Runtime execution provider serves the models, and the session options every session uses."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from .config import Settings
from .cuda_probe import probe_cuda

log = logging.getLogger("backend.models")

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


class DeviceError(RuntimeError):
    """DEVICE=cuda asked for but CUDA cannot run a session here."""


def providers(device: str) -> list[str]:
    """'cpu' | 'cuda' -> the provider list of a session (CUDA falls back to the CPU for unsupported nodes)."""
    return [CUDA, CPU] if device == "cuda" else [CPU]


def session_options(threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between runs: the same cores encode PNGs and serve HTTP in this process
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def probe_file(folders: list[Path]) -> Path | None:
    """The generator the CUDA check builds a session on: the first folder's whose manifest reads and whose file
    matches its sha256. A broken first folder decided the device for every model (DEVICE=auto: all on the CPU;
    DEVICE=cuda: no start at all); it is reported in /readyz like any other broken folder."""
    from spec.manifest import GENERATOR_FILE, Manifest

    for folder in folders:
        try:
            return Manifest.read(folder).verify_file(folder, GENERATOR_FILE)
        except (ValueError, OSError):  # ManifestError is a ValueError
            continue
    return None


def resolve_device(requested: str, probe: Path | None, threads: int) -> str:
    """'auto' | 'cpu' | 'cuda' -> 'cpu' | 'cuda'. onnxruntime-gpu lists CUDA as available even without a GPU or
    its libraries, so ``probe_cuda`` builds a real session on ``probe`` -- in a child process, so ONNX Runtime's
    library errors (a red libcublasLt line on a machine without CUDA) become one quiet reason -- and checks which
    provider it ended up with. ``threads`` is unused by the probe (kept for callers)."""
    if requested == "cpu":
        return "cpu"
    ok, reason = probe_cuda(probe)
    if ok:
        log.info("device: cuda (DEVICE=%s; ONNX Runtime CUDAExecutionProvider)", requested)
        return "cuda"
    if requested == "cuda":
        raise DeviceError(f"DEVICE=cuda but {reason}")
    log.info("device: cpu (DEVICE=auto; %s)", reason)
    return "cpu"


def require_cuda(models_dir: Path, threads: int) -> str:
    """'cuda' once a CUDA session really starts on the first sha256-verified generator under ``models_dir`` (in
    folder order), else DeviceError naming why: the check ``infogan serve``, the app uvicorn imports and the serving
    benchmark make before any server starts."""
    from spec.manifest import ordered_folders

    folders = ordered_folders(models_dir, []) if models_dir.is_dir() else []
    return resolve_device("cuda", probe_file(folders), threads)


def cuda_or_exit(prog: str, settings: Settings) -> str | None:
    """DEVICE=cuda: ``require_cuda``, else SystemExit with one line naming why (``prog: error: DEVICE=cuda but
    <reason>``). Other values: None, left to Registry.start (DEVICE=auto falls back to the CPU, so it cannot fail)."""
    if settings.device != "cuda":
        return None
    try:
        return require_cuda(settings.models_dir, settings.threads())
    except DeviceError as exc:
        raise SystemExit(f"{prog}: error: {exc} (DEVICE=auto falls back to CPU)") from None
