"""A training run's checkpoint: what it holds, writing it, restoring a ``Trainer`` from it and reading it back for a
resume (the file format itself, atomic writes and torn-file checks are ``checkpoint``'s).

A resume must continue bit-identically, so the state holds everything the next step depends on: weights, optimizer
moments, the step, the latent stream and torch's RNG (per rank under DDP), beside what rebuilds the networks alone
(spec, model arguments, config) and the run's history (restarts, precision, command lines).
"""

from __future__ import annotations

import copy
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import checkpoint as ckpt_io
from . import machine
from .config import Config, apply_override, split_override
from .run_dir import CHECKPOINT_FILE, LOCK_FILE, METRICS_FILE, OPTIONS_FILE, command_line, trim_metrics
from .runtime import TrainingError, is_rank_zero

if TYPE_CHECKING:
    from .loop import Trainer


def state(t: Trainer, rank_rngs: list | None = None) -> dict[str, Any]:
    """The checkpoint dict of ``t`` now; ``rank_rngs``: every rank's (latent, torch) RNG states, from
    ``Runtime.gather_rngs`` (None: one process)."""
    return {
        "format": ckpt_io.FORMAT,
        "step": t.step,
        "epoch": t.step / t.steps_per_epoch,
        "spec": t.spec.to_dict(),
        "model_args": t.model_args,
        "config": t.cfg.to_dict(),
        "dataset": t.dataset_name,
        "G": t.G.state_dict(),
        # train.ema_half_life: the moving average that draws images (checkpoint.load_networks returns it as G)
        "G_ema": None if t.G_ema is None else t.G_ema.state_dict(),
        "D": t.D.state_dict(),
        "opt_G": t.opt_G.state_dict(),
        "opt_D": t.opt_D.state_dict(),
        "latent_rng": t.latent_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "rank_rngs": rank_rngs,
        **t.restarts.state_dict(),
        "precision": t.precision,
        # the command line that started the run and those that resumed it, for the manifest
        "command": t.commands[0],
        "resumed_by": t.commands[1:],
        # the machine of each of those commands, in the same order (training.machine.describe; a run begun before
        # machines were recorded has fewer entries than commands: they are the last ones)
        "machines": t.machines,
        # the run whose trained weights this one started from (train --init-from), with that run's own lineage
        "init_from": t.init_from,
        # the metrics row in progress (Trainer.train_until), so a resume logs it over the same steps
        "log_window": t.log_window,
    }


def load_weights(t: Trainer, ck: dict[str, Any]) -> None:
    """G (and G_ema), D and both optimizers' moments of ``t`` from a checkpoint: what a resume and --init-from share."""
    t.G.load_state_dict(ck["G"])
    if t.G_ema is not None:  # a run that had no EMA before this resume starts it from G
        t.G_ema.load_state_dict(ck.get("G_ema") or ck["G"])
    t.D.load_state_dict(ck["D"])
    load_optimizer(t.opt_G, ck["opt_G"])
    load_optimizer(t.opt_D, ck["opt_D"])


