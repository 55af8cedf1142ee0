"""Model folders -> verified, served models, loaded in the app's lifespan (never at import time).

A folder is ``models/<id>/`` as ``infogan export`` writes it (spec/manifest.py: the manifest and the two ONNX files).
Loading checks each file's sha256 and that the spec in its ONNX metadata equals the manifest's; a broken folder
is logged and reported by name while the others are served.

The folders are served in name order unless ``models/order.json`` (a JSON list of folder names) puts some of them
first: the first model served is the default of every route and the page's first choice, so the shipped set can
open on its flagship model rather than on whichever name sorts first.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import onnxruntime as ort

from spec.manifest import (
    GENERATOR_FILE,
    GENERATOR_INPUTS,
    ORDER_FILE,
    RECOGNIZER_FILE,
    RECOGNIZER_INPUT,
    SPEC_METADATA_KEY,
    Manifest,
    ManifestError,
    ordered_folders,
    read_order,
)

from .batching import MicroBatcher
from .config import Settings
from .device import probe_file, providers, resolve_device, session_options
from .metrics import Metrics
from .model import Model, file_identity

log = logging.getLogger("backend.models")

# each graph's inputs, by file (the recognizer's outputs come from the spec)
INPUTS = {GENERATOR_FILE: list(GENERATOR_INPUTS), RECOGNIZER_FILE: [RECOGNIZER_INPUT]}


class ModelError(ValueError):
    """A model folder that cannot be served; the message names the folder, the file and the fault."""


def open_session(folder: Path, manifest: Manifest, name: str, *, device: str, threads: int) -> ort.InferenceSession:
    """folder/name as an ONNX Runtime session, after its sha256 check; its spec metadata must equal the manifest's
    and its inputs must be the layout's."""
    path = manifest.verify_file(folder, name)
    try:
        sess = ort.InferenceSession(str(path), session_options(threads), providers=providers(device))
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises several types for unreadable graphs
        raise ModelError(f"{folder.name}: {name} cannot be loaded by ONNX Runtime ({exc})") from None
    meta = sess.get_modelmeta().custom_metadata_map.get(SPEC_METADATA_KEY)
    if meta is None:
        raise ModelError(f"{folder.name}: {name} has no {SPEC_METADATA_KEY!r} metadata")
    try:
        same = json.loads(meta) == manifest.spec
    except ValueError:
        same = False
    if not same:
        raise ModelError(f"{folder.name}: the spec in {name}'s metadata differs from the manifest's")
    inputs = [i.name for i in sess.get_inputs()]
    if inputs != INPUTS[name]:
        raise ModelError(f"{folder.name}: {name} takes inputs {inputs}, expected {INPUTS[name]}")
    return sess


def load_model(folder: Path, *, device: str, settings: Settings, metrics: Metrics) -> Model:
    """A model folder -> a Model (ManifestError or ModelError naming the folder otherwise); not yet warmed up."""
    manifest = Manifest.read(folder)
    spec = manifest.latent()
    threads = settings.threads()
    generator = open_session(folder, manifest, GENERATOR_FILE, device=device, threads=threads)
    recognizer = open_session(folder, manifest, RECOGNIZER_FILE, device=device, threads=threads)
    outputs = {o.name for o in recognizer.get_outputs()}
    missing = [name for name in spec.output_names() if name not in outputs]
    if missing:
        raise ModelError(f"{folder.name}: {RECOGNIZER_FILE} lacks outputs {missing}")
    model = Model(folder, manifest, spec, generator, recognizer, device, metrics)
    model.files_on_disk = {name: file_identity(folder / name) for name in (GENERATOR_FILE, RECOGNIZER_FILE)}
    if settings.batch_wait_ms > 0:
        model.batcher = MicroBatcher(
            model.run_generator,
            max_rows=settings.max_batch,
            wait_s=settings.batch_wait_ms / 1000,
            on_batch=lambda rows, reqs: (
                metrics.batch_rows.labels(model.id).observe(rows),
                metrics.batch_requests.labels(model.id).observe(reqs),
            ),
        )
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
        # set by close(): the loader stops before its next folder. A shutdown (SIGTERM, or uvicorn failing to bind
        # its port) during loading waited in close() for every remaining folder to load and warm up (24 folders:
        # 4.2 s after SIGTERM), up to the join's 30 s
        self.closing = threading.Event()
        self._thread: threading.Thread | None = None

    def folders(self) -> list[Path]:
        """The model folders, those named in order.json first (in its order), then the rest by name. A malformed
        order.json is reported like a broken folder (by its name in /readyz's errors); the models are then served in
        folder-name order."""
        root = self.settings.models_dir
        if not root.is_dir():
            return []
        try:
            order = read_order(root)
        except ManifestError as exc:
            self.errors[ORDER_FILE] = f"{exc}; models are served in folder-name order"
            log.error("%s", self.errors[ORDER_FILE])
            order = []
        missing = [name for name in order if not (root / name).is_dir()]
        if missing:  # a typo changes the default model: said in /readyz's errors, not only in the log
            self.errors[ORDER_FILE] = f"names folders that are not in {root}: {missing}"
            log.warning("%s %s", ORDER_FILE, self.errors[ORDER_FILE])
        return ordered_folders(root, order)

    def start(self, device: str | None = None) -> None:
        """Picks the device now (DEVICE=cuda fails the start-up), then loads the folders in the background.
        ``device``: already resolved (by device.cuda_or_exit before uvicorn started), so not probed again."""
        folders = self.folders()
        self.device = device or resolve_device(self.settings.device, probe_file(folders), self.settings.threads())
        self._thread = threading.Thread(target=self.load_all, args=(folders,), name="model-loader", daemon=True)
        self._thread.start()

    def load_all(self, folders: list[Path]) -> None:
        for folder in folders:
            if self.closing.is_set():
                return  # shutting down: ready stays unset, so no answer lists the partial set
            try:
                model = load_model(folder, device=self.device, settings=self.settings, metrics=self.metrics)
                if model.id in self.models:
                    raise ModelError(f"{folder.name}: model id {model.id!r} is already served from another folder")
                model.warm_up()
            except Exception as exc:  # noqa: BLE001 - one broken folder must not stop the others
                msg = str(exc) if isinstance(exc, (ManifestError, ModelError)) else f"{folder.name}: {exc!r}"
                self.errors[folder.name] = msg
                log.error("model folder not served: %s", msg)
                continue
            self.models[model.id] = model
            log.info("model %r loaded from %s (%s)", model.id, folder, self.device)
        if not folders:
            log.warning("no model folders in %s", self.settings.models_dir)
        for model in self.models.values():
            other = model.manifest.compare_with
            if other is not None and other not in self.models:
                log.warning("model %r: compare_with names %r, which is not served; /models shows none", model.id, other)
        self.ready.set()

    def to_json(self) -> list[dict[str, Any]]:
        """Every served model as GET /models shows it, in serving order."""
        return [model.to_json(served=self.models) for model in self.models.values()]

    def wait(self, timeout: float | None = None) -> bool:
        return self.ready.wait(timeout)

    def close(self) -> None:
        self.closing.set()  # a folder being loaded finishes; the others are not started
        if self._thread is not None:
            self._thread.join(timeout=30)
        for m in self.models.values():
            if m.batcher:
                m.batcher.close()
