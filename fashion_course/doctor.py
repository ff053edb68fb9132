"""``python -m fashion_course doctor``: the check a learner runs first.

Taught in 08_troubleshooting. One line per check; a problem comes with the fix.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Check", "run_checks", "format_report", "torchvision_ops_check"]

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
        return line + (f"\n       fix: {self.fix}" if self.fix else "")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# Which torchvision release goes with which torch release (major.minor).
def _expected_torchvision(torch_version: str) -> str | None:
    major, minor = (int(p) for p in torch_version.split("+")[0].split(".")[:2])
    if major == 2:
        return f"0.{minor + 15}"
    return None


_OPS_PROBE = (
    "import torch, torchvision\n"
    "from torchvision.ops import nms\n"
    "b = torch.tensor([[0., 0., 1., 1.], [0., 0., 1., 1.]])\n"
    "print(nms(b, torch.tensor([1., .5]), .5).tolist())\n"
)


def torchvision_ops_check(python: str = sys.executable, env: dict | None = None) -> Check:
    """Import torchvision and run its compiled ``nms`` in a fresh interpreter.

    A separate process, because a torchvision built for another torch fails at import with
    ``operator torchvision::nms does not exist`` and leaves the importing process unusable.
    """
    try:
        done = subprocess.run(
            [python, "-c", _OPS_PROBE], capture_output=True, text=True, timeout=120, env=env
        )
    except subprocess.TimeoutExpired:
        return Check("torchvision", WARN, "the operator check took over 2 minutes; skipped")
    if done.returncode == 0 and done.stdout.strip() == "[0]":
        return Check("tv operators", OK, "torchvision's compiled operators (nms) load and run")
    error = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if "torchvision::nms does not exist" in done.stderr:
        return Check(
            "tv operators", FAIL,
            f"torchvision's compiled operators do not match this torch ({error})",
            "torch and torchvision were built for different releases or builds (e.g. a CPU "
            "torch with a CUDA torchvision): reinstall them together, e.g. "
            "`pip install torch==X torchvision==Y` from the same index, with Y matching X",
        )
    return Check("tv operators", FAIL, f"torchvision does not import ({error})",
                 "reinstall torchvision to match torch: `pip install --force-reinstall torchvision`")


def _torch_checks() -> list[Check]:
    checks = []
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return [Check("torch", FAIL, f"does not import ({exc})", "pip install -r requirements.txt")]
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
    checks.append(Check("torch", OK, f"{torch.__version__} ({build} build)"))
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
    if torch.cuda.is_available():
        names = ", ".join(
            f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())
        )
        checks.append(Check("cuda", OK, f"{torch.cuda.device_count()} GPU(s): {names}"))
    elif torch.version.cuda:
        checks.append(Check(
            "cuda", WARN, f"a CUDA {torch.version.cuda} build, but no usable GPU: running on CPU",
            "if this machine has an NVIDIA GPU, `nvidia-smi` must list it and its driver must "
            f"support CUDA {torch.version.cuda}; otherwise the CPU is fine for this course",
        ))
    else:
        checks.append(Check(
            "cuda", WARN, "CPU-only build of torch: the GPU (if any) is not used",
            "for an NVIDIA GPU install the CUDA wheel that the PyTorch install selector gives "
            "for your driver; the CPU is enough for this course",
        ))
    if torch.backends.mps.is_available():
        checks.append(Check("mps", OK, "Apple GPU (MPS) available"))
    from .environment import choose_device

    try:
        checks.append(Check("device", OK, f"the course will use {choose_device()}"))
    except ValueError as exc:
        checks.append(Check("device", FAIL, str(exc), "unset FASHION_COURSE_DEVICE or fix it"))
    checks.append(Check(
        "threads", OK,
        f"torch uses {torch.get_num_threads()} of {os.cpu_count()} CPU threads"
        + (f" (FASHION_COURSE_THREADS={os.environ['FASHION_COURSE_THREADS']})"
           if os.environ.get("FASHION_COURSE_THREADS") else ""),
    ))
    return checks


def _data_checks() -> list[Check]:
    from .data import DataError, default_data_dir, find_data

    checks = []
    try:
        source = find_data(download=False)
        checks.append(Check("data", OK, f"verified: {source}"))
    except DataError as exc:
        first = str(exc).splitlines()[0]
        checks.append(Check("data", FAIL, first, " / ".join(
            line.strip() for line in str(exc).splitlines()[1:] if line.strip()
        )))
    folder = default_data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
        checks.append(Check("data folder", OK, f"{folder} is writable"))
    except OSError as exc:
        checks.append(Check(
            "data folder", FAIL, f"cannot write to {folder} ({exc.strerror})",
            "set FASHION_COURSE_DATA to a folder you can write to",
        ))
    return checks


def run_checks() -> list[Check]:
    """Every check, in report order."""
    checks = [Check("python", OK, f"{platform.python_version()} ({sys.executable})")]
    checks += _torch_checks()
    for dist, needed_for in (("onnx", "06 (export)"), ("onnxruntime", "06 (inference)"),
                             ("onnxscript", "06 (the exporter)"), ("matplotlib", "every figure")):
        version = _version(dist)
        checks.append(
            Check(dist, OK, version) if version
            else Check(dist, FAIL, f"not installed (needed for {needed_for})",
                       "pip install -r requirements.txt")
        )
    checks += _data_checks()
    return checks


def format_report(checks: list[Check]) -> str:
    failures = sum(c.status == FAIL for c in checks)
    verdict = (
        "everything the course needs is in place" if not failures
        else f"{failures} problem(s) stop the course: apply the fixes above"
    )
    return "\n".join([str(c) for c in checks] + [verdict])


def doctor_main() -> int:
    checks = run_checks()
    print(format_report(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(doctor_main())
