"""Checkers for the exercises of 10_distributed: the scaled learning rate, a rank's shard, DDP's average."""

from __future__ import annotations

import math
from typing import Any

import torch

from ._core import Outcome, attempt, compare_tensors, is_stub, not_solved, solved, wrong

__all__ = ["check_scaled_lr", "check_shard_of", "check_average_gradients"]

# The recipe: batch 256 in all (2 processes x 128) at a peak learning rate of 3e-3. Scaled out to
# 8 GPUs that keep 128 images each, the batch is 1024: the linear scaling rule multiplies the rate
# by 1024 / 256 = 4.
_BASE_LR, _BASE_BATCH, _NEW_BATCH = 3e-3, 256, 8 * 128


def check_scaled_lr(scaled_lr: Any) -> Outcome:
    """The learning rate for 8 GPUs x 128 images, by the linear scaling rule, from 3e-3 at batch 256."""
    if is_stub(scaled_lr):
        return not_solved()
    if isinstance(scaled_lr, torch.Tensor) and scaled_lr.numel() == 1:
        scaled_lr = scaled_lr.item()
    if isinstance(scaled_lr, bool) or not isinstance(scaled_lr, (int, float)):
        return wrong(f"expected a number, got {type(scaled_lr).__name__}.",
                     "write the learning rate as a float, e.g. `scaled_lr = 3e-3 * 2`.")
    expected = _BASE_LR * _NEW_BATCH / _BASE_BATCH
    if math.isclose(scaled_lr, expected, rel_tol=1e-6):
        return solved(f"{expected:g}: the batch grew 4x (256 -> 1024), so the rate grows 4x.")
    if math.isclose(scaled_lr, _BASE_LR, rel_tol=1e-6):
        return wrong("that is the rate for a batch of 256, but 8 GPUs x 128 images is a batch of 1024.",
                     "the rule scales the rate by new batch / old batch.")
    if math.isclose(scaled_lr, _BASE_LR * 8, rel_tol=1e-6):
        return wrong("you scaled by the number of GPUs (8), but the old batch already came from 2 "
                     "processes.", "compare batch sizes: (8 x 128) / 256.")
    if math.isclose(scaled_lr, _BASE_LR * _BASE_BATCH / _NEW_BATCH, rel_tol=1e-6):
        return wrong("the rate went down, but a larger batch averages more samples per step: the "
                     "gradient is less noisy and the rate can grow.", "multiply, do not divide.")
    return wrong(f"{scaled_lr:g} is not the linearly scaled rate.",
                 "new rate = old rate x (new effective batch / old effective batch).")


def _shard_of(X: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    share = len(X) // world_size
    return X[rank * share : (rank + 1) * share]


def check_shard_of(shard_of: Any) -> Outcome:
    """``shard_of(X, rank, world_size)``: a rank's contiguous, equal part of a batch (as ShardedLoader)."""
    X = torch.arange(24.0).reshape(12, 2)
    cases = [(X, 0, 2), (X, 1, 2), (X, 2, 3), (X, 3, 4), (X[:8], 1, 1)]
    for rank_args in cases:
        got = attempt(shard_of, *rank_args)
        if isinstance(got, Outcome):
            return got
        expected = _shard_of(*rank_args)
        _, rank, world_size = rank_args
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            interleaved = rank_args[0][rank::world_size][: len(expected)]
            if torch.equal(got, interleaved) and not torch.equal(got, expected):
                return wrong(f"for rank {rank} of {world_size} you took every {world_size}th row "
                             "(interleaved).", "that is what DistributedSampler does with indices; here "
                             "each rank takes one contiguous block: rows rank*share to (rank+1)*share.")
        problem = compare_tensors(got, expected, what=f"the shard of rank {rank} of {world_size}")
        if problem is not None:
            return problem
    return solved("each rank takes its own block of batch_size / world_size rows; together they "
                  "make up the whole batch.")


def check_average_gradients(average_gradients: Any) -> Outcome:
    """``average_gradients(grads)``: what every rank holds after DDP's all-reduce of a list of gradients."""
    generator = torch.Generator().manual_seed(10)
    cases = [[torch.randn(3, 4, generator=generator) for _ in range(n)] for n in (2, 4, 1)]
    for grads in cases:
        got = attempt(average_gradients, [g.clone() for g in grads])
        if isinstance(got, Outcome):
            return got
        expected = torch.stack(grads).mean(0)
        n = len(grads)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and n > 1:
            if torch.allclose(got, expected * n, atol=1e-5):
                return wrong(f"with {n} ranks your result is {n} times too large: all_reduce sums.",
                             "DDP divides the sum by the world size, so that the step is the one of the "
                             "whole batch's mean loss.")
            if torch.allclose(got, grads[0], atol=1e-5):
                return wrong("you returned rank 0's own gradient, not the average over the ranks.",
                             "every rank must end with the same averaged gradient.")
        problem = compare_tensors(got, expected, what=f"the averaged gradient of {n} ranks")
        if problem is not None:
            return problem
    return solved("the mean of the ranks' gradients: with equal shards, exactly the gradient of the "
                  "whole batch.")
