"""Hygiene of the stored notebooks: what strict nbval relies on, and the course's conventions."""

from __future__ import annotations

import json
import re
from datetime import datetime
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


# ------------------------------------------------------------------ what a stored output may hold
#
# Each rule is a function from a notebook (the JSON as a dict) to a list of problems, so that the
# synthetic notebooks below can show that every rule fails where it should.

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
IMAGES = ("image/png", "image/jpeg")
# An absolute path of some machine: a system or home folder, a Windows drive, a virtual
# environment or an installed library. Not the machine-free forms the canonical runner stores
# (".../site-packages/torch/...", "./fashion_course/..."), nor relative paths such as "data/tmp/".
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~])/(?:work|home|root|tmp|usr|opt|Users|var|private|mnt|srv|etc|nix)/"
    r"|(?<![\w.])/[\w.+-]+(?:/[\w.+-]+)*/(?:site-packages|dist-packages|\.venv|venv)/"
    r"|\b[A-Za-z]:\\"
)
# A memory address: "<function <lambda> at 0x7f3a2b1c9d80>", or any hex number too long to be a
# 32-bit value. The IDX magic numbers 0x00000803 / 0x00000801 that 02 and 06 print are content.
ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]{9,}\b")


def output_texts(cell: dict):
    """Every string a stored output shows a learner, tracebacks included (colour codes removed)."""
    for output in cell.get("outputs", []):
        for key, value in output.items():
            if key in ("output_type", "metadata", "execution_count", "name", "transient"):
                continue
            if key == "data":
                for mime, payload in value.items():
                    if mime not in IMAGES:
                        yield "".join(payload) if isinstance(payload, list) else json.dumps(payload)
            elif key == "traceback":
                yield ANSI.sub("", "\n".join(value))
            else:
                yield "".join(value) if isinstance(value, list) else str(value)


def _where(name: str, index: int, cell: dict) -> str:
    return f"{name} cell {index} ({source(cell).splitlines()[0][:60] if source(cell) else 'empty'!r})"


def _around(text: str, match: re.Match) -> str:
    return "..." + text[max(0, match.start() - 60):match.end() + 40] + "..."


def path_problems(nb: dict, name: str = "notebook") -> list[str]:
    return [f"{_where(name, i, c)}: absolute path {m.group(0)!r} in: {_around(text, m)}"
            for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            for text in output_texts(c) for m in [ABSOLUTE_PATH.search(text)] if m]


def address_problems(nb: dict, name: str = "notebook") -> list[str]:
    return [f"{_where(name, i, c)}: memory address {m.group(0)!r} in: {_around(text, m)}"
            for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
            for text in output_texts(c) for m in [ADDRESS.search(text)] if m]


def ignores_output(cell: dict) -> bool:
    tags = cell.get("metadata", {}).get("tags", [])
    return "nbval-ignore-output" in tags or "# NBVAL_IGNORE_OUTPUT" in source(cell).splitlines()


