"""Checkers for the exercises of 06_save_load_onnx: a state_dict round trip, resuming from a checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._core import Outcome, attempt, solved, wrong


def _trained_model(seed: int = 0) -> nn.Module:
    from ..models import NeuralNetwork

    torch.manual_seed(seed)
    return NeuralNetwork()


def check_roundtrip(roundtrip: Any) -> Outcome:
    """``roundtrip(model, path)``: save the state_dict, return a fresh model with it, in eval mode."""
    model = _trained_model(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "roundtrip.pth"
        got = attempt(roundtrip, model, path)
        if isinstance(got, Outcome):
            return got
        if not path.exists():
            return wrong(f"nothing was written to {path.name}.",
                         "save with `torch.save(model.state_dict(), path)` before loading.")
        try:
            saved = torch.load(path, weights_only=True)
        except Exception as exc:  # the learner saved something weights_only refuses
            return wrong(f"the file does not load with weights_only=True ({type(exc).__name__}).",
                         "save `model.state_dict()`, not the model object: a pickled model needs "
                         "weights_only=False, which can run code.")
        if not isinstance(saved, dict):
            return wrong(f"the file holds a {type(saved).__name__}, not a state_dict.",
                         "save `model.state_dict()`.")
    if not isinstance(got, nn.Module):
        return wrong(f"roundtrip returned a {type(got).__name__}, expected the reloaded model.",
                     "return the fresh model after `load_state_dict`, not the result of "
                     "`load_state_dict` itself (that is a list of missing and unexpected keys).")
    if got is model:
        return wrong("roundtrip returned the model it was given.",
                     "build a fresh `fc.NeuralNetwork()` and load the saved weights into it.")
    state, expected = got.state_dict(), model.state_dict()
    if set(state) != set(expected) or any(not torch.equal(state[k], expected[k]) for k in expected):
        return wrong("the returned model's weights differ from the saved ones.",
                     "call `load_state_dict(torch.load(path, weights_only=True))` on the fresh model.")
    if got.training:
        return wrong("the returned model is in training mode.",
                     "call `.eval()` before returning it: dropout and batch norm behave differently "
                     "when predicting.")
    return solved("the weights survive the file bit for bit, and the model is ready to predict.")


def check_resume(resume: Any) -> Outcome:
    """``resume(path)`` -> ``(model, optimizer, start_epoch)`` from a resumable checkpoint."""
    from ..export import save_checkpoint
    from ..models import NeuralNetwork

    torch.manual_seed(0)
    model = NeuralNetwork()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    X, y = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        optimizer.step()
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / "resume.pth", model, optimizer=optimizer, epoch=4)
        got = attempt(resume, path)
    if isinstance(got, Outcome):
        return got
    if not (isinstance(got, tuple) and len(got) == 3):
        return wrong(f"resume returned {type(got).__name__}, expected (model, optimizer, start_epoch).",
                     "end with `return model, optimizer, start_epoch`.")
    new_model, new_optimizer, start_epoch = got
    if not isinstance(new_model, nn.Module) or not isinstance(new_optimizer, torch.optim.Optimizer):
        return wrong("the first two values should be a model and an optimizer.",
                     "return them in the order (model, optimizer, start_epoch).")
    if any(not torch.equal(a, b) for a, b in zip(new_model.state_dict().values(),
                                                  model.state_dict().values(), strict=True)):
        return wrong("the model's weights are not the saved ones.",
                     "load `checkpoint['state_dict']` into the rebuilt model.")
    own = {id(p) for p in new_model.parameters()}
    if any(id(p) not in own for group in new_optimizer.param_groups for p in group["params"]):
        return wrong("the optimizer updates parameters that are not the returned model's.",
                     "create the optimizer from the rebuilt model's parameters, then load its state.")
    steps = [s.get("step") for s in new_optimizer.state.values()]
    if not steps:
        return wrong("the optimizer has no state: AdamW would start its running averages from zero.",
                     "call `optimizer.load_state_dict(checkpoint['optimizer_state_dict'])`.")
    if int(steps[0]) != 3:
        return wrong(f"the optimizer has taken {int(steps[0])} steps, the saved one 3.",
                     "load the optimizer state from the checkpoint, after creating the optimizer.")
    if start_epoch == 4:
        return wrong("start_epoch is 4, the epoch that was already finished and saved.",
                     "training continues with the next epoch: `checkpoint['epoch'] + 1`.")
    if start_epoch != 5:
        return wrong(f"start_epoch is {start_epoch!r}, expected 5 (the saved epoch was 4).",
                     "read it from `checkpoint['epoch']` and add one.")
    return solved("weights, optimizer state and epoch restored: training continues where it stopped.")
