"""spec/latent.py's parts as training builds them (from_dict of the config's and checkpoint's JSON): the paper's
sizes, text surviving JSON, and bad specs failing with a message naming the problem. Torch-free."""

import pytest

from spec.latent import Categorical, Continuous, LatentSpec, Noise


def mnist_spec() -> LatentSpec:
    """The paper's MNIST setting (training.latent.mnist_spec, built here from the torch-free parts)."""
    return LatentSpec(Noise(62, "uniform"), (Categorical("digit", 10), Continuous("c1"), Continuous("c2")))


def test_mnist_spec_sizes_match_the_paper():
    spec = mnist_spec()
    assert spec.noise.dim == 62
    assert spec.c_dim == 12  # 10 one-hot + 2 continuous
    assert spec.input_dim == 74
    assert spec.q_dim == 14  # 10 logits + 2 x (mean, log-std)


def test_json_round_trip_keeps_labels():
    spec = mnist_spec().with_text("digit", labels=list("abcdefghij")).with_text("c1", label="slant")
    again = LatentSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.code("digit").labels[0] == "a" and again.code("c1").label == "slant"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"noise": {"dim": 0}, "codes": []}, "noise dim"),
        ({"noise": {"dim": 4, "distribution": "cauchy"}, "codes": []}, "unknown noise distribution"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "ordinal"}]}, "unknown code type"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "categorical", "categories": 1}]}, "categories"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "low": 1, "high": -1}]}, "low < high"),
        (
            {"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous"}, {"name": "a", "type": "continuous"}]},
            "unique",
        ),
        ({"noise": {"dim": 4}}, "'noise' and 'codes'"),
    ],
)
def test_bad_specs_fail_with_a_message_naming_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        LatentSpec.from_dict(bad)
