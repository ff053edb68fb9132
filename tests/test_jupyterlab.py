"""The course as learners meet it: JupyterLab in a real (headless) Chromium, driven with Playwright.

A `jupyter lab` server from this environment serves a temporary copy of the notebooks (the
committed ones are never touched). For each notebook the browser opens it from the server, runs it
with JupyterLab's own menu "Run" > "Run All Cells", waits for the kernel to stay idle, saves with
Ctrl+S and reads the saved notebook back: every code cell ran, no error output except in cells
tagged `raises-exception`, every cell that stored a figure shows a figure again, and exercise
solutions are still collapsed. A screenshot of each run is kept in `test-artifacts/jupyterlab/`.

By default it covers 01, 02, 05, 06 and 09; `FASHION_COURSE_LAB_NOTEBOOKS=all` covers every
notebook, `FASHION_COURSE_LAB_NOTEBOOKS=03,07` a chosen few. The browser is Debian's `chromium`
(or the one named by `FASHION_COURSE_CHROMIUM`); without it (or without Playwright) the tests
are skipped on a learner's machine and fail in CI.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import browser_support
import pytest
from browser_support import chromium, is_local

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = browser_support.ARTIFACTS / "jupyterlab"
LAB_HOSTS = ("127.0.0.1", "localhost")
IN_CI = ["01", "02", "05", "06", "09"]
EXPECTS_ERROR = {"raises-exception", "nbval-raises-exception"}
NOTEBOOK_TIMEOUT = float(os.environ.get("FASHION_COURSE_LAB_TIMEOUT", 1800))
IDLE_SECONDS = 3.0


def chosen_notebooks() -> list[str]:
    """The notebooks to run: the CI set, or what FASHION_COURSE_LAB_NOTEBOOKS asks for."""
    present = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    wanted = os.environ.get("FASHION_COURSE_LAB_NOTEBOOKS", "").strip()
    if wanted.lower() == "all":
        return present
    prefixes = [w.strip() for w in wanted.split(",") if w.strip()] if wanted else IN_CI
    return [name for name in present if any(name.startswith(p) for p in prefixes)]


# module scope: Playwright's sync API allows one instance at a time, so this one must be closed
# before the other browser test module starts its own
@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running `jupyter lab` on 127.0.0.1 serving `root` (a temporary copy of the course)."""

    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(self.url(f"api/{path}"), method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def shutdown_kernels(self) -> None:
        for kernel in self.api("kernels"):
            self.api(f"kernels/{kernel['id']}", method="DELETE")


def copy_course(root: Path) -> None:
    """The notebooks copied, and what they read next to them (examples/, data/) linked."""
    (root / "notebooks").mkdir(parents=True)
    for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        (root / "notebooks" / path.name).write_bytes(path.read_bytes())
    for folder in ("examples", "data"):
        if (ROOT / folder).is_dir():
            (root / folder).symlink_to(ROOT / folder, target_is_directory=True)


def stop(process: subprocess.Popen) -> None:
    """Graceful first (the server shuts its kernels down), then the whole process group."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def end_with_parent() -> None:
    """In the server's process, before it starts: on Linux, receive SIGTERM when the tests die.

    Even a test run killed with SIGKILL then leaves no server behind; the server, on SIGTERM,
    shuts its kernels down.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def kill_kernels_of(runtime: Path) -> None:
    """Kernels run in sessions of their own: end any this server started that outlived it.

    Each kernel's command line names its connection file in this run's runtime folder, so only
    processes started by this test are found.
    """
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(runtime).encode() in cmdline.read_bytes():
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """`jupyter lab` from this environment with a token on a free port, stopped whatever happens."""
    root = tmp_path_factory.mktemp("lab")
    copy_course(root)
    settings = tmp_path_factory.mktemp("lab-settings")
    env = dict(os.environ)
    env.update({
        "FASHION_COURSE_THREADS": env.get("FASHION_COURSE_THREADS", "2"),
        # the kernel imports this checkout's package
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        # JupyterLab's own settings and workspaces, not the user's: the defaults a learner starts with
        "JUPYTERLAB_SETTINGS_DIR": str(settings / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(settings / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(settings / "runtime"),
    })
    # no "get notified about Jupyter news?" prompt over the screenshots
    notification = settings / "settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), os.urandom(16).hex()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
               "--port", str(port), f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
               # a server left behind by a killed test run ends itself
               "--ServerApp.shutdown_no_activity_timeout=600"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = settings / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=end_with_parent)
    server = Lab(root, port, token, process, log)
    # a `timeout` or a CI runner ending the tests with SIGTERM: tear down as after Ctrl+C
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within 180 s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        try:
            if process.poll() is None:
                server.shutdown_kernels()
        except OSError:
            pass
        stop(process)
        kill_kernels_of(settings / "runtime")
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="module")
def artifacts(request):
    return browser_support.screenshots(request.config, "JupyterLab screenshots", ARTIFACTS)


@dataclass
class LabRun:
    saved: dict
    seconds: float
    screenshot: Path
    collapsed_in_page: int
    images_in_page: int
    external: list[str]


def kernel_status(page) -> str:
    """The kernel's state as the status bar shows it: "Python 3 (ipykernel) | Idle" gives "Idle"."""
    text = page.locator("#jp-main-statusbar").inner_text(timeout=10_000)
    found = re.search(r"^.* \| (\w[\w ]*)$", text, re.M)
    return found.group(1) if found else "unknown"


def wait_for_status(page, wanted: str, seconds: float, *, stay: float = 0.0) -> None:
    """Poll the status bar until the kernel reads `wanted` for `stay` seconds in a row."""
    deadline = time.monotonic() + seconds
    since = None
    while True:
        status = kernel_status(page)
        if status == wanted:
            since = since or time.monotonic()
            if time.monotonic() - since >= stay:
                return
        else:
            since = None
        if status in ("Dead", "Disconnected"):
            raise AssertionError(f"the kernel is {status}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel did not stay {wanted} within {seconds:.0f} s (now: {status})")
        page.wait_for_timeout(250)


def run_in_lab(lab: Lab, browser, name: str, artifacts: browser_support.Screenshots) -> LabRun:
    """Open notebooks/NAME.ipynb from JupyterLab's file browser, Run All Cells, wait, save, read it back."""
    path = lab.root / "notebooks" / f"{name}.ipynb"
    before = path.stat().st_mtime_ns
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    screenshot = ARTIFACTS / f"{name}.png"
    start = time.monotonic()
    page = None
    try:
        page = context.new_page()
        external: list[str] = []
        page.on("request", lambda r: None if is_local(r.url, LAB_HOSTS) else external.append(r.url))
        # JupyterLab with a fresh workspace, its file browser in notebooks/; open the notebook there
        page.goto(lab.url(f"lab/tree/notebooks?reset&token={lab.token}"))
        item = page.locator(".jp-DirListing-item .jp-DirListing-itemText", has_text=re.compile(
            rf"^{re.escape(name)}\.ipynb$"))
        item.wait_for(state="visible", timeout=120_000)
        item.dblclick()
        page.locator(".jp-NotebookPanel").first.wait_for(state="visible", timeout=120_000)
        wait_for_status(page, "Idle", 180)
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        # a fast notebook may finish between two polls: "Busy" is not required, a stable "Idle" is
        try:
            wait_for_status(page, "Idle", NOTEBOOK_TIMEOUT, stay=IDLE_SECONDS)
        except AssertionError as exc:
            # where it got to: the screenshot shows the running cell, the message counts the finished
            prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
            running = page.locator(".jp-CodeCell .jp-InputPrompt", has_text="[*]")
            if running.count():
                running.first.scroll_into_view_if_needed()
            done = sum(bool(re.search(r"\[\d+\]", text)) for text in prompts)
            raise AssertionError(
                f"{name}: {exc}; {done} of {len(prompts)} code cells had finished (a slower machine "
                "needs a larger FASHION_COURSE_LAB_TIMEOUT, in seconds)") from None
        seconds = time.monotonic() - start
        page.locator(".jp-NotebookPanel .jp-Notebook").first.click(position={"x": 5, "y": 5})
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 60
        while path.stat().st_mtime_ns == before or page.locator(".jp-mod-dirty").count():
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}: Ctrl+S did not save the notebook within 60 s")
            page.wait_for_timeout(250)
        collapsed = page.locator(".jp-Cell .jp-InputPlaceholder").count()
        images = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length")
        return LabRun(json.loads(path.read_text(encoding="utf-8")), seconds, screenshot,
                      collapsed, images, external)
    finally:
        try:
            if page is not None:
                page.screenshot(path=str(screenshot))
                artifacts.add(screenshot)
        except Exception:  # the screenshot is evidence, not the test: never mask the real failure
            pass
        context.close()
        try:
            lab.shutdown_kernels()  # a fresh kernel for the next notebook, and its memory back
        except OSError:
            pass


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def has_image(cell: dict) -> bool:
    return any("image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {}) or
               "image/svg+xml" in o.get("data", {}) for o in cell.get("outputs", []))


