"""Disentanglement metrics against ground-truth factors, as google-research/disentanglement_lib computes them.

Locatello et al. (ICML 2019) and its code (``evaluation/metrics/{mig,factor_vae,dci,sap_score,utils}.py``) fixed the
procedures the field reports. InfoGAN-CR (Lin et al., ICML 2020; fjxmlzn/InfoGAN-CR ``gan/metric.py``) scores with its
own variant: FactorVAE on 500 votes of 100 images, the variance over 73,728 images, no pruning, accuracy on the votes
the classifier was fitted on; MIG on 73,728 images; on the same codes it scores a few points above this one's
FactorVAE, so a comparison with its published figures is close, not like for like. Here, with disentanglement_lib's
default sizes:
- **MIG** (Chen et al. 2018): 10,000 samples; each code cut into 20 equal-width bins over its sampled range
  (``np.histogram`` edges, ``np.digitize``); MI in nats between each code and each factor's classes; per factor the
  gap between its two largest MIs over the factor's entropy; the mean over factors that vary (dSprites' color,
  constant, is left out, as disentanglement_lib leaves it out of its dSprites).
- **FactorVAE score** (Kim & Mnih 2018): each code's variance over 10,000 samples (ddof 1); codes with std < 0.05
  dropped; a vote = (a factor k drawn uniformly among the varying ones, the code of least variance / global variance
  over a batch of 64 samples that share k's value); a majority-vote classifier (code -> factor) fitted on 10,000
  votes, its accuracy on 5,000 held-out votes is the score.
- **DCI** (Eastwood & Williams 2018): one ``GradientBoostingClassifier()`` (sklearn defaults) per factor on 10,000
  images, importances |feature_importances_| as the code x factor matrix; disentanglement = sum over codes of
  (1 - entropy of the code's row, base #factors) weighted by the code's share of importance; completeness the same
  over columns (base #codes); informativeness = the classifiers' accuracy on the train and on 5,000 test images.
- **SAP** (Kumar et al. 2018), discrete factors (disentanglement_lib's setting for dSprites): per (code, factor) a
  ``LinearSVC(C=0.01, class_weight="balanced")`` on that one code, its test accuracy; per factor the gap between the
  two best codes; the mean over factors.
One difference changes a figure: DCI's and SAP's train and test images are distinct images, none of the test images
among the train images (``held_out_codes``); disentanglement_lib draws both with replacement, which on 3D chairs
made about half the "held-out" images training images. Two more, neither changing what is measured:
disentanglement_lib encodes one FactorVAE vote's batch per call;
here many votes' batches go through the representation in one call (same samples in distribution, fewer calls). And
where the data set has fewer images than the metrics draw (3D chairs: 16,000 against ~1 M at the default sizes),
every image is encoded once and the draws look their codes up (``EncodedOnce``): the same draws from the same
random stream, for a representation that maps each image on its own.

Interfaces: a *representation* is any callable ``images -> codes`` with images float32 (N, C, H, W) in [-1, 1] (the
networks' image space, ``ImageSet.as_float``) and codes an (N, d) array; a ground-truth source is a ``FactorData``
(``sample_factors(n, rng)``, ``images_for(factors)``) over any image set whose loader gives factor classes forming a
full grid (every combination present once), e.g. dSprites or a subset of it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .stages import Progress, quiet

Representation = Callable[[np.ndarray], np.ndarray]


class FactorData:
    """Images indexed by their factor classes. ``factors`` (N, F) int: any class labels per factor; they are mapped to
    positions 0..size-1 (sorted), and the N rows must hold every combination exactly once."""

    def __init__(self, images, factors, names: Sequence[str]):
        factors = np.asarray(factors)
        if factors.ndim != 2 or len(factors) != len(images) or factors.shape[1] != len(names):
            raise ValueError(f"factors {factors.shape} do not match {len(images)} images and {len(names)} names")
        self.images = images  # uint8 (N, C, H, W), numpy or torch
        self.names = tuple(names)
        self.values = [np.unique(factors[:, f]) for f in range(factors.shape[1])]
        self.sizes = tuple(len(v) for v in self.values)
        positions = np.stack([np.searchsorted(v, factors[:, f]) for f, v in enumerate(self.values)], axis=1)
        flat = np.ravel_multi_index(positions.T, self.sizes)
        if len(flat) != int(np.prod(self.sizes)) or len(np.unique(flat)) != len(flat):
            raise ValueError(
                f"the factor classes are not a full grid: {len(flat)} images, "
                f"{int(np.prod(self.sizes))} combinations of sizes {self.sizes}, "
                f"{len(np.unique(flat))} distinct"
            )
        self._index = np.empty(len(flat), np.int64)
        self._index[flat] = np.arange(len(flat))
        # the factors that vary: the metrics' factors (a constant factor carries no information and cannot be fixed)
        self.varying = tuple(f for f, s in enumerate(self.sizes) if s > 1)

    @classmethod
    def from_imageset(cls, data) -> FactorData:
        if getattr(data, "factors", None) is None:
            raise ValueError(f"{data.name}: the data set has no factor classes (disentanglement metrics need them)")
        return cls(data.images, np.asarray(data.factors), data.factor_names)

    @property
    def num_factors(self) -> int:
        return len(self.sizes)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, F) int64 class positions, each factor drawn uniformly and independently."""
        return np.stack([rng.integers(0, s, n) for s in self.sizes], axis=1).astype(np.int64)

    def rows_for(self, factors: np.ndarray) -> np.ndarray:
        """(n,) int64: the index into ``images`` of each row of class positions."""
        return self._index[np.ravel_multi_index(np.asarray(factors).T, self.sizes)]

    def images_at(self, rows: np.ndarray) -> np.ndarray:
        """float32 (n, C, H, W) in [-1, 1]: the images at ``rows`` of ``images``."""
        if hasattr(self.images, "numpy"):  # a torch tensor (ImageSet.images)
            import torch

            imgs = self.images[torch.from_numpy(np.asarray(rows, np.int64))].numpy()
        else:
            imgs = np.asarray(self.images)[rows]
        return imgs.astype(np.float32) / 127.5 - 1.0

    def images_for(self, factors: np.ndarray) -> np.ndarray:
        """float32 (n, C, H, W) in [-1, 1]: the image of each row of class positions."""
        return self.images_at(self.rows_for(factors))


