"""ONNX export: parity with PyTorch, manifest hashes and spec, category re-ordering, fp16 and int8 storage."""

import contextlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from spec.manifest import GENERATOR_FILE, RECOGNIZER_FILE, Manifest, sha256_of
from training import int8_matmul, machine, onnx_graphs
from training.export import ExportError, category_order, parse_code_labels, write_model_folder
from training.int8_matmul import MAX_ROWS, add_int8_matmul
from training.latent import LatentSpec, mnist_spec
from training.networks import bake_spectral_norm, build_networks
from training.onnx_graphs import export_networks, read_spec_metadata
from training.weight_storage import WeightFormatError, int8_grid, round_to_fp16, round_weights, store_weights


def _nets(seed=0, noise_scale=1.0):
    torch.manual_seed(seed)
    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=64, ch=16, noise_scale=noise_scale)
    # non-trivial BN statistics, as after training
    G.train()
    D.train()
    with torch.no_grad():
        for _ in range(3):
            D(G(*spec.sample(64)))
    return G.eval(), D.eval(), spec


@pytest.mark.parametrize("weights,noise_scale", [("fp32", 1.0), ("fp16", 1.0), ("int8", 1.0), ("fp32", 0.1)])
@pytest.mark.parametrize("batch", [1, 64])
def test_onnx_runtime_matches_pytorch(tmp_path, monkeypatch, batch, weights, noise_scale):
    monkeypatch.setattr(int8_matmul, "MIN_ELEMENTS", 10_000)  # int8: batch 1 takes the integer path of both networks
    G, D, spec = _nets(noise_scale=noise_scale)
    image = export_networks(G, D, spec, tmp_path, weights=weights)  # rounds G, D in place to the stored grid
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
    assert [o.name for o in rec.get_outputs()] == spec.output_names()
    outs = dict(zip(spec.output_names(), rec.run(None, {"images": images.numpy()}), strict=False))
    pred = spec.predict(q)
    assert np.abs(outs["digit.logits"] - pred["digit"]["logits"].numpy()).max() <= 1e-4
    assert np.abs(outs["c1.mean"] - pred["c1"]["mean"].numpy()).max() <= 1e-4
    assert np.abs(outs["c2.std"] - pred["c2"]["std"].numpy()).max() <= 1e-4
    assert np.abs(outs["d_logit"] - d.numpy()).max() <= 1e-4
    assert image == {"channels": 1, "height": 28, "width": 28}


def test_compact_storage_shrinks_the_files(tmp_path):
    G, D, spec = _nets()
    sizes = {}
    for w in ("fp32", "fp16", "int8"):
        export_networks(G, D, spec, tmp_path / w, weights=w)
        sizes[w] = sum((tmp_path / w / f).stat().st_size for f in ("generator.onnx", "recognizer.onnx"))
    assert sizes["fp16"] < 0.6 * sizes["fp32"]
    assert sizes["int8"] < 0.7 * sizes["fp16"]  # FC layers dominate even this small net
    kinds = {i.data_type for i in onnx.load(str(tmp_path / "int8" / "recognizer.onnx")).graph.initializer}
    assert onnx.TensorProto.INT8 in kinds


def test_int8_grid_is_per_row_and_close():
    w = torch.randn(64, 300) * torch.linspace(0.01, 1.0, 64)[:, None]  # rows of very different ranges
    q, scale = int8_grid(w)
    assert q.dtype == torch.int8 and scale.shape == (64, 1) and q.abs().max() == 127
    err = (q.float() * scale - w).abs().amax(dim=1)
    assert torch.all(err <= scale[:, 0] / 2 + 1e-7)  # at most half a step of each row's own scale


def test_round_weights_rejects_unknown_formats():
    G, _, _ = _nets()
    with pytest.raises(WeightFormatError, match="int4"):
        round_weights(G, "int4")


