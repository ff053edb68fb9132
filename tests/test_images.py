"""Photo preprocessing (fashion_course.images): the pipeline against known answers.

The oracle is Fashion-MNIST itself: the example photos were rendered from test items, so the
pipeline must give back (nearly) the item; and an odd file format must give back what the same
picture gives as a plain 8-bit grayscale PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fashion_course as fc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
TROUSER = next(p for p in EXAMPLES if p.name.startswith("trouser_"))


def item_index(path: Path) -> int:
    """``trouser_test00002.png`` -> 2, the item's index in the test split."""
    return int(path.stem.rsplit("_test", 1)[1])


def test_examples_are_a_dozen_small_photo_like_files():
    assert 10 <= len(EXAMPLES) <= 16
    slugs = {c.lower().replace("/", "-").replace(" ", "-") for c in fc.CLASSES}
    assert {p.name.split("_")[0] for p in EXAMPLES} == slugs  # every class at least once
    for path in EXAMPLES:
        assert path.stat().st_size < 100 * 1024
        with Image.open(path) as image:
            assert 200 <= min(image.size) and max(image.size) <= 300
            border = np.asarray(image.convert("L"), dtype=float)[:3].mean()
            assert border > 150  # a light background, unlike Fashion-MNIST's black one


def _shifts(a: torch.Tensor):
    """``a`` moved by up to 2 pixels each way: Fashion-MNIST's own centring is not exact."""
    return [torch.roll(a, (dy, dx), (0, 1)) for dy in range(-2, 3) for dx in range(-2, 3)]


