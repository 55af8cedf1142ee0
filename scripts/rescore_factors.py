"""A shipped model's disentanglement metrics again, from its own ``recognizer.onnx`` (sha256 checked), on the data set
its manifest names, with the sizes and seed its export used: how a change to the metrics' procedure reaches models
whose checkpoints are not in the repository.

    python scripts/rescore_factors.py models/chairs3d [models/dsprites ...] [--data-dir DIR] [--write]

Prints each headline figure as the manifest has it and as computed now; ``--write`` stores the new
``metrics.disentanglement``, the command in ``provenance.disentanglement_command`` and the machine in
``provenance.disentanglement_machine``. Q reads the training split's
real images as ``infogan export`` evaluated them (its recognizer is the BatchNorm-calibrated D the export evaluated):
continuous codes by their posterior mean, a categorical code by its most likely category, mapped back through the
manifest's ``category_order`` to the checkpoint's category (the index the export's evaluation saw; SAP's linear
classifiers depend on it). For an fp32 export the codes equal the evaluated network's to fp32 rounding; fp16/int8
weights differ slightly (docs/service.md), so this says which storage it read.

Used once so far: DCI's and SAP's test images were drawn independently of their training images (with replacement,
as disentanglement_lib does), so on the 16,000 3D chairs about half the "held-out" images were training images too;
they are now distinct (``training/disentanglement.held_out_codes``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spec.manifest import RECOGNIZER_FILE, RECOGNIZER_INPUT, Manifest, ManifestError  # noqa: E402

# the headline figures, as (label, path into metrics.disentanglement)
FIGURES = (
    ("FactorVAE", ("factor_vae", "score")),
    ("MIG", ("mig", "score")),
    ("DCI disentanglement", ("dci", "disentanglement")),
    ("DCI completeness", ("dci", "completeness")),
    ("DCI informativeness (test)", ("dci", "informativeness_test")),
    ("SAP", ("sap", "score")),
)


def onnx_representation(folder: Path, manifest: Manifest):
    """images float32 (N, C, H, W) in [-1, 1] -> (N, #codes): the recognizer's point estimates in spec order."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(manifest.verify_file(folder, RECOGNIZER_FILE)), providers=["CPUExecutionProvider"])
    codes = manifest.latent().codes
    names = [code.output_names()[0] for code in codes]  # a categorical code's logits, a continuous code's mean
    orders = [np.asarray(manifest.category_order.get(code.name, []), np.int64) for code in codes]

    def represent(images: np.ndarray) -> np.ndarray:
        outs = sess.run(names, {RECOGNIZER_INPUT: (images * 0.5 + 0.5).astype(np.float32)})  # to [0, 1]
        cols = []
        for out, order in zip(outs, orders, strict=True):
            if out.ndim == 2:  # logits (N, K): exported index j is the checkpoint's category order[j]
                j = out.argmax(1)
                cols.append((order[j] if len(order) else j).astype(np.float64))
            else:
                cols.append(out.astype(np.float64))
        return np.stack(cols, axis=1)

    return represent


def figure(metrics: dict, path: tuple[str, str]) -> float | None:
    value = (metrics.get(path[0]) or {}).get(path[1])
    return None if value is None else float(value)


def rescore(folder: Path, data_dir: str | None, write: bool, command: str) -> str:
    from training.data import DataError, load_dataset
    from training.disentanglement import disentanglement_metrics, sample_sizes
    from training.machine import describe
    from training.stages import stage_printer

    try:
        manifest = Manifest.read(folder)
        old = manifest.metrics.get("disentanglement")
        if not old:
            return f"{folder.name}: no disentanglement metrics in its manifest (a data set without factors)"
        split = manifest.provenance.get("evaluated_on", "train")
        data = load_dataset(manifest.dataset, data_dir, split, allow_download=False)
        represent = onnx_representation(folder, manifest)
    except (ManifestError, DataError, OSError, ValueError) as e:
        raise SystemExit(f"rescore_factors: error: {folder}: {e}") from None
    sizes = old.get("sizes") or {}  # none recorded: disentanglement_lib's sizes, the metrics' defaults
    # what disentanglement_metrics records under "sizes": its sample sizes and the collapsed-code threshold
    if not isinstance(sizes, dict) or set(sizes) - (sample_sizes() | {"prune_std"}):
        raise SystemExit(f"rescore_factors: error: {folder}: metrics.disentanglement.sizes is not a table of sizes")
    new = disentanglement_metrics(
        represent,
        data,
        np.random.default_rng(0),  # the export's seed (evaluate_model's default)
        code_names=[c.name for c in manifest.latent().codes],
        progress=stage_printer(),
        **sizes,
    )
    lines = [f"{folder.name} ({manifest.weights} weights, {manifest.dataset} {split}, {len(data.images):,} images):"]
    for label, path in FIGURES:
        a, b = figure(old, path), figure(new, path)
        show = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        lines.append(f"  {label}: {show(a)} -> {show(b)}")
    if write:
        manifest.metrics["disentanglement"] = new
        manifest.provenance["disentanglement_command"] = command
        manifest.provenance["disentanglement_machine"] = describe("cpu")  # where these figures were computed
        Manifest.model_validate(manifest.model_dump()).write(folder)
        lines.append(f"  written to {folder / 'manifest.json'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--data-dir", help="the data set's folder (default: where the loader looks, ~/.cache/infogan)")
    ap.add_argument("--write", action="store_true", help="store the new figures in each model folder's manifest")
    args = ap.parse_args(argv)
    if args.data_dir == "":
        ap.error("--data-dir: an empty path")
    command = shlex.join(["python", "scripts/rescore_factors.py", *(argv if argv is not None else sys.argv[1:])])
    for folder in args.folders:
        print(rescore(folder, args.data_dir, args.write, command), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
