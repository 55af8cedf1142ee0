"""Evaluation of a trained InfoGAN: how well Q's categorical code recovers the classes, and what each code does.

- Unsupervised accuracy on the *test* split: Q's argmax category vs the label, after the best one-to-one
  category-to-class map (Hungarian matching, ``scipy.optimize.linear_sum_assignment``), as in the paper's
  Sec. 7.1 (5% error on MNIST).
- NMI between predicted categories and labels (arithmetic-mean normalisation, as scikit-learn's default).
- ``L_I`` lower bound on generated samples, per code, in nats next to ``H(c)``.
- A label-free model-selection score: the mutual information between Q's predicted category and *real* images,
  I(y; x) ~= H(E_x[p(y|x)]) - E_x[H(p(y|x))] (nats; ln K at best). A model whose code splits real data into K
  confident, balanced groups scores high, which needs no labels to pick the best of several seeds.
- Traversal figures like the paper's Fig. 2.
- On data sets with ground-truth factors (``ImageSet.factors``, dSprites): the disentanglement metrics of
  ``training/disentanglement.py`` (FactorVAE score, MIG, DCI, SAP, the code x factor MI matrix, each code's
  best-matching factor), with Q's point estimate of each code (``LatentSpec.point_estimates``: a continuous code's
  mean, a categorical code's argmax) on real images as the representation, as InfoGAN-CR evaluates.

``evaluate_model`` is the one entry point (the training loop, ``infogan evaluate`` and ``infogan export`` call it):
it owns the BatchNorm recalibration and its sample size (``BN_SAMPLES``); ``load_eval_data`` loads the images it
needs and fails loudly (``EvaluationError``) when the split asked for does not exist.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from . import checkpoint as ckpt_io
from .data import DataError, ImageSet, as_floats, dataset_info, load_dataset
from .disentanglement import disentanglement_metrics
from .images import grid, save_png, to_unit
from .latent import LatentSpec
from .networks import Discriminator, Generator
from .stages import Progress, quiet

# Real training images whose statistics D's BatchNorm layers get before Q reads real images (precise BN): 10,000
# (a sixth of MNIST's training split) puts the running means within ~1 % of the full split's.
BN_SAMPLES = 10_000


class EvaluationError(ValueError):
    """The evaluation cannot run as asked (a split the data set lacks, or whose files are missing)."""


@dataclass
class EvalData:
    """The images an evaluation needs: ``train`` for BatchNorm recalibration, ``eval`` the split it scores."""

    train: ImageSet
    eval: ImageSet
    split: str


def load_eval_data(
    data_cfg: dict[str, Any], data_dir: str | None, split: str | None = None, *, allow_download: bool | None = None
) -> EvalData:
    """The run's data set (``data_cfg``: the config's [data] table as a dict) for ``evaluate_model``.

    ``split`` None: the data set's own evaluation split (``DataSetInfo.eval_split``: "test", or "train" for dSprites,
    whose metrics are defined over the whole set); "train" evaluates on the training images themselves (say so
    explicitly: nothing falls back to them). ``allow_download`` None: the config's ``download``."""
    name = data_cfg["name"]
    data_dir = data_dir or data_cfg.get("dir")
    kw = dict(
        resolution=data_cfg["resolution"],
        channels=data_cfg["channels"],
        verify=data_cfg.get("verify", True),
        allow_download=data_cfg.get("download", True) if allow_download is None else allow_download,
    )
    try:
        splits = dataset_info(name).splits
        split = split or dataset_info(name).eval_split
    except DataError as e:
        raise EvaluationError(str(e)) from None
    if split not in splits:
        raise EvaluationError(
            f"{name} has no {split!r} split to evaluate on (it has: {', '.join(splits)}); "
            f"pass the split explicitly, e.g. --split train"
        )
    train = load_dataset(name, data_dir, "train", **kw)
    if split == "train":
        return EvalData(train, train, split)
    try:
        held_out = load_dataset(name, data_dir, split, **kw)
    except DataError as e:
        raise EvaluationError(f"cannot evaluate on {name}'s {split!r} split: {e}") from e
    return EvalData(train, held_out, split)


