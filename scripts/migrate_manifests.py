"""One-off: rewrite version 1 model folders (manifest.json and the ONNX files' spec metadata) as version 2.

    python scripts/migrate_manifests.py models/mnist models/mnist-gan models/fashion-mnist \\
        --compare-with mnist=mnist-gan --compare-with mnist-gan=mnist

The shipped models were exported from checkpoints that are not in the repository, so their folders are migrated in
place rather than re-exported. Version 1 -> 2:
- each categorical code's ``raw_index`` leaves the spec for the manifest's ``category_order`` (so
  ``LatentSpec.from_dict(manifest["spec"])`` reads the spec as it is);
- ``light_on_dark: true|false`` becomes ``drawing: "light-on-dark"|"dark-on-light"``;
- ``inputs`` / ``outputs`` go (the ONNX tensor names derive from the spec and spec/manifest.py's constants);
- ``compare_with`` is set from ``--compare-with ID=OTHER`` (absent: none);
- each ONNX file's spec metadata becomes the v2 spec JSON; nothing else in the graphs changes (the script checks
  that the graph, initialisers included, serialises to the same bytes before and after), so the served outputs are
  those of the old files; the files' sha256 and sizes are updated.
The result is validated with ``Manifest.read`` and ``Manifest.verify_file``. A folder already at version 2 is left
as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import onnx
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from spec.latent import LatentSpec  # noqa: E402
from spec.manifest import (  # noqa: E402
    FORMAT,
    MANIFEST_FILE,
    MODEL_FILES,
    SPEC_METADATA_KEY,
    VERSION,
    Manifest,
    sha256_of,
    validation_errors,
)

OLD_VERSION = 1
# v1 fields that v2 drops or renames
DROPPED = ("inputs", "outputs", "light_on_dark")


def split_spec(spec_v1: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """v1 spec (categorical codes may carry ``raw_index``) -> (v2 spec JSON, category_order)."""
    codes, order = [], {}
    for cd in spec_v1["codes"]:
        cd = dict(cd)
        raw = cd.pop("raw_index", None)
        if raw is not None:
            order[cd["name"]] = [int(i) for i in raw]
        codes.append(cd)
    spec = LatentSpec.from_dict({"noise": spec_v1["noise"], "codes": codes}).to_dict()  # validates
    return spec, order


def manifest_v2(old: dict[str, Any], compare_with: str | None) -> dict[str, Any]:
    """The v1 manifest's JSON -> v2 JSON (without the files' new hashes)."""
    spec, order = split_spec(old["spec"])
    new = {k: v for k, v in old.items() if k not in DROPPED}
    new.update(
        version=VERSION,
        spec=spec,
        category_order=order,
        compare_with=compare_with,
        drawing="light-on-dark" if old.get("light_on_dark") else "dark-on-light",
    )
    return new


def rewrite_metadata(path: Path, spec: dict[str, Any]) -> None:
    """Set the ONNX file's spec metadata to ``spec``, atomically; refuse if anything else would change."""
    model = onnx.load(str(path))
    graph_before = model.graph.SerializeToString()
    keys = [p.key for p in model.metadata_props]
    if SPEC_METADATA_KEY not in keys:
        raise SystemExit(f"{path}: no {SPEC_METADATA_KEY!r} metadata to rewrite")
    for p in model.metadata_props:
        if p.key == SPEC_METADATA_KEY:
            p.value = json.dumps(spec)
    if model.graph.SerializeToString() != graph_before:
        raise SystemExit(f"{path}: the graph changed while rewriting metadata")
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)


def migrate(folder: Path, compare_with: str | None) -> bool:
    """Migrates one folder in place; False when it is already at VERSION."""
    path = folder / MANIFEST_FILE
    old = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(old, dict) or old.get("format") != FORMAT:
        raise SystemExit(f"{folder}: {MANIFEST_FILE} is not an {FORMAT!r} manifest")
    if old.get("version") == VERSION:
        return False
    if old.get("version") != OLD_VERSION:
        raise SystemExit(f"{folder}: cannot migrate version {old.get('version')!r}")
    files = old.get("files")
    for name in MODEL_FILES:  # never migrate files that do not match the old manifest
        entry = files.get(name) if isinstance(files, dict) else None
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise SystemExit(f"{folder}: its version {OLD_VERSION} manifest lists no sha256 for {name}")
        if not (folder / name).is_file():
            raise SystemExit(f"{folder}: {name} is missing")
        if sha256_of(folder / name) != entry["sha256"]:
            raise SystemExit(f"{folder}: {name} does not match the sha256 in its version {OLD_VERSION} manifest")
    new = manifest_v2(old, compare_with)
    try:  # the new manifest must be valid before any file changes (its file entries are checked after the rewrite)
        Manifest.model_validate({**new, "files": old["files"]})
    except ValidationError as e:
        raise SystemExit(
            f"{folder}: the version {VERSION} manifest would be invalid ({validation_errors(e)}); nothing changed"
        ) from None
    for name in MODEL_FILES:
        rewrite_metadata(folder / name, new["spec"])
    new["files"] = {n: e.model_dump() for n, e in Manifest.file_entries(folder).items()}
    Manifest.model_validate(new).write(folder)
    checked = Manifest.read(folder)
    for name in MODEL_FILES:
        checked.verify_file(folder, name)
    return True


def parse_pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        model_id, sep, other = item.partition("=")
        if not sep or not model_id or not other:
            raise SystemExit(f"--compare-with expects ID=OTHER_ID, got {item!r}")
        pairs[model_id] = other
    return pairs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, metavar="FOLDER")
    ap.add_argument(
        "--compare-with",
        action="append",
        default=[],
        metavar="ID=OTHER",
        help="show model OTHER beside model ID (repeatable)",
    )
    args = ap.parse_args(argv)
    pairs = parse_pairs(args.compare_with)
    ids = {}
    for folder in args.folders:  # every manifest read, and every --compare-with ID found, before anything changes
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # no manifest, or not JSON: one line naming it
            raise SystemExit(f"migrate_manifests: error: {folder / MANIFEST_FILE}: {e.strerror or e}") from None
        ids[folder] = manifest.get("id") if isinstance(manifest, dict) else None
    unknown = sorted(set(pairs) - set(ids.values()))
    if unknown:
        raise SystemExit(
            f"migrate_manifests: error: --compare-with {', '.join(unknown)}: no such model among the folders"
        )
    for folder, model_id in ids.items():
        try:
            done = migrate(folder, pairs.get(model_id))
        except SystemExit as e:
            raise SystemExit(f"migrate_manifests: error: {e.code}") from None
        except (OSError, ValueError, KeyError, TypeError) as e:  # a malformed v1 manifest or an unreadable file
            raise SystemExit(f"migrate_manifests: error: {folder}: {' '.join(str(e).split())}") from None
        print(f"{folder}: {'migrated to' if done else 'already'} version {VERSION}")


if __name__ == "__main__":
    main()
