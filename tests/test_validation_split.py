"""``fc.validation_indices`` is ``fc.train_val_split``'s split, for tensors in memory (05 uses it)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

import fashion_course as fc


@pytest.mark.parametrize("n, val_size, seed", [(60_000, 5000, 0), (1000, 100, 3)])
def test_the_same_images_as_train_val_split(n, val_size, seed):
    dataset = TensorDataset(torch.arange(n))
    train, val = fc.train_val_split(dataset, val_size, seed=seed)
    train_idx, val_idx = fc.validation_indices(n, val_size, seed=seed)
    assert train_idx.tolist() == list(train.indices) and val_idx.tolist() == list(val.indices)
    assert len(set(train_idx.tolist()) | set(val_idx.tolist())) == n


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="val_size"):
        fc.validation_indices(100, 100)


def test_train_recipe_scores_on_the_validation_part(real_data):
    _, history = fc.train_recipe("mlp", epochs=1, root=real_data.root, validation=True)
    train, val = fc.in_memory_loaders(256, root=real_data.root, validation=True)
    assert (train.num_samples, val.num_samples) == (55_000, 5000)
    images, labels = fc.load_tensors(True, root=real_data.root)
    _, val_idx = fc.validation_indices()
    assert torch.equal(val.y.cpu(), labels[val_idx].long())
    assert 0.7 < history.test_accuracy[-1] < 1.0
