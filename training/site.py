"""``infogan site --out DIR``: the explorer as plain files for any static host (no Python server).

DIR gets the page (index.html, marked ``data-site="static"``), its scripts and the onnxruntime-web runtime
(static/, static/ort/), ``models.json`` (what GET /models answers) and each model's ONNX files under
``models/<id>/files/`` (the service's URLs, so the page fetches them the same way). Everything runs in the page:
generation, traversals, side by side and reading codes from a drawing; uploading a file (decoded by the service's
image decoders) is hidden. Without cross-origin isolation headers from the host, ORT runs single-threaded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# what the page's device badge says: the model runs in the visitor's browser (WebAssembly)
DEVICE = "wasm"


def model_folders(models_dir: Path) -> list[Path]:
    """Model folders in the service's order (spec/manifest.py ordered_folders); a malformed order.json is an error
    here (the service serves in name order and reports it, a build should not quietly reorder the page)."""
    from spec.manifest import MANIFEST_FILE, ordered_folders, read_order

    if not models_dir.is_dir():
        what = "is a file, not a folder of models" if models_dir.exists() else "does not exist"
        raise FileNotFoundError(f"--models-dir {models_dir} {what}")
    return [p for p in ordered_folders(models_dir, read_order(models_dir)) if (p / MANIFEST_FILE).is_file()]


def build_site(out: Path, models_dir: Path | None = None, frontend_dir: Path | None = None) -> list[str]:
    """Writes the static site into ``out`` (created; an existing folder must be empty); returns the model ids."""
    from spec.manifest import Manifest

    models_dir = Path(models_dir or ROOT / "models")
    frontend_dir = Path(frontend_dir or ROOT / "frontend")
    missing = [f for f in ORT_FILES if not (frontend_dir / "static" / "ort" / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{frontend_dir / 'static' / 'ort'} lacks {missing}: run `make install` (npm ci copies onnxruntime-web)"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    folders = model_folders(models_dir)
    if not folders:
        raise FileNotFoundError(f"{models_dir} has no model folder (manifest.json)")
    manifests = [Manifest.read(folder) for folder in folders]  # every manifest read before anything is written
    ids = [m.id for m in manifests]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"model id(s) {twice} come from more than one folder of {models_dir}")

    # written beside `out` and moved into it at the end: a build that fails half-way (a file whose sha256 does not
    # match its manifest, a full disk) leaves no half-built site. An existing (empty) `out` keeps its inode, so a
    # shell standing in it still sees the site
    out = out.resolve()  # "." has no name to put beside
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part-{os.getpid()}")
    shutil.rmtree(part, ignore_errors=True)
    try:
        _write_site(part, frontend_dir, folders, manifests, ids)
        if out.is_dir():
            for entry in sorted(part.iterdir()):
                os.replace(entry, out / entry.name)
        else:
            os.replace(part, out)
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return ids


def _write_site(out: Path, frontend_dir: Path, folders: list[Path], manifests: list, ids: list[str]) -> None:
    from jinja2 import Environment, FileSystemLoader

    from backend.core.model import Model
    from spec.manifest import MODEL_FILES

    shutil.copytree(frontend_dir / "static", out / "static")
    models = []
    for folder, manifest in zip(folders, manifests, strict=True):
        target = out / "models" / manifest.id / "files"
        target.mkdir(parents=True)
        for name in MODEL_FILES:
            shutil.copyfile(manifest.verify_file(folder, name), target / name)  # sha256 checked
        # GET /models' entry for it, by the service's own code (no ONNX session needed for the description)
        model = Model(folder, manifest, manifest.latent(), None, None, DEVICE, None)  # type: ignore[arg-type]
        models.append(model.to_json(served=ids))
    (out / "models.json").write_text(json.dumps({"models": models}, indent=1))
    env = Environment(loader=FileSystemLoader(str(frontend_dir)), autoescape=True)
    page = env.get_template("index.html").render(models=models, static="static", static_site=True)
    (out / "index.html").write_text(page)
