"""``infogan evaluate``: load a checkpoint, evaluate it (``evaluate.evaluate_model``) on a split, write
evaluation.json and the Fig. 2 traversals, and summarise for a person.

Also draws the paper's Fig. 1 (``plot_info_curves``): L_I over training for InfoGAN vs the lambda = 0 GAN, read
from the runs' ``metrics.jsonl``, and the disentanglement metrics against images seen (``plot_disentanglement``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt_io
from .class_check import classifier_cache_dir
from .code_effects import describe as describe_effects
from .data import dataset_info
from .evaluate import evaluate_model, load_eval_data, paper_figures, write_json
from .metrics_file import read_metrics
from .run_dir import writable_folder
from .stages import Progress, quiet


def evaluation_dir(checkpoint: str | Path, out_dir: str | Path | None = None) -> Path:
    """Where ``evaluate_checkpoint`` writes evaluation.json and the figures: --out, else the checkpoint's folder."""
    return Path(out_dir) if out_dir else ckpt_io.checkpoint_path(checkpoint).parent


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    data_dir: str | None = None,
    out_dir: str | Path | None = None,
    figures: bool = True,
    split: str | None = None,
    ema: bool = True,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """``ema``: G is the moving average of G's weights where the run kept one (train.ema_half_life), else the
    trained G; ``result["checkpoint"]["G"]`` says which ("ema" or "trained"). ``progress``: a line per stage."""
    ck = ckpt_io.load(checkpoint)
    G, D, _ = ckpt_io.load_networks(ck, ema=ema)
    # where the results go, checked before the data loads and the evaluation's minutes
    out = writable_folder(evaluation_dir(checkpoint, out_dir), "--out", "results")
    progress(f"loading {ck['config']['data']['name']} (step {ck['step']:,} checkpoint)")
    data = load_eval_data(ck["config"]["data"], data_dir, split)
    result = evaluate_model(
        G,
        D,
        data,
        generated_classes=True,
        code_effects=True,
        classifier_cache=classifier_cache_dir(),
        progress=progress,
    )
    out.mkdir(parents=True, exist_ok=True)  # now that there is something to write (checked writable above)
    result["split"] = data.split
    result["checkpoint"] = {
        "path": str(Path(checkpoint).resolve()),  # from wherever the results are read, not the cwd it ran in
        "step": ck["step"],
        "epoch": ck.get("epoch"),
        "G": ckpt_io.generator_weights(ck, ema=ema),
    }
    earlier = _earlier_figures(out)
    if figures:
        progress(f"traversal figures under {out}")
        span = dataset_info(ck["config"]["data"]["name"]).traversal_span  # load_eval_data checked the name
        result["figures"] = [str(p.resolve()) for p in paper_figures(G, out, span=span)]
    for old in earlier - {Path(f) for f in result.get("figures", [])}:
        old.unlink(missing_ok=True)  # an earlier evaluation's figures would sit beside this one's results as its own
    write_json(result, out / "evaluation.json")
    return result


def _earlier_figures(out: Path) -> set[Path]:
    """The figures a previous evaluation.json in ``out`` lists, those inside ``out`` only (never a file elsewhere)."""
    try:
        listed = json.loads((out / "evaluation.json").read_text(encoding="utf-8")).get("figures", [])
    except (OSError, ValueError, AttributeError):
        return set()
    inside = {(out / Path(f).name).resolve() for f in listed if isinstance(f, str)}
    return {p for p in inside if p.parent == out.resolve() and p.suffix == ".png" and p.is_file()}


