"""The generic training loop: data in memory, two optimizer phases per step, atomic checkpoints, exact resume.

The loop knows nothing of the loss's terms (``InfoGANLoss``) nor of code kinds (``LatentSpec``). Runs live in
numbered folders (``runs/00003-mnist-s0/``) holding ``training_options.json``, ``metrics.jsonl``,
``samples/epoch-NNN.png`` and ``checkpoint.pt``. Under ``torchrun --nproc_per_node=N`` it trains with
DistributedDataParallel (gloo on CPU, NCCL on CUDA); rank 0 writes all files.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from . import checkpoint as ckpt_io
from .augment import NuisanceAugment
from .config import Config, dumps
from .data import load_dataset
from .images import grid, save_png, to_unit
from .latent import LatentSpec
from .loss import InfoGANLoss
from .networks import build_networks, count_parameters


# One fused kernel per parameter group instead of ~10 elementwise passes per tensor: ~10% faster steps on the
# paper's 13 M-parameter MNIST pair on a 2-core CPU (benchmarks/train_throughput.py).
ADAM_KW = {"fused": True}


class TrainingError(RuntimeError):
    pass


class Interrupted(Exception):
    """SIGINT/SIGTERM stopped the run after a whole step; its checkpoint holds that step."""

    def __init__(self, signum: int, step: int, run_dir: Path):
        self.signum, self.step, self.run_dir = signum, step, run_dir
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved; continue with: "
                         f"infogan train --resume {run_dir}")


@contextlib.contextmanager
def stop_requests(enabled: bool):
    """Signals received while training, checked by the loop between steps: a Ctrl-C or a scheduler's SIGTERM
    then writes a checkpoint at that step and stops, losing nothing (a kill -9 still loses at most the steps since
    the last periodic checkpoint, and never the file: checkpoints are written atomically). A second signal takes
    its usual action at once. Off under torchrun (the ranks would stop at different steps and the next collective
    would hang) and outside the main thread (Python delivers signals only there)."""
    received: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        signal.signal(signum, previous[signum])

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def trim_metrics(path: Path, step: int, candidate: int | None = None) -> int:
    """Drop the rows a killed run logged after its checkpoint's step, and a line the kill tore: the resumed run logs
    those steps again (identically, as resume is exact), so the file keeps one row per step. Rewritten atomically;
    returns the number of lines dropped. ``candidate``: the checkpoint is inside the label-free restarts, at that
    start's ``step``; rows are ordered by (start, step), the main run's after every start's."""
    after_all = float("inf")
    here = (after_all if candidate is None else candidate, step)
    ckpt_io.remove_stale_temps(path)  # from a trim a kill interrupted
    if not path.exists():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and (row.get("candidate", after_all), row["step"]) > here:
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        text = "".join(line + "\n" for line in kept).encode()
        ckpt_io.write_atomic(path, lambda f: f.write(text))
    return dropped


def command_line() -> str:
    """This process's command line as a user would type it (``python -m training ...`` or ``infogan ...``)."""
    prog = ["python", "-m", "training"] if Path(sys.argv[0]).name == "__main__.py" else [Path(sys.argv[0]).name]
    return shlex.join([*prog, *sys.argv[1:]])


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
    flags = set(re.findall(r"[a-z0-9_]+", " ".join(line for line in cpuinfo.splitlines() if line.startswith("flags"))))
    return bool(flags & {"avx512_bf16", "amx_bf16"})


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


