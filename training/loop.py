"""The generic training loop: build, step, log, checkpoint (the shape of stylegan3's ``training_loop.py``).

Data lives in memory; each step runs two optimizer phases (``InfoGANLoss`` knows the terms, ``LatentSpec`` the
codes); checkpoints are atomic and a resume continues bit-identically. Around it: ``runtime`` (processes, device,
precision, seeding), ``train_state`` (what a checkpoint holds, restoring and resuming from one), ``restarts`` (the
label-free restarts, a driver over this loop), ``run_dir`` (run folders and the metrics file), ``signals``
(SIGINT/SIGTERM stop a run with a checkpoint) and ``epoch_report`` (sample grids, the test and disentanglement rows).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt_io
from . import epoch_report, machine, train_state
from .augment import NuisanceAugment
from .config import Config, dumps
from .data import as_floats, load_dataset
from .evaluate import EvalData, EvaluationError, load_eval_data
from .loss import CRSchedule, InfoGANLoss
from .networks import build_networks, count_parameters
from .optimizers import build_optimizers
from .restarts import Restarts
from .run_dir import (
    CHECKPOINT_FILE,
    METRICS_FILE,
    OPTIONS_FILE,
    MetricsLog,
    check_runs_root,
    command_line,
    discard_if_untrained,
    new_run_dir,
    run_lock,
)
from .runtime import Runtime, TrainingError, is_rank_zero, seed_everything
from .signals import Interrupted, stop_requests

__all__ = ["Interrupted", "Trainer", "TrainingError", "train"]

# A training set larger than this as float32 stays uint8 in memory and is converted one batch at a time (dSprites:
# 12 GB as floats, 3 GB as bytes); smaller ones (MNIST: 188 MB) are converted once.
FLOAT_DATA_LIMIT = 2 << 30


def cr_schedule(cfg: Config) -> CRSchedule:
    lc = cfg.loss
    return CRSchedule(lc.cr_weight, lc.cr_weight_late, lc.cr_late_from)


def model_args(cfg: Config, channels: int, resolution: int) -> dict[str, Any]:
    args = {"arch": cfg.model.arch, "channels": channels, "resolution": resolution, **cfg.model.widths}
    if cfg.model.noise_scale != 1.0:  # absent = 1, so checkpoints from before the option still resume
        args["noise_scale"] = cfg.model.noise_scale
    if cr_schedule(cfg).used:  # the contrastive regularizer's head on D, one output per code
        args["cr_codes"] = len(cfg.spec.codes)
    return args


def ema_beta(batch_size: int, half_life: float) -> float:
    """The per-step decay of an EMA whose weight halves every ``half_life`` images (train.ema_half_life)."""
    return 0.5 ** (batch_size / half_life)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema's parameters <- beta ema + (1 - beta) model's; its buffers (BatchNorm statistics) <- model's."""
    for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(p.detach(), 1.0 - beta)
    for be, b in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(b)


