"""The checkers of 06_save_load_onnx's exercises: solutions accepted, typical mistakes named."""

from __future__ import annotations

import torch

import fashion_course as fc
from fashion_course.exercises import nb06


def roundtrip(model, path):
    torch.save(model.state_dict(), path)
    fresh = fc.NeuralNetwork()
    fresh.load_state_dict(torch.load(path, weights_only=True))
    return fresh.eval()


def test_roundtrip():
    assert nb06.check_roundtrip(roundtrip)


def test_roundtrip_mistakes():
    def whole_model(model, path):
        torch.save(model, path)
        return model

    def train_mode(model, path):
        return roundtrip(model, path).train()

    def load_result(model, path):
        torch.save(model.state_dict(), path)
        return fc.NeuralNetwork().load_state_dict(torch.load(path, weights_only=True))

    def not_loaded(model, path):
        torch.save(model.state_dict(), path)
        return fc.NeuralNetwork().eval()

    assert "state_dict" in nb06.check_roundtrip(whole_model).hint
    assert ".eval()" in nb06.check_roundtrip(train_mode).hint
    assert "load_state_dict" in nb06.check_roundtrip(load_result).hint
    assert "differ" in nb06.check_roundtrip(not_loaded).message
    assert nb06.check_roundtrip(lambda model, path: ...).status == "not solved"


def resume(path):
    checkpoint = fc.load_checkpoint(path)
    model = fc.build_model(checkpoint["architecture"], **checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return model, optimizer, checkpoint["epoch"] + 1


def test_resume():
    assert nb06.check_resume(resume)


def test_resume_mistakes():
    def same_epoch(path):
        model, optimizer, epoch = resume(path)
        return model, optimizer, epoch - 1

    def fresh_optimizer(path):
        model, _, epoch = resume(path)
        return model, torch.optim.AdamW(model.parameters(), lr=1e-3), epoch

    def other_parameters(path):
        model, _, epoch = resume(path)
        optimizer = torch.optim.AdamW(fc.NeuralNetwork().parameters(), lr=1e-3)
        return model, optimizer, epoch

    assert "checkpoint['epoch'] + 1" in nb06.check_resume(same_epoch).hint
    assert "optimizer_state_dict" in nb06.check_resume(fresh_optimizer).hint
    assert "rebuilt model's parameters" in nb06.check_resume(other_parameters).hint
    assert nb06.check_resume(None).status == "not solved"
