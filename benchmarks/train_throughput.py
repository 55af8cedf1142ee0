"""Training throughput (images/second) of the InfoGAN step on this machine, for several variants in one run.

    python benchmarks/train_throughput.py [--data-dir ../shared/data/mnist] [--fashion-dir DIR] [--dsprites-dir DIR]
                                          [--chairs3d-dir DIR] [--download] [--steps 40]
                                          [--variants ...]

--data-dir defaults to the project's shared MNIST (shared/data/mnist, ../shared/data/mnist or ../../shared/data/mnist
from the repository, the first that holds the files, as benchmarks/gpu_check.sh looks), else the configs' own folder
(INFOGAN_DATA, else ~/.cache/infogan/mnist). A benchmark downloads nothing unless --download: MNIST or Fashion-MNIST
missing there is one error line before any measurement (dSprites and 3D chairs are rendered here, as the configs do).

Variants: ``paper-eager`` (the paper's network and loss, plain eager step), ``paper-bf16`` (bfloat16 autocast),
``default`` (the ``mnist`` config as it is: precision "auto", i.e. bf16 where the CPU computes it natively, plus Q
reading the digit code from a transformed copy of each fake, ``loss.invariance``), ``fashion`` (the ``fashion-mnist``
config: the full network, Q reading the item from a rescaled, shifted, contrast-changed copy), ``dsprites``
(InfoGAN-CR's 64x64 networks on dSprites, plain InfoGAN: the ``dsprites-infogan`` config, two G updates per step),
``dsprites-cr`` (the ``dsprites`` config in its late phase: the contrastive regularizer on, two more G images per
sample and the CR head), ``chairs3d`` / ``chairs3d-cr`` (the same networks on the rendered 3D chairs with the
``chairs3d-infogan`` / ``chairs3d`` configs: a 4-way style code and 4 continuous codes), ``chairs3d-dcgan``
(``chairs3d-infogan`` with the larger DCGAN-style pair, ``dcgan`` at ch=32), and ``naive`` -- the textbook step most
ports use (a second G forward for the G phase, D's weight gradients computed and thrown away) -- as the "before"
reference. Figures are medians of per-chunk rates after warm-up. ``--threads 1`` where other processes share the
cores: on 2 shared cores (load ~8) the dSprites step ran at 13 images/s on 2 threads and 140 on 1. (The channels_last
and torch.compile variants went with their settings: on a 2-core AVX2 EPYC channels_last was slower, 219 against 235
images/s, and compile +6 % / +2 % at the cost of a C++ toolchain at run time and a minute of compiling, README.)

Each variant also gets its compute ceiling on this machine: the step's FLOPs per image, counted by
``torch.utils.flop_counter`` (matrix products and convolutions, forward and backward), against the best rate of a
large fp32 matrix product with the same threads (the fastest this CPU multiplies fp32 at all). No fp32 implementation
of that step can beat peak / FLOPs; the last column says how much of it the step reaches.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._cli import count, errors_in_one_line  # noqa: E402
from training.config import Config, load_config  # noqa: E402
from training.data import IDX_SETS, DataError, load_dataset  # noqa: E402
from training.loop import Trainer  # noqa: E402
from training.runtime import TrainingError  # noqa: E402

PAPER = ["loss.invariance={}"]  # the paper's loss: one Q read per fake, no transformed copy
VARIANTS = {
    "naive": ("mnist", PAPER + ["train.precision='fp32'"]),
    "paper-eager": ("mnist", PAPER + ["train.precision='fp32'"]),
    "paper-bf16": ("mnist", PAPER + ["train.precision='bf16'"]),
    "default": ("mnist", []),  # the mnist config as shipped: bf16 + the invariant categorical code
    "fashion": ("fashion-mnist", []),
    "dsprites": ("dsprites-infogan", []),
    "dsprites-cr": ("dsprites", ["loss.cr_late_from=0"]),  # the CR phase from the first step
    "chairs3d": ("chairs3d-infogan", []),  # 3D chairs: the dSprites networks, a 4-way style code + 4 continuous
    "chairs3d-cr": ("chairs3d", ["loss.cr_late_from=0"]),
    # the DCGAN-style pair (networks.py ``dcgan``, widths 32-64-128-256, BatchNorm, no spectral norm), plain InfoGAN
    "chairs3d-dcgan": ("chairs3d-infogan", ["model.arch='dcgan'", "model.widths={ch = 32}"]),
}


# the option that gives each config's data folder
DATA_OPTIONS = {
    "mnist": "--data-dir",
    "fashion-mnist": "--fashion-dir",
    "dsprites": "--dsprites-dir",
    "dsprites-infogan": "--dsprites-dir",
    "chairs3d": "--chairs3d-dir",
    "chairs3d-infogan": "--chairs3d-dir",
}
# where the project keeps MNIST beside its checkouts (README; benchmarks/gpu_check.sh looks in the same places)
SHARED_MNIST = ("shared/data/mnist", "../shared/data/mnist", "../../shared/data/mnist")


def shared_mnist() -> str | None:
    """The first of SHARED_MNIST (from the repository) that holds MNIST's training images, else None (the config's
    own folder)."""
    for rel in SHARED_MNIST:
        folder = (ROOT / rel).resolve()
        if any((folder / f"train-images-idx3-ubyte{ext}").is_file() for ext in (".gz", "")):
            return str(folder)
    return None


def configs(ap: argparse.ArgumentParser, args) -> dict[str, Config]:
    """Each variant's config with its data folder, threads and --set; an IDX set (MNIST, Fashion-MNIST) with downloads
    off unless --download, and loaded once here, so that a missing or bad data set (or --set) is one ``ap.error``
    before any measurement instead of a download attempt or a traceback minutes in."""
    dirs = {config: getattr(args, option[2:].replace("-", "_")) for config, option in DATA_OPTIONS.items()}
    out, checked = {}, set()
    for name in args.variants:
        config, overrides = VARIANTS[name]
        given = dirs.get(config)
        option = DATA_OPTIONS.get(config, "--data-dir")
        overrides = overrides + ([f"data.dir={json.dumps(given)}"] if given else [])  # a TOML string
        overrides += [f"train.threads={args.threads}"] if args.threads else []
        try:
            if load_config(config).data.name in IDX_SETS:  # downloaded from the network, not rendered here
                overrides.append(f"data.download={'true' if args.download else 'false'}")
            cfg = load_config(config, overrides + args.set)  # --set last: it may still say data.download=true
        except (ValueError, KeyError, TypeError) as e:
            ap.error(f"--set {' '.join(args.set)}: {e}" if args.set else f"{name}: {e}")
        dc = cfg.data
        if given and Path(given).exists() and not Path(given).is_dir():
            ap.error(f"{option} {given}: a file, not the folder that holds {dc.name}'s files")
        if dc.name in IDX_SETS and (dc.name, dc.dir) not in checked:
            try:
                load_dataset(dc.name, dc.dir, "train", allow_download=dc.download, verify=dc.verify)
            except DataError as e:
                how = "" if given else f"; give {option} DIR (the folder with its IDX files), or --download to fetch it"
                ap.error(f"{option} {given or '(not given)'}: {e}{how}")
            checked.add((dc.name, dc.dir))
        out[name] = cfg
    return out


def naive_step(t: Trainer, real: torch.Tensor) -> None:
    """The common port's step: G forward twice, D weight grads computed in the G phase and discarded."""
    n = real.shape[0]
    z, c = t.spec.sample(n, t.latent_gen)
    out_d = t.loss.discriminator_step(t.D, real, t.G(z, c).detach(), c)
    t.opt_D.zero_grad()
    out_d.loss.backward()
    t.opt_D.step()
    out_g = t.loss.generator_step(t.D, t.G(z, c), c)
    t.opt_G.zero_grad()
    t.opt_D.zero_grad()
    out_g.loss.backward()
    t.opt_G.step()


