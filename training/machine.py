"""What a run or an export ran on, for checkpoints and manifests (the project reports every figure with its machine).

Kept free of torch at import so the benchmarks can name the CPU without loading it."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"), as `lscpu` prints it: the first
    "model name" line of /proc/cpuinfo (or of ``cpuinfo``), else what ``platform`` knows."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name") and ":" in line:
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def describe(device: Any = None) -> dict[str, Any]:
    """{"cpu", "cores", "device", "torch"}: the machine one command ran on. ``device`` a torch device (or its name);
    a CUDA device adds the GPU's name."""
    import torch

    out: dict[str, Any] = {"cpu": cpu_name(), "cores": os.cpu_count(), "device": "cpu", "torch": str(torch.__version__)}
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        out["device"] = f"cuda ({torch.cuda.get_device_name(dev)})"
    return out
