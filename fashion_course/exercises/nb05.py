"""Checkers for the exercises of 05_optimization_loop: steps per epoch, a learning rate chosen on
validation, label smoothing by hand."""

from __future__ import annotations

import math
from typing import Any

import torch

from ._core import Outcome, attempt, compare_tensors, is_stub, not_solved, solved, wrong

CANDIDATE_LEARNING_RATES = (0.001, 0.01, 0.1, 1.0)


def check_steps_per_epoch(steps_per_epoch: Any) -> Outcome:
    """``steps_per_epoch(num_samples, batch_size)``: optimizer steps in one pass over the data."""
    cases = [(60_000, 64), (60_000, 256), (10_000, 1000), (100, 7), (5, 64)]
    for n, b in cases:
        got = attempt(steps_per_epoch, n, b)
        if isinstance(got, Outcome):
            return got
        expected = math.ceil(n / b)
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        if not isinstance(got, int):
            return wrong(f"steps_per_epoch({n:,}, {b}) returned {got!r} ({type(got).__name__}), "
                         "expected a whole number.",
                         "a number of steps is an int: round up with `math.ceil`, not `/` alone.")
        if got == expected:
            continue
        if got == n // b:
            return wrong(f"steps_per_epoch({n:,}, {b}) = {got}, expected {expected}: the last, "
                         "smaller batch is missing.",
                         "the DataLoader also yields the leftover images as one smaller batch: round up.")
        if got == n * b:
            return wrong(f"steps_per_epoch({n:,}, {b}) = {got:,}: you multiplied.",
                         "each step takes batch_size images, so divide the number of images by it.")
        return wrong(f"steps_per_epoch({n:,}, {b}) = {got}, expected {expected}.",
                     "one step per batch: how many batches of batch_size images cover num_samples?")
    return solved("one step per batch, the last smaller batch included (938 steps at batch 64).")


def check_learning_rate(validation_accuracy: Any, best_lr: Any = None) -> Outcome:
    """A learning rate chosen by validation accuracy: ``{lr: accuracy}`` for every candidate."""
    if is_stub(validation_accuracy) or is_stub(best_lr):
        return not_solved()
    if not isinstance(validation_accuracy, dict):
        return wrong(f"validation_accuracy should be a dict {{learning rate: accuracy}}, got "
                     f"{type(validation_accuracy).__name__}.",
                     "fill it with `validation_accuracy[lr] = score(lr)` for each candidate.")
    missing = [lr for lr in CANDIDATE_LEARNING_RATES if lr not in validation_accuracy]
    if missing:
        return wrong(f"no validation accuracy for the learning rate(s) {missing}.",
                     f"score every candidate in {CANDIDATE_LEARNING_RATES}.")
    values = {lr: validation_accuracy[lr] for lr in CANDIDATE_LEARNING_RATES}
    if not all(isinstance(v, (int, float)) for v in values.values()):
        return wrong("every accuracy should be a number.",
                     "fc.test_loop returns (loss, accuracy): keep the second value.")
    if any(v > 1 for v in values.values()):
        return wrong("accuracies above 1: these look like percentages or losses.",
                     "use the accuracy as fc.test_loop returns it, a share between 0 and 1.")
    best = max(values, key=values.get)
    if best_lr != best:
        return wrong(f"best_lr is {best_lr}, but {best} has the highest validation accuracy "
                     f"({values[best]:.1%}).",
                     "choose the candidate with the highest validation accuracy: "
                     "`max(validation_accuracy, key=validation_accuracy.get)`.")
    if best in (0.001, 1.0):
        return wrong(f"{best} won, which one epoch should not allow: 0.001 barely moves the weights "
                     "and 1.0 makes plain SGD jump around.",
                     "check that each score trains its own fresh model on the training part and "
                     "scores it on the validation part.")
    return solved(f"lr {best} scores best on validation ({values[best]:.1%}); the test set stayed "
                  "untouched.")


def reference_smoothed_targets(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """What ``nn.CrossEntropyLoss(label_smoothing=s)`` aims at: 1 - s on the class, s / K everywhere."""
    one_hot = torch.nn.functional.one_hot(labels, num_classes).float()
    return one_hot * (1 - smoothing) + smoothing / num_classes


def check_smoothed_targets(smoothed_targets: Any) -> Outcome:
    """``smoothed_targets(labels, num_classes, smoothing)``: the target distribution of smoothing."""
    labels = torch.tensor([3, 0, 9, 3])
    got = attempt(smoothed_targets, labels, 10, 0.1)
    if isinstance(got, Outcome):
        return got
    expected = reference_smoothed_targets(labels, 10, 0.1)
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        rows = got.detach().double().sum(1)
        if torch.allclose(got.double(), torch.nn.functional.one_hot(labels, 10).double()):
            return wrong("these are plain one-hot targets: nothing was smoothed.",
                         "take `smoothing` away from the true class and spread it over all classes.")
        if not torch.allclose(rows, torch.ones_like(rows), atol=1e-5):
            return wrong(f"each row should sum to 1 (a probability distribution), but row 0 sums to "
                         f"{rows[0].item():.3f}.",
                         "the true class gets 1 - smoothing, and smoothing / num_classes goes to "
                         "every class, the true one included.")
        other = torch.full_like(expected, 0.1 / 9)
        other[torch.arange(4), labels] = 0.9
        if torch.allclose(got.double(), other.double(), atol=1e-6):
            return wrong("you spread the smoothing over the 9 other classes only.",
                         "PyTorch's label_smoothing spreads it over all K classes, the true one "
                         "included: smoothing / num_classes each, plus 1 - smoothing on the true one.")
    problem = compare_tensors(got, expected, what="the smoothed targets")
    if problem is not None:
        return problem
    logits = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    by_hand = -(got.double() * logits.double().log_softmax(1)).sum(1).mean()
    builtin = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(logits.double(), labels)
    if not torch.allclose(by_hand, builtin):
        return wrong("the targets look right but do not reproduce CrossEntropyLoss(label_smoothing=0.1).",
                     "make sure they are float32 probabilities in the order of the classes.")
    return solved("0.91 on the true class, 0.01 on each other one: the same loss as "
                  "nn.CrossEntropyLoss(label_smoothing=0.1).")