@pytest.mark.parametrize("weights,style_map", [("fp32", 0), ("fp16", 0), ("int8", 0), ("fp32", 1)])
def test_style_late_generator_exports_to_the_same_function(tmp_path, weights, style_map):
    """The chairs' generator whose style enters only through its norms (``style_late``) goes through the same
    export: ONNX Runtime computes what the rounded PyTorch networks compute, for every style."""
    from training.config import load_config

    torch.manual_seed(0)
    spec = load_config("chairs3d").spec
    G, D = build_networks(spec, arch="dsprites", channels=1, resolution=64, style_late=1, style_map=style_map)
    with torch.no_grad():
        for norm in G.body.norms:  # styles that differ, as after training
            norm.gain.normal_(0, 0.3)
            norm.shift.normal_(0, 0.3)
        for _ in range(3):
            D(G(*spec.sample(64)))
    G.eval()
    D.eval()
    bake_spectral_norm(D)  # as checkpoint.load_networks does before an export
    export_networks(G, D, spec, tmp_path, weights=weights)
    gen = ort.InferenceSession(str(tmp_path / "generator.onnx"), providers=["CPUExecutionProvider"])
    z, c = spec.sample(8, torch.Generator().manual_seed(1))
    c[:, :4] = torch.eye(4).repeat(2, 1)
    with torch.no_grad():
        want = ((G(z, c) + 1) / 2).numpy()
    got = gen.run(None, {"z": z.numpy(), "c": c.numpy()})[0]
    assert got.shape == (8, 1, 64, 64) and np.abs(got - want).max() <= 1e-4


def test_category_map_reorders_the_exported_code(tmp_path):
    """With category_to_class, the manifest's category_order makes exported index j generate class j (what raw
    category order[j] generated), and the recognizer reads class j's images as index j."""
    G, D, spec = _nets()
    mapping = [3, 0, 1, 2, 4, 5, 6, 7, 9, 8]  # raw category k shows class mapping[k]
    folder = write_model_folder(
        G,
        D,
        spec,
        tmp_path / "m",
        model_id="m",
        title="M",
        dataset="mnist",
        drawing="light-on-dark",
        category_order=category_order(spec, {"digit": mapping}),
    )
    manifest = Manifest.read(folder)
    raw_index = manifest.category_order["digit"]
    assert [mapping[r] for r in raw_index] == list(range(10))
    assert "raw_index" not in str(manifest.spec)  # the order is the manifest's, not the spec's
    gen = ort.InferenceSession(str(folder / GENERATOR_FILE), providers=["CPUExecutionProvider"])
    rec = ort.InferenceSession(str(folder / RECOGNIZER_FILE), providers=["CPUExecutionProvider"])
    z, _ = spec.sample(1)
    for j in (0, 3, 8):
        c_exported = spec.encode({"digit": torch.tensor([j]), "c1": torch.zeros(1), "c2": torch.zeros(1)})
        c_raw = spec.encode({"digit": torch.tensor([raw_index[j]]), "c1": torch.zeros(1), "c2": torch.zeros(1)})
        got = gen.run(None, {"z": z.numpy(), "c": c_exported.numpy()})[0]
        with torch.no_grad():
            want = ((G(z, c_raw) + 1) / 2).numpy()
            logits = spec.predict(D(torch.from_numpy(got) * 2 - 1)[1])["digit"]["logits"]
        assert np.abs(got - want).max() <= 1e-4
        exported_logits = rec.run(["digit.logits"], {"images": got})[0]
        assert np.abs(exported_logits - logits[:, raw_index].numpy()).max() <= 1e-4


def test_category_order_keeps_codes_without_a_one_to_one_map():
    spec = mnist_spec()
    assert category_order(spec, None) == {"digit": list(range(10))}
    assert category_order(spec, {"digit": [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]}) == {"digit": list(range(10))}
    assert category_order(spec, {"digit": [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]}) == {"digit": list(range(9, -1, -1))}


