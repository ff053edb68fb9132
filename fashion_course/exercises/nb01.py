"""Checkers for the exercises of 01_tensors: reductions, broadcasting with ``keepdim``, distances."""

from __future__ import annotations

from typing import Any

import torch

from ._core import Outcome, attempt, compare_tensors, solved, wrong


def _batches() -> list[torch.Tensor]:
    """Small uint8 image batches whose brightest image is at a different place each time."""
    generator = torch.Generator().manual_seed(1)
    batches = []
    for n, brightest in [(8, 5), (5, 0), (3, 2)]:
        batch = torch.randint(0, 120, (n, 28, 28), dtype=torch.uint8, generator=generator)
        batch[brightest] += 100  # clearly the brightest, still within 0..255
        batch[(brightest + 1) % n] //= 4  # and one clearly dark image
        batches.append(batch)
    return batches


def _brightest(batch: torch.Tensor) -> int:
    return int(batch.double().mean(dim=(1, 2)).argmax())


def check_brightest_image(brightest_image: Any) -> Outcome:
    """Exercise 1 of 01: the index (a Python int) of the image with the highest mean pixel value."""
    for batch in _batches():
        got = attempt(brightest_image, batch.clone())
        if isinstance(got, Outcome):
            if got.status == "wrong" and "Byte" in got.message:
                return wrong(got.message, "uint8 pixels cannot be averaged: convert them first, "
                                          "`batch.float() / 255`.")
            return got
        expected = _brightest(batch)
        if isinstance(got, torch.Tensor):
            if got.numel() == 1 and int(got) == expected:
                return wrong("the index is right, but it is a tensor, not a Python int.",
                             "turn a one-element tensor into a number with `.item()`.")
            return wrong(f"expected a Python int, got a tensor of shape {tuple(got.shape)}.",
                         "reduce every image to one number (mean over dims 1 and 2), then `argmax()`.")
        if isinstance(got, float):
            return wrong(f"expected an index (an int), got the float {got:.4g}.",
                         "return the position of the largest mean (`argmax`), not the mean itself.")
        if isinstance(got, bool) or not isinstance(got, int):
            return wrong(f"expected a Python int, got {type(got).__name__}.",
                         "return `means.argmax().item()`.")
        if int(got) == int(batch.double().mean(dim=(1, 2)).argmin()):
            return wrong(f"index {int(got)} is the darkest image, not the brightest.",
                         "`argmax` gives the largest value, `argmin` the smallest.")
        if int(got) != expected:
            return wrong(f"for a batch of {len(batch)} images you returned {int(got)}, expected {expected}.",
                         "average over the pixels of each image (dims 1 and 2), not over the batch (dim 0).")
    return solved("the index of the brightest image, as a Python int.")


def _image_batch() -> torch.Tensor:
    """(6, 1, 28, 28) float images in [0, 1] of very different brightness and contrast."""
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(6, 1, 28, 28, generator=generator)
    scale = torch.tensor([1.0, 0.2, 0.5, 0.9, 0.1, 0.6]).view(6, 1, 1, 1)
    shift = torch.tensor([0.0, 0.7, 0.1, 0.05, 0.3, 0.2]).view(6, 1, 1, 1)
    return x * scale + shift


def check_normalise_per_image(normalise_per_image: Any) -> Outcome:
    """Exercise 2 of 01: every image rescaled to mean 0 and standard deviation 1 on its own."""
    x = _image_batch()
    got = attempt(normalise_per_image, x.clone())
    if isinstance(got, Outcome):
        if got.status == "wrong" and "must match the size" in got.message:
            return wrong(got.message, "keep the reduced dimensions with `keepdim=True`, so the statistics "
                                      "have shape (N, 1, 1, 1) and broadcast over each image.")
        return got
    dims = (1, 2, 3)
    mean = x.mean(dim=dims, keepdim=True)
    candidates = [(x - mean) / x.std(dim=dims, keepdim=True, correction=c) for c in (1, 0)]
    if isinstance(got, torch.Tensor) and got.shape == x.shape and got.dtype == x.dtype:
        if any(torch.allclose(got, c, atol=1e-4) for c in candidates):
            return solved("each image now has mean 0 and standard deviation 1.")
        if torch.allclose(got, (x - x.mean()) / x.std(), atol=1e-4):
            return wrong("you normalised with the mean and std of the whole batch.",
                         "reduce over each image's own dimensions: `x.mean(dim=(1, 2, 3), keepdim=True)`.")
        if torch.allclose(got, x - mean, atol=1e-4):
            return wrong("each image has mean 0, but you did not divide by its standard deviation.",
                         "divide by `x.std(dim=(1, 2, 3), keepdim=True)` as well.")
        if torch.allclose(got, (x - x.mean(dim=0, keepdim=True)) / x.std(dim=0, keepdim=True), atol=1e-4):
            return wrong("you normalised every pixel position across the batch (dim 0).",
                         "reduce over the image dimensions (1, 2, 3), not over the batch.")
    problem = compare_tensors(got, candidates[0], what="the normalised batch", atol=1e-4)
    if problem is not None:
        return problem
    return solved("each image now has mean 0 and standard deviation 1.")


def check_pairwise_distances(pairwise_distances: Any) -> Outcome:
    """Exercise 3 of 01: the (N, M) Euclidean distances between two batches of images, by broadcasting."""
    generator = torch.Generator().manual_seed(3)
    a = torch.rand(5, 28, 28, generator=generator)
    b = torch.rand(3, 28, 28, generator=generator)
    expected = torch.cdist(a.reshape(5, -1), b.reshape(3, -1))
    got = attempt(pairwise_distances, a.clone(), b.clone())
    if isinstance(got, Outcome):
        if got.status == "wrong" and "must match the size" in got.message:
            return wrong(got.message, "line the batches up along different dimensions: `a[:, None]` has "
                                      "shape (N, 1, 784), `b[None, :]` shape (1, M, 784).")
        return got
    if isinstance(got, torch.Tensor) and got.dim() > 2 and got.shape[:2] == (5, 3):
        return wrong(f"the result has shape {tuple(got.shape)}: each entry should be one distance.",
                     "flatten each image to 784 values first (`reshape(len(a), -1)`), then sum over "
                     "the last dimension only.")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype == expected.dtype:
        if torch.allclose(got, expected**2, rtol=1e-4, atol=1e-3):
            return wrong("these are squared distances.", "take the square root (`.sqrt()`) at the end.")
        if torch.allclose(got, expected.pow(2) / 784, rtol=1e-4, atol=1e-5):
            return wrong("these are mean squared differences.",
                         "sum the squared differences over the pixels (not `mean`), then take `.sqrt()`.")
    problem = compare_tensors(got, expected, what="the distance matrix", atol=1e-3)
    if problem is not None:
        return problem
    return solved("the distance between every image of `a` and every image of `b`.")
