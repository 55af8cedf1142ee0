"""Where a shipped model's categorical code errs: per-class recall and the largest confusions on a labelled split.

    python scripts/confusions.py models/mnist --data-dir ../shared/data/mnist
    python scripts/confusions.py models/fashion-mnist --data-dir /usr/share/datasets/fashion-mnist

Runs the model's own ``recognizer.onnx`` (sha256 checked) on the split; exported category j is class j (``infogan
export`` orders the categories by the evaluation's map), so Q's argmax is the predicted class and its accuracy is
the manifest's unsupervised accuracy (``tests/test_shipped_models.py`` checks that equality).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from spec.manifest import RECOGNIZER_FILE, RECOGNIZER_INPUT, Manifest, ManifestError  # noqa: E402


def confusion_matrix(
    folder: Path, data_dir: str, split: str = "test", *, verify: bool = True
) -> tuple[np.ndarray, list[str]]:
    """(classes x classes) counts, rows the true class, columns Q's category; and the class names. ``verify``: check
    the data files' published checksums."""
    import onnxruntime as ort

    from training.data import DataError, load_dataset
    from training.evaluate import confusion

    manifest = Manifest.read(folder)
    cats = manifest.latent().categorical_codes()
    if not cats:
        raise SystemExit(f"confusions: error: {folder.name} has no categorical code")
    (logits_name,) = cats[0].output_names()
    try:
        data = load_dataset(manifest.dataset, data_dir, split, allow_download=False, verify=verify)
    except DataError as e:
        raise SystemExit(f"confusions: error: {e}") from None
    if data.labels is None:
        raise SystemExit(f"confusions: error: {manifest.dataset}'s {split!r} split has no labels")
    sess = ort.InferenceSession(str(manifest.verify_file(folder, RECOGNIZER_FILE)), providers=["CPUExecutionProvider"])
    images = data.as_float().numpy() * 0.5 + 0.5  # [-1, 1] -> the recognizer's [0, 1]
    batches = (images[i : i + 1000] for i in range(0, len(images), 1000))
    pred = np.concatenate([sess.run([logits_name], {RECOGNIZER_INPUT: x})[0].argmax(1) for x in batches])
    labels = data.labels.numpy()
    k = max(int(labels.max()) + 1, cats[0].categories)
    m = confusion(pred, labels, k, k).T  # rows: the true class, columns: the category read
    names = list(data.classes) if data.classes else [str(i) for i in range(k)]
    return m, names


def report(m: np.ndarray, names: list[str], top: int = 6) -> str:
    recall = np.diag(m) / np.maximum(m.sum(1), 1)
    off = sorted(((m[i, j], i, j) for i in range(len(m)) for j in range(len(m)) if i != j), reverse=True)[:top]
    return "\n".join(
        [
            f"accuracy {np.trace(m) / m.sum():.4f} ({m.sum() - np.trace(m)} errors in {m.sum()})",
            "recall: " + ", ".join(f"{n} {r:.3f}" for n, r in zip(names, recall, strict=False)),
            "largest confusions (true -> read as): " + ", ".join(f"{names[i]} -> {names[j]} {c}" for c, i, j in off),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--split", default="test")
    args = ap.parse_args(argv)
    try:
        m, names = confusion_matrix(args.folder, args.data_dir, args.split)
    except (ManifestError, OSError) as e:
        raise SystemExit(f"confusions: error: {args.folder}: {e}") from None
    print(report(m, names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
