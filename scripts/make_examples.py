"""Make the photo-like example images in examples/ from held-out Fashion-MNIST test items.

    python scripts/make_examples.py            # writes examples/*.png (deterministic)

Each example is one TEST-set item (never seen in training), rendered the way a phone photo of a
garment on a table looks: the garment dark on a light, unevenly lit, noisy background, larger
(200-300 pixels), off-centre, slightly blurred, some in colour. The file name carries the true
label and the test index, e.g. ``ankle-boot_test00000.png``, so that tests and notebook 09 can
state how many labels ``python -m fashion_course predict`` recovers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fashion_course as fc  # noqa: E402

OUT = ROOT / "examples"
# The first test item of every class, plus the second Shirt and Coat (the two classes the models
# confuse most), so that the examples are not a hand-picked set of easy ones.
EXTRA = {6: 2, 4: 2}


def slug(label: int) -> str:
    """'T-shirt/top' -> 't-shirt-top', 'Ankle boot' -> 'ankle-boot'."""
    return fc.CLASSES[label].lower().replace("/", "-").replace(" ", "-")


def choose(labels) -> list[int]:
    chosen = []
    for label in range(10):
        indices = (labels == label).nonzero().flatten().tolist()
        chosen += indices[: EXTRA.get(label, 1)]
    return sorted(chosen)


def render(item: np.ndarray, rng: np.random.Generator, colour: bool) -> Image.Image:
    """One 28x28 uint8 item (light on black) as a photo-like image (dark on light)."""
    width, height = (int(v) for v in rng.integers(200, 301, size=2))
    garment = int(min(width, height) * rng.uniform(0.45, 0.7))
    big = Image.fromarray(item).resize((garment, garment), Image.Resampling.BICUBIC)
    coverage = np.zeros((height, width), dtype=np.float32)
    x0 = int(rng.integers(5, width - garment - 5))  # off-centre
    y0 = int(rng.integers(5, height - garment - 5))
    coverage[y0 : y0 + garment, x0 : x0 + garment] = np.asarray(big, dtype=np.float32) / 255

    yy, xx = np.mgrid[0:height, 0:width] / max(width, height)
    light = rng.uniform(0.82, 0.9) + rng.uniform(0.04, 0.1) * (  # light from one side
        xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)
    )
    shade = rng.uniform(0.75, 0.9)  # how dark the garment is against the background
    photo = light * (1 - shade * coverage) + rng.normal(0, rng.uniform(0.015, 0.03), coverage.shape)
    gray = Image.fromarray((np.clip(photo, 0, 1) * 255).astype(np.uint8))
    gray = gray.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.2)))
    if not colour:
        return gray
    tint = rng.uniform(0.9, 1.0, size=3)  # warm or cool paper, the same noise in every channel
    rgb = np.asarray(gray, dtype=np.float32)[..., None] * tint
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def main() -> int:
    images, labels = fc.load_tensors(False)
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    rng = np.random.default_rng(0)
    for n, index in enumerate(choose(labels)):
        photo = render(images[index].numpy(), rng, colour=n % 2 == 1)
        path = OUT / f"{slug(int(labels[index]))}_test{index:05d}.png"
        photo.save(path, optimize=True)
        print(f"{path.relative_to(ROOT)}  {photo.size[0]}x{photo.size[1]} {photo.mode}  "
              f"{path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
