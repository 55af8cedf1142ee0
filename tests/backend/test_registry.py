"""Model folder verification, device selection and start-up with broken folders."""

import json
import shutil
import threading

import pytest
from conftest import make_client, wait_ready

from backend.core.device import DeviceError, resolve_device


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_broken_folders_reported_others_served(tmp_path, tiny_models_dir):
    root = tmp_path / "models"
    root.mkdir()
    copy_model(tiny_models_dir / "tiny", root / "a-good")
    bad_sha = copy_model(tiny_models_dir / "tiny", root / "b-bad-sha")
    with open(bad_sha / "generator.onnx", "ab") as f:
        f.write(b"\0")
    (copy_model(tiny_models_dir / "tiny", root / "c-bad-manifest") / "manifest.json").write_text("{not json")
    spec_changed = copy_model(tiny_models_dir / "tiny", root / "d-spec-mismatch")
    m = json.loads((spec_changed / "manifest.json").read_text())
    m["id"] = "other"
    m["spec"]["codes"][1]["label"] = "width"
    (spec_changed / "manifest.json").write_text(json.dumps(m))
    (copy_model(tiny_models_dir / "tiny", root / "e-missing") / "recognizer.onnx").unlink()
    no_format = copy_model(tiny_models_dir / "tiny", root / "f-no-format")
    m = json.loads((no_format / "manifest.json").read_text())
    del m["format"]
    (no_format / "manifest.json").write_text(json.dumps(m))
    copy_model(tiny_models_dir / "tiny", root / "g-duplicate-id")

    with make_client(root) as c:
        wait_ready(c)
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["models"] == ["tiny"]
        errors = ready["errors"]
        assert set(errors) == {
            "b-bad-sha",
            "c-bad-manifest",
            "d-spec-mismatch",
            "e-missing",
            "f-no-format",
            "g-duplicate-id",
        }
        assert "generator.onnx" in errors["b-bad-sha"] and "sha256" in errors["b-bad-sha"]
        assert "manifest.json" in errors["c-bad-manifest"]
        assert "generator.onnx" in errors["d-spec-mismatch"] and "spec" in errors["d-spec-mismatch"]
        assert "recognizer.onnx is missing" in errors["e-missing"]
        assert "infogan-model" in errors["f-no-format"]
        assert "already served" in errors["g-duplicate-id"]
        assert [m["id"] for m in c.get("/models").json()["models"]] == ["tiny"]
        assert c.post("/generate", json={"n": 2}).status_code == 200


@pytest.mark.parametrize(
    "order, expected, error",
    [
        # named first; a name with no folder (a typo changes the default model) is listed in /readyz's errors
        ('["tiny-gan", "not-here"]', ["tiny-gan", "tiny"], "['not-here']"),
        ('["tiny", "tiny-gan"]', ["tiny", "tiny-gan"], None),
        ('{"order": ["tiny-gan"]}', ["tiny", "tiny-gan"], "JSON list"),  # malformed: name order, reported by file name
        ("[tiny-gan", ["tiny", "tiny-gan"], "order.json"),
    ],
)
def test_order_file_sets_model_order_and_default(tmp_path, tiny_models_dir, order, expected, error):
    root = tmp_path / "models"
    root.mkdir()
    for name in ("tiny", "tiny-gan"):
        copy_model(tiny_models_dir / name, root / name)
    (root / "order.json").write_text(order)
    with make_client(root) as c:
        wait_ready(c)
        assert [m["id"] for m in c.get("/models").json()["models"]] == expected
        assert c.post("/generate", json={"seed": 1}).json()["model"] == expected[0]  # the first is the default
        errors = c.get("/readyz").json()["errors"]
        if error is None:
            assert errors == {}
        else:
            assert set(errors) == {"order.json"} and error in errors["order.json"]


def test_device_selection(tiny_models_dir):
    probe = tiny_models_dir / "tiny" / "generator.onnx"
    assert resolve_device("cpu", probe, 1) == "cpu"
    auto = resolve_device("auto", probe, 1)
    assert auto in ("cpu", "cuda")
    if auto == "cpu":  # no usable GPU here: DEVICE=cuda must fail fast, at start-up
        with pytest.raises(DeviceError, match="DEVICE=cuda"):
            resolve_device("cuda", probe, 1)
        with pytest.raises(DeviceError):
            with make_client(tiny_models_dir, device="cuda"):
                pass


def test_service_settings_refuse_what_they_would_misread(monkeypatch):
    import pytest
    from pydantic import ValidationError

    from backend.core.config import Settings, usable_cores

    for name, value in (("MODELS_DIR", ""), ("FRONTEND_DIR", "  "), ("ORT_THREADS", "3000")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValidationError):  # "" was the current folder; 3000 threads a session, 42,000 in all
            Settings()
        monkeypatch.delenv(name)
    import os

    assert usable_cores() == len(os.sched_getaffinity(0))  # under taskset, the cores it may use
    assert Settings().threads() == usable_cores()


def test_the_device_check_runs_on_a_verified_generator_not_a_broken_first_folder(
    tmp_path, tiny_models_dir, monkeypatch
):
    import shutil

    import backend.core.registry as registry_mod
    from backend.core.config import Settings
    from backend.core.device import probe_file
    from backend.core.metrics import Metrics

    root = shutil.copytree(tiny_models_dir, tmp_path / "models")
    (root / "order.json").write_text('["tiny", "tiny-gan"]')
    broken = root / "tiny" / "generator.onnx"
    broken.write_bytes(broken.read_bytes()[:1000])  # the first folder's generator, cut short
    assert probe_file([root / "tiny", root / "tiny-gan"]) == root / "tiny-gan" / "generator.onnx"
    assert probe_file([root / "tiny"]) is None
    probed = []
    monkeypatch.setattr(registry_mod, "resolve_device", lambda requested, probe, threads: probed.append(probe) or "cpu")
    registry = registry_mod.Registry(Settings(models_dir=root, device="auto"), Metrics())
    registry.start()
    registry._thread.join(30)
    assert probed == [root / "tiny-gan" / "generator.onnx"]
    assert "tiny" in registry.errors and "tiny-gan" in {m.id for m in registry.models.values()}


def test_close_during_loading_stops_before_the_next_folder(tmp_path, monkeypatch):
    # SIGTERM (or uvicorn failing to bind its port) during loading: the lifespan's close() waited for every remaining
    # folder to load and warm up, up to 30 s; now the folder being loaded finishes and no other is started
    from backend.core import registry as registry_module
    from backend.core.config import Settings
    from backend.core.metrics import Metrics

    root = tmp_path / "models"
    for name in ("a", "b", "c", "d"):
        (root / name).mkdir(parents=True)
    loading, release, loaded = threading.Event(), threading.Event(), []

    def slow_load(folder, **kwargs):
        loaded.append(folder.name)
        loading.set()
        release.wait(10)  # the first load lasts until close() has begun
        raise registry_module.ModelError(f"{folder.name}: not a model")

    monkeypatch.setattr(registry_module, "load_model", slow_load)
    registry = registry_module.Registry(Settings(models_dir=root, device="cpu", ort_threads=1), Metrics())
    registry.start("cpu")
    assert loading.wait(10)
    thread = registry._thread
    join = thread.join

    def release_then_join(timeout=None):  # close() has run up to its join: the first load may end now
        release.set()
        join(timeout)

    monkeypatch.setattr(thread, "join", release_then_join)
    registry.close()
    assert not thread.is_alive()
    assert loaded == ["a"]
    assert not registry.ready.is_set()  # no answer lists the partial set
