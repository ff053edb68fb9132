"""Checkers for the exercises at the end of every notebook.

Each notebook ends with two or three exercises. The learner fills in a stub cell; the cell after
it calls a checker from this package, for example::

    fc.exercises.nb01.check_brightest_image(brightest_image)

A checker never raises because of the learner's answer. It returns an :class:`Outcome`, shown as
one line: ``not solved yet`` for the untouched stub, ``not quite: ...`` with what is wrong and a
hint for a wrong answer, ``solved: ...`` for a right one. ``bool(outcome)`` is true only when
solved, so a solution cell can ``assert`` it.

One module per notebook (``nb01`` ... ``nb10``), loaded on first use.
"""

from __future__ import annotations

import importlib
import re

from ._core import (
    Outcome,
    attempt,
    check_function,
    compare_tensors,
    is_stub,
    not_solved,
    solved,
    wrong,
)

__all__ = [
    "Outcome", "attempt", "check_function", "compare_tensors", "is_stub", "not_solved", "solved", "wrong",
]


def __getattr__(name: str):
    if re.fullmatch(r"nb\d\d", name):
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                raise AttributeError(f"fashion_course.exercises has no checkers for {name}") from None
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
