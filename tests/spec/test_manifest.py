"""The manifest contract: what export writes is what the service reads, and bad manifests are refused by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spec.latent import Categorical, Continuous, LatentSpec, Noise
from spec.manifest import (
    MANIFEST_FILE,
    MODEL_FILES,
    Manifest,
    ManifestError,
    ordered_folders,
    read_order,
    sha256_of,
)


def folder_with(tmp_path, **over):
    spec = LatentSpec(Noise(4), (Categorical("k", 3), Continuous("c")))
    for name in MODEL_FILES:
        (tmp_path / name).write_bytes(name.encode())
    m = Manifest(
        id="tiny",
        title="Tiny",
        dataset="toy",
        image={"channels": 1, "height": 8, "width": 8},
        spec=spec.to_dict(),
        category_order={"k": [2, 0, 1]},
        drawing="light-on-dark",
        files=Manifest.file_entries(tmp_path),
    )
    raw = m.model_dump(mode="json") | over
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(raw))
    return tmp_path


def test_round_trip_and_file_checks(tmp_path):
    folder = folder_with(tmp_path)
    m = Manifest.read(folder)
    assert m.latent() == LatentSpec.from_dict(m.spec) and m.image.chw() == (1, 8, 8)
    assert m.files["generator.onnx"].sha256 == sha256_of(folder / "generator.onnx")
    m.verify_file(folder, "generator.onnx")
    (folder / "generator.onnx").write_bytes(b"changed")
    with pytest.raises(ManifestError, match="generator.onnx sha256"):
        m.verify_file(folder, "generator.onnx")
    (folder / "recognizer.onnx").unlink()
    with pytest.raises(ManifestError, match="recognizer.onnx is missing"):
        m.verify_file(folder, "recognizer.onnx")


@pytest.mark.parametrize(
    "over, words",
    [
        ({"version": 1}, "scripts/migrate_manifests.py"),
        ({"version": 3}, "version 3"),
        ({"format": "other"}, "not an 'infogan-model'"),
        ({"spec": {"noise": {"dim": 4}, "codes": [{"name": "k", "type": "categorical", "categories": 1}]}}, "spec"),
        ({"category_order": {"k": [0, 0, 1]}}, "permutation"),
        ({"category_order": {"c": [0]}}, "not a categorical code"),
        ({"drawing": "sideways"}, "drawing"),
        ({"image": {"channels": 2, "height": 8, "width": 8}}, "image.channels"),
        ({"files": {}}, "files"),
        ({"light_on_dark": True}, "light_on_dark"),
        ({"id": "../x"}, "id"),
        ({"title": ""}, "title: .*must not be empty"),
        ({"title": "x" * 121}, "title: .*at most 120"),
        ({"title": "two\nlines"}, "title: .*one line"),
        # read as written, never coerced: true is not 1 nor "64" 64 (pydantic's lax mode read both)
        ({"image": {"channels": True, "height": 8, "width": 8}}, "image.channels"),
        ({"image": {"channels": 1, "height": "8", "width": 8}}, "image.height"),
        ({"image": {"channels": 1, "height": 8.0, "width": 8}}, "image.height"),
        ({"category_order": {"k": [True, False, 2]}}, "category_order.k.0"),
        ({"dataset": ""}, "dataset"),
        ({"dataset": 7}, "dataset"),
        ({"compare_with": ""}, "compare_with"),
        ({"compare_with": "../x y"}, "compare_with"),
        ({"compare_with": "tiny"}, "compare_with names the model itself"),
    ],
)
def test_bad_manifests_are_refused_by_name(tmp_path, over, words):
    folder = folder_with(tmp_path, **over)
    with pytest.raises(ManifestError, match=words) as e:
        Manifest.read(folder)
    assert tmp_path.name in str(e.value)


def test_unreadable_manifest(tmp_path):
    with pytest.raises(ManifestError, match="missing"):
        Manifest.read(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(tmp_path)


def test_folder_order_reads_order_json_and_refuses_a_malformed_one(tmp_path):
    for name in ("b", "a", "c", ".hidden"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert read_order(tmp_path) == []
    assert [p.name for p in ordered_folders(tmp_path, [])] == ["a", "b", "c"]
    (tmp_path / "order.json").write_text('["c", "gone"]')
    assert [p.name for p in ordered_folders(tmp_path, read_order(tmp_path))] == ["c", "a", "b"]
    for text, words in (
        ("[c", "order.json: Expecting value"),
        ('{"c": 1}', "a JSON list"),
        ("[1]", "a JSON list"),
        ('["b", "a", "b"]', 'order.json: "b" listed more than once'),  # which place? b or a would be the default
    ):
        (tmp_path / "order.json").write_text(text)
        with pytest.raises(ManifestError, match=words):
            read_order(tmp_path)


def test_a_hand_edited_utf8_manifest_reads_in_a_c_locale(tiny_models_dir, tmp_path):
    # json.dumps writes ASCII, but a manifest edited by hand holds UTF-8 ("λ"); a C locale once failed to read it
    folder = shutil.copytree(tiny_models_dir / "tiny", tmp_path / "tiny")
    m = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    m["title"] = "Tiny λ = 1 … café"
    (folder / MANIFEST_FILE).write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")
    code = "import sys; from spec.manifest import Manifest; print(ascii(Manifest.read(sys.argv[1]).title))"
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    res = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", code, str(folder)],
        capture_output=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert res.returncode == 0 and res.stdout.decode().strip() == ascii("Tiny λ = 1 … café"), res.stderr.decode()
