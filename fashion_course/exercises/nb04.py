"""Checkers for the exercises of 04_autograd: a gradient by hand, gradient descent by hand, a
Jacobian assembled from vector-Jacobian products."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ._core import Outcome, attempt, compare_tensors, solved, wrong


def _points() -> torch.Tensor:
    return torch.linspace(-2.0, 3.0, 7, dtype=torch.float64)


def check_grad_f(grad_f: Any) -> Outcome:
    """Exercise 1 of 04: the derivative of f(t) = (t**2 * sin(t)).sum(), worked out by hand."""
    t = _points()
    got = attempt(grad_f, t.clone())
    if isinstance(got, Outcome):
        return got
    expected = 2 * t * t.sin() + t**2 * t.cos()
    if isinstance(got, torch.Tensor) and got.shape == t.shape:
        g = got.detach().to(torch.float64)
        for partial, what in [(2 * t * t.sin(), "only 2t·sin(t)"), (t**2 * t.cos(), "only t²·cos(t)"),
                              (2 * t * t.cos(), "2t·cos(t), the product of the two derivatives")]:
            if torch.allclose(g, partial, atol=1e-4):
                return wrong(f"you have {what}.",
                             "product rule: (u·v)' = u'·v + u·v' with u = t², v = sin(t).")
    problem = compare_tensors(got, expected, what="your gradient", atol=1e-6, check_dtype=False)
    if problem is not None:
        return problem
    return solved("2t·sin(t) + t²·cos(t), the same as autograd's gradient.")


def _start() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    w = torch.randn(5, 3, generator=generator)
    b = torch.randn(3, generator=generator)
    return torch.ones(5), torch.zeros(3), w, b


def _descend(x, y, w, b, lr, steps, *, clear: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``steps`` steps of plain gradient descent on the one-layer network of 04, section 1."""
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    for _ in range(steps):
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        if clear:
            w.grad, b.grad = None, None
    return w.detach(), b.detach()


def _sgd(x, y, w, b, lr, steps) -> tuple[torch.Tensor, torch.Tensor]:
    """The same steps done by torch.optim.SGD: the oracle for the learner's loop."""
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    optimizer = torch.optim.SGD([w, b], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(x @ w + b, y).backward()
        optimizer.step()
    return w.detach(), b.detach()


def check_train_by_hand(train_by_hand: Any) -> Outcome:
    """Exercise 2 of 04: gradient descent without an optimizer gives what torch.optim.SGD gives."""
    x, y, w, b = _start()
    lr, steps = 0.5, 20
    got = attempt(train_by_hand, x, y, w.clone().requires_grad_(), b.clone().requires_grad_(), lr, steps)
    if isinstance(got, Outcome):
        if got.status == "wrong" and "leaf Variable" in got.message:
            return wrong(got.message, "do the update inside `with torch.no_grad():`, so it is not recorded.")
        if got.status == "wrong" and "NoneType" in got.message:
            return wrong(got.message, "`w = w - lr * w.grad` makes a new tensor that is not a leaf and gets "
                                      "no .grad: update in place, `w -= lr * w.grad`, "
                                      "under `torch.no_grad()`.")
        return got
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return wrong(f"expected the trained (w, b), got {type(got).__name__}.", "end with `return w, b`.")
    got_w, got_b = got
    expected_w, expected_b = _sgd(x, y, w, b, lr, steps)
    if isinstance(got_w, torch.Tensor) and got_w.shape == w.shape:
        unclear_w, _ = _descend(x, y, w, b, lr, steps, clear=False)
        if torch.allclose(got_w.detach(), unclear_w, atol=1e-5):
            return wrong("the gradients accumulated over the steps.",
                         "clear them after each update: `w.grad = None` (or `w.grad.zero_()`), "
                         "and the same for b.")
        if torch.allclose(got_w.detach(), w, atol=1e-7):
            return wrong("w is unchanged.", "subtract `lr * w.grad` from it in every step.")
    for name, value, expected in [("w", got_w, expected_w), ("b", got_b, expected_b)]:
        problem = compare_tensors(value, expected, what=f"the trained {name}", atol=1e-5)
        if problem is not None:
            return problem
    return solved(f"the same w and b as torch.optim.SGD after {steps} steps from the check's own start.")


def _g(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([t[0] * t[1], t[1] + t[2] ** 2])


def _k(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([t[0].sin(), t[0] * t[1], t[1] ** 3, t[0] - 2 * t[1]])


def check_jacobian_by_rows(jacobian_by_rows: Any) -> Outcome:
    """Exercise 3 of 04: the (m, n) Jacobian, one row per ``backward(v)`` with a one-hot v."""
    cases = [(_g, torch.tensor([1.0, 2.0, 3.0])), (_k, torch.tensor([0.5, -1.5]))]
    for fn, x in cases:
        got = attempt(jacobian_by_rows, fn, x.clone())
        if isinstance(got, Outcome):
            if got.status == "wrong" and "a second time" in got.message:
                return wrong(got.message,
                             "keep the graph for the next row: `backward(v, retain_graph=True)`.")
            return got
        expected = torch.autograd.functional.jacobian(fn, x)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            g = got.detach().float()
            if torch.allclose(g, expected.cumsum(dim=0), atol=1e-5):
                return wrong("each row holds the sum of all rows so far: the gradients accumulated.",
                             "zero the input's gradient between rows: `t.grad = None` or `t.grad.zero_()`.")
            if torch.allclose(g, expected.sum(dim=0).expand_as(expected), atol=1e-5):
                return wrong("every row is the sum of all rows: v was all ones.",
                             "row i needs a one-hot v: 1 at output i, 0 elsewhere (`torch.eye(m)[i]`).")
        problem = compare_tensors(got, expected, what=f"the Jacobian of a function from R^{len(x)} "
                                                      f"to R^{len(expected)}", atol=1e-5)
        if problem is not None:
            return problem
    return solved("the Jacobian, row by row, from vector-Jacobian products.")
