"""``infogan site --out DIR``: the explorer as plain files for any static host (no Python server).

DIR gets the page (index.html, marked ``data-site="static"``), its scripts and the onnxruntime-web runtime
(static/, static/ort/), ``models.json`` (what GET /models answers) and each model's ONNX files under
``models/<id>/files/`` (the service's URLs, so the page fetches them the same way). Everything runs in the page:
generation, traversals, side by side and reading codes from a drawing; uploading a file (decoded by the service's
image decoders) is hidden. Without cross-origin isolation headers from the host, ORT runs single-threaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# what the page's device badge says: the model runs in the visitor's browser (WebAssembly)
DEVICE = "wasm"


def model_folders(models_dir: Path) -> list[Path]:
    """Model folders in the service's order: those named in order.json first, then the rest by name."""
    folders = sorted(p for p in models_dir.iterdir() if (p / "manifest.json").is_file())
    order_file = models_dir / "order.json"
    order = json.loads(order_file.read_text()) if order_file.is_file() else []
    first = [models_dir / name for name in order if (models_dir / name / "manifest.json").is_file()]
    return first + [p for p in folders if p not in first]


def build_site(out: Path, models_dir: Path | None = None, frontend_dir: Path | None = None) -> list[str]:
    """Writes the static site into ``out`` (created; an existing folder must be empty); returns the model ids."""
    from jinja2 import Environment, FileSystemLoader

    from backend.core.model import Model
    from spec.manifest import MODEL_FILES, Manifest

    models_dir = Path(models_dir or ROOT / "models")
    frontend_dir = Path(frontend_dir or ROOT / "frontend")
    missing = [f for f in ORT_FILES if not (frontend_dir / "static" / "ort" / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{frontend_dir / 'static' / 'ort'} lacks {missing}: run `make install` (npm ci copies onnxruntime-web)"
        )
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    folders = model_folders(models_dir)
    if not folders:
        raise FileNotFoundError(f"{models_dir} has no model folder (manifest.json)")

    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(frontend_dir / "static", out / "static")
    manifests = [Manifest.read(folder) for folder in folders]
    ids = [m.id for m in manifests]
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
    return ids
