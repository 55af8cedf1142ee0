"""How the service reads model folders through spec/manifest.py: old and broken manifests refused by folder name,
what /models shows from the manifest (page controls, captions, the model to compare with, the drawing polarity),
the upload polarity taken from the manifest, and the one-off migration of a version 1 folder."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_client, migration_script, wait_ready
from PIL import Image

from spec.latent import EXTRAPOLATION, LatentSpec
from spec.manifest import MANIFEST_FILE, MODEL_FILES, SPEC_METADATA_KEY, Manifest


def edit_manifest(folder: Path, change) -> Path:
    m = json.loads((folder / MANIFEST_FILE).read_text())
    change(m)
    (folder / MANIFEST_FILE).write_text(json.dumps(m))
    return folder


def copy_as(src: Path, root: Path, model_id: str, **fields) -> Path:
    """A copy of a model folder served as ``model_id``, with some manifest fields replaced."""
    folder = shutil.copytree(src, root / model_id)
    return edit_manifest(folder, lambda m: m.update(id=model_id, **fields))


def test_v1_manifest_names_the_migration_script(tmp_path, tiny_models_dir):
    root = tmp_path / "models"
    copy_as(tiny_models_dir / "tiny", root, "tiny")
    copy_as(tiny_models_dir / "tiny", root, "old", version=1)
    with make_client(root) as c:
        wait_ready(c)
        ready = c.get("/readyz").json()
        assert ready["models"] == ["tiny"] and set(ready["errors"]) == {"old"}
        error = ready["errors"]["old"]
        assert error.startswith("old: ") and "version 1" in error and "scripts/migrate_manifests.py" in error


def _duplicate(m):
    m["spec"]["codes"][1]["name"] = "digit"


def _one_category(m):
    m["spec"]["codes"][0].update(categories=1, labels=["0"])
    m["category_order"] = {}


def _empty_prior(m):
    m["spec"]["codes"][1].update(low=1.0, high=1.0)


@pytest.mark.parametrize(
    "break_spec, says",
    [
        (_duplicate, "unique"),
        (_one_category, "categories must be an integer >= 2"),
        (_empty_prior, "low < high"),
    ],
    ids=["duplicate-names", "K<2", "low>=high"],
)
def test_bad_spec_refused_by_folder_name(tmp_path, tiny_models_dir, break_spec, says):
    root = tmp_path / "models"
    copy_as(tiny_models_dir / "tiny", root, "tiny")
    edit_manifest(copy_as(tiny_models_dir / "tiny", root, "broken"), break_spec)
    with make_client(root) as c:
        wait_ready(c)
        ready = c.get("/readyz").json()
        assert ready["models"] == ["tiny"] and set(ready["errors"]) == {"broken"}
        error = ready["errors"]["broken"]
        assert error.startswith("broken: ") and "spec" in error and says in error


def test_models_serve_controls_captions_baseline_and_drawing(tmp_path, tiny_models_dir):
    root = tmp_path / "models"
    copy_as(tiny_models_dir / "tiny", root, "a", compare_with="b", drawing="light-on-dark")
    copy_as(tiny_models_dir / "tiny-gan", root, "b", compare_with="not-served", drawing="dark-on-light")
    copy_as(tiny_models_dir / "tiny", root, "c", compare_with=None)
    with make_client(root) as c:
        wait_ready(c)
        models = {m["id"]: m for m in c.get("/models").json()["models"]}
        assert c.get("/models/a").json() == models["a"]
    # the baseline as the manifest names it, and none where that model is not served (the page would look for it)
    assert [models[i]["compare_with"] for i in "abc"] == ["b", None, None]
    assert models["a"]["drawing"] == "light-on-dark" and models["b"]["drawing"] == "dark-on-light"
    spec = LatentSpec.from_dict(json.loads((root / "a" / MANIFEST_FILE).read_text())["spec"])
    for code, shown in zip(spec.codes, models["a"]["codes"], strict=True):
        assert shown["control"] == code.control() and shown["caption"] == code.describe()
    digit, c1, _ = models["a"]["codes"]
    assert digit["control"]["widget"] == "choice" and digit["control"]["choices"] == [str(k) for k in range(10)]
    assert c1["control"]["widget"] == "range" and c1["caption"] == "slant · prior [-1, 1]"
    assert (c1["control"]["hard_min"], c1["control"]["hard_max"]) == (-EXTRAPOLATION, EXTRAPOLATION)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def test_upload_polarity_comes_from_the_manifest(tmp_path, tiny_models_dir):
    """Same weights, two drawings: a dark-on-light upload is inverted only for the light-on-dark model, a
    light-on-dark upload reads the same in both."""
    root = tmp_path / "models"
    copy_as(tiny_models_dir / "tiny", root, "light", drawing="light-on-dark")
    copy_as(tiny_models_dir / "tiny", root, "dark", drawing="dark-on-light")
    stroke = np.zeros((28, 28), np.uint8)
    stroke[4:24, 12:16] = 255
    with make_client(root) as c:
        wait_ready(c)

        def codes(model: str, image: np.ndarray) -> dict:
            r = c.post("/infer-codes", files={"file": ("d.png", _png(image), "image/png")}, data={"model": model})
            assert r.status_code == 200, r.text
            return r.json()["codes"]

        assert codes("light", stroke) == codes("dark", stroke)
        assert codes("light", 255 - stroke) == codes("light", stroke)  # inverted back to light strokes
        assert codes("dark", 255 - stroke) != codes("light", 255 - stroke)


def make_v1(folder: Path) -> None:
    """The inverse of the migration, as version 1 folders were written: category order inside the spec (also in
    the ONNX metadata), light_on_dark, the tensor names, no compare_with / drawing / category_order."""
    m = json.loads((folder / MANIFEST_FILE).read_text())
    spec = json.loads(json.dumps(m["spec"]))
    for cd in spec["codes"]:
        if cd["name"] in m["category_order"]:
            cd["raw_index"] = m["category_order"][cd["name"]]
    for name in MODEL_FILES:
        model = onnx.load(str(folder / name))
        for p in model.metadata_props:
            if p.key == SPEC_METADATA_KEY:
                p.value = json.dumps(spec)
        onnx.save(model, str(folder / name))
    rec = LatentSpec.from_dict(m["spec"]).output_names()
    for key in ("category_order", "compare_with", "drawing"):
        m.pop(key)
    m.update(
        version=1,
        spec=spec,
        light_on_dark=True,
        inputs={"generator": ["z", "c"], "recognizer": ["images"]},
        outputs={"generator": ["images"], "recognizer": rec},
        files={n: e.model_dump() for n, e in Manifest.file_entries(folder).items()},
    )
    (folder / MANIFEST_FILE).write_text(json.dumps(m))


def test_migration_of_a_v1_folder_keeps_the_outputs(tmp_path, tiny_models_dir):
    root = tmp_path / "models"
    copy_as(tiny_models_dir / "tiny", root, "new", category_order={"digit": [3, 1, 2, 0, 4, 5, 6, 7, 8, 9]})
    old = copy_as(tiny_models_dir / "tiny", root, "old", category_order={"digit": [3, 1, 2, 0, 4, 5, 6, 7, 8, 9]})
    make_v1(old)
    with pytest.raises(ValueError, match="migrate_manifests"):
        Manifest.read(old)
    migration_script().main([str(old), "--compare-with", "old=new"])
    m = Manifest.read(old)
    assert m.version == 2 and m.compare_with == "new" and m.drawing == "light-on-dark"
    assert m.category_order == {"digit": [3, 1, 2, 0, 4, 5, 6, 7, 8, 9]}
    assert "raw_index" not in json.dumps(m.spec) and m.spec == Manifest.read(root / "new").spec
    for name in MODEL_FILES:
        m.verify_file(old, name)
        meta = {p.key: p.value for p in onnx.load(str(old / name)).metadata_props}
        assert json.loads(meta[SPEC_METADATA_KEY]) == m.spec
    migration_script().main([str(old)])  # a second run leaves a version 2 folder as it is
    assert Manifest.read(old) == m
    with make_client(root) as c:
        wait_ready(c)
        assert c.get("/readyz").json()["errors"] == {}
        body = {"n": 3, "seed": 11, "codes": {"c1": 0.5}}
        new, migrated = (c.post("/generate", json={**body, "model": i}).json() for i in ("new", "old"))
        assert migrated["images"] == new["images"] and migrated["z"] == new["z"]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    "break_v1, says",
    [
        (lambda f: edit_manifest(f, lambda m: m.update(title="x" * 130)), "title: Value error, title must be at most"),
        (lambda f: (f / MANIFEST_FILE).write_text("[1]"), "is not an 'infogan-model' manifest"),
        (lambda f: edit_manifest(f, lambda m: m.pop("files")), "lists no sha256 for generator.onnx"),
        (lambda f: (f / "recognizer.onnx").unlink(), "recognizer.onnx is missing"),
        (lambda f: edit_manifest(f, lambda m: m["spec"]["codes"][1].update(low=5)), "c1"),
    ],
)
def test_a_migration_that_cannot_finish_says_so_in_one_line_and_changes_nothing(
    tmp_path, tiny_models_dir, break_v1, says
):
    folder = copy_as(tiny_models_dir / "tiny", tmp_path, "old", category_order={})
    make_v1(folder)
    break_v1(folder)
    before = folder_bytes(folder)
    with pytest.raises(SystemExit) as exc:
        migration_script().main([str(folder)])
    message = str(exc.value.code)
    assert message.startswith("migrate_manifests: error: ") and says in message and "\n" not in message, message
    assert folder_bytes(folder) == before  # the ONNX files' metadata too: a fixed folder can still be migrated


def test_a_migration_with_a_bad_title_can_be_rerun_once_fixed(tmp_path, tiny_models_dir):
    folder = copy_as(tiny_models_dir / "tiny", tmp_path, "old", category_order={})
    make_v1(folder)
    edit_manifest(folder, lambda m: m.update(title="x" * 130))
    with pytest.raises(SystemExit):
        migration_script().main([str(folder)])
    edit_manifest(folder, lambda m: m.update(title="Old"))
    migration_script().main([str(folder)])
    assert Manifest.read(folder).title == "Old"


def test_compare_with_an_id_among_no_folder_is_refused_before_any_change(tmp_path, tiny_models_dir):
    folder = copy_as(tiny_models_dir / "tiny", tmp_path, "old", category_order={})
    make_v1(folder)
    before = folder_bytes(folder)
    with pytest.raises(SystemExit) as exc:
        migration_script().main([str(folder), "--compare-with", "olld=new"])  # a typo for old
    assert "--compare-with olld: no such model among the folders" in str(exc.value.code)
    assert folder_bytes(folder) == before