def describe(index: int, cell: dict) -> str:
    lines = "".join(cell["source"]).strip().splitlines() or ["(empty)"]
    return f"code cell {index} ({lines[0][:60]!r})"


def problems(saved: dict, stored: dict) -> list[str]:
    """What is wrong with a notebook JupyterLab ran and saved, measured against its stored copy."""
    found = []
    cells = code_cells(saved)
    for index, cell in enumerate(cells, start=1):
        where = describe(index, cell)
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        if cell.get("execution_count") is None:
            found.append(f"{where} did not run")
        elif errors and not tags(cell) & EXPECTS_ERROR:
            found.append(f"{where} raised {errors[0]['ename']}: {errors[0]['evalue']}")
        elif tags(cell) & EXPECTS_ERROR and not errors:
            found.append(f"{where} did not raise as its tag expects")
        hidden = cell.get("metadata", {}).get("jupyter", {}).get("source_hidden")
        if "solution" in tags(cell) and hidden is not True:
            found.append(f"{where} is a solution whose input is no longer collapsed")
    stored_cells = code_cells(stored)
    if len(stored_cells) != len(cells):
        found.append(f"the saved notebook has {len(cells)} code cells, the stored one {len(stored_cells)}")
        return found
    for index, (old, new) in enumerate(zip(stored_cells, cells, strict=True), start=1):
        if has_image(old) and not has_image(new) and new.get("execution_count") is not None:
            found.append(f"{describe(index, new)} stored a figure but showed none in JupyterLab")
    return found


