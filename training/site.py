"""``infogan site --out DIR``: the explorer as plain files for any static host (no Python server).

DIR gets the page (index.html, marked ``data-site="static"``), its scripts and the onnxruntime-web runtime
(static/, static/ort/), ``models.json`` (what GET /models answers, through its schema; device "wasm") and each
model's ONNX files under ``models/<id>/files/`` (the service's URLs, so the page fetches them the same way).
Everything runs in the page: generation, traversals, side by side and reading codes from a drawing; uploading a file
(decoded by the service's image decoders) is hidden. Without cross-origin isolation headers from the host, ORT runs
single-threaded.
"""

from __future__ import annotations

import contextlib
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
    if not (frontend_dir / "index.html").is_file():
        raise FileNotFoundError(
            f"{frontend_dir} holds no page (index.html): infogan site builds from a source checkout of the project"
        )
    if missing:
        raise FileNotFoundError(
            f"{frontend_dir / 'static' / 'ort'} lacks {missing}: run `make install` (npm ci copies onnxruntime-web)"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a new or empty folder")
    if out.is_dir() and any(not e.name.startswith(PART_PREFIX) for e in out.iterdir()):
        raise ValueError(f"{out} is not empty")
    folders = model_folders(models_dir)
    if not folders:
        raise FileNotFoundError(f"{models_dir} has no model folder (manifest.json)")
    manifests = [Manifest.read(folder) for folder in folders]  # every manifest read before anything is written
    ids = [m.id for m in manifests]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"model id(s) {twice} come from more than one folder of {models_dir}")

    # Staged and moved into `out` at the end: a build that fails half-way (a file whose sha256 does not match its
    # manifest, a full disk, SIGTERM) leaves no half-built site. An existing (empty) `out` is staged inside itself:
    # the same file system whatever is mounted there, and its parent need not be writable; it keeps its inode, so a
    # shell standing in it still sees the site. A new `out` is staged beside it and renamed into place; parent
    # folders made for it are removed again on failure.
    out = out.resolve()  # "." has no name to put beside
    existed = out.is_dir()
    part = out / f"{PART_PREFIX}{os.getpid()}" if existed else out.with_name(f".{out.name}{PART_PREFIX}{os.getpid()}")
    made = _missing_parents(part.parent)
    try:
        part.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_parts(part.parent, part.name.removesuffix(str(os.getpid())))
        if existed and any(e.name != part.name for e in out.iterdir()):
            raise ValueError(f"{out} is not empty")
        shutil.rmtree(part, ignore_errors=True)
        _write_site(part, frontend_dir, folders, manifests, ids)
        if existed:
            for entry in sorted(part.iterdir()):
                os.replace(entry, out / entry.name)
        else:
            os.replace(part, out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        for folder in made:  # deepest first; only while still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(part, ignore_errors=True)  # the emptied staging folder inside `out`
    return ids


PART_PREFIX = ".site.part-"


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_stale_parts(folder: Path, prefix: str) -> None:
    """Staging folders of earlier builds that were killed (SIGKILL, power loss): ``<prefix><pid>`` whose process is
    gone. A build still running elsewhere keeps its own."""
    for entry in folder.glob(prefix + "*"):
        pid = entry.name.removeprefix(prefix)
        if not pid.isdigit() or not entry.is_dir():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # alive, another user's
            pass


def _write_site(out: Path, frontend_dir: Path, folders: list[Path], manifests: list, ids: list[str]) -> None:
    from jinja2 import Environment, FileSystemLoader

    from backend.core.model import Model
    from backend.schemas import ModelList
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
    # through GET /models' own response schema, as FastAPI serialises it (labels filled in, nulls kept), so the static
    # page reads the document the served page reads; only the device differs (the schema's are the service's)
    served = [{**m, "device": "cpu"} for m in models]
    listing = ModelList.model_validate({"models": served}).model_dump(mode="json", by_alias=True)
    models = listing["models"] = [{**m, "device": DEVICE} for m in listing["models"]]
    (out / "models.json").write_text(json.dumps(listing, indent=1), encoding="utf-8")
    env = Environment(loader=FileSystemLoader(str(frontend_dir)), autoescape=True)
    page = env.get_template("index.html").render(models=models, static="static", static_site=True)
    (out / "index.html").write_text(page, encoding="utf-8")  # the page says <meta charset="utf-8">
