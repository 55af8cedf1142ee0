"""The latent spec: one ordered, named definition of the generator's input.

InfoGAN (Chen et al., 2016, Sec. 4) splits the input into incompressible noise ``z`` and a structured code
``c``. Each part here handles itself -- its sizes, prior sampling, information loss and JSON form -- so the
networks, the loss, the export, the API and the page all derive from one ``LatentSpec`` and nobody branches
on kinds (the design of openai/InfoGAN's ``Categorical``/``Uniform``, plus serialisation it lacked).

Layout conventions (used by the ONNX export and the service too):
- the generator takes ``z`` (N, noise.dim) and ``c`` (N, spec.c_dim), where ``c`` concatenates the codes in
  spec order; a categorical code occupies K one-hot columns, a continuous code one column;
- Q's raw output (N, spec.q_dim) concatenates per code: K logits for a categorical code, (mean, log-std) for a
  continuous code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

# Lower bound of Q's predicted log-std for continuous codes (std >= e^-2.5 ~ 0.08). Without a floor the Gaussian
# likelihood can collapse the std and blow up L_I's gradient early in training.
LOG_STD_MIN = -2.5
LOG_STD_MAX = 2.0


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{what} name must be an identifier-like string, got {name!r}")
    return name


@dataclass(frozen=True)
class Noise:
    """Incompressible noise z: ``dim`` i.i.d. values from ``uniform`` [-1, 1] or a standard ``normal``."""

    dim: int = 62
    distribution: str = "uniform"
    name: str = "z"

    DISTRIBUTIONS: ClassVar[tuple[str, ...]] = ("uniform", "normal")

    def __post_init__(self) -> None:
        _check_name(self.name, "noise")
        if not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"noise dim must be a positive integer, got {self.dim!r}")
        if self.distribution not in self.DISTRIBUTIONS:
            raise ValueError(f"unknown noise distribution {self.distribution!r}; expected one of {self.DISTRIBUTIONS}")

    def sample(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> torch.Tensor:
        if self.distribution == "uniform":
            return torch.rand(n, self.dim, generator=generator, device=device) * 2 - 1
        return torch.randn(n, self.dim, generator=generator, device=device)

    def centre(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.dim)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "distribution": self.distribution}


@dataclass(frozen=True)
class Categorical:
    """A K-way categorical code with a uniform prior; one-hot in G's input, softmax logits in Q's output."""

    name: str
    categories: int
    labels: tuple[str, ...] | None = None
    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        _check_name(self.name, "code")
        if not isinstance(self.categories, int) or self.categories < 2:
            raise ValueError(f"code {self.name!r}: categories must be an integer >= 2, got {self.categories!r}")
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
            if len(self.labels) != self.categories:
                raise ValueError(f"code {self.name!r}: {len(self.labels)} labels for {self.categories} categories")

    @property
    def c_dim(self) -> int:
        return self.categories

    @property
    def q_dim(self) -> int:
        return self.categories

    def entropy(self) -> float:
        """H(c) in nats: the most L_I can reach for this code (ln K)."""
        return math.log(self.categories)

    def sample_values(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> torch.Tensor:
        return torch.randint(self.categories, (n,), generator=generator, device=device)

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        """Integer indices (N,) -> one-hot (N, K)."""
        return F.one_hot(values.long(), self.categories).float()

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return c.argmax(dim=1)

    def info_loss(self, c: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """-E[log Q(c|x)] per sample (N,): cross-entropy of Q's logits against the sampled one-hot code."""
        return F.cross_entropy(q, c.argmax(dim=1), reduction="none")

    def predict(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": q}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind, "categories": self.categories}
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d


@dataclass(frozen=True)
class Continuous:
    """A continuous code with a uniform [low, high] prior; Q models it as a factored Gaussian (paper, Sec. 5)."""

    name: str
    low: float = -1.0
    high: float = 1.0
    label: str | None = None
    # Fixed sigma of Q's Gaussian (the reference implementation's MNIST codes use fix_std=True, sigma = 1, so the
    # information term is 0.5 (c - mu)^2); None = a learned log-std with a floor.
    std: float | None = None
    kind: ClassVar[str] = "continuous"

    def __post_init__(self) -> None:
        _check_name(self.name, "code")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"code {self.name!r}: need finite low < high, got [{self.low}, {self.high}]")
        if self.std is not None and not (math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"code {self.name!r}: std must be a positive number or absent, got {self.std}")

    @property
    def c_dim(self) -> int:
        return 1

    @property
    def q_dim(self) -> int:
        return 2  # (mean, log-std)

    def entropy(self) -> float:
        """Differential entropy of the uniform prior, ln(high - low) nats (ln 2 ~ 0.69 for [-1, 1])."""
        return math.log(self.high - self.low)

    def sample_values(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> torch.Tensor:
        u = torch.rand(n, generator=generator, device=device)
        return self.low + (self.high - self.low) * u

    def encode(self, values: torch.Tensor) -> torch.Tensor:
        return values.float().reshape(-1, 1)

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return c[:, 0]

    def _mean_logstd(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.std is not None:  # Q's second output is unused; it stays in q so the layout never changes
            return q[:, 0], torch.full_like(q[:, 0], math.log(self.std))
        return q[:, 0], q[:, 1].clamp(LOG_STD_MIN, LOG_STD_MAX)

    def info_loss(self, c: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood -log N(c; mu, sigma) per sample (N,), in nats."""
        mean, log_std = self._mean_logstd(q)
        return 0.5 * ((c[:, 0] - mean) / log_std.exp()) ** 2 + log_std + 0.5 * math.log(2 * math.pi)

    def predict(self, q: torch.Tensor) -> dict[str, torch.Tensor]:
        mean, log_std = self._mean_logstd(q)
        return {"mean": mean, "std": log_std.exp()}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.kind, "low": self.low, "high": self.high}
        if self.label is not None:
            d["label"] = self.label
        if self.std is not None:
            d["std"] = self.std
        return d


Code = Categorical | Continuous
_CODE_TYPES: dict[str, type] = {"categorical": Categorical, "continuous": Continuous}


@dataclass(frozen=True)
class LatentSpec:
    """Noise plus an ordered tuple of named codes. The single source of every latent size and range."""

    noise: Noise = field(default_factory=Noise)
    codes: tuple[Code, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "codes", tuple(self.codes))
        names = [self.noise.name] + [c.name for c in self.codes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"latent part names must be unique, repeated: {dupes}")

    # ---- sizes -------------------------------------------------------------------------------------------
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

    def code(self, name: str) -> Code:
        for code in self.codes:
            if code.name == name:
                return code
        raise KeyError(f"unknown code {name!r}; this spec has {[c.name for c in self.codes]}")

    def _slices(self, attr: str) -> list[tuple[Code, slice]]:
        out, start = [], 0
        for code in self.codes:
            width = getattr(code, attr)
            out.append((code, slice(start, start + width)))
            start += width
        return out

    def c_slices(self) -> list[tuple[Code, slice]]:
        return self._slices("c_dim")

    def q_slices(self) -> list[tuple[Code, slice]]:
        return self._slices("q_dim")

    # ---- sampling and coding ------------------------------------------------------------------------------
    def sample_values(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> dict[str, torch.Tensor]:
        return {code.name: code.sample_values(n, generator, device) for code in self.codes}

    def encode(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: values (N,)} -> code vector c (N, c_dim) in spec order."""
        missing = [c.name for c in self.codes if c.name not in values]
        if missing:
            raise KeyError(f"missing values for codes {missing}")
        if not self.codes:
            n = len(next(iter(values.values()))) if values else 0
            return torch.zeros(n, 0)
        return torch.cat([code.encode(values[code.name]) for code in self.codes], dim=1)

    def decode(self, c: torch.Tensor) -> dict[str, torch.Tensor]:
        return {code.name: code.decode(c[:, s]) for code, s in self.c_slices()}

    def sample(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (z (N, noise.dim), c (N, c_dim)) from the prior."""
        z = self.noise.sample(n, generator, device)
        c = self.encode(self.sample_values(n, generator, device)).to(device) if self.codes else torch.zeros(n, 0, device=device)
        return z, c

    # ---- information loss ---------------------------------------------------------------------------------
    def info_losses(self, c: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-code mean -log Q(c_i|x) in nats; L_I for a code is H(c_i) minus this (paper, Eq. 4-5)."""
        qs = dict((code.name, q[:, s]) for code, s in self.q_slices())
        return {code.name: code.info_loss(c[:, s], qs[code.name]).mean() for code, s in self.c_slices()}

    def predict(self, q: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        return {code.name: code.predict(q[:, s]) for code, s in self.q_slices()}

    def categorical_entropy(self) -> float:
        return sum(c.entropy() for c in self.codes if c.kind == "categorical")

    # ---- serialisation ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.to_dict(), "codes": [c.to_dict() for c in self.codes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LatentSpec":
        if not isinstance(d, dict) or "noise" not in d or "codes" not in d:
            raise ValueError("latent spec must be an object with 'noise' and 'codes'")
        noise = Noise(**d["noise"])
        codes = []
        for i, cd in enumerate(d["codes"]):
            cd = dict(cd)
            kind = cd.pop("type", None)
            if kind not in _CODE_TYPES:
                raise ValueError(f"codes[{i}]: unknown code type {kind!r}; expected one of {sorted(_CODE_TYPES)}")
            codes.append(_CODE_TYPES[kind](**cd))
        return cls(noise=noise, codes=tuple(codes))

    def with_labels(self, name: str, labels: list[str] | None = None, label: str | None = None) -> "LatentSpec":
        """A copy with human labels on one code (categories' labels or a continuous code's label)."""
        codes = []
        for c in self.codes:
            if c.name == name:
                d = c.to_dict()
                d.pop("type")
                if labels is not None:
                    d["labels"] = labels
                if label is not None:
                    d["label"] = label
                c = type(c)(**d)
            codes.append(c)
        return LatentSpec(self.noise, tuple(codes))


def mnist_spec() -> LatentSpec:
    """The paper's MNIST setting: 62-d uniform noise, one 10-way code, two continuous codes in [-1, 1]."""
    return LatentSpec(Noise(62, "uniform"), (Categorical("digit", 10), Continuous("c1"), Continuous("c2")))