# --- the check itself, on small notebooks: a run that must pass and one that must fail ----------

PIXEL = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def small_notebook(*, broken: bool) -> dict:
    """A figure, an expected error, a collapsed solution and, when `broken`, a cell that raises."""
    def code(source, tags=(), outputs=(), hidden=False):
        metadata = {"tags": list(tags)} if tags else {}
        if hidden:
            metadata["jupyter"] = {"source_hidden": True}
        return {"cell_type": "code", "execution_count": None, "metadata": metadata,
                "outputs": list(outputs), "source": source}

    figure = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": PIXEL, "text/plain": "<Figure size 640x480 with 1 Axes>"}}
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# A small notebook for the check"},
        code("import matplotlib.pyplot as plt\nfirst = 1"),
        code("plt.plot([0, 1], [1, 0])\nplt.show()", outputs=[figure]),
        code('raise ValueError("shown on purpose")', tags=["raises-exception"]),
        code("answer = first + 41\nassert answer == 42", tags=["solution"], hidden=True),
    ]
    if broken:
        cells.append(code("1 / 0"))
    cells.append(code("last = answer"))
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}}


@pytest.mark.parametrize("broken", [False, True], ids=["sound", "broken"])
def test_the_check_passes_a_sound_notebook_and_catches_a_raising_cell(broken, lab, browser, artifacts):
    name = f"check_{'broken' if broken else 'sound'}"
    stored = small_notebook(broken=broken)
    (lab.root / "notebooks" / f"{name}.ipynb").write_text(json.dumps(stored), encoding="utf-8")
    result = run_in_lab(lab, browser, name, artifacts)
    found = problems(result.saved, stored)
    assert result.collapsed_in_page == 1, "the solution cell is not shown collapsed"
    assert result.images_in_page >= 1, "the figure did not show"
    assert not result.external
    if broken:
        assert found == ["code cell 5 ('1 / 0') raised ZeroDivisionError: division by zero",
                         "code cell 6 ('last = answer') did not run"]
    else:
        assert found == []


def test_problems_names_an_expanded_solution_and_a_missing_figure():
    stored = small_notebook(broken=False)
    saved = json.loads(json.dumps(stored))
    for index, cell in enumerate(code_cells(saved), start=1):
        cell["execution_count"] = index
    code_cells(saved)[1]["outputs"] = []
    del code_cells(saved)[3]["metadata"]["jupyter"]
    assert problems(saved, stored) == [
        "code cell 3 ('raise ValueError(\"shown on purpose\")') did not raise as its tag expects",
        "code cell 4 ('answer = first + 41') is a solution whose input is no longer collapsed",
        "code cell 2 ('plt.plot([0, 1], [1, 0])') stored a figure but showed none in JupyterLab",
    ]


# --- the course's notebooks ---------------------------------------------------------------------

@pytest.mark.parametrize("name", chosen_notebooks())
def test_notebook_runs_in_jupyterlab(name, lab, browser, artifacts):
    stored = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    result = run_in_lab(lab, browser, name, artifacts)
    found = problems(result.saved, stored)
    assert not found, f"{name} in JupyterLab (screenshot: {result.screenshot}):\n" + "\n".join(found)
    hidden = [c for c in stored["cells"] if c["metadata"].get("jupyter", {}).get("source_hidden")]
    assert result.collapsed_in_page == len(hidden), "collapsed cells (solutions) are not shown collapsed"
    if any(has_image(c) for c in code_cells(stored)):
        assert result.images_in_page > 0, "figures are in the saved notebook but none showed in the page"
    assert not result.external, f"JupyterLab fetched from another host: {result.external}"