def unchecked_ignored_output_problems(nb: dict, name: str = "notebook") -> list[str]:
    """A cell whose output nbval ignores must be followed by a code cell that asserts on it."""
    problems, cells = [], nb["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not ignores_output(cell):
            continue
        following = next((c for c in cells[i + 1:] if c["cell_type"] == "code"), None)
        if following is None or not re.search(r"^\s*assert\b", source(following), re.MULTILINE):
            problems.append(f"{_where(name, i, cell)}: output ignored by nbval, and the next code cell "
                            "asserts nothing about it")
    return problems


# ------------------------------------------------------------------------ time the text promises

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
           "nine": 9, "ten": 10, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "min": 60, "mins": 60, "minute": 60,
         "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}
TIME_CLAIM = re.compile(
    r"(?i)(?P<over>\b(?:over|more than|at least)\s+)?"
    r"(?:\b(?:under|less than|within|about|around|roughly|only)\s+)?"
    r"(?:(?P<num>\d+(?:\.\d+)?|" + "|".join(NUMBERS) + r")(?:\s*(?:-|–|to)\s*(?P<num2>\d+(?:\.\d+)?|"
    + "|".join(NUMBERS) + r"))?(?:\s|-)*(?P<unit>" + "|".join(sorted(UNITS, key=len, reverse=True))
    + r")\b|(?P<few>a few|a couple of)\s+(?P<funit>seconds|minutes)\b"
    r"|(?P<half>half a minute)|\b(?P<a>a|an|one)\s+(?P<aunit>minute|hour)\b)"
)
ELSEWHERE = re.compile(r"(?i)^[^.;\n]{0,25}\b(?:on|with) (?:a |your )?(?:GPU|CUDA|more cores)")
SAFETY = 1.5  # the canonical run's time may exceed a promise by half before the text is wrong


def claimed_seconds(text: str) -> list[tuple[str, float]]:
    """Each time promise in ``text`` as (the words, the most seconds it allows).

    "about 20 seconds", "15-20 s", "under a minute", "half a minute", "a few seconds" (10 s), "a few
    minutes" (5 min). Skipped: lower bounds ("over a minute") and times said of another machine
    ("a few seconds on a GPU"), which the stored CPU run cannot confirm.
    """
    claims = []
    for m in TIME_CLAIM.finditer(text):
        if m.group("over") or ELSEWHERE.match(text[m.end():]):
            continue
        if m.group("unit"):
            value = m.group("num2") or m.group("num")
            unit = m.group("unit")
            if unit.lower() in ("s", "h") and value.lower() in NUMBERS:  # "two s" is no claim
                continue
            number = NUMBERS.get(value.lower()) or float(value)
            seconds = number * UNITS[unit.lower()]
        elif m.group("few"):
            seconds = 10.0 if m.group("funit").lower() == "seconds" else 300.0
        elif m.group("half"):
            seconds = 30.0
        else:
            seconds = UNITS[m.group("aunit").lower()]
        claims.append((m.group(0).strip(), seconds))
    return claims


def execution_seconds(cell: dict) -> float | None:
    """The stored run's time of a code cell (nbclient's record_timing), or None if not recorded."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def time_claim_problems(nb: dict, name: str = "notebook") -> list[str]:
    """A promise in a markdown cell must hold for the code cells just before and just after it."""
    problems, cells = [], nb["cells"]
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(cells) and cells[j]["cell_type"] == "code"]
        for words, allowed in claimed_seconds(source(cell)):
            for j in neighbours:
                took = execution_seconds(cells[j])
                if took is not None and took > SAFETY * allowed:
                    problems.append(f"{name} cell {i} promises {words!r}, but code cell {j} took "
                                    f"{took:.0f} s in the stored run: correct the text, or make the "
                                    "cell faster")
    return problems


def untimed_problems(nb: dict, name: str = "notebook") -> list[str]:
    return [f"{_where(name, i, c)}: no execution timing stored (re-run with scripts/run_notebooks.py)"
            for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code" and execution_seconds(c) is None]


RULES = [path_problems, address_problems, unchecked_ignored_output_problems, time_claim_problems,
         untimed_problems]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
@pytest.mark.parametrize("name", COURSE)
def test_stored_outputs_are_clean(name, rule):
    problems = rule(load(name), name)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------- the rules above, on synthetic notebooks


def _notebook(tmp_path, *cells) -> dict:
    """A small notebook written to and read back from ``tmp_path``, as the real ones are."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.from_dict(nbformat.v4.new_notebook(cells=list(cells)))
    path = tmp_path / "synthetic.ipynb"
    nbformat.write(nb, path)
    return json.loads(path.read_text(encoding="utf-8"))


def _code(src, *outputs, tags=(), seconds=0.5):
    nbformat = pytest.importorskip("nbformat")
    cell = nbformat.v4.new_code_cell(src, execution_count=1, outputs=list(outputs))
    if tags:
        cell.metadata["tags"] = list(tags)
    cell.metadata["execution"] = {"iopub.execute_input": "2026-01-01T10:00:00.000000Z",
                                  "shell.execute_reply": f"2026-01-01T10:{int(seconds) // 60:02d}:"
                                                         f"{seconds % 60:09.6f}Z"}
    return cell


def _stdout(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


def _error(*traceback, evalue="boom"):
    return {"output_type": "error", "ename": "RuntimeError", "evalue": evalue, "traceback": list(traceback)}


def _markdown(text):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.v4.new_markdown_cell(text)


def _all_problems(nb):
    return [p for rule in RULES for p in rule(nb)]


def test_a_clean_synthetic_notebook_passes_every_rule(tmp_path):
    nb = _notebook(
        tmp_path,
        _markdown("# Title\nThe next cell reads the labels (a few seconds)."),
        _code("print(magic)", _stdout("magic number 0x00000801, 60000 labels from data/t10k\n")),
        _code("1 / 0", _error("\x1b[0;31mFile \x1b[0;32m.../site-packages/torch/_tensor.py:626\x1b[0m",
                              "File ./fashion_course/models.py:34")),
        _code("train()", _stdout("epoch 1: 85.10 %\n"), tags=["nbval-ignore-output"], seconds=25),
        _markdown("That took under a minute."),
        _code("assert history.test_accuracy[-1] > 0.8"),
    )
    assert _all_problems(nb) == []


@pytest.mark.parametrize("output, where", [
    (_stdout("Fashion-MNIST from /usr/share/datasets/fashion-mnist\n"), "/usr/"),
    (_stdout("saved to /tmp/pytest-7/model.pth\n"), "/tmp/"),
    ({"output_type": "execute_result", "execution_count": 1, "metadata": {},
      "data": {"text/plain": "PosixPath('/home/ada/course/model.pth')"}}, "/home/"),
    (_stdout("C:\\Users\\ada\\model.pth\n"), "C:\\"),
    (_error("\x1b[0;31mFile \x1b[0;32m/work/main/.venv/lib/python3.11/site-packages/torch/_tensor.py:626"),
     "/work/"),
    (_error("File /opt/conda/envs/fc/lib/python3.11/site-packages/torch/_tensor.py:626"), "/opt/"),
    (_error("File /srv/ada/.venv/lib/python3.11/site-packages/torch/_tensor.py:626"), "/srv/"),
    (_error("File /data/ada/venv/lib/python3.11/site-packages/torch/_tensor.py:626"), "venv/"),
])
def test_an_absolute_path_in_any_output_fails(tmp_path, output, where):
    nb = _notebook(tmp_path, _code("x", output))
    (problem,) = path_problems(nb)
    assert "absolute path" in problem and where in problem


@pytest.mark.parametrize("text", [
    "<function <lambda> at 0x7f3a2b1c9d80>",
    "<AddBackward0 object at 0x7fb2c40a1e10>",
    "<torch._C.Generator at 0x55d0c0ffee00>",
    "tensor([2.], grad_fn=<MulBackward0 at 0x00007f3a2b1c>)",
])
def test_a_memory_address_fails_but_an_idx_magic_number_does_not(tmp_path, text):
    nb = _notebook(tmp_path, _code("x", _stdout(f"{text}\n")))
    (problem,) = address_problems(nb)
    assert "memory address" in problem
    magic = _notebook(tmp_path, _code("x", _stdout("magic 0x00000803 (images), 0x00000801 (labels)\n")))
    assert address_problems(magic) == []


def test_an_address_in_a_traceback_or_error_message_fails(tmp_path):
    nb = _notebook(tmp_path, _code("x", _error("Cell In[3]", evalue="Can't pickle <function <lambda> at "
                                                               "0x7f0e3c1d2b80>: attribute lookup failed")))
    assert len(address_problems(nb)) == 1


@pytest.mark.parametrize("after", [
    _code("print(history)"),  # looks at the result, asserts nothing
    _code("# assert history.test_accuracy[-1] > 0.8"),  # a commented-out assert
    None,  # the last cell
])
def test_an_ignored_output_without_an_assert_after_it_fails(tmp_path, after):
    cells = [_code("history = train()", _stdout("85 %\n"), tags=["nbval-ignore-output"]),
             _markdown("An assert in a *markdown* cell does not count: `assert x`")]
    nb = _notebook(tmp_path, *cells, *([after] if after else []))
    (problem,) = unchecked_ignored_output_problems(nb)
    assert "asserts nothing" in problem
    marker = _notebook(tmp_path, _code("# NBVAL_IGNORE_OUTPUT\nhistory = train()"), _code("print(1)"))
    assert len(unchecked_ignored_output_problems(marker)) == 1


@pytest.mark.parametrize("text, seconds", [
    ("This takes a few seconds on a 2-core CPU.", 49),
    ("The next cell trains for 3 epochs, under a minute on a 2-core CPU.", 184),
    ("It takes about 20 seconds on an idle 2-core CPU.", 31),
    ("It trains in about half a minute.", 46),
    ("about five minutes on two cores", 451),
    ("15-20 s on a laptop", 31),
])
def test_a_time_promise_the_stored_run_contradicts_fails(tmp_path, text, seconds):
    for cells in ([_markdown(text), _code("train()", seconds=seconds)],
                  [_code("train()", seconds=seconds), _markdown(text)]):
        nb = _notebook(tmp_path, *cells)
        (problem,) = time_claim_problems(nb)
        assert "promises" in problem and f"took {seconds} s" in problem
    kept = _notebook(tmp_path, _markdown(text), _code("train()", seconds=seconds / 4))
    assert time_claim_problems(kept) == []


@pytest.mark.parametrize("text", [
    "Five epochs that way would take over a minute.",  # a lower bound
    "about half a minute on a 2-core CPU and a few seconds on a GPU.",  # the GPU: another machine
    "A second forward and backward pass doubles the gradient.",  # "a second" is an ordinal
    "later notebooks train in seconds rather than minutes",  # no number
])
def test_what_is_not_a_checkable_promise_is_left_alone(tmp_path, text):
    nb = _notebook(tmp_path, _markdown(text), _code("train()", seconds=40))
    assert time_claim_problems(nb) == []


def test_a_cell_without_stored_timing_fails(tmp_path):
    cell = _code("x")
    del cell.metadata["execution"]
    assert len(untimed_problems(_notebook(tmp_path, cell))) == 1


def test_the_canonical_runner_keeps_timing_and_stores_machine_free_tracebacks():
    import importlib.util
    import sysconfig

    script = NOTEBOOKS.parent / "scripts" / "run_notebooks.py"
    spec = importlib.util.spec_from_file_location("run_notebooks", script)
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    assert "record_timing=True" in Path(spec.origin).read_text()
    site = sysconfig.get_paths()["purelib"]
    lines = [f"\x1b[0;32mFile {site}/torch/_tensor.py:626\x1b[0m, in Tensor.backward",
             f"File {NOTEBOOKS.parent}/fashion_course/models.py:34, in forward",
             "File /opt/conda/lib/python3.10/site-packages/torch/nn/modules/module.py:1783",
             "File /usr/lib/python3.11/json/decoder.py:337, in decode"]
    clean = [runner.machine_free(line) for line in lines]
    assert clean == ["\x1b[0;32mFile .../site-packages/torch/_tensor.py:626\x1b[0m, in Tensor.backward",
                     "File ./fashion_course/models.py:34, in forward",
                     "File .../site-packages/torch/nn/modules/module.py:1783",
                     "File .../lib/python3.11/json/decoder.py:337, in decode"]
    nb = {"cells": [{"cell_type": "code", "source": "x", "outputs": [_error(*clean)]}]}
    assert path_problems(nb) == []


# ------------------------------------------------------------------------- the sanitize rules


def _sanitize(text: str) -> str:
    from nbval.plugin import get_sanitize_patterns

    rules = get_sanitize_patterns((NOTEBOOKS / "sanitize.cfg").read_text(encoding="utf-8"))
    assert rules, "sanitize.cfg has no rules nbval can read"
    for regex, replace in rules:
        text = re.sub(regex, replace, text)
    return text


def test_sanitize_rules_map_a_gpu_run_onto_the_cpu_run():
    pytest.importorskip("nbval")
    assert _sanitize("tensor([1., 2.], device='cuda:0')") == _sanitize("tensor([1., 2.])")
    assert _sanitize("device(type='cuda', index=0)") == "device(type='cpu')"
    assert _sanitize("Using device: cuda") == _sanitize("Using device: cpu")
    assert _sanitize("torch 2.14.1+cu130") == _sanitize("torch 2.14.1+cpu") == "torch 2.14.1"
    a, b = "<function <lambda> at 0x7f3a2b1c9d80>", "<function <lambda> at 0x55d0c0ffee00>"
    assert _sanitize(a) == _sanitize(b) == "<function <lambda> at 0xADDRESS>"


def test_sanitize_rules_leave_content_that_looks_like_an_address_alone():
    pytest.importorskip("nbval")
    for text in ("magic number 0x00000803: images", "magic number 0x00000801: labels",
                 "checksum 0xdeadbeef", "tensor([0.1000, 0.2000])"):
        assert _sanitize(text) == text
    assert _sanitize("0x00000803") != _sanitize("0x00000801")  # a swapped magic number is seen
