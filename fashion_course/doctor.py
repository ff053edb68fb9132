"""``python -m fashion_course doctor``: the check a learner runs first.

Taught in 08_troubleshooting. One line per check, in the order problems are usually met: Python,
the libraries and their versions, the torch build (CPU or CUDA) and the devices it sees, whether
torchvision's compiled operators load, the data and the data folder, the thread count. A problem
line ends with its fix; the exit status is non-zero when the course cannot run.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Check", "run_checks", "format_report", "torchvision_ops_check", "doctor_main", "shorten_paths"]

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``ok``, ``warn`` or ``FAIL``; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"[{self.status:>4}] {self.name:<13} {self.detail}"
        return line + (f"  -> fix: {self.fix}" if self.fix else "")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _expected_torchvision(torch_version: str) -> str | None:
    """The torchvision release (major.minor) built for a torch release: 2.N goes with 0.(N+15)."""
    try:
        major, minor = (int(p) for p in torch_version.split("+")[0].split(".")[:2])
    except ValueError:
        return None
    return f"0.{minor + 15}" if major == 2 else None


_OPS_PROBE = (
    "import torch, torchvision\n"
    "from torchvision.ops import nms\n"
    "b = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.]])\n"
    "print(nms(b, torch.tensor([1., .5]), .5).tolist())\n"
)

OPS_MISMATCH_FIX = (
    "torch and torchvision come from different builds (e.g. a CPU torch with a CUDA torchvision, "
    "or a torch upgraded without its torchvision): reinstall both in one command from the same "
    "index, e.g. `pip install --force-reinstall torch==2.X.Y torchvision==0.(X+15).Y`"
)


def torchvision_ops_check(python: str = sys.executable, env: dict | None = None) -> Check:
    """Import torchvision and run its compiled ``nms`` in a fresh interpreter.

    A separate process, because a torchvision built for another torch fails at import with
    ``operator torchvision::nms does not exist`` and leaves the importing process unusable.
    """
    try:
        done = subprocess.run(
            [python, "-c", _OPS_PROBE], capture_output=True, text=True, timeout=180, env=env
        )
    except subprocess.TimeoutExpired:
        return Check("tv operators", WARN, "importing torchvision took over 3 minutes; not checked")
    if done.returncode == 0 and done.stdout.strip() == "[0]":
        return Check("tv operators", OK, "torchvision's compiled operators (nms) load and run")
    error = (done.stderr.strip().splitlines() or ["no output"])[-1].strip()
    if "torchvision::" in done.stderr and "does not exist" in done.stderr:
        return Check(
            "tv operators", FAIL,
            f"torchvision's compiled operators were not built for this torch ({error})",
            OPS_MISMATCH_FIX,
        )
    return Check("tv operators", FAIL, f"torchvision does not import ({error})",
                 "reinstall torchvision to match torch: `pip install --force-reinstall torchvision`")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _torch_checks() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return [Check("torch", FAIL, f"does not import ({exc})", "pip install -r requirements.txt")]
    checks = []
    if torch.version.cuda:
        build = f"CUDA build, torch.version.cuda = {torch.version.cuda}"
    elif getattr(torch.version, "hip", None):
        build = f"ROCm build, torch.version.hip = {torch.version.hip}"
    else:
        build = "CPU-only build, torch.version.cuda = None"
    checks.append(Check("torch", OK, f"{torch.__version__} ({build})"))

    tv = _version("torchvision")
    if tv is None:
        checks.append(Check("torchvision", FAIL, "not installed", "pip install -r requirements.txt"))
    else:
        expected = _expected_torchvision(torch.__version__)
        if expected and not tv.startswith(expected + "."):
            checks.append(Check(
                "torchvision", FAIL, f"{tv}, but torch {torch.__version__} needs {expected}.x",
                f"pip install 'torchvision=={expected}.*' (the release built for this torch)",
            ))
        else:
            checks.append(Check("torchvision", OK, tv))
        checks.append(torchvision_ops_check())

    checks.append(Check("cpu", OK, f"{_cpu_name()}, {os.cpu_count()} logical cores"))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            checks.append(Check(
                f"cuda:{i}", OK, f"{p.name}, {p.total_memory / 2**30:.0f} GiB, "
                f"compute capability {p.major}.{p.minor}",
            ))
    elif torch.version.cuda:
        smi = shutil.which("nvidia-smi")
        checks.append(Check(
            "cuda", WARN, f"a CUDA {torch.version.cuda} build, but no usable GPU: running on CPU"
            + ("" if smi else " (no nvidia-smi on PATH: no NVIDIA driver installed)"),
            "if this machine has an NVIDIA GPU, `nvidia-smi` must list it and its driver must "
            f"support CUDA {torch.version.cuda}; otherwise the CPU is fine for this course",
        ))
    else:
        checks.append(Check(
            "cuda", WARN, "CPU-only build of torch: an NVIDIA GPU (if any) is not used",
            "for an NVIDIA GPU install the CUDA wheel that the PyTorch install selector gives "
            "for your driver (`nvidia-smi` shows its CUDA version); the CPU is enough here",
        ))
    if torch.backends.mps.is_available():
        checks.append(Check("mps", OK, "Apple GPU (MPS) available"))

    from .environment import choose_device, course_threads

    try:
        checks.append(Check("device", OK, f"the course will use {choose_device()}"))
    except ValueError as exc:
        checks.append(Check("device", FAIL, str(exc), "unset FASHION_COURSE_DEVICE or fix it"))
    try:
        fixed = course_threads()
        threads = fixed or torch.get_num_threads()
        note = " (FASHION_COURSE_THREADS)" if fixed else ""
        checks.append(Check("threads", OK, f"torch uses {threads} of {os.cpu_count()} CPU threads{note}"))
    except ValueError as exc:
        checks.append(Check("threads", FAIL, str(exc), "unset FASHION_COURSE_THREADS or fix it"))
    return checks


def _library_checks() -> list[Check]:
    checks = []
    for dist, needed_for in (
        ("onnx", "06 (export)"), ("onnxruntime", "06 (inference)"),
        ("onnxscript", "06 (the exporter)"), ("numpy", "everything"),
        ("pillow", "09 (photos)"), ("matplotlib", "every figure"),
    ):
        version = _version(dist)
        checks.append(
            Check(dist, OK, version) if version
            else Check(dist, FAIL, f"not installed (needed for {needed_for})",
                       "pip install -r requirements.txt")
        )
    return checks


def _data_checks() -> list[Check]:
    try:
        from .data import DataError, default_data_dir, find_data
    except ImportError as exc:  # the data helpers are torch code
        return [Check("data", FAIL, f"not checked: reading the data needs torch ({exc})",
                      "install torch first: pip install -r requirements.txt")]

    checks = []
    try:
        source = find_data(download=False)
        checks.append(Check("data", OK, f"verified (size and SHA-256): {source}"))
    except DataError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        checks.append(Check("data", FAIL, lines[0], " / ".join(lines[1:]) or "see the message"))
    folder = default_data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        checks.append(Check("data folder", OK, f"{folder} is writable"))
    except OSError as exc:
        checks.append(Check(
            "data folder", FAIL, f"cannot write to {folder} ({exc.strerror or exc})",
            "set FASHION_COURSE_DATA to a folder you can write to",
        ))
    return checks


def _guarded(name: str, checks: Callable[[], list[Check]]) -> list[Check]:
    """Run a group of checks; an unexpected error becomes a FAIL line instead of a traceback."""
    try:
        return checks()
    except Exception as exc:  # noqa: BLE001 - the doctor must always report
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        return [Check(name, FAIL, f"the check itself failed ({detail})",
                      "reinstall with `pip install -r requirements.txt`")]


def run_checks() -> list[Check]:
    """Every check, in report order."""
    checks = [Check("python", OK, f"{platform.python_version()} ({sys.executable})")]
    checks += _guarded("torch", _torch_checks)
    checks += _guarded("libraries", _library_checks)
    checks += _guarded("data", _data_checks)
    return checks


def format_report(checks: list[Check]) -> str:
    failures = sum(c.status == FAIL for c in checks)
    verdict = (
        "everything the course needs is in place" if not failures
        else f"{failures} problem(s) stop the course: apply the fixes above"
    )
    return "\n".join([str(c) for c in checks] + [verdict])


_REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_OTHER_ABSOLUTE = re.compile(r"(?<![\w.~>])/(?:[\w.+-]+/)+([\w.+-]+)")


def shorten_paths(text: str, *, repository: str | None = None, environment: str | None = None,
                  home: str | None = None) -> str:
    """The report without this machine's absolute paths, for sharing or storing it.

    The Python environment (``sys.prefix``) becomes ``<python env>``, the course's repository
    ``<repository>``, the home folder ``~``, and any other absolute path ``.../`` and its last
    part. 08_troubleshooting stores the doctor's report this way.
    """
    places = {
        environment or sys.prefix: "<python env>",
        repository or _REPOSITORY: "<repository>",
        home or os.path.expanduser("~"): "~",
    }
    for place in sorted((p for p in places if len(p) > 1), key=len, reverse=True):
        text = re.sub(re.escape(place.rstrip("/")) + r"(?=[/\s)\],;:'\"]|$)", places[place], text)
    return _OTHER_ABSOLUTE.sub(r".../\1", text)


def doctor_main() -> int:
    """Print the report; exit status 1 if anything stops the course, else 0."""
    checks = run_checks()
    print(format_report(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(doctor_main())
