"""Execute the course notebooks top to bottom and store their outputs (the canonical CPU run).

    python scripts/run_notebooks.py                 # every notebook in notebooks/
    python scripts/run_notebooks.py 05 06           # only those whose name starts so

The stored outputs are what strict nbval compares against, so they come from one clean run in a
fixed environment: a fresh python3 kernel per notebook, working directory notebooks/, the CPU
(FASHION_COURSE_DEVICE=cpu) and two threads (FASHION_COURSE_THREADS=2). The run is refused if a
cell raises without being marked as expected to raise.

Each code cell keeps its execution timestamps (``metadata.execution``), which the hygiene tests
compare with the time the text promises. The traceback of a cell that is expected to raise is stored
without this machine's paths: the repository becomes ``.``, an installed library
``.../site-packages/torch/...``, the standard library ``.../lib/python3.X/...`` (nbval does not
compare tracebacks; a learner sees their own paths).
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
ENVIRONMENT = {
    "FASHION_COURSE_DEVICE": "cpu",
    "FASHION_COURSE_THREADS": "2",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


def _prefixes() -> list[tuple[str, str]]:
    """(absolute prefix, machine-free replacement), longest first so the most specific wins."""
    pairs = {str(ROOT): "."}
    for key in ("purelib", "platlib"):
        pairs[sysconfig.get_paths()[key]] = ".../site-packages"
    stdlib = sysconfig.get_paths()["stdlib"]
    pairs[stdlib] = f".../lib/{Path(stdlib).name}"
    try:  # the package as the kernel imports it (an editable install may live elsewhere)
        import fashion_course

        pairs.setdefault(str(Path(fashion_course.__file__).resolve().parent.parent), ".")
    except ImportError:
        pass
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


# any other folder that ends in site-packages/ or lib/pythonX.Y/ (another venv, a system Python)
_LIBRARY = re.compile(r"(?:/[^/\s\x1b:'\"()]+)+/(site-packages|lib/python\d+\.\d+)/")


def machine_free(text: str, prefixes: list[tuple[str, str]] | None = None) -> str:
    """``text`` with the absolute paths of this machine rewritten (see the module docstring)."""
    for prefix, replacement in prefixes or _prefixes():
        text = text.replace(prefix + "/", replacement + "/")
    return _LIBRARY.sub(lambda m: f".../{m.group(1)}/", text)


def strip_traceback_paths(nb) -> None:
    prefixes = _prefixes()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [machine_free(line, prefixes) for line in output["traceback"]]


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    client = NotebookClient(
        nb, kernel_name="python3", timeout=1200, allow_errors=False, record_timing=True,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    strip_traceback_paths(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - start


def main(prefixes: list[str]) -> int:
    os.environ.update(ENVIRONMENT)
    # this checkout's package, also from a second worktree next to an editable install of another
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    paths = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(x) for x in prefixes)]
    total = 0.0
    for path in paths:
        seconds = run(path)
        total += seconds
        print(f"{path.name}: {seconds:6.1f} s", flush=True)
    print(f"all: {total:6.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
