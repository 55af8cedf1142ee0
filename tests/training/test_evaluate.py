"""The one evaluation entry point: evaluate_model owns the BatchNorm recalibration (on a copy, on bn_samples
training images) and load_eval_data never substitutes training images for a split that is missing."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from training import evaluate
from training.data import as_floats, spread_rows
from training.evaluate import BN_SAMPLES, EvalData, EvaluationError, evaluate_model, load_eval_data
from training.latent import mnist_spec
from training.networks import build_networks


def _data_cfg(root, name="mnist"):
    return {"name": name, "dir": str(root), "resolution": 28, "channels": 1, "verify": False, "download": False}


def _nets():
    torch.manual_seed(0)
    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=32, ch=8)
    G.train()
    D.train()
    with torch.no_grad():  # running statistics of generated images, as D's are after training
        for _ in range(2):
            D(G(*spec.sample(32)))
    return G.eval(), D.eval()


def test_evaluate_model_recalibrates_a_copy_on_bn_samples_training_images(fake_mnist_dir, monkeypatch):
    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    assert data.split == "test" and len(data.eval) == 256 and len(data.train) == 512 and BN_SAMPLES == 10_000
    G, D = _nets()
    G.train()  # a caller mid-training: the mode must come back
    before = {k: v.clone() for k, v in D.state_dict().items()}
    seen = []
    real = evaluate.recalibrate_batchnorm

    def spy(net, images, *a, **k):
        seen.append((net, images.clone()))
        return real(net, images, *a, **k)

    monkeypatch.setattr(evaluate, "recalibrate_batchnorm", spy)
    result = evaluate_model(G, D, data, bn_samples=100)
    ((net, images),) = seen
    assert net is not D and torch.equal(images, data.train.as_float()[spread_rows(512, 100)])
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items())  # D's BN buffers untouched
    assert G.training and not D.training
    # the copy's statistics are those of the 100 real images, not D's (generated-image) ones
    means = [k for k in before if k.endswith("running_mean")]
    assert means and all(not torch.equal(net.state_dict()[k], before[k]) for k in means)
    digit = result["digit"]
    assert (
        0 <= digit["accuracy"] <= 1 and 0 <= digit["nmi"] <= 1 and sorted(digit["category_to_class"]) == list(range(10))
    )
    assert sum(digit["category_sizes"]) == 256  # scored on the test split, not on training images
    assert set(result["info"]) == {"digit", "c1", "c2"}


def test_a_calibrated_d_is_evaluated_as_it_is_with_the_same_figures(fake_mnist_dir, monkeypatch):
    """``calibrated=True`` (export's recognizer, already a calibrated_copy): no second recalibration, D left as it
    was, and the same figures as evaluating the raw D, which calibrates on the same images."""
    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    G, D = _nets()
    once = evaluate.calibrated_copy(D, data)
    before = {k: v.clone() for k, v in once.state_dict().items()}
    calls = []
    real = evaluate.recalibrate_batchnorm
    monkeypatch.setattr(evaluate, "recalibrate_batchnorm", lambda *a, **k: calls.append(1) or real(*a, **k))
    as_is = evaluate_model(G, once, data, calibrated=True)
    assert calls == [] and all(torch.equal(before[k], v) for k, v in once.state_dict().items())
    again = evaluate_model(G, D, data)
    assert calls == [1]
    for key in ("accuracy", "label_free_score", "category_to_class"):
        assert as_is["digit"][key] == pytest.approx(again["digit"][key], rel=1e-5)


def test_bn_samples_changes_the_figures(fake_mnist_dir):
    """The sample size is the one given: recalibrating on 8 images gives other statistics than on 512."""
    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    G, D = _nets()
    few = evaluate_model(G, D, data, bn_samples=8)["digit"]["label_free_score"]
    many = evaluate_model(G, D, data, bn_samples=512)["digit"]["label_free_score"]
    assert few != many


def test_a_missing_split_is_a_loud_error_never_the_training_images(fake_mnist_dir, tmp_path):
    only_train = tmp_path / "mnist-train-only"
    only_train.mkdir()
    for f in fake_mnist_dir.glob("train-*"):
        shutil.copy(f, only_train / f.name)
    assert len(load_eval_data(_data_cfg(only_train), None, "train").eval) == 512  # asked for: fine
    with pytest.raises(EvaluationError, match="'test' split"):
        load_eval_data(_data_cfg(only_train), None)  # the split's files are missing
    with pytest.raises(EvaluationError, match="has no 'test' split"):
        load_eval_data(_data_cfg(tmp_path, "folder"), None)  # the data set has no such split
    with pytest.raises(EvaluationError, match="no-such-set"):
        load_eval_data(_data_cfg(tmp_path, "no-such-set"), None)


def test_explicit_train_split_evaluates_the_training_images(fake_mnist_dir):
    data = load_eval_data(_data_cfg(fake_mnist_dir), None, "train")
    assert isinstance(data, EvalData) and data.split == "train" and data.eval is data.train


# ---- data sets with ground-truth factors (dSprites): the disentanglement metrics --------------------------------

SUBSET = (1, 1, 2, 4, 4, 4)  # 3 shapes x 3 scales x 10 orientations x 8 x 8 positions: 5,760 images
SMALL = {
    "mig_samples": 2000,
    "fvae_train": 300,
    "fvae_eval": 200,
    "fvae_variance": 2000,
    "dci_train": 0,
    "sap_train": 0,
}


@pytest.fixture(scope="module")
def dsprites_dir(tmp_path_factory):
    from training import dsprites as ds

    root = tmp_path_factory.mktemp("dsprites")
    ds.write_npz(root / ds.RENDERED_FILE, ds.render(SUBSET), compress=False)
    return root


def _ds_cfg(root):
    return {"name": "dsprites", "dir": str(root), "resolution": 64, "channels": 1, "verify": True, "download": False}


def test_dsprites_evaluates_its_one_split_by_default_and_nothing_else(dsprites_dir):
    data = load_eval_data(_ds_cfg(dsprites_dir), None)
    assert data.split == "train" and data.eval is data.train and data.eval.factors is not None
    with pytest.raises(EvaluationError, match="has no 'test' split"):
        load_eval_data(_ds_cfg(dsprites_dir), None, "test")


class _ReadsTheSprite(torch.nn.Module):
    """A stand-in D whose Q reads the sprite: code 1 = centre column, code 2 = centre row, code 3 = area, codes 4-5
    constant; each continuous code's Q columns are (mean, unused), as a fixed-std code's are."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        m = (x[:, 0] > 0).float()
        area = m.sum((1, 2)).clamp_min(1)
        cols = torch.arange(x.shape[-1], dtype=torch.float32)
        cx = (m.sum(1) * cols).sum(1) / area
        cy = (m.sum(2) * cols).sum(1) / area
        zero = torch.zeros_like(cx)
        q = torch.stack([cx, zero, cy, zero, area / 100, zero, zero, zero, zero, zero], dim=1)
        return zero + self.w, q


def test_factor_metrics_read_q_point_estimates_per_code(dsprites_dir):
    """The representation is Q's mean per code (LatentSpec.point_estimates), so a Q that reads position and size
    scores high on those factors and names them as each code's best match; reading any other column of Q (the
    unused second column of each code) would give constant codes and a FactorVAE score of 0."""
    from training.config import load_config

    data = load_eval_data(_ds_cfg(dsprites_dir), None)
    r = evaluate.factor_metrics(_ReadsTheSprite(load_config("dsprites").spec), data.eval, seed=0, **SMALL)
    assert r["factors"] == ["shape", "scale", "orientation", "posX", "posY"]
    assert r["mig"]["per_factor"]["posX"] > 0.5 and r["mig"]["per_factor"]["posY"] > 0.5
    assert [r["best_factor"][c]["factor"] for c in ("c1", "c2", "c3")] == ["posX", "posY", "scale"]
    assert r["factor_vae"]["num_active_codes"] == 3 and r["factor_vae"]["score"] > 0.5
    assert r["sizes"]["fvae_train"] == 300 and "dci" not in r


def test_evaluate_model_adds_the_metrics_where_the_data_has_factors(dsprites_dir, fake_mnist_dir):
    from training.config import load_config

    torch.manual_seed(0)
    spec = load_config("dsprites").spec
    G, D = build_networks(spec, arch="dsprites", channels=1, resolution=64)
    res = evaluate_model(G.eval(), D.eval(), load_eval_data(_ds_cfg(dsprites_dir), None), metric_sizes=SMALL)
    dis = res["disentanglement"]
    assert (
        len(dis["mi_matrix"]) == 5
        and len(dis["mi_matrix"][0]) == 5
        and set(dis["best_factor"]) == set(c.name for c in spec.codes)
    )
    assert 0 <= dis["factor_vae"]["score"] <= 1 and 0 <= dis["mig"]["score"] <= 1
    G, D = _nets()
    assert "disentanglement" not in evaluate_model(G, D, load_eval_data(_data_cfg(fake_mnist_dir), None))


def test_the_loop_logs_the_metrics_every_metrics_every_images(dsprites_dir, tmp_path):
    """metrics.jsonl gets a dis/ row each time the images seen cross a multiple of train.metrics_every."""
    import json

    from training.config import load_config
    from training.loop import Trainer

    sizes = "{" + ", ".join(f"{k} = {v}" for k, v in SMALL.items()) + "}"
    cfg = load_config(
        "dsprites",
        [
            f"data.dir='{dsprites_dir}'",
            "train.metrics_every=100",
            "optim.batch_size=32",
            f"train.metrics_sizes={sizes}",
            "loss.cr_late_from=64",
            "train.threads=1",
        ],
    )
    Trainer(cfg, tmp_path / "run", progress=False, max_steps=7).run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    dis = [r for r in rows if "dis/mig" in r]
    assert [r["images"] for r in dis] == [128, 224]  # 4 x 32 crosses 100, 7 x 32 crosses 200
    assert all(
        0 <= r["dis/factor_vae"] <= 1 and set(r["dis/best_factor"]) == {"c1", "c2", "c3", "c4", "c5"} for r in dis
    )
    losses = [r for r in rows if "loss_G" in r]
    assert "loss_CR" in losses[-1]  # the CR phase began at 64 images


def test_plot_disentanglement_draws_each_metric_against_images(tmp_path):
    import json

    from training.evaluate_cmd import plot_disentanglement

    for name, base in (("a", 0.2), ("b", 0.5)):
        rows = [{"step": 10, "loss_G": 1.0}] + [
            {"step": i, "images": i * 64, "dis/factor_vae": base + i / 1000, "dis/mig": base / 2, "dis/sap": None}
            for i in (100, 200, 300)
        ]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot_disentanglement(
        {"a": tmp_path / "a.jsonl", "b": tmp_path / "b.jsonl"},
        tmp_path / "c.png",
        {"dis/factor_vae": {"InfoGAN-CR": 0.88}},
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "none.jsonl").write_text(json.dumps({"step": 1, "loss_G": 1.0}) + "\n")
    with pytest.raises(ValueError, match="no disentanglement rows"):
        plot_disentanglement({"x": tmp_path / "none.jsonl"}, tmp_path / "d.png")


def test_infogan_evaluate_summary_prints_the_disentanglement_figures(tmp_path):
    from training.evaluate_cmd import summary

    dis = {
        "factors": ["scale", "posX"],
        "factor_vae": {"score": 0.8123, "per_factor": {"scale": 0.91, "posX": None}},
        "mig": {"score": 0.3456},
        "sap": {"score": 0.05},
        "mi_matrix": [[0.5, None], [0.01, 1.2]],
        "best_factor": {
            "c1": {"factor": "scale", "normalised_mi": 0.4},
            "c2": {"factor": "posX", "normalised_mi": 0.7},
        },
    }
    result = {"split": "train", "checkpoint": {"step": 5, "epoch": 0.1}, "info": {}, "disentanglement": dis}
    text = summary(result, tmp_path)
    assert "FactorVAE score 0.812, MIG 0.346, SAP 0.050" in text
    assert "c1 scale (0.40), c2 posX (0.70)" in text and "0.50 -; 0.01 1.20" in text
    assert "FactorVAE votes right with each factor fixed: scale 0.91, posX -" in text
    del dis["factor_vae"]["per_factor"]  # an evaluation.json from before the split still prints
    assert "FactorVAE votes right" not in summary(result, tmp_path)


def test_generated_classes_are_checked_only_when_asked_and_labelled(fake_mnist_dir):
    """infogan evaluate / export ask for the generated-class check; the per-epoch evaluation does not."""
    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    G, D = _nets()
    assert "generated_classes" not in evaluate_model(G, D, data)
    result = evaluate_model(G, D, data, generated_classes=True)
    digit = result["generated_classes"]["codes"]["digit"]
    assert len(digit["class_of_category"]) == 10 and len(digit["agrees_with_q"]) == 10
    assert digit["distinct"] == (digit["classes_shown"] == 10)
    assert 0 <= result["generated_classes"]["classifier_test_accuracy"] <= 1


def test_code_effects_are_measured_only_when_asked_and_summarised(fake_mnist_dir, tmp_path):
    """infogan evaluate / export measure what each continuous code moves (the basis of its label) and print it."""
    from training.evaluate_cmd import summary

    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    G, D = _nets()
    G.train()  # a caller mid-training: the mode must come back
    assert "code_effects" not in evaluate_model(G, D, data)
    result = evaluate_model(G, D, data, code_effects=True)
    effects = result["code_effects"]
    assert set(effects) == {"c1", "c2"} and "digit" not in effects
    assert all(len(e["values"]) == 9 and e["strongest"] in e["statistics"] for e in effects.values())
    assert G.training  # the evaluation leaves G's mode as it was
    result.update(split="test", checkpoint={"step": 1})
    lines = summary(result, tmp_path).splitlines()
    i = lines.index("continuous codes, the image statistics each moves most (change from -2 to +2, in sd):")
    assert lines[i + 1].startswith("  c1: ") and lines[i + 2].startswith("  c2: ") and " sd (r " in lines[i + 1]


def test_figure_latents_sweep_the_papers_range_for_each_kind_of_data_set():
    """Fig. 2 (MNIST) sweeps a continuous code from -2 to 2, Figs. 3-4 (the 3D sets) from -1 to 1: the data set's
    ``traversal_span``; one row per category of the first categorical code, which each row holds."""
    from training.config import load_config
    from training.data import dataset_info

    assert dataset_info("mnist").traversal_span == 2.0 and dataset_info("fashion-mnist").traversal_span == 2.0
    assert dataset_info("chairs3d").traversal_span == 1.0 and dataset_info("dsprites").traversal_span == 1.0
    spec = load_config("chairs3d").spec
    sl = dict((code.name, s) for code, s in spec.c_slices())
    for span in (1.0, 2.0):
        z, c, rows = evaluate.figure_latents(spec, "c2", cols=9, span=span)
        sweep = c[:, sl["c2"]].reshape(rows, 9)
        assert rows == 4 and torch.allclose(sweep, torch.linspace(-span, span, 9).expand(4, 9))
        assert c[:, sl["style"]].argmax(1).reshape(4, 9).tolist() == [[r] * 9 for r in range(4)]
        assert torch.all(c[:, sl["c1"]] == 0) and len(z) == 36


def test_the_per_epoch_row_skips_the_information_bound_that_evaluate_reports(fake_mnist_dir, monkeypatch):
    """L_I on 5,000 generated images is in `infogan evaluate`'s result but not computed for the per-epoch row, which
    reports only the categorical codes (it was ~40 % of that row's time on 3D chairs)."""
    from types import SimpleNamespace

    from training import epoch_report, evaluate

    data = load_eval_data(_data_cfg(fake_mnist_dir), None)
    G, D = _nets()
    assert set(evaluate_model(G, D, data)["info"]) == {"digit", "c1", "c2"}
    calls = []
    monkeypatch.setattr(evaluate, "info_bound", lambda *a, **k: calls.append(1) or {})
    run = SimpleNamespace(drawing_G=G, D=D, eval_data=data, spec=G.spec)  # what evaluate_test reads of a Trainer
    row = epoch_report.evaluate_test(run)
    assert calls == [] and set(row) == {"test_acc/digit", "test_nmi/digit", "test_lfs/digit"}
    assert "info" not in evaluate_model(G, D, data, info=False)


def test_write_json_replaces_the_file_whole_or_not_at_all(tmp_path, monkeypatch):
    from training import checkpoint as ckpt_io
    from training.evaluate import write_json

    path = tmp_path / "evaluation.json"
    write_json({"accuracy": 0.5}, path)
    real = ckpt_io.os.fsync

    def dies(fd):
        raise KeyboardInterrupt  # as a Ctrl-C in the middle of the write

    monkeypatch.setattr(ckpt_io.os, "fsync", dies)
    with pytest.raises(KeyboardInterrupt):
        write_json({"accuracy": 0.9, "more": list(range(1000))}, path)
    monkeypatch.setattr(ckpt_io.os, "fsync", real)
    assert json.loads(path.read_text()) == {"accuracy": 0.5} and sorted(p.name for p in tmp_path.iterdir()) == [
        path.name
    ]


def test_atomic_writes_get_the_mode_a_plain_write_gets(tmp_path):
    # mkstemp makes 0600 files: evaluation.json was unreadable to the group beside its 0644 figures
    import os

    from training.checkpoint import write_atomic

    write_atomic(tmp_path / "a.json", lambda f: f.write(b"{}"))
    (tmp_path / "b.json").write_bytes(b"{}")
    assert os.stat(tmp_path / "a.json").st_mode & 0o777 == os.stat(tmp_path / "b.json").st_mode & 0o777


def test_an_evaluation_without_figures_removes_the_earlier_ones_it_listed(
    fake_mnist_dir, tmp_path, monkeypatch, save_mnist_checkpoint
):
    # evaluation.json said step 2 while the traversals beside it were an earlier checkpoint's
    from types import SimpleNamespace

    from training import evaluate_cmd
    from training.latent import mnist_spec
    from training.networks import build_networks

    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=32, ch=8)
    ck = save_mnist_checkpoint(
        tmp_path / "run" / "checkpoint.pt", G, D, spec, fake_mnist_dir, fc=32, ch=8, step=3, seed=0
    )
    out = tmp_path / "out"
    monkeypatch.setattr(evaluate_cmd, "load_eval_data", lambda *a, **k: SimpleNamespace(split="test"))
    monkeypatch.setattr(evaluate_cmd, "evaluate_model", lambda *a, **k: {})

    def figures(G, folder, span):
        paths = [folder / "traversal-c1.png", folder / "traversal-c2.png"]
        for p in paths:
            p.write_bytes(b"png")
        return paths

    monkeypatch.setattr(evaluate_cmd, "paper_figures", figures)
    first = evaluate_cmd.evaluate_checkpoint(ck, out_dir=out)
    assert all(Path(f).is_absolute() and Path(f).is_file() for f in first["figures"])
    (tmp_path / "keep.png").write_bytes(b"mine")
    listed = json.loads((out / "evaluation.json").read_text())
    listed["figures"].append(str(tmp_path / "keep.png"))  # outside the folder: never touched
    (out / "evaluation.json").write_text(json.dumps(listed))
    second = evaluate_cmd.evaluate_checkpoint(ck, out_dir=out, figures=False)
    assert "figures" not in second and not list(out.glob("*.png")) and (tmp_path / "keep.png").is_file()
    assert Path(second["checkpoint"]["path"]).is_absolute()


