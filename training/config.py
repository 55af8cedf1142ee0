"""Typed training configuration: nested dataclasses loaded from TOML files in ``training/configs/``.

The resolved config (file + command-line overrides) is validated here, printed, written to every run folder
(``training_options.json``) and stored in every checkpoint, so a run can be reproduced from its folder alone.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import sys
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .augment import NuisanceAugment
from .disentanglement import sample_sizes
from .latent import LatentSpec, mnist_spec

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class DataConfig:
    name: str = "mnist"  # mnist | fashion-mnist | svhn | celeba | folder
    dir: str | None = None  # where the files are (downloaded there if missing and allowed)
    download: bool = True
    verify: bool = True  # check MD5 sums of IDX content (tests turn it off for generated fixture files)
    resolution: int = 28  # the resize target of celeba/folder (8..1024); a fixed-size set's must equal its images
    channels: int = 1


@dataclass
class ModelConfig:
    arch: str = "mnist"
    widths: dict[str, int] = field(default_factory=dict)  # architecture keywords, e.g. {fc = 1024, ch = 64}
    # G multiplies the noise z by this before its first layer (the prior, the manifest and the served z are
    # unchanged); 1 is the paper's generator. Measured on MNIST (training/configs/mnist.toml): 0.1, ClusterGAN's
    # small-variance noise (Mukherjee et al., 2019), halved the categorical code's accuracy; 2 helped in short runs.
    noise_scale: float = 1.0


@dataclass
class LossConfig:
    lambda_categorical: float = 1.0
    lambda_continuous: float = 0.1
    # Transform ranges under which Q must recover categorical codes, e.g. {rotate = 15, shear = 0.3, scale = 0.15,
    # translate = 2} (degrees, x per y, relative, pixels); empty = the paper's loss. See training/augment.py.
    invariance: dict[str, float] = field(default_factory=dict)
    # InfoGAN-CR's contrastive regularizer (training/loss.py): G's loss adds cr_weight x the CR head's cross-entropy,
    # cr_weight_late from cr_late_from images seen on (unset: cr_weight throughout). 0 and unset: no CR head at all.
    cr_weight: float = 0.0
    cr_weight_late: float | None = None
    cr_late_from: int = 0
    # A categorical code that differs between the two images of every CR pair not sharing it (LatentSpec.
    # shared_code_pairs); "" = InfoGAN-CR's pairs, which draw it afresh (the same value 1/K of the time).
    cr_differ: str = ""
    # The real-data information term (training/loss.py): the D phase subtracts lambda_real x I(category; x) of Q's
    # categorical read over each real batch (IMSAT's balanced, confident clusters); 0 = the paper's loss.
    lambda_real: float = 0.0
    # The paired real-data term (training/loss.py): minus lambda_real_pair x I(q(x); q(T x)) of Q's categorical read
    # of each real batch and its transformed copy (IIC; T = loss.invariance's transforms, which it needs); 0 = off.
    lambda_real_pair: float = 0.0


@dataclass
class OptimConfig:
    batch_size: int = 128
    lr_g: float = 1e-3  # G and D rates of the reference implementation (openai/InfoGAN, MNIST)
    lr_d: float = 2e-4
    lr_q: float | None = None  # Q head's rate; None = lr_g
    lr_cr: float | None = None  # the CR head's rate; None = lr_d
    # G updates per step, each on the same latents (InfoGAN-CR runs its G op twice per D update); 1 = the paper
    g_steps: int = 1
    beta1: float = 0.5
    beta2: float = 0.999


@dataclass
class TrainConfig:
    epochs: float = 10.0
    seed: int = 0
    checkpoint_every: int = 500  # steps between atomic checkpoints
    log_every: int = 50  # steps between metrics.jsonl lines
    device: str = "auto"  # auto | cpu | cuda
    # "bf16": forward passes under torch.autocast(bfloat16) (convolutions and matmuls in bf16, weights, optimizer
    # state, BatchNorm statistics and losses in fp32). 2.3x the images/s of fp32 on a 2-core CPU with AVX-512 BF16,
    # but 20x *slower* on an AVX2-only CPU, where oneDNN emulates bf16 (benchmarks/train_throughput.py). "fp32" is
    # exact fp32 everywhere; "auto" is bf16 where the hardware has it (CUDA with bf16, AVX-512 BF16 / AMX), else fp32.
    precision: str = "fp32"
    threads: int = 0  # torch CPU threads; 0 = torch's default
    eval_every_epoch: bool = True  # log test-split accuracy at each epoch's end (labelled data sets)
    # Label-free restarts (training/restarts.py): train this many differently seeded starts for restart_steps steps
    # each and keep the one whose Q best separates *real* images (the label-free score, I(category; x)), then train
    # it on. 1 = no restarts.
    restarts: int = 1
    restart_steps: int = 300
    # Disentanglement metrics (training/disentanglement.py) every this many images into metrics.jsonl, for data sets
    # with ground-truth factors (dSprites); 0 = never. metrics_sizes: disentanglement_metrics' sample sizes for these
    # rows (e.g. {fvae_train = 1000, dci_train = 0}); the final evaluation uses the full ones.
    metrics_every: int = 0
    metrics_sizes: dict[str, int] = field(default_factory=dict)
    # An exponential moving average of G's weights (Karras et al., 2018, "Progressive Growing of GANs", Sec. A.1;
    # StyleGAN's G_ema), half-life in images: after each step G_ema <- beta G_ema + (1 - beta) G with beta =
    # 0.5 ** (batch_size / ema_half_life), BatchNorm buffers copied. It never feeds back into training (the same run
    # with and without it trains the same G, D and Q); the checkpoint keeps both, and what draws images from a
    # checkpoint (samples, evaluation, export) uses G_ema. 0 = off. Switched on at a resume of a run without it, it
    # starts from G there.
    ema_half_life: int = 0


# Settings renamed: old name -> new name, read from TOML files, --set and old checkpoints so commands keep working.
RENAMED = {"train.candidates": "train.restarts", "train.candidate_steps": "train.restart_steps"}
# Settings removed, read and ignored so old configs and checkpoints still load: why, for the note.
REMOVED = {
    "train.compile": "torch.compile gained 2-6 % on a 2-core CPU for a C++ toolchain and a minute of compiling; README",
    "train.channels_last": "channels_last was slower than the default layout, 219 against 235 images/s; README",
}


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _upgrade(section: str, table: dict[str, Any]) -> dict[str, Any]:
    """A config section with renamed keys under their new names and removed keys dropped, each with a note (a
    removed key only when it asked for something other than the old default, false: then nothing changes)."""
    table = dict(table)
    for key in list(table):
        where = f"{section}.{key}"
        if where in RENAMED:
            new = RENAMED[where].split(".")[1]
            if new in table:
                raise ValueError(f"{where} and {RENAMED[where]} are the same setting; give only {RENAMED[where]}")
            table[new] = table.pop(key)
            note(f"{where} is now called {RENAMED[where]}; read as that")
        elif where in REMOVED:
            value = table.pop(key)
            if value is not False:
                note(f"{where} = {json.dumps(value)} is ignored: the setting was removed ({REMOVED[where]})")
    return table


@dataclass
class Config:
    name: str = "mnist"
    latent: dict[str, Any] = field(default_factory=lambda: mnist_spec().to_dict())
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def spec(self) -> LatentSpec:
        return LatentSpec.from_dict(self.latent)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        d = dict(d)
        sections = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(sections))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected {sorted(sections)}")
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            typ = {
                "data": DataConfig,
                "model": ModelConfig,
                "loss": LossConfig,
                "optim": OptimConfig,
                "train": TrainConfig,
            }.get(key)
            if typ is not None:
                if not isinstance(value, dict):
                    raise ValueError(f"[{key}] must be a table of settings, got {value!r}")
                value = _upgrade(key, value)
                known = {f.name for f in dataclasses.fields(typ)}
                bad = sorted(set(value) - known)
                if bad:
                    raise ValueError(f"unknown keys in [{key}]: {bad}; expected {sorted(known)}")
                hints = typing.get_type_hints(typ)
                for name, v in value.items():
                    check_type(f"{key}.{name}", v, hints[name])
                value = typ(**value)
            kwargs[key] = value
        cfg = cls(**kwargs)
        check_type("name", cfg.name, str)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", cfg.name):
            # it names run folders (runs/00000-<name>-s0): no separators, spaces or newlines
            raise ValueError(f"name must be 1-64 letters, digits, '_', '.' or '-', got {cfg.name!r}")
        _ = cfg.spec  # validate the latent spec now, with its own messages
        for where, ok, what in RANGES:
            section, name = where.split()[0].split(".")
            value = getattr(getattr(cfg, section), name)
            if not ok(value):
                raise ValueError(f"{where} must be {what}, got {value!r}")
        if cfg.train.restarts > 1 and not cfg.spec.categorical_codes():
            raise ValueError(
                "train.restarts > 1 ranks restarts by a categorical code's label-free score; "
                "the latent spec has no categorical code"
            )
        NuisanceAugment.from_config(cfg.loss.invariance)  # validate ranges and keys now
        if cfg.loss.lambda_real_pair and not cfg.loss.invariance:
            raise ValueError(
                "loss.lambda_real_pair needs loss.invariance: its term is I(q(x); q(T x)) with T those transforms"
            )
        if (cfg.loss.cr_weight or cfg.loss.cr_weight_late) and len(cfg.spec.codes) < 2:
            raise ValueError(
                "loss.cr_weight: the contrastive regularizer names which of the codes two images share; "
                "it needs at least 2 codes"
            )
        if cfg.loss.cr_differ:
            cats = {c.name: c.categories for c in cfg.spec.categorical_codes()}
            if cats.get(cfg.loss.cr_differ, 0) < 2:
                raise ValueError(
                    f"loss.cr_differ must name a categorical code with >= 2 categories "
                    f"({', '.join(sorted(cats)) or 'the latent spec has none'}), got {cfg.loss.cr_differ!r}"
                )
        sizes = sample_sizes()
        bad = sorted(set(cfg.train.metrics_sizes) - sizes)
        if bad:
            raise ValueError(f"unknown keys in train.metrics_sizes: {bad}; expected {sorted(sizes)}")
        for name, n in cfg.train.metrics_sizes.items():
            # a FactorVAE vote's variance needs 2 images (ddof 1): with 1 it is NaN and every vote names the first code
            least = 0 if name in SKIPPABLE_SIZES else 2 if name == "fvae_batch" else 1
            if n < least:  # checked now: the first metrics row may come hours into a run
                raise ValueError(f"train.metrics_sizes.{name} must be >= {least}, got {n}")
        check_widths(cfg.model.arch, cfg.model.widths)
        return cfg


# metrics sizes whose 0 skips their metric (disentanglement_metrics: dci_train = 0 skips DCI, sap_train = 0 SAP)
SKIPPABLE_SIZES = frozenset({"dci_train", "sap_train"})


def check_widths(arch: str, widths: dict[str, Any]) -> None:
    """model.widths against the architecture's own keywords (training/networks.py): a name it takes, a whole number
    >= 1 (>= 0 where its default is 0, an off switch); checked at load, not as a TypeError once the data loaded."""
    from .networks import ARCHITECTURES

    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch must be one of {sorted(ARCHITECTURES)}, got {arch!r}")
    params = dict(list(inspect.signature(ARCHITECTURES[arch]).parameters.items())[3:])  # after spec, channels, res
    unknown = sorted(set(widths) - set(params))
    if unknown:
        raise ValueError(f"unknown keys in model.widths for arch {arch!r}: {unknown}; expected {sorted(params)}")
    for name, value in widths.items():
        least = 0 if params[name].default == 0 else 1
        if value < least:
            raise ValueError(f"model.widths.{name} must be >= {least}, got {value}")


# Values a run cannot use (batch 0 divides by zero, --epochs -1 trains nothing) and settings with a fixed set of
# choices: (setting as the message names it, test, what it must be). Checked once the types are known to be right.
RANGES: tuple[tuple[str, Any, str], ...] = (
    ("train.epochs (--epochs)", lambda v: 0 < v <= 1e6, "> 0 and at most 1,000,000"),
    ("optim.batch_size", lambda v: v >= 1, ">= 1"),
    ("train.checkpoint_every", lambda v: v >= 1, ">= 1"),
    ("train.log_every", lambda v: v >= 1, ">= 1"),
    ("optim.lr_g", lambda v: v > 0, "> 0"),
    ("optim.lr_d", lambda v: v > 0, "> 0"),
    ("optim.lr_q", lambda v: v is None or v > 0, "> 0 (or unset: lr_g)"),
    ("optim.beta1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("optim.beta2", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("loss.lambda_categorical (--lambda)", lambda v: v >= 0, ">= 0"),
    ("loss.lambda_continuous (--lambda)", lambda v: v >= 0, ">= 0"),
    ("model.noise_scale", lambda v: v > 0, "> 0"),
    ("data.channels", lambda v: v in (1, 3), "1 (grey) or 3 (colour)"),
    ("data.resolution", lambda v: 8 <= v <= 1024, "8..1024 (pixels)"),
    ("train.threads (--threads)", lambda v: v >= 0, ">= 0 (0: torch's default)"),
    ("train.restarts", lambda v: v >= 1, ">= 1 (1: no restarts)"),
    ("train.restart_steps", lambda v: v >= 1, ">= 1"),
    ("train.metrics_every", lambda v: v >= 0, ">= 0 (images; 0: never)"),
    ("train.ema_half_life", lambda v: v >= 0, ">= 0 (images; 0: off)"),
    ("loss.lambda_real", lambda v: v >= 0, ">= 0"),
    ("loss.lambda_real_pair", lambda v: v >= 0, ">= 0"),
    ("loss.cr_weight", lambda v: v >= 0, ">= 0"),
    ("loss.cr_weight_late", lambda v: v is None or v >= 0, ">= 0 (or unset: cr_weight throughout)"),
    ("loss.cr_late_from", lambda v: v >= 0, ">= 0 (images)"),
    ("optim.lr_cr", lambda v: v is None or v > 0, "> 0 (or unset: lr_d)"),
    ("optim.g_steps", lambda v: v >= 1, ">= 1"),
    ("train.precision", lambda v: v in ("auto", "fp32", "bf16"), "auto, fp32 or bf16"),
    ("train.device", lambda v: v in ("auto", "cpu", "cuda"), "auto, cpu or cuda"),
)


def check_type(where: str, value: Any, hint: Any) -> None:
    """A setting's value against its field's annotation, so ``--set train.epochs=ten`` fails here, naming the
    setting, and not as a TypeError deep in the run. Integers pass where floats are expected (TOML writes 10 for
    10.0); booleans never pass as numbers."""
    if _fits(value, hint):
        return
    raise ValueError(f"{where} must be {_describe(hint)}, got {value!r}")


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is dict:
        _, item = typing.get_args(hint)
        return isinstance(value, dict) and all(isinstance(k, str) and _fits(v, item) for k, v in value.items())
    if hint is float:  # inf passed every range test (inf > 0) and failed hours later, or at once as a traceback
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is dict:
        return f"a table of name = value pairs, each value {_describe(typing.get_args(hint)[1])}"
    return {
        float: "a finite number",
        int: "an integer",
        bool: "true or false",
        str: "a string",
        type(None): "unset (null)",
    }.get(hint, str(hint))


def load_config(path_or_name: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a TOML config (a path, or a name in training/configs/) and apply ``section.key=value`` overrides."""
    path = Path(path_or_name)
    if not path.is_file():  # a name; a folder called like one (mnist/ beside the command) does not hide it
        named = CONFIG_DIR / f"{path_or_name}.toml"
        if named.is_file() or not path.exists():
            path = named
    if not path.is_file():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
        what = "a folder, not a config file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"no config {str(path_or_name)!r} ({what}); give a .toml path or one of {names}")
    try:
        with open(path, "rb") as f:
            d = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from None
    for item in overrides or []:
        apply_override(d, item)  # in order: a later one replaces an earlier one (check_once refuses that on the CLI)
    cfg = Config.from_dict(d)
    # A new run's seed names its folder ("mnist-s3"); 32 bits keep seed x 100,003 + epoch (loop.py's per-epoch data
    # order) within torch.manual_seed's 64-bit range, where 10**20 failed as "Overflow when unpacking long long".
    # Checked here, for new runs only: a checkpoint of an older run with another seed still resumes and exports.
    if not 0 <= cfg.train.seed < 2**32:
        raise ValueError(f"train.seed (--seed) must be a whole number in 0..4294967295, got {cfg.train.seed}")
    return cfg