def test_manifest_records_hashes_and_spec(tmp_path):
    """The folder reads back as a version-2 Manifest: hashes of both files, the spec equal to both files' metadata
    (and readable by LatentSpec.from_dict as it is), the image shape, drawing and baseline as given."""
    G, D, spec = _nets()
    spec = spec.with_text("c1", label="slant")
    folder = write_model_folder(
        G,
        D,
        spec,
        tmp_path / "m",
        model_id="m",
        title="M",
        dataset="mnist",
        drawing="light-on-dark",
        compare_with="m-gan",
        provenance={"seed": 3},
        weights="fp16",
    )
    manifest = Manifest.read(folder)
    for name in (GENERATOR_FILE, RECOGNIZER_FILE):
        assert manifest.files[name].sha256 == sha256_of(folder / name)
        manifest.verify_file(folder, name)
        assert read_spec_metadata(folder / name) == manifest.spec
    assert manifest.latent(LatentSpec) == spec
    assert manifest.image.chw() == (1, 28, 28)
    assert (manifest.drawing, manifest.compare_with, manifest.weights) == ("light-on-dark", "m-gan", "fp16")
    assert manifest.category_order == {} and manifest.provenance == {"seed": 3}


def test_round_to_fp16_rounds_every_tensor_once():
    """Every floating parameter and buffer ends on the fp16 grid (what the ONNX file stores; the exports' 1e-4
    tolerance cannot tell a skipped rounding), at least one moved, and a second rounding changes nothing."""
    G, _, _ = _nets()
    original = [t.clone() for t in [*G.parameters(), *G.buffers()]]
    round_to_fp16(G)
    rounded = [t.clone() for t in [*G.parameters(), *G.buffers()]]
    assert all(
        torch.equal(r, o.half().float()) if o.is_floating_point() else torch.equal(r, o)
        for r, o in zip(rounded, original, strict=True)
    )
    assert any(not torch.equal(r, o) for r, o in zip(rounded, original, strict=True))
    round_to_fp16(G)
    assert all(torch.equal(a, b) for a, b in zip(rounded, [*G.parameters(), *G.buffers()], strict=True))


def _fc_graph(w: np.ndarray, bias: np.ndarray, act: str):
    """act -> Gemm(W) as the exporter writes it: W stored on the int8 grid, then the integer path added."""
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node(act, ["x"], ["h"]), helper.make_node("Gemm", ["h", "W", "b"], ["y"], transB=1)],
        "fc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", w.shape[1]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w.shape[0]])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    store_weights(model, "int8")
    rewritten = add_int8_matmul(model, min_elements=0)
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]), rewritten


@pytest.mark.parametrize("act", ["Relu", "Identity"])  # digits of x, and of relu(x) and relu(-x)
def test_int8_matmul_is_exact_to_fp32_rounding_on_both_sides_of_the_threshold(act):
    """Rows <= MAX_ROWS go through the base-128 digit / MatMulInteger path, larger batches through the fp32 Gemm:
    both must agree with an fp64 product of the stored weights to a few fp32 ulps of the terms' size, including
    rows with a huge dynamic range, an all-zero row and a single non-zero value."""
    rng = np.random.default_rng(0)
    q, scale = int8_grid(torch.randn(300, 1024) * torch.linspace(0.01, 1.0, 300)[:, None])
    w = (q.float() * scale).numpy()
    bias = rng.standard_normal(300).astype(np.float32)
    sess, rewritten = _fc_graph(w, bias, act)
    assert rewritten == ["W"]
    x = (rng.standard_normal((9, 1024)) * np.array([1e-6, 1e-3, 1, 10, 1e3, 1, 1, 1, 1])[:, None]).astype(np.float32)
    x[2, :512] *= 1e4  # one row spanning 4 decades
    x[3] = 0.0
    x[4] = -1e-3
    x[4, 7] = 3.0  # one large value among small (after a Relu: the only non-zero one)
    x[5] = -np.abs(x[5])  # no positive part
    h = (np.maximum(x, 0) if act == "Relu" else x).astype(np.float64)
    want = h @ w.astype(np.float64).T + bias
    tol = 1e-6 * (np.abs(h) @ np.abs(w.astype(np.float64)).T + np.abs(bias))  # a few fp32 ulps of the terms' size
    batched = sess.run(None, {"x": x})[0]  # 9 rows > MAX_ROWS: fp32 Gemm
    assert np.all(np.abs(batched - want) <= tol)
    for i in range(len(x)):
        one = sess.run(None, {"x": x[i : i + 1]})[0][0]  # integer path
        assert np.all(np.abs(one - want[i]) <= tol[i]), i
    small = sess.run(None, {"x": x[:MAX_ROWS]})[0]
    assert np.all(np.abs(small - want[:MAX_ROWS]) <= tol[:MAX_ROWS])