def test_bn_samples_and_the_label_free_score_are_spread_over_a_set_stored_in_factor_order(monkeypatch):
    """A set stored in factor order (3D chairs: style slowest, 4 x 4,000) holds no bench among its first 10,000 rows:
    BatchNorm's recalibration and the restarts' label-free score read 10,000 rows spread over the whole set (every
    style ~2,500 times), the same rows on every call, drawn from no run's random stream."""
    from training.data import ImageSet, spread_rows
    from training.restarts import Restarts

    style = torch.arange(16_000) // 4_000  # the row's style, slowest factor
    images = style.to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    state = torch.get_rng_state()
    rows = spread_rows(16_000, BN_SAMPLES)
    assert torch.equal(state, torch.get_rng_state())  # the run's stream untouched (resumes stay exact)
    assert len(set(rows.tolist())) == BN_SAMPLES and torch.equal(rows, rows.sort().values)
    assert torch.equal(rows, spread_rows(16_000, BN_SAMPLES)) and torch.equal(spread_rows(50, 100), torch.arange(50))
    assert torch.bincount(style[rows], minlength=4).min() > 2_300

    seen = []
    monkeypatch.setattr(evaluate, "recalibrate_batchnorm", lambda net, x, *a, **k: seen.append(x))
    set_ = ImageSet(images=images, labels=None, classes=None, name="ordered")
    G, D = _nets()
    evaluate.calibrated_copy(D, EvalData(set_, set_, "train"))
    assert torch.bincount(((seen[0][:, 0, 0, 0] + 1) * 127.5).round().long(), minlength=4).min() > 2_300

    from training import restarts

    class Read(Exception):
        pass

    def predict(net, x):
        raise Read(x)

    monkeypatch.setattr(restarts, "recalibrate_batchnorm", lambda net, x: None)
    monkeypatch.setattr(restarts, "predict_codes", predict)
    for data in (images.float().div(127.5).sub(1.0), images):  # floats, or a set kept as bytes
        t = type("T", (), {"data": data, "D": D, "spec": D.spec})()
        with pytest.raises(Read) as read:
            Restarts.score(t)
        x = as_floats(read.value.args[0])
        assert torch.bincount(((x[:, 0, 0, 0] + 1) * 127.5).round().long(), minlength=4).min() > 2_300


def test_the_label_free_score_reads_a_set_kept_as_bytes():
    """A set too large for float32 in memory is kept as uint8 (training/loop.FLOAT_DATA_LIMIT): the score's BatchNorm
    recalibration fed those bytes to D as they were (RuntimeError: unsigned char input, float bias)."""
    from training.restarts import Restarts

    G, D = _nets()
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    t = type("T", (), {"data": images, "D": D, "spec": D.spec})()
    floats = type("T", (), {"data": images.float().div(127.5).sub(1.0), "D": D, "spec": D.spec})()
    assert Restarts.score(t) == pytest.approx(Restarts.score(floats), abs=1e-6)
