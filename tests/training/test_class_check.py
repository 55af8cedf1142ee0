"""The generated-class check: each category must draw its own class, judged by an independent classifier."""

from __future__ import annotations

import torch
from torch import nn

from training.class_check import check_generated_classes
from training.data import ImageSet
from training.latent import mnist_spec


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


def test_each_category_draws_its_own_class(make_digit_set):
    train, test = bars(make_digit_set, 3000, 0), bars(make_digit_set, 500, 1)
    identity = list(range(10))
    evaluation = {"digit": {"category_to_class": identity}}
    result = check_generated_classes(DrawsClass(identity), train, test, evaluation, per_category=20)
    assert result["classifier_test_accuracy"] > 0.95
    digit = result["codes"]["digit"]
    assert digit["distinct"] and digit["class_of_category"] == identity and min(digit["purity"]) > 0.9
    assert digit["agrees_with_q"] == [1] * 10


def test_two_categories_drawing_one_class_are_caught(make_digit_set):
    drawn = [0, 0, 2, 3, 4, 5, 6, 7, 8, 9]  # category 1 draws zeros: only 9 classes are shown
    evaluation = {"digit": {"category_to_class": list(range(10))}}
    result = check_generated_classes(
        DrawsClass(drawn), bars(make_digit_set, 3000, 0), None, evaluation, per_category=20
    )
    digit = result["codes"]["digit"]
    assert not digit["distinct"] and digit["classes_shown"] == 9
    assert digit["agrees_with_q"][1] == 0 and "classifier_test_accuracy" not in result