def calibrated_copy(
    D: Discriminator, data: EvalData, bn_samples: int = BN_SAMPLES, progress: Progress = quiet
) -> Discriminator:
    """A copy of D (D itself untouched) in eval mode with its BatchNorm statistics re-estimated on ``bn_samples``
    training images spread over the set (``ImageSet.spread_float``; ``progress`` hears the stage)."""
    D = copy.deepcopy(D)
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules()):  # else nothing to calibrate
        progress(f"recalibrating D's BatchNorm on {min(bn_samples, len(data.train.images)):,} real images")
        recalibrate_batchnorm(D, data.train.spread_float(bn_samples))
    return D.eval()


def evaluate_model(
    G: Generator,
    D: Discriminator,
    data: EvalData,
    *,
    bn_samples: int = BN_SAMPLES,
    metric_sizes: dict[str, int] | None = None,
    seed: int = 0,
    generated_classes: bool = False,
    code_effects: bool = False,
    classifier_cache: str | Path | None = None,
    info: bool = True,
    calibrated: bool = False,
    progress: Progress = quiet,
) -> dict[str, Any]:
    """Every figure of one model on ``data.eval`` (see ``evaluate``; ``info`` as there), with D's BatchNorm
    recalibrated on a copy (``calibrated_copy``); G's and D's weights, buffers and train/eval modes are left as they
    were. Where the data set has factor classes, ``result["disentanglement"]`` holds ``disentanglement_metrics``
    (``metric_sizes``: its sample sizes, default disentanglement_lib's; ``seed``: its random stream).
    ``generated_classes``: where the training split is labelled and the spec has a categorical code, also
    ``result["generated_classes"]`` -- does each category *draw* its own class, by a classifier trained with labels
    (``class_check``; about a minute on 2 CPU cores, so the per-epoch evaluation leaves it off;
    ``classifier_cache``: a folder that keeps the trained classifier for the next evaluation of the same split).
    ``code_effects``: also ``result["code_effects"]``, what each continuous code does to G's images
    (``code_effects.code_effects``: the image statistics it moves, the basis for naming it; a few seconds).
    ``calibrated``: D is already a ``calibrated_copy`` on ``data`` (``infogan export``'s recognizer), evaluated as it
    is instead of calibrated again (the same statistics, recomputed over 10,000 images).
    ``progress``: called with a line before each stage (``stages.stage_printer`` on the command line)."""
    was_training = G.training
    try:
        if calibrated:
            D_eval = copy.deepcopy(D).eval()
        else:
            D_eval = calibrated_copy(D, data, bn_samples, progress)
        progress(f"Q on the {len(data.eval.images):,} images of the {data.split} split")
        result = evaluate(G, D_eval, data.eval.images, data.eval.labels, data.eval.classes, info=info)
        if data.eval.factors is not None:
            result["disentanglement"] = factor_metrics(
                D_eval, data.eval, seed=seed, progress=progress, **(metric_sizes or {})
            )
        if generated_classes and data.train.labels is not None and G.spec.categorical_codes():
            from .class_check import check_generated_classes

            progress("generated classes: does each category draw its own class (a classifier trained with labels)")

            held_out = data.eval if data.eval is not data.train else None
            result["generated_classes"] = check_generated_classes(
                G, data.train, held_out, result, cache_dir=classifier_cache
            )
        if code_effects and G.spec.continuous_codes():
            from .code_effects import code_effects as measure_effects
            from .code_effects import torch_generator

            try:
                drawing = dataset_info(data.train.name).drawing
            except DataError:  # an ad-hoc ImageSet (tests): light objects on a dark ground, as MNIST
                drawing = "light-on-dark"
            progress("code effects: the image statistics each continuous code moves")
            result["code_effects"] = measure_effects(G.spec, torch_generator(G), drawing=drawing)
        return result
    finally:
        G.train(was_training)


@torch.no_grad()
def factor_metrics(
    D: Discriminator, data: ImageSet, *, seed: int = 0, progress: Progress = quiet, **sizes: int
) -> dict[str, Any]:
    """``disentanglement_metrics`` of Q's point estimates (one value per code) on ``data``'s real images."""
    device = next(D.parameters()).device
    D.eval()

    def representation(images: np.ndarray) -> np.ndarray:
        q = D(torch.from_numpy(images).to(device))[1]
        return D.spec.point_estimates(q.float()).cpu().numpy()

    return disentanglement_metrics(
        representation,
        data,
        np.random.default_rng(seed),
        code_names=[c.name for c in D.spec.codes],
        progress=progress,
        **sizes,
    )


