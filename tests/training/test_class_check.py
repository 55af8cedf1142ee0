"""The generated-class check: each category must draw its own class, judged by an independent classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.class_check import check_generated_classes
from training.data import ImageSet
from training.latent import mnist_spec


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One classifier cache for the module: the tests on the same 3,000 bars train it once."""
    return tmp_path_factory.mktemp("classifiers")


def bars(make_digit_set, n: int, seed: int) -> ImageSet:
    images, labels = make_digit_set(n, seed)
    return ImageSet(torch.from_numpy(images)[:, None], torch.from_numpy(labels).long(), None, "bars")


class DrawsClass(nn.Module):
    """A stand-in generator: category k of 'digit' draws the bar of class ``drawn[k]`` (the data set's class)."""

    def __init__(self, drawn: list[int]):
        super().__init__()
        self.spec, self.drawn = mnist_spec(), drawn

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        x = torch.full((len(z), 1, 28, 28), -1.0)
        for i, k in enumerate(c[:, :10].argmax(1).tolist()):
            row = 2 * self.drawn[k] + 4
            x[i, 0, row : row + 3, 4:24] = 1.0
        return x


class SliderChangesClass(DrawsClass):
    """Category 0 draws class 0, but class 5 when c1 is above 0.5: a continuous code that carries the class."""

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.clone()
        flip = (c[:, :10].argmax(1) == 0) & (c[:, 10] > 0.5)
        c[flip, 0], c[flip, 5] = 0.0, 1.0
        return super().forward(z, c)


def test_each_category_draws_its_own_class(make_digit_set, cache):
    train, test = bars(make_digit_set, 3000, 0), bars(make_digit_set, 500, 1)
    identity = list(range(10))
    evaluation = {"digit": {"category_to_class": identity}}
    result = check_generated_classes(DrawsClass(identity), train, test, evaluation, per_category=20, cache_dir=cache)
    assert result["classifier_test_accuracy"] > 0.95
    digit = result["codes"]["digit"]
    assert digit["distinct"] and digit["class_of_category"] == identity and min(digit["purity"]) > 0.9
    assert digit["agrees_with_q"] == [1] * 10
    # held at each corner of (c1, c2), every category still draws its class
    corners = digit["corners"]
    assert len(corners["corner_values"]) == 4 and {tuple(sorted(v)) for v in corners["corner_values"]} == {("c1", "c2")}
    assert corners["stable_categories"] == 10 and all(len(set(row)) == 1 for row in corners["corner_classes"])


def test_two_categories_drawing_one_class_are_caught(make_digit_set, cache):
    drawn = [0, 0, 2, 3, 4, 5, 6, 7, 8, 9]  # category 1 draws zeros: only 9 classes are shown
    evaluation = {"digit": {"category_to_class": list(range(10))}}
    result = check_generated_classes(
        DrawsClass(drawn), bars(make_digit_set, 3000, 0), None, evaluation, per_category=20, cache_dir=cache
    )
    digit = result["codes"]["digit"]
    assert not digit["distinct"] and digit["classes_shown"] == 9
    assert digit["agrees_with_q"][1] == 0 and "classifier_test_accuracy" not in result


def test_the_classifier_is_trained_once_per_split_and_read_back_from_the_cache(make_digit_set, tmp_path, monkeypatch):
    import training.class_check as cc

    train, test = bars(make_digit_set, 600, 0), bars(make_digit_set, 200, 1)
    evaluation = {"digit": {"category_to_class": list(range(10))}}
    trained = []
    real_train = cc.train_reference_classifier

    def counting(*args, **kwargs):
        trained.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(cc, "train_reference_classifier", counting)
    first = check_generated_classes(
        DrawsClass(list(range(10))), train, test, evaluation, per_category=10, cache_dir=tmp_path
    )
    cached = list(tmp_path.glob("bars-*.pt"))
    assert len(trained) == 1 and len(cached) == 1
    again = check_generated_classes(
        DrawsClass(list(range(10))), train, test, evaluation, per_category=10, cache_dir=tmp_path
    )
    assert len(trained) == 1, "the second evaluation of the same split trained the classifier again"
    assert again == first  # the cached weights are the trained ones

    # other labels are another split: a new key, a new classifier
    relabelled = ImageSet(train.images, (train.labels + 1) % 10, None, "bars")
    cc.reference_classifier(relabelled, cache_dir=tmp_path)
    assert len(trained) == 2 and len(list(tmp_path.glob("bars-*.pt"))) == 2

    # a torn file is trained again and replaced, never an error
    cached[0].write_bytes(b"not a torch file")
    cc.reference_classifier(train, cache_dir=tmp_path)
    assert len(trained) == 3
    cc.reference_classifier(train, cache_dir=tmp_path)
    assert len(trained) == 3


def test_without_a_cache_folder_nothing_is_written(make_digit_set, tmp_path, monkeypatch):
    import training.class_check as cc

    monkeypatch.chdir(tmp_path)
    saved = []
    monkeypatch.setattr(cc, "save_atomic", lambda *a, **k: saved.append(a))  # any folder, the user cache's too
    cc.reference_classifier(bars(make_digit_set, 600, 0), epochs=1)
    assert list(tmp_path.iterdir()) == [] and saved == []


def test_a_slider_that_changes_the_class_is_caught_at_the_corners(make_digit_set, cache):
    evaluation = {"digit": {"category_to_class": list(range(10))}}
    result = check_generated_classes(
        SliderChangesClass(list(range(10))),
        bars(make_digit_set, 3000, 0),
        None,
        evaluation,
        per_category=40,
        cache_dir=cache,
    )
    corners = result["codes"]["digit"]["corners"]
    assert corners["stable_categories"] == 9
    high_c1 = [j for j, v in enumerate(corners["corner_values"]) if v["c1"] == 1.0]
    assert [corners["corner_classes"][0][j] for j in high_c1] == [5, 5]
    assert {corners["corner_classes"][0][j] for j in range(4) if j not in high_c1} == {0}
