"""The generic training loop: build, step, log, checkpoint (the shape of stylegan3's ``training_loop.py``).

Data lives in memory; each step runs two optimizer phases (``InfoGANLoss`` knows the terms, ``LatentSpec`` the
codes); checkpoints are atomic and a resume continues bit-identically. Around it: ``runtime`` (processes, device,
precision, seeding), ``restarts`` (the label-free restarts, a driver over this loop), ``run_dir`` (run folders and the
metrics file), ``signals`` (SIGINT/SIGTERM stop a run with a checkpoint) and ``evaluate`` (the per-epoch test row).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from . import checkpoint as ckpt_io
from .augment import NuisanceAugment
from .config import Config, dumps
from .data import load_dataset
from .evaluate import EvalData, EvaluationError, calibrated_copy, evaluate_model, factor_metrics, load_eval_data
from .images import grid, save_png, to_unit
from .latent import LatentSpec
from .loss import CRSchedule, InfoGANLoss
from .networks import build_networks, count_parameters
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
    trim_metrics,
)
from .runtime import Runtime, TrainingError, is_rank_zero, seed_everything
from .signals import Interrupted, stop_requests

__all__ = ["Interrupted", "Trainer", "TrainingError", "sample_grid_latents", "train"]

# One fused kernel per parameter group instead of ~10 elementwise passes per tensor: ~10% faster steps on the
# paper's 13 M-parameter MNIST pair on a 2-core CPU (benchmarks/train_throughput.py).
ADAM_KW = {"fused": True}
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


def sample_grid_latents(spec: LatentSpec, n_cols: int = 10, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents for the per-epoch sample grid in the paper's layout (Fig. 2): one row per value of the first
    categorical code (8 rows without one), the first continuous code swept over its prior range left to right, all
    else fixed."""
    g = torch.Generator().manual_seed(seed)
    cat = next(iter(spec.categorical_codes()), None)
    cont = next(iter(spec.continuous_codes()), None)
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
    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        *,
        resume: dict[str, Any] | None = None,
        progress: bool = True,
        max_steps: int | None = None,
    ):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress
        # stop when the step reaches this (tests, benchmarks), inside a restart too; the schedule still follows
        # cfg.train.epochs, and a resume goes on from there
        self.max_steps = max_steps
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
        )
        self.cr = cr_schedule(cfg)
        self.restarts = Restarts(tc.restarts, tc.restart_steps)
        self.commands = [command_line()]  # the command that started the run, then each resume's
        self.build(restart=0)
        if resume is not None:
            self.restore(resume)
            self.restarts.load_state_dict(resume)

    # ---- build ---------------------------------------------------------------------------------------------
    def build(self, restart: int) -> None:
        """Fresh networks, optimizers and latent stream; restart 0 is the plain run of cfg.train.seed, the
        others (label-free restarts) differ only in their initial weights and latent draws."""
        cfg, oc = self.cfg, self.cfg.optim
        offset = 1_000_003 * restart
        seed_everything(cfg.train.seed + self.rank + offset)
        self.G, self.D = build_networks(self.spec, **self.model_args)
        self.G.to(self.device)
        self.D.to(self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=oc.lr_g, betas=(oc.beta1, oc.beta2), **ADAM_KW)
        # Q's head learns at its own rate, G's by default, as in the reference ports where Q sits in G's optimizer
        # (measured, paper network, 5 seeds x 10 epochs: mean test accuracy 0.77 with Q at D's 2e-4, 0.89 at 1e-3).
        # The trunk and D's head learn at D's rate; all three take the D phase's information loss.
        q_params = list(self.D.q_head.parameters())
        # the CR head (InfoGAN-CR's crd_op, its own Adam at crd_lr): only its own cross-entropy reaches it
        cr_params = list(self.D.cr_head.parameters()) if self.D.cr_head is not None else []
        own = {id(p) for p in q_params + cr_params}
        groups = [
            {"params": [p for p in self.D.parameters() if id(p) not in own]},
            {"params": q_params, "lr": oc.lr_q if oc.lr_q is not None else oc.lr_g},
        ]
        if cr_params:
            groups.append({"params": cr_params, "lr": oc.lr_cr if oc.lr_cr is not None else oc.lr_d})
        self.opt_D = torch.optim.Adam(groups, lr=oc.lr_d, betas=(oc.beta1, oc.beta2), **ADAM_KW)
        self.step = 0
        # Latents come from their own generator so resuming restores exactly the draws a run would have made.
        self.latent_gen = torch.Generator(device=self.device).manual_seed(cfg.train.seed * 7919 + self.rank + offset)
        self.G_train = self.runtime.wrap(self.G)
        self.D_train = self.runtime.wrap(self.D)

    # ---- checkpoint ----------------------------------------------------------------------------------------
    def state(self, rank_rngs: list | None = None) -> dict[str, Any]:
        return {
            "format": ckpt_io.FORMAT,
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "spec": self.spec.to_dict(),
            "model_args": self.model_args,
            "config": self.cfg.to_dict(),
            "dataset": self.dataset_name,
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "latent_rng": self.latent_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "rank_rngs": rank_rngs,
            **self.restarts.state_dict(),
            "precision": self.precision,
            # the command line that started the run and those that resumed it, for the manifest
            "command": self.commands[0],
            "resumed_by": self.commands[1:],
        }

    def restore(self, ck: dict[str, Any]) -> None:
        """Networks, optimizers, step and random streams from a checkpoint (the restarts' state is theirs)."""
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
        if ck.get("precision", self.precision) != self.precision:
            print(
                f"note: the run so far trained in {ck['precision']}, this machine continues in {self.precision} "
                f"({self.runtime.precision_reason}); set train.precision to keep one",
                flush=True,
            )
        self.commands = [ck.get("command") or "?", *ck.get("resumed_by", []), command_line()]

    def save_checkpoint(self) -> None:
        rank_rngs = self.runtime.gather_rngs(self.latent_gen)  # a collective: every rank calls it
        if self.rank == 0:
            ckpt_io.save_atomic(self.state(rank_rngs), self.run_dir / CHECKPOINT_FILE)

    # ---- step ----------------------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The epoch's shuffled indices, a pure function of (seed, epoch), so a resumed run sees the same order."""
        g = torch.Generator().manual_seed(self.cfg.train.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data), generator=g)[: self.steps_per_epoch * self.cfg.optim.batch_size]
        return order.view(self.steps_per_epoch, self.world, self.local_batch)[:, self.rank].to(self.device)

    def train_step(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        if real.dtype == torch.uint8:  # a large set kept as bytes (FLOAT_DATA_LIMIT)
            real = real.float().div_(127.5).sub_(1.0)
        n = real.shape[0]
        z = self.spec.noise.sample(n, self.latent_gen, self.device)
        c = self.spec.encode(self.spec.sample_values(n, self.latent_gen, self.device))
        # the CR term's weight at the images seen before this step; 0: no pairs, the head untouched (loss.CRSchedule)
        cr_weight = self.cr.weight(self.step * self.cfg.optim.batch_size)
        pair_latents = self.spec.shared_code_pairs(n, self.latent_gen, self.device) if cr_weight > 0 else None

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
            if self.step % tc.checkpoint_every == 0 and self.step < end:
                self.save_checkpoint()
            if on_epoch_end is not None and self.step % self.steps_per_epoch == 0:
                on_epoch_end()
            every = tc.metrics_every
            bs = self.cfg.optim.batch_size
            if self.factor_set is not None and every and self.step * bs // every != (self.step - 1) * bs // every:
                t_metrics = time.perf_counter()
                self.log_factor_metrics(log)
                t0 += time.perf_counter() - t_metrics  # images_per_s counts training time only

    # ---- log -----------------------------------------------------------------------------------------------
    def progress_bar(self, total: int, desc: str | None = None):
        if not (self.progress and self.rank == 0):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, desc=desc)

    def _end_epoch(self, log: MetricsLog) -> None:
        """An epoch's sample grid and, with a test split, its test row (rank 0 only)."""
        if self.rank != 0:
            return
        self.save_samples(self.step // self.steps_per_epoch)
        if self.eval_data is not None:
            row = {"step": self.step, "epoch": self.step / self.steps_per_epoch, **self.evaluate_test()}
            log.write(row)
            print(
                f"\nepoch {row['epoch']:.0f}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("test")),
                flush=True,
            )

    def evaluate_test(self) -> dict[str, float]:
        """Test-split accuracy, NMI and label-free score per categorical code (``evaluate_model``: on a copy of D
        with BatchNorm recalibrated on training images; training is untouched)."""
        try:
            res = evaluate_model(self.G.eval(), self.D, self.eval_data)
        finally:
            self.G.train()
            self.D.train()
        out = {}
        for code in self.spec.categorical_codes():
            r = res[code.name]
            out.update(
                {
                    f"test_acc/{code.name}": r["accuracy"],
                    f"test_nmi/{code.name}": r["nmi"],
                    f"test_lfs/{code.name}": r["label_free_score"],
                }
            )
        return out

    def log_factor_metrics(self, log: MetricsLog) -> dict[str, Any]:
        """The disentanglement metrics (train.metrics_sizes) of Q on the training set's factors, as a metrics.jsonl
        row ``dis/...`` against images seen; rank 0 only. Seeded by the step, so a resume logs the same figures."""
        t0 = time.perf_counter()
        D = calibrated_copy(self.D, EvalData(self.factor_set, self.factor_set, "train"))
        r = factor_metrics(D, self.factor_set, seed=self.step, **self.cfg.train.metrics_sizes)
        row: dict[str, Any] = {
            "step": self.step,
            "images": self.step * self.cfg.optim.batch_size,
            "epoch": self.step / self.steps_per_epoch,
            "dis/factor_vae": r["factor_vae"]["score"],
            "dis/mig": r["mig"]["score"],
        }
        row.update({f"dis/mig/{k}": v for k, v in r["mig"]["per_factor"].items()})
        if "dci" in r:
            row.update(
                {f"dis/dci_{k}": r["dci"][k] for k in ("disentanglement", "completeness", "informativeness_test")}
            )
        if "sap" in r:
            row["dis/sap"] = r["sap"]["score"]
        row["dis/best_factor"] = {c: v["factor"] for c, v in r["best_factor"].items()}
        row["dis/seconds"] = time.perf_counter() - t0
        log.write(row)
        return row

    @torch.no_grad()
    def save_samples(self, epoch: int) -> None:
        z, c = sample_grid_latents(self.spec)
        self.G.eval()
        x = self.G(z.to(self.device), c.to(self.device))
        self.G.train()
        rows = len(x) // 10  # sample_grid_latents' 10 columns
        save_png(grid(to_unit(x), rows), self.run_dir / "samples" / f"epoch-{epoch:03d}.png", scale=2)

    # ---- the run -------------------------------------------------------------------------------------------
    def run(self) -> Path:
        cfg = self.cfg
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / OPTIONS_FILE).write_text(dumps(cfg))
            print(
                f"run folder {self.run_dir}; device {self.device}; precision {self.precision} "
                f"({self.runtime.precision_reason}); {self.world} process(es); "
                f"G {count_parameters(self.G):,} / D+Q {count_parameters(self.D):,} parameters; "
                f"{self.total_steps} steps of {cfg.optim.batch_size} images",
                flush=True,
            )
        restart = self.restarts.current()
        if self.rank == 0 and (self.step > 0 or restart is not None):  # a resume (a later restart resumes at step 0)
            dropped = trim_metrics(self.run_dir / METRICS_FILE, self.step, restart)
            if dropped:
                print(
                    f"metrics.jsonl: dropped {dropped} line(s) logged after the checkpoint's step {self.step}; "
                    "those steps are logged again",
                    flush=True,
                )
        if self.rank == 0 and self.restarts.record is not None:
            self.restarts.remove_files(self.run_dir)  # left by a kill between the choice's checkpoint and removal
        bar = None
        with MetricsLog(self.run_dir / METRICS_FILE if self.rank == 0 else None) as log:
            try:
                with stop_requests(not self.distributed) as received:
                    chosen = True
                    if self.restarts.pending(self.step):
                        chosen = self.restarts.run(self, log, received)
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
                            on_epoch_end=lambda: self._end_epoch(log),
                        )
                self.save_checkpoint()
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
) -> Path:
    """Train from a config (new numbered run folder) or resume a run folder / checkpoint; returns the checkpoint path.

    ``epochs`` with ``resume`` sets a new length for the run, so a finished run can be trained on: the schedule has
    no decay and the epoch order is a function of (seed, epoch), so 4 epochs then 6 more equals 10 in one go."""
    state = None
    if resume is not None:
        resume = Path(resume)
        ck_path = resume / CHECKPOINT_FILE if resume.is_dir() else resume
        state = ckpt_io.load(ck_path)
        run_dir = ck_path.parent
        if is_rank_zero():
            for p in ckpt_io.remove_stale_temps(ck_path):
                print(f"removed {p.name}, left by an interrupted checkpoint write", flush=True)
        conf = dict(state["config"])
        # threads: a setting of the machine, not of the recipe, so a resume may change it; the run then goes on close
        # to, not bit-identical with, the same run on the old count (another count sums in another order)
        if threads is not None:
            conf["train"] = {**conf["train"], "threads": threads}
        cfg = Config.from_dict(conf)  # validates it, threads included; old keys of the config are read too
        if epochs is not None:
            if epochs < state["epoch"] - 1e-9:
                raise TrainingError(
                    f"--epochs {epochs} is shorter than the {state['epoch']:.2f} epochs already trained"
                )
            cfg.train.epochs = float(epochs)
    else:
        run_dir = None
        if is_rank_zero():
            check_runs_root(runs_dir)  # before the data loads: an unwritable --runs-dir fails at once
    # a new run's numbered folder is made only once the data loaded and the networks were built, so a start that
    # fails there (bad data folder, a config value only the data can check) leaves no empty folder behind
    trainer = Trainer(
        cfg, run_dir or Path(runs_dir) / "not-yet-numbered", resume=state, progress=progress, max_steps=max_steps
    )
    if run_dir is None:
        run_dir = (
            new_run_dir(runs_dir, f"{cfg.name}-s{cfg.train.seed}")
            if is_rank_zero()
            else Path(runs_dir) / "rank-nonzero"
        )  # never written; rank 0 owns the folder
    trainer.run_dir = trainer.runtime.agree_on_path(run_dir)  # every rank must agree on rank 0's numbered folder
    try:
        path = trainer.run()
    except BaseException:
        if state is None and is_rank_zero():
            discard_if_untrained(trainer.run_dir)  # failed before anything was trained: no empty run folder
        raise
    trainer.runtime.barrier()
    return path
