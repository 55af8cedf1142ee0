"""Does each category of a categorical code *generate* its own class? Checked with an independent classifier.

The unsupervised accuracy (``evaluate.evaluate``) says how Q sorts *real* images into categories. It can be high
while G draws two categories as the same class (Q then still separates them by some style), so a button labelled
"Bag" might draw trousers. Here a small CNN trained with labels on the real training split (it never sees G or Q)
classifies images that G draws for each category, with the noise and the other codes from the prior:

- ``class_of_category[k]``: the class the classifier gives most often to category k's images, and ``purity[k]``
  the share of them it gives;
- ``distinct``: every category's majority class differs from every other's (K categories show K classes);
- ``agrees_with_q``: that class is the one the evaluation's category-to-class map (from Q on real images) gives k;
- ``corners``: the same check with every continuous code held at one end of its range, each of the 2^n corners in
  turn (``corner_values``, ``corner_classes[k][j]``: category k's majority class at corner j), and
  ``stable_categories``, how many categories draw the same class at every corner. A user presses a category and
  moves the sliders: a category that turns from pullovers into coats as a slider moves (Fashion-MNIST's fill code
  did, docs/training/fashion-mnist.md) has a continuous code carrying the class, which the prior-averaged purity
  only hints at.

The classifier: two 5x5 convolutions (32, 64 channels, each ReLU + 2x2 max-pool) and FC 128 -> classes, 6 epochs of
Adam (lr 1e-3, batch 256) on the training split: 0.917 test accuracy on Fashion-MNIST (2 epochs gave 0.872, which
called generated shirts and pullovers coats more often: it is the judge of the hardest classes, so it gets the
epochs), ~99 % on MNIST, in about 3 minutes on 2 busy CPU cores (2-core AMD EPYC). Its own test accuracy is reported
so the check can be trusted only as far as it.

The classifier depends only on the training split and its own settings, so a cache folder (``cache_dir``; the CLI's
``classifier_cache_dir()``: ``$INFOGAN_CACHE/classifiers``, default ``~/.cache/infogan/classifiers``) keeps its
weights under a key made of the images' and labels' bytes, the settings and the torch version: evaluating the
checkpoints of a study trains it once, not once per checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import save_atomic
from .data import ImageSet
from .networks import Generator


class ReferenceClassifier(nn.Module):
    def __init__(self, channels: int, resolution: int, n_classes: int):
        super().__init__()
        side = resolution // 4  # two 2x2 pools
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(), nn.Linear(128, n_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, C, H, W) in [-1, 1] -> class logits (N, n_classes)."""
        return self.net(x)


def new_classifier(train: ImageSet) -> ReferenceClassifier:
    """An untrained classifier shaped for ``train``'s images and classes (which it must have)."""
    if train.labels is None:
        raise ValueError(f"{train.name} has no labels: the generated-class check needs a labelled training split")
    c, h, _ = train.shape
    return ReferenceClassifier(c, h, int(train.labels.max()) + 1)