class EncodedOnce:
    """A representation's codes of every image of ``data``, computed once (``batch`` images per call) and then looked
    up by row: for a data set smaller than the metrics' draws (3D chairs: 16,000 images against the FactorVAE
    score's 15,000 votes x 64 = 960,000 encodings at disentanglement_lib's sizes) this encodes each image once
    instead of ~60 times. The same codes as calling the representation per draw, for a representation that maps
    each image on its own (Q in eval mode does), up to the float rounding of a different batch size."""

    def __init__(self, representation: Representation, data: FactorData, batch: int = 256, progress: Progress = quiet):
        # minutes for a large set (dSprites' 737,280 images: ~4 min on 2 CPU cores): a line per tenth
        self.codes = encode_rows(representation, data, np.arange(len(data.images)), batch, progress=progress)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        raise TypeError("EncodedOnce looks codes up by factors (encode), not by images")


def encode_rows(
    representation: Representation, data: FactorData, rows: np.ndarray, batch: int = 256, progress: Progress = quiet
) -> np.ndarray:
    """Codes (n, d) float64 of the images at ``rows`` of ``data.images``, ``batch`` images per call; ``progress``
    hears how many are done at each tenth of the rows."""
    parts, tenth = [], 1
    for i in range(0, len(rows), batch):
        n = min(batch, len(rows) - i)
        parts.append(np.asarray(representation(data.images_at(rows[i : i + n])), np.float64).reshape(n, -1))
        if (i + n) * 10 >= tenth * len(rows) and i + n < len(rows):
            progress(f"  {i + n:,} of {len(rows):,} images encoded")
            tenth = (i + n) * 10 // len(rows) + 1
    return np.concatenate(parts)


