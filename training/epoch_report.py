"""What a run reports beside its losses, on rank 0: each epoch's sample grid (``samples/epoch-NNN.png``) and, with a
labelled test split, its test row; the disentanglement row (``dis/...``) every ``train.metrics_every`` images on a
data set with ground-truth factors. Each reads the networks (evaluation on a copy of D; G put in eval mode and back)
and draws from its own seeded generators, not from the streams the training draws from.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch

from .evaluate import EvalData, calibrated_copy, evaluate_model, factor_metrics
from .images import grid, save_png, to_unit
from .latent import LatentSpec
from .run_dir import MetricsLog

if TYPE_CHECKING:
    from .loop import Trainer

GRID_COLUMNS = 10


def sample_grid_latents(
    spec: LatentSpec, n_cols: int = GRID_COLUMNS, seed: int = 1234
) -> tuple[torch.Tensor, torch.Tensor]:
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


@torch.no_grad()
def save_samples(t: Trainer, epoch: int) -> None:
    z, c = sample_grid_latents(t.spec)
    G = t.drawing_G
    was_training = G.training
    G.eval()
    x = G(z.to(t.device), c.to(t.device))
    G.train(was_training)
    rows = len(x) // GRID_COLUMNS
    save_png(grid(to_unit(x), rows), t.run_dir / "samples" / f"epoch-{epoch:03d}.png", scale=2)


def evaluate_test(t: Trainer) -> dict[str, float]:
    """Test-split accuracy, NMI and label-free score per categorical code (``evaluate_model``: on a copy of D
    with BatchNorm recalibrated on training images; training is untouched)."""
    G = t.drawing_G
    was_training = G.training
    try:
        res = evaluate_model(G.eval(), t.D, t.eval_data, info=False)  # the row reports the categorical codes only
    finally:
        G.train(was_training)
        t.D.train()
    out = {}
    for code in t.spec.categorical_codes():
        r = res[code.name]
        out.update(
            {
                f"test_acc/{code.name}": r["accuracy"],
                f"test_nmi/{code.name}": r["nmi"],
                f"test_lfs/{code.name}": r["label_free_score"],
            }
        )
    return out


def end_epoch(t: Trainer, log: MetricsLog) -> None:
    """An epoch's sample grid and, with a test split, its test row (rank 0 only)."""
    if t.rank != 0:
        return
    save_samples(t, t.step // t.steps_per_epoch)
    if t.eval_data is not None:
        row = {"step": t.step, "epoch": t.step / t.steps_per_epoch, **evaluate_test(t)}
        log.write(row)
        print(
            f"\nepoch {row['epoch']:.0f}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k.startswith("test")),
            flush=True,
        )


def factor_metrics_due(t: Trainer) -> bool:
    """Whether the step just taken crossed a multiple of ``train.metrics_every`` images (rank 0 with factors only)."""
    every, bs = t.cfg.train.metrics_every, t.cfg.optim.batch_size
    return t.factor_set is not None and bool(every) and t.step * bs // every != (t.step - 1) * bs // every


def log_factor_metrics(t: Trainer, log: MetricsLog) -> dict[str, Any]:
    """The disentanglement metrics (train.metrics_sizes) of Q on the training set's factors, as a metrics.jsonl
    row ``dis/...`` against images seen; rank 0 only. Seeded by the step, so a resume logs the same figures."""
    t0 = time.perf_counter()
    D = calibrated_copy(t.D, EvalData(t.factor_set, t.factor_set, "train"))
    r = factor_metrics(D, t.factor_set, seed=t.step, **t.cfg.train.metrics_sizes)
    row: dict[str, Any] = {
        "step": t.step,
        "images": t.step * t.cfg.optim.batch_size,
        "epoch": t.step / t.steps_per_epoch,
        "dis/factor_vae": r["factor_vae"]["score"],
        "dis/mig": r["mig"]["score"],
    }
    row.update({f"dis/mig/{k}": v for k, v in r["mig"]["per_factor"].items()})
    row.update({f"dis/factor_vae/{k}": v for k, v in r["factor_vae"]["per_factor"].items()})
    if "dci" in r:
        row.update({f"dis/dci_{k}": r["dci"][k] for k in ("disentanglement", "completeness", "informativeness_test")})
    if "sap" in r:
        row["dis/sap"] = r["sap"]["score"]
    row["dis/best_factor"] = {c: v["factor"] for c, v in r["best_factor"].items()}
    row["dis/seconds"] = time.perf_counter() - t0
    log.write(row)
    return row