def test_export_adds_the_int8_matmul_to_the_large_fc_layers(tmp_path, monkeypatch):
    """Only int8 files, and only FC layers of at least MIN_ELEMENTS weights: here (threshold lowered for the small
    test nets) G's 64 -> 1568 layer and D's 1568 -> 64, not G's 74 -> 64 nor Q's head."""
    monkeypatch.setattr(int8_matmul, "MIN_ELEMENTS", 10_000)
    G, D, spec = _nets()
    export_networks(G, D, spec, tmp_path / "int8", weights="int8")
    export_networks(G, D, spec, tmp_path / "fp16", weights="fp16")

    def ifs(path):
        return [n for n in onnx.load(str(path)).graph.node if n.op_type == "If"]

    for name in ("generator.onnx", "recognizer.onnx"):
        (node,) = ifs(tmp_path / "int8" / name)
        assert len(int8_matmul.rewritten_layers(onnx.load(str(tmp_path / "int8" / name)))) == 1
        branch_ops = {b.name: [m.op_type for m in b.g.node] for b in node.attribute}
        assert "MatMulInteger" in branch_ops["then_branch"] and branch_ops["else_branch"] == ["Gemm"]
        assert ("Split" in branch_ops["then_branch"]) == (name == "recognizer.onnx")  # LeakyReLU input: signed
        assert not ifs(tmp_path / "fp16" / name)


def test_code_labels_are_checked_before_the_evaluation():
    spec = mnist_spec()
    assert parse_code_labels(spec, ["c1=width", "c2=slant = tilt"]) == {"c1": "width", "c2": "slant = tilt"}
    for item, words in (
        ("c9=foo", "unknown code 'c9'"),
        ("digit=foo", "is categorical"),
        ("width", "must look like CODE=LABEL"),
    ):
        with pytest.raises(ExportError, match=words):
            parse_code_labels(spec, [item])


