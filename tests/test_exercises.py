"""The exercises at the end of every notebook: their shape, and a run as a learner who solved none.

Each notebook's checkers are unit-tested in tests/test_exercises_nbNN.py (solution accepted, typical
wrong answers rejected with a hint, the stub reported as not solved). Here: every notebook has two
or three exercises in the course's shape, and runs to its end with the solutions taken out.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import fashion_course as fc
from fashion_course.exercises import Outcome

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def cells(name: str) -> list[dict]:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def solution_cells(name: str) -> list[dict]:
    return [c for c in cells(name) if "solution" in c.get("metadata", {}).get("tags", [])]


def test_outcomes_read_as_one_line_and_are_true_only_when_solved():
    ex = fc.exercises
    ok, bad, todo = ex.solved("right."), ex.wrong("off.", "look."), ex.not_solved()
    assert bool(ok) and not bad and not todo
    assert str(ok) == "solved: right."
    assert str(bad) == "not quite: off. Hint: look."
    assert str(todo).startswith("not solved yet")


def test_attempt_turns_stubs_and_crashes_into_outcomes():
    def stub(x):
        ...

    def crash(x):
        return x.nope

    assert fc.exercises.attempt(None).status == "not solved"
    assert fc.exercises.attempt(stub, 1).status == "not solved"
    crashed = fc.exercises.attempt(crash, 1)
    assert crashed.status == "wrong" and "AttributeError" in crashed.message
    assert fc.exercises.attempt(lambda x: x + 1, 1) == 2


def test_compare_tensors_names_the_mistake():
    import torch

    expected = torch.arange(6.0).reshape(2, 3) + 1
    assert fc.exercises.compare_tensors(expected.clone(), expected) is None
    assert "shape" in fc.exercises.compare_tensors(expected.T, expected).message
    assert "dtype" in fc.exercises.compare_tensors(expected.double(), expected).message
    assert "factor of 2" in fc.exercises.compare_tensors(expected * 2, expected).message
    assert "tensor" in fc.exercises.compare_tensors([1, 2], expected).message


@pytest.mark.parametrize("name", NAMES)
def test_two_or_three_exercises_with_hidden_checked_solutions(name):
    nb_cells = cells(name)
    module = f"nb{name[:2]}"
    solutions = solution_cells(name)
    assert 2 <= len(solutions) <= 3, f"{name}: {len(solutions)} solution cells, expected 2 or 3"
    checkers = getattr(fc.exercises, module)
    for cell in solutions:
        assert cell["cell_type"] == "code"
        hidden = cell["metadata"].get("jupyter", {}).get("source_hidden")
        assert hidden is True, f"{name}: solution not collapsed"
        code = source(cell)
        called = re.findall(rf"fc\.exercises\.{module}\.(check_\w+)\(", code)
        assert called, f"{name}: a solution cell must run its checker:\n{code}"
        assert re.search(r"^assert ", code, re.M), f"{name}: a solution cell must assert its outcome"
        for checker in called:
            assert callable(getattr(checkers, checker))
        index = nb_cells.index(cell)
        # the learner's stub and the check cell come before the solution, the check runs the same checker
        before = [source(c) for c in nb_cells[max(0, index - 3):index] if c["cell_type"] == "code"]
        assert any(f"fc.exercises.{module}.{called[0]}(" in s for s in before), (
            f"{name}: no check cell calling {called[0]} before its solution")


@pytest.mark.parametrize("name", NAMES)
def test_every_checker_reports_an_untouched_stub_as_not_solved(name):
    checkers = getattr(fc.exercises, f"nb{name[:2]}")
    for attribute in dir(checkers):
        if attribute.startswith("check_"):
            outcome = getattr(checkers, attribute)(None)
            assert isinstance(outcome, Outcome) and outcome.status == "not solved", (attribute, outcome)


@pytest.mark.parametrize("name", NAMES)
def test_runs_to_the_end_without_the_solutions(name, tmp_path):
    """A learner who has solved nothing yet runs the whole notebook: no unexpected error."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nb.cells = [c for c in nb.cells if "solution" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    env = {"FASHION_COURSE_THREADS": os.environ.get("FASHION_COURSE_THREADS", "2"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, kernel_name="python3", timeout=1200, allow_errors=True,
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        client.execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    unexpected = []
    not_solved = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        expected = {"raises-exception", "nbval-raises-exception"} & set(cell.metadata.get("tags", []))
        for output in cell.outputs:
            if output.output_type == "error" and not expected:
                unexpected.append(f"{output.ename}: {output.evalue}\n--- in:\n{cell.source}")
            text = output.get("text", "") + output.get("data", {}).get("text/plain", "")
            not_solved += text.count("not solved yet")
    assert not unexpected, "\n\n".join(unexpected)
    assert not_solved >= len(solution_cells(name)), f"{name}: each check cell should say 'not solved yet'"
