"""The models shipped under models/: each folder within the size budget, its files matching the manifest's hashes,
loadable by the service, its provenance complete, and its recorded accuracy reproduced by the ONNX recognizer on
the real test split (where the data set is present), the 3D chairs models' FactorVAE score and MIG too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from spec.manifest import MANIFEST_FILE, RECOGNIZER_FILE, RECOGNIZER_INPUT, Manifest
from training.export import factor_labels

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SIZE_BUDGET_BYTES = 16 * 1000 * 1000  # issue: export, "each model folder <= 16 MB on disk"
FOLDERS = sorted(p for p in (ROOT / "models").glob("*") if (p / MANIFEST_FILE).is_file())
DATA_DIRS = {"mnist": SHARED / "mnist", "fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
# models with a categorical code, whose recorded unsupervised accuracy the recognizer must reproduce (dSprites' codes
# are all continuous, InfoGAN-CR's setting: its figures are the disentanglement metrics checked below)
CATEGORICAL = [p for p in FOLDERS if Manifest.read(p).latent().categorical_codes()]


def test_models_are_shipped():
    assert {p.name for p in FOLDERS} >= {
        "mnist",
        "mnist-gan",
        "fashion-mnist",
        "chairs3d",
        "chairs3d-infogan",
        "dsprites",
        "dsprites-infogan",
    }
    assert {p.name for p in CATEGORICAL} >= {"mnist", "mnist-gan", "fashion-mnist", "chairs3d", "chairs3d-infogan"}


def test_models_of_sets_with_factors_carry_the_metrics_and_name_codes_after_factors():
    """A model of a set with ground-truth factors (the rendered chairs) ships its FactorVAE score, MIG and code x
    factor MI matrix, and each continuous code is named after the factor it matches (export's factor labels)."""
    factor_models = [p for p in FOLDERS if Manifest.read(p).dataset in ("chairs3d", "dsprites")]
    assert factor_models
    for folder in factor_models:
        m = Manifest.read(folder)
        dis = m.metrics["disentanglement"]
        assert 0 <= dis["factor_vae"]["score"] <= 1 and 0 <= dis["mig"]["score"] <= 1
        assert len(dis["mi_matrix"]) == len(m.latent().codes) and len(dis["mi_matrix"][0]) == len(dis["factors"])
        # the export's names: the best factor, or the best of those a categorical code does not claim
        names = factor_labels(m.latent(), m.metrics)
        for code in m.latent().continuous_codes():
            assert code.label == names[code.name], (folder.name, code.name)


def test_shipped_baselines_and_drawings():
    """The MNIST model and its lambda = 0 baseline are shown side by side; each model draws as its data set does
    (digits and clothes light on dark, the rendered chairs dark on white: the page's canvas and the upload
    inversion follow it)."""
    from training.data import dataset_info

    manifests = {p.name: Manifest.read(p) for p in FOLDERS}
    for model, baseline in [("mnist", "mnist-gan"), ("chairs3d", "chairs3d-infogan"), ("dsprites", "dsprites-infogan")]:
        assert manifests[model].compare_with == baseline and manifests[baseline].compare_with == model
    assert manifests["fashion-mnist"].compare_with is None
    assert {m.drawing for m in manifests.values()} >= {"light-on-dark"}
    for name, m in manifests.items():
        assert m.drawing == dataset_info(m.dataset).drawing, name


def test_order_file_opens_on_mnist_and_names_only_shipped_folders():
    """models/order.json picks the default model (the page opens on it); without it "fashion-mnist" sorts first."""
    from backend.core.config import Settings
    from backend.core.metrics import Metrics
    from backend.core.registry import Registry

    order = json.loads((ROOT / "models" / "order.json").read_text())
    assert order[0] == "mnist" and set(order) <= {p.name for p in FOLDERS}
    registry = Registry(Settings(models_dir=ROOT / "models", device="cpu"), Metrics())
    assert [p.name for p in registry.folders()][: len(order)] == order and registry.errors == {}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_folder_fits_the_budget_and_matches_its_manifest(folder: Path):
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= SIZE_BUDGET_BYTES, f"{folder.name}: {size / 1e6:.1f} MB"
    m = Manifest.read(folder)
    for name, entry in m.files.items():
        m.verify_file(folder, name)
        assert (folder / name).stat().st_size == entry.bytes, name
    prov = m.provenance
    assert prov["command"].startswith("infogan export") and prov["config"]["train"]["seed"] == prov["seed"]
    assert m.dataset and m.metrics


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_service_loads_the_model(folder: Path):
    from backend.core.config import Settings
    from backend.core.metrics import Metrics
    from backend.core.registry import load_model
    from benchmarks.export_latency import latent_batch

    model = load_model(folder, device="cpu", settings=Settings(ort_threads=1, batch_wait_ms=0), metrics=Metrics())
    feed = latent_batch(model.spec, 2, np.random.default_rng(0))
    assert model.spec.codes and model.generate(*feed.values()).shape[0] == 2


@pytest.fixture(scope="module")
def chairs_dir(tmp_path_factory) -> Path:
    """The 3D chairs rendered once (~15 s on 2 cores) into a temporary folder, as its loader does."""
    from training.data import load_dataset

    path = tmp_path_factory.mktemp("chairs3d")
    load_dataset("chairs3d", path, allow_download=True)
    return path


@pytest.mark.parametrize("folder", CATEGORICAL, ids=lambda p: p.name)
def test_recorded_accuracy_is_what_the_recognizer_does(folder: Path, request):
    """Exported category j is class j (the export re-orders by the evaluation's map), so plain argmax accuracy of
    recognizer.onnx on the test split must equal the manifest's Hungarian accuracy."""
    from training.data import load_dataset

    m = Manifest.read(folder)
    if m.dataset == "chairs3d":
        data_dir = request.getfixturevalue("chairs_dir")
    else:
        data_dir = DATA_DIRS.get(m.dataset)
    if data_dir is None or not data_dir.is_dir():
        # Fashion-MNIST: `.ci/run` installs it (apt); MNIST: the workspace's shared copy (../shared/data/mnist), no
        # package has it and tests never download
        pytest.skip(f"{m.dataset} test split not present here ({data_dir})")
    cat = m.latent().categorical_codes()[0]
    (logits_name,) = cat.output_names()
    # the split the export evaluated on: "test", or chairs3d's one split
    split = m.provenance.get("evaluated_on", "test")
    # allow_download renders the chairs (no network); the downloadable sets must be present
    test = load_dataset(m.dataset, data_dir, split, allow_download=m.dataset == "chairs3d")
    images = test.as_float().numpy() * 0.5 + 0.5  # [-1, 1] -> the recognizer's [0, 1]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    rec = ort.InferenceSession(str(folder / RECOGNIZER_FILE), so, providers=["CPUExecutionProvider"])
    logits = np.concatenate(
        [rec.run([logits_name], {RECOGNIZER_INPUT: images[i : i + 1000]})[0] for i in range(0, len(images), 1000)]
    )
    accuracy = float((logits.argmax(1) == test.labels.numpy()).mean())
    assert accuracy == pytest.approx(m.metrics[cat.name]["accuracy"], abs=2e-3)


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_every_continuous_code_is_named_from_what_it_measurably_does(folder: Path):
    """Every continuous code of a shipped model has a label (issue 24), and the manifest holds the measurement it was
    named from (``metrics.code_effects``: the image statistics the code moves, training/code_effects.py)."""
    m = Manifest.read(folder)
    codes = m.latent().continuous_codes()
    unlabelled = [c.name for c in codes if not (c.label or "").strip()]
    assert not unlabelled, f"{folder.name}: unlabelled continuous codes {unlabelled}"
    effects = m.metrics.get("code_effects", {})
    assert set(effects) == {c.name for c in codes}
    for e in effects.values():
        assert e["strongest"] in e["statistics"] and len(e["values"]) >= 2


def test_shipped_mnist_meets_the_accuracy_bar():
    """The training issue's bar for the model we ship: >= 97 % unsupervised test accuracy (the paper: 95 %). The
    figure is the manifest's, which test_recorded_accuracy_is_what_the_recognizer_does reproduces from the ONNX file."""
    m = Manifest.read(ROOT / "models" / "mnist").metrics
    assert m["digit"]["accuracy"] >= 0.97
    assert m["info"]["digit"]["L_I"] >= 2.2  # nats, against H(c) = ln 10 = 2.303


def test_shipped_fashion_mnist_meets_the_bar_with_ten_distinct_classes():
    """Issue 24's bar for the shipped Fashion-MNIST model: >= 0.70 unsupervised test accuracy (InfoGAN ~0.61,
    ClusterGAN 0.63, N2D 0.67), and every category *draws* a class of its own, by the independent classifier on 500
    generated images per category (class_check), the same class Q maps that category to on real images."""
    m = Manifest.read(ROOT / "models" / "fashion-mnist")
    assert m.metrics["item"]["accuracy"] >= 0.70
    drawn = m.metrics["generated_classes"]["codes"]["item"]
    assert drawn["distinct"] and drawn["classes_shown"] == 10 and sorted(drawn["class_of_category"]) == list(range(10))
    assert drawn["agrees_with_q"] == [1] * 10
    assert m.metrics["generated_classes"]["classifier_test_accuracy"] >= 0.9


CHAIRS = [p for p in FOLDERS if Manifest.read(p).dataset == "chairs3d"]


@pytest.mark.parametrize("folder", CHAIRS, ids=lambda p: p.name)
def test_recorded_factor_vae_and_mig_are_what_the_recognizer_does(folder: Path, chairs_dir):
    """The manifest's FactorVAE score and MIG, at the recorded sizes and seed, from the shipped recognizer.onnx on the
    16,000 rendered chairs (scripts/rescore_factors.py's reading: categories mapped back through category_order), to
    the last digit; DCI and SAP (a minute of trees each) are left out, which leaves these draws unchanged."""
    import importlib.util

    from training.data import load_dataset
    from training.disentanglement import disentanglement_metrics

    spec = importlib.util.spec_from_file_location("rescore_factors", ROOT / "scripts" / "rescore_factors.py")
    rescore = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rescore)
    m = Manifest.read(folder)
    recorded = m.metrics["disentanglement"]
    data = load_dataset("chairs3d", chairs_dir, m.provenance.get("evaluated_on", "train"), allow_download=False)
    got = disentanglement_metrics(
        rescore.onnx_representation(folder, m),
        data,
        np.random.default_rng(0),
        code_names=[c.name for c in m.latent().codes],
        **{**recorded["sizes"], "dci_train": 0, "sap_train": 0},
    )
    assert got["factor_vae"]["score"] == recorded["factor_vae"]["score"]
    assert got["mig"]["score"] == pytest.approx(recorded["mig"]["score"], abs=1e-9)
    assert got["best_factor"] == recorded["best_factor"]