def load_optimizer(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Adam's moments from a checkpoint, its rates and betas from this run's config: load_state_dict brings back the
    saved lr/betas too, so a fork (or --init-from) with new optim.lr_* kept training at the old ones. Nothing in
    the loop changes a rate, so for a plain resume the config's values are the saved ones."""
    configured = [(g["lr"], g["betas"]) for g in opt.param_groups]
    opt.load_state_dict(state)
    for group, (lr, betas) in zip(opt.param_groups, configured, strict=True):
        group["lr"], group["betas"] = lr, betas


def network_differences(ck: dict[str, Any], spec: dict[str, Any], args: dict[str, Any]) -> list[str]:
    """Where a checkpoint's latent spec and model arguments (what shapes every tensor) differ from a config's, e.g.
    ``["model arguments (cr_codes)"]``; empty when its weights fit the config's networks."""
    out = []
    for what, theirs, ours in (("latent spec", ck["spec"], spec), ("model arguments", ck["model_args"], args)):
        if theirs != ours:
            keys = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            out.append(f"{what} ({', '.join(keys)})")
    return out


def fits_generator(state: torch.Tensor, gen: torch.Generator) -> bool:
    """Whether a saved generator state can seed ``gen``: states are device-specific (CPU Mersenne Twister 5,056
    bytes, CUDA Philox 16), so one saved on the other kind of device cannot."""
    return state.numel() == gen.get_state().numel()


def fresh_stream(t: Trainer, ck: dict[str, Any], salt: int) -> int:
    """A seed for a random stream that cannot be restored, a function of (seed, rank, the checkpoint's step) and a
    salt per reason, so a resume of the same checkpoint draws the same and no two reasons share a stream."""
    return t.cfg.train.seed * 7919 + t.rank + salt * (int(ck["step"]) + 1)


def restore(t: Trainer, ck: dict[str, Any]) -> None:
    """Networks, optimizers, step and random streams of ``t`` from a checkpoint (the restarts' state is theirs)."""
    with ckpt_io.fits_networks("the checkpoint"):
        diff = network_differences(ck, t.spec.to_dict(), t.model_args)
    if diff:
        raise TrainingError(f"the checkpoint's {' and '.join(diff)} differ from the config's; cannot resume")
    with ckpt_io.fits_networks("the checkpoint"):
        load_weights(t, ck)
    t.step = int(ck["step"])
    torch.set_rng_state(ck["torch_rng"])
    rank_rngs = ck.get("rank_rngs")
    own = rank_rngs[t.rank] if t.distributed and rank_rngs and len(rank_rngs) == t.world else None
    if own:
        torch.set_rng_state(own[1])  # a CPU state: it travels between devices
    if not fits_generator(ck["latent_rng"], t.latent_gen):
        # saved on another kind of device (a CUDA generator's state is 16 bytes, a CPU one's 5,056): a fresh stream,
        # so the run goes on, close to but not bit-identical with staying put
        t.latent_gen.manual_seed(fresh_stream(t, ck, 5_555_555))
        if is_rank_zero():
            print(
                f"note: the run's latent stream was saved on another device; this {t.device.type} run reseeds it "
                "from (seed, step), so it goes on close to, not bit-identical with, the run on its old device",
                flush=True,
            )
    elif own:
        t.latent_gen.set_state(own[0])
    elif not t.distributed or t.rank == 0:
        t.latent_gen.set_state(ck["latent_rng"])
    else:
        # saved under another number of processes (or by a version without per-rank states): fresh streams per
        # rank, so the ranks do not repeat rank 0's draws
        stream = fresh_stream(t, ck, 7_777_777)
        t.latent_gen.manual_seed(stream)
        torch.manual_seed(stream)
    if ck.get("precision", t.precision) != t.precision:
        print(
            f"note: the run so far trained in {ck['precision']}, this machine continues in {t.precision} "
            f"({t.runtime.precision_reason}); set train.precision to keep one",
            flush=True,
        )
    t.commands = [ck.get("command") or "?", *ck.get("resumed_by", []), command_line()]
    t.machines = [*ck.get("machines", []), machine.describe(t.device)]
    t.init_from = ck.get("init_from")
    t.log_window = ck.get("log_window")  # absent: a checkpoint from before it was kept (the row starts afresh)


def read_init_source(path: str | Path, cfg: Config) -> tuple[Path, dict[str, Any]]:
    """(checkpoint path, checkpoint) of ``infogan train CONFIG --init-from PATH``, checked against ``cfg`` before any
    data loads. Label-free restarts are refused: each start draws fresh weights, which would throw the loaded ones
    away."""
    ck_path = ckpt_io.checkpoint_path(path)
    if cfg.train.restarts > 1:
        raise TrainingError(
            f"--init-from: train.restarts is {cfg.train.restarts}; restarts start from fresh weights and would "
            "discard the loaded ones: set train.restarts=1"
        )
    ck = ckpt_io.load(ck_path)
    if ck.get("restarting") is not None:
        raise TrainingError(f"--init-from {ck_path}: that run is still inside its label-free restarts")
    return ck_path, ck


def init_from(t: Trainer, source: tuple[Path, dict[str, Any]], parts: str = "all") -> None:
    """Start the new run ``t`` (step 0) from another run's trained networks and optimizer moments (``infogan train
    CONFIG --init-from CHECKPOINT``; ``source`` from ``read_init_source``): fine-tuning on another data set version or
    with another loss, where a fork (which continues a run's step count, schedule and metrics) would mix two data sets
    in one history. The step, the schedule (e.g. loss.cr_late_from), the latent stream and the epoch order are the new
    run's own. The latent spec and the model arguments must be the checkpoint's (they shape every tensor).

    ``parts="D"`` (``--init-parts D``) loads only the discriminator, its Q and CR heads and their optimizer moments;
    G keeps this run's fresh draw, so G may be another design (e.g. ``model.widths.style_late``): the new G is then
    trained against a Q that already reads the codes as the source run found them (the chairs' styles, which a
    style-late G alone merged two of). The latent spec must match (it shapes Q's outputs), and D's tensors must fit.
    ``parts="D-categorical"``: the same, but Q's outputs for the continuous codes keep this run's fresh draw."""
    ck_path, ck = source
    if parts == "all":
        diff = network_differences(ck, t.spec.to_dict(), t.model_args)
        if diff:
            raise TrainingError(
                f"--init-from {ck_path}: its {' and '.join(diff)} differ from the config's; the weights cannot be "
                "loaded into these networks"
            )
        load_weights(t, ck)
    elif parts in ("D", "D-categorical"):
        if ck["spec"] != t.spec.to_dict():
            raise TrainingError(f"--init-from {ck_path}: its latent spec differs from the config's; Q cannot be loaded")
        last = t.D.q_head[-1]  # Linear(q_hidden, q_dim): one row per value of Q's output
        # this run's own draw of that layer, before the load overwrites it (D-categorical puts rows of it back)
        fresh = {k: v.clone() for k, v in last.state_dict().items()} if parts == "D-categorical" else {}
        try:
            t.D.load_state_dict(ck["D"])
        except RuntimeError as e:  # missing/unexpected keys or other shapes: another D design or width
            first = str(e).strip().splitlines()[-1].strip()
            raise TrainingError(
                f"--init-from {ck_path} --init-parts {parts}: its discriminator does not fit this config's ({first})"
            ) from None
        load_optimizer(t.opt_D, ck["opt_D"])
        if parts == "D-categorical":
            # Q's outputs for the non-categorical codes keep this run's fresh draw: the source's continuous reads
            # carry its assignment of codes to factors (on the chairs: none for light), which the new G would
            # otherwise inherit. Rows of the weight (spectral norm's "original" too) and of the bias; the power
            # iteration's u/v vectors are kept and follow within a few steps; the Adam moments stay the source's
            # (gradient scales of the same layer).
            rows = [i for code, sl in t.spec.q_slices() if code.kind != "categorical" for i in range(sl.start, sl.stop)]
            state = {k: v.clone() for k, v in last.state_dict().items()}
            for k, v in fresh.items():
                if k in ("weight", "bias", "parametrizations.weight.original"):  # (q_dim, hidden), (q_dim,)
                    state[k][rows] = v[rows]
            last.load_state_dict(state)
    else:
        raise TrainingError(f"--init-parts must be 'all', 'D' or 'D-categorical', got {parts!r}")
    t.init_from = {
        "checkpoint": str(ck_path),
        "step": int(ck["step"]),
        "parts": parts,
        "dataset": ck.get("dataset"),
        "config": ck["config"].get("name"),
        "command": ck.get("command"),
        "resumed_by": ck.get("resumed_by", []),
        "init_from": ck.get("init_from"),
    }


def save_checkpoint(t: Trainer) -> None:
    """The run folder's checkpoint, written atomically by rank 0; every rank must call it (it gathers their RNGs)."""
    rank_rngs = t.runtime.gather_rngs(t.latent_gen)  # a collective: every rank calls it
    if t.rank == 0:
        ckpt_io.save_atomic(state(t, rank_rngs), t.run_dir / CHECKPOINT_FILE)


def tidy_run_dir(t: Trainer) -> None:
    """Bring the run folder in line with the checkpoint ``t`` starts from (rank 0): metrics rows logged after its step
    are dropped, as those steps are trained and logged again, and a finished choice's leftover restart files go."""
    if t.resumed:  # at any step: a checkpoint at step 0 (a stop before the first step) may have rows logged after it
        dropped = trim_metrics(t.run_dir / METRICS_FILE, t.step, t.restarts.current())
        if dropped:
            print(
                f"metrics.jsonl: dropped {dropped} line(s) logged after the checkpoint's step {t.step}; "
                "those steps are logged again",
                flush=True,
            )
    if t.restarts.record is not None:
        t.restarts.remove_files(t.run_dir)  # left by a kill between the choice's checkpoint and removal
    # temp files of writes a kill interrupted (checkpoint.pt's and metrics.jsonl's are cleared on the way here): a best
    # restart's restart-<i>.pt (a checkpoint's size each, which nothing else removed) and the options file
    for pattern in ("restart-*.pt.*.tmp", "start-*.pt.*.tmp", OPTIONS_FILE + ".*.tmp"):
        for p in t.run_dir.glob(pattern):
            p.unlink(missing_ok=True)


# What a fork may change: the loss, the optimizer's rates and the run's own settings. Not what the checkpoint's
# tensors are shaped by (latent, model, data, batch size) nor what the run so far was a function of (seed, restarts).
FORK_FIXED = (
    "name",
    "latent",
    "model",
    "data",
    "optim.batch_size",
    "train.seed",
    "train.restarts",
    "train.restart_steps",
)


def fixed_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The FORK_FIXED settings (data.dir aside: where the files are, not which) that differ between two configs'
    dicts, as dotted names."""
    out = []
    for name in FORK_FIXED:
        section, _, key = name.partition(".")
        a, b = before.get(section), after.get(section)
        if key:
            a, b = (a or {}).get(key), (b or {}).get(key)
        elif section == "data":
            a, b = ({k: v for k, v in (d or {}).items() if k != "dir"} for d in (a, b))
        if a != b:
            out.append(name)
    return out


def load_for_resume(
    resume: str | Path,
    *,
    epochs: float | None = None,
    data_dir: str | Path | None = None,
    threads: int | None = None,
    device: str | None = None,
    fork: str | Path | None = None,
    overrides: list[str] | None = None,
) -> tuple[dict[str, Any], Config, Path]:
    """(checkpoint, config, run folder) to resume from a run folder or a checkpoint file.

    ``epochs`` sets a new length for the run, so a finished run can be trained on: the schedule has no decay and the
    epoch order is a function of (seed, epoch), so 4 epochs then 6 more equals 10 in one go.

    ``fork``: a new folder that continues a copy of the run (checkpoint and metrics rows up to its step) with
    ``overrides`` (``section.key=value``, as ``--set``) applied to its config; the original run is left as it is. The
    fork's checkpoint records the command that made it among its resumes, so its manifest says what changed when.
    Everything about the fork is checked here, before the data loads; its folder is written by ``write_fork`` once
    the trainer is built, so a fork that cannot start leaves no folder behind."""
    ck_path = ckpt_io.checkpoint_path(resume)
    if overrides and fork is None:
        raise TrainingError("changing a run's settings on resume needs a new folder for the changed run (--fork DIR)")
    if epochs is not None and not (math.isfinite(epochs) and epochs > 0):
        raise TrainingError(f"--epochs must be a finite number > 0, got {epochs}")
    ck = ckpt_io.load(ck_path)
    if fork is None and is_rank_zero():
        newer = ck_path.parent / CHECKPOINT_FILE
        if ck_path.name != CHECKPOINT_FILE and newer.is_file():
            later = int(ckpt_io.load(newer)["step"])
            if later > int(ck["step"]):
                # the run goes on in its folder and writes checkpoint.pt there: the later step would be lost
                raise TrainingError(
                    f"{newer} is at step {later:,}, later than {ck_path.name}'s step {int(ck['step']):,}; resuming "
                    f"{ck_path.name} in that folder would overwrite it. Give --fork NEW_DIR to continue "
                    f"{ck_path.name} as a new run"
                )
    # only a resume, which holds the run's lock, may clear its temp files: a fork only reads the run, which may be
    # training now and writing its next checkpoint through such a file (a fork deleted it and the run died)
    if fork is None and is_rank_zero():
        for p in ckpt_io.remove_stale_temps(ck_path):
            print(f"removed {p.name}, left by an interrupted checkpoint write", flush=True)
    conf = copy.deepcopy(dict(ck["config"]))
    for item in overrides or []:
        key = split_override(item)[0]
        if any(key == f or key.startswith(f + ".") for f in FORK_FIXED):
            raise TrainingError(
                f"--set {key}: a fork continues the run's networks and history, so it may change the loss, the "
                f"optimizer's rates and train settings, not {key}"
            )
        apply_override(conf, item)
    # where the data set's files are: the machine's, like the device, so a run goes on after its data moved (or on
    # another machine); the files must be the same data set, which the loader's checksums and shapes check
    if data_dir is not None:
        conf["data"] = {**conf["data"], "dir": str(data_dir)}
    # threads: a setting of the machine, not of the recipe, so a resume may change it; the run then goes on close
    # to, not bit-identical with, the same run on the old count (another count sums in another order)
    if threads is not None:
        conf["train"] = {**conf["train"], "threads": threads}
    # device: also the machine's, so a run started on a lent GPU goes on on the CPU of the next session (and back);
    # its latent stream is then reseeded (``restore``), since a CUDA generator's state cannot seed a CPU one
    if device is not None:
        conf["train"] = {**conf["train"], "device": device}
    elif conf["train"].get("device") == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "the run trained on cuda and torch sees no CUDA device here; give --device cpu to continue it on the CPU"
        )
    cfg = Config.from_dict(conf)  # validates it, threads and the fork's changes included; old keys are read too
    if overrides:
        # the keys above, and also whatever a whole table (--set 'train={seed = 7}') or an old name changed
        changed = fixed_changes(Config.from_dict(dict(ck["config"])).to_dict(), cfg.to_dict())
        if changed:
            raise TrainingError(
                f"--set changes {', '.join(changed)}: a fork continues the run's networks and history, so it may "
                "change the loss, the optimizer's rates and train settings, not those"
            )
    if epochs is not None:
        cfg.train.epochs = float(epochs)
    if cfg.train.epochs < ck["epoch"] - 1e-9:  # --epochs, or a fork's --set train.epochs
        given = f"--epochs {epochs}" if epochs is not None else f"train.epochs {cfg.train.epochs:g}"
        raise TrainingError(f"{given} is shorter than the {ck['epoch']:.2f} epochs already trained")
    if fork is None:
        return ck, cfg, ck_path.parent
    fork = Path(fork)
    if ck.get("restarting") is not None:  # the finished starts wait in the run folder's restart-<i>.pt files
        raise TrainingError(
            "--fork: the run is still inside its label-free restarts; resume it past them first, then fork"
        )
    # the run's own folder is never empty (it holds the checkpoint), so this refuses forking a run onto itself
    refuse_a_used_fork_folder(fork)
    from .loop import model_args  # here, not at the top: loop imports this module

    theirs = ck["model_args"]
    diff = network_differences(ck, cfg.spec.to_dict(), model_args(cfg, theirs["channels"], theirs["resolution"]))
    if diff:
        # e.g. loss.cr_weight_late=0 on a run with the contrastive regularizer: its head (on D) would go
        hint = (
            "; to go on without the contrastive regularizer keep its weights and move its start past the run's end "
            "(--set loss.cr_late_from=N, N more images than the run will see)"
            if any("cr_codes" in d for d in diff)
            else ""
        )
        raise TrainingError(
            f"--fork:{' with --set ' + ' '.join(overrides) if overrides else ''} the networks' {' and '.join(diff)} "
            f"would differ from the run's, and a fork goes on with the run's trained networks{hint}"
        )
    return {**ck, "config": cfg.to_dict()}, cfg, fork


def left_by_a_fork_start(name: str) -> bool:
    """Whether a file of a folder without a checkpoint is one that a fork writing it leaves: its lock, the metrics
    rows it copies first (``write_fork``) and the temp files of its writes."""
    temp = name.endswith(".tmp") and name.startswith((CHECKPOINT_FILE + ".", METRICS_FILE + "."))
    return name in (LOCK_FILE, METRICS_FILE) or temp


def refuse_a_used_fork_folder(fork: Path) -> None:
    """A fork starts a new run folder: ``fork`` must not exist yet or be empty. Counted as empty: a lone lock file (a
    fork stopped between taking the folder's lock and writing leaves one) and what a fork stopped while writing its
    folder leaves (no checkpoint yet, which it writes last: its copy of the metrics rows, temp files), where the folder
    could neither be resumed ("no checkpoint") nor forked into again."""
    if not fork.exists():
        return
    names = [p.name for p in fork.iterdir()] if fork.is_dir() else None
    if names is None or not all(left_by_a_fork_start(name) for name in names):
        raise TrainingError(f"--fork {fork} exists and is not an empty folder; a fork starts a new run folder")


def write_fork(ck: dict[str, Any], source: str | Path, fork: Path) -> None:
    """The fork's folder (rank 0): the source run's metrics rows (those after the checkpoint's step are trimmed when
    it starts) and ``ck``, the run's checkpoint with the fork's config, so a fork killed before its first save
    resumes with its changes."""
    fork.mkdir(parents=True, exist_ok=True)
    # checked again under the fork's lock: another fork into this folder may have started (and ended) since
    # load_for_resume saw it empty
    refuse_a_used_fork_folder(fork)
    ckpt_io.remove_stale_temps(fork / CHECKPOINT_FILE)  # of a fork start a kill stopped here, redone now
    metrics = ckpt_io.checkpoint_path(source).parent / METRICS_FILE
    if metrics.exists():
        shutil.copyfile(metrics, fork / METRICS_FILE)
    else:  # none to copy: not a stopped start's copy either
        (fork / METRICS_FILE).unlink(missing_ok=True)
    ckpt_io.save_atomic(ck, fork / CHECKPOINT_FILE)
