"""The latent spec from a manifest, in numpy: prior sampling, validation and the generator's input layout.

Mirrors training/latent.py without torch. Each part handles itself (``sample``, ``check``, ``encode``, ``info``,
``read``) so the service never branches on code kinds. Layout: ``c`` concatenates the codes in spec order, a
categorical code as K one-hot columns, a continuous code as one column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Continuous codes (and uniform noise) may extrapolate to this many half-ranges around the prior's centre:
# [-3, 3] for a [-1, 1] prior. The paper (Fig. 2) shows +-2; beyond ~3 the generator's output is meaningless.
EXTRAPOLATION = 3.0
# A normal noise prior gets +-6 sigma.
NORMAL_BOUND = 6.0


class SpecError(ValueError):
    """A request value that does not fit the spec; the message names the field."""


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{field}: expected a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise SpecError(f"{field}: must be a finite number")
    return v


@dataclass(frozen=True)
class Noise:
    dim: int
    distribution: str
    name: str = "z"

    @property
    def bound(self) -> float:
        return EXTRAPOLATION if self.distribution == "uniform" else NORMAL_BOUND

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.distribution == "uniform":
            return rng.uniform(-1.0, 1.0, (n, self.dim)).astype(np.float32)
        return rng.standard_normal((n, self.dim)).astype(np.float32)

    def check(self, z: list[list[float]], n: int) -> np.ndarray:
        """User-given noise (n, dim) -> float32, each value finite and within +-bound."""
        if len(z) != n:
            raise SpecError(f"z: expected {n} rows (one per image), got {len(z)}")
        for i, row in enumerate(z):
            if len(row) != self.dim:
                raise SpecError(f"z[{i}]: expected {self.dim} values (the noise dim), got {len(row)}")
        arr = np.asarray(z, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise SpecError("z: every value must be finite")
        if (np.abs(arr) > self.bound).any():
            raise SpecError(f"z: values must lie in [-{self.bound:g}, {self.bound:g}]")
        return arr.astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"dim": self.dim, "distribution": self.distribution}


@dataclass(frozen=True)
class Categorical:
    name: str
    categories: int
    labels: tuple[str, ...]

    width = property(lambda self: self.categories)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Categorical:
        k = int(d["categories"])
        labels = tuple(str(x) for x in d.get("labels") or range(k))
        if len(labels) != k:
            raise ValueError(f"code {d['name']!r}: {len(labels)} labels for {k} categories")
        return cls(d["name"], k, labels)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(0, self.categories, n).astype(np.float64)

    def check(self, value: Any, field: str) -> int:
        v = _number(value, field)
        if not v.is_integer():
            raise SpecError(f"{field}: categorical code {self.name!r} takes an integer category index, got {value!r}")
        if not 0 <= v < self.categories:
            raise SpecError(f"{field}: category index must be in 0..{self.categories - 1}, got {int(v)}")
        return int(v)

    def sweep(self, low: float, high: float, cols: int) -> list[int]:
        return list(range(self.categories))  # a categorical traversal shows every category

    def encode(self, values: np.ndarray) -> np.ndarray:
        """(N,) indices -> (N, K) one-hot."""
        return np.eye(self.categories, dtype=np.float32)[values.astype(np.int64)]

    def output(self, value: float) -> int:
        return int(value)

    def read(self, outputs: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        logits = outputs[f"{self.name}.logits"][i].astype(np.float64)
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {"type": "categorical", "probabilities": p.tolist(), "value": int(p.argmax())}

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "type": "categorical", "categories": self.categories, "labels": list(self.labels)}


@dataclass(frozen=True)
class Continuous:
    name: str
    low: float
    high: float
    label: str | None = None

    width = 1

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Continuous:
        return cls(d["name"], float(d.get("low", -1.0)), float(d.get("high", 1.0)), d.get("label"))

    @property
    def bounds(self) -> tuple[float, float]:
        centre, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        return centre - EXTRAPOLATION * half, centre + EXTRAPOLATION * half

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    def check(self, value: Any, field: str) -> float:
        v = _number(value, field)
        lo, hi = self.bounds
        if not lo <= v <= hi:
            raise SpecError(f"{field}: continuous code {self.name!r} must lie in [{lo:g}, {hi:g}] "
                            f"({EXTRAPOLATION:g}x the prior's half-range), got {v:g}")
        return v

    def sweep(self, low: float, high: float, cols: int) -> list[float]:
        lo = self.check(low, "low")
        hi = self.check(high, "high")
        return np.linspace(lo, hi, cols).tolist()

    def encode(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32).reshape(-1, 1)

    def output(self, value: float) -> float:
        return float(value)

    def read(self, outputs: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        mean = float(outputs[f"{self.name}.mean"][i])
        lo, hi = self.bounds
        return {"type": "continuous", "mean": mean, "std": float(outputs[f"{self.name}.std"][i]),
                "value": min(max(mean, lo), hi)}

    def info(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": "continuous", "low": self.low, "high": self.high}
        if self.label is not None:
            d["label"] = self.label
        return d


CODE_TYPES = {"categorical": Categorical, "continuous": Continuous}


@dataclass(frozen=True)
class LatentSpec:
    noise: Noise
    codes: tuple[Categorical | Continuous, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentSpec:
        n = d["noise"]
        codes = []
        for c in d["codes"]:
            if c.get("type") not in CODE_TYPES:
                raise ValueError(f"code {c.get('name')!r}: unknown type {c.get('type')!r}")
            codes.append(CODE_TYPES[c["type"]].from_dict(c))
        return cls(Noise(int(n["dim"]), n.get("distribution", "uniform"), n.get("name", "z")), tuple(codes))

    def code(self, name: str, field: str = "code") -> Categorical | Continuous:
        for c in self.codes:
            if c.name == name:
                return c
        raise SpecError(f"{field}: unknown code {name!r}; this model's codes are {[c.name for c in self.codes]}")

    def check_codes(self, given: dict[str, Any]) -> dict[str, float]:
        return {name: self.code(name, f"codes.{name}").check(v, f"codes.{name}") for name, v in given.items()}

    def sample(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Noise (n, dim) and every code's values (n,), always drawn in this order: with one seed, a given code
        never shifts the random stream of the others (a slider moves one factor)."""
        z = self.noise.sample(rng, n)
        return z, {c.name: c.sample(rng, n) for c in self.codes}

    def encode(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Per-code values -> c (N, sum of code widths) in spec order."""
        return np.concatenate([c.encode(values[c.name]) for c in self.codes], axis=1)

    def rows(self, values: dict[str, np.ndarray]) -> list[dict[str, int | float]]:
        n = len(next(iter(values.values()))) if values else 0
        return [{c.name: c.output(values[c.name][i]) for c in self.codes} for i in range(n)]