def closest(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(smallest mean absolute difference, largest correlation) over small shifts of ``a``."""
    mad = min((s - b).abs().mean().item() for s in _shifts(a))
    corr = max(torch.corrcoef(torch.stack([s.flatten(), b.flatten()]))[0, 1].item() for s in _shifts(a))
    return mad, corr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_photo_gives_back_its_test_item(path, test_split):
    images, labels = test_split
    item = images[item_index(path)].float() / 255
    prepared = fc.prepare_image(path)
    assert prepared.inverted and prepared.found_object
    assert prepared.pixels.shape == (28, 28) and prepared.tensor.shape == (1, 28, 28)
    mad, corr = closest(prepared.pixels, item)
    assert mad < 0.12 and corr > 0.9  # measured: at most 0.10 and at least 0.92
    # The garment was placed off-centre; the crop finds it.
    left, top, right, bottom = prepared.box
    assert 0 < left < right and 0 < top < bottom


def test_fashion_mnist_images_pass_through_unchanged(test_split):
    """A Fashion-MNIST image is already what the pipeline makes: it should come out the same."""
    images, _ = test_split
    distances = []
    for item in images[:200]:
        prepared = fc.prepare_image(Image.fromarray(item.numpy()))
        assert not prepared.inverted  # already light on black
        distances.append(closest(prepared.pixels, item.float() / 255)[0])
    distances = torch.tensor(distances)
    assert distances.median() < 0.001  # most are identical up to a one-pixel shift
    assert (distances < 0.03).float().mean() >= 0.9  # the rest do not touch the frame


def test_normalisation_uses_the_given_statistics():
    prepared = fc.prepare_image(TROUSER, normalization=(0.5, 0.25))
    assert torch.allclose(prepared.tensor[0], (prepared.pixels - 0.5) / 0.25)
    default = fc.prepare_image(TROUSER)
    assert torch.allclose(default.tensor[0], (default.pixels - fc.MEAN) / fc.STD)


def test_steps_are_kept_for_plotting_in_order():
    prepared = fc.prepare_image(TROUSER)
    assert list(prepared.steps) == ["photo", "grayscale", "inverted", "background removed",
                                    "cropped", "padded to square", "28x28"]
    square = prepared.steps["padded to square"]
    assert square.shape[0] == square.shape[1] == max(prepared.steps["cropped"].shape)
    import matplotlib

    matplotlib.use("Agg")
    fig = fc.plot_preparation(prepared)
    assert len(fig.axes) == len(prepared.steps)


# ------------------------------------------------------------- odd but valid image formats


def reference() -> Image.Image:
    """The trouser photo as plain 8-bit grayscale: what every odd format must reproduce."""
    with Image.open(TROUSER) as image:
        return image.convert("L")


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def _sixteen_bit(path):
    wide = np.asarray(reference(), dtype=np.uint16) * 257  # 0..255 -> 0..65535
    image = Image.fromarray(wide)
    assert image.mode == "I;16"
    return _save(image, path.with_suffix(".png"))


def _rgba_transparent(path):
    # Black everywhere; the garment is opaque, the background fully transparent (RGBA 0,0,0,0).
    # Ignoring the alpha channel would give an all-black picture with nothing to find.
    darkness = 255 - np.asarray(reference())
    rgba = np.zeros((*darkness.shape, 4), dtype=np.uint8)
    rgba[..., 3] = darkness
    return _save(Image.fromarray(rgba, "RGBA"), path.with_suffix(".png"))


def _palette(path):
    return _save(reference().convert("P"), path.with_suffix(".png"))


def _cmyk(path):
    return _save(reference().convert("RGB").convert("CMYK"), path.with_suffix(".tiff"))


def _bilevel(path):
    return _save(reference().point(lambda v: 255 if v > 128 else 0).convert("1"), path.with_suffix(".png"))


def _gray_alpha(path):
    la = Image.merge("LA", [reference(), Image.new("L", reference().size, 255)])
    return _save(la, path.with_suffix(".png"))


def _exif_rotated(path):
    # A phone stores the sensor's pixels sideways and says "rotate me" in EXIF (Orientation 6).
    stored = reference().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(stored, path.with_suffix(".jpg"), exif=exif, quality=95)


ODD = {
    "16-bit": (_sixteen_bit, "I;16", 0.01),
    "RGBA, transparent background": (_rgba_transparent, "RGBA", 0.01),
    "palette": (_palette, "P", 0.01),
    "CMYK": (_cmyk, "CMYK", 0.01),
    "gray + alpha": (_gray_alpha, "LA", 0.01),
    "1-bit": (_bilevel, "1", 0.1),
    "EXIF-rotated JPEG": (_exif_rotated, "L", 0.03),
}


@pytest.mark.parametrize("kind", ODD)
def test_odd_format_gives_the_same_input_as_plain_grayscale(kind, tmp_path):
    make, mode, tolerance = ODD[kind]
    path = make(tmp_path / "odd")
    with Image.open(path) as image:
        assert image.mode == mode  # the file really is in the odd mode
    expected = fc.prepare_image(reference()).pixels
    got = fc.prepare_image(path).pixels
    assert (got - expected).abs().mean() < tolerance
    prediction = fc.classify_images([path], model=fc.NeuralNetwork())[0]
    assert len(prediction.top) == 3  # classified, not refused


def test_exif_rotation_matters(tmp_path):
    """Without applying the EXIF orientation the trousers would lie on their side."""
    path = _exif_rotated(tmp_path / "odd")
    with Image.open(path) as raw:
        assert raw.getexif()[0x0112] == 6
        sideways = fc.prepare_image(Image.fromarray(np.asarray(raw))).pixels  # pixels, no EXIF
    upright = fc.prepare_image(reference()).pixels
    assert (sideways - upright).abs().mean() > 0.1


def test_one_pixel_image_is_classified_as_unsure(tmp_path):
    path = _save(Image.new("RGB", (1, 1), (200, 30, 30)), tmp_path / "dot.png")
    prepared = fc.prepare_image(path)
    assert prepared.pixels.shape == (28, 28) and not prepared.found_object
    prediction = fc.classify_images([path], model=fc.NeuralNetwork())[0]
    assert prediction.unsure and prediction.label == "unsure"
    assert "nothing stands out" in prediction.reason


def test_large_photo_is_shrunk_before_processing(tmp_path):
    big = reference().resize((2400, 2600), Image.Resampling.BICUBIC)
    prepared = fc.prepare_image(_save(big, tmp_path / "big.png"))
    assert max(prepared.steps["grayscale"].shape) == 512
    expected = fc.prepare_image(reference()).pixels
    assert (prepared.pixels - expected).abs().mean() < 0.05


def test_in_memory_images_work_like_files():
    buffer = io.BytesIO()
    reference().save(buffer, format="PNG")
    buffer.seek(0)
    with Image.open(buffer) as image:
        from_memory = fc.prepare_image(image).pixels
    assert torch.equal(from_memory, fc.prepare_image(TROUSER).pixels)