def summary(result: dict[str, Any], out: str | Path) -> str:
    """A few lines for a person: the figures that matter from ``evaluate_checkpoint``'s result, and what it wrote."""
    ck = result["checkpoint"]
    epoch = f", epoch {ck['epoch']:.2f}" if ck.get("epoch") is not None else ""
    drawn = "; G: the moving average of its weights" if ck.get("G") == "ema" else ""
    lines = [f"{result['split']} split; checkpoint step {ck['step']}{epoch}{drawn}"]
    for name, r in result.items():
        if isinstance(r, dict) and "label_free_score" in r:  # a categorical code
            parts = [f"unsupervised accuracy {r['accuracy']:.4f}", f"NMI {r['nmi']:.3f}"] if "accuracy" in r else []
            parts.append(f"label-free score {r['label_free_score']:.3f} nats (H = {r['H']:.3f})")
            lines.append(f"{name}: " + ", ".join(parts))
    gen = result.get("generated_classes")
    if gen:  # does each category draw its own class (an independent classifier's view)
        acc = gen.get("classifier_test_accuracy")
        for name, g in gen["codes"].items():
            agree = f", {sum(g['agrees_with_q'])} agree with Q's map" if "agrees_with_q" in g else ""
            lines.append(
                f"{name} generates {g['classes_shown']} distinct classes of {len(g['class_of_category'])} categories "
                f"(purity {min(g['purity']):.2f}-{max(g['purity']):.2f}{agree}; classifier test accuracy "
                + (f"{acc:.3f})" if acc is not None else "n/a)")
            )
            if "corners" in g:  # does a category keep its class whichever way the continuous codes are set
                cn = g["corners"]
                lines.append(
                    f"  {cn['stable_categories']} of {len(cn['corner_classes'])} categories draw one class at all "
                    f"{len(cn['corner_values'])} corners of the continuous codes"
                )
    effects = result.get("code_effects")
    if effects:  # what each continuous code moves, the basis for its label (export --label c1=...)
        lines.append("continuous codes, the image statistics each moves most (change from -2 to +2, in sd):")
        lines.extend("  " + line for line in describe_effects(effects, top=3).splitlines())
    dis = result.get("disentanglement")
    if dis:  # a data set with ground-truth factors
        parts = [f"FactorVAE score {dis['factor_vae']['score']:.3f}", f"MIG {dis['mig']['score']:.3f}"]
        if "dci" in dis:
            parts.append(
                f"DCI disentanglement {dis['dci']['disentanglement']:.3f}, completeness "
                f"{dis['dci']['completeness']:.3f}, informativeness {dis['dci']['informativeness_test']:.3f}"
            )
        if "sap" in dis:
            parts.append(f"SAP {dis['sap']['score']:.3f}")
        lines.append("disentanglement: " + ", ".join(parts))
        per = dis["factor_vae"].get("per_factor") or {}
        if per:  # evaluations from before the per-factor split lack it
            lines.append(
                "FactorVAE votes right with each factor fixed: "
                + ", ".join(f"{f} {'-' if v is None else f'{v:.2f}'}" for f, v in per.items())
            )
        lines.append(
            "best-matching factor (MI / H(factor)): "
            + ", ".join(f"{c} {v['factor']} ({v['normalised_mi']:.2f})" for c, v in dis["best_factor"].items())
        )
        lines.append(
            "MI matrix, nats (codes x "
            + " ".join(dis["factors"])
            + "): "
            + "; ".join(" ".join("-" if v is None else f"{v:.2f}" for v in row) for row in dis["mi_matrix"])
        )
    lines.append(
        "L_I, nats (H(c)): " + ", ".join(f"{name} {v['L_I']:.3f} ({v['H']:.3f})" for name, v in result["info"].items())
    )
    written = [Path(out) / "evaluation.json", *map(Path, result.get("figures", []))]
    lines.append("wrote " + ", ".join(str(p) for p in written))
    return "\n".join(lines)


def plot_info_curves(runs: dict[str, str | Path], code: str, out: str | Path, entropy: float | None = None) -> Path:
    """Fig. 1: L_I of one code over training iterations, one line per run ({label: metrics.jsonl})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for label, path in runs.items():
        rows = read_metrics(path)
        # label-free restarts log every start; plot the one the run kept (its record carries the kept index)
        kept = next((r["kept"] for r in rows if "kept" in r), None)
        rows = [r for r in rows if f"L_I/{code}" in r and r.get("candidate", kept) == kept]
        ax.plot([r["step"] for r in rows], [r[f"L_I/{code}"] for r in rows], label=label)
    if entropy is not None:
        ax.axhline(entropy, color="grey", ls="--", lw=1, label=f"H(c) = ln K = {entropy:.2f}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"L_I({code}) [nats]")
    ax.set_title("Lower bound L_I over training (Chen et al., 2016, Fig. 1)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)


# the metrics drawn by plot_disentanglement: metrics.jsonl key -> panel title
CURVES = {
    "dis/factor_vae": "FactorVAE score",
    "dis/mig": "MIG",
    "dis/sap": "SAP",
    "dis/dci_disentanglement": "DCI disentanglement",
}


def plot_disentanglement(
    runs: dict[str, str | Path], out: str | Path, anchors: dict[str, dict[str, float]] | None = None
) -> Path:
    """Each disentanglement metric against images seen, one panel per metric, one line per run ({label:
    metrics.jsonl}, rows written every train.metrics_every images); ``anchors`` {metric key: {label: value}} draws
    published figures as dashed lines (e.g. InfoGAN-CR's FactorVAE score 0.88)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {label: [r for r in read_metrics(path) if "dis/mig" in r] for label, path in runs.items()}
    keys = [k for k in CURVES if any(k in r for rs in rows.values() for r in rs)]
    if not keys:
        raise ValueError("no disentanglement rows (dis/...) in these metrics files; train with train.metrics_every")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for label, rs in rows.items():
            pts = [(r["images"], r[key]) for r in rs if r.get(key) is not None]
            ax.plot([p[0] / 1e6 for p in pts], [p[1] for p in pts], marker=".", label=label)
        for name, value in (anchors or {}).get(key, {}).items():
            ax.axhline(value, color="grey", ls="--", lw=1)
            ax.text(0.01, value, name, transform=ax.get_yaxis_transform(), fontsize=7, color="grey", va="bottom")
        ax.set_title(CURVES[key])
        ax.set_xlabel("images seen (millions)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Path(out)
