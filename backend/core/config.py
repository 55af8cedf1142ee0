"""Service settings, read from the environment (or a .env file) by pydantic-settings."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    models_dir: Path = Field(
        ROOT / "models", description="one folder per model: <id>/{generator,recognizer}.onnx, manifest.json"
    )
    frontend_dir: Path = Field(ROOT / "frontend", description="index.html (a jinja2 template) and static/")

    @field_validator("models_dir", "frontend_dir", mode="before")
    @classmethod
    def _not_blank(cls, v: object) -> object:
        if isinstance(v, str) and not v.strip():  # MODELS_DIR= would be Path("") = the current folder
            raise ValueError("is empty: give a folder path")
        return v

    # The path prefix a reverse proxy serves the service under ("/explorer": the page at /explorer/, the API at
    # /explorer/models, ...), for `infogan serve` and the images, which cannot pass uvicorn's --root-path; the same
    # as that option (the proxy strips the prefix; a path that still has it is taken too). "": served at the root.
    root_path: str = ""

    @field_validator("root_path")
    @classmethod
    def _root_path(cls, v: str) -> str:
        # it goes into the page's and /docs' URLs as it is: path segments of plain characters only
        v = v.strip().rstrip("/")
        if v and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", v):
            raise ValueError(f"{v!r}: give a path such as /explorer (segments of letters, digits, . _ ~ -)")
        return v

    device: Literal["auto", "cpu", "cuda"] = "auto"
    # worker processes (`infogan serve --workers N` sets it for every worker): each gets cores / workers threads
    workers: int = Field(1, ge=1, le=64)
    # intra-op threads per ONNX Runtime session; 0 = every core this process may use (with N workers: cores / N, at
    # least 1). One generator run() per model goes at a time: /generate's and /traverse's batchers take turns
    # (Model.run_generator's lock), so mixed load does not start twice the threads, and concurrent readings take
    # turns on the recognizer (Model.recognize's lock); different models' runs may overlap. At most 256: every
    # session of every model starts that many threads.
    ort_threads: int = Field(0, ge=0, le=256)
    # batching of concurrent generator runs, on (> 0) or off (0: each request runs alone). /generate batches in one
    # executor thread per model with no waiting (LoopBatcher); /traverse's MicroBatcher leader waits at most this
    # long for more requests once it sees concurrent traffic (never for a lone request).
    batch_wait_ms: float = Field(2.0, ge=0, le=100)
    max_batch: int = Field(256, ge=1, le=4096, description="rows per batched generator run()")
    max_upload_bytes: int = Field(5 * 1024 * 1024, ge=1)
    # decompression-bomb guard: width x height of an upload, checked from the header before decoding
    max_upload_pixels: int = Field(4096 * 4096, ge=1)

    def threads(self) -> int:
        return self.ort_threads or max(1, usable_cores() // self.workers)


def usable_cores() -> int:
    """The cores this process may run on (taskset, a container's cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def settings_or_exit(prog: str) -> Settings:
    """Settings(), or one line naming the first bad environment variable (``prog: error: setting X: why``) instead of
    pydantic's page: for `infogan serve` and for `uvicorn backend.main:app`, which imports the app."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SystemExit(f"{prog}: error: setting {'.'.join(map(str, first['loc'])).upper()}: {first['msg']}") from None


def get_settings() -> Settings:
    return Settings()