def new_run_dir(root: str | Path, name: str) -> Path:
    """runs/00000-<name>, numbered after the highest existing run (stylegan3's layout)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    path = root / f"{max(ids, default=-1) + 1:05d}-{name}"
    path.mkdir()
    return path


def model_args(cfg: Config, channels: int, resolution: int) -> dict[str, Any]:
    args = {"arch": cfg.model.arch, "channels": channels, "resolution": resolution, **cfg.model.widths}
    if cfg.model.noise_scale != 1.0:  # absent = 1, so checkpoints from before the option still resume
        args["noise_scale"] = cfg.model.noise_scale
    return args


def sample_grid_latents(spec: LatentSpec, n_cols: int = 10, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents for the per-epoch sample grid in the paper's layout (Fig. 2): one row per value of the first
    categorical code, the first continuous code swept over its prior range left to right, all else fixed."""
    g = torch.Generator().manual_seed(seed)
    cat = next((c for c in spec.codes if c.kind == "categorical"), None)
    cont = next((c for c in spec.codes if c.kind == "continuous"), None)
    rows = cat.categories if cat else 8
    n = rows * n_cols
    z = spec.noise.sample(1, g).expand(n, -1).clone() if cont else spec.noise.sample(n, g)
    values = {k: v[:1].expand(n).clone() for k, v in spec.sample_values(1, g).items()}
    if cat:
        values[cat.name] = torch.arange(rows).repeat_interleave(n_cols)
    if cont:
        values[cont.name] = torch.linspace(cont.low, cont.high, n_cols).repeat(rows)
    return z, spec.encode(values)


