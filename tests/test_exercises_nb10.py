"""The checkers of 10_distributed's exercises: solutions accepted, mistakes named, stubs not solved."""

from __future__ import annotations

import torch

import fashion_course as fc

nb10 = fc.exercises.nb10


def test_scaled_lr():
    assert nb10.check_scaled_lr(3e-3 * (8 * 128) / 256)
    assert nb10.check_scaled_lr(torch.tensor(0.012))
    unchanged = nb10.check_scaled_lr(3e-3)
    assert unchanged.status == "wrong" and "batch of 1024" in unchanged.message
    by_gpus = nb10.check_scaled_lr(3e-3 * 8)
    assert by_gpus.status == "wrong" and "(8 x 128) / 256" in by_gpus.hint
    divided = nb10.check_scaled_lr(3e-3 / 4)
    assert divided.status == "wrong" and "multiply" in divided.hint
    assert nb10.check_scaled_lr("0.012").status == "wrong"
    assert nb10.check_scaled_lr(None).status == "not solved"


def test_shard_of():
    def solution(X, rank, world_size):
        share = len(X) // world_size
        return X[rank * share : (rank + 1) * share]

    assert nb10.check_shard_of(solution)

    def interleaved(X, rank, world_size):
        return X[rank::world_size]

    outcome = nb10.check_shard_of(interleaved)
    assert outcome.status == "wrong" and "interleaved" in outcome.message and "contiguous" in outcome.hint

    def whole(X, rank, world_size):
        return X

    outcome = nb10.check_shard_of(whole)
    assert outcome.status == "wrong" and "shape" in outcome.message

    def off_by_one(X, rank, world_size):
        share = len(X) // world_size
        return X[rank * share + 1 : (rank + 1) * share + 1]

    assert nb10.check_shard_of(off_by_one).status == "wrong"

    def stub(X, rank, world_size):
        ...

    assert nb10.check_shard_of(stub).status == "not solved"
    assert nb10.check_shard_of(None).status == "not solved"


def test_average_gradients():
    assert nb10.check_average_gradients(lambda grads: torch.stack(grads).mean(0))
    assert nb10.check_average_gradients(lambda grads: sum(grads) / len(grads))

    summed = nb10.check_average_gradients(lambda grads: torch.stack(grads).sum(0))
    assert summed.status == "wrong" and "2 times too large" in summed.message
    assert "divides the sum by the world size" in summed.hint

    own = nb10.check_average_gradients(lambda grads: grads[0])
    assert own.status == "wrong" and "rank 0's own gradient" in own.message

    halved = nb10.check_average_gradients(lambda grads: torch.stack(grads).sum(0) / 2)
    assert halved.status == "wrong"  # right for 2 ranks only: the 4-rank case catches it

    def crash(grads):
        return grads.mean(0)  # a list has no .mean

    crashed = nb10.check_average_gradients(crash)
    assert crashed.status == "wrong" and "AttributeError" in crashed.message
    assert nb10.check_average_gradients(None).status == "not solved"
