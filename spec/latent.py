"""The latent spec: one ordered, named definition of the generator's input, without torch.

InfoGAN (Chen et al., 2016, Sec. 4) splits G's input into incompressible noise ``z`` and a structured code ``c``.
This module is the single definition of every part: its fields and their validation, its JSON form, its place in
G's input and in Q's output, the ONNX output names that carry Q's reading of it, the bounds a request may ask for,
numpy sampling, and what the page's control for it looks like. Training extends the parts with torch sampling and
the information loss (``training/latent.py``); the service, the benchmarks, the scripts and the tests use them as
they are. Each part handles itself, so no code outside this module and its torch extension branches on a part's
kind.

Layouts (the ONNX files and the service follow them):
- G takes ``z`` (N, noise.dim) and ``c`` (N, spec.c_dim): the codes in spec order, a categorical code as K one-hot
  columns, a continuous code as one column;
- Q's raw output (N, spec.q_dim) concatenates per code: K logits for a categorical code, (mean, log-std) for a
  continuous code; the exported recognizer names them ``<code>.logits`` or ``<code>.mean`` / ``<code>.std``.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

# A request may set a continuous code (or uniform noise) to this many half-ranges around the prior's centre:
# [-3, 3] for a [-1, 1] prior. The paper (Fig. 2) shows +-2; beyond ~3 the generator's output is meaningless.
EXTRAPOLATION = 3.0
# The page's sliders span this many half-ranges (+-2 for [-1, 1], the paper's Fig. 2); the typed field may go to
# EXTRAPOLATION.
SLIDER_SPAN = 2.0
# Arrow keys move a slider by 1/SLIDER_STEPS of its span (~40 presses from end to end); PageUp/PageDown by 10x.
SLIDER_STEPS = 40
# A normal noise prior may be set to +-6 sigma.
NORMAL_BOUND = 6.0


class PortableRng:
    """The seeded sampler the page reproduces bit for bit (``frontend/static/sampler.js``): a seed gives the same z
    and codes in the browser and in the service. Duck-types the three ``np.random.Generator`` methods the parts'
    ``sample_np`` use, so ``spec.sample_np(PortableRng(seed), n)`` keeps the parts' fixed order (z row-major, then
    each code's n values in spec order).

    Stream: splitmix64 (Steele, Lea & Flood, 2014) over the seed taken mod 2**64; draw k (k = 1, 2, ...) is
    mix(seed + k * 0x9E3779B97F4A7C15), and its top 53 bits give u = bits * 2**-53 in [0, 1). Every later step is
    one IEEE float64 operation in a fixed order, which numpy and JavaScript both round the same way:
    - uniform(low, high): low + (high - low) * u, one draw per value (z is then rounded to float32 on both sides);
    - integers(low, high): low + floor(u * (high - low)), one draw per value;
    - standard_normal: Box-Muller sqrt(-2 ln(1 - u1)) * cos(2 pi u2), two draws per value. ln and cos are not
      correctly rounded everywhere, so a normal z may differ by one float64 ulp between runtimes; after rounding
      to float32 that changes a value with probability ~2**-29. The shipped models use uniform noise (exact)."""

    GAMMA = 0x9E3779B97F4A7C15

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SpecError(f"seed must be a non-negative integer, got {seed!r}")
        self.state = seed % 2**64
        self.count = 0  # draws used so far

    def _u(self, n: int) -> np.ndarray:
        """The next n draws as float64 in [0, 1)."""
        k = np.arange(self.count + 1, self.count + n + 1, dtype=np.uint64)
        self.count += n
        with np.errstate(over="ignore"):  # uint64 arithmetic wraps mod 2**64, as splitmix64 means it to
            x = np.uint64(self.state) + k * np.uint64(self.GAMMA)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
        return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53

    @staticmethod
    def _count(size: int | tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
        shape = (size,) if isinstance(size, int) else tuple(size)
        if any(d < 0 for d in shape):  # as numpy's Generator: a negative count would move the stream back
            raise ValueError(f"negative dimensions are not allowed, got size {size}")
        return math.prod(shape), shape

    def uniform(self, low: float, high: float, size: int | tuple[int, ...]) -> np.ndarray:
        n, shape = self._count(size)
        return (np.float64(low) + (np.float64(high) - np.float64(low)) * self._u(n)).reshape(shape)

    def integers(self, low: int, high: int, size: int | tuple[int, ...]) -> np.ndarray:
        n, shape = self._count(size)
        return (low + np.floor(self._u(n) * float(high - low)).astype(np.int64)).reshape(shape)

    def standard_normal(self, size: int | tuple[int, ...]) -> np.ndarray:
        n, shape = self._count(size)
        u = self._u(2 * n).reshape(n, 2)  # (u1, u2) per value, drawn in turn
        return (np.sqrt(-2.0 * np.log(1.0 - u[:, 0])) * np.cos(2.0 * math.pi * u[:, 1])).reshape(shape)


class SpecError(ValueError):
    """A spec or a request value that does not fit the spec; the message names the field."""


class UnknownCode(SpecError, KeyError):
    """A code name that the spec does not have (a KeyError too, for lookups)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise SpecError(f"{what} name must be an identifier-like string, got {value!r}")
    return value


