"""ONNX export: parity with PyTorch, manifest hashes and spec, category re-ordering, fp16 storage."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from training.export import export_networks, recognizer_output_names, round_to_fp16, sha256_of, write_model_folder
from training.latent import mnist_spec
from training.networks import build_networks


def _nets(seed=0):
    torch.manual_seed(seed)
    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=64, ch=16)
    # non-trivial BN statistics, as after training
    G.train(); D.train()
    with torch.no_grad():
        for _ in range(3):
            D(G(*spec.sample(64)))
    return G.eval(), D.eval(), spec


@pytest.mark.parametrize("fp16", [False, True])
@pytest.mark.parametrize("batch", [1, 64])
def test_onnx_runtime_matches_pytorch(tmp_path, batch, fp16):
    G, D, spec = _nets()
    info = export_networks(G, D, spec, tmp_path, fp16_weights=fp16)  # rounds G, D in place when fp16
    gen = ort.InferenceSession(str(tmp_path / "generator.onnx"), providers=["CPUExecutionProvider"])
    rec = ort.InferenceSession(str(tmp_path / "recognizer.onnx"), providers=["CPUExecutionProvider"])
    z, c = spec.sample(batch, torch.Generator().manual_seed(batch))
    with torch.no_grad():
        want = (G(z, c) + 1) / 2
    got = gen.run(None, {"z": z.numpy(), "c": c.numpy()})[0]
    assert got.shape == (batch, 1, 28, 28)
    assert np.abs(got - want.numpy()).max() <= 1e-4
    images = torch.rand(batch, 1, 28, 28)
    with torch.no_grad():
        d, q = D(images * 2 - 1)
    outs = dict(zip(recognizer_output_names(spec), rec.run(None, {"images": images.numpy()})))
    pred = spec.predict(q)
    assert np.abs(outs["digit.logits"] - pred["digit"]["logits"].numpy()).max() <= 1e-4
    assert np.abs(outs["c1.mean"] - pred["c1"]["mean"].numpy()).max() <= 1e-4
    assert np.abs(outs["c2.std"] - pred["c2"]["std"].numpy()).max() <= 1e-4
    assert np.abs(outs["d_logit"] - d.numpy()).max() <= 1e-4
    assert info["weights"] == ("fp16" if fp16 else "fp32")


def test_fp16_storage_halves_the_files(tmp_path):
    G, D, spec = _nets()
    export_networks(G, D, spec, tmp_path / "a")
    export_networks(G, D, spec, tmp_path / "b", fp16_weights=True)
    a, b = (tmp_path / "a/generator.onnx").stat().st_size, (tmp_path / "b/generator.onnx").stat().st_size
    assert b < 0.6 * a


def test_category_map_reorders_the_exported_code(tmp_path):
    """With category_to_class, exported index j generates what raw category perm[j] generated."""
    G, D, spec = _nets()
    mapping = [3, 0, 1, 2, 4, 5, 6, 7, 9, 8]  # raw category k shows class mapping[k]
    info = export_networks(G, D, spec, tmp_path, {"digit": mapping})
    raw_index = info["spec"]["codes"][0]["raw_index"]
    assert [mapping[r] for r in raw_index] == list(range(10))
    gen = ort.InferenceSession(str(tmp_path / "generator.onnx"), providers=["CPUExecutionProvider"])
    z, _ = spec.sample(1)
    for j in (0, 3, 8):
        c_exported = spec.encode({"digit": torch.tensor([j]), "c1": torch.zeros(1), "c2": torch.zeros(1)})
        c_raw = spec.encode({"digit": torch.tensor([raw_index[j]]), "c1": torch.zeros(1), "c2": torch.zeros(1)})
        got = gen.run(None, {"z": z.numpy(), "c": c_exported.numpy()})[0]
        with torch.no_grad():
            want = ((G(z, c_raw) + 1) / 2).numpy()
        assert np.abs(got - want).max() <= 1e-4


def test_manifest_records_hashes_and_spec(tmp_path):
    G, D, spec = _nets()
    folder = write_model_folder(G, D, spec, tmp_path / "m", model_id="m", title="M", dataset="mnist", light_on_dark=True,
                                provenance={"seed": 3})
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("generator.onnx", "recognizer.onnx"):
        assert manifest["files"][name]["sha256"] == sha256_of(folder / name)
        meta = {p.key: p.value for p in onnx.load(str(folder / name)).metadata_props}
        assert json.loads(meta["infogan_spec"]) == manifest["spec"]
    assert manifest["image"] == {"channels": 1, "height": 28, "width": 28}
    assert manifest["outputs"]["recognizer"] == ["digit.logits", "c1.mean", "c1.std", "c2.mean", "c2.std", "d_logit"]


def test_round_to_fp16_is_idempotent():
    G, _, _ = _nets()
    round_to_fp16(G)
    before = [p.clone() for p in G.parameters()]
    round_to_fp16(G)
    assert all(torch.equal(a, b) for a, b in zip(before, G.parameters()))
