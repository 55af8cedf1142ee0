"""Measure what each continuous code of a shipped model does, record it, and label the codes from it.

    python scripts/code_effects.py models/mnist models/fashion-mnist               # print, change nothing
    python scripts/code_effects.py models/mnist-gan --write --label c1=... --label c2=...

``infogan export`` measures the code effects itself (``training/code_effects.py``) and takes labels with
``--label``. This script is for shipped models whose checkpoints are not in the repository: it runs the model's own
``generator.onnx`` (sha256 checked), prints the statistics each continuous code moves most, and with ``--write``
stores them in the manifest's ``metrics.code_effects`` (the command in ``provenance.code_effects_command``).
``--label CODE=TEXT`` (one folder only, with ``--write``) names a continuous code: it rewrites the spec in the
manifest and in both ONNX files' metadata, nothing else in the graphs (``migrate_manifests.rewrite_metadata``
refuses otherwise), and updates the files' sha256 and sizes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
from migrate_manifests import rewrite_metadata  # noqa: E402

from spec.latent import SpecError  # noqa: E402
from spec.manifest import MODEL_FILES, Manifest, ManifestError  # noqa: E402
from training.code_effects import code_effects, describe, onnx_generator  # noqa: E402
from training.export import ExportError, parse_code_labels  # noqa: E402
from training.latent import LatentSpec  # noqa: E402


def relabel(manifest: Manifest, items: list[str]) -> Manifest:
    """``CODE=TEXT`` items -> a manifest whose spec carries the labels (continuous codes only), read by export's
    own parser (training/export.parse_code_labels), so both name codes by the same rules."""
    spec = manifest.latent(LatentSpec)
    try:
        for name, text in parse_code_labels(spec, items).items():
            spec = spec.with_text(name, label=text)
    except (ExportError, SpecError, KeyError, ValueError) as e:
        raise SystemExit(f"code_effects: error: {e}") from None
    return manifest.model_copy(update={"spec": spec.to_dict()})


def run(folder: Path, *, draws: int, write: bool, labels: list[str], command: str) -> str:
    try:
        manifest = Manifest.read(folder)
        spec = manifest.latent(LatentSpec)
        if not spec.continuous_codes():
            return f"{folder.name}: no continuous codes"
        labelled = relabel(manifest, labels) if labels else manifest  # before the minutes of measuring
        generator = onnx_generator(folder)  # sha256 checked
    except (ManifestError, OSError, ValueError) as e:
        raise SystemExit(f"code_effects: error: {folder}: {e}") from None
    effects = code_effects(spec, generator, draws=draws, drawing=manifest.drawing)
    if write:
        if labels:
            manifest = labelled
            for name in MODEL_FILES:
                rewrite_metadata(folder / name, manifest.spec)
            manifest.files = Manifest.file_entries(folder)
        manifest.metrics["code_effects"] = effects
        manifest.provenance["code_effects_command"] = command
        Manifest.model_validate(manifest.model_dump()).write(folder)
        for name in MODEL_FILES:  # the rewritten files must match the manifest that now describes them
            Manifest.read(folder).verify_file(folder, name)
    names = {c.name: c.label for c in manifest.latent(LatentSpec).continuous_codes()}
    head = f"{folder.name} (labels: " + ", ".join(f"{k}={v or '-'}" for k, v in names.items()) + ")"
    return head + "\n" + "\n".join("  " + line for line in describe(effects, top=3).splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--draws", type=int, default=200, help="independent rows of each sweep (default 200)")
    ap.add_argument("--write", action="store_true", help="store the effects (and --label) in the model folder")
    ap.add_argument("--label", action="append", default=[], metavar="CODE=LABEL")
    args = ap.parse_args(argv)
    if args.label and (not args.write or len(args.folders) != 1):
        ap.error("--label names one model's codes: give one folder and --write")
    if args.draws < 2:
        ap.error("--draws must be at least 2")
    command = shlex.join(["python", "scripts/code_effects.py", *(argv if argv is not None else sys.argv[1:])])
    for folder in args.folders:
        print(run(folder, draws=args.draws, write=args.write, labels=args.label, command=command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
