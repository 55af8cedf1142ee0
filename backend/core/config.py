"""Service settings, read from the environment (or a .env file) by pydantic-settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    models_dir: Path = Field(
        ROOT / "models", description="one folder per model: <id>/{generator,recognizer}.onnx, manifest.json"
    )
    frontend_dir: Path = Field(ROOT / "frontend", description="index.html (a jinja2 template) and static/")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # worker processes (`infogan serve --workers N` sets it for every worker): each gets cores / workers threads
    workers: int = Field(1, ge=1, le=64)
    # intra-op threads per ONNX Runtime session; 0 = every core (with N workers: cores / N, at least 1). The
    # micro-batcher lets one run() per model go at a time, so the cores go to that run rather than being split
    # between concurrent runs.
    ort_threads: int = Field(0, ge=0)
    # batching of concurrent generator runs, on (> 0) or off (0: each request runs alone). /generate batches in one
    # executor thread per model with no waiting (LoopBatcher); /traverse's MicroBatcher leader waits at most this
    # long for more requests once it sees concurrent traffic (never for a lone request).
    batch_wait_ms: float = Field(2.0, ge=0, le=100)
    max_batch: int = Field(256, ge=1, le=4096, description="rows per batched generator run()")
    max_upload_bytes: int = Field(5 * 1024 * 1024, ge=1)
    # decompression-bomb guard: width x height of an upload, checked from the header before decoding
    max_upload_pixels: int = Field(4096 * 4096, ge=1)

    def threads(self) -> int:
        return self.ort_threads or max(1, (os.cpu_count() or 1) // self.workers)


def get_settings() -> Settings:
    return Settings()
