"""Where a run executes: processes (torchrun / DDP), device, precision, CPU threads and seeding.

The loop asks this module what it runs on and never looks at the hardware itself. Under ``torchrun
--nproc_per_node=N`` each process trains one shard of every batch with DistributedDataParallel (gloo on CPU, NCCL on
CUDA); rank 0 writes all files.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP


class TrainingError(RuntimeError):
    pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def select_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' requested but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True where the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX: Intel Cooper Lake / Sapphire Rapids
    and later, AMD Zen 4 and later). Elsewhere oneDNN emulates bf16 and autocast is far slower than fp32: 12 against
    236 images/s for the paper's MNIST step on a 2-core AVX2 EPYC (benchmarks/train_throughput.py)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: no cheap way to tell, so do not risk the 20x slow-down
            return False
    flag_lines = " ".join(line for line in cpuinfo.splitlines() if line.startswith("flags"))
    return bool(set(re.findall(r"[a-z0-9_]+", flag_lines)) & {"avx512_bf16", "amx_bf16"})


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """train.precision ("auto" | "bf16" | "fp32") -> ("bf16" | "fp32", why), for the run's start-up line."""
    if requested == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        # honoured, but said: oneDNN emulates bf16 here, ~20x slower than fp32 (benchmarks/train_throughput.py)
        return "bf16", "as configured; this CPU has no native bf16, so it is emulated and much slower than fp32"
    if requested != "auto":
        return requested, "as configured"
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ("bf16", "auto: the GPU supports bf16") if ok else ("fp32", "auto: the GPU has no bf16")
    if cpu_has_native_bf16():
        return "bf16", "auto: the CPU has AVX-512 BF16 / AMX"
    return "fp32", "auto: the CPU has no native bf16 (emulated bf16 is slower than fp32)"


def is_rank_zero() -> bool:
    """Before the process group exists: whether this process is torchrun's rank 0 (or runs alone)."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Runtime:
    distributed: bool
    rank: int
    world: int
    device: torch.device
    precision: str  # "bf16" | "fp32", resolved from train.precision
    precision_reason: str

    @classmethod
    def start(cls, device: str, precision: str, threads: int, seed: int) -> Runtime:
        """Join torchrun's process group (if any), set the thread count, pick the device and precision, and seed
        Python, numpy and torch with ``seed + rank`` (each rank draws its own augmentations)."""
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        rank = dist.get_rank() if distributed else 0
        world = dist.get_world_size() if distributed else 1
        if threads:
            torch.set_num_threads(threads)
        dev = select_device(device)
        if distributed and dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        seed_everything(seed + rank)
        resolved, reason = resolve_precision(precision, dev)
        return cls(distributed, rank, world, dev, resolved, reason)

    def autocast(self):
        """Forward passes in bf16 when the precision resolved to "bf16"; backward runs outside (PyTorch's AMP
        recipe)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls: DDP-wrapped under torchrun (gradients averaged over ranks)."""
        return DDP(module) if self.distributed else module

    def gather_rngs(self, latent_gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Under torchrun, every rank's (latent, torch) generator states, gathered on all ranks (a collective: every
        rank calls it at the same step). Each rank draws its own latents and augmentations, so a resume gives each
        rank its own state back; rank 0's for all would make every rank repeat rank 0's draws."""
        if not self.distributed:
            return None
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, (latent_gen.get_state(), torch.get_rng_state()))
        return states

    def from_rank_zero(self, value: float) -> float:
        """Rank 0's value on every rank (a choice every rank must make alike)."""
        if not self.distributed:
            return value
        t = torch.tensor(value, dtype=torch.float64)
        dist.broadcast(t, 0)
        return float(t)

    def agree_on_path(self, path: Path) -> Path:
        """Rank 0's path on every rank (the numbered run folder only rank 0 creates)."""
        if not self.distributed:
            return path
        names = [str(path)]
        dist.broadcast_object_list(names, src=0)
        return Path(names[0])

    def close(self) -> None:
        """Leave the process group together at a run's end: every rank waits for the others, then unregisters the
        group. Under DistributedDataParallel gloo's worker threads outlive this (DDP keeps the group alive), so the
        command line ends a rank without the interpreter's teardown (``cli._leave_rank``), where they once aborted
        a finished rank."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
