"""training/latent.py: the parts' torch behaviour (sampling, one-hot encoding, decoding, information loss).

The torch-free parts (sizes, validation, JSON) are tested in tests/spec/test_latent_parts.py."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.latent import Categorical, Continuous, LatentSpec, Noise, mnist_spec

spec_strategy = st.builds(
    lambda dim, dist, cats, conts: LatentSpec(
        Noise(dim, dist),
        tuple(Categorical(f"k{i}", k) for i, k in enumerate(cats)) + tuple(Continuous(f"u{i}") for i in range(conts)),
    ),
    st.integers(1, 8),
    st.sampled_from(["uniform", "normal"]),
    st.lists(st.integers(2, 12), max_size=3),
    st.integers(0, 3),
)


@settings(max_examples=60, deadline=None)
@given(spec=spec_strategy, n=st.integers(1, 16), seed=st.integers(0, 2**31 - 1))
def test_sampling_encoding_and_decoding_agree(spec, n, seed):
    g = torch.Generator().manual_seed(seed)
    values = spec.sample_values(n, g)
    c = spec.encode(values) if spec.codes else torch.zeros(n, 0)
    assert c.shape == (n, spec.c_dim)
    decoded = spec.decode(c)
    columns = {code.name: s for code, s in spec.c_slices()}
    for code in spec.codes:
        assert torch.allclose(decoded[code.name].float(), values[code.name].float())
    for code in spec.continuous_codes():
        assert values[code.name].min() >= code.low and values[code.name].max() <= code.high
    for code in spec.categorical_codes():
        assert c[:, columns[code.name]].sum(1).eq(1).all()  # one-hot
    z, c2 = spec.sample(n, g)
    assert z.shape == (n, spec.noise.dim) and c2.shape == (n, spec.c_dim)
    if spec.noise.distribution == "uniform":
        assert z.abs().max() <= 1


@settings(max_examples=40, deadline=None)
@given(spec=spec_strategy, n=st.integers(1, 8))
def test_information_loss_bounds(spec, n):
    """Uniform logits give CE = ln K exactly (L_I = 0); a Gaussian NLL with the floor is finite and >= its floor."""
    c = spec.encode(spec.sample_values(n))
    q = torch.zeros(n, spec.q_dim)
    losses = spec.info_losses(c, q)
    columns = {code.name: s for code, s in spec.c_slices()}
    for code in spec.categorical_codes():
        assert math.isclose(float(losses[code.name]), math.log(code.categories), rel_tol=1e-5)
    for code in spec.continuous_codes():  # mean 0, log-std 0: 0.5 c^2 + 0.5 ln(2 pi)
        expected = float((0.5 * c[:, columns[code.name]] ** 2).mean() + 0.5 * math.log(2 * math.pi))
        assert math.isclose(float(losses[code.name]), expected, rel_tol=1e-5)


def test_log_std_floor_keeps_the_loss_finite():
    code = Continuous("u")
    q = torch.tensor([[0.0, -100.0]])  # Q asks for a vanishing std
    loss = code.info_loss(torch.tensor([[1.0]]), q)
    assert torch.isfinite(loss).all()
    assert code.predict(q)["std"].item() == pytest.approx(math.exp(-2.5), rel=1e-5)


def test_fixed_std_code_is_a_squared_error_and_round_trips():
    """std = 1 (the reference implementation's fix_std) makes -log Q(c|x) = 0.5 (c - mu)^2 + 0.5 ln(2 pi), whatever
    Q's second output says; the setting survives JSON."""
    spec = LatentSpec(Noise(4), (Continuous("c1", std=1.0),))
    c = torch.tensor([[0.5], [-1.0]])
    q = torch.tensor([[0.1, -7.0], [0.0, 3.0]])  # (mean, ignored log-std)
    want = 0.5 * (c[:, 0] - q[:, 0]) ** 2 + 0.5 * math.log(2 * math.pi)
    assert torch.allclose(spec.codes[0].info_loss(c, q), want)
    assert torch.equal(spec.predict(q)["c1"]["std"], torch.ones(2))
    assert LatentSpec.from_dict(spec.to_dict()) == spec and spec.to_dict()["codes"][0]["std"] == 1.0
    assert "std" not in mnist_spec().to_dict()["codes"][1]  # learned std stays the default
    with pytest.raises(ValueError, match="std must be a positive number"):
        Continuous("c1", std=0.0)