# Human text on the page (a slider's caption, a category's button, the model's title): one line that fits a control
TEXT_MAX = 64  # characters


def display_text(value: Any, what: str, limit: int = TEXT_MAX) -> str:
    """A label or title -> itself, or SpecError: a string of 1..limit characters, not blank, with no control
    characters (a newline or a NUL would break the page's one-line captions and headings)."""
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string, got {value!r}")
    if not value.strip():
        raise SpecError(f"{what} must not be empty")
    if len(value) > limit:
        raise SpecError(f"{what} must be at most {limit} characters, got {len(value)}")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise SpecError(f"{what} must be one line without control characters, got {value!r}")
    return value


def sent_text(value: Any, limit: int = 64) -> str:
    """A client's string as an error message shows it: quoted and escaped (a lone surrogate such as "\\ud800"
    cannot be written as UTF-8 at all) and cut to ``limit`` characters (a 1 MB name is not echoed back)."""
    text = str(value)
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def _code_field(name: Any) -> str:
    # a code's name is an identifier (_name): any other key is named by its quoted, clipped text
    return (
        f"codes.{name}"
        if isinstance(name, str) and name.isidentifier() and len(name) <= 64
        else f"codes[{sent_text(name)}]"
    )


def _number(value: Any, field: str) -> float:
    """A request's JSON number -> float; booleans and strings are refused by field name."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{field}: expected a number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:  # an integer beyond float's range (JSON allows any number of digits)
        v = math.inf
    if not math.isfinite(v):
        raise SpecError(f"{field}: must be a finite number")
    return v


def _shown(value: Any) -> str:
    """A value as it was sent: 3.0000001 stays 3.0000001 (``:g`` would print 3)."""
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Noise:
    """Incompressible noise z: ``dim`` i.i.d. values from ``uniform`` [-1, 1] or a standard ``normal``."""

    dim: int = 62
    distribution: str = "uniform"
    name: str = "z"

    DISTRIBUTIONS: ClassVar[tuple[str, ...]] = ("uniform", "normal")

    def __post_init__(self) -> None:
        _name(self.name, "noise")
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise SpecError(f"noise dim must be a positive integer, got {self.dim!r}")
        if self.distribution not in self.DISTRIBUTIONS:
            raise SpecError(f"unknown noise distribution {self.distribution!r}; expected one of {self.DISTRIBUTIONS}")

    @property
    def bound(self) -> float:
        """Largest |z| a request may send: EXTRAPOLATION for uniform noise, NORMAL_BOUND sigmas for normal."""
        return EXTRAPOLATION if self.distribution == "uniform" else NORMAL_BOUND

    def sample_np(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, dim) float32 from the prior."""
        if self.distribution == "uniform":
            return rng.uniform(-1.0, 1.0, (n, self.dim)).astype(np.float32)
        return rng.standard_normal((n, self.dim)).astype(np.float32)

    def centre_np(self, n: int) -> np.ndarray:
        return np.zeros((n, self.dim), np.float32)

    def check(self, z: Sequence[Sequence[float]], n: int) -> np.ndarray:
        """User-given noise (n rows of dim values) -> float32 (n, dim), each value finite and within +-bound."""
        if len(z) != n:
            raise SpecError(f"z: expected {n} rows (one per image), got {len(z)}")
        for i, row in enumerate(z):
            if len(row) != self.dim:
                raise SpecError(f"z[{i}]: expected {self.dim} values (the noise dim), got {len(row)}")
            if not all(type(v) is float for v in row):  # else as the codes are: bools and "0.5" refused by name
                for j, v in enumerate(row):
                    _number(v, f"z[{i}][{j}]")
        try:
            arr = np.asarray(z, dtype=np.float64).reshape(n, self.dim)
        except OverflowError:  # an integer beyond float's range
            raise SpecError("z: every value must be finite") from None
        if not np.isfinite(arr).all():
            raise SpecError("z: every value must be finite")
        bad = np.argwhere(np.abs(arr) > self.bound)
        if len(bad):
            i, j = bad[0]
            raise SpecError(
                f"z: values must lie in [-{self.bound:g}, {self.bound:g}], got z[{i}][{j}] = {float(arr[i, j])!r}"
            )
        return arr.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "distribution": self.distribution}