class Trainer:
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        *,
        resume: dict[str, Any] | None = None,
        progress: bool = True,
        max_steps: int | None = None,
        init_from: tuple[Path, dict[str, Any]] | None = None,
        init_parts: str = "all",
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        # stop when the step reaches this (tests, benchmarks), inside a restart too; the schedule still follows
        # cfg.train.epochs, and a resume goes on from there
        self.max_steps = max_steps
        # a resume or fork (even from a step-0 checkpoint) goes on in a folder whose metrics rows may run past it
        self.resumed = resume is not None
        tc = cfg.train
        self.runtime = rt = Runtime.start(tc.device, tc.precision, tc.threads, tc.seed)
        self.distributed, self.rank, self.world, self.device = rt.distributed, rt.rank, rt.world, rt.device
        self.precision = rt.precision

        self.spec = cfg.spec
        dc = cfg.data
        train = load_dataset(
            dc.name,
            dc.dir,
            "train",
            resolution=dc.resolution,
            channels=dc.channels,
            allow_download=dc.download,
            verify=dc.verify,
        )
        self.channels, res_h, res_w = train.shape
        if res_h != res_w:
            raise TrainingError(f"{dc.name}: images must be square, got {res_h}x{res_w}")
        if (self.channels, res_h) != (dc.channels, dc.resolution):
            # only a folder data set is resized to the config; the others have their own size, and a config that
            # says otherwise would be saved with the run and its exports as if it had been used
            raise TrainingError(
                f"{dc.name}: its images are {res_h}x{res_w} with {self.channels} channel(s), but the config says "
                f"data.resolution = {dc.resolution}, data.channels = {dc.channels}; set them to {res_h} and "
                f"{self.channels}"
            )
        # (N, C, H, W) in [-1, 1] (or uint8, see FLOAT_DATA_LIMIT), whole set in memory
        small = train.images.numel() * 4 <= FLOAT_DATA_LIMIT
        self.data = (train.as_float() if small else train.images).to(self.device)
        # ground-truth factors (dSprites): disentanglement metrics every train.metrics_every images
        self.factor_set = train if train.factors is not None and tc.metrics_every and self.rank == 0 else None
        self.dataset_name = train.name
        self.model_args = model_args(cfg, self.channels, res_h)
        # The data set's evaluation split (test; chairs3d: its one, labelled train split), if labelled: unsupervised
        # accuracy is logged at every epoch's end (rows test_acc/<code> whichever split it is).
        self.eval_data = None
        if self.rank == 0 and train.labels is not None and tc.eval_every_epoch:
            try:
                data = load_eval_data(dataclasses.asdict(dc), dc.dir)
                # the factor metrics keep their own schedule (train.metrics_every): evaluate_model would add the full
                # disentanglement metrics (minutes) to every epoch's row of a set with factors (chairs3d)
                eval_set = dataclasses.replace(data.eval, factors=None, factor_names=None)
                self.eval_data = EvalData(data.train, eval_set, data.split)
            except EvaluationError as e:  # evaluation is a bonus; never stop training for it, but say so
                print(f"no per-epoch evaluation: {e}", flush=True)
        oc = cfg.optim
        if oc.batch_size % self.world:
            raise TrainingError(f"optim.batch_size {oc.batch_size} must divide by the {self.world} processes")
        self.local_batch = oc.batch_size // self.world
        self.steps_per_epoch = len(self.data) // oc.batch_size
        if self.steps_per_epoch < 1:
            raise TrainingError(f"{len(self.data)} images is less than one batch of {oc.batch_size}")
        self.total_steps = max(1, int(round(tc.epochs * self.steps_per_epoch)))
        self.loss = InfoGANLoss(
            self.spec,
            lambda_categorical=cfg.loss.lambda_categorical,
            lambda_continuous=cfg.loss.lambda_continuous,
            invariance=NuisanceAugment.from_config(cfg.loss.invariance),
            lambda_real=cfg.loss.lambda_real,
            lambda_real_pair=cfg.loss.lambda_real_pair,
        )
        self.cr = cr_schedule(cfg)
        self.restarts = Restarts(tc.restarts, tc.restart_steps)
        self.commands = [command_line()]  # the command that started the run, then each resume's
        self.machines = [machine.describe(self.device)]  # and the machine each one ran on
        self.init_from: dict[str, Any] | None = None  # train_state.init_from's record of the run this one started from
        # the metrics row in progress at a checkpoint inside train_until ({"sums", "steps", "seconds"}), else None
        self.log_window: dict[str, Any] | None = None
        self.build(restart=0)
        if init_from is not None:
            train_state.init_from(self, init_from, init_parts)
        if resume is not None:
            train_state.restore(self, resume)
            self.restarts.load_state_dict(resume)
            note = self.restarts.check_length(self.total_steps, self.steps_per_epoch)
            if note and self.rank == 0:
                print(note, flush=True)

    # ---- build ---------------------------------------------------------------------------------------------
    def build(self, restart: int) -> None:
        """Fresh networks, optimizers and latent stream; restart 0 is the plain run of cfg.train.seed, the
        others (label-free restarts) differ only in their initial weights and latent draws."""
        cfg = self.cfg
        offset = 1_000_003 * restart
        seed_everything(cfg.train.seed + self.rank + offset)
        self.G, self.D = build_networks(self.spec, **self.model_args)
        self.G.to(self.device)
        self.D.to(self.device)
        # train.ema_half_life: a moving average of G's weights for drawing images, never trained through
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.train.ema_half_life else None
        self.opt_G, self.opt_D = build_optimizers(self.G, self.D, cfg.optim)
        self.step = 0
        # Latents come from their own generator so resuming restores exactly the draws a run would have made.
        self.latent_gen = torch.Generator(device=self.device).manual_seed(cfg.train.seed * 7919 + self.rank + offset)
        self.G_train = self.runtime.wrap(self.G)
        self.D_train = self.runtime.wrap(self.D)

    @property
    def drawing_G(self) -> nn.Module:
        """The generator that draws images (samples, evaluation): G_ema when train.ema_half_life is set, else G."""
        return self.G_ema if self.G_ema is not None else self.G

    # ---- step ----------------------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The epoch's shuffled indices, a pure function of (seed, epoch), so a resumed run sees the same order."""
        g = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data), generator=g)[: self.steps_per_epoch * self.cfg.optim.batch_size]
        return order.view(self.steps_per_epoch, self.world, self.local_batch)[:, self.rank].to(self.device)

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        real = as_floats(real)  # a large set is kept as bytes (FLOAT_DATA_LIMIT)
        n = real.shape[0]
        z = self.spec.noise.sample(n, self.latent_gen, self.device)
        c = self.spec.encode(self.spec.sample_values(n, self.latent_gen, self.device))
        # the CR term's weight at the images seen before this step; 0: no pairs, the head untouched (loss.CRSchedule)
        cr_weight = self.cr.weight(self.step * self.cfg.optim.batch_size)
        if hasattr(self.G.body, "set_images"):  # a body with a schedule over the images seen (style_fade)
            self.G.body.set_images(self.step * self.cfg.optim.batch_size)
        pair_latents = (
            self.spec.shared_code_pairs(n, self.latent_gen, self.device, self.cfg.loss.cr_differ)
            if cr_weight > 0
            else None
        )

        def generate():
            """G's images with their graph: the batch, and the CR pairs stacked on channels (None without CR)."""
            fake = self.G_train(z, c)
            if pair_latents is None:
                return fake, None
            zp, c1, c2, _ = pair_latents  # separate G passes, each its own BatchNorm statistics, as InfoGAN-CR
            return fake, torch.cat([self.G_train(zp, c1), self.G_train(zp, c2)], dim=1)

        shared = None if pair_latents is None else pair_latents[3]
        with self.runtime.autocast():
            fake, pair = generate()  # one G forward serves both phases
            out_d = self.loss.discriminator_step(self.D_train, real, fake, c, pair, shared)
        self.opt_D.zero_grad(set_to_none=True)
        out_d.loss.backward()
        self.opt_D.step()

        # G phase through the just-updated D; D's weights are frozen so no weight gradients are computed for it.
        # optim.g_steps > 1: more G updates on the same latents, each through a fresh G forward (InfoGAN-CR: 2).
        self.D.requires_grad_(False)
        for i in range(self.cfg.optim.g_steps):
            with self.runtime.autocast():
                if i:
                    fake, pair = generate()
                # unwrapped D: no DDP sync needed for frozen weights
                out_g = self.loss.generator_step(self.D, fake, c, pair, shared, cr_weight)
            self.opt_G.zero_grad(set_to_none=True)
            out_g.loss.backward()
            self.opt_G.step()
        self.D.requires_grad_(True)
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, ema_beta(self.cfg.optim.batch_size, self.cfg.train.ema_half_life))

        for phase, out in (("D", out_d), ("G", out_g)):
            if not torch.isfinite(out.loss):
                raise TrainingError(
                    f"non-finite {phase} loss ({out.loss.item()}) at step {self.step}; "
                    f"stopping. Lower the learning rates or check the data."
                )
        return {**out_d.stats, **out_g.stats}

    def train_until(
        self, end: int, log: MetricsLog, received: list[int], bar, row_extra, *, log_at_end: bool, on_epoch_end=None
    ) -> None:
        """Train from ``self.step`` to ``end``: the step loop shared by the restarts and the main run.

        Logs the mean of each stat every ``log_every`` steps (and at ``end`` if ``log_at_end``) with ``row_extra(
        steps in the row, seconds)`` added, checkpoints every ``checkpoint_every`` steps before ``end`` (both callers
        write one after ``end``: the choice of restart, the run's last), and checks for a stop signal before each
        step, so an epoch's ``on_epoch_end`` (samples, test row) is never skipped by a stop."""
        tc = self.cfg.train
        # the row in progress goes on from the checkpoint's (``log_window``): a resume at a step between two rows (a
        # signalled stop, a checkpoint_every that log_every does not divide) logs each row over the same steps, with
        # the same values, as a run never stopped, where its first row averaged only the steps after the checkpoint
        window = self.log_window or {"sums": {}, "steps": 0, "seconds": 0.0}
        self.log_window = None
        acc: dict[str, float] = dict(window["sums"])
        n_acc = window["steps"]  # steps in acc
        t0 = time.perf_counter() - window["seconds"]  # images_per_s over the row's steps, before the resume too
        order_epoch = -1

        def checkpoint() -> None:
            self.log_window = {"sums": dict(acc), "steps": n_acc, "seconds": time.perf_counter() - t0}
            try:
                train_state.save_checkpoint(self)
            finally:
                self.log_window = None  # a checkpoint outside this loop is at a row's end

        while self.step < end:
            if received:
                checkpoint()
                raise Interrupted(received[0], self.step, self.run_dir)
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = self._epoch_order(epoch), epoch
            for k, v in self.train_step(self.data[order[pos]]).items():
                acc[k] = acc.get(k, 0.0) + float(v)
            self.step += 1
            n_acc += 1
            if bar:  # live: the losses and L_I averaged since the last metrics row, redrawn with the bar
                bar.set_postfix(
                    {
                        k.replace("L_I/", "I_"): f"{v / n_acc:.3f}"
                        for k, v in acc.items()
                        if k.startswith(("L_I", "loss"))
                    },
                    refresh=False,
                )
            if self.step % tc.log_every == 0 or (log_at_end and self.step == end):
                row = {k: v / n_acc for k, v in acc.items()}
                row.update(step=self.step, **row_extra(n_acc, time.perf_counter() - t0))
                log.write(row)
                acc, n_acc, t0 = {}, 0, time.perf_counter()
            if bar:
                bar.update(1)
            if on_epoch_end is not None and self.step % self.steps_per_epoch == 0:
                on_epoch_end()
            if epoch_report.factor_metrics_due(self):
                t_metrics = time.perf_counter()
                epoch_report.log_factor_metrics(self, log)
                t0 += time.perf_counter() - t_metrics  # images_per_s counts training time only
            # after the step's epoch report and metrics row (their own seeded streams: the run's draws are the
            # same either way): a kill during that work, minutes on the chairs, resumes from the checkpoint before
            # and logs the row again; saved first, the row of that step was lost for good
            if self.step % tc.checkpoint_every == 0 and self.step < end:
                checkpoint()

    # ---- log -----------------------------------------------------------------------------------------------
    def progress_bar(self, total: int, desc: str | None = None):
        if not (self.progress and self.rank == 0):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, desc=desc)

    # ---- the run -------------------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg = self.cfg
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            # atomically: a resume rewrites it, and a kill during a plain write left the folder's options torn or empty
            options = dumps(cfg).encode("utf-8")
            ckpt_io.write_atomic(self.run_dir / OPTIONS_FILE, lambda f: f.write(options))
            print(
                f"run folder {self.run_dir}; device {self.device}; precision {self.precision} "
                f"({self.runtime.precision_reason}); {self.world} process(es); "
                f"G {count_parameters(self.G):,} / D+Q {count_parameters(self.D):,} parameters; "
                f"{self.total_steps} steps of {cfg.optim.batch_size} images",
                flush=True,
            )
        if self.rank == 0:
            train_state.tidy_run_dir(self)
        bar = None
        with MetricsLog(self.run_dir / METRICS_FILE if self.rank == 0 else None) as log:
            try:
                with stop_requests(not self.distributed) as received:
                    chosen = True
                    if self.restarts.pending(self.step):
                        chosen = self.restarts.run(self, log, received)  # checkpoints each restart's step 0
                    elif not self.resumed:
                        # a step-0 checkpoint before the first step: a new run killed before its first periodic
                        # checkpoint (train.checkpoint_every: 200 steps in mnist) is resumed like any other, where it
                        # left a folder that --resume refused ("no checkpoint") and a new run had to start over
                        train_state.save_checkpoint(self)
                    if chosen:  # else --max-steps ended the run inside a restart
                        bar = self.progress_bar(self.total_steps)
                        end = self.total_steps if self.max_steps is None else min(self.total_steps, self.max_steps)
                        bs = cfg.optim.batch_size

                        def row_extra(n_acc: int, seconds: float) -> dict[str, float]:
                            return {"epoch": self.step / self.steps_per_epoch, "images_per_s": n_acc * bs / seconds}

                        self.train_until(
                            end,
                            log,
                            received,
                            bar,
                            row_extra,
                            log_at_end=True,
                            on_epoch_end=lambda: epoch_report.end_epoch(self, log),
                        )
                    # still inside stop_requests: a Ctrl-C or SIGTERM during this write (the steps since the last
                    # periodic checkpoint, or the whole of a short run) waits for it, where it tore the write off and
                    # lost them; the run is done, so the signal stops nothing more
                    train_state.save_checkpoint(self)
            finally:
                if bar:
                    bar.close()
        return self.run_dir / CHECKPOINT_FILE


