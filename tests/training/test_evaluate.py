"""The one evaluation entry point: evaluate_model owns the BatchNorm recalibration (on a copy, on bn_samples
training images) and load_eval_data never substitutes training images for a split that is missing."""

import shutil

import pytest
import torch

from training import evaluate
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
    assert net is not D and torch.equal(images, data.train.as_float()[:100])
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
