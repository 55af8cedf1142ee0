"""Model folders -> verified ONNX Runtime sessions, loaded in the app's lifespan (never at import time).

A folder is ``models/<id>/{generator.onnx, recognizer.onnx, manifest.json}`` as written by training/export.py.
Loading checks each file's sha256 and that the spec in its ONNX metadata equals the manifest's; a broken folder
is logged and reported by name while the others are served.

The folders are served in name order unless ``models/order.json`` (a JSON list of folder names) puts some of them
first: the first model served is the default of every route and the page's first choice, so the shipped set can
open on its flagship model rather than on whichever name sorts first.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .batching import MicroBatcher
from .config import Settings
from .latent import LatentSpec
from .metrics import Metrics

log = logging.getLogger("backend.models")

FILES = ("generator.onnx", "recognizer.onnx")
ORDER_FILE = "order.json"
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


class ModelError(ValueError):
    """A model folder that cannot be served; the message names the folder, the file and the fault."""


class DeviceError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def session_options(threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between runs: the same cores encode PNGs and serve HTTP in this process
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def resolve_device(requested: str, probe: Path | None, threads: int) -> str:
    """'auto' | 'cpu' | 'cuda' -> 'cpu' | 'cuda'. onnxruntime-gpu lists CUDA as available even without a GPU or
    its libraries, so the probe builds a real session and checks which provider it ended up with."""
    if requested == "cpu":
        return "cpu"
    if CUDA not in ort.get_available_providers() or probe is None:
        why = "this onnxruntime build has no CUDAExecutionProvider" if probe is not None else "no model to probe"
        ok, reason = False, why
    else:
        try:
            s = ort.InferenceSession(str(probe), session_options(threads), providers=[CUDA, CPU])
            ok = s.get_providers()[0] == CUDA
            reason = "" if ok else "CUDAExecutionProvider could not be initialised (no GPU or CUDA libraries)"
        except Exception as exc:  # noqa: BLE001 - any failure to start CUDA means "not available"
            ok, reason = False, f"CUDA session failed: {exc}"
    if ok:
        log.info("device: cuda (DEVICE=%s; ONNX Runtime CUDAExecutionProvider)", requested)
        return "cuda"
    if requested == "cuda":
        raise DeviceError(f"DEVICE=cuda but {reason}")
    log.info("device: cpu (DEVICE=auto; %s)", reason)
    return "cpu"


@dataclass
class Model:
    id: str
    folder: Path
    manifest: dict[str, Any]
    spec: LatentSpec
    generator: ort.InferenceSession
    recognizer: ort.InferenceSession
    device: str
    metrics: Metrics
    batcher: MicroBatcher | None = None
    rec_outputs: list[str] = field(default_factory=list)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        im = self.manifest["image"]
        return int(im["channels"]), int(im["height"]), int(im["width"])

    @property
    def light_on_dark(self) -> bool:
        return bool(self.manifest.get("light_on_dark", False))

    def run_generator(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """z (N, noise dim), c (N, code width) float32 -> images (N, C, H, W) in [0, 1]."""
        t = time.perf_counter()
        (images,) = self.generator.run(["images"], {"z": z, "c": c})
        self.metrics.inference.labels(self.id, "generator").observe(time.perf_counter() - t)
        return images

    def generate(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        self.metrics.images.labels(self.id).inc(len(z))
        return self.batcher(z, c) if self.batcher else self.run_generator(z, c)

    def recognize(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """images (N, C, H, W) in [0, 1] -> Q's outputs by name ('<code>.logits', '<code>.mean', ...)."""
        t = time.perf_counter()
        out = self.recognizer.run(self.rec_outputs, {"images": images})
        self.metrics.inference.labels(self.id, "recognizer").observe(time.perf_counter() - t)
        return dict(zip(self.rec_outputs, out))

    def info(self) -> dict[str, Any]:
        c, h, w = self.image_shape
        m = self.manifest
        return {"id": self.id, "title": m.get("title", self.id), "dataset": m.get("dataset", ""),
                "image": {"height": h, "width": w, "channels": c}, "noise": self.spec.noise.info(),
                "codes": [code.info() for code in self.spec.codes], "metrics": m.get("metrics") or {},
                "device": self.device}

    def warm_up(self) -> None:
        z = np.zeros((1, self.spec.noise.dim), np.float32)
        c = self.spec.encode({code.name: np.zeros(1) for code in self.spec.codes})
        images = self.run_generator(z, c)
        self.recognize(images)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder.name}: manifest.json is missing") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder.name}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(m, dict) or m.get("format") != "infogan-model" or m.get("version") != 1:
        raise ModelError(f"{folder.name}: manifest.json is not an 'infogan-model' version 1 manifest")
    for key in ("id", "image", "spec", "files"):
        if key not in m:
            raise ModelError(f"{folder.name}: manifest.json lacks {key!r}")
    return m


