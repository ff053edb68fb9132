"""Checkers for the exercises of 02_datasets_and_transforms: a picklable target transform, class
counts of a dataset, per-channel statistics for ``Normalize``."""

from __future__ import annotations

import pickle
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data import CLASSES
from ._core import Outcome, attempt, compare_tensors, solved, wrong

FOOTWEAR = {5, 7, 9}  # Sandal, Sneaker, Ankle boot


def check_is_footwear(is_footwear: Any) -> Outcome:
    """Exercise 1 of 02: a picklable ``target_transform`` giving 1 for footwear, 0 for other classes."""
    answers = {}
    for label in range(10):
        got = attempt(is_footwear, label)
        if isinstance(got, Outcome):
            return got
        answers[label] = got
    if any(isinstance(v, bool) for v in answers.values()):
        return wrong("your function returns True/False.",
                     "return the int 1 or 0, for example `int(y in FOOTWEAR)`; the DataLoader then "
                     "stacks them into an int64 tensor.")
    if not all(isinstance(v, int) for v in answers.values()):
        kinds = sorted({type(v).__name__ for v in answers.values()})
        return wrong(f"expected the int 1 or 0, got {', '.join(kinds)}.", "return `int(...)`.")
    chosen = {label for label, v in answers.items() if v == 1}
    if set(answers.values()) - {0, 1}:
        return wrong("your function returns values other than 0 and 1.",
                     "return 1 for footwear, 0 otherwise.")
    if chosen != FOOTWEAR:
        missing = ", ".join(CLASSES[c] for c in sorted(FOOTWEAR - chosen)) or "none"
        extra = ", ".join(CLASSES[c] for c in sorted(chosen - FOOTWEAR)) or "none"
        return wrong(f"footwear missed: {missing}; counted as footwear by mistake: {extra}.",
                     "footwear is labels 5 (Sandal), 7 (Sneaker) and 9 (Ankle boot); see `labels_map`.")
    try:
        restored = pickle.loads(pickle.dumps(is_footwear))
    except Exception as exc:  # the point of the exercise: the learner's function must pickle
        return wrong(f"pickle cannot store your function ({type(exc).__name__}).",
                     "define it with `def is_footwear(y):` at the top level of a cell, not as a lambda "
                     "or inside another function.")
    if restored(9) != 1:
        return wrong("the pickled copy of your function answers differently.",
                     "keep it free of outside state.")
    return solved("1 for Sandal, Sneaker and Ankle boot, 0 otherwise, and pickle accepts it.")


class _Samples(Dataset):
    """A tiny dataset of (image, label) pairs, like FashionMNIST's, with chosen labels."""

    def __init__(self, labels: list[int]):
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        return torch.full((1, 28, 28), idx / 100), self.labels[idx]


def check_class_counts(class_counts: Any) -> Outcome:
    """Exercise 2 of 02: an int64 tensor of 10 counts, one per class, from any (image, label) dataset."""
    cases = [[0, 1, 1, 3, 3, 3, 8, 2, 0, 1], [4, 4, 2, 7, 2], [9] * 3 + list(range(10))]
    for labels in cases:
        got = attempt(class_counts, _Samples(labels))
        if isinstance(got, Outcome):
            return got
        expected = torch.bincount(torch.tensor(labels), minlength=10)
        if isinstance(got, torch.Tensor) and got.dim() == 1 and got.numel() == max(labels) + 1 < 10:
            return wrong(f"for labels {labels} you returned {got.numel()} counts, expected 10.",
                         "`torch.bincount` only counts up to the largest label it sees: pass `minlength=10`.")
        if isinstance(got, list | tuple) and len(got) == 10:
            return wrong("the counts are a list, expected a tensor.", "return `torch.tensor(counts)`.")
        if isinstance(got, torch.Tensor) and got.shape == (10,) and got.is_floating_point() \
                and torch.equal(got.round().long(), expected):
            return wrong(f"the counts have dtype {got.dtype}, expected torch.int64.",
                         "count whole numbers: `torch.bincount` or `torch.zeros(10, dtype=torch.long)`.")
        problem = compare_tensors(got, expected, what="the class counts")
        if problem is not None:
            return problem
    return solved("one count per class, zeros included.")


def _channel_batch() -> torch.Tensor:
    """(5, 3, 6, 6) images whose three channels have very different statistics."""
    generator = torch.Generator().manual_seed(4)
    x = torch.rand(5, 3, 6, 6, generator=generator, dtype=torch.float64)
    return x * torch.tensor([1.0, 0.3, 0.6], dtype=torch.float64).view(1, 3, 1, 1) \
        + torch.tensor([0.0, 0.5, 0.2], dtype=torch.float64).view(1, 3, 1, 1) \
        + torch.linspace(0, 0.4, 5, dtype=torch.float64).view(5, 1, 1, 1)  # brighter images later


def check_channel_mean_std(channel_mean_std: Any) -> Outcome:
    """Exercise 3 of 02: per-channel mean and std over a whole (N, C, H, W) batch, shapes (C,)."""
    x = _channel_batch()
    got = attempt(channel_mean_std, x.clone())
    if isinstance(got, Outcome):
        return got
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return wrong(f"expected two tensors (mean, std), got {type(got).__name__}.",
                     "end with `return mean, std`.")
    mean, std = got
    dims = (0, 2, 3)
    expected_mean = x.mean(dim=dims)
    if isinstance(mean, torch.Tensor) and mean.shape == ():
        return wrong("the mean is one number for the whole batch.",
                     "reduce over every dimension except the channel: `x.mean(dim=(0, 2, 3))`.")
    problem = compare_tensors(mean, expected_mean, what="the mean")
    if problem is not None:
        return problem
    if isinstance(std, torch.Tensor) and std.shape == expected_mean.shape:
        if torch.allclose(std, x.std(dim=(2, 3)).mean(dim=0)):
            return wrong("the std is the average of each image's own std, which is too small.",
                         "compute it over all pixels of a channel at once: `x.std(dim=(0, 2, 3))`.")
        if torch.allclose(std, x.var(dim=dims)):
            return wrong("that is the variance, the square of the standard deviation.", "use `.std(...)`.")
        if torch.allclose(std, x.std(dim=dims, correction=0)):
            return solved("the per-channel mean and (population) std of the batch.")
    problem = compare_tensors(std, x.std(dim=dims), what="the std")
    if problem is not None:
        return problem
    return solved("the per-channel mean and std of the batch, ready for `Normalize(mean, std)`.")
