"""Checkers for the exercises of 09_classify_your_own_images: a light-on-dark photo, the top k classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ._core import Outcome, attempt, solved, wrong

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trouser_test00002.png"


def check_light_on_dark(prepare_light_on_dark: Any) -> Outcome:
    """``prepare_light_on_dark(path)``: the photo inverted, then ``fc.prepare_image``: not inverted again."""
    from ..images import PreparedImage, prepare_image

    got = attempt(prepare_light_on_dark, EXAMPLE)
    if isinstance(got, Outcome):
        return got
    if not isinstance(got, PreparedImage):
        return wrong(f"expected what fc.prepare_image returns, got {type(got).__name__}.",
                     "return `fc.prepare_image(light_on_dark)`.")
    original = prepare_image(EXAMPLE)
    if got.inverted:
        return wrong("the pipeline inverted your image: it was still dark on light.",
                     "invert the photo itself first: `ImageOps.invert(photo.convert('L'))`, then "
                     "prepare that image.")
    difference = (got.pixels - original.pixels).abs().mean().item()
    if (got.pixels - (1 - original.pixels)).abs().mean().item() < difference:
        return wrong("the model input is the negative of the original's.",
                     "invert the photo before fc.prepare_image, not the prepared pixels after it.")
    if difference > 0.05:
        return wrong(f"the model input differs from the original photo's by {difference:.3f} on average.",
                     "invert the whole photo (in grayscale) and pass that image to fc.prepare_image.")
    return solved(f"not inverted again, and the same model input (mean difference {difference:.3f}).")


def check_top_k(top_k: Any) -> Outcome:
    """``top_k(probabilities, k)``: ``[(class name, probability), ...]``, the k most likely, best first."""
    from ..data import CLASSES

    probabilities = torch.tensor([0.02, 0.01, 0.30, 0.05, 0.40, 0.01, 0.15, 0.02, 0.03, 0.01])
    expected = [(CLASSES[4], 0.40), (CLASSES[2], 0.30), (CLASSES[6], 0.15)]
    for k in (3, 1):
        got = attempt(top_k, probabilities, k)
        if isinstance(got, Outcome):
            return got
        try:
            pairs = [(name, float(p)) for name, p in got]
        except (TypeError, ValueError):
            return wrong(f"top_k returned {got!r}; expected a list of (class name, probability) pairs.",
                         "build it with `[(fc.CLASSES[i], p.item()) for p, i in zip(values, indices)]`.")
        if len(pairs) != k:
            return wrong(f"top_k(probabilities, {k}) returned {len(pairs)} pairs.",
                         "use `probabilities.topk(k)`.")
        names = [name for name, _ in pairs]
        if any(not isinstance(name, str) for name in names):
            return wrong("the first value of each pair should be a class name, not an index.",
                         "look the index up in `fc.CLASSES`.")
        if k == 3 and names == [n for n, _ in reversed(expected)]:
            return wrong("the classes come out least likely first.", "topk already sorts the largest first.")
        if k == 3 and names[0] == CLASSES[0]:
            return wrong("the list starts with the first class, not the most likely one.",
                         "sort by probability: `probabilities.topk(k)`.")
        want = expected[:k]
        close = all(abs(p - q) <= 1e-6 for (_, p), (_, q) in zip(pairs, want, strict=True))
        if names != [n for n, _ in want] or not close:
            return wrong(f"top_k(probabilities, {k}) gave {pairs}, expected {want}.",
                         "pair each of topk's values with the class name of its index.")
    return solved("the k most likely classes, best first, with their probabilities.")
