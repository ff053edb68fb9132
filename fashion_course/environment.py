"""Device choice, seeding and thread count: the set-up every notebook's first cell does.

Taught in 01_tensors (devices) and 05_optimization_loop (seeding for reproducibility).
"""

from __future__ import annotations

import os
import random

import torch

__all__ = ["choose_device", "seed_everything", "course_threads"]

_DEVICE_ENV = "FASHION_COURSE_DEVICE"
_THREADS_ENV = "FASHION_COURSE_THREADS"


def choose_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the best available device: accelerator, then CUDA, then MPS, then CPU.

    ``preferred`` (or the ``FASHION_COURSE_DEVICE`` environment variable) overrides the choice,
    e.g. ``"cpu"`` to compare speeds; asking for a device that is not there is an error rather
    than a silent fall back to the CPU.
    """
    wanted = preferred if preferred is not None else os.environ.get(_DEVICE_ENV) or None
    if wanted is not None:
        try:
            device = torch.device(wanted)
        except RuntimeError as exc:
            raise ValueError(
                f"{wanted!r} is not a device name; use 'cpu', 'cuda', 'cuda:1' or 'mps' "
                f"(check {_DEVICE_ENV} if you did not pass it yourself)"
            ) from exc
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {wanted!r} was requested but this PyTorch sees no CUDA GPU; "
                "run `python -m fashion_course doctor` to see why, or use 'cpu'"
            )
        if device.type == "cuda" and device.index is not None:
            if device.index >= torch.cuda.device_count():
                raise ValueError(
                    f"device {wanted!r} was requested but only {torch.cuda.device_count()} "
                    "CUDA device(s) exist; indices start at 0"
                )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"device {wanted!r} was requested but MPS is not available here")
        return device
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and accelerator.is_available():
        return torch.device(accelerator.current_accelerator().type)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def course_threads() -> int | None:
    """The CPU thread count fixed by ``FASHION_COURSE_THREADS``, or None when it is not set.

    CPU results depend on the number of threads (sums are split differently), so the run that
    produces the notebooks' stored outputs fixes it.
    """
    value = os.environ.get(_THREADS_ENV)
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{_THREADS_ENV}={value!r} must be a positive whole number, e.g. 2")
    return threads


def seed_everything(seed: int = 0, *, threads: int | None = None) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) and optionally fix the thread count.

    ``threads`` defaults to ``FASHION_COURSE_THREADS`` when that is set. Returns nothing, so it is
    safe as the last line of a notebook cell (``torch.manual_seed`` returns a Generator whose
    repr contains a memory address).
    """
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # NumPy is optional for the package itself
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device
    threads = threads if threads is not None else course_threads()
    if threads is not None:
        torch.set_num_threads(threads)
