"""The torch-free spec: validation, JSON form, layouts, request bounds, numpy sampling and readings."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from spec.latent import (
    EXTRAPOLATION,
    SLIDER_SPAN,
    SLIDER_STEPS,
    Categorical,
    Continuous,
    LatentSpec,
    Noise,
    SpecError,
    UnknownCode,
)


def mnist() -> LatentSpec:
    return LatentSpec(Noise(62), (Categorical("digit", 10), Continuous("c1", label="slant"), Continuous("c2")))


def test_module_imports_neither_torch_nor_fastapi():
    import subprocess

    code = "import spec.latent, spec.manifest, sys; print('torch' in sys.modules, 'fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"noise": {"dim": 0}, "codes": []}, "dim"),
        ({"noise": {"dim": 4, "distribution": "cauchy"}, "codes": []}, "distribution"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "categorical", "categories": 1}]}, "categories"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "categorical", "categories": True}]}, "categories"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "low": 1, "high": 1}]}, "low < high"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "low": "x"}]}, "number"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "std": -1}]}, "std"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "ordinal"}]}, "unknown code type"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "raw_index": [0]}]}, "raw_index"),
        ({"noise": {"dim": 4}, "codes": [{"name": "z", "type": "continuous"}]}, "unique"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous"}] * 2}, "unique"),
        ({"noise": {"dim": 4}, "codes": [{"name": "1a", "type": "continuous"}]}, "name"),
        (
            {"noise": {"dim": 4}, "codes": [{"name": "a", "type": "categorical", "categories": 3, "labels": ["x"]}]},
            "labels",
        ),
        ({"noise": {"dim": 4}}, "codes"),
        ([], "object"),
        # human text shown on the page: one non-blank line that fits a control, distinct buttons
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": ""}]}, "label must not be empty"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": "  "}]}, "must not be empty"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": "x" * 65}]}, "at most 64"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": "a\nb"}]}, "one line"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": "a\x00"}]}, "control"),
        ({"noise": {"dim": 4}, "codes": [{"name": "a", "type": "continuous", "label": 3}]}, "must be a string"),
        (
            {
                "noise": {"dim": 4},
                "codes": [{"name": "a", "type": "categorical", "categories": 2, "labels": ["x", "x"]}],
            },
            "must differ, repeated: \\['x'\\]",
        ),
        (
            {
                "noise": {"dim": 4},
                "codes": [{"name": "a", "type": "categorical", "categories": 2, "labels": ["x", ""]}],
            },
            "category 1 must not be empty",
        ),
        (
            {
                "noise": {"dim": 4},
                "codes": [{"name": "a", "type": "categorical", "categories": 2, "labels": ["x", None]}],
            },
            "category 1 must be a string",
        ),
    ],
)
def test_from_dict_refuses_bad_specs_by_name(bad, words):
    with pytest.raises(SpecError, match=words):
        LatentSpec.from_dict(bad)


def test_labels_that_fit_are_kept_and_toml_numbers_become_text():
    spec = LatentSpec.from_dict(
        {
            "noise": {"dim": 4},
            "codes": [
                {"name": "k", "type": "categorical", "categories": 3, "labels": [0, 1, "T-shirt/top"]},
                {"name": "a", "type": "continuous", "label": "x" * 64},
                {"name": "b", "type": "continuous", "label": "largeur · ä"},
            ],
        }
    )
    assert spec.code("k").labels == ("0", "1", "T-shirt/top")
    assert spec.code("a").label == "x" * 64 and spec.code("b").label == "largeur · ä"
    with pytest.raises(SpecError, match="label must not be empty"):
        spec.with_text("a", label="")


def test_json_round_trip_and_layouts():
    spec = mnist()
    again = LatentSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert (spec.c_dim, spec.q_dim, spec.input_dim) == (12, 14, 74)
    assert [(c.name, s.start, s.stop) for c, s in spec.c_slices()] == [("digit", 0, 10), ("c1", 10, 11), ("c2", 11, 12)]
    assert [(c.name, s.start, s.stop) for c, s in spec.q_slices()] == [("digit", 0, 10), ("c1", 10, 12), ("c2", 12, 14)]
    assert spec.output_names() == ["digit.logits", "c1.mean", "c1.std", "c2.mean", "c2.std", "d_logit"]
    assert [c.name for c in spec.categorical_codes()] == ["digit"]
    assert [c.name for c in spec.continuous_codes()] == ["c1", "c2"]


def test_numpy_sampling_is_seeded_and_in_layout():
    spec = mnist()
    z1, v1 = spec.sample_np(np.random.default_rng(5), 64)
    z2, v2 = spec.sample_np(np.random.default_rng(5), 64)
    assert np.array_equal(z1, z2) and all(np.array_equal(v1[k], v2[k]) for k in v1)
    assert z1.shape == (64, 62) and z1.dtype == np.float32 and np.abs(z1).max() <= 1
    c = spec.encode_np(v1)
    assert c.shape == (64, 12) and c.dtype == np.float32
    assert np.array_equal(c[:, :10].argmax(1), v1["digit"].astype(int)) and np.all(c[:, :10].sum(1) == 1)
    assert np.allclose(c[:, 10], v1["c1"]) and v1["c1"].min() >= -1 and v1["c1"].max() <= 1


def test_request_checks_report_what_was_sent():
    spec = mnist()
    assert spec.check_codes({"digit": 3, "c1": -3.0}) == {"digit": 3, "c1": -3.0}
    with pytest.raises(SpecError, match=r"got 3\.0000001"):
        spec.check_codes({"c1": 3.0000001})
    with pytest.raises(SpecError, match="codes.digit.*integer"):
        spec.check_codes({"digit": 2.5})
    with pytest.raises(SpecError, match="codes.digit.*0..9, got 10"):
        spec.check_codes({"digit": 10})
    for bad in (True, "1", None, float("nan"), float("inf")):
        with pytest.raises(SpecError, match="codes.c1"):
            spec.check_codes({"c1": bad})
    with pytest.raises(UnknownCode, match="unknown code 'c9'"):
        spec.check_codes({"c9": 0})
    with pytest.raises(KeyError):  # an UnknownCode is a KeyError for lookups too
        spec.code("c9")


def test_noise_check_bounds():
    noise = Noise(3)
    assert noise.check([[0, 1, -3]], 1).dtype == np.float32
    with pytest.raises(SpecError, match="rows"):
        noise.check([[0, 0, 0]], 2)
    with pytest.raises(SpecError, match=r"z\[0\]"):
        noise.check([[0, 0]], 1)
    with pytest.raises(SpecError, match=r"3\.5") as e:
        noise.check([[0, 0, 3.5]], 1)
    assert str(e.value).endswith("got z[0][2] = 3.5")  # the value as sent, not numpy's repr of it
    assert Noise(3, "normal").bound == 6


def test_controls_and_bounds_derive_from_the_prior():
    code = Continuous("w", low=0.0, high=4.0)
    ctrl = code.control()
    assert (ctrl["min"], ctrl["max"]) == (2 - SLIDER_SPAN * 2, 2 + SLIDER_SPAN * 2)
    assert (ctrl["hard_min"], ctrl["hard_max"]) == code.bounds == (2 - EXTRAPOLATION * 2, 2 + EXTRAPOLATION * 2)
    assert ctrl["step"] * SLIDER_STEPS == pytest.approx(ctrl["max"] - ctrl["min"])
    assert ctrl["default"] == 2 and ctrl["prior"] == [0.0, 4.0]
    cat = Categorical("k", 3, ("a", "b", "c"))
    assert cat.control() == {"widget": "choice", "choices": ["a", "b", "c"], "default": 0}
    assert Categorical("k", 2).control()["choices"] == ["0", "1"]


def test_sweeps_and_readings():
    spec = mnist()
    assert spec.code("digit").sweep(-9, 9, 3) == list(range(10))
    assert spec.code("c1").sweep(-2, 2, 5) == [-2, -1, 0, 1, 2]
    with pytest.raises(SpecError, match="high"):
        spec.code("c1").sweep(-2, 4, 5)
    outputs = {
        "digit.logits": np.eye(10, dtype=np.float32)[[7]] * 20,
        "c1.mean": np.array([9.0]),
        "c1.std": np.array([0.2]),
        "c2.mean": np.array([0.5]),
        "c2.std": np.array([0.1]),
    }
    read = spec.read(outputs, 0)
    assert read["digit"]["value"] == 7 and sum(read["digit"]["probabilities"]) == pytest.approx(1)
    assert read["c1"]["value"] == EXTRAPOLATION and read["c1"]["mean"] == 9.0  # clipped to what a request may set
    assert read["c2"] == {"type": "continuous", "mean": 0.5, "std": pytest.approx(0.1), "value": 0.5}


def test_with_text_labels_the_right_part():
    spec = mnist().with_text("digit", labels=list("abcdefghij")).with_text("c2", label="width")
    assert spec.code("digit").display_labels[0] == "a" and spec.code("c2").label == "width"
    with pytest.raises(SpecError, match="categorical"):
        mnist().with_text("digit", label="x")
    with pytest.raises(SpecError, match="continuous"):
        mnist().with_text("c1", labels=["x"])
    with pytest.raises(UnknownCode):
        mnist().with_text("nope", label="x")


@pytest.mark.parametrize(
    "row, says",
    [
        ([True, 0.0, 0.0], "z[0][0]: expected a number, got bool"),
        ([0.0, "0.5", 0.0], "z[0][1]: expected a number, got str"),
        ([0.0, 0.0, 10**400], "z[0][2]: must be a finite number"),
        ([0.0, None, 0.0], "z[0][1]: expected a number, got NoneType"),
    ],
)
def test_noise_check_refuses_what_the_codes_refuse(row, says):
    # the service's schema refuses these first; a direct caller of the spec gets the same answer by field
    with pytest.raises(SpecError) as e:
        Noise(3).check([row], 1)
    assert str(e.value) == says
    assert Noise(3).check([[1, 0.5, np.float64(-1)]], 1).tolist() == [[1.0, 0.5, -1.0]]  # ints and floats pass


def test_a_spec_refuses_values_it_would_misread():
    with pytest.raises(SpecError, match="labels must be a list of strings"):
        Categorical("d", 3, labels="abc")  # once three labels a, b, c
    with pytest.raises(SpecError, match="labels must be a list of strings"):
        LatentSpec.from_dict(
            {"noise": {"dim": 2}, "codes": [{"name": "d", "type": "categorical", "categories": 3, "labels": "xyz"}]}
        )
    with pytest.raises(SpecError, match="std must be a positive number"):
        Continuous("c1", std=True)  # once kept, and written to JSON as true
    assert Categorical("d", 2, labels=["a", "b"]).labels == ("a", "b")


def test_the_portable_sampler_refuses_a_negative_count_as_numpy_does():
    from spec.latent import PortableRng

    rng = PortableRng(0)
    with pytest.raises(ValueError, match="negative"):
        rng.uniform(0, 1, -3)  # once moved the stream back three draws
    assert rng.uniform(0, 1, 2).tolist() == PortableRng(0).uniform(0, 1, 2).tolist()
    spec = LatentSpec(Noise(2), (Continuous("c1"),))
    with pytest.raises(ValueError, match="negative"):
        spec.sample_seeded(0, -1)
