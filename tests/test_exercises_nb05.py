"""The checkers of 05_optimization_loop's exercises: solutions accepted, typical mistakes named."""

from __future__ import annotations

import math

import torch

from fashion_course.exercises import nb05


def test_steps_per_epoch():
    assert nb05.check_steps_per_epoch(lambda n, b: math.ceil(n / b))
    assert nb05.check_steps_per_epoch(lambda n, b: -(-n // b))
    floor = nb05.check_steps_per_epoch(lambda n, b: n // b)
    assert floor.status == "wrong" and "round up" in floor.hint
    times = nb05.check_steps_per_epoch(lambda n, b: n * b)
    assert times.status == "wrong" and "divide" in times.hint
    ratio = nb05.check_steps_per_epoch(lambda n, b: n / b)
    assert ratio.status == "wrong" and "math.ceil" in ratio.hint


def def_stub(n, b):
    ...


def test_steps_per_epoch_stub():
    assert nb05.check_steps_per_epoch(def_stub).status == "not solved"


def test_learning_rate_chosen_on_validation():
    scores = {0.001: 0.35, 0.01: 0.74, 0.1: 0.82, 1.0: 0.78}
    assert nb05.check_learning_rate(scores, 0.1)
    not_best = nb05.check_learning_rate(scores, 0.01)
    assert not_best.status == "wrong" and "highest validation accuracy" in not_best.hint
    percent = nb05.check_learning_rate({k: 100 * v for k, v in scores.items()}, 0.1)
    assert percent.status == "wrong" and "share between 0 and 1" in percent.hint
    missing = nb05.check_learning_rate({0.1: 0.82}, 0.1)
    assert missing.status == "wrong" and "every candidate" in missing.hint
    big = nb05.check_learning_rate({0.001: 0.1, 0.01: 0.1, 0.1: 0.1, 1.0: 0.9}, 1.0)
    assert big.status == "wrong" and "fresh model" in big.hint
    assert nb05.check_learning_rate(None, None).status == "not solved"
    assert nb05.check_learning_rate({}, None).status == "not solved"


def test_smoothed_targets():
    assert nb05.check_smoothed_targets(nb05.reference_smoothed_targets)

    def one_hot(labels, k, s):
        return torch.nn.functional.one_hot(labels, k).float()

    def nine_others(labels, k, s):
        t = torch.full((len(labels), k), s / (k - 1))
        t[torch.arange(len(labels)), labels] = 1 - s
        return t

    def true_only(labels, k, s):
        return torch.nn.functional.one_hot(labels, k).float() * (1 - s) + s / k * 0.5

    def as_double(labels, k, s):
        return nb05.reference_smoothed_targets(labels, k, s).double()

    assert "nothing was smoothed" in nb05.check_smoothed_targets(one_hot).message
    assert "all K classes" in nb05.check_smoothed_targets(nine_others).hint
    assert "sum to 1" in nb05.check_smoothed_targets(true_only).message
    assert "dtype" in nb05.check_smoothed_targets(as_double).message
    assert nb05.check_smoothed_targets(lambda labels, k, s: ...).status == "not solved"
