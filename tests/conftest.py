"""Shared fixtures: the real dataset (required in CI, skipped elsewhere only when absent)."""

from __future__ import annotations

import os

import pytest
import torch

import fashion_course as fc


@pytest.fixture(scope="session")
def real_data() -> fc.DataSource:
    """The verified local Fashion-MNIST. CI always has it, so there a miss is a failure."""
    try:
        return fc.find_data(download=False)
    except fc.DataError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have Fashion-MNIST: {exc}")
        pytest.skip("Fashion-MNIST is not on this machine (see README: Data)")


@pytest.fixture(scope="session")
def test_split(real_data) -> tuple[torch.Tensor, torch.Tensor]:
    return fc.load_tensors(False, root=real_data.root)


@pytest.fixture(scope="session")
def train_split(real_data) -> tuple[torch.Tensor, torch.Tensor]:
    return fc.load_tensors(True, root=real_data.root)

