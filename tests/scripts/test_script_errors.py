"""The project's scripts and benchmarks refuse bad arguments in one line, before any work and without a traceback;
make_docs_figures.py's --help prints help instead of rewriting docs/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.parametrize(
    "script, args, words",
    [
        ("scripts/migrate_manifests.py", ["{tmp}/nope"], "migrate_manifests: error: {tmp}/nope/manifest.json"),
        ("benchmarks/train_throughput.py", ["--variants", "nope"], "argument --variants: invalid choice: 'nope'"),
        ("scripts/make_screenshots.py", ["--models-dir", "{tmp}"], "--model mnist: no model folder"),
        ("benchmarks/browser_latency.py", ["--model", "nope"], "--model nope: not among the models of"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, script, args, words):
    res = run(script, *(a.format(tmp=tmp_path) for a in args))
    assert res.returncode in (1, 2) and words.format(tmp=tmp_path) in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_make_docs_figures_help_writes_nothing(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("make_docs_figures", ROOT / "scripts" / "make_docs_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def wrote(*a, **k):
        raise AssertionError("--help wrote a figure")

    monkeypatch.setattr(module, "plot_info_curves", wrote)
    monkeypatch.setattr(module, "traversal", wrote)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0 and "docs/fig*.png" in capsys.readouterr().out