@dataclass(frozen=True)
class Categorical:
    """A K-way categorical code with a uniform prior; one-hot in G's input, K logits in Q's output."""

    name: str
    categories: int
    labels: tuple[str, ...] | None = None

    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        _name(self.name, "code")
        if isinstance(self.categories, bool) or not isinstance(self.categories, int) or self.categories < 2:
            raise SpecError(f"code {self.name!r}: categories must be an integer >= 2, got {self.categories!r}")
        if isinstance(self.labels, (str, bytes)) or (
            self.labels is not None and not isinstance(self.labels, (list, tuple))
        ):  # "abc" would read as three labels a, b, c
            raise SpecError(f"code {self.name!r}: labels must be a list of strings, got {self.labels!r}")
        if self.labels is not None:
            # numbers read from TOML (labels = [0, 1, ...]) become their text; anything else must be a string
            labels = tuple(str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in self.labels)
            object.__setattr__(self, "labels", labels)
            if len(self.labels) != self.categories:
                raise SpecError(f"code {self.name!r}: {len(self.labels)} labels for {self.categories} categories")
            for k, text in enumerate(self.labels):
                display_text(text, f"code {self.name!r}: label of category {k}")
            twice = sorted({t for t in self.labels if self.labels.count(t) > 1})
            if twice:
                # the page picks a category by its button: two buttons with one caption cannot be told apart
                raise SpecError(f"code {self.name!r}: category labels must differ, repeated: {twice}")

    # ---- layout ----
    @property
    def c_dim(self) -> int:
        return self.categories

    @property
    def q_dim(self) -> int:
        return self.categories

    def output_names(self) -> list[str]:
        """The recognizer's ONNX outputs for this code: the K logits, (N, K)."""
        return [f"{self.name}.logits"]

    def entropy(self) -> float:
        """H(c) in nats: the most L_I can reach for this code (ln K)."""
        return math.log(self.categories)

    @property
    def display_labels(self) -> tuple[str, ...]:
        return self.labels if self.labels is not None else tuple(str(i) for i in range(self.categories))

    # ---- values ----
    def default(self) -> int:
        return 0

    def sample_np(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.categories, n).astype(np.float64)

    def encode_np(self, values: np.ndarray) -> np.ndarray:
        """(N,) category indices -> (N, K) float32 one-hot."""
        return np.eye(self.categories, dtype=np.float32)[np.asarray(values).astype(np.int64)]

    def check(self, value: Any, field: str) -> int:
        """A request's value -> category index, or SpecError naming the field and what was sent."""
        v = _number(value, field)
        if not v.is_integer():
            raise SpecError(f"{field}: categorical code {self.name!r} takes an integer category index, got {value!r}")
        if not 0 <= v < self.categories:
            raise SpecError(f"{field}: category index must be in 0..{self.categories - 1}, got {_shown(value)}")
        return int(v)

    def sweep(self, low: Any, high: Any, cols: int) -> list[int]:
        """A traversal's column values: every category (low, high and cols do not apply)."""
        return list(range(self.categories))

    def fig2_values(self, span: float = SLIDER_SPAN, cols: int = 7) -> list[float]:
        """Values of a Fig. 2 panel's columns: every category."""
        return [float(k) for k in range(self.categories)]

    def output(self, value: float) -> int:
        """A value as the API returns it."""
        return int(value)

    def read(self, outputs: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        """Q's outputs for image i -> {"type", "probabilities", "value"} (softmax of the logits, float64)."""
        logits = outputs[f"{self.name}.logits"][i].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {"type": self.kind, "probabilities": p.tolist(), "value": int(p.argmax())}

    def control(self) -> dict[str, Any]:
        """What the page's control for this code needs: one button per category, labelled."""
        return {"widget": "choice", "choices": list(self.display_labels), "default": self.default()}

    def describe(self) -> str:
        return f"{self.categories} categories"

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind, "categories": self.categories}
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d

    def with_text(self, *, labels: Sequence[str] | None = None, label: str | None = None) -> Categorical:
        """A copy with category labels (a categorical code has no single label)."""
        if label is not None:
            raise SpecError(f"code {self.name!r} is categorical: it takes one label per category, not one label")
        return replace(self, labels=tuple(labels) if labels is not None else self.labels)


