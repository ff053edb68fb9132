"""Checkers for the exercises of 08_troubleshooting: inputs of the right dtype, predictions in eval mode."""

from __future__ import annotations

from typing import Any

import torch

from ._core import Outcome, attempt, compare_tensors, solved, wrong


def check_fix_inputs(fix_inputs: Any) -> Outcome:
    """``fix_inputs(images, labels)``: raw uint8 images and float labels -> ``(X, y)`` for the model."""
    from ..data import MEAN, STD

    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7], dtype=torch.float32)
    got = attempt(fix_inputs, images, labels)
    if isinstance(got, Outcome):
        return got
    if not (isinstance(got, tuple) and len(got) == 2):
        return wrong(f"fix_inputs returned {type(got).__name__}, expected a pair (X, y).",
                     "end with `return X, y`.")
    X, y = got
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64:
        dtype = y.dtype if isinstance(y, torch.Tensor) else type(y).__name__
        return wrong(f"y has dtype {dtype}; CrossEntropyLoss wants class indices as int64 (Long).",
                     "convert the labels with `labels.long()`.")
    if not torch.equal(y, labels.long()):
        return wrong("y holds other classes than the labels.", "only convert the dtype: `labels.long()`.")
    expected = (images.float() / 255 - MEAN) / STD
    if isinstance(X, torch.Tensor) and X.dtype == torch.float32 and X.shape == expected.shape:
        if torch.allclose(X, images.float()):
            return wrong("X is the raw pixels 0-255 as floats.",
                         "scale to [0, 1] with `/ 255`, then normalise with fc.MEAN and fc.STD.")
        if torch.allclose(X, images.float() / 255):
            return wrong("X is scaled to [0, 1] but not normalised like the training data.",
                         "subtract fc.MEAN and divide by fc.STD after dividing by 255.")
    if isinstance(X, torch.Tensor) and X.dtype == torch.uint8:
        return wrong("X is still uint8 (Byte): the layer's weights are float32.",
                     "convert with `.float()` and normalise.")
    problem = compare_tensors(X, expected, what="X")
    if problem is not None:
        return problem
    return solved("float32 images normalised like the training set, int64 labels: the loss is finite.")


def check_predict_labels(predict_labels: Any) -> Outcome:
    """``predict_labels(model, X)``: class indices, predicted in eval mode without gradients."""
    from ..models import FashionCNN

    torch.manual_seed(0)
    model = FashionCNN()  # batch norm and dropout: a model whose mode matters; fresh = training mode
    X = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        expected = model(X).argmax(1)
    model.train()
    got = attempt(predict_labels, model, X)
    if isinstance(got, Outcome):
        return got
    if isinstance(got, torch.Tensor) and got.shape == (6, 10):
        return wrong("predict_labels returned the 10 logits of each image, not its class.",
                     "take `.argmax(1)` of the logits.")
    if isinstance(got, torch.Tensor) and got.requires_grad:
        return wrong("the result still requires grad: a graph was built for nothing.",
                     "predict inside `with torch.no_grad():`.")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and not torch.equal(got, expected):
        return wrong("the predictions differ from the model's answers in eval mode.",
                     "call `model.eval()` first: in training mode dropout and batch norm change "
                     "the answers.")
    problem = compare_tensors(got, expected, what="the predicted labels")
    if problem is not None:
        return problem
    return solved("eval mode and no_grad: the same answers on every call.")
