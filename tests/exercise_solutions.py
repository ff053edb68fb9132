"""The solutions of a notebook's exercises, taken from its cells tagged ``solution``.

The unit tests of the checkers (tests/test_exercises_nbNN.py) run each checker on the very code
the notebook shows as its solution. A solution cell may go on to use the notebook's own data;
only its imports, its functions and classes, its constants (UPPER_CASE) and the assignment of the
answer itself are taken, and run in a fresh module with the names every notebook imports.
"""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import fashion_course as fc

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def solution_sources(notebook: str) -> list[str]:
    """The source of every cell tagged ``solution`` in ``notebooks/<notebook>.ipynb``."""
    nb = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]


def _kept(node: ast.stmt, answer: str) -> bool:
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        return bool(names) and all(n == answer or n.isupper() for n in names)
    return False


def solution(notebook: str, answer: str, **names) -> object:
    """The object the notebook's solution binds to ``answer`` (a function, a model ...).

    The solution runs in a module of its own, registered in ``sys.modules`` so that pickle can find
    its functions by name, as it finds a notebook's; ``names`` adds what it needs besides
    ``torch``, ``nn``, ``F`` and ``fc`` (``device`` is the CPU unless given).
    """
    for code in solution_sources(notebook):
        tree = ast.parse(code)
        if not any(isinstance(n, ast.FunctionDef | ast.Assign) and answer in
                   ([n.name] if isinstance(n, ast.FunctionDef) else
                    [t.id for t in n.targets if isinstance(t, ast.Name)]) for n in tree.body):
            continue
        tree.body = [n for n in tree.body if _kept(n, answer)]
        module = types.ModuleType(f"solution_{notebook}_{answer}")
        module.__dict__.update(torch=torch, nn=nn, F=F, fc=fc, device=torch.device("cpu"), **names)
        sys.modules[module.__name__] = module
        exec(compile(tree, f"<{notebook}: solution of {answer}>", "exec"), module.__dict__)
        return module.__dict__[answer]
    raise LookupError(f"{notebook}: no solution cell defines {answer}")


def function_stub(*args):
    ...  # what an untouched exercise cell defines


def assert_solution_solves_and_stubs_do_not(notebook: str, checkers, name: str, *,
                                            stubs=(None, function_stub)):
    """The notebook's own solution for ``name`` is accepted; each untouched stub is "not solved"."""
    check = getattr(checkers, f"check_{name}")
    outcome = check(solution(notebook, name))
    assert outcome and outcome.status == "solved", outcome
    for untouched in stubs:
        assert check(untouched).status == "not solved", untouched