def load_model(folder: Path, *, device: str, settings: Settings, metrics: Metrics) -> Model:
    m = read_manifest(folder)
    try:
        spec = LatentSpec.from_dict(m["spec"])
        _ = [int(m["image"][k]) for k in ("channels", "height", "width")]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder.name}: manifest.json has a bad spec or image shape ({exc!r})") from None
    providers = [CUDA, CPU] if device == "cuda" else [CPU]
    sessions = {}
    for name in FILES:
        path = folder / name
        expected = (m["files"].get(name) or {}).get("sha256")
        if not path.is_file():
            raise ModelError(f"{folder.name}: {name} is missing")
        actual = _sha256(path)
        if actual != expected:
            raise ModelError(f"{folder.name}: {name} sha256 {actual[:12]}... does not match the manifest's "
                             f"{str(expected)[:12]}...")
        try:
            sess = ort.InferenceSession(str(path), session_options(settings.threads()), providers=providers)
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises several types for unreadable graphs
            raise ModelError(f"{folder.name}: {name} cannot be loaded by ONNX Runtime ({exc})") from None
        meta = sess.get_modelmeta().custom_metadata_map.get("infogan_spec")
        if meta is None:
            raise ModelError(f"{folder.name}: {name} has no 'infogan_spec' metadata")
        if json.loads(meta) != m["spec"]:
            raise ModelError(f"{folder.name}: the spec in {name}'s metadata differs from manifest.json's")
        sessions[name] = sess
    rec_outputs = [o.name for o in sessions["recognizer.onnx"].get_outputs()]
    missing = [o for o in m.get("outputs", {}).get("recognizer", []) if o not in rec_outputs]
    if missing:
        raise ModelError(f"{folder.name}: recognizer.onnx lacks outputs {missing}")
    model = Model(str(m["id"]), folder, m, spec, sessions["generator.onnx"], sessions["recognizer.onnx"], device,
                  metrics, rec_outputs=rec_outputs)
    if settings.batch_wait_ms > 0:
        model.batcher = MicroBatcher(model.run_generator, max_rows=settings.max_batch,
                                     wait_s=settings.batch_wait_ms / 1000,
                                     on_batch=lambda rows, reqs: (metrics.batch_rows.labels(model.id).observe(rows),
                                                                  metrics.batch_requests.labels(model.id).observe(reqs)))
    return model


class Registry:
    """The served models by id, in folder order (order.json's, then by name; the first is the default). Loads in a
    background thread so /healthz answers at once and /readyz says 503 until every model is loaded and warmed up."""

    def __init__(self, settings: Settings, metrics: Metrics):
        self.settings, self.metrics = settings, metrics
        self.models: dict[str, Model] = {}
        self.errors: dict[str, str] = {}
        self.device = "cpu"
        self.ready = threading.Event()
        self._thread: threading.Thread | None = None

    def folders(self) -> list[Path]:
        """The model folders, those named in order.json first (in its order), then the rest by name."""
        root = self.settings.models_dir
        if not root.is_dir():
            return []
        rank = {name: i for i, name in enumerate(self.read_order(root))}
        found = (p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        return sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))

    def read_order(self, root: Path) -> list[str]:
        """order.json's folder names; a malformed file is reported like a broken folder (by its name in /readyz's
        errors) and the models are served in name order."""
        path = root / ORDER_FILE
        if not path.is_file():
            return []
        try:
            order = json.loads(path.read_text())
            if not isinstance(order, list) or not all(isinstance(name, str) for name in order):
                raise ValueError("expected a JSON list of model folder names")
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            self.errors[ORDER_FILE] = f"{ORDER_FILE}: {exc}; models are served in folder-name order"
            log.error("%s", self.errors[ORDER_FILE])
            return []
        missing = [name for name in order if not (root / name).is_dir()]
        if missing:
            log.warning("%s names folders that are not in %s: %s", ORDER_FILE, root, missing)
        return order

    def start(self) -> None:
        """Picks the device now (DEVICE=cuda fails the start-up), then loads the folders in the background."""
        folders = self.folders()
        probe = next((f / "generator.onnx" for f in folders if (f / "generator.onnx").is_file()), None)
        self.device = resolve_device(self.settings.device, probe, self.settings.threads())
        self._thread = threading.Thread(target=self.load_all, args=(folders,), name="model-loader", daemon=True)
        self._thread.start()

    def load_all(self, folders: list[Path]) -> None:
        for folder in folders:
            try:
                model = load_model(folder, device=self.device, settings=self.settings, metrics=self.metrics)
                if model.id in self.models:
                    raise ModelError(f"{folder.name}: model id {model.id!r} is already served from another folder")
                model.warm_up()
            except Exception as exc:  # noqa: BLE001 - one broken folder must not stop the others
                msg = str(exc) if isinstance(exc, ModelError) else f"{folder.name}: {exc!r}"
                self.errors[folder.name] = msg
                log.error("model folder not served: %s", msg)
                continue
            self.models[model.id] = model
            log.info("model %r loaded from %s (%s)", model.id, folder, self.device)
        if not folders:
            log.warning("no model folders in %s", self.settings.models_dir)
        self.ready.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.ready.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
        for m in self.models.values():
            if m.batcher:
                m.batcher.close()
