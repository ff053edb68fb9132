"""Hygiene of the stored notebooks: what strict nbval relies on, and the course's conventions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
COURSE = [
    "01_tensors",
    "02_datasets_and_transforms",
    "03_build_the_model",
    "04_autograd",
    "05_optimization_loop",
    "06_save_load_onnx",
    "07_cnn",
    "08_troubleshooting",
    "09_classify_your_own_images",
    "10_distributed",
]
EXPECTS_ERROR = {"raises-exception", "nbval-raises-exception"}


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_course_is_complete_and_ordered():
    present = sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
    assert present == COURSE


@pytest.mark.parametrize("name", COURSE)
def test_stored_from_one_clean_run(name):
    nb = load(name)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = [c["execution_count"] for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), "re-run with scripts/run_notebooks.py"
    for cell in code_cells(nb):
        tags = set(cell.get("metadata", {}).get("tags", []))
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        if tags & EXPECTS_ERROR:
            assert errors, f"cell marked to raise did not raise:\n{source(cell)}"
        else:
            assert not errors, f"unexpected error in:\n{source(cell)}"


@pytest.mark.parametrize("name", COURSE)
def test_follows_the_course_conventions(name):
    nb = load(name)
    first = source(code_cells(nb)[0])
    assert "import fashion_course as fc" in first
    assert "fc.seed_everything(" in first and "fc.choose_device()" in first
    assert nb["cells"][0]["cell_type"] == "markdown" and source(nb["cells"][0]).startswith("# ")
    text = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown").lower()
    assert "exercise" in text and "summary" in text
    assert any("assert" in source(c) for c in code_cells(nb))


@pytest.mark.parametrize("name", COURSE)
def test_no_older_course_mistakes_in_code(name):
    for cell in code_cells(load(name)):
        code = source(cell)
        for line in code.splitlines():
            for call in re.findall(r"torch\.load\([^)]*\)", line):
                # weights_only=False only where a cell shows the danger, marked on the same line
                safe = "weights_only=True" in call or "never do this" in line
                assert safe, f"{name}: {call}"
        assert ".forward(X)" not in code and "model.forward(" not in code
        assert "retain_variables" not in code or "raises-exception" in cell["metadata"].get("tags", [])


@pytest.mark.parametrize("name", COURSE)
def test_outputs_hold_no_machine_specific_paths(name):
    for cell in code_cells(load(name)):
        for output in cell["outputs"]:
            text = json.dumps({k: v for k, v in output.items() if k not in ("traceback",)})
            text = re.sub(r'"image/png": "[^"]*"', "", text)
            tags = cell.get("metadata", {}).get("tags", [])
            if "nbval-ignore-output" in tags:
                continue
            for marker in ("/work/", "/home/", "/tmp/", "/root/", "/usr/share/datasets"):
                assert marker not in text, f"{name}: output mentions {marker}:\n{source(cell)}"
