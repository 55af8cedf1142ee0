"""POST /generate and /traverse: shapes, seeds, code independence, and every input error."""

import base64
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_generate_defaults(client):
    r = client.post("/generate", json={})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "tiny" and isinstance(body["seed"], int)
    assert len(body["images"]) == 1 and decode(body["images"][0]).shape == (28, 28)
    assert len(body["z"]) == 1 and len(body["z"][0]) == 62 and all(-1 <= v <= 1 for v in body["z"][0])
    (codes,) = body["codes"]
    assert set(codes) == {"digit", "c1", "c2"} and isinstance(codes["digit"], int)


def test_seed_repeats_and_returned_seed_repeats(client):
    a = client.post("/generate", json={"n": 3, "seed": 7}).json()
    b = client.post("/generate", json={"n": 3, "seed": 7}).json()
    assert a == b
    free = client.post("/generate", json={"n": 2, "model": "tiny-gan"}).json()
    again = client.post("/generate", json={"n": 2, "model": "tiny-gan", "seed": free["seed"]}).json()
    assert again == free


def test_given_codes_apply_to_all(client):
    body = client.post("/generate", json={"n": 4, "seed": 1, "codes": {"digit": 7, "c1": -2.5}}).json()
    assert all(c["digit"] == 7 and c["c1"] == -2.5 for c in body["codes"])


def test_given_z_is_used(client):
    z = [[0.25] * 62, [-0.5] * 62]
    a = client.post("/generate", json={"n": 2, "seed": 3, "z": z}).json()
    b = client.post("/generate", json={"n": 2, "seed": 4, "z": z, "codes": a["codes"][0]}).json()
    assert a["z"] == z
    # same z and same codes -> same image, whatever the seed
    assert a["images"][0] == b["images"][0]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**53 - 1),
    n=st.integers(1, 4),
    digit=st.none() | st.integers(0, 9),
    c1=st.none() | st.floats(-3, 3),
    c2=st.none() | st.floats(-3, 3),
)
def test_seed_code_independence(client, seed, n, digit, c1, c2):
    """With one seed and n, the noise and every code not given are the same whatever codes are given."""
    given_codes = {k: v for k, v in {"digit": digit, "c1": c1, "c2": c2}.items() if v is not None}
    base = client.post("/generate", json={"n": n, "seed": seed}).json()
    fixed = client.post("/generate", json={"n": n, "seed": seed, "codes": given_codes}).json()
    assert fixed["z"] == base["z"]
    for b, f in zip(base["codes"], fixed["codes"], strict=False):
        for name in b:
            assert f[name] == given_codes.get(name, b[name])


