"""How linearly Q's continuous codes predict each ground-truth factor, over the whole set and within each class of
a categorical factor (the style of 3D chairs, the shape of dSprites).

    python scripts/factor_fit.py runs/chairs3d/00000-chairs3d-s0/checkpoint.pt [--group style] [--data-dir DIR]

MIG and the FactorVAE score ask for one code per factor *shared by every image*. When they are low, this tells two
failures apart: codes that know a factor only through a mixture that differs from class to class (high R² within
each class, low over the set: G gave each category its own rotation of the code space), and codes that do not
know the factor at all (low everywhere). Q reads real images (point estimates, BatchNorm in eval mode).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def r_squared(x: np.ndarray, y: np.ndarray) -> float:
    """R² of the least-squares fit y ~ x @ w + b; 0 for a constant y."""
    y = np.asarray(y, np.float64)
    if y.var() == 0:
        return 0.0
    a = np.column_stack([np.asarray(x, np.float64), np.ones(len(y))])
    resid = y - a @ np.linalg.lstsq(a, y, rcond=None)[0]
    return float(1.0 - resid.var() / y.var())


def factor_fit(codes: np.ndarray, factors: np.ndarray, names: list[str], group: int) -> dict[str, dict]:
    """{factor: {"all": R², "per_class": [R² within each class of factor ``group``]}} for every factor but
    ``group``; ``codes`` (N, d), ``factors`` (N, F) class indices."""
    classes = np.unique(factors[:, group])
    out = {}
    for j, name in enumerate(names):
        if j == group:
            continue
        per = [r_squared(codes[m], factors[m, j]) for m in (factors[:, group] == k for k in classes)]
        out[name] = {"all": r_squared(codes, factors[:, j]), "per_class": per}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--group", default=None, help="the categorical factor to split by (default: the first factor)")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)

    import torch

    from training.checkpoint import load_networks
    from training.data import DataError
    from training.evaluate import EvaluationError, calibrated_copy, load_eval_data, predict_codes

    try:
        G, D, ck = load_networks(args.checkpoint)
        data = load_eval_data(ck["config"]["data"], args.data_dir, None, allow_download=False)
    except (OSError, ValueError, KeyError, DataError, EvaluationError) as e:
        raise SystemExit(f"factor_fit: error: {e}") from None
    if data.eval.factors is None:
        raise SystemExit(f"factor_fit: error: {data.eval.name} has no ground-truth factors")
    names = list(data.eval.factor_names)
    if args.group and args.group not in names:
        raise SystemExit(
            f"factor_fit: error: --group {args.group!r} is not a factor of {data.eval.name} ({', '.join(names)})"
        )
    group = names.index(args.group) if args.group else 0
    D = calibrated_copy(D, data)
    with torch.no_grad():
        q = predict_codes(D, data.eval.images)
    cont = [c.name for c in D.spec.continuous_codes()]
    codes = np.column_stack([q[c]["mean"].numpy() for c in cont])
    fit = factor_fit(codes, data.eval.factors.numpy(), names, group)
    print(f"linear R² of {', '.join(cont)} (Q on {len(codes)} real images) for each factor; within each {names[group]}")
    for name, r in fit.items():
        print(f"{name:>12}  all {r['all']:.3f}  per {names[group]}: " + " ".join(f"{v:.3f}" for v in r["per_class"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
