"""Label-free restarts: train ``train.restarts`` differently seeded starts of a run for ``train.restart_steps``
steps each and go on from the one with the highest label-free score.

Why: the failure that dominates InfoGAN's seed variance on MNIST is two digits sharing one category (and one digit
split over two), which forms in the first epochs and persists; such a start's Q separates real images less well,
which the score sees without labels. Costs (restarts - 1) x restart_steps extra steps; the kept restart's steps count
towards the run's total. Restart 0 is the plain run of ``train.seed``; the others differ only in their initial
weights and latent draws.

Crash-safe like the main loop: the checkpoint holds the restart being trained (``restarting``: its index, the
finished restarts' scores, the best so far), written every checkpoint_every steps and on SIGINT/SIGTERM; the best
finished restart waits in ``restart-<i>.pt`` until the choice is made. So a kill loses at most the steps since the
last checkpoint, here too, and a resume continues the same restart at the same step. Once chosen, the checkpoint's
``restarts`` field records the choice ({"restarts", "steps", "scores", "kept"}).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checkpoint as ckpt_io
from . import epoch_report, train_state
from .data import spread_rows
from .evaluate import BN_SAMPLES, label_free_score, predict_codes, recalibrate_batchnorm
from .run_dir import RESTART_ROW_KEY, MetricsLog
from .runtime import TrainingError

if TYPE_CHECKING:
    from .loop import Trainer


def read_state(ck: dict[str, Any]) -> tuple[dict | None, dict | None]:
    """(record, progress) from a checkpoint, also one written before the rename (fields "selection" with
    "candidates", "selecting" with "candidate"), so such runs resume; export reads the record through it too."""
    record, progress = ck.get("restarts"), ck.get("restarting")
    if record is None and ck.get("selection") is not None:
        old = dict(ck["selection"])
        record = {"restarts": old.pop("candidates"), **old}
    if progress is None and ck.get("selecting") is not None:
        old = dict(ck["selecting"])
        progress = {"restart": old.pop("candidate"), **old}
    return record, progress


class Restarts:
    """The restarts' state (which restart trains, the scores so far, the choice) and their files; ``run`` drives the
    trainer through them."""

    def __init__(self, count: int, steps: int):
        self.count, self.steps = count, steps
        self.record: dict[str, Any] | None = None  # the choice, once made
        self.progress: dict[str, Any] | None = None  # while they run: {"restart", "scores", "best"}

    # ---- state, saved in every checkpoint -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"restarts": self.record, "restarting": self.progress}

    def load_state_dict(self, ck: dict[str, Any]) -> None:
        self.record, self.progress = read_state(ck)

    def pending(self, step: int) -> bool:
        """Whether the run must (still) train restarts; a checkpoint from before restarts existed has step > 0
        and neither field: it is not restarted."""
        return self.count > 1 and self.record is None and (step == 0 or self.progress is not None)

    def check_length(self, total_steps: int, steps_per_epoch: int) -> str | None:
        """On a resume: the restarts' length is fixed when they begin (``min(restart_steps, the run's steps)``, stored
        in the checkpoint), so a resume with another ``--epochs`` trains the remaining restarts as long as the finished
        ones and their scores compare like with like. Refuses a length too short to hold restarts in progress;
        returns a note when the restarts were shorter than this length's would be (a run begun shorter than
        ``restart_steps``), as the longer run then differs from one trained that long from the start."""
        stored = (self.record or self.progress or {}).get("steps")
        if self.count < 2 or stored is None:  # no restarts, or a checkpoint written before the length was stored
            return None
        if self.record is None and stored > total_steps:
            raise TrainingError(
                f"the run is inside its label-free restarts of {stored:,} steps each, more than the run's "
                f"{total_steps:,} steps; give --epochs {stored / steps_per_epoch:.4g} or more"
            )
        fresh = min(self.steps, total_steps)
        if stored < fresh:
            return (
                f"note: this run's label-free restarts train {stored:,} steps each (its length when they began); "
                f"a run of this length from the start trains them {fresh:,} steps, so the longer run is not "
                "bit-identical to it"
            )
        return None

    def current(self) -> int | None:
        """The restart being trained (None in the main run)."""
        return self.progress["restart"] if self.progress else None

    # ---- files -------------------------------------------------------------------------------------------
    @staticmethod
    def path(run_dir: Path, i: int) -> Path:
        return run_dir / f"restart-{i}.pt"

    def _load_best(self, run_dir: Path, i: int) -> dict[str, Any]:
        path = self.path(run_dir, i)
        old = run_dir / f"start-{i}.pt"  # the name before the rename, in a run killed inside its restarts
        return ckpt_io.load(old if not path.exists() and old.exists() else path)

    def remove_files(self, run_dir: Path, keep: int | None = None) -> None:
        keep_path = self.path(run_dir, keep) if keep is not None else None
        for p in [*run_dir.glob("restart-*.pt"), *run_dir.glob("start-*.pt")]:
            if p != keep_path:
                p.unlink(missing_ok=True)

    # ---- the driver --------------------------------------------------------------------------------------
    def run(self, t: Trainer, log: MetricsLog, received: list[int]) -> bool:
        """Train the restarts not yet trained, then continue ``t`` from the best. Returns False when ``t.max_steps``
        stopped the restart being trained (before its ``restart_steps``): the run ends there, as a signal would end
        it, and a resume continues that restart."""
        prog = self.progress or {"restart": 0, "scores": [], "best": None}
        # the length every restart trains, fixed when the first begins (check_length): a resume with another
        # --epochs must not score the remaining restarts after more or fewer steps than the finished ones
        n = prog.get("steps") or min(self.steps, t.total_steps)
        scores: list[float] = list(prog["scores"])
        best_i: int | None = prog["best"]
        best_state = self._load_best(t.run_dir, best_i) if best_i is not None else None
        rank0 = t.runtime.rank == 0
        for i in range(prog["restart"], self.count):
            if self.progress is None:  # a fresh restart (a resumed one already holds its networks and step)
                t.build(restart=i)
                self.progress = {"restart": i, "scores": list(scores), "best": best_i, "steps": n}
                # the first restart's too: a new run killed before its first periodic checkpoint left no checkpoint,
                # a folder --resume refused
                train_state.save_checkpoint(t)
                if rank0 and i > 0:
                    self.remove_files(t.run_dir, keep=best_i)
            bar = t.progress_bar(n, desc=f"restart {i + 1}/{self.count}")
            t0 = time.perf_counter()
            stop = n if t.max_steps is None else min(n, t.max_steps)
            try:  # the restart's own losses and L_I, rows marked with its index
                t.train_until(stop, log, received, bar, lambda n_acc, dt, i=i: {RESTART_ROW_KEY: i}, log_at_end=False)
            finally:
                if bar:
                    bar.close()
            if stop < n:
                return False
            score = t.runtime.from_rank_zero(self.score(t))  # every rank keeps rank 0's choice
            scores.append(score)
            row: dict[str, Any] = {
                "step": n,
                RESTART_ROW_KEY: i,
                "label_free": score,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            if t.eval_data is not None:  # for the record only; the choice never sees labels
                row.update(epoch_report.evaluate_test(t))
            if rank0:
                print(
                    f"restart {i + 1}/{self.count}: label-free score {score:.4f} nats after {n} steps "
                    f"({row['seconds']} s this sitting)",
                    flush=True,
                )
                log.write(row)
            if best_i is None or score > scores[best_i]:
                best_i = i
                if i < self.count - 1:  # the last restart, if best, goes on in memory
                    best_state = copy.deepcopy(train_state.state(t, t.runtime.gather_rngs(t.latent_gen)))
                    if rank0:
                        ckpt_io.save_atomic(best_state, self.path(t.run_dir, i))
            self.progress = None
        assert best_i is not None
        if best_i != self.count - 1:
            commands, machines = t.commands, t.machines
            train_state.restore(t, best_state)  # type: ignore[arg-type]
            # the run's command history and its machines (one per command), not those saved with that restart
            t.commands, t.machines = commands, machines
        self.progress = None
        self.record = {"restarts": self.count, "steps": n, "scores": scores, "kept": best_i}
        if rank0:
            print(f"kept restart {best_i + 1} (label-free score {scores[best_i]:.4f})", flush=True)
            log.write({"step": n, "kept": best_i})
        train_state.save_checkpoint(t)
        if rank0:
            self.remove_files(t.run_dir)
        return True

    @staticmethod
    def score(t: Trainer) -> float:
        """I(category; x) in nats of Q's categorical codes on BN_SAMPLES real training images spread over the set
        (``spread_rows``; no labels used), on a copy of D whose BatchNorm statistics are re-estimated on those images,
        which is how Q serves real images."""
        images = t.data[spread_rows(len(t.data), BN_SAMPLES).to(t.data.device)]  # floats, or bytes (as_floats)
        D = copy.deepcopy(t.D)
        recalibrate_batchnorm(D, images)
        pred = predict_codes(D, images)
        return sum(label_free_score(pred[c.name]["logits"]) for c in t.spec.categorical_codes())
