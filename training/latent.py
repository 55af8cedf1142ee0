"""The latent spec's torch extension: prior sampling in torch and the information loss, per part.

The parts themselves -- fields, validation, JSON form, layouts, request bounds, numpy sampling -- are defined once
in ``spec/latent.py``; these subclasses add what training needs (the design of openai/InfoGAN's
``Categorical``/``Uniform``), so the networks, the loss, the loop and the export never branch on a part's kind.
``LatentSpec.from_dict`` here builds these subclasses.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from spec import latent as base
from spec.latent import SpecError, UnknownCode  # noqa: F401 - re-exported for training's callers

# Bounds of Q's predicted log-std for continuous codes (std >= e^-2.5 ~ 0.08). Without a floor the Gaussian
# likelihood can collapse the std and blow up L_I's gradient early in training.
LOG_STD_MIN = -2.5
LOG_STD_MAX = 2.0


class Noise(base.Noise):
    def sample(self, n: int, generator: torch.Generator | None = None, device: Any = "cpu") -> torch.Tensor:
        """(n, dim) from the prior, drawn with ``generator`` (a checkpoint stores it, so resumes draw the same)."""
        if self.distribution == "uniform":
            return torch.rand(n, self.dim, generator=generator, device=device) * 2 - 1
        return torch.randn(n, self.dim, generator=generator, device=device)

    def centre(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.dim)


class Categorical(base.Categorical):
    # The loss.* setting weighting this code's information term (the paper's lambda for discrete codes, 1).
    lambda_setting: ClassVar[str] = "lambda_categorical"
    # Recovered from a nuisance-transformed copy of G's image when loss.invariance is set: a category stands for a
    # class, which rotation, shear, scale and shift must not change (training/augment.py says why).
    nuisance_invariant: ClassVar[bool] = True

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
        """Q's raw columns (N, K) -> {"logits"}, the readings the recognizer exports (``<name>.logits``)."""
        return {"logits": q}

    def point_estimate(self, q: torch.Tensor) -> torch.Tensor:
        """Q's raw columns (N, K) -> (N,) float: the most likely category, this code's value in a representation
        for the disentanglement metrics."""
        return q.argmax(dim=1).float()

    def permute(self, q: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Q's raw columns reordered so exported index j reads checkpoint category order[j]."""
        return q[:, order]


class Continuous(base.Continuous):
    lambda_setting: ClassVar[str] = "lambda_continuous"  # the paper's smaller lambda for continuous codes (Sec. 6)
    # Read from the untransformed image: continuous codes should capture style (slant, width), which the transforms
    # change.
    nuisance_invariant: ClassVar[bool] = False

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
        """Q's raw columns (N, 2) -> {"mean", "std"} (N,) each, exported as ``<name>.mean`` / ``<name>.std``."""
        mean, log_std = self._mean_logstd(q)
        return {"mean": mean, "std": log_std.exp()}

    def point_estimate(self, q: torch.Tensor) -> torch.Tensor:
        """Q's raw columns (N, 2) -> (N,): the posterior mean (InfoGAN-CR's representation for the metrics)."""
        return self._mean_logstd(q)[0]

    def permute(self, q: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        return q


Code = Categorical | Continuous


class LatentSpec(base.LatentSpec):
    """The spec with torch parts: ``sample``, ``encode``, ``decode``, ``info_losses`` and ``predict`` in torch."""

    NOISE = Noise
    CODE_TYPES = {"categorical": Categorical, "continuous": Continuous}

    def __post_init__(self) -> None:
        super().__post_init__()
        torch_parts = isinstance(self.noise, Noise) and all(
            isinstance(c, (Categorical, Continuous)) for c in self.codes
        )
        if not torch_parts:  # parts of spec.latent given directly: rebuild them as torch parts
            rebuilt = LatentSpec.from_dict(base.LatentSpec(self.noise, self.codes).to_dict())
            object.__setattr__(self, "noise", rebuilt.noise)
            object.__setattr__(self, "codes", rebuilt.codes)

    def sample_values(
        self, n: int, generator: torch.Generator | None = None, device: Any = "cpu"
    ) -> dict[str, torch.Tensor]:
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

    def sample(
        self, n: int, generator: torch.Generator | None = None, device: Any = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw (z (N, noise.dim), c (N, c_dim)) from the prior."""
        z = self.noise.sample(n, generator, device)
        if not self.codes:
            return z, torch.zeros(n, 0, device=device)
        return z, self.encode(self.sample_values(n, generator, device)).to(device)

    def info_losses(self, c: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-code mean -log Q(c_i|x) in nats; L_I for a code is H(c_i) minus this (paper, Eq. 4-5)."""
        qs = {code.name: q[:, s] for code, s in self.q_slices()}
        return {code.name: code.info_loss(c[:, s], qs[code.name]).mean() for code, s in self.c_slices()}

    def predict(self, q: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
        return {code.name: code.predict(q[:, s]) for code, s in self.q_slices()}

    def point_estimates(self, q: torch.Tensor) -> torch.Tensor:
        """Q's output (N, q_dim) -> (N, #codes), one value per code in spec order (``point_estimate``)."""
        return torch.stack([code.point_estimate(q[:, s]) for code, s in self.q_slices()], dim=1)

    def shared_code_pairs(
        self, n: int, generator: torch.Generator | None = None, device: Any = "cpu", differ: str = ""
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """InfoGAN-CR's pairs (``JointLatent.sample_cr`` with gap 0): z (N, noise.dim) shared by both images, c1 and
        c2 (N, c_dim) drawn independently from the prior except code ``k`` (N,), uniform over the codes, whose value
        c2 copies from c1. Returns (z, c1, c2, k).

        ``differ`` names a categorical code that differs between the two images of every pair that does not share
        it (c2's value = c1's + a uniform shift in 1..K-1, mod K), where InfoGAN-CR's fresh draw gives the same value
        1/K of the time: a pair sharing a continuous code then always crosses categories (e.g. chair styles), so the
        head can name the shared code only if it looks the same in both. Empty: their pairs, the same draws as ever."""
        z = self.noise.sample(n, generator, device)
        v1, v2 = self.sample_values(n, generator, device), self.sample_values(n, generator, device)
        k = torch.randint(len(self.codes), (n,), generator=generator, device=device)
        if differ:
            code = self.code(differ)
            shift = torch.randint(1, code.categories, (n,), generator=generator, device=device)
            v2[differ] = (v1[differ] + shift) % code.categories
        for i, code in enumerate(self.codes):
            v2[code.name] = torch.where(k == i, v1[code.name], v2[code.name])
        return z, self.encode(v1), self.encode(v2), k


def mnist_spec() -> LatentSpec:
    """The paper's MNIST setting: 62-d uniform noise, one 10-way code, two continuous codes in [-1, 1]."""
    return LatentSpec(Noise(62, "uniform"), (Categorical("digit", 10), Continuous("c1"), Continuous("c2")))
