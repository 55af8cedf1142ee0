"""The disentanglement metrics on a small dSprites subset: an encoder that reads the factors back scores ~1, a random
one scores at chance; the pieces against hand-computed values. Small sample sizes (seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import disentanglement as dm
from training.data import ImageSet, load_dataset

SUBSET = [1, 1, 2, 10, 4, 4]  # shape 3 x scale 3 x orientation 4 x posX 8 x posY 8 = 2,304 images
ORDER = [5, 1, 4, 3, 2]  # the factor each code of the "reader" holds: posY, shape, posX, orientation, scale
SMALL = {
    "mig_samples": 2000,
    "fvae_batch": 64,
    "fvae_train": 300,
    "fvae_eval": 200,
    "fvae_variance": 1000,
    "dci_train": 600,
    "dci_test": 300,
    "sap_train": 1000,
    "sap_test": 500,
}


@pytest.fixture(scope="module")
def sprites() -> ImageSet:
    return load_dataset("dsprites", "/nonexistent-dsprites-dir", subset=SUBSET)


@pytest.fixture(scope="module")
def data(sprites) -> dm.FactorData:
    return dm.FactorData.from_imageset(sprites)


def reader(sprites: ImageSet, noise: float, seed: int = 0):
    """An encoder that recognises each image (its pixels) and returns its factors' class positions, scaled to
    [0, 1], plus Gaussian noise of std ``noise``: a perfectly disentangled representation, codes in ORDER."""
    table = {}
    f = sprites.factors.numpy()
    pos = np.stack([np.unique(f[:, k], return_inverse=True)[1] for k in range(6)], axis=1)
    scaled = pos / np.maximum(pos.max(axis=0), 1)
    for img, row in zip(sprites.images.numpy(), scaled, strict=False):
        table.setdefault(img.tobytes(), row[ORDER])  # identical pictures (symmetric shapes) read as the first
    rng = np.random.default_rng(seed)

    def encode(images: np.ndarray) -> np.ndarray:
        assert images.dtype == np.float32 and images.shape[1:] == (1, 64, 64) and images.min() >= -1
        raw = np.round((images + 1) * 127.5).astype(np.uint8)
        codes = np.stack([table[x.tobytes()] for x in raw])
        return codes + noise * rng.standard_normal(codes.shape)

    return encode


def random_codes(seed: int = 0, d: int = 5):
    rng = np.random.default_rng(seed)
    return lambda images: rng.standard_normal((len(images), d))


def test_factor_data_indexes_the_grid(sprites, data):
    assert data.sizes == (1, 3, 3, 4, 8, 8) and data.varying == (1, 2, 3, 4, 5)
    rng = np.random.default_rng(0)
    f = data.sample_factors(500, rng)
    assert f.shape == (500, 6) and (f.max(axis=0) == np.array(data.sizes) - 1).all() and (f.min(axis=0) == 0).all()
    # the image of class positions (0, 2, 1, 3, 7, 5) is the row whose latents_classes are those classes
    want = np.flatnonzero((sprites.factors.numpy() == [0, 2, 2, 30, 28, 20]).all(axis=1))[0]
    got = data.images_for(np.array([[0, 2, 1, 3, 7, 5]]))
    assert got.dtype == np.float32 and got.shape == (1, 1, 64, 64)
    np.testing.assert_array_equal(got[0], sprites.images[want].numpy() / 127.5 - 1)
    with pytest.raises(ValueError, match="not a full grid"):
        dm.FactorData(sprites.images[:-1], sprites.factors.numpy()[:-1], sprites.factor_names)
    with pytest.raises(ValueError, match="no factor classes"):
        dm.FactorData.from_imageset(ImageSet(sprites.images[:4], None, None, "plain"))


def test_mi_discretisation_and_mig_by_hand():
    x = np.array([[0.0], [0.5], [1.0], [1.0]])
    np.testing.assert_array_equal(dm.histogram_discretize(x, 2)[:, 0], [1, 2, 2, 2])  # edges 0, 0.5 (right: in)
    y = np.repeat(np.arange(4), 250)[:, None]
    codes = np.concatenate([y + 0.0, np.zeros_like(y, dtype=float) + np.arange(1000)[:, None] % 2], axis=1)
    r = dm.mig(codes, y, bins=20)
    np.testing.assert_allclose(r["entropy"], [np.log(4)])
    np.testing.assert_allclose(r["mi"][:, 0], [np.log(4), 0.0], atol=1e-12)  # code 2 alternates within classes
    np.testing.assert_allclose(r["score"], 1.0)
    # a constant factor (dSprites' color) has no entropy and stays out of the mean
    r2 = dm.mig(codes, np.concatenate([y, np.zeros_like(y)], axis=1))
    assert np.isnan(r2["per_factor"][1]) and r2["score"] == pytest.approx(1.0)


def test_dci_and_sap_from_the_importance_by_hand():
    assert dm._weighted_one_minus_entropy(np.eye(3)) == pytest.approx(1.0)
    assert dm._weighted_one_minus_entropy(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (600, 2))  # two classes: a linear SVM on one code separates them
    codes = np.concatenate(
        [
            y[:, :1] + 0.05 * rng.standard_normal((600, 1)),
            rng.standard_normal((600, 1)),
            y[:, 1:] + 0.05 * rng.standard_normal((600, 1)),
        ],
        axis=1,
    )
    r = dm.dci(codes[:400], y[:400], codes[400:], y[400:])
    assert r["disentanglement"] > 0.8 and r["informativeness_test"] > 0.95
    assert np.argmax(r["importance"][:, 0]) == 0 and np.argmax(r["importance"][:, 1]) == 2
    s = dm.sap(codes[:400], y[:400], codes[400:], y[400:])
    assert s["matrix"].shape == (3, 2) and s["matrix"][0, 0] > 0.9 and s["matrix"][2, 1] > 0.9
    # the gap to the runner-up, which sits at chance (1/2, balanced) for two classes
    m = s["matrix"]
    assert s["score"] == pytest.approx(np.mean([m[0, 0] - max(m[1, 0], m[2, 0]), m[2, 1] - max(m[0, 1], m[1, 1])]))
    assert 0.35 < s["score"] < 0.65


def test_a_reader_of_the_factors_scores_one(sprites, data):
    said = []
    r = dm.disentanglement_metrics(reader(sprites, 0.01), data, np.random.default_rng(1), progress=said.append, **SMALL)
    json.dumps(r, allow_nan=False)
    # a line before each metric (minutes each at full size), naming its sizes; indented lines within the long ones
    stages = [line for line in said if not line.startswith("  ")]
    assert [line.split(":")[0] for line in stages] == [
        "encoding all 2,304 images once (the metrics draw 37,400)",
        "MIG",
        "FactorVAE score",
        "DCI",
        "SAP",
    ]
    assert "2,000 samples" in stages[1] and "300 + 200 votes of 64" in stages[2]
    # the encoding at each tenth (batches of 256: 8 of the 9 end past a new tenth, the last one is the end itself)
    encoded = [int(line.split()[0].replace(",", "")) for line in said if line.endswith("images encoded")]
    assert encoded == [256 * k for k in range(1, 9)] and all("of 2,304" in line for line in said if "encoded" in line)
    # one line per factor's trees, between DCI's line and SAP's
    between = said[said.index(next(x for x in said if x.startswith("DCI"))) + 1 : said.index(stages[-1])]
    assert between == [f"  trees for factor {j} of 5" for j in range(1, 6)]
    assert r["factors"] == ["shape", "scale", "orientation", "posX", "posY"]
    assert r["factor_vae"]["score"] >= 0.99 and r["factor_vae"]["num_active_codes"] == 5
    assert r["mig"]["score"] > 0.8, r["mig"]
    assert r["dci"]["disentanglement"] > 0.9 and r["dci"]["completeness"] > 0.9
    assert r["dci"]["informativeness_test"] > 0.9
    assert r["sap"]["score"] > 0.2
    names = [sprites.factor_names[k] for k in ORDER]
    assert [r["best_factor"][c]["factor"] for c in r["codes"]] == names
    assert [r["factor_vae"]["classifier"][c] for c in r["codes"]] == names
    assert list(r["factor_vae"]["per_factor"]) == r["factors"] and min(r["factor_vae"]["per_factor"].values()) >= 0.98
    assert np.array(r["mi_matrix"]).shape == (5, 5)


def test_a_random_representation_scores_at_chance(sprites, data):
    r = dm.disentanglement_metrics(random_codes(), data, np.random.default_rng(2), **SMALL)
    # five factors: a majority-vote classifier over random argmins is right ~1/5 of the time on held-out votes
    assert 0.08 < r["factor_vae"]["score"] < 0.35, r["factor_vae"]
    assert np.mean(list(r["factor_vae"]["per_factor"].values())) < 0.4
    assert r["mig"]["score"] < 0.05
    assert r["dci"]["disentanglement"] < 0.25
    assert r["sap"]["score"] < 0.05


def test_collapsed_codes_are_dropped(data):
    # two codes constant (std < 0.05), three random: the pruned ones never win a vote
    rng = np.random.default_rng(3)

    def rep(images):
        return np.concatenate([rng.standard_normal((len(images), 3)), np.full((len(images), 2), 0.5)], 1)

    r = dm.factor_vae_score(rep, data, np.random.default_rng(4), num_train=50, num_eval=50, num_variance_estimate=200)
    assert r["num_active_codes"] == 3 and r["classifier"][3] is None and r["classifier"][4] is None
    # per factor: the held-out accuracy of the votes with that factor fixed; their drawn-weighted mean is the score
    drawn = np.array([p is not None for p in r["per_factor"]])
    assert drawn.any() and all(0.0 <= p <= 1.0 for p in np.array(r["per_factor"])[drawn])
    dead = dm.factor_vae_score(
        lambda im: np.zeros((len(im), 2)),
        data,
        np.random.default_rng(5),
        num_train=5,
        num_eval=5,
        num_variance_estimate=100,
    )
    assert dead["score"] == 0.0 and dead["num_active_codes"] == 0


def test_a_small_set_is_encoded_once_with_the_same_figures(data):
    """Where the metrics draw more images than the set has, each image is encoded once and looked up: the same
    figures as encoding every draw (same random stream), with len(data) encodings instead of tens of thousands."""
    weights = np.random.default_rng(3).standard_normal((64 * 64, 4))
    seen = []

    def linear(images: np.ndarray) -> np.ndarray:  # a deterministic per-image representation (as Q in eval mode)
        seen.append(len(images))
        return images.reshape(len(images), -1).astype(np.float64) @ weights

    per_draw = dm.disentanglement_metrics(linear, data, np.random.default_rng(0), encode_once=False, **SMALL)
    draws = sum(seen)
    seen.clear()
    auto = dm.disentanglement_metrics(linear, data, np.random.default_rng(0), **SMALL)
    assert sum(seen) == len(data.images) < draws / 10
    assert json.dumps(auto["factor_vae"]) == json.dumps(per_draw["factor_vae"])
    for key in ("mig", "sap"):
        assert auto[key]["score"] == pytest.approx(per_draw[key]["score"], abs=1e-9)
    np.testing.assert_allclose(auto["mi_matrix"], per_draw["mi_matrix"], atol=1e-9)
    assert auto["dci"]["disentanglement"] == pytest.approx(per_draw["dci"]["disentanglement"], abs=1e-6)


def test_dci_and_sap_test_images_are_never_training_images(sprites, data):
    """DCI's and SAP's held-out accuracy is on images the classifiers never saw: the train and test draws are distinct
    images with no image in both (drawn independently with replacement, 23 % of these 300 test draws of 2,304 images
    were training images too). A code that only tells images apart (a random number per picture, no factor) lets the
    trees memorise the training images: on unseen images it is at chance (mean of 1/3, 1/3, 1/4, 1/8, 1/8 = 0.23),
    while the overlapping draws scored ~0.4. Sizes beyond the set's images are cut to it, in proportion, and
    recorded."""
    rows = dm.held_out_codes(lambda im: np.zeros((len(im), 1)), data, 1500, 700, np.random.default_rng(0), 256)
    (_, f_train), (_, f_test) = rows
    train_rows, test_rows = data.rows_for(f_train), data.rows_for(f_test)
    assert len(set(train_rows)) == 1500 and len(set(test_rows)) == 700 and not set(train_rows) & set(test_rows)
    assert dm.held_out_sizes(data, 2000, 1000) == (1536, 768) and dm.held_out_sizes(data, 600, 300) == (600, 300)

    table = {
        img.tobytes(): code
        for img, code in zip(
            sprites.images.numpy(), np.random.default_rng(1).standard_normal((len(sprites.images), 5)), strict=True
        )
    }

    def tells_images_apart(images: np.ndarray) -> np.ndarray:
        raw = np.round((images + 1) * 127.5).astype(np.uint8)
        return np.stack([table[x.tobytes()] for x in raw])

    sizes = {**SMALL, "fvae_train": 20, "fvae_eval": 20, "sap_train": 2000, "sap_test": 1000}
    r = dm.disentanglement_metrics(tells_images_apart, data, np.random.default_rng(2), **sizes)
    assert r["dci"]["informativeness_train"] > 0.6  # the trees did memorise
    assert r["dci"]["informativeness_test"] < 0.3, r["dci"]
    assert (r["sizes"]["sap_train"], r["sizes"]["sap_test"]) == (1536, 768)
    assert (r["sizes"]["dci_train"], r["sizes"]["dci_test"]) == (600, 300)


def test_a_factor_vae_vote_of_one_image_is_refused(data):
    """A vote's variance (ddof 1) of one image is NaN and argmin then names the first code for every vote: a
    chance-level score, silently. The function and the config refuse it."""
    from training.config import load_config

    with pytest.raises(ValueError, match="at least 2 images"):
        dm.factor_vae_score(random_codes(), data, np.random.default_rng(0), batch_size=1)
    with pytest.raises(ValueError, match="fvae_batch must be >= 2"):
        load_config("dsprites", ["train.metrics_sizes={ fvae_batch = 1 }"])
    assert load_config("dsprites", ["train.metrics_sizes={ fvae_batch = 2 }"]).train.metrics_sizes["fvae_batch"] == 2
