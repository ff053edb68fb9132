"""The checkers of 04_autograd's exercises: the notebook's solutions pass, typical mistakes are named."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from exercise_solutions import assert_solution_solves_and_stubs_do_not

import fashion_course as fc

NB = "04_autograd"
ex = fc.exercises.nb04


@pytest.mark.parametrize("name", ["grad_f", "train_by_hand", "jacobian_by_rows"])
def test_the_notebooks_solution_is_accepted_and_the_stub_is_not_solved(name):
    assert_solution_solves_and_stubs_do_not(NB, ex, name)


@pytest.mark.parametrize("answer, expected", [
    (lambda t: 2 * t * t.sin(), "product rule"),
    (lambda t: t**2 * t.cos(), "product rule"),
    (lambda t: 2 * t * t.cos(), "product of the two derivatives"),
    (lambda t: (2 * t * t.sin() + t**2 * t.cos()).sum(), "shape"),
    (lambda t: 2 * t * t.sin() - t**2 * t.cos(), "differs"),
])
def test_grad_f_mistakes(answer, expected):
    outcome = ex.check_grad_f(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def forgets_to_clear(x, y, w, b, lr, steps):
    for _ in range(steps):
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
    return w, b


def updates_outside_no_grad(x, y, w, b, lr, steps):
    for _ in range(steps):
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        w -= lr * w.grad
    return w, b


def rebinds_instead_of_updating(x, y, w, b, lr, steps):
    for _ in range(steps):
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        w = w - lr * w.grad
        b = b - lr * b.grad
    return w, b


def adds_the_gradient(x, y, w, b, lr, steps):
    for _ in range(steps):
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        with torch.no_grad():
            w += lr * w.grad
            b += lr * b.grad
        w.grad, b.grad = None, None
    return w, b


@pytest.mark.parametrize("answer, expected", [
    (forgets_to_clear, "accumulated"),
    (updates_outside_no_grad, "inside `with torch.no_grad():`"),
    (rebinds_instead_of_updating, "not a leaf"),
    (adds_the_gradient, "the trained w differs"),
    (lambda x, y, w, b, lr, steps: (w, b), "w is unchanged"),
    (lambda x, y, w, b, lr, steps: w, "expected the trained (w, b)"),
])
def test_train_by_hand_mistakes(answer, expected):
    outcome = ex.check_train_by_hand(answer)
    assert outcome.status == "wrong" and expected in str(outcome), outcome


def rows(fn, x, *, clear=True, retain=True, transpose=False, ones=False):
    t = x.clone().requires_grad_()
    out = fn(t)
    found = []
    for i in range(len(out)):
        v = torch.ones_like(out) if ones else torch.eye(len(out))[i]
        out.backward(v, retain_graph=retain)
        found.append(t.grad.clone())
        if clear:
            t.grad = None
    J = torch.stack(found)
    return J.T if transpose else J


@pytest.mark.parametrize("options, expected", [
    (dict(clear=False), "accumulated"),
    (dict(retain=False), "retain_graph=True"),
    (dict(transpose=True), "transposed"),
    (dict(ones=True), "one-hot v"),
])
def test_jacobian_by_rows_mistakes(options, expected):
    outcome = ex.check_jacobian_by_rows(lambda fn, x: rows(fn, x, **options))
    assert outcome.status == "wrong" and expected in str(outcome), outcome
    assert ex.check_jacobian_by_rows(rows)  # the same code without the mistake is right
