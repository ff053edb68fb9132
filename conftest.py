"""Root pytest configuration shared by the unit tests and the strict nbval run of notebooks/.

- ``pytest --nbval notebooks/`` applies notebooks/sanitize.cfg without being told (from any working
  directory): the rules that map what legitimately differs on a GPU. An explicit
  ``--nbval-sanitize-with FILE`` still wins.
- Strict nbval compares every output, stderr included: a new warning a cell starts printing fails
  that cell. No compared cell of the stored run prints to stderr (only 05's tqdm bar, in a cell whose
  output is ignored); a known harmless line would get its own named rule in sanitize.cfg, never a
  rule that drops stderr wholesale.
- In CI (CI=true) a skipped test fails, unless it needs a GPU.
- No test reaches the network (tests/network_guard/sitecustomize.py), nor does any Python process
  a test starts, notebook kernels included.
"""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "notebooks" / "sanitize.cfg"
NETWORK_GUARD = ROOT / "tests" / "network_guard"

runpy.run_path(str(NETWORK_GUARD / "sitecustomize.py"))  # this process
os.environ["PYTHONPATH"] = os.pathsep.join(  # and every Python process started from it
    [str(NETWORK_GUARD), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                           if p and p != str(NETWORK_GUARD)]]
)


def pytest_configure(config):
    option = config.option
    nbval = getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)
    given = getattr(option, "nbval_sanitize_with", None) or getattr(option, "sanitize_with", None)
    if nbval and not given:
        option.nbval_sanitize_with = str(SANITIZE)


# In CI (CI=true, exported by .ci/run) the machine is set up completely, so a skipped test is a
# failure: nothing may quietly not run, except what needs a GPU (say "GPU" or "CUDA" in the reason).
GPU_WORDS = ("GPU", "CUDA")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not (os.environ.get("CI") and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(word in reason for word in GPU_WORDS):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where everything must run: {reason}"


# Time per notebook: the seconds of each notebook's cells, summed, printed after every run that
# executes notebooks (the README's course map quotes these from a run on a 2-core CPU).
_notebook_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] = _notebook_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("seconds per notebook (setup, cells and teardown)")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):8.1f} s  in all")
