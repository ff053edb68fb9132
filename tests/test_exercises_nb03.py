"""The checkers of 03_build_the_model's exercises: the notebook's solutions pass, typical mistakes
are named."""

from __future__ import annotations

import pytest
import torch
from exercise_solutions import assert_solution_solves_and_stubs_do_not, function_stub, solution
from torch import nn

import fashion_course as fc

NB = "03_build_the_model"
ex = fc.exercises.nb03


@pytest.mark.parametrize("name", ["mlp_parameters", "small_model", "predict"])
def test_the_notebooks_solution_is_accepted_and_the_stub_is_not_solved(name):
    assert_solution_solves_and_stubs_do_not(
        NB, ex, name, stubs=(None,) if name == "small_model" else (None, function_stub)
    )  # small_model's stub is `small_model = None`


@pytest.mark.parametrize("answer, expected", [
    (lambda h: 784 * h + h * h + h * 10, "weights only"),
    (lambda h: (784 * h + h) + (h * 10 + 10), "one layer is missing"),
    (lambda h: (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10), "use `hidden` everywhere"),
    (lambda h: str(h), "expected a number"),
])
def test_mlp_parameters_mistakes(answer, expected):
    outcome = ex.check_mlp_parameters(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


@pytest.mark.parametrize("answer, expected", [
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.ReLU()),
     "no activation after the last"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.Linear(128, 10)), "put `nn.ReLU()` between"),
    (nn.Sequential(nn.Flatten(start_dim=0), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)),
     "start_dim=1"),
    (nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), "`nn.Flatten()`"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)), "expected 101,770"),
    (nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))(torch.rand(5, 784)),
     "assign the module itself"),
])
def test_small_model_mistakes(answer, expected):
    outcome = ex.check_small_model(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def _softmax_predict(dim, scale=255.0):
    def predict(model, images):
        probabilities = nn.Softmax(dim=dim)(model(images.float() / scale))
        return probabilities, probabilities.argmax(dim=1)
    return predict


@pytest.mark.parametrize("answer, expected", [
    (_softmax_predict(dim=0), "wrong dimension"),
    (_softmax_predict(dim=1, scale=1.0), "divide the uint8 pixels by 255"),
    (lambda m, x: (m(x.float() / 255), m(x.float() / 255).argmax(dim=1)), "logits, not probabilities"),
    (lambda m, x: (_softmax_predict(dim=1)(m, x)[0], _softmax_predict(dim=1)(m, x)[0].argmax(dim=0)),
     "argmax over the batch"),
    (lambda m, x: nn.Softmax(dim=1)(m(x / 255)), "two tensors"),
    (lambda m, x: m(x), "`images.float() / 255`"),   # uint8 pixels straight into the model
])
def test_predict_mistakes(answer, expected):
    outcome = ex.check_predict(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def test_predict_leaves_the_learners_random_stream_alone():
    torch.manual_seed(0)
    ex.check_predict(solution(NB, "predict"))
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))
