"""The checkers of 01_tensors' exercises: the notebook's solutions pass, typical mistakes are named."""

from __future__ import annotations

import pytest
import torch
from exercise_solutions import assert_solution_solves_and_stubs_do_not

import fashion_course as fc

NB = "01_tensors"
ex = fc.exercises.nb01


@pytest.mark.parametrize("name", ["brightest_image", "normalise_per_image", "pairwise_distances"])
def test_the_notebooks_solution_is_accepted_and_the_stub_is_not_solved(name):
    assert_solution_solves_and_stubs_do_not(NB, ex, name)


@pytest.mark.parametrize("answer, expected", [
    (lambda b: b.float().mean(dim=(1, 2)).argmax(), "`.item()`"),                 # a tensor, not an int
    (lambda b: b.float().mean(dim=(1, 2)).argmin().item(), "`argmin`"),           # the darkest
    (lambda b: (b.float() / 255).mean(dim=(1, 2)).max().item(), "not the mean itself"),  # the value
    (lambda b: b.mean(dim=(1, 2)).argmax().item(), "convert them first"),          # uint8 cannot be averaged
    (lambda b: b.float().mean(dim=0).argmax().item(), "not over the batch"),       # reduced the wrong way
])
def test_brightest_image_mistakes(answer, expected):
    outcome = ex.check_brightest_image(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


@pytest.mark.parametrize("answer, expected", [
    (lambda x: (x - x.mean()) / x.std(), "whole batch"),
    (lambda x: x - x.mean(dim=(1, 2, 3), keepdim=True), "did not divide"),
    (lambda x: (x - x.mean(dim=(1, 2, 3))) / x.std(dim=(1, 2, 3)), "keepdim=True"),
    (lambda x: (x - x.mean(dim=0, keepdim=True)) / x.std(dim=0, keepdim=True), "not over the batch"),
    (lambda x: ((x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True)).double(),
     "dtype"),
])
def test_normalise_per_image_mistakes(answer, expected):
    outcome = ex.check_normalise_per_image(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def test_normalise_per_image_accepts_either_standard_deviation():
    def population_std(x):
        return (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True, correction=0)

    assert ex.check_normalise_per_image(population_std)


def _rows(a, b):
    return a.reshape(len(a), -1), b.reshape(len(b), -1)


@pytest.mark.parametrize("answer, expected", [
    (lambda a, b: (_rows(a, b)[0][:, None] - _rows(a, b)[1][None]).pow(2).sum(-1), "`.sqrt()`"),
    (lambda a, b: (_rows(a, b)[0][:, None] - _rows(a, b)[1][None]).pow(2).mean(-1), "not `mean`"),
    (lambda a, b: torch.cdist(*_rows(b, a)), "transposed"),
    (lambda a, b: (a[:, None] - b[None]).pow(2).sum(-1).sqrt(), "flatten each image"),
    (lambda a, b: (a.reshape(len(a), -1) - b.reshape(len(b), -1)).pow(2).sum(-1).sqrt(), "`a[:, None]`"),
])
def test_pairwise_distances_mistakes(answer, expected):
    outcome = ex.check_pairwise_distances(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def test_a_crash_in_the_learners_code_is_reported_not_raised():
    outcome = ex.check_pairwise_distances(lambda a, b: a.nope)
    assert outcome.status == "wrong" and "AttributeError" in outcome.message
