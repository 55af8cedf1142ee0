"""A served model: its manifest, its latent spec and its two ONNX Runtime sessions (G and the recognizer D/Q)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from spec.latent import LatentSpec
from spec.manifest import GENERATOR_INPUTS, GENERATOR_OUTPUT, RECOGNIZER_INPUT, Manifest

from .batching import LoopBatcher, MicroBatcher
from .metrics import Metrics


@dataclass
class Model:
    folder: Path
    manifest: Manifest
    spec: LatentSpec
    generator: ort.InferenceSession
    recognizer: ort.InferenceSession
    device: str
    metrics: Metrics
    batcher: MicroBatcher | None = None
    _loop_batcher: LoopBatcher | None = field(default=None, repr=False)
    # each ONNX file's (size, mtime_ns, inode) when its sha256 was checked at load: GET .../files/{name} serves the
    # file only while it is still that one (the sessions run the verified file; a swapped one has another ETag)
    files_on_disk: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False)
    # one generator run() of this model at a time, whichever batcher asks: each batcher lets one run through, but
    # /generate's (LoopBatcher) and /traverse's (MicroBatcher) overlapped, each run starting ORT_THREADS intra-op
    # threads (default: every core), so mixed load put 2 x cores threads on the cores. Per model, so different
    # models still run side by side; uncontended, it costs a lone request ~0.1 us (2-core VM).
    _generator_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # the same for the recognizer: concurrent /infer-codes requests each ran it from their own request thread
    _recognizer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of G's images and the recognizer's input."""
        return self.manifest.image.chw()

    @property
    def light_on_dark(self) -> bool:
        """Whether a drawing of the data set is light strokes on a dark ground (an upload of the other polarity
        is inverted before the recognizer sees it)."""
        return self.manifest.drawing == "light-on-dark"

    def run_generator(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """z (N, noise dim), c (N, spec.c_dim) float32 -> images (N, C, H, W) in [0, 1]. Runs of one model never
        overlap (``_generator_lock``): a second caller waits for the first run to end."""
        feeds = dict(zip(GENERATOR_INPUTS, (z, c), strict=True))
        (images,) = self._run(self.generator, self._generator_lock, "generator", [GENERATOR_OUTPUT], feeds)
        return images

    def _run(self, session, lock: threading.Lock, network: str, names: list[str], feeds: dict) -> list:
        """``session.run`` under ``lock`` (one run of this network at a time), its own time, not the wait for the lock,
        in the inference histogram."""
        with lock:
            t = time.perf_counter()
            out = session.run(names, feeds)
            seconds = time.perf_counter() - t
        self.metrics.inference.labels(self.id, network).observe(seconds)
        return out

    def generate(self, z: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Like run_generator, through the micro-batcher when there is one (requests of many threads share a run)."""
        self.metrics.images.labels(self.id).inc(len(z))
        return self.batcher(z, c) if self.batcher else self.run_generator(z, c)

    async def generate_async(
        self, rows: int, prepare: Callable[[], tuple[np.ndarray, np.ndarray]], finish: Callable[[np.ndarray], Any]
    ) -> Any:
        """For async routes: ``prepare()`` -> (z, c) of ``rows`` rows, the generator's run shared with concurrent
        requests (LoopBatcher), ``finish(images)`` -> the answer; both run off the event loop, in the batch's thread.
        Batching follows the micro-batcher's settings: off (BATCH_WAIT_MS=0) runs each request alone."""
        if self._loop_batcher is None:
            b = self.batcher
            self._loop_batcher = LoopBatcher(
                self.run_generator, max_rows=b.max_rows if b else 1, on_batch=b.on_batch if b else None
            )

        def counted() -> tuple[np.ndarray, np.ndarray]:
            z, c = prepare()
            self.metrics.images.labels(self.id).inc(len(z))
            return z, c

        return await self._loop_batcher.submit(rows, counted, finish)

    def recognize(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """images (N, C, H, W) in [0, 1] -> the recognizer's outputs by name (spec.output_names()). Runs of one
        model's recognizer never overlap (``_recognizer_lock``), as its generator's do not."""
        names = self.spec.output_names()
        out = self._run(self.recognizer, self._recognizer_lock, "recognizer", names, {RECOGNIZER_INPUT: images})
        return dict(zip(names, out, strict=True))

    def to_json(self, served: Container[str] | None = None) -> dict[str, Any]:
        """The model as GET /models shows it (schemas.ModelInfo): the spec with each code's page control and
        caption, the drawing polarity and the model to compare with (None when ``served`` lacks it)."""
        c, h, w = self.image_shape
        m = self.manifest
        compare_with = m.compare_with if served is None or m.compare_with in served else None
        noise = self.spec.noise
        return {
            "id": self.id,
            "title": m.title,
            "dataset": m.dataset,
            "image": {"height": h, "width": w, "channels": c},
            "noise": {"dim": noise.dim, "distribution": noise.distribution},
            "codes": [
                {**code.to_dict(), "control": code.control(), "caption": code.describe()} for code in self.spec.codes
            ],
            "metrics": m.metrics,
            "device": self.device,
            "compare_with": compare_with,
            "drawing": m.drawing,
        }

    def warm_up(self) -> None:
        """One run of each graph at the prior's centre, so the first request does not pay for ORT's lazy set-up."""
        z = self.spec.noise.centre_np(1)
        images = self.run_generator(z, self.spec.encode_np(self.spec.defaults_np(1)))
        self.recognize(images)


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime_ns, inode) of a file, None when it is gone: a replaced or rewritten file changes one of them."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # the file, or its model folder, removed (or replaced by a file:
        return None  # stat then raised NotADirectoryError, a 500 from GET .../files/{name} instead of its 503)
    return st.st_size, st.st_mtime_ns, st.st_ino