class Trainer:
    def __init__(self, cfg: Config, run_dir: Path, *, resume: dict[str, Any] | None = None, progress: bool = True,
                 max_steps: int | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        # stop when the step reaches this (tests, benchmarks), inside a restart too; the schedule still follows
        # cfg.train.epochs, and a resume goes on from there
        self.max_steps = max_steps
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if cfg.train.device == "cuda" else "gloo")
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        self.device = select_device(cfg.train.device)
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        seed_everything(cfg.train.seed + self.rank)
        self.precision, self.precision_reason = resolve_precision(cfg.train.precision, self.device)

        self.spec = cfg.spec
        dc = cfg.data
        train = load_dataset(dc.name, dc.dir, "train", resolution=dc.resolution, channels=dc.channels,
                             allow_download=dc.download, verify=dc.verify)
        self.channels, res_h, res_w = train.shape
        if res_h != res_w:
            raise TrainingError(f"{dc.name}: images must be square, got {res_h}x{res_w}")
        self.data = train.as_float().to(self.device)  # (N, C, H, W) in [-1, 1], whole set in memory
        self.dataset_name = train.name
        self.model_args = model_args(cfg, self.channels, res_h)
        # Labelled test split, if the data set has one: unsupervised accuracy is logged at every epoch's end.
        self.test = None
        if self.rank == 0 and train.labels is not None and cfg.train.eval_every_epoch:
            try:
                test = load_dataset(dc.name, dc.dir, "test", resolution=dc.resolution, channels=dc.channels,
                                    allow_download=dc.download, verify=dc.verify)
                self.test = (test.as_float().to(self.device), test.labels)
            except Exception as e:  # evaluation is a bonus; never stop training for it
                print(f"no per-epoch evaluation: {e}", flush=True)
        if cfg.train.channels_last:
            self.data = self.data.contiguous(memory_format=torch.channels_last)
        oc = cfg.optim
        if oc.batch_size % self.world:
            raise TrainingError(f"optim.batch_size {oc.batch_size} must divide by the {self.world} processes")
        self.local_batch = oc.batch_size // self.world
        self.steps_per_epoch = len(self.data) // oc.batch_size
        if self.steps_per_epoch < 1:
            raise TrainingError(f"{len(self.data)} images is less than one batch of {oc.batch_size}")
        self.total_steps = max(1, int(round(cfg.train.epochs * self.steps_per_epoch)))
        self.loss = InfoGANLoss(self.spec, lambda_categorical=cfg.loss.lambda_categorical,
                                lambda_continuous=cfg.loss.lambda_continuous,
                                invariance=NuisanceAugment.from_config(cfg.loss.invariance))
        self.selection: dict[str, Any] | None = None  # the label-free restart's scores, once it has run
        self.selecting: dict[str, Any] | None = None  # while it runs: the start in training, the scores so far
        self.commands = [command_line()]  # the command that started the run, then each resume's
        self._build(candidate=0)
        if resume is not None:
            self._restore(resume)

    def _build(self, candidate: int) -> None:
        """Fresh networks, optimizers and latent stream; candidate 0 is the plain run of cfg.train.seed, the
        others (label-free restarts) differ only in their initial weights and latent draws."""
        cfg, oc = self.cfg, self.cfg.optim
        offset = 1_000_003 * candidate
        seed_everything(cfg.train.seed + self.rank + offset)
        self.G, self.D = build_networks(self.spec, **self.model_args)
        self.G.to(self.device)
        self.D.to(self.device)
        if cfg.train.channels_last:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=oc.lr_g, betas=(oc.beta1, oc.beta2), **ADAM_KW)
        # Q's head learns at its own rate, G's by default, as in the reference ports where Q sits in G's optimizer
        # (measured, paper network, 5 seeds x 10 epochs: mean test accuracy 0.77 with Q at D's 2e-4, 0.89 at 1e-3).
        # The trunk and D's head learn at D's rate; all three take the D phase's information loss.
        q_params = list(self.D.q_head.parameters())
        q_ids = {id(p) for p in q_params}
        self.opt_D = torch.optim.Adam(
            [{"params": [p for p in self.D.parameters() if id(p) not in q_ids]},
             {"params": q_params, "lr": oc.lr_q if oc.lr_q is not None else oc.lr_g}],
            lr=oc.lr_d, betas=(oc.beta1, oc.beta2), **ADAM_KW)
        self.step = 0
        # Latents come from their own generator so resuming restores exactly the draws a run would have made.
        self.latent_gen = torch.Generator(device=self.device).manual_seed(cfg.train.seed * 7919 + self.rank + offset)
        self.G_train: torch.nn.Module = DDP(self.G) if self.distributed else self.G
        self.D_train: torch.nn.Module = DDP(self.D) if self.distributed else self.D
        if cfg.train.compile:
            self.G_train = torch.compile(self.G_train)
            self.D_train = torch.compile(self.D_train)

    # ---- state ---------------------------------------------------------------------------------------------
    def _rank_rngs(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Under torchrun, every rank's (latent, torch) generator states, gathered on all ranks (a collective: every
        rank calls it at the same step). Each rank draws its own latents and augmentations, so a resume gives each
        rank its own state back; rank 0's for all would make every rank repeat rank 0's draws."""
        if not self.distributed:
            return None
        states: list[Any] = [None] * self.world
        dist.all_gather_object(states, (self.latent_gen.get_state(), torch.get_rng_state()))
        return states

    def state(self, rank_rngs: list | None = None) -> dict[str, Any]:
        return {
            "format": ckpt_io.FORMAT, "step": self.step, "epoch": self.step / self.steps_per_epoch,
            "spec": self.spec.to_dict(), "model_args": self.model_args, "config": self.cfg.to_dict(),
            "dataset": self.dataset_name,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "latent_rng": self.latent_gen.get_state(), "torch_rng": torch.get_rng_state(), "rank_rngs": rank_rngs,
            "selection": self.selection, "selecting": self.selecting, "precision": self.precision,
            # the command line that started the run and those that resumed it, for the manifest
            "command": self.commands[0], "resumed_by": self.commands[1:],
        }

    def _restore(self, ck: dict[str, Any]) -> None:
        if ck["spec"] != self.spec.to_dict() or ck["model_args"] != self.model_args:
            raise TrainingError("checkpoint's latent spec or model arguments differ from the config; cannot resume")
        self.G.load_state_dict(ck["G"])
        self.D.load_state_dict(ck["D"])
        self.opt_G.load_state_dict(ck["opt_G"])
        self.opt_D.load_state_dict(ck["opt_D"])
        self.step = int(ck["step"])
        self.latent_gen.set_state(ck["latent_rng"])
        torch.set_rng_state(ck["torch_rng"])
        rank_rngs = ck.get("rank_rngs")
        if self.distributed and rank_rngs and len(rank_rngs) == self.world:
            self.latent_gen.set_state(rank_rngs[self.rank][0])
            torch.set_rng_state(rank_rngs[self.rank][1])
        elif self.distributed and self.rank > 0:
            # saved under another number of processes (or by a version without per-rank states): fresh streams per
            # rank, a function of (seed, rank, step), so the ranks do not repeat rank 0's draws
            stream = self.cfg.train.seed * 7919 + self.rank + 7_777_777 * (int(ck["step"]) + 1)
            self.latent_gen.manual_seed(stream)
            torch.manual_seed(stream)
        self.selection = ck.get("selection")
        self.selecting = ck.get("selecting")
        if ck.get("precision", self.precision) != self.precision:
            print(f"note: the run so far trained in {ck['precision']}, this machine continues in {self.precision} "
                  f"({self.precision_reason}); set train.precision to keep one", flush=True)
        self.commands = [ck.get("command") or "?", *ck.get("resumed_by", []), command_line()]

    def save_checkpoint(self) -> None:
        rank_rngs = self._rank_rngs()
        if self.rank == 0:
            ckpt_io.save_atomic(self.state(rank_rngs), self.run_dir / "checkpoint.pt")

    # ---- training ------------------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The epoch's shuffled indices, a pure function of (seed, epoch), so a resumed run sees the same order."""
        g = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data), generator=g)[: self.steps_per_epoch * self.cfg.optim.batch_size]
        return order.view(self.steps_per_epoch, self.world, self.local_batch)[:, self.rank].to(self.device)

    def _autocast(self):
        """Forward passes in bf16 when train.precision resolved to "bf16"; backward runs outside (PyTorch's AMP recipe)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        n = real.shape[0]
        z = self.spec.noise.sample(n, self.latent_gen, self.device)
        c = self.spec.encode(self.spec.sample_values(n, self.latent_gen, self.device))
        with self._autocast():
            fake = self.G_train(z, c)  # one G forward serves both phases
            if self.cfg.train.channels_last:
                fake = fake.contiguous(memory_format=torch.channels_last)
            out_d = self.loss.discriminator_step(self.D_train, real, fake, c)
        self.opt_D.zero_grad(set_to_none=True)
        out_d.loss.backward()
        self.opt_D.step()

        # G phase through the just-updated D; D's weights are frozen so no weight gradients are computed for it.
        self.D.requires_grad_(False)
        with self._autocast():
            out_g = self.loss.generator_step(self.D, fake, c)  # unwrapped D: no DDP sync needed for frozen weights
        self.opt_G.zero_grad(set_to_none=True)
        out_g.loss.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        for phase, out in (("D", out_d), ("G", out_g)):
            if not torch.isfinite(out.loss):
                raise TrainingError(f"non-finite {phase} loss ({out.loss.item()}) at step {self.step}; "
                                    f"stopping. Lower the learning rates or check the data.")
        return {**out_d.stats, **out_g.stats}

    def _calibrated_D(self):
        """A copy of D (training untouched) with BatchNorm statistics re-estimated on 10,000 real training images,
        which is how Q serves real images."""
        import copy

        from .evaluate import recalibrate_batchnorm

        D = copy.deepcopy(self.D)
        recalibrate_batchnorm(D, self.data[:10000])
        return D

    def label_free_score(self, D=None) -> float:
        """I(category; x) in nats of Q's categorical codes on 10,000 real training images (no labels used),
        on a copy of D whose BatchNorm statistics are re-estimated on those images (``D``, if already made)."""
        from .evaluate import label_free_score, predict_codes

        pred = predict_codes(D if D is not None else self._calibrated_D(), self.data[:10000])
        return sum(label_free_score(pred[c.name]["logits"]) for c in self.spec.codes if c.kind == "categorical")

    def _start_path(self, candidate: int) -> Path:
        return self.run_dir / f"start-{candidate}.pt"

    def _remove_start_files(self, keep: int | None = None) -> None:
        if self.rank == 0:
            for p in self.run_dir.glob("start-*.pt"):
                if p != (self._start_path(keep) if keep is not None else None):
                    p.unlink(missing_ok=True)

    def _train_steps(self, end: int, metrics_f, received: list[int], bar, row_extra, *, log_at_end: bool,
                     on_epoch_end=None) -> None:
        """Train from ``self.step`` to ``end``: the step loop shared by the restarts and the main run.

        Logs the mean of each stat every ``log_every`` steps (and at ``end`` if ``log_at_end``) with ``row_extra(
        steps in the row, seconds)`` added, checkpoints every ``checkpoint_every`` steps before ``end`` (both callers
        write one after ``end``: the choice of start, the run's last), and checks for a stop signal before each step,
        so an epoch's ``on_epoch_end`` (samples, test row) is never skipped by a stop."""
        tc = self.cfg.train
        acc: dict[str, float] = {}
        n_acc = 0  # steps in acc: fewer than log_every in the first row after a resume at a signalled step
        t0 = time.perf_counter()
        order_epoch = -1
        while self.step < end:
            if received:
                self.save_checkpoint()
                raise Interrupted(received[0], self.step, self.run_dir)
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = self._epoch_order(epoch), epoch
            for k, v in self.train_step(self.data[order[pos]]).items():
                acc[k] = acc.get(k, 0.0) + float(v)
            self.step += 1
            n_acc += 1
            if bar:  # live: the losses and L_I averaged since the last metrics row, redrawn with the bar
                bar.set_postfix({k.replace("L_I/", "I_"): f"{v / n_acc:.3f}" for k, v in acc.items()
                                 if k.startswith(("L_I", "loss"))}, refresh=False)
            if self.step % tc.log_every == 0 or (log_at_end and self.step == end):
                row = {k: v / n_acc for k, v in acc.items()}
                row.update(step=self.step, **row_extra(n_acc, time.perf_counter() - t0))
                if metrics_f:
                    metrics_f.write(json.dumps(row) + "\n")
                    metrics_f.flush()
                acc, n_acc, t0 = {}, 0, time.perf_counter()
            if bar:
                bar.update(1)
            if self.step % tc.checkpoint_every == 0 and self.step < end:
                self.save_checkpoint()
            if on_epoch_end is not None and self.step % self.steps_per_epoch == 0:
                on_epoch_end()

    def _end_epoch(self, metrics_f) -> None:
        """An epoch's sample grid and, with a test split, its test row (rank 0 only)."""
        if self.rank != 0:
            return
        self.save_samples(self.step // self.steps_per_epoch)
        if self.test is not None:
            row = {"step": self.step, "epoch": self.step / self.steps_per_epoch, **self.evaluate_test()}
            if metrics_f:
                metrics_f.write(json.dumps(row) + "\n")
                metrics_f.flush()
            print(f"\nepoch {row['epoch']:.0f}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                                                          if k.startswith("test")), flush=True)

    def select_start(self, metrics_f, received: list[int]) -> bool:
        """Label-free restarts: train ``candidates`` differently seeded starts for ``candidate_steps`` steps each
        and continue from the one with the highest label-free score.

        Why: the failure that dominates InfoGAN's seed variance on MNIST is two digits sharing one category (and
        one digit split over two), which forms in the first epochs and persists; such a start's Q separates real
        images less well, which the score sees without labels. Costs (candidates - 1) x candidate_steps extra
        steps; the kept start's steps count towards the run's total.

        Crash-safe like the main loop: checkpoint.pt holds the start being trained (``selecting``: its index, the
        finished starts' scores, the best so far), written every checkpoint_every steps and on SIGINT/SIGTERM; the
        best finished start waits in start-<i>.pt until the choice is made. So a kill loses at most the steps since
        the last checkpoint, here too, and a resume continues the same start at the same step.

        Returns False when ``max_steps`` stopped the start being trained (before its ``candidate_steps``): the run
        ends there, as a signal would end it, and a resume continues that start.
        """
        import copy

        tc = self.cfg.train
        n = min(tc.candidate_steps, self.total_steps)
        sel = self.selecting or {"candidate": 0, "scores": [], "best": None}
        scores: list[float] = list(sel["scores"])
        best_i: int | None = sel["best"]
        best_state = ckpt_io.load(self._start_path(best_i)) if best_i is not None else None
        first = sel["candidate"]
        for i in range(first, tc.candidates):
            if self.selecting is None:  # a fresh start (a resumed one already holds its networks and step)
                self._build(candidate=i)
                self.selecting = {"candidate": i, "scores": list(scores), "best": best_i}
                if i > 0:
                    self.save_checkpoint()
                    self._remove_start_files(keep=best_i)
            bar = None
            if self.progress and self.rank == 0:
                from tqdm import tqdm
                bar = tqdm(total=n, initial=self.step, unit="step", dynamic_ncols=True,
                           desc=f"start {i + 1}/{tc.candidates}")
            t0 = time.perf_counter()
            try:
                # the start's own losses and L_I
                stop = n if self.max_steps is None else min(n, self.max_steps)
                self._train_steps(stop, metrics_f, received, bar, lambda n_acc, dt: {"candidate": i}, log_at_end=False)
            finally:
                if bar:
                    bar.close()
            if stop < n:
                return False
            calibrated = self._calibrated_D()
            score = torch.tensor(self.label_free_score(calibrated), dtype=torch.float64)
            if self.distributed:  # every rank keeps rank 0's choice
                dist.broadcast(score, 0)
            scores.append(float(score))
            row: dict[str, Any] = {"step": n, "candidate": i, "label_free": float(score),
                                   "seconds": round(time.perf_counter() - t0, 1)}
            if self.test is not None:  # for the record only; the choice never sees labels
                row.update(self.evaluate_test(calibrated))
            if self.rank == 0:
                print(f"start {i + 1}/{tc.candidates}: label-free score {float(score):.4f} nats after {n} steps "
                      f"({row['seconds']} s this sitting)", flush=True)
                if metrics_f:
                    metrics_f.write(json.dumps(row) + "\n")
                    metrics_f.flush()
            if best_i is None or float(score) > scores[best_i]:
                best_i = i
                if i < tc.candidates - 1:  # the last start, if best, goes on in memory
                    best_state = copy.deepcopy(self.state(self._rank_rngs()))
                    if self.rank == 0:
                        ckpt_io.save_atomic(best_state, self._start_path(i))
            self.selecting = None
        assert best_i is not None
        if best_i != tc.candidates - 1:
            commands = self.commands
            self._restore(best_state)
            self.commands = commands  # the run's command history, not the one saved with that start
        self.selecting = None
        self.selection = {"candidates": tc.candidates, "steps": n, "scores": scores, "kept": best_i}
        if self.rank == 0:
            print(f"kept start {best_i + 1} (label-free score {scores[best_i]:.4f})", flush=True)
            if metrics_f:
                metrics_f.write(json.dumps({"step": n, "kept": best_i}) + "\n")
                metrics_f.flush()
        self.save_checkpoint()
        self._remove_start_files()
        return True

    def run(self) -> Path:
        cfg = self.cfg
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "training_options.json").write_text(dumps(cfg))
            print(f"run folder {self.run_dir}; device {self.device}; precision {self.precision} ({self.precision_reason}); "
                  f"{self.world} process(es); "
                  f"G {count_parameters(self.G):,} / D+Q {count_parameters(self.D):,} parameters; "
                  f"{self.total_steps} steps of {cfg.optim.batch_size} images", flush=True)
        if self.rank == 0 and (self.step > 0 or self.selecting):  # a resume (a later start resumes at its step 0)
            dropped = trim_metrics(self.run_dir / "metrics.jsonl", self.step,
                                   self.selecting["candidate"] if self.selecting else None)
            if dropped:
                print(f"metrics.jsonl: dropped {dropped} line(s) logged after the checkpoint's step {self.step}; "
                      "those steps are logged again", flush=True)
        metrics_f = open(self.run_dir / "metrics.jsonl", "a") if self.rank == 0 else None
        if self.selection is not None:
            self._remove_start_files()  # left by a kill between the choice's checkpoint and their removal
        bar = None
        try:
            with stop_requests(not self.distributed) as received:
                # a checkpoint from before restarts existed has step > 0 and neither key: it is not restarted
                selected = True
                if cfg.train.candidates > 1 and self.selection is None and (self.step == 0 or self.selecting):
                    selected = self.select_start(metrics_f, received)
                if selected:  # else --max-steps ended the run inside a start
                    if self.progress and self.rank == 0:
                        from tqdm import tqdm
                        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)
                    end = self.total_steps if self.max_steps is None else min(self.total_steps, self.max_steps)
                    bs = cfg.optim.batch_size

                    def row_extra(n_acc: int, seconds: float) -> dict[str, float]:
                        return {"epoch": self.step / self.steps_per_epoch, "images_per_s": n_acc * bs / seconds}

                    self._train_steps(end, metrics_f, received, bar, row_extra, log_at_end=True,
                                      on_epoch_end=lambda: self._end_epoch(metrics_f))
            self.save_checkpoint()
        finally:
            if bar:
                bar.close()
            if metrics_f:
                metrics_f.close()
        return self.run_dir / "checkpoint.pt"

    def evaluate_test(self, D=None) -> dict[str, float]:
        """Test-split accuracy/NMI/label-free score per categorical code, on a copy of D with BN recalibrated
        (``D``, if already made)."""
        from .evaluate import evaluate

        D = D if D is not None else self._calibrated_D()
        G = self.G.eval()
        try:
            res = evaluate(G, D, self.test[0], self.test[1])
        finally:
            self.G.train()
        out = {}
        for code in self.spec.codes:
            if code.kind == "categorical":
                r = res[code.name]
                out.update({f"test_acc/{code.name}": r["accuracy"], f"test_nmi/{code.name}": r["nmi"],
                            f"test_lfs/{code.name}": r["label_free_score"]})
        return out

    @torch.no_grad()
    def save_samples(self, epoch: int) -> None:
        z, c = sample_grid_latents(self.spec)
        self.G.eval()
        x = self.G(z.to(self.device), c.to(self.device))
        self.G.train()
        rows = next((code.categories for code in self.spec.codes if code.kind == "categorical"), 8)
        save_png(grid(to_unit(x), rows), self.run_dir / "samples" / f"epoch-{epoch:03d}.png", scale=2)


def train(cfg: Config, *, runs_dir: str | Path = "runs", resume: str | Path | None = None, progress: bool = True,
          max_steps: int | None = None, epochs: float | None = None, threads: int | None = None) -> Path:
    """Train from a config (new numbered run folder) or resume a run folder / checkpoint; returns the checkpoint path.

    ``epochs`` with ``resume`` sets a new length for the run, so a finished run can be trained on: the schedule has
    no decay and the epoch order is a function of (seed, epoch), so 4 epochs then 6 more equals 10 in one go."""
    state = None
    if resume is not None:
        resume = Path(resume)
        ck_path = resume / "checkpoint.pt" if resume.is_dir() else resume
        state = ckpt_io.load(ck_path)
        run_dir = ck_path.parent
        if int(os.environ.get("RANK", "0")) == 0:
            for p in ckpt_io.remove_stale_temps(ck_path):
                print(f"removed {p.name}, left by an interrupted checkpoint write", flush=True)
        conf = dict(state["config"])
        # threads: a setting of the machine, not of the recipe, so a resume may change it; the run then goes on close to,
        # not bit-identical with, the same run on the old count (another count sums in another order)
        if threads is not None:
            conf["train"] = {**conf["train"], "threads": threads}
        cfg = Config.from_dict(conf)  # validates it, threads included
        if epochs is not None:
            if epochs < state["epoch"] - 1e-9:
                raise TrainingError(f"--epochs {epochs} is shorter than the {state['epoch']:.2f} epochs already trained")
            cfg.train.epochs = float(epochs)
    elif int(os.environ.get("RANK", "0")) == 0:
        run_dir = new_run_dir(runs_dir, f"{cfg.name}-s{cfg.train.seed}")
    else:
        run_dir = Path(runs_dir) / "rank-nonzero"  # never written; rank 0 owns the folder
    trainer = Trainer(cfg, run_dir, resume=state, progress=progress, max_steps=max_steps)
    if trainer.distributed:
        # every rank must agree on rank 0's numbered folder
        names = [str(run_dir)]
        dist.broadcast_object_list(names, src=0)
        trainer.run_dir = Path(names[0])
    path = trainer.run()
    if trainer.distributed:
        dist.barrier()
    return path
