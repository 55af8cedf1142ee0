"""scripts/factor_fit.py: linear R² of the codes per factor, over the set and within each class of a grouping factor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("factor_fit", ROOT / "scripts" / "factor_fit.py")
factor_fit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(factor_fit)


def test_per_class_rotations_fit_within_each_class_but_not_over_the_set():
    """Codes that hold (a, b) through a rotation that differs per class (what G does when each category gets its own
    mixture): R² ~1 within every class, low over the set; a factor the codes ignore is low everywhere."""
    rng = np.random.default_rng(0)
    n = 4000
    factors = np.column_stack(
        [rng.integers(0, 4, n), rng.integers(0, 8, n), rng.integers(0, 8, n), rng.integers(0, 5, n)]
    )
    ab = factors[:, 1:3] - 3.5
    angle = factors[:, 0] * np.pi / 2  # class k rotates (a, b) by k quarter turns
    cos, sin = np.cos(angle), np.sin(angle)
    codes = np.column_stack([cos * ab[:, 0] - sin * ab[:, 1], sin * ab[:, 0] + cos * ab[:, 1]])
    fit = factor_fit.factor_fit(codes, factors, ["style", "a", "b", "ignored"], group=0)
    assert set(fit) == {"a", "b", "ignored"}
    for name in ("a", "b"):
        assert min(fit[name]["per_class"]) > 0.99 and fit[name]["all"] < 0.1
    assert max(fit["ignored"]["per_class"]) < 0.05 and fit["ignored"]["all"] < 0.05
    shared = factor_fit.factor_fit(ab @ np.array([[0.6, -0.8], [0.8, 0.6]]), factors, ["style", "a", "b", "x"], 0)
    assert shared["a"]["all"] == pytest.approx(1.0)  # one rotation for every class: a linear fit over the set


def test_r_squared_of_a_constant_is_zero():
    assert factor_fit.r_squared(np.ones((5, 1)), np.full(5, 3.0)) == 0.0
    assert factor_fit.r_squared(np.arange(5.0)[:, None], 2 * np.arange(5.0) + 1) == pytest.approx(1.0)


def test_bad_input_is_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "not-a-checkpoint.pt"
    bad.write_text("hello")
    for path, words in ((tmp_path / "missing.pt", "no checkpoint at"), (bad, "not a readable checkpoint")):
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "factor_fit.py"), str(path)], capture_output=True, text=True
        )
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        assert (
            out.stderr.strip().startswith("factor_fit: error: ")
            and words in out.stderr
            and len(out.stderr.splitlines()) == 1
        )
