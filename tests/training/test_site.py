"""`infogan site` without a browser: its one-line errors, the service's model order, and no half-built site when a
build fails (the browser tests of the built site are in tests/e2e/test_static_site.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import main


def site(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of `infogan site ...` run in this process."""
    with pytest.raises(SystemExit) as done:
        main(["site", *argv])
    return done.value.code, capsys.readouterr().err


@pytest.fixture
def models(tiny_models_dir, tmp_path) -> Path:
    """A writable copy of the two tiny models (the tests break files in it)."""
    root = tmp_path / "models"
    shutil.copytree(tiny_models_dir, root)
    return root


def one_line(code: int, err: str, words: str) -> None:
    assert code == 1 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_folders_are_one_line_errors(models, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    one_line(*site(["--out", str(tmp_path / "s1"), "--models-dir", str(tmp_path / "nope")], capsys), "does not exist")
    one_line(*site(["--out", str(tmp_path / "s2"), "--models-dir", str(a_file)], capsys), "is a file, not a folder")
    one_line(*site(["--out", str(a_file), "--models-dir", str(models)], capsys), f"--out {a_file} is a file")
    (models / "order.json").write_text("[tiny")
    one_line(*site(["--out", str(tmp_path / "s3"), "--models-dir", str(models)], capsys), "order.json: Expecting")
    assert not any((tmp_path / s).exists() for s in ("s1", "s2", "s3"))


def test_models_come_in_the_service_order(models, tmp_path, capsys):
    (models / "order.json").write_text('["tiny-gan"]')
    code, _ = site(["--out", str(tmp_path / "s"), "--models-dir", str(models)], capsys)
    assert code == 0
    listed = json.loads((tmp_path / "s" / "models.json").read_text())["models"]
    assert [m["id"] for m in listed] == ["tiny-gan", "tiny"]


def test_a_failed_build_leaves_nothing_half_written(models, tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()  # an existing empty folder may be the target; it stays empty
    (models / "tiny-gan" / "generator.onnx").write_bytes(b"not the file the manifest names")
    one_line(*site(["--out", str(out), "--models-dir", str(models)], capsys), "sha256")
    assert list(out.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["models", "site"]


def test_the_same_id_in_two_folders_is_refused(models, tmp_path, capsys):
    shutil.copytree(models / "tiny", models / "tiny-copy")
    one_line(*site(["--out", str(tmp_path / "s"), "--models-dir", str(models)], capsys), "['tiny'] come from more")


def test_an_existing_empty_folder_is_filled_in_place(models, tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    inode = out.stat().st_ino
    code, _ = site(["--out", str(out), "--models-dir", str(models)], capsys)
    assert code == 0 and out.stat().st_ino == inode  # a shell standing in it sees the site
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "models", "models.json", "static"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "site"]  # no .part folder left


def test_an_existing_folder_is_staged_inside_itself(models, tmp_path, capsys, monkeypatch):
    # a mount point (another file system than its parent) or a folder under a read-only parent: every rename of the
    # build stays inside the folder itself, so it cannot cross file systems and never writes to the parent
    import training.site

    out = tmp_path / "site"
    out.mkdir()
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(training.site.os, "replace", lambda a, b: (renames.append((a, b)), real_replace(a, b))[1])
    code, _ = site(["--out", str(out), "--models-dir", str(models)], capsys)
    assert code == 0 and len(renames) == 4
    assert all(Path(a).parent.parent == out and Path(b).parent == out for a, b in renames)


def test_a_new_folder_s_missing_parents_are_not_left_behind_by_a_failed_build(models, tmp_path, capsys):
    (models / "tiny-gan" / "generator.onnx").write_bytes(b"not the file the manifest names")
    one_line(*site(["--out", str(tmp_path / "new" / "deeper" / "site"), "--models-dir", str(models)], capsys), "sha256")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_staging_folders_of_killed_builds_are_removed_and_a_running_one_s_kept(models, tmp_path, capsys):
    from training.site import PART_PREFIX

    out = tmp_path / "site"
    out.mkdir()
    dead = max_pid_plus_one()
    (out / f"{PART_PREFIX}{dead}" / "static").mkdir(parents=True)  # a build killed with SIGKILL
    beside = tmp_path / f".other{PART_PREFIX}{dead}"
    beside.mkdir()
    code, _ = site(["--out", str(out), "--models-dir", str(models)], capsys)
    assert code == 0 and not any(p.name.startswith(PART_PREFIX) for p in out.iterdir())
    other = tmp_path / "other"
    code, _ = site(["--out", str(other), "--models-dir", str(models)], capsys)
    assert code == 0 and not beside.exists()
    # a build still running (its process alive) in an otherwise empty folder: not this build's to take
    busy = tmp_path / "busy"
    (busy / f"{PART_PREFIX}{os.getppid()}").mkdir(parents=True)
    one_line(*site(["--out", str(busy), "--models-dir", str(models)], capsys), "is not empty")
    assert (busy / f"{PART_PREFIX}{os.getppid()}").is_dir()


def max_pid_plus_one() -> int:
    """A process id no process has (above the kernel's maximum)."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1


def test_the_page_is_written_as_utf8_whatever_the_locale(models, tmp_path):
    # the page holds non-ASCII text (…, λ) and says <meta charset="utf-8">; a C locale once made it an error
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    out = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-m", "training", "site", "--out", str(out), "--models-dir", str(models)],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    page = (out / "index.html").read_bytes().decode("utf-8")
    assert any(ord(ch) > 127 for ch in page)


def test_models_json_is_what_get_models_answers(models, tmp_path, capsys):
    """The static page reads models.json where the served page asks GET /models: the same document but its device
    ("wasm"), through the same schema (a categorical code without labels gets "0".."K-1", an unlabelled code
    "label": null), not the raw description beneath it."""
    import time

    from fastapi.testclient import TestClient

    from backend.core.config import Settings
    from backend.main import create_app

    code, _ = site(["--out", str(tmp_path / "s"), "--models-dir", str(models)], capsys)
    assert code == 0
    written = json.loads((tmp_path / "s" / "models.json").read_text())
    with TestClient(create_app(Settings(models_dir=models, device="cpu", ort_threads=1))) as c:
        deadline = time.monotonic() + 30
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        served = c.get("/models").json()
    assert [m.pop("device") for m in written["models"]] == ["wasm"] * 2  # the page's badge: in the browser
    assert [m.pop("device") for m in served["models"]] == ["cpu"] * 2
    assert written == served
    digit = next(code for code in served["models"][0]["codes"] if code["type"] == "categorical")
    assert digit["labels"]  # the schema's filling-in is part of what the site must copy
