"""The shared machinery of the exercise checkers: outcomes, calling the learner's code, comparing tensors."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

SOLVED, WRONG, NOT_SOLVED = "solved", "wrong", "not solved"


@dataclass(frozen=True)
class Outcome:
    """What a checker found: ``status`` is "solved", "wrong" or "not solved"; ``message`` says why.

    Shown in a notebook as one line; true only when solved (``assert outcome`` in a solution cell).
    """

    status: str
    message: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.status == SOLVED

    @property
    def solved(self) -> bool:
        return self.status == SOLVED

    def __str__(self) -> str:
        if self.status == SOLVED:
            return f"solved: {self.message}"
        if self.status == NOT_SOLVED:
            return f"not solved yet: {self.message}"
        return f"not quite: {self.message}" + (f" Hint: {self.hint}" if self.hint else "")

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython shows the line without quotes
        printer.text(str(self))


def solved(message: str) -> Outcome:
    return Outcome(SOLVED, message)


def wrong(message: str, hint: str = "") -> Outcome:
    return Outcome(WRONG, message, hint)


def not_solved(message: str = "fill in the cell above, run it, then run this cell again.") -> Outcome:
    return Outcome(NOT_SOLVED, message)


def is_stub(value: Any) -> bool:
    """True for what an untouched stub gives: None or ``...``."""
    return value is None or value is Ellipsis


def attempt(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's function; turn a stub or a crash into an :class:`Outcome`.

    Returns the function's result, or an Outcome: "not solved" when the answer is still a stub
    (the name is None or ``...``, the body is ``...``/``pass``, or it raises NotImplementedError),
    "wrong" when it raises anything else (naming the exception and the line of the learner's code).
    """
    if is_stub(function):
        return not_solved()
    if not callable(function):
        return wrong(f"expected a function, got {type(function).__name__}.",
                     "define it with `def name(...):` and pass the function itself, without calling it.")
    try:
        result = function(*args, **kwargs)
    except NotImplementedError:
        return not_solved()
    except Exception as exc:  # the learner's code failed: say where, never re-raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if "fashion_course" not in (f.filename or "")]
        where = f" (line: `{frames[-1].line}`)" if frames and frames[-1].line else ""
        return wrong(f"your function raised {type(exc).__name__}: {exc}{where}",
                     "run it on a small input in a cell of its own and read the error.")
    if is_stub(result):
        return not_solved()
    return result


def compare_tensors(got: Any, expected: torch.Tensor, *, what: str = "the result",
                    atol: float = 1e-5, rtol: float = 1e-4, check_dtype: bool = True) -> Outcome | None:
    """None when ``got`` matches ``expected``; otherwise a "wrong" Outcome naming the difference.

    Checks in the order a learner's mistakes usually come: not a tensor, wrong shape, wrong dtype,
    off by a constant factor, transposed, then any other difference.
    """
    if not isinstance(got, torch.Tensor):
        return wrong(f"{what} should be a tensor, got {type(got).__name__}.",
                     "use torch operations, and return the tensor itself (not `.item()` or a list).")
    if got.shape != expected.shape:
        hint = "check which dimension you reduce or keep (`dim=`, `keepdim=`)."
        if got.dim() == 2 and got.shape == expected.shape[::-1]:
            hint = "it looks transposed: swap the dimensions, or check the order of the operands."
        return wrong(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}.", hint)
    if check_dtype and got.dtype != expected.dtype:
        return wrong(f"{what} has dtype {got.dtype}, expected {expected.dtype}.",
                     f"convert with `.to({expected.dtype})`, or start from tensors of that dtype.")
    g = got.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    if torch.allclose(g, e, atol=atol, rtol=rtol):
        return None
    nonzero = e.abs() > 1e-12
    if nonzero.any() and (g[~nonzero].abs() <= atol).all():
        ratios = g[nonzero] / e[nonzero]
        factor = ratios.flatten()[0].item()
        if abs(factor - 1) > 1e-3 and torch.allclose(ratios, torch.full_like(ratios, factor), rtol=1e-4):
            return wrong(f"{what} is off by a factor of {factor:.4g} everywhere.",
                         "look for a missing or extra division, mean instead of sum, or a wrong constant.")
    if g.dim() == 2 and g.shape[0] == g.shape[1] and torch.allclose(g.T, e, atol=atol, rtol=rtol):
        return wrong(f"{what} is the transpose of the expected one.",
                     "check the order of the operands and of the dimensions.")
    worst = (g - e).abs().max().item()
    return wrong(f"{what} differs from the expected values (largest difference {worst:.3g}).",
                 "try your function on a tiny input you can work out by hand.")


def check_function(function: Any, cases: list[tuple[tuple, torch.Tensor]], *, what: str,
                   success: str, **compare: Any) -> Outcome:
    """Run the learner's function on each (args, expected) case; the first mismatch decides."""
    for args, expected in cases:
        got = attempt(function, *args)
        if isinstance(got, Outcome):
            return got
        problem = compare_tensors(got, expected, what=what, **compare)
        if problem is not None:
            return problem
    return solved(success)


Checker = Callable[..., Outcome]