def test_export_replaces_a_model_folder_whole_or_not_at_all(tmp_path, monkeypatch):
    """A re-export that fails half-way (here: the recognizer's ONNX export) leaves the old folder exactly as it
    was; one that succeeds replaces it. Neither leaves a hidden temporary folder behind."""
    G, D, spec = _nets()
    kw = dict(model_id="m", title="m", dataset="mnist", drawing="light-on-dark")
    folder = write_model_folder(G, D, spec, tmp_path / "m", **kw)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert oct(folder.stat().st_mode & 0o777) != oct(0o700)  # readable by a service running as another user

    real = onnx_graphs.onnx_export

    def fail_on_recognizer(module, args, path, *rest, **kwargs):
        if Path(path).name == "recognizer.onnx":
            raise RuntimeError("killed")
        return real(module, args, path, *rest, **kwargs)

    monkeypatch.setattr(onnx_graphs, "onnx_export", fail_on_recognizer)
    G2, D2, _ = _nets(seed=1)
    with pytest.raises(RuntimeError, match="killed"):
        write_model_folder(G2, D2, spec, tmp_path / "m", **kw)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    monkeypatch.setattr(onnx_graphs, "onnx_export", real)
    write_model_folder(G2, D2, spec, tmp_path / "m", **kw)
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(after) == set(before) and after["generator.onnx"] != before["generator.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


class Killed(Exception):
    """Stands for a kill -9 at that point: no later line of the export runs (its clean-up aside)."""


def test_a_kill_while_a_re_export_swaps_the_folders_leaves_a_whole_model(tmp_path, monkeypatch):
    """Replacing models/<id>/ took two renames (the old folder aside, then the new one in): a kill between them left
    no model folder at all, the served model gone under a hidden name that nothing read or put back. Here every
    rename after the first is killed: the folder still holds a whole model, the new one (swapped in one step)."""
    import os

    G, D, spec = _nets()
    kw = dict(model_id="m", title="m", dataset="mnist", drawing="light-on-dark")
    folder = write_model_folder(G, D, spec, tmp_path / "m", **kw)
    before = (folder / GENERATOR_FILE).read_bytes()
    real_rename, renames = os.rename, []

    def killed_after_the_first(src, dst, *args, **kwargs):
        renames.append(dst)
        if len(renames) > 1:
            raise Killed
        real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", killed_after_the_first)
    G2, D2, _ = _nets(seed=1)
    with contextlib.suppress(Killed):  # two renames were killed at the second; a swap in one step is not
        write_model_folder(G2, D2, spec, tmp_path / "m", **kw)
    monkeypatch.setattr(os, "rename", real_rename)
    assert folder.is_dir(), sorted(p.name for p in tmp_path.iterdir())
    manifest = Manifest.read(folder)
    for name in (GENERATOR_FILE, RECOGNIZER_FILE):
        manifest.verify_file(folder, name)  # sha256 as the manifest says: the files of one export
    assert (folder / GENERATOR_FILE).read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # the old model deleted, no hidden folder left


def test_export_command_writes_drawing_baseline_and_category_order(
    fake_mnist_dir, tmp_path, monkeypatch, save_mnist_checkpoint
):
    """`infogan export --compare-with`: the manifest's drawing comes from the data set's definition (MNIST: light
    on dark), its baseline from the option, every categorical code has a category_order (a permutation) and the
    class names label the categories when the evaluation mapped them one-to-one; a split the data set lacks stops
    the export instead of evaluating training images."""
    from training import checkpoint as ckpt_io
    from training.cli import main
    from training.data import DATASETS, DataSetInfo

    G, D, spec = _nets()
    ck = save_mnist_checkpoint(tmp_path / "checkpoint.pt", G, D, spec, fake_mnist_dir, fc=64, ch=16, step=7, seed=5)
    from training import evaluate

    calibrations = []
    real_recalibrate = evaluate.recalibrate_batchnorm
    monkeypatch.setattr(
        evaluate, "recalibrate_batchnorm", lambda *a, **k: calibrations.append(1) or real_recalibrate(*a, **k)
    )
    with pytest.raises(SystemExit) as done:
        main(
            [
                "export",
                str(ck),
                "--id",
                "m",
                "--models-dir",
                str(tmp_path / "models"),
                "--compare-with",
                "m-gan",
                "--label",
                "c1=slant",
            ]
        )
    assert done.value.code == 0
    assert calibrations == [1]  # the recognizer's calibration serves the evaluation too
    manifest = Manifest.read(tmp_path / "models" / "m")
    assert (manifest.drawing, manifest.compare_with, manifest.dataset) == ("light-on-dark", "m-gan", "mnist")
    assert sorted(manifest.category_order["digit"]) == list(range(10)) and set(manifest.category_order) == {"digit"}
    exported = manifest.latent(LatentSpec)
    assert exported.code("c1").label == "slant" and exported.code("digit").labels == tuple(str(i) for i in range(10))
    assert manifest.provenance["evaluated_on"] == "test" and manifest.provenance["step"] == 7
    assert manifest.provenance["generator"] == "trained"  # no G_ema in this checkpoint
    # a checkpoint with a moving average of G ships that, not the trained G
    assert manifest.provenance["init_from"] is None  # trained from scratch
    # the machine of each training command and of the export that measured the figures
    assert manifest.provenance["machines"] == []  # a hand-made checkpoint, no training command recorded
    assert manifest.provenance["exported_on"] == machine.describe()
    saved = ckpt_io.load(ck)
    saved["G_ema"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in saved["G"].items()}
    saved["init_from"] = {"checkpoint": "runs/a/checkpoint.pt", "step": 40, "command": "infogan train mnist"}
    saved["machines"] = [{"cpu": "AMD EPYC", "cores": 2, "device": "cpu", "torch": "2.13.0"}]
    ckpt_io.save_atomic(saved, ck)
    with pytest.raises(SystemExit) as done:
        main(["export", str(ck), "--id", "m-ema", "--models-dir", str(tmp_path / "models")])
    assert done.value.code == 0
    ema_manifest = Manifest.read(tmp_path / "models" / "m-ema")
    assert ema_manifest.provenance["generator"] == "ema"
    assert ema_manifest.provenance["init_from"]["step"] == 40  # the run it was fine-tuned from
    assert ema_manifest.provenance["machines"] == saved["machines"]  # each training command's machine, as saved
    assert ema_manifest.metrics["code_effects"] != manifest.metrics["code_effects"]
    assert manifest.metrics["digit"]["category_to_class"] is not None
    # what each continuous code moves, the evidence behind its label
    assert set(manifest.metrics["code_effects"]) == {"c1", "c2"}
    assert manifest.metrics["code_effects"]["c1"]["strongest"] in manifest.metrics["code_effects"]["c1"]["statistics"]

    # the drawing follows the data set's definition, not its name
    monkeypatch.setitem(DATASETS, "mnist", DataSetInfo("mnist", "dark-on-light", ("train", "test"), labelled=True))
    with pytest.raises(SystemExit):
        main(["export", str(ck), "--id", "m2", "--models-dir", str(tmp_path / "models")])
    assert Manifest.read(tmp_path / "models" / "m2").drawing == "dark-on-light"
    monkeypatch.setitem(DATASETS, "mnist", DataSetInfo("mnist", "light-on-dark", ("train",), labelled=True))
    with pytest.raises(SystemExit) as done:
        main(["export", str(ck), "--id", "m3", "--models-dir", str(tmp_path / "models")])
    assert done.value.code == 1 and not (tmp_path / "models" / "m3").exists()


def test_factor_labels_name_each_continuous_code_by_the_factor_it_matches():
    """Codes take the name of their best-matching ground-truth factor; a factor several codes match names the
    strongest one, the others are numbered (no two sliders share a name); categorical codes and data sets without
    factors get nothing, and an explicit --label wins at export (a dict merge, checked in export_checkpoint)."""
    from training.export import factor_labels

    spec = LatentSpec.from_dict(
        {
            "noise": {"name": "z", "dim": 2},
            "codes": [
                {"name": "style", "type": "categorical", "categories": 4},
                *({"name": f"c{i}", "type": "continuous"} for i in range(1, 5)),
            ],
        }
    )

    def best(factor, nmi):
        return {"factor": factor, "mi": nmi, "normalised_mi": nmi}

    evaluation = {
        "disentanglement": {
            "best_factor": {
                "style": best("style", 0.9),
                "c1": best("width", 0.2),
                "c2": best("azimuth", 0.5),
                "c3": best("width", 0.4),
                "c4": best("width", 0.1),
            }
        }
    }
    assert factor_labels(spec, evaluation) == {"c1": "width 2", "c2": "azimuth", "c3": "width", "c4": "width 3"}
    assert factor_labels(spec, {}) == {} and factor_labels(spec, {"disentanglement": {}}) == {}
    for name, text in factor_labels(spec, evaluation).items():  # every label is one the spec accepts
        spec = spec.with_text(name, label=text)
    assert [c.label for c in spec.continuous_codes()] == ["width 2", "azimuth", "width", "width 3"]


def test_factor_labels_leave_a_categorical_codes_factor_to_it():
    """A continuous code whose best factor is the one the categorical code matches (the chairs' style) is named after
    the best of the other factors, from the MI matrix (normalised by each factor's entropy); without the matrix the
    plain best factor stays."""
    from training.export import factor_labels

    spec = LatentSpec.from_dict(
        {
            "noise": {"name": "z", "dim": 2},
            "codes": [
                {"name": "style", "type": "categorical", "categories": 4},
                {"name": "c1", "type": "continuous"},
                {"name": "c2", "type": "continuous"},
            ],
        }
    )
    factors, entropy = ["style", "light", "width"], {"style": 1.386, "light": 1.609, "width": 1.609}
    mi = [[1.386, 0.001, 0.001], [0.095, 0.073, 0.021], [0.038, 0.029, 0.586]]  # rows: style, c1, c2

    def evaluation(style_best: str, matrix: bool = True) -> dict:
        dis = {
            "best_factor": {
                "style": {"factor": style_best, "mi": 1.386, "normalised_mi": 1.0},
                "c1": {"factor": "style", "mi": 0.095, "normalised_mi": 0.095 / 1.386},
                "c2": {"factor": "width", "mi": 0.586, "normalised_mi": 0.586 / 1.609},
            }
        }
        if matrix:
            dis.update(mi_matrix=mi, factors=factors, codes=["style", "c1", "c2"], factor_entropy=entropy)
        return {"disentanglement": dis}

    assert factor_labels(spec, evaluation("style")) == {"c1": "light", "c2": "width"}
    assert factor_labels(spec, evaluation("style", matrix=False)) == {"c1": "style", "c2": "width"}
    # the categorical code matching another factor claims that one: c1 keeps style
    assert factor_labels(spec, evaluation("light")) == {"c1": "style", "c2": "width"}


@pytest.mark.parametrize("weights", ["fp16", "int8"])
def test_the_recognizer_evaluated_is_the_one_stored(
    fake_mnist_dir, tmp_path, monkeypatch, save_mnist_checkpoint, weights
):
    """The ONNX export folds each Conv+BatchNorm into one convolution; folded after the evaluation and then rounded,
    the stored recognizer was not the evaluated one (paper-size networks: logits off by up to 6e-4). Now the fold
    and its rounding come first: every convolution weight the evaluation ran with is in the file bit for bit."""
    import onnx
    from onnx import numpy_helper

    from training import export as export_mod

    G, D, spec = _nets()
    with torch.no_grad():  # BatchNorm statistics far from the identity, so a fold moves the weights off the grid
        for m in D.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.uniform_(0.01, 0.05)
                m.weight.normal_(1, 0.5)
    ck = save_mnist_checkpoint(tmp_path / "checkpoint.pt", G, D, spec, fake_mnist_dir, fc=64, ch=16, step=7, seed=5)
    evaluated = []
    monkeypatch.setattr(export_mod, "calibrated_copy", lambda D, data, progress=None: D.eval())  # keep those stats
    monkeypatch.setattr(export_mod, "evaluate_model", lambda G, D, *a, **k: evaluated.append(D) or {})
    folder = export_mod.export_checkpoint(ck, "m", models_dir=tmp_path / "models", weights=weights)
    (D_eval,) = evaluated
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D_eval.modules())
    stored = [
        numpy_helper.to_array(t).astype(np.float32)
        for t in onnx.load(str(folder / "recognizer.onnx")).graph.initializer
    ]
    convs = [m.weight.detach().numpy() for m in D_eval.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(any(s.shape == w.shape and np.array_equal(s, w) for s in stored) for w in convs)
