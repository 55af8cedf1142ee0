"""The chairs3d configs (training/configs/chairs3d*.toml): they load, build their networks at 64x64 and train on a
small rendered subset of the 3D chairs, with the per-epoch style accuracy and the factor metrics in the log."""

from __future__ import annotations

import json

import pytest
import torch

from training import chairs3d
from training import evaluate as evaluate_mod
from training.config import load_config
from training.loop import Trainer
from training.networks import build_networks

CONFIGS = ("chairs3d", "chairs3d-infogan")
SMALL = "{fvae_train = 20, fvae_eval = 10, fvae_variance = 200, mig_samples = 200, dci_train = 0, sap_train = 0}"


def test_configs_are_the_papers_chairs_setting_and_differ_only_in_the_regularizer():
    cr, plain = (load_config(n) for n in CONFIGS)
    for cfg in (cr, plain):
        spec = cfg.spec
        (style,) = spec.categorical_codes()
        # one category per chair style, one continuous code per continuous factor (azimuth, elevation, light,
        # width); Q's categorical read of untransformed fakes (azimuth is a real factor here)
        assert style.name == "style" and style.categories == len(chairs3d.STYLES)
        assert len(spec.continuous_codes()) == len(chairs3d.FACTOR_NAMES) - 1
        assert cfg.data.name == "chairs3d" and cfg.data.resolution == 64 and not cfg.loss.invariance
        assert cfg.train.precision == "auto" and cfg.train.restarts > 1 and cfg.train.metrics_every > 0
    assert cr.loss.cr_weight_late and not plain.loss.cr_weight and plain.loss.cr_weight_late is None
    a, b = cr.to_dict(), plain.to_dict()
    for d in (a, b):
        d.pop("name")
        for key in ("cr_weight_late", "cr_late_from"):
            d["loss"].pop(key)
        d["optim"].pop("lr_cr")
    assert a == b


@pytest.mark.parametrize("name", CONFIGS)
def test_networks_build_at_64x64(name):
    cfg = load_config(name)
    spec = cfg.spec
    G, D = build_networks(spec, arch=cfg.model.arch, channels=1, resolution=64, **cfg.model.widths)
    z, c = spec.sample(3, torch.Generator().manual_seed(0))
    x = G(z, c)
    assert tuple(x.shape) == (3, 1, 64, 64)
    logit, q = D(x)
    assert tuple(logit.shape) == (3,) and tuple(q.shape) == (3, spec.q_dim)


def test_a_training_step_of_each_config_with_the_regularizer_on(chairs_dir):
    for name in CONFIGS:
        cfg = load_config(
            name,
            [f"data.dir='{chairs_dir}'", "optim.batch_size=8", "loss.cr_late_from=0", "train.threads=1"],
        )
        t = Trainer(cfg, chairs_dir / f"run-{name}", progress=False)
        assert len(t.data) == 16 and tuple(t.data.shape[1:]) == (1, 64, 64)
        out = t.train_step(t.data[:8])
        assert all(torch.isfinite(torch.as_tensor(v)).all() for v in out.values())
        assert ("loss_G_cr" in out) == (name == "chairs3d")  # the CR head's loss: only with the regularizer


def test_the_log_has_the_style_accuracy_each_epoch_and_the_factor_metrics_on_their_own_schedule(
    chairs_dir, tmp_path, monkeypatch
):
    """chairs3d has one (labelled) split: the epoch's row scores the style code on it. The full disentanglement
    metrics (minutes) stay out of that row; the reduced ones come every train.metrics_every images."""
    calls = []
    real = evaluate_mod.factor_metrics
    monkeypatch.setattr(evaluate_mod, "factor_metrics", lambda *a, **k: calls.append(k) or real(*a, **k))
    cfg = load_config(
        "chairs3d",
        [
            f"data.dir='{chairs_dir}'",
            "optim.batch_size=8",
            "train.restarts=1",
            "train.metrics_every=16",
            f"train.metrics_sizes={SMALL}",
            "train.threads=1",
        ],
    )
    Trainer(cfg, tmp_path / "run", progress=False, max_steps=4).run()  # 2 epochs of 2 steps
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    acc = [r for r in rows if "test_acc/style" in r]
    assert [r["step"] for r in acc] == [2, 4] and all(0.25 <= r["test_acc/style"] <= 1 for r in acc)
    dis = [r for r in rows if "dis/mig" in r]
    assert [r["images"] for r in dis] == [16, 32]
    assert set(dis[0]["dis/best_factor"]) == {"style", "c1", "c2", "c3", "c4"}
    # evaluate_model's factor metrics (the loop's scheduled rows call factor_metrics by their own import)
    assert calls == []


def test_the_loop_fades_the_styles_fc_path_by_the_images_seen(chairs_dir):
    """``style_fade``: each training step tells G's body the images seen before it, so the style's weight in the
    first FC layer falls 1 -> 0 over the first N images of the run (and a checkpoint's G holds where it was)."""
    cfg = load_config(
        "chairs3d",
        [
            f"data.dir='{chairs_dir}'",
            "optim.batch_size=8",
            "train.threads=1",
            "model.widths={style_late = 1, style_fade = 32}",
        ],
    )
    t = Trainer(cfg, chairs_dir / "run-fade", progress=False)
    scales = []
    for step in range(6):
        t.step = step
        t.train_step(t.data[:8])
        scales.append(float(t.G.body.style_fc_scale))
    assert scales == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