def test_shipped_dsprites_meets_the_disentanglement_bar_at_full_size():
    """Issue 20's bar for the shipped InfoGAN-CR model: FactorVAE >= 0.88 and MIG >= 0.35 (InfoGAN-CR's level), measured
    on the whole rendered set at disentanglement_lib's sizes (10,000 train / 5,000 eval votes of batch 64, 10,000 MIG
    samples in 20 bins), with a code per varying factor; its baseline carries the same figures, at the same sizes."""
    full = {"mig_samples": 10_000, "bins": 20, "fvae_batch": 64, "fvae_train": 10_000, "fvae_eval": 5_000}
    for model in ("dsprites", "dsprites-infogan"):
        dis = Manifest.read(ROOT / "models" / model).metrics["disentanglement"]
        assert {k: dis["sizes"][k] for k in full} == full, model
        assert dis["factors"] == ["shape", "scale", "orientation", "posX", "posY"], model
    dis = Manifest.read(ROOT / "models" / "dsprites").metrics["disentanglement"]
    assert dis["factor_vae"]["score"] >= 0.88 and dis["mig"]["score"] >= 0.35
    best = {v["factor"] for v in dis["best_factor"].values()}
    assert best == set(dis["factors"])  # five codes, five factors: each its own code


def test_readme_images_exist_and_every_model_has_its_traversals():
    """The README's figures are files in the repository, and every shipped model has one traversal PNG per code
    under docs/ (``scripts/make_docs_figures.py``: docs/<paper figure>-<model>-<code>.png)."""
    import re

    links = re.findall(r"\]\((docs/[^)\s]+\.png)\)", (ROOT / "README.md").read_text())
    assert links and [link for link in links if not (ROOT / link).is_file()] == []
    for folder in FOLDERS:
        for code in Manifest.read(folder).latent().codes:
            assert list((ROOT / "docs").glob(f"fig*-{folder.name}-{code.name}.png")), (folder.name, code.name)
