"""The checkers of 09_classify_your_own_images' exercises: solutions accepted, typical mistakes named."""

from __future__ import annotations

from PIL import Image, ImageOps

import fashion_course as fc
from fashion_course.exercises import nb09


def prepare_light_on_dark(path):
    with Image.open(path) as photo:
        return fc.prepare_image(ImageOps.invert(photo.convert("L")))


def test_light_on_dark():
    assert nb09.check_light_on_dark(prepare_light_on_dark)
    assert "ImageOps.invert" in nb09.check_light_on_dark(fc.prepare_image).hint
    assert nb09.check_light_on_dark(lambda path: fc.prepare_image(path).pixels).status == "wrong"
    assert nb09.check_light_on_dark(None).status == "not solved"


def top_k(probabilities, k):
    values, indices = probabilities.topk(k)
    return [(fc.CLASSES[i], p.item()) for p, i in zip(values, indices.tolist(), strict=True)]


def test_top_k():
    assert nb09.check_top_k(top_k)
    assert "fc.CLASSES" in nb09.check_top_k(
        lambda p, k: [(i, v) for v, i in zip(*(t.tolist() for t in p.topk(k)), strict=True)]).hint
    assert "largest first" in nb09.check_top_k(lambda p, k: top_k(p, k)[::-1]).hint
    assert "topk" in nb09.check_top_k(lambda p, k: [(fc.CLASSES[i], p[i].item()) for i in range(k)]).hint
    assert nb09.check_top_k(None).status == "not solved"