@dataclass(frozen=True)
class Continuous:
    """A continuous code with a uniform [low, high] prior; Q models it as a factored Gaussian (paper, Sec. 5)."""

    name: str
    low: float = -1.0
    high: float = 1.0
    label: str | None = None
    # Fixed sigma of Q's Gaussian (openai/InfoGAN's MNIST codes use fix_std=True, sigma = 1, so the information term is
    # 0.5 (c - mu)^2); None = a learned log-std with a floor.
    std: float | None = None

    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        _name(self.name, "code")
        for what in ("low", "high"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SpecError(f"code {self.name!r}: {what} must be a number, got {v!r}")
            object.__setattr__(self, what, float(v))
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise SpecError(f"code {self.name!r}: need finite low < high, got [{self.low}, {self.high}]")
        if self.std is not None and not (
            isinstance(self.std, (int, float))
            and not isinstance(self.std, bool)
            and math.isfinite(self.std)
            and self.std > 0
        ):
            raise SpecError(f"code {self.name!r}: std must be a positive number or absent, got {self.std!r}")
        if self.label is not None:
            display_text(self.label, f"code {self.name!r}: label")

    # ---- layout ----
    @property
    def c_dim(self) -> int:
        return 1

    @property
    def q_dim(self) -> int:
        return 2  # (mean, log-std)

    def output_names(self) -> list[str]:
        """The recognizer's ONNX outputs for this code: Q's Gaussian mean and std, each (N,)."""
        return [f"{self.name}.mean", f"{self.name}.std"]

    def entropy(self) -> float:
        """Differential entropy of the uniform prior, ln(high - low) nats (ln 2 ~ 0.69 for [-1, 1])."""
        return math.log(self.high - self.low)

    @property
    def centre(self) -> float:
        return (self.low + self.high) / 2

    def span(self, half_ranges: float) -> tuple[float, float]:
        """[centre - k * half-range, centre + k * half-range]."""
        half = (self.high - self.low) / 2
        return self.centre - half_ranges * half, self.centre + half_ranges * half

    @property
    def bounds(self) -> tuple[float, float]:
        """What a request may set: EXTRAPOLATION half-ranges around the centre ([-3, 3] for [-1, 1])."""
        return self.span(EXTRAPOLATION)

    # ---- values ----
    def default(self) -> float:
        return self.centre

    def sample_np(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def encode_np(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float32).reshape(-1, 1)

    def check(self, value: Any, field: str) -> float:
        v = _number(value, field)
        lo, hi = self.bounds
        if not lo <= v <= hi:
            raise SpecError(
                f"{field}: continuous code {self.name!r} must lie in [{lo:g}, {hi:g}] "
                f"({EXTRAPOLATION:g}x the prior's half-range), got {_shown(value)}"
            )
        return v

    def sweep(self, low: Any, high: Any, cols: int) -> list[float]:
        """A traversal's column values: cols evenly spaced from low to high (each checked like a request value; None:
        the end of the page's slider, SLIDER_SPAN half-ranges from the prior's centre, whatever the prior)."""
        default_lo, default_hi = self.span(SLIDER_SPAN)
        lo = default_lo if low is None else self.check(low, "low")
        hi = default_hi if high is None else self.check(high, "high")
        return np.linspace(lo, hi, cols).tolist()

    def fig2_values(self, span: float = SLIDER_SPAN, cols: int = 7) -> list[float]:
        """Values of a Fig. 2 panel's columns: span half-ranges either side of the centre (-2 .. 2 for [-1, 1])."""
        lo, hi = self.span(span)
        return np.linspace(lo, hi, cols).tolist()

    def output(self, value: float) -> float:
        return float(value)

    def read(self, outputs: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        """Q's outputs for image i -> {"type", "mean", "std", "value"}; value is the mean clipped to the bounds."""
        mean = float(outputs[f"{self.name}.mean"][i])
        lo, hi = self.bounds
        return {
            "type": self.kind,
            "mean": mean,
            "std": float(outputs[f"{self.name}.std"][i]),
            "value": min(max(mean, lo), hi),
        }

    def control(self) -> dict[str, Any]:
        """What the page's control needs: a slider over SLIDER_SPAN half-ranges, a typed field up to the bounds."""
        lo, hi = self.span(SLIDER_SPAN)
        hard_lo, hard_hi = self.bounds
        return {
            "widget": "range",
            "min": lo,
            "max": hi,
            "hard_min": hard_lo,
            "hard_max": hard_hi,
            "prior": [self.low, self.high],
            "step": (hi - lo) / SLIDER_STEPS,
            "default": self.default(),
        }

    def describe(self) -> str:
        return f"{self.label + ' · ' if self.label else ''}prior [{self.low:g}, {self.high:g}]"

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind, "low": self.low, "high": self.high}
        if self.label is not None:
            d["label"] = self.label
        if self.std is not None:
            d["std"] = self.std
        return d

    def with_text(self, *, labels: Sequence[str] | None = None, label: str | None = None) -> Continuous:
        """A copy with a label naming what the code controls (a continuous code has no category labels)."""
        if labels is not None:
            raise SpecError(f"code {self.name!r} is continuous: it takes one label, not category labels")
        return replace(self, label=label if label is not None else self.label)


Code = Categorical | Continuous


@dataclass(frozen=True)
class LatentSpec:
    """Noise plus an ordered tuple of named codes: the single source of every latent size, range and name.

    Subclasses (training's torch extension) swap in their own part classes through ``NOISE`` and ``CODE_TYPES``,
    so ``from_dict`` builds the right parts for whoever asks."""

    noise: Noise = field(default_factory=Noise)
    codes: tuple[Code, ...] = ()

    NOISE: ClassVar[type] = Noise
    CODE_TYPES: ClassVar[dict[str, type]] = {"categorical": Categorical, "continuous": Continuous}

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", tuple(self.codes))
        names = [self.noise.name] + [c.name for c in self.codes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(f"latent part names must be unique, repeated: {dupes}")

    # ---- sizes and layouts ----
    @property
    def c_dim(self) -> int:
        return sum(code.c_dim for code in self.codes)

    @property
    def q_dim(self) -> int:
        return sum(code.q_dim for code in self.codes)

    @property
    def input_dim(self) -> int:
        """Size of G's input: noise dim + code vector dim (74 for the paper's MNIST setting)."""
        return self.noise.dim + self.c_dim

    def _slices(self, attr: str) -> list[tuple[Code, slice]]:
        out, start = [], 0
        for code in self.codes:
            width = getattr(code, attr)
            out.append((code, slice(start, start + width)))
            start += width
        return out

    def c_slices(self) -> list[tuple[Code, slice]]:
        """Each code with its columns in G's code input c."""
        return self._slices("c_dim")

    def q_slices(self) -> list[tuple[Code, slice]]:
        """Each code with its columns in Q's raw output."""
        return self._slices("q_dim")

    def output_names(self) -> list[str]:
        """The recognizer's ONNX output names in order (Q's readings per code, then D's logit)."""
        return [name for code in self.codes for name in code.output_names()] + ["d_logit"]

    def code(self, name: str, field: str = "code") -> Code:
        for code in self.codes:
            if code.name == name:
                return code
        raise UnknownCode(
            f"{field}: unknown code {sent_text(name)}; this spec's codes are {[c.name for c in self.codes]}"
        )

    def categorical_codes(self) -> list[Categorical]:
        """The codes that partition images into classes (scored by accuracy, NMI and the label-free score)."""
        return [c for c in self.codes if isinstance(c, Categorical)]

    def continuous_codes(self) -> list[Continuous]:
        return [c for c in self.codes if isinstance(c, Continuous)]

    def categorical_entropy(self) -> float:
        return sum(c.entropy() for c in self.categorical_codes())

    # ---- numpy values (the service, benchmarks, scripts) ----
    def sample_np(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Noise (n, dim) and every code's values (n,), always drawn in this order: with one seed, fixing a code
        never shifts the random stream of the others (a slider moves one factor)."""
        z = self.noise.sample_np(rng, n)
        return z, {c.name: c.sample_np(rng, n) for c in self.codes}

    def sample_seeded(self, seed: int, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """sample_np with the portable sampler: what a seeded request draws, in the service and in the page."""
        return self.sample_np(PortableRng(seed), n)

    def encode_np(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Per-code values (N,) -> c (N, c_dim) float32 in spec order."""
        missing = [c.name for c in self.codes if c.name not in values]
        if missing:
            raise SpecError(f"missing values for codes {missing}")
        if not self.codes:
            n = len(next(iter(values.values()))) if values else 0
            return np.zeros((n, 0), np.float32)
        return np.concatenate([c.encode_np(values[c.name]) for c in self.codes], axis=1)

    def defaults_np(self, n: int) -> dict[str, np.ndarray]:
        """Every code at its default (first category, centre of the prior), n rows."""
        return {c.name: np.full(n, c.default(), np.float64) for c in self.codes}

    def check_codes(self, given: dict[str, Any]) -> dict[str, float]:
        """A request's {code: value} -> checked values; SpecError names the field and what was sent."""
        return {name: self.code(name, _code_field(name)).check(v, _code_field(name)) for name, v in given.items()}

    def rows(self, values: dict[str, np.ndarray]) -> list[dict[str, int | float]]:
        """Per-code value arrays -> one {code: value} per image, as the API returns them."""
        n = len(next(iter(values.values()))) if values else 0
        return [{c.name: c.output(values[c.name][i]) for c in self.codes} for i in range(n)]

    def read(self, outputs: dict[str, np.ndarray], i: int = 0) -> dict[str, dict[str, Any]]:
        """Q's named outputs -> each code's reading for image i."""
        return {c.name: c.read(outputs, i) for c in self.codes}

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.to_dict(), "codes": [c.to_dict() for c in self.codes]}

    @classmethod
    def from_dict(cls, d: Any) -> LatentSpec:
        """The JSON form (config, checkpoint, manifest, ONNX metadata) -> a validated spec; SpecError otherwise."""
        if not isinstance(d, dict) or "noise" not in d or "codes" not in d:
            raise SpecError("latent spec must be an object with 'noise' and 'codes'")
        extra = sorted(set(d) - {"noise", "codes"})
        if extra:  # a misspelt part (--set latent.code=...) was ignored without a word
            raise SpecError(f"latent spec: unknown keys {extra}; expected 'noise' and 'codes'")
        if not isinstance(d["noise"], dict) or not isinstance(d["codes"], list):
            raise SpecError("latent spec: 'noise' must be an object and 'codes' a list")
        try:
            noise = cls.NOISE(**d["noise"])
        except TypeError as exc:
            raise SpecError(f"noise: {exc}") from None
        codes = []
        for i, cd in enumerate(d["codes"]):
            if not isinstance(cd, dict):
                raise SpecError(f"codes[{i}]: expected an object, got {cd!r}")
            cd = dict(cd)
            kind = cd.pop("type", None)
            if kind not in cls.CODE_TYPES:
                raise SpecError(f"codes[{i}]: unknown code type {kind!r}; expected one of {sorted(cls.CODE_TYPES)}")
            try:
                codes.append(cls.CODE_TYPES[kind](**cd))
            except TypeError as exc:  # unknown or missing fields
                raise SpecError(f"codes[{i}] ({cd.get('name')!r}): {exc}") from None
        return cls(noise=noise, codes=tuple(codes))

    def with_text(self, name: str, *, labels: Sequence[str] | None = None, label: str | None = None) -> LatentSpec:
        """A copy with human text on one code: category labels, or the label of what a continuous code does."""
        self.code(name)
        codes = tuple(c.with_text(labels=labels, label=label) if c.name == name else c for c in self.codes)
        return type(self)(self.noise, codes)
