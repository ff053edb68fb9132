"""Small helpers for the tests."""

from __future__ import annotations

import torch


def write_idx(path, array: torch.Tensor) -> None:
    """Write a uint8 tensor as an IDX file (the format of Fashion-MNIST's files)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())
