"""Execute the course notebooks top to bottom and store their outputs (the canonical CPU run).

    python scripts/run_notebooks.py                 # every notebook in notebooks/
    python scripts/run_notebooks.py 05 06           # only those whose name starts so

The stored outputs are what strict nbval compares against, so they come from one clean run in a
fixed environment: a fresh python3 kernel per notebook, working directory notebooks/, the CPU
(FASHION_COURSE_DEVICE=cpu) and two threads (FASHION_COURSE_THREADS=2). The run is refused if a
cell raises without being marked as expected to raise.
"""

from __future__ import annotations

import os
import sys
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


def run(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    client = NotebookClient(
        nb, kernel_name="python3", timeout=1200, allow_errors=False,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
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