def train(
    cfg: Config,
    *,
    runs_dir: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
    max_steps: int | None = None,
    epochs: float | None = None,
    threads: int | None = None,
    device: str | None = None,
    fork: str | Path | None = None,
    overrides: list[str] | None = None,
    init_from: str | Path | None = None,
    init_parts: str = "all",
    data_dir: str | Path | None = None,
) -> Path:
    """Train from a config (new numbered run folder) or resume a run folder / checkpoint; returns the checkpoint path.

    With ``resume``, ``cfg`` is ignored (the checkpoint's config is used) and ``epochs`` / ``threads`` / ``device`` /
    ``data_dir`` change it;
    ``fork`` continues a copy in a new folder with ``overrides`` applied (``train_state.load_for_resume``).
    ``init_from``: a new run starts from that run's trained weights (``train_state.init_from``; ``init_parts``
    "D" / "D-categorical": its discriminator and Q only)."""
    if init_from is not None and resume is not None:
        raise TrainingError("--init-from starts a new run from another's weights; a resume already has its own")
    # the run folder's lock (run_dir.run_lock) is held until this returns or raises
    with contextlib.ExitStack() as held:
        ck_file = None if resume is None else ckpt_io.checkpoint_path(resume)
        folder = None if ck_file is None else ck_file.parent
        # no checkpoint (an empty folder, a mistyped name): load_for_resume says so, and no .lock file is left there
        if ck_file is not None and ck_file.is_file() and fork is None and is_rank_zero():
            # before load_for_resume clears stale temporary files: one may be a live run's checkpoint being written
            held.enter_context(run_lock(folder))
        state = None
        source = None if init_from is None else train_state.read_init_source(init_from, cfg)
        if resume is not None:
            state, cfg, run_dir = train_state.load_for_resume(
                resume, epochs=epochs, data_dir=data_dir, threads=threads, device=device, fork=fork, overrides=overrides
            )
            if max_steps is not None and max_steps < int(state["step"]):  # it counts from the run's start; equal:
                # a checkpoint at the same step (a setting switched on at a resume, such as the weight average)
                raise TrainingError(f"--max-steps {max_steps} is below the run's step {int(state['step']):,}")
        else:
            run_dir = None
            if is_rank_zero():
                check_runs_root(runs_dir)  # before the data loads: an unwritable --runs-dir fails at once
        # a new run's numbered folder is made only once the data loaded and the networks were built, so a start that
        # fails there (bad data folder, a config value only the data can check) leaves no empty folder behind
        trainer = Trainer(
            cfg,
            run_dir or Path(runs_dir) / "not-yet-numbered",
            resume=state,
            progress=progress,
            max_steps=max_steps,
            init_from=source,
            init_parts=init_parts,
        )
        if fork is not None and resume is not None and is_rank_zero():
            # only now: a fork that could not start leaves no folder; locked before anything is written, so a second
            # fork into the same new folder is refused before it overwrites the first's checkpoint and metrics
            run_dir.mkdir(parents=True, exist_ok=True)
            held.enter_context(run_lock(run_dir))
            train_state.write_fork(state, resume, run_dir)
        if run_dir is None:
            run_dir = (
                new_run_dir(runs_dir, f"{cfg.name}-s{cfg.train.seed}")
                if is_rank_zero()
                else Path(runs_dir) / "rank-nonzero"
            )  # never written; rank 0 owns the folder
            if is_rank_zero():
                held.enter_context(run_lock(run_dir))  # a resume started while this run trains is refused
        trainer.run_dir = trainer.runtime.agree_on_path(run_dir)  # every rank must agree on rank 0's numbered folder
        try:
            path = trainer.run()
        except BaseException as e:
            if state is None and is_rank_zero() and not isinstance(e, Interrupted):
                # failed before anything was trained (its checkpoint, if any, the one at step 0): no empty run folder;
                # a stop signal keeps it, as its message says how to resume it
                discard_if_untrained(trainer.run_dir, untrained_checkpoint=trainer.step == 0)
            raise
        trainer.runtime.close()
        return path