def sgemm_peak(size: int = 3072, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of a size^3 matrix product with torch's threads: the CPU's practical fp32 peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        a @ b
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return best


def measure(name: str, cfg: Config, steps: int, chunk: int = 10) -> tuple[float, float, str]:
    """(images/s, GFLOP per image of one step, the precision it ran in) of variant ``name`` with its ``cfg``."""
    t = Trainer(cfg, Path("/tmp/infogan-bench"), progress=False)
    step = (lambda x: naive_step(t, x)) if name == "naive" else t.train_step
    bs = t.cfg.optim.batch_size
    batches = [t.data[torch.randint(len(t.data), (bs,))] for _ in range(steps)]
    for x in batches[:5]:  # warm-up
        step(x)
    with FlopCounterMode(display=False) as counter:
        step(batches[0])
    gflop = counter.get_total_flops() / bs / 1e9
    rates = []
    for i in range(0, steps, chunk):
        t0 = time.perf_counter()
        for x in batches[i : i + chunk]:
            step(x)
        rates.append(len(batches[i : i + chunk]) * bs / (time.perf_counter() - t0))
    return statistics.median(rates), gflop, t.precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data-dir",
        default=shared_mnist(),
        help="MNIST folder (the mnist variants; default: the project's shared/data/mnist where there is one)",
    )
    ap.add_argument("--fashion-dir", default=None, help="Fashion-MNIST folder (the fashion variant)")
    ap.add_argument("--dsprites-dir", default=None, help="dSprites folder (default: the rendered cache)")
    ap.add_argument("--chairs3d-dir", default=None, help="3D chairs folder (default: the rendered cache)")
    ap.add_argument("--download", action="store_true", help="fetch a missing MNIST / Fashion-MNIST (default: error)")
    ap.add_argument("--steps", type=count(1), default=40)
    ap.add_argument("--threads", type=count(0), default=0, help="torch threads (train.threads; 0: torch's default)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every variant, e.g. train.precision='fp32'",
    )
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    cfgs = configs(ap, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = sgemm_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; fp32 matrix-product peak {peak:.0f} GFLOP/s")
    results = {}
    for name, cfg in cfgs.items():
        results[name], gflop, precision = measure(name, cfg, args.steps)
        line = f"{name:16s} {results[name]:8.0f} images/s  {precision}  {gflop:.3f} GFLOP/image"
        if precision == "fp32":  # bf16 multiplies at another peak: the fp32 one bounds only fp32 steps
            ceiling = peak / gflop
            line += f"  fp32 ceiling {ceiling:.0f} images/s ({results[name] / ceiling:.0%} of it)"
        print(line, flush=True)
    if "naive" in results:
        for name, r in results.items():
            print(f"{name:16s} {r / results['naive']:.2f}x naive")


if __name__ == "__main__":
    with errors_in_one_line(DataError, TrainingError):  # e.g. a rendered set that cannot be read, no bf16 here
        main()