def train_reference_classifier(train: ImageSet, *, epochs: int = 6, batch: int = 256, seed: int = 0) -> nn.Module:
    """A supervised classifier of ``train``'s labelled images (eval mode on return)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = new_classifier(train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=g)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            loss = nn.functional.cross_entropy(model(train.images[idx].float() / 127.5 - 1), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def classifier_cache_dir() -> Path:
    """Where the CLI keeps trained reference classifiers: ``$INFOGAN_CACHE/classifiers`` (default ~/.cache/infogan)."""
    return Path(os.environ.get("INFOGAN_CACHE", Path.home() / ".cache" / "infogan")) / "classifiers"


def classifier_key(train: ImageSet, *, epochs: int, batch: int, seed: int) -> str:
    """A digest of everything the trained classifier depends on (16 hex digits)."""
    h = hashlib.sha256()
    settings = f"{ReferenceClassifier.__name__}/1 epochs={epochs} batch={batch} seed={seed} torch={torch.__version__}"
    h.update(settings.encode())
    h.update(str(tuple(train.images.shape)).encode())
    h.update(train.images.contiguous().numpy().tobytes())
    h.update(train.labels.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def reference_classifier(
    train: ImageSet, *, cache_dir: str | Path | None = None, epochs: int = 6, batch: int = 256, seed: int = 0
) -> nn.Module:
    """``train_reference_classifier``, or its weights from ``cache_dir`` when this split and these settings were
    trained before (a file that cannot be read is trained again and replaced)."""
    if cache_dir is None:
        return train_reference_classifier(train, epochs=epochs, batch=batch, seed=seed)
    model = new_classifier(train)  # before the key: it reads the labels
    path = Path(cache_dir) / f"{train.name}-{classifier_key(train, epochs=epochs, batch=batch, seed=seed)}.pt"
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    except FileNotFoundError:
        pass
    except Exception as e:  # torn or foreign file: say so, train again, replace it
        print(f"reference classifier cache {path} unreadable ({type(e).__name__}); training it again", flush=True)
    model = train_reference_classifier(train, epochs=epochs, batch=batch, seed=seed)
    try:
        save_atomic(model.state_dict(), path)
    except OSError as e:  # a read-only cache costs time, never the evaluation
        print(f"cannot cache the reference classifier at {path}: {e}", flush=True)
    return model


@torch.no_grad()
def classify(model: nn.Module, images: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """images (N, C, H, W) in [-1, 1] -> predicted classes (N,)."""
    return np.concatenate(
        [model(images[i : i + batch].float()).argmax(1).numpy() for i in range(0, len(images), batch)]
    )


@torch.no_grad()
def drawn_classes(
    G: Generator,
    classifier: nn.Module,
    code: Any,
    k: int,
    n: int,
    n_classes: int,
    g: torch.Generator,
    held: dict[str, float] | None = None,
) -> np.ndarray:
    """The classifier's class counts (n_classes,) for n images G draws with ``code`` = k, the continuous codes in
    ``held`` at those values and every other input from the prior (drawn from ``g``)."""
    spec = G.spec
    z = spec.noise.sample(n, g)
    values = spec.sample_values(n, g)
    values[code.name] = torch.full((n,), k, dtype=torch.long)
    for name, v in (held or {}).items():
        values[name] = torch.full((n,), float(v))
    return np.bincount(classify(classifier, G(z, spec.encode(values)).clamp(-1, 1)), minlength=n_classes)


@torch.no_grad()
def generated_classes(
    G: Generator,
    classifier: nn.Module,
    *,
    n_classes: int,
    per_category: int = 500,
    seed: int = 0,
    category_to_class: dict[str, list[int]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per categorical code: the classifier's majority class and its share for each category's generated images."""
    spec = G.spec
    was_training = G.training
    G.eval()
    g = torch.Generator().manual_seed(seed)
    out: dict[str, dict[str, Any]] = {}
    try:
        for code in spec.categorical_codes():
            majority, purity, counts = [], [], []
            for k in range(code.categories):
                hist = drawn_classes(G, classifier, code, k, per_category, n_classes, g)
                majority.append(int(hist.argmax()))
                purity.append(float(hist.max() / per_category))
                counts.append(hist.tolist())
            entry: dict[str, Any] = {
                "class_of_category": majority,
                "purity": purity,
                "distinct": len(set(majority)) == code.categories,
                "classes_shown": len(set(majority)),
                "counts": counts,
            }
            corners = code_corners(spec)
            if corners:
                # its own stream, so the prior-averaged figures above do not depend on whether corners are checked
                corner_gen = torch.Generator().manual_seed(seed + 1)
                entry["corners"] = corner_check(G, classifier, code, corners, n_classes, per_category, corner_gen)
            q_map = (category_to_class or {}).get(code.name)
            if q_map:
                entry["agrees_with_q"] = [int(m == q) for m, q in zip(majority, q_map, strict=True)]
            out[code.name] = entry
    finally:
        G.train(was_training)
    return out


def code_corners(spec: Any, max_codes: int = 4) -> list[dict[str, float]]:
    """Every corner of the continuous codes' box (each code at its low or high end), for at most ``max_codes``
    codes (16 corners); none without continuous codes."""
    codes = spec.continuous_codes()[:max_codes]
    return [{c.name: (c.high if (j >> i) & 1 else c.low) for i, c in enumerate(codes)} for j in range(2 ** len(codes))]


@torch.no_grad()
def corner_check(
    G: Generator,
    classifier: nn.Module,
    code: Any,
    corners: list[dict[str, float]],
    n_classes: int,
    per_category: int,
    g: torch.Generator,
) -> dict[str, Any]:
    """Category k's majority class with the continuous codes held at each corner (``per_category / 4`` images per
    category and corner, at least 25)."""
    n = max(25, per_category // 4)
    classes = [
        [int(drawn_classes(G, classifier, code, k, n, n_classes, g, corner).argmax()) for corner in corners]
        for k in range(code.categories)
    ]
    return {
        "corner_values": corners,
        "corner_classes": classes,
        "stable_categories": sum(len(set(row)) == 1 for row in classes),
    }


def check_generated_classes(
    G: Generator,
    train: ImageSet,
    test: ImageSet | None,
    evaluation: dict[str, Any],
    *,
    per_category: int = 500,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train the reference classifier on ``train`` (or read it from ``cache_dir``), report its accuracy on ``test``
    and the per-code check."""
    classifier = reference_classifier(train, cache_dir=cache_dir)
    result: dict[str, Any] = {}
    if test is not None and test.labels is not None:
        pred = classify(classifier, test.as_float())
        result["classifier_test_accuracy"] = float((pred == test.labels.numpy()).mean())
    maps = {name: e.get("category_to_class") for name, e in evaluation.items() if isinstance(e, dict)}
    n_classes = int(train.labels.max()) + 1
    result["codes"] = generated_classes(
        G, classifier, n_classes=n_classes, per_category=per_category, category_to_class=maps
    )
    return result
