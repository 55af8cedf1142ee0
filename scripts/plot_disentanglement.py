"""Disentanglement metrics against images seen, for several runs, as one PNG (docs/dsprites-curves.png).

    python scripts/plot_disentanglement.py --run dsprites=runs/00000-dsprites-s0 \
        --run dsprites-infogan=runs/00001-dsprites-infogan-s0 [--out docs/dsprites-curves.png]

Each run's metrics.jsonl holds a ``dis/...`` row every ``train.metrics_every`` images (training/epoch_report.py); the
published dSprites figures are drawn as dashed lines (InfoGAN 0.59 and InfoGAN-CR 0.88 FactorVAE score, Lin et al.,
ICML 2020, Table 1; the issue's MIG bar 0.35). Those were measured on DeepMind's pixels, ours on the re-rendering
(docs/dsprites.md), and the curves here use train.metrics_sizes' reduced samples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.evaluate_cmd import plot_disentanglement  # noqa: E402
from training.run_dir import METRICS_FILE  # noqa: E402

ANCHORS = {"dis/factor_vae": {"InfoGAN-CR 0.88": 0.88, "InfoGAN 0.59": 0.59}, "dis/mig": {"bar 0.35": 0.35}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--run",
        action="append",
        required=True,
        metavar="LABEL=RUN_DIR",
        help="a run folder (or its metrics.jsonl) and its label; repeat for each run",
    )
    ap.add_argument("--out", default="docs/dsprites-curves.png")
    args = ap.parse_args(argv)
    runs = {}
    for item in args.run:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"plot_disentanglement: error: --run {item!r}: expected LABEL=RUN_DIR")
        p = Path(path)
        runs[label] = p / METRICS_FILE if p.is_dir() else p
        if not runs[label].is_file():
            raise SystemExit(f"plot_disentanglement: error: --run {item!r}: no {METRICS_FILE} at {runs[label]}")
    try:
        print(f"wrote {plot_disentanglement(runs, args.out, ANCHORS)}")
    except (ValueError, OSError) as e:  # no dis/ rows to draw, an unwritable --out
        raise SystemExit(f"plot_disentanglement: error: {getattr(e, 'strerror', None) or e}") from None


if __name__ == "__main__":
    main()
