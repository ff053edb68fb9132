"""The checkers of 02_datasets_and_transforms' exercises: the notebook's solutions pass, typical
mistakes are named."""

from __future__ import annotations

import pytest
import torch
from exercise_solutions import assert_solution_solves_and_stubs_do_not

import fashion_course as fc

NB = "02_datasets_and_transforms"
ex = fc.exercises.nb02


@pytest.mark.parametrize("name", ["is_footwear", "class_counts", "channel_mean_std"])
def test_the_notebooks_solution_is_accepted_and_the_stub_is_not_solved(name):
    assert_solution_solves_and_stubs_do_not(NB, ex, name)


def footwear_as_bool(y):
    return y in {5, 7, 9}


def footwear_with_bag(y):
    return int(y in {5, 7, 8, 9})


@pytest.mark.parametrize("answer, expected", [
    (footwear_as_bool, "True/False"),
    (footwear_with_bag, "by mistake: Bag"),
    (lambda y: int(y in {5, 7, 9}), "not as a lambda"),   # right answers, but it cannot be pickled
    (lambda y: torch.tensor(int(y in {5, 7, 9})), "got Tensor"),
])
def test_is_footwear_mistakes(answer, expected):
    outcome = ex.check_is_footwear(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def labels_of(dataset):
    return torch.tensor([label for _, label in dataset])


@pytest.mark.parametrize("answer, expected", [
    (lambda d: torch.bincount(labels_of(d)), "minlength=10"),
    (lambda d: torch.bincount(labels_of(d), minlength=10).tolist(), "a list"),
    (lambda d: torch.bincount(labels_of(d), minlength=10).float(), "torch.int64"),
    (lambda d: torch.bincount(labels_of(d)[1:], minlength=10), "differs"),   # skipped a sample
])
def test_class_counts_mistakes(answer, expected):
    outcome = ex.check_class_counts(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


@pytest.mark.parametrize("answer, expected", [
    (lambda x: (x.mean(), x.std()), "reduce over every dimension except the channel"),
    (lambda x: (x.mean(dim=(0, 2, 3)), x.std(dim=(2, 3)).mean(dim=0)), "average of each image's own std"),
    (lambda x: (x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))), "variance"),
    (lambda x: (x.mean(dim=1), x.std(dim=1)), "shape"),
    (lambda x: x.mean(dim=(0, 2, 3)), "two tensors"),
])
def test_channel_mean_std_mistakes(answer, expected):
    outcome = ex.check_channel_mean_std(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def test_channel_mean_std_accepts_the_population_std():
    assert ex.check_channel_mean_std(lambda x: (x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3), correction=0)))