def split_override(item: str) -> tuple[str, str]:
    """(key as given, stripped; raw value) of ``section.key=value``: --set's and check_once's one reading."""
    if "=" not in item:
        raise ValueError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    return key.strip(), raw


def check_once(overrides: list[str]) -> None:
    """The command line's settings (--set, and the flags that set one: --seed, --epochs, --data-dir ...) name each
    setting once: the last would win without a word. An old name and its new one are one setting."""
    given: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            continue  # apply_override names it
        key, raw = split_override(item)
        key = RENAMED.get(key, key)
        if key in given:
            raise ValueError(f"{key} is given twice ({given[key]} and {raw.strip()}); give it once")
        given[key] = raw.strip()


NULL_WORDS = frozenset({"null", "none"})  # TOML has no null: how --set unsets an optional setting (optim.lr_q=null)


def apply_override(d: dict[str, Any], item: str) -> None:
    """``optim.lr_g=0.001`` -> d['optim']['lr_g'] = 0.001 (value parsed as TOML, else kept as a string; null or none:
    unset)."""
    given, raw = split_override(item)
    if raw.strip().lower() in NULL_WORDS:
        value = None
    else:
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
    key = RENAMED.get(given, given)
    if key != given:  # so --set of the old name overrides a file's new one, as it overrode the old one
        note(f"{given} is now called {key}; read as that")
    parts = key.split(".")
    node = d
    for depth, p in enumerate(parts[:-1]):
        node = node.setdefault(p, {})
        if not isinstance(node, dict):  # --set train.epochs.x=1: epochs is a value, not a table
            raise ValueError(f"override {key!r}: {'.'.join(parts[: depth + 1])} is a value, not a table of settings")
    node[parts[-1]] = value
    for old, new in RENAMED.items():  # a file that still says the old name: this value replaces that one
        if new == key and len(parts) == 2:
            node.pop(old.split(".")[1], None)


def dumps(cfg: Config) -> str:
    return json.dumps(cfg.to_dict(), indent=2)
