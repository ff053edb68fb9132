"""The checkers of 08_troubleshooting's exercises: solutions accepted, typical mistakes named."""

from __future__ import annotations

import torch

import fashion_course as fc
from fashion_course.exercises import nb08


def fix_inputs(images, labels):
    return (images.float() / 255 - fc.MEAN) / fc.STD, labels.long()


def test_fix_inputs():
    assert nb08.check_fix_inputs(fix_inputs)
    assert ".long()" in nb08.check_fix_inputs(lambda i, lab: (fix_inputs(i, lab)[0], lab)).hint
    assert "/ 255" in nb08.check_fix_inputs(lambda i, lab: (i.float(), lab.long())).hint
    assert "fc.MEAN" in nb08.check_fix_inputs(lambda i, lab: (i.float() / 255, lab.long())).hint
    assert "uint8" in nb08.check_fix_inputs(lambda i, lab: (i, lab.long())).message
    assert nb08.check_fix_inputs(None).status == "not solved"


def predict_labels(model, X):
    model.eval()
    with torch.no_grad():
        return model(X).argmax(1)


def test_predict_labels():
    assert nb08.check_predict_labels(predict_labels)

    def train_mode(model, X):
        with torch.no_grad():
            return model(X).argmax(1)

    def logits(model, X):
        model.eval()
        with torch.no_grad():
            return model(X)

    def with_grad(model, X):
        model.eval()
        return model(X).max(1).values

    assert "model.eval()" in nb08.check_predict_labels(train_mode).hint
    assert "argmax" in nb08.check_predict_labels(logits).hint
    assert "no_grad" in nb08.check_predict_labels(with_grad).hint
    assert nb08.check_predict_labels(None).status == "not solved"
