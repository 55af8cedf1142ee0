"""The model folder's manifest: the one typed contract between ``infogan export`` (writer) and the service (reader).

A model folder is ``models/<id>/`` with ``generator.onnx``, ``recognizer.onnx`` and ``manifest.json``. The manifest
holds the latent spec in its JSON form (``LatentSpec.from_dict`` reads it as it is), the image shape, how a drawing
of the data set looks, the model to compare it with, the exported category order, every file's sha256, the
evaluation figures and the provenance (command, config, seed, machine). The spec is also stored in each ONNX file's
metadata under ``SPEC_METADATA_KEY``; a reader checks that both agree.

Version 1 manifests (before 2026-11) kept the category order inside the spec (``raw_index``), the drawing polarity as
``light_on_dark`` and the ONNX output names; ``scripts/migrate_manifests.py`` rewrites such a folder once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .latent import LatentSpec, SpecError, display_text

FORMAT = "infogan-model"
VERSION = 2
MANIFEST_FILE = "manifest.json"
GENERATOR_FILE = "generator.onnx"
RECOGNIZER_FILE = "recognizer.onnx"
MODEL_FILES = (GENERATOR_FILE, RECOGNIZER_FILE)
SPEC_METADATA_KEY = "infogan_spec"
# ONNX tensor names of the two graphs (the recognizer's outputs come from the spec: LatentSpec.output_names)
GENERATOR_INPUTS = ("z", "c")
GENERATOR_OUTPUT = "images"
RECOGNIZER_INPUT = "images"
MODEL_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
TITLE_MAX = 120  # characters: the chooser's caption and the page's heading
WEIGHT_FORMATS = ("fp32", "fp16", "int8")
# How a drawing of the data set looks: MNIST-like sets are light strokes on a dark ground. The service inverts an
# upload of the other polarity, and the page's drawing canvas paints in this one.
Polarity = Literal["light-on-dark", "dark-on-light"]


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the folder and the fault."""