def test_n_256_and_batching_matches_single(client):
    many = client.post("/generate", json={"n": 256, "seed": 5}).json()
    assert len(many["images"]) == 256
    one = client.post("/generate", json={"n": 1, "seed": 9}).json()
    rerun = client.post("/generate", json={"n": 1, "z": one["z"], "codes": one["codes"][0]}).json()
    assert np.abs(decode(one["images"][0]).astype(int) - decode(rerun["images"][0]).astype(int)).max() <= 1


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"model": "nope"}, 404, "model"),
        ({"n": 0}, 422, "n"),
        ({"n": 257}, 422, "n"),
        ({"n": 1.5}, 422, "n"),
        ({"n": True}, 422, "n"),  # pydantic's lax mode would read true as 1
        ({"n": "2"}, 422, "n"),  # and "2" as 2, where a code's value "3" was refused
        ({"seed": "7"}, 422, "seed"),
        ({"z": [["0.5"] * 62]}, 422, "z.0.0"),
        ({"z": [[True] * 62]}, 422, "z.0.0"),
        ({"seed": -1}, 422, "seed"),
        ({"seed": False}, 422, "seed"),
        ({"seed": 2**53}, 422, "seed"),
        ({"codes": {"nope": 1}}, 422, "codes.nope"),
        ({"codes": {"digit": 10}}, 422, "codes.digit"),
        ({"codes": {"digit": -1}}, 422, "codes.digit"),
        ({"codes": {"digit": 2.5}}, 422, "codes.digit"),
        ({"codes": {"digit": True}}, 422, "codes.digit"),
        ({"codes": {"digit": "3"}}, 422, "codes.digit"),
        ({"codes": {"c1": 3.01}}, 422, "codes.c1"),
        ({"codes": {"c1": -1e300}}, 422, "codes.c1"),
        ({"z": [[0.0] * 61]}, 422, "z[0]"),
        ({"n": 2, "z": [[0.0] * 62]}, 422, "z"),
        ({"z": [[4.0] * 62]}, 422, "z"),
        ({"extra": 1}, 422, "extra"),
    ],
)
def test_generate_errors(client, body, status, field):
    r = client.post("/generate", json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and r.json()["detail"].startswith(field), r.text


@pytest.mark.parametrize(
    "raw, field",
    [('{"codes": {"c1": NaN}}', "codes.c1"), ('{"z": [[Infinity]]}', "z"), ('{"n": ', "body"), ("[1, 2]", "body")],
)
def test_generate_non_finite_and_malformed_json(client, raw, field):
    r = client.post("/generate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and field in r.json()["detail"], r.text


def test_traverse_continuous(client):
    r = client.post("/traverse", json={"code": "c1", "rows": 3, "cols": 5, "seed": 2, "codes": {"digit": 4}})
    assert r.status_code == 200
    body = r.json()
    assert body["rows"] == 3 and body["cols"] == 5 and body["seed"] == 2 and body["code"] == "c1"
    assert body["values"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert len(body["images"]) == 15
    # columns differ only in c1: the same row at c1 = 0 equals /generate with that row's codes
    gen = client.post("/generate", json={"n": 3, "seed": 2, "codes": {"digit": 4, "c1": 0.0}}).json()
    for row in range(3):
        assert body["images"][row * 5 + 2] == gen["images"][row]


def test_traverse_categorical_sweeps_all(client):
    body = client.post("/traverse", json={"code": "digit", "rows": 2, "cols": 3}).json()
    assert body["cols"] == 10 and body["values"] == list(range(10)) and len(body["images"]) == 20


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"code": "nope"}, 422, "code"),
        ({"code": "c1", "rows": 17}, 422, "rows"),
        ({"code": "c1", "cols": 1}, 422, "cols"),
        ({"code": "c1", "high": 3.5}, 422, "high"),
        ({"code": "c1", "codes": {"digit": 11}}, 422, "codes.digit"),
        ({"code": "c1", "model": "nope"}, 404, "model"),
        ({}, 422, "code"),
        ({"code": "c1", "rows": True}, 422, "rows"),
        ({"code": "c1", "cols": "3"}, 422, "cols"),
        ({"code": "c1", "low": "-1"}, 422, "low"),
        ({"code": "c1", "high": False}, 422, "high"),
    ],
)
def test_traverse_errors(client, body, status, field):
    r = client.post("/traverse", json=body)
    assert r.status_code == status and r.json()["detail"].startswith(field), r.text


HUGE = "9" * 400  # a JSON integer beyond float's range: float() of it raises OverflowError


@pytest.mark.parametrize(
    "path, raw, field",
    [
        ("/generate", '{"codes": {"c1": %s}}', "codes.c1"),
        ("/generate", '{"codes": {"digit": %s}}', "codes.digit"),
        ("/generate", '{"codes": {"c1": -%s}}', "codes.c1"),
        ("/generate", '{"z": [[%s' + ", 0" * 61 + "]]}", "z"),
        ("/generate", '{"n": %s}', "n"),
        ("/generate", '{"seed": %s}', "seed"),
        ("/traverse", '{"code": "c1", "low": %s}', "low"),
        ("/traverse", '{"code": "c1", "rows": %s}', "rows"),
        ("/traverse", '{"code": "c1", "codes": {"c2": %s}}', "codes.c2"),
    ],
)
def test_integers_beyond_float_range_are_422_naming_the_field(client, path, raw, field):
    r = client.post(path, content=raw % HUGE, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


def test_traverse_defaults_to_the_slider_of_the_code_s_own_prior(tmp_path, build_tiny_model):
    # a code whose prior is [0, 1]: the default sweep once was -2..2 and refused, blaming the 'low' never sent
    from conftest import make_client, wait_ready

    from spec.latent import Categorical, Continuous, Noise
    from training.latent import LatentSpec  # with the torch sampling the export uses

    spec = LatentSpec(Noise(62), (Categorical("digit", 10), Continuous("c1", low=0.0, high=1.0), Continuous("c2")))
    build_tiny_model(tmp_path, "p01", spec=spec)
    with make_client(tmp_path) as c:
        wait_ready(c)
        body = c.post("/traverse", json={"code": "c1", "rows": 1, "cols": 5}).json()
        assert body["values"] == [-0.5, 0.0, 0.5, 1.0, 1.5], body  # the page's slider: 2 half-ranges either side
        assert c.post("/traverse", json={"code": "c2", "rows": 1, "cols": 3}).json()["values"] == [-2.0, 0.0, 2.0]
        given = c.post("/traverse", json={"code": "c1", "rows": 1, "cols": 3, "low": 0, "high": 1}).json()
        assert given["values"] == [0.0, 0.5, 1.0]
        r = c.post("/traverse", json={"code": "c1", "rows": 1, "low": -2})
        assert r.status_code == 422 and r.json()["detail"].startswith("low: "), r.text
