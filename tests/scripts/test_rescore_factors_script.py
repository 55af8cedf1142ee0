"""scripts/rescore_factors.py: a shipped model's disentanglement metrics again from its recognizer.onnx, with the codes
the export's evaluation saw (categories mapped back through category_order), written into its manifest on --write."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spec.manifest import Manifest
from training.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("rescore_factors", ROOT / "scripts" / "rescore_factors.py")
rescore_factors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rescore_factors)

SUBSET = [1, 1, 2, 10, 4, 4]  # 2,304 dSprites images, rendered in memory
SIZES = {
    "mig_samples": 500,
    "bins": 20,
    "fvae_batch": 8,
    "fvae_train": 40,
    "fvae_eval": 20,
    "fvae_variance": 300,
    "prune_std": 0.0,
    "dci_train": 200,
    "dci_test": 100,
    "sap_train": 200,
    "sap_test": 100,
}
ORDER = [2, 0, 1]  # exported index j reads the checkpoint's category ORDER[j]


@pytest.fixture(scope="module")
def sprites():
    return load_dataset("dsprites", "/nonexistent-dsprites-dir", subset=SUBSET)


def tiny_model(folder: Path):
    """A 64x64 model with a categorical code exported in another category order, and a disentanglement block."""
    from training.export import write_model_folder
    from training.latent import Categorical, Continuous, LatentSpec, Noise
    from training.networks import bake_spectral_norm, build_networks

    torch.manual_seed(0)
    spec = LatentSpec(Noise(5, "uniform"), (Categorical("shape", 3), Continuous("c1"), Continuous("c2")))
    G, D = build_networks(spec, arch="dsprites", channels=1, resolution=64, fc=16, ch=4)
    bake_spectral_norm(D)
    block = {"factor_vae": {"score": 0.5}, "mig": {"score": 0.25}, "dci": {"informativeness_test": 0.9}}
    path = write_model_folder(
        G.eval(),
        D.eval(),
        spec,
        folder / "tiny-sprites",
        model_id="tiny-sprites",
        title="Tiny sprites",
        dataset="dsprites",
        drawing="light-on-dark",
        metrics={"disentanglement": {**block, "sizes": SIZES}},
        provenance={"command": "tests", "evaluated_on": "train"},
        category_order={"shape": ORDER},
    )
    return path, D


def test_the_codes_are_those_the_evaluation_saw(tmp_path, sprites):
    """The recognizer's point estimates equal D's (training/evaluate.factor_metrics' representation): the categorical
    code as the checkpoint's category (not the exported index), the continuous codes as the posterior mean."""
    folder, D = tiny_model(tmp_path)
    images = sprites.as_float().numpy()[::97][:24]
    got = rescore_factors.onnx_representation(folder, Manifest.read(folder))(images)
    with torch.no_grad():
        want = D.spec.point_estimates(D(torch.from_numpy(images))[1]).numpy()
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    assert len(set(want[:, 0])) > 1  # the test can tell the orders apart
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=1e-5)


def test_write_replaces_the_block_and_records_the_command(tmp_path, sprites, monkeypatch, capsys):
    from training import data as data_module

    folder, _ = tiny_model(tmp_path)
    monkeypatch.setattr(data_module, "load_dataset", lambda *a, **kw: sprites)
    assert rescore_factors.main([str(folder), "--write"]) == 0
    out = capsys.readouterr().out
    assert "FactorVAE: 0.5000 -> " in out and "MIG: 0.2500 -> " in out and "SAP: - -> " in out
    m = Manifest.read(folder)
    block = m.metrics["disentanglement"]
    assert block["sizes"]["dci_train"] == 200 and block["codes"] == ["shape", "c1", "c2"]
    assert set(block) >= {"factor_vae", "mig", "dci", "sap", "mi_matrix", "best_factor"}
    assert m.provenance["disentanglement_command"] == f"python scripts/rescore_factors.py {folder} --write"
    assert (
        m.provenance["disentanglement_machine"]["cores"] == os.cpu_count()
        and m.provenance["disentanglement_machine"]["cpu"]
    )
    for name in ("generator.onnx", "recognizer.onnx"):
        m.verify_file(folder, name)  # the files the manifest describes are unchanged
    before = json.loads((folder / "manifest.json").read_text())
    assert rescore_factors.main([str(folder)]) == 0  # without --write nothing changes
    assert json.loads((folder / "manifest.json").read_text()) == before


def test_a_block_without_sizes_is_rescored_at_the_default_sizes_and_bad_sizes_refused(tmp_path, monkeypatch, capsys):
    """A manifest that records no sizes gets disentanglement_lib's (the metrics' defaults); sizes that are not the
    metrics' keywords are one line, not a TypeError."""
    from training import disentanglement

    folder, _ = tiny_model(tmp_path)
    m = Manifest.read(folder)
    seen = []
    monkeypatch.setattr(disentanglement, "disentanglement_metrics", lambda *a, **kw: seen.append(kw) or {})
    from training import data as data_module

    monkeypatch.setattr(data_module, "load_dataset", lambda *a, **kw: type("Set", (), {"images": []})())
    del m.metrics["disentanglement"]["sizes"]
    m.write(folder)
    rescore_factors.rescore(folder, None, False, "x")
    assert not set(seen[0]) & set(SIZES)
    m.metrics["disentanglement"]["sizes"] = {"votes": 3}
    m.write(folder)
    with pytest.raises(SystemExit, match="sizes is not a table of sizes"):
        rescore_factors.rescore(folder, None, False, "x")


def test_bad_input_is_one_line(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for args, words in (
        ([str(tmp_path / "no-such-model")], "manifest.json is missing"),
        ([str(plain)], "manifest"),
        ([str(ROOT / "models" / "mnist")], "no disentanglement metrics"),
        ([str(ROOT / "models" / "mnist"), "--data-dir", ""], "--data-dir"),
    ):
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "rescore_factors.py"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        text = out.stdout + out.stderr
        assert "Traceback" not in text and words in text, (args, text)
        if words != "no disentanglement metrics":
            assert out.returncode != 0 and "error:" in out.stderr.strip().splitlines()[-1], (args, out.stderr)
