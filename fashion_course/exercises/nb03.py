"""Checkers for the exercises of 03_build_the_model: counting parameters, an ``nn.Sequential``,
logits to probabilities to predicted classes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models import NeuralNetwork
from ._core import Outcome, attempt, compare_tensors, is_stub, not_solved, solved, wrong


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_mlp_parameters(mlp_parameters: Any) -> Outcome:
    """Exercise 1 of 03: the parameter count of 784 -> hidden -> hidden -> 10 as a formula."""
    for hidden in (512, 64, 7, 1000):
        got = attempt(mlp_parameters, hidden)
        if isinstance(got, Outcome):
            return got
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, int | float):
            return wrong(f"expected a number, got {type(got).__name__}.", "return an int.")
        expected = _count(NeuralNetwork(hidden=hidden))
        if got == expected:
            continue
        weights_only = 784 * hidden + hidden * hidden + hidden * 10
        if got == weights_only:
            return wrong(f"for hidden={hidden} you counted {got:,}, the weights only.",
                         "every output of a linear layer also has a bias: add `out_features` per layer.")
        if got == expected - (hidden * hidden + hidden):
            return wrong(f"for hidden={hidden} you counted {got:,}: one layer is missing.",
                         "there are three linear layers: 784 -> hidden, hidden -> hidden, hidden -> 10.")
        return wrong(f"for hidden={hidden} you counted {got:,}, expected {expected:,}.",
                     "a linear layer has in_features * out_features weights plus out_features biases; "
                     "use `hidden` everywhere the 512 was.")
    return solved("your formula matches `fc.count_parameters` for every width tried.")


def check_small_model(small_model: Any) -> Outcome:
    """Exercise 2 of 03: nn.Sequential(Flatten, Linear(784, 128), ReLU, Linear(128, 10))."""
    if is_stub(small_model):
        return not_solved()
    if not isinstance(small_model, nn.Module):
        return wrong(f"expected a module, got {type(small_model).__name__}.",
                     "build it with `nn.Sequential(...)` and assign the module itself, not its output.")
    layers = list(small_model.children())
    if isinstance(layers[-1] if layers else None, nn.ReLU | nn.Softmax | nn.Sigmoid):
        return wrong(f"the model ends with {type(layers[-1]).__name__}.",
                     "the last layer must output logits: no activation after the last `nn.Linear`.")
    linears = [m for m in small_model.modules() if isinstance(m, nn.Linear)]
    if len(linears) == 2 and not any(isinstance(m, nn.ReLU) for m in small_model.modules()):
        return wrong("there is no ReLU between the two linear layers.",
                     "two linear layers with nothing between them are one linear map: "
                     "put `nn.ReLU()` between.")
    if any(isinstance(m, nn.Flatten) and m.start_dim == 0 for m in small_model.modules()):
        return wrong("`nn.Flatten(start_dim=0)` merges the batch dimension away.",
                     "use `nn.Flatten()`: its default `start_dim=1` keeps one row per image.")
    try:
        device = next(small_model.parameters()).device
    except StopIteration:
        return wrong("the model has no parameters.", "it needs two `nn.Linear` layers.")
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(5)).to(device)
    got = attempt(small_model, x)
    if isinstance(got, Outcome):
        if got.status == "wrong" and "cannot be multiplied" in got.message:
            return wrong(got.message, "flatten each image first (`nn.Flatten()`), and make each layer's "
                                      "in_features equal the previous layer's out_features.")
        return got
    if not isinstance(got, torch.Tensor):
        return wrong(f"the model returned {type(got).__name__}, expected a tensor of logits.",
                     "use only layers in `nn.Sequential`, the last one `nn.Linear(128, 10)`.")
    if got.shape != (5, 10):
        return wrong(f"the output has shape {tuple(got.shape)} for a batch of 5 images, expected (5, 10).",
                     "784 -> 128 -> 10, with `nn.Flatten()` first.")
    if _count(small_model) != 784 * 128 + 128 + 128 * 10 + 10:
        return wrong(f"the model has {_count(small_model):,} parameters, expected 101,770.",
                     "784 -> 128 (with bias), ReLU, 128 -> 10 (with bias).")
    return solved("Flatten, 784 -> 128, ReLU, 128 -> 10: logits of shape (5, 10), 101,770 parameters.")


def _model_and_images() -> tuple[nn.Module, torch.Tensor]:
    """A model with confident, varied predictions, and uint8 images like fc.load_tensors gives."""
    torch_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(6)
        model = NeuralNetwork(hidden=32)
    finally:
        torch.random.set_rng_state(torch_state)  # the learner's random stream stays as it was
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4)
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    return model, images


def check_predict(predict: Any) -> Outcome:
    """Exercise 3 of 03: (probabilities (N, 10), predicted classes (N,)) for a batch of uint8 images."""
    model, images = _model_and_images()
    got = attempt(predict, model, images.clone())
    if isinstance(got, Outcome):
        if got.status == "wrong" and "Byte" in got.message:
            return wrong(got.message, "the model computes in float32: convert the pixels with "
                                      "`images.float() / 255` first.")
        return got
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return wrong(f"expected two tensors (probabilities, classes), got {type(got).__name__}.",
                     "end with `return probabilities, classes`.")
    probabilities, classes = got
    with torch.no_grad():
        logits = model(images.float() / 255)
        expected = nn.Softmax(dim=1)(logits)
    if isinstance(probabilities, torch.Tensor) and probabilities.shape == expected.shape:
        p = probabilities.detach().float().cpu()
        if torch.allclose(p, logits, atol=1e-5):
            return wrong("the first tensor holds the logits, not probabilities.",
                         "apply `nn.Softmax(dim=1)` to the logits.")
        if torch.allclose(p, nn.Softmax(dim=0)(logits), atol=1e-5):
            return wrong("softmax over the wrong dimension: each class sums to 1 across the batch.",
                         "use `dim=1`, the classes, so that each image's row sums to 1.")
        with torch.no_grad():
            unscaled = nn.Softmax(dim=1)(model(images.float()))
        if torch.allclose(p, unscaled, atol=1e-5):
            return wrong("the probabilities come from pixels in 0..255.",
                         "the model expects floats in [0, 1]: divide the uint8 pixels by 255.")
    problem = compare_tensors(probabilities, expected, what="the probabilities", atol=1e-5)
    if problem is not None:
        return problem
    expected_classes = expected.argmax(dim=1)
    if isinstance(classes, torch.Tensor) and classes.shape == (10,):
        return wrong("the classes have shape (10,): argmax over the batch dimension.",
                     "take `argmax(dim=1)`, one class per image.")
    problem = compare_tensors(classes, expected_classes, what="the predicted classes")
    if problem is not None:
        return problem
    return solved("probabilities that sum to 1 per image, and the most likely class of each.")
