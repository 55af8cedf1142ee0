"""scripts/confusions.py: per-class recall and the largest confusions of a shipped model's categorical code."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "confusions.py"
_spec = importlib.util.spec_from_file_location("confusions", SCRIPT)
confusions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(confusions)


def test_report_reads_recall_and_confusions_from_the_matrix():
    m = np.array([[8, 2, 0], [0, 10, 0], [1, 4, 5]])  # rows: true class
    lines = confusions.report(m, ["a", "b", "c"], top=2).splitlines()
    assert lines[0] == "accuracy 0.7667 (7 errors in 30)"
    assert lines[1] == "recall: a 0.800, b 1.000, c 0.500"
    assert lines[2] == "largest confusions (true -> read as): c -> b 4, a -> b 2"


def test_a_model_on_a_labelled_split_and_bad_input(tmp_path, build_tiny_model, fake_mnist_dir):
    folder = build_tiny_model(tmp_path, "m")
    m, names = confusions.confusion_matrix(folder, str(fake_mnist_dir), verify=False)
    assert m.shape == (10, 10) and m.sum() == 256 and names == [str(i) for i in range(10)]
    for args, needle in (
        ([str(tmp_path / "no-such-model"), "--data-dir", str(fake_mnist_dir)], "manifest.json is missing"),
        ([str(folder), "--data-dir", str(tmp_path / "no-data")], "missing"),
    ):
        done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and needle in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert [ln for ln in done.stderr.splitlines() if ln.strip()] == [done.stderr.strip()], done.stderr
        assert done.stderr.startswith("confusions: error: "), done.stderr