def validation_errors(exc: ValidationError, most: int | None = 5, whole: str = "manifest") -> str:
    """pydantic's errors on one line, each as "field.path: message" (its own text spans several lines); ``whole``
    names an error of the whole document, ``most`` bounds how many are listed (None: all)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in exc.errors()[:most])


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# strict: a manifest is written by export, not typed by clients; true, "64" or 2.0 where a count belongs is a fault
# to name, not to read as 1, 64 or 2 (the service's request schemas refuse the same, backend/schemas.py)
class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class ImageShape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    channels: Literal[1, 3]
    height: int = Field(ge=1, le=4096)
    width: int = Field(ge=1, le=4096)

    @field_validator("channels", mode="before")
    @classmethod
    def _not_a_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # a Literal matches by equality, and true == 1
            raise ValueError(f"expected 1 or 3, got {v!r}")
        return v

    def chw(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width


class Manifest(BaseModel):
    """manifest.json, version 2."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["infogan-model"] = FORMAT
    version: Literal[2] = VERSION
    id: str = Field(pattern=MODEL_ID_PATTERN)
    title: str
    dataset: str = Field(min_length=1, pattern=r"\S")
    image: ImageShape
    spec: dict[str, Any] = Field(description="LatentSpec.to_dict(); the same JSON as the ONNX metadata")
    category_order: dict[str, list[int]] = Field(
        default_factory=dict,
        description="per categorical code: the checkpoint's category index of each exported index (exported index j "
        "generates the class the evaluation mapped to j)",
    )
    drawing: Polarity = "dark-on-light"
    compare_with: str | None = Field(
        None, pattern=MODEL_ID_PATTERN, description="id of the model to show beside this one (e.g. its λ = 0 baseline)"
    )
    weights: Literal["fp32", "fp16", "int8"] = "fp32"
    files: dict[str, FileEntry]
    metrics: dict[str, Any] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title_shows(cls, v: str) -> str:
        return display_text(v, "title", TITLE_MAX)

    @field_validator("spec")
    @classmethod
    def _spec_reads(cls, v: dict[str, Any]) -> dict[str, Any]:
        LatentSpec.from_dict(v)  # SpecError (a ValueError) becomes a validation error naming 'spec'
        return v

    @field_validator("files")
    @classmethod
    def _both_files(cls, v: dict[str, FileEntry]) -> dict[str, FileEntry]:
        missing = [name for name in MODEL_FILES if name not in v]
        if missing:
            raise ValueError(f"lacks entries for {missing}")
        return v

    @model_validator(mode="after")
    def _not_compared_with_itself(self) -> Manifest:
        if self.compare_with == self.id:
            raise ValueError(f"compare_with names the model itself ({self.id!r}); give another model's id")
        return self

    @model_validator(mode="after")
    def _orders_fit(self) -> Manifest:
        categorical = {c.name: c.categories for c in self.latent().categorical_codes()}
        for name, order in self.category_order.items():
            if name not in categorical:
                raise ValueError(f"category_order names {name!r}, which is not a categorical code of the spec")
            if sorted(order) != list(range(categorical[name])):
                raise ValueError(f"category_order[{name!r}] must be a permutation of 0..{categorical[name] - 1}")
        return self

    def latent(self, spec_class: type[LatentSpec] = LatentSpec) -> LatentSpec:
        return spec_class.from_dict(self.spec)

    # ---- files ----
    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        """folder/manifest.json -> Manifest, or ManifestError naming the folder and what is wrong."""
        folder = Path(folder)
        path = folder / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{folder.name}: {MANIFEST_FILE} is missing") from None
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{folder.name}: {MANIFEST_FILE} is not valid JSON ({exc})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise ManifestError(f"{folder.name}: {MANIFEST_FILE} is not an {FORMAT!r} manifest")
        if raw.get("version") != VERSION:
            hint = " (run: python scripts/migrate_manifests.py " + str(folder) + ")" if raw.get("version") == 1 else ""
            raise ManifestError(
                f"{folder.name}: {MANIFEST_FILE} is version {raw.get('version')!r}; this service reads version "
                f"{VERSION}{hint}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ManifestError(f"{folder.name}: {MANIFEST_FILE} is invalid ({validation_errors(exc)})") from None
        except SpecError as exc:
            raise ManifestError(f"{folder.name}: {MANIFEST_FILE} has a bad spec ({exc})") from None

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_FILE
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2, default=float) + "\n", encoding="utf-8")
        return path

    def verify_file(self, folder: str | Path, name: str) -> Path:
        """folder/name exists and has the manifest's sha256, else ManifestError."""
        folder = Path(folder)
        path = folder / name
        if not path.is_file():
            raise ManifestError(f"{folder.name}: {name} is missing")
        expected = self.files[name].sha256
        actual = sha256_of(path)
        if actual != expected:
            raise ManifestError(
                f"{folder.name}: {name} sha256 {actual[:12]}... does not match the manifest's {expected[:12]}..."
            )
        return path

    @staticmethod
    def file_entries(folder: str | Path) -> dict[str, FileEntry]:
        """The files entries of a folder's ONNX files as they are on disk."""
        folder = Path(folder)
        return {n: FileEntry(sha256=sha256_of(folder / n), bytes=(folder / n).stat().st_size) for n in MODEL_FILES}


# models/order.json: a JSON list of folder names served first, in its order (the first model is the default of every
# route and the page's first choice); the other folders follow by name
ORDER_FILE = "order.json"


def read_order(root: str | Path) -> list[str]:
    """order.json's folder names ([] without the file), or ManifestError naming what is wrong with it."""
    path = Path(root) / ORDER_FILE
    if not path.is_file():
        return []
    try:
        order = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ManifestError(f"{ORDER_FILE}: {exc}") from None
    if not isinstance(order, list) or not all(isinstance(name, str) for name in order):
        raise ManifestError(f"{ORDER_FILE}: expected a JSON list of model folder names, got {json.dumps(order)[:80]}")
    twice = sorted({name for name in order if order.count(name) > 1})
    if twice:  # which place counts? the first names the default model of every route
        raise ManifestError(f"{ORDER_FILE}: {', '.join(map(json.dumps, twice))} listed more than once")
    return order


def ordered_folders(root: str | Path, order: list[str]) -> list[Path]:
    """The model folders under root (hidden ones skipped), those named in ``order`` first, then the rest by name."""
    root = Path(root)
    rank = {name: i for i, name in enumerate(order)}
    found = (p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(found, key=lambda p: (rank.get(p.name, len(rank)), p.name))