@torch.no_grad()
def recalibrate_batchnorm(D: Discriminator, images: torch.Tensor, batch: int = 500) -> None:
    """Re-estimate D's BatchNorm statistics on real images (precise BN, cumulative average).

    During training D's running statistics mix real and generated batches (D sees both, in separate passes);
    Q serves *real* images at inference, so its eval-mode statistics should be those of real data.
    """
    bns = [m for m in D.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    device = next(D.parameters()).device
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over all batches
        m.train()
    for i in range(0, len(images), batch):
        D(as_floats(images[i : i + batch]).to(device))
    for m, (mom, tr) in zip(bns, saved, strict=False):
        m.momentum = mom
        m.train(tr)


@torch.no_grad()
def predict_codes(D: Discriminator, images: torch.Tensor, batch: int = 1000) -> dict[str, dict[str, torch.Tensor]]:
    """images (N, C, H, W), float in [-1, 1] or uint8 (converted a batch at a time, so a large set such as dSprites
    never exists as floats whole) -> {code: {'logits' | 'mean','std': (N, ...)}} from Q in eval mode."""
    D.eval()
    device = next(D.parameters()).device

    qs = torch.cat([D(as_floats(images[i : i + batch]).to(device))[1] for i in range(0, len(images), batch)])
    return D.spec.predict(qs)


def confusion(pred: np.ndarray, labels: np.ndarray, k: int, n_classes: int) -> np.ndarray:
    m = np.zeros((k, n_classes), np.int64)
    np.add.at(m, (pred, labels), 1)
    return m


def hungarian_accuracy(pred: np.ndarray, labels: np.ndarray, k: int, n_classes: int) -> tuple[float, list[int]]:
    """Best one-to-one map category -> class; returns (accuracy, mapping[category] = class)."""
    m = confusion(pred, labels, k, n_classes)
    rows, cols = linear_sum_assignment(-m)
    mapping = [-1] * k
    for r, c in zip(rows, cols, strict=False):
        mapping[r] = int(c)
    return float(m[rows, cols].sum() / len(pred)), mapping


def nmi(pred: np.ndarray, labels: np.ndarray) -> float:
    """Normalised mutual information with arithmetic-mean normalisation."""
    _, p = np.unique(pred, return_inverse=True)
    _, lab = np.unique(labels, return_inverse=True)
    joint = np.zeros((p.max() + 1, lab.max() + 1))
    np.add.at(joint, (p, lab), 1)
    joint /= joint.sum()
    pp, pl = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pp, pl)[nz])).sum())
    h = lambda q: float(-(q[q > 0] * np.log(q[q > 0])).sum())  # noqa: E731
    denom = (h(pp) + h(pl)) / 2
    return mi / denom if denom > 0 else 1.0


def label_free_score(logits: torch.Tensor) -> float:
    """I(y; x) in nats from Q's softmax on real images: H(mean p) - mean H(p)."""
    p = logits.softmax(dim=1).double()
    mean = p.mean(0)
    h_mean = float(-(mean * mean.clamp_min(1e-12).log()).sum())
    h_each = float(-(p * p.clamp_min(1e-12).log()).sum(1).mean())
    return h_mean - h_each