def encode(representation: Representation, data: FactorData, factors: np.ndarray, batch: int = 256) -> np.ndarray:
    """Codes (n, d) float64 of the images of ``factors``, ``batch`` images per call."""
    rows = data.rows_for(factors)
    if isinstance(representation, EncodedOnce):
        return representation.codes[rows]
    return encode_rows(representation, data, rows, batch)


def sample_codes(
    representation: Representation, data: FactorData, n: int, rng: np.random.Generator, batch: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    factors = data.sample_factors(n, rng)
    return encode(representation, data, factors, batch), factors


def held_out_sizes(data: FactorData, n_train: int, n_test: int) -> tuple[int, int]:
    """(train, test) sizes of ``held_out_codes``: as asked, or, on a grid with fewer images than both, its images
    split in the asked proportion (at least one of each)."""
    total = int(np.prod(data.sizes))
    if n_train + n_test <= total:
        return n_train, n_test
    train = min(total - 1, max(1, round(total * n_train / (n_train + n_test))))
    return train, total - train


def held_out_codes(
    representation: Representation, data: FactorData, n_train: int, n_test: int, rng: np.random.Generator, batch: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((codes, factors) of the train images, the same of the test images) for a classifier's held-out accuracy
    (DCI's informativeness, SAP): distinct images, none of the test images among the train images. Sizes from
    ``held_out_sizes``. disentanglement_lib draws both sets independently with replacement; on 3D chairs (16,000
    images) 47 % of its 5,000 test draws are training images too, which the boosted trees partly memorise (a noisy
    code's factor accuracy: 0.49 on such draws, 0.43 on unseen images), so its "test" accuracy was not held out. On
    dSprites (737,280 images) the overlap was ~1 %."""
    n_train, n_test = held_out_sizes(data, n_train, n_test)
    flat = rng.choice(int(np.prod(data.sizes)), n_train + n_test, replace=False)
    factors = np.stack(np.unravel_index(flat, data.sizes), axis=1).astype(np.int64)
    return tuple(  # type: ignore[return-value]
        (encode(representation, data, f, batch), f) for f in (factors[:n_train], factors[n_train:])
    )


# ---- MIG and the MI matrix ----------------------------------------------------------------------------------


def histogram_discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """(n, d) -> (n, d) int: bin index of each code in ``bins`` equal-width bins over its sampled range."""
    out = np.zeros(codes.shape, np.int64)
    for i in range(codes.shape[1]):
        out[:, i] = np.digitize(codes[:, i], np.histogram(codes[:, i], bins)[1][:-1])
    return out


def mutual_info_matrix(discrete: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(d, F) MI in nats between each discretised code and each factor (sklearn's mutual_info_score)."""
    from sklearn.metrics import mutual_info_score

    return np.array(
        [
            [mutual_info_score(factors[:, j], discrete[:, i]) for j in range(factors.shape[1])]
            for i in range(discrete.shape[1])
        ]
    )


def entropies(factors: np.ndarray) -> np.ndarray:
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict:
    """MIG from samples: ``score``, ``per_factor`` gaps (NaN for a factor with zero entropy, left out of the mean),
    the (d, F) ``mi`` matrix and the factors' ``entropy`` (nats)."""
    m = mutual_info_matrix(histogram_discretize(codes, bins), factors)
    h = entropies(factors)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros(m.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = np.where(h > 0, (top[0] - second) / h, np.nan)
    return {"score": float(np.nanmean(gaps)) if np.any(h > 0) else 0.0, "per_factor": gaps, "mi": m, "entropy": h}


# ---- FactorVAE score ----------------------------------------------------------------------------------------


def factor_vae_score(
    representation: Representation,
    data: FactorData,
    rng: np.random.Generator,
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_std: float = 0.05,
    votes_per_call: int = 16,
) -> dict:
    if batch_size < 2:  # a vote's variance (ddof 1) of one image is NaN, and argmin then always names the first code
        raise ValueError(f"a FactorVAE vote needs at least 2 images, got batch_size {batch_size}")
    codes, _ = sample_codes(representation, data, num_variance_estimate, rng)
    global_var = np.var(codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_var) >= prune_std)
    result = {
        "score": 0.0,
        "train_accuracy": 0.0,
        "eval_accuracy": 0.0,
        "num_active_codes": len(active),
        "classifier": None,
        "per_factor": None,
    }
    if len(active) == 0:
        return result
    train = _votes(representation, data, rng, batch_size, num_train, global_var, active, votes_per_call)
    held_out = _votes(representation, data, rng, batch_size, num_eval, global_var, active, votes_per_call)
    classifier = np.argmax(train, axis=0)  # code -> the factor (row) it votes for most
    cols = np.arange(train.shape[1])
    result["train_accuracy"] = float(train[classifier, cols].sum() / train.sum())
    result["eval_accuracy"] = result["score"] = float(held_out[classifier, cols].sum() / held_out.sum())
    # the held-out accuracy of the votes with each factor fixed (rows of data.varying; None: never drawn): which
    # factor the score loses on. The score is their mean weighted by how often each factor was drawn.
    result["per_factor"] = [
        float(held_out[f, classifier == f].sum() / held_out[f].sum()) if held_out[f].any() else None
        for f in range(len(data.varying))
    ]
    # codes that never won a vote (inactive ones included) have no factor
    result["classifier"] = [int(data.varying[classifier[c]]) if train[:, c].any() else None for c in cols]
    return result


def _votes(representation, data: FactorData, rng, batch_size, num, global_var, active, per_call) -> np.ndarray:
    """(len(data.varying), d) int64 vote counts over ``num`` fixed-factor batches."""
    votes = np.zeros((len(data.varying), len(global_var)), np.int64)
    done = 0
    while done < num:
        k = min(per_call, num - done)
        fixed = rng.integers(0, len(data.varying), k)  # row in data.varying
        factors = np.concatenate([data.sample_factors(batch_size, rng) for _ in range(k)])
        factors = factors.reshape(k, batch_size, -1)
        cols = np.array(data.varying)[fixed]
        factors[np.arange(k), :, cols] = factors[np.arange(k), 0, cols][:, None]
        codes = encode(representation, data, factors.reshape(k * batch_size, -1), batch=k * batch_size)
        local_var = np.var(codes.reshape(k, batch_size, -1), axis=1, ddof=1)
        winner = active[np.argmin(local_var[:, active] / global_var[active], axis=1)]
        np.add.at(votes, (fixed, winner), 1)
        done += k
    return votes


# ---- DCI and SAP --------------------------------------------------------------------------------------------


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    seed: int = 0,
    progress: Progress = quiet,
) -> dict:
    """DCI with gradient-boosted trees; factors given as (n, F) columns, each with at least two classes.
    ``progress`` hears each factor's trees start (~40 s each at disentanglement_lib's 10,000 samples)."""
    from sklearn.ensemble import GradientBoostingClassifier

    d, f = codes_train.shape[1], factors_train.shape[1]
    importance = np.zeros((d, f))
    train_acc, test_acc = [], []
    for j in range(f):
        progress(f"  trees for factor {j + 1} of {f}")
        model = GradientBoostingClassifier(random_state=seed)
        model.fit(codes_train, factors_train[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        train_acc.append(np.mean(model.predict(codes_train) == factors_train[:, j]))
        test_acc.append(np.mean(model.predict(codes_test) == factors_test[:, j]))
    return {
        "disentanglement": _weighted_one_minus_entropy(importance),
        "completeness": _weighted_one_minus_entropy(importance.T),
        "informativeness_train": float(np.mean(train_acc)),
        "informativeness_test": float(np.mean(test_acc)),
        "importance": importance,
    }


def _weighted_one_minus_entropy(importance: np.ndarray) -> float:
    """Rows: the things scored (codes for D, factors for C); 1 - entropy of each row (base = #columns), weighted by
    the row's share of the total importance (uniform when all are zero)."""
    from scipy.stats import entropy

    if importance.shape[1] < 2:
        return 1.0
    per_row = 1.0 - entropy(importance.T + 1e-11, base=importance.shape[1])
    if importance.sum() == 0:
        importance = np.ones_like(importance)
    return float(np.sum(per_row * importance.sum(axis=1) / importance.sum()))


def sap(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray) -> dict:
    """SAP for discrete factors: ``score`` and the (d, F) accuracy ``matrix``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    d, f = codes_train.shape[1], factors_train.shape[1]
    matrix = np.zeros((d, f))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for i in range(d):
            for j in range(f):
                clf = LinearSVC(C=0.01, class_weight="balanced")
                clf.fit(codes_train[:, i : i + 1], factors_train[:, j])
                matrix[i, j] = np.mean(clf.predict(codes_test[:, i : i + 1]) == factors_test[:, j])
    top = np.sort(matrix, axis=0)
    score = float(np.mean(top[-1] - top[-2])) if d > 1 else 0.0
    return {"score": score, "matrix": matrix}


# ---- everything, JSON-able ----------------------------------------------------------------------------------


def disentanglement_metrics(
    representation: Representation,
    data,
    rng: np.random.Generator,
    *,
    code_names: Sequence[str] | None = None,
    mig_samples: int = 10_000,
    bins: int = 20,
    fvae_batch: int = 64,
    fvae_train: int = 10_000,
    fvae_eval: int = 5_000,
    fvae_variance: int = 10_000,
    prune_std: float = 0.05,
    dci_train: int = 10_000,
    dci_test: int = 5_000,
    sap_train: int = 10_000,
    sap_test: int = 5_000,
    batch: int = 256,
    encode_once: bool | None = None,
    progress: Progress = quiet,
) -> dict:
    """MIG, FactorVAE score, DCI, SAP, the code x factor MI matrix (nats, from the MIG samples) and each code's
    best-matching factor (largest MI / factor entropy), over the factors that vary. ``data``: a FactorData or an
    ImageSet with factor classes. Sizes default to disentanglement_lib's; dci_train = 0 skips DCI (minutes of
    tree fitting at full size), sap_train = 0 skips SAP. ``encode_once``: encode every image of ``data`` once and
    look the draws up (``EncodedOnce``); None = where the data set has fewer images than the metrics draw.
    ``progress``: called with a line before each metric (``stages.Progress``). Plain floats, lists and dicts:
    json.dumps takes it."""
    if not isinstance(data, FactorData):
        data = FactorData.from_imageset(data)
    draws = mig_samples + fvae_variance + (fvae_train + fvae_eval) * fvae_batch
    draws += (dci_train + dci_test if dci_train else 0) + (sap_train + sap_test if sap_train else 0)
    if encode_once is None:
        encode_once = len(data.images) < draws
    if encode_once and not isinstance(representation, EncodedOnce):
        progress(f"encoding all {len(data.images):,} images once (the metrics draw {draws:,})")
        representation = EncodedOnce(representation, data, batch, progress)
    var = list(data.varying)
    names = [data.names[f] for f in var]
    seed = int(rng.integers(2**31))
    progress(f"MIG: {mig_samples:,} samples, {bins} bins")
    codes, factors = sample_codes(representation, data, mig_samples, rng, batch)
    d = codes.shape[1]
    code_names = list(code_names) if code_names is not None else [f"c{i + 1}" for i in range(d)]
    if len(code_names) != d:
        raise ValueError(f"{len(code_names)} code names for {d} codes")
    m = mig(codes, factors[:, var], bins)
    normalised = m["mi"] / np.where(m["entropy"] > 0, m["entropy"], np.inf)
    progress(f"FactorVAE score: {fvae_train:,} + {fvae_eval:,} votes of {fvae_batch} images")
    fv = factor_vae_score(
        representation,
        data,
        rng,
        batch_size=fvae_batch,
        num_train=fvae_train,
        num_eval=fvae_eval,
        num_variance_estimate=fvae_variance,
        prune_std=prune_std,
    )
    out = {
        "factors": names,
        "codes": code_names,
        "factor_vae": {k: fv[k] for k in ("score", "train_accuracy", "eval_accuracy", "num_active_codes")}
        | {
            "per_factor": dict(zip(names, fv["per_factor"] or [None] * len(names), strict=True)),
            "classifier": {
                c: (None if f is None else data.names[f])
                for c, f in zip(code_names, fv["classifier"] or [None] * d, strict=False)
            },
        },
        "mig": {"score": m["score"], "per_factor": dict(zip(names, _floats(m["per_factor"]), strict=False))},
        "mi_matrix": [_floats(row) for row in m["mi"]],
        "factor_entropy": dict(zip(names, _floats(m["entropy"]), strict=False)),
        "best_factor": {
            c: {
                "factor": names[int(np.argmax(normalised[i]))],
                "mi": float(m["mi"][i, int(np.argmax(normalised[i]))]),
                "normalised_mi": float(normalised[i].max()),
            }
            for i, c in enumerate(code_names)
        },
        "sizes": {
            "mig_samples": mig_samples,
            "bins": bins,
            "fvae_batch": fvae_batch,
            "fvae_train": fvae_train,
            "fvae_eval": fvae_eval,
            "fvae_variance": fvae_variance,
            "prune_std": prune_std,
            "dci_train": dci_train,
            "dci_test": dci_test,
            "sap_train": sap_train,
            "sap_test": sap_test,
        },
    }
    if dci_train:
        dci_train, dci_test = out["sizes"]["dci_train"], out["sizes"]["dci_test"] = held_out_sizes(
            data, dci_train, dci_test
        )
        progress(f"DCI: gradient-boosted trees on {dci_train:,} / {dci_test:,} distinct images")
        (ctr, ftr), (cte, fte) = held_out_codes(representation, data, dci_train, dci_test, rng, batch)
        r = dci(ctr, ftr[:, var], cte, fte[:, var], seed=seed, progress=progress)
        out["dci"] = {
            k: r[k] for k in ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
        } | {"importance": [_floats(x) for x in r["importance"]]}
    if sap_train:
        sap_train, sap_test = out["sizes"]["sap_train"], out["sizes"]["sap_test"] = held_out_sizes(
            data, sap_train, sap_test
        )
        progress(f"SAP: {sap_train:,} / {sap_test:,} distinct images")
        (ctr, ftr), (cte, fte) = held_out_codes(representation, data, sap_train, sap_test, rng, batch)
        r = sap(ctr, ftr[:, var], cte, fte[:, var])
        out["sap"] = {"score": r["score"], "matrix": [_floats(x) for x in r["matrix"]]}
    return out


def sample_sizes() -> set[str]:
    """``disentanglement_metrics``' whole-number keywords (sample counts, bins, batch; not its progress, encode_once or
    prune_std): the keys ``train.metrics_sizes`` may set."""
    import inspect

    return {
        name
        for name, param in inspect.signature(disentanglement_metrics).parameters.items()
        if param.annotation in (int, "int")
    }


def _floats(xs) -> list:
    """JSON has no NaN: None stands for an undefined value (a factor with zero entropy)."""
    return [None if not np.isfinite(x) else float(x) for x in np.asarray(xs, np.float64)]
