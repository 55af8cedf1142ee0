"""`infogan site` without a browser: its one-line errors, the service's model order, and no half-built site when a
build fails (the browser tests of the built site are in tests/e2e/test_static_site.py)."""

from __future__ import annotations

import json
import shutil
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