@torch.no_grad()
def info_bound(G: Generator, D: Discriminator, n: int = 5000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per code: L_I = H(c) - E[-log Q(c|G(z,c))] on n prior samples, in nats, next to H(c)."""
    spec = G.spec
    g = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    z, c = (t.to(device) for t in spec.sample(n, g))
    G.eval()
    D.eval()
    q = torch.cat([D(G(z[i : i + 500], c[i : i + 500]))[1] for i in range(0, n, 500)])
    nll = {k: float(v) for k, v in spec.info_losses(c, q).items()}
    return {code.name: {"L_I": code.entropy() - float(nll[code.name]), "H": code.entropy()} for code in spec.codes}


def evaluate(
    G: Generator,
    D: Discriminator,
    test_images: torch.Tensor,
    test_labels: torch.Tensor | None,
    classes: list[str] | None = None,
    *,
    info: bool = True,
) -> dict[str, Any]:
    """All figures for one model; ``test_images`` (N, C, H, W) in [-1, 1] or uint8. D's BN should be recalibrated
    first. ``info``: also L_I on 5,000 generated images (``info_bound``; off for the per-epoch row, which does not
    report it: on 3D chairs it was ~5 % of the training time)."""
    spec = G.spec
    result: dict[str, Any] = {"info": info_bound(G, D)} if info else {}
    preds = predict_codes(D, test_images) if spec.categorical_codes() else {}
    for code in spec.categorical_codes():
        logits = preds[code.name]["logits"]
        pred = logits.argmax(1).cpu().numpy()
        entry: dict[str, Any] = {
            "label_free_score": label_free_score(logits),
            "H": code.entropy(),
            "category_sizes": np.bincount(pred, minlength=code.categories).tolist(),
        }
        if test_labels is not None:
            labels = test_labels.cpu().numpy()
            n_classes = int(labels.max()) + 1
            acc, mapping = hungarian_accuracy(pred, labels, code.categories, n_classes)
            entry.update(accuracy=acc, nmi=nmi(pred, labels), category_to_class=mapping)
            if classes:
                entry["category_to_label"] = [classes[m] if m >= 0 else None for m in mapping]
        result[code.name] = entry
    return result


# ---- traversal figures (paper, Fig. 2) -------------------------------------------------------------------


def traversal_latents(
    spec: LatentSpec,
    code_name: str,
    rows: int,
    cols: int,
    *,
    span: float = 2.0,
    seed: int = 0,
    fixed: dict[str, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows: independent samples (noise and other codes drawn from the prior, or ``fixed``); columns: ``code_name``
    at its Fig. 2 values (``code.fig2_values``: every category, or ``cols`` values ``span`` half-ranges either
    side of the prior's centre)."""
    code = spec.code(code_name)
    g = torch.Generator().manual_seed(seed)
    sweep = torch.tensor(code.fig2_values(span, cols), dtype=torch.float32)
    cols = len(sweep)
    z = spec.noise.sample(rows, g).repeat_interleave(cols, 0)
    values = {k: v.repeat_interleave(cols) for k, v in spec.sample_values(rows, g).items()}
    for k, v in (fixed or {}).items():
        values[k] = torch.full((rows * cols,), float(v))
    values[code_name] = sweep.repeat(rows)
    return z, spec.encode(values)


def figure_latents(
    spec: LatentSpec, code_name: str, cols: int = 9, seed: int = 0, span: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Latents of one Fig. 2 panel, as (z (R*K, noise dim), c (R*K, c_dim), R) row-major: (a) the first categorical
    code swept over its categories, one row per noise sample; (c, d) any other code at its Fig. 2 values (a
    continuous one ``span`` half-ranges either side of its centre: -2 to 2 for the paper's Fig. 2, -1 to 1 for its
    Figs. 3-4, ``DataSetInfo.traversal_span``), one row per category of the first categorical code (noise fixed per
    row). Other continuous codes stay at their prior's centre."""
    cats = spec.categorical_codes()
    centre = {c.name: c.default() for c in spec.continuous_codes() if c.name != code_name}
    if not cats or cats[0].name == code_name:
        rows = 10
        z, c = traversal_latents(spec, code_name, rows, cols, span=span, seed=seed, fixed=centre)
        return z, c, rows
    cat = cats[0]
    rows = cat.categories
    parts = [
        traversal_latents(spec, code_name, 1, cols, span=span, seed=seed + r, fixed={**centre, cat.name: float(r)})
        for r in range(rows)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), rows


@torch.no_grad()
def paper_figures(G: Generator, out_dir: str | Path, prefix: str = "", span: float = 2.0) -> list[Path]:
    """One Fig. 2-style traversal PNG per code (see ``figure_latents``; ``span``: its sweep of continuous codes)."""
    out_dir = Path(out_dir)
    G.eval()
    paths = []
    for code in G.spec.codes:
        z, c, rows = figure_latents(G.spec, code.name, span=span)
        p = out_dir / f"{prefix}traversal-{code.name}.png"
        save_png(grid(to_unit(G(z, c)), rows), p, scale=2)
        paths.append(p)
    return paths


def write_json(obj: Any, path: str | Path) -> None:
    """evaluation.json and the like, atomically: a kill mid-write leaves the previous file whole, never a torn one
    that a later command (export reads an evaluation) would fail on or trust."""
    text = json.dumps(obj, indent=2, default=float).encode()
    ckpt_io.write_atomic(path, lambda f: f.write(text))
