"""Turn a photo of a garment into a Fashion-MNIST-like input, one visible step at a time.

Taught in 09_classify_your_own_images. Fashion-MNIST items are light garments on a black
background, cropped to the garment, its longer side scaled to 28 pixels and centred. A photo is
usually the opposite (a darker garment on a light background, off-centre, with noise), so:
open it safely, apply its EXIF rotation, convert any colour mode to grayscale, make the
background dark (inverting when the border is light), remove the background level, crop to the
garment, pad to a square, resize to 28x28 and normalise with the model's statistics.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from .data import CLASSES, MEAN, STD

__all__ = [
    "ImageError",
    "MAX_PIXELS",
    "MAX_BYTES",
    "PreparedImage",
    "open_image",
    "to_grayscale",
    "prepare_image",
    "plot_preparation",
    "IMAGE_SUFFIXES",
    "folder_name",
    "labelled_images",
]

# A 40-megapixel phone photo is fine; a header that declares more is refused before decoding,
# because decoding it could take gigabytes of memory (a "decompression bomb").
MAX_PIXELS = 40_000_000
MAX_BYTES = 64 * 1024 * 1024
# Photos are shrunk to this longer side before any processing: 28x28 is the goal anyway.
WORKING_SIZE = 512
# A pixel belongs to the garment above this fraction of the garment's brightness.
OBJECT_THRESHOLD = 0.05
# The files a folder of labelled photos is read for (the suffixes torchvision's ImageFolder reads).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageError(ValueError):
    """An image that cannot or must not be used; the message names the file and what to do."""


@dataclass
class PreparedImage:
    """A photo turned into model input, with every intermediate step kept for plotting.

    ``tensor`` is ``(1, 28, 28)``, normalised for the model; ``pixels`` is the same image in
    [0, 1] (light garment on black, like Fashion-MNIST). ``box`` is (left, top, right, bottom) of
    the crop in the working-size image; ``found_object`` is False when nothing stood out from the
    background.
    """

    tensor: torch.Tensor
    pixels: torch.Tensor
    steps: dict[str, np.ndarray] = field(repr=False)
    inverted: bool
    box: tuple[int, int, int, int]
    found_object: bool
    source: str = ""


def _damaged(path: Path, exc: BaseException) -> ImageError:
    detail = " ".join(str(exc).split())[:160] or type(exc).__name__
    return ImageError(
        f"{path} is damaged or truncated ({detail}); open it in an image viewer and save or "
        "export it again"
    )


def _too_large(path: Path, size: tuple[int, int] | int | None, max_pixels: int) -> ImageError:
    if isinstance(size, tuple):
        declared = f"{size[0]}x{size[1]} pixels"
    else:
        declared = f"its header declares {size:,} pixels" if size else "too many pixels"
    return ImageError(
        f"{path} is too large to handle ({declared}; the limit is {max_pixels / 1e6:.0f} "
        "megapixels): shrink it to about 1000 pixels on the longer side and try again"
    )


def open_image(
    path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES
) -> Image.Image:
    """Open and decode an image file safely, upright (EXIF rotation applied).

    The file size and the pixel count declared in the header are checked before any pixel is
    decoded; anything unreadable raises :class:`ImageError` with one line saying what to do.
    (Pillow's own limit, ``Image.MAX_IMAGE_PIXELS``, still applies above ``max_pixels``.)
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path} does not exist (or is not a file); check the path")
    nbytes = path.stat().st_size
    if nbytes > max_bytes:
        raise ImageError(
            f"{path} is {nbytes / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB this "
            "command reads: shrink or compress the photo first"
        )
    size = None
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that; treat it as a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size  # read from the header: nothing is decoded yet
                if size[0] * size[1] > max_pixels:
                    raise _too_large(path, size, max_pixels)
                if size[0] < 1 or size[1] < 1:
                    raise ImageError(f"{path} has no pixels ({size[0]}x{size[1]})")
                image.load()
                return ImageOps.exif_transpose(image)  # a decoded copy, upright
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses inside Image.open, before handing over the size; its message has it.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, size or (int(found.group(1)) if found else None), max_pixels) from None
    except UnidentifiedImageError:
        with open(path, "rb") as fh:
            head = fh.read(8)
        what = f"it starts with bytes {head.hex()}" if head else "the file is empty"
        raise ImageError(
            f"{path} is not an image this program can read ({what}); use a PNG or JPEG photo"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
            struct.error, zlib.error) as exc:  # Pillow's decoders raise all of these
        raise _damaged(path, exc) from None
    except MemoryError:
        raise _too_large(path, size, max_pixels) from None


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as a float32 array in [0, 1] (0 = black).

    Transparent pixels are composited on white, as a photo on a white page would look;
    16-bit and 32-bit images are scaled by their bit depth, not clipped at 255.
    """
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode == "I":
        a = np.asarray(image, dtype=np.float64)
        top = 255.0 if a.max() <= 255 else 65535.0 if a.max() <= 65535 else a.max()
        return np.clip(a / top, 0, 1).astype(np.float32)
    if mode == "F":
        a = np.nan_to_num(np.asarray(image, dtype=np.float32))
        low, high = float(a.min()), float(a.max())
        if low >= 0 and high <= 1:
            return a
        return (a - low) / (high - low) if high > low else np.zeros_like(a)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    try:
        gray = image.convert("L")
    except ValueError:  # modes without a direct path to L (e.g. LAB, HSV)
        try:
            gray = image.convert("RGB").convert("L")
        except ValueError:
            raise ImageError(f"images in mode {mode!r} are not supported; save it as RGB") from None
    return np.asarray(gray, dtype=np.float32) / 255.0


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image to (width, height): area averaging down, bilinear up."""
    if a.shape[1] == size[0] and a.shape[0] == size[1]:
        return a
    shrinking = size[0] <= a.shape[1] and size[1] <= a.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a.astype(np.float32)).resize(size, method), dtype=np.float32)


def _border(a: np.ndarray) -> np.ndarray:
    k = max(1, round(0.03 * min(a.shape)))
    return np.concatenate([a[:k].ravel(), a[-k:].ravel(), a[:, :k].ravel(), a[:, -k:].ravel()])


def _median3(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.float32)).filter(ImageFilter.MedianFilter(3)))


def _object_box(
    a: np.ndarray, threshold: float, *, despeckle: bool
) -> tuple[int, int, int, int] | None:
    """Bounding box of the pixels above ``threshold``; with ``despeckle``, specks of noise
    (smaller than 3x3) are ignored, since a speck is not the garment."""
    mask = (a > threshold).astype(np.float32)
    if despeckle:
        mask = _median3(mask)
    return Image.fromarray((mask > 0.5).astype(np.uint8) * 255).getbbox()


def prepare_image(
    source: str | os.PathLike | Image.Image,
    *,
    normalization: tuple[float, float] = (MEAN, STD),
    margin: int = 0,
    max_pixels: int = MAX_PIXELS,
) -> PreparedImage:
    """Turn a photo (a path or a Pillow image) into a ``(1, 28, 28)`` model input.

    ``margin`` leaves that many black pixels around the garment; 0 matches Fashion-MNIST, whose
    garments touch the frame on their longer side.
    """
    if isinstance(source, Image.Image):
        image, name = ImageOps.exif_transpose(source), "image"
    else:
        image, name = open_image(source, max_pixels=max_pixels), str(source)
    steps: dict[str, np.ndarray] = {"photo": np.asarray(image.convert("RGB"))}

    gray = to_grayscale(image)
    h, w = gray.shape
    if max(h, w) > WORKING_SIZE:
        scale = WORKING_SIZE / max(h, w)
        gray = _resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))))
    steps["grayscale"] = gray

    # Fashion-MNIST garments are light on black: make the background (the border) dark.
    inverted = float(np.median(_border(gray))) > 0.5
    dark = 1.0 - gray if inverted else gray
    steps["inverted" if inverted else "background already dark"] = dark

    # Remove the background level and its noise, then stretch so the garment reaches 1.0 like
    # almost every Fashion-MNIST image does.
    border = _border(dark)
    background = float(np.median(border))
    noise = 1.4826 * float(np.median(np.abs(border - background)))  # robust standard deviation
    noisy = noise > 0.002 and min(dark.shape) >= 5  # a photo, not a clean drawing or a scan
    floor = background + 3 * noise
    peak = float((_median3(dark) if noisy else dark).max())  # brightest garment pixel, not a speck
    found = peak - floor > 0.05
    clean = np.clip((dark - floor) / (peak - floor), 0, 1) if found else np.zeros_like(dark)
    steps["background removed"] = clean

    box = _object_box(clean, OBJECT_THRESHOLD, despeckle=noisy) if found else None
    found = box is not None
    left, top, right, bottom = box or (0, 0, clean.shape[1], clean.shape[0])
    crop = clean[top:bottom, left:right]
    steps["cropped"] = crop

    side = max(crop.shape)
    square = np.zeros((side, side), dtype=np.float32)
    y0, x0 = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    steps["padded to square"] = square

    inner = 28 - 2 * margin
    small = np.clip(_resize(square, (inner, inner)), 0, 1)
    pixels = np.pad(small, margin) if margin else small
    steps["28x28"] = pixels

    mean, std = normalization
    pixels_t = torch.tensor(pixels, dtype=torch.float32)  # a copy: Pillow's arrays are read-only
    return PreparedImage(
        tensor=((pixels_t - mean) / std).unsqueeze(0),
        pixels=pixels_t,
        steps=steps,
        inverted=inverted,
        box=(left, top, right, bottom),
        found_object=found,
        source=name,
    )


def plot_preparation(prepared: PreparedImage, *, fig=None, size: float = 2.2):
    """Draw every step of :func:`prepare_image` side by side; returns the figure."""
    import matplotlib.pyplot as plt

    steps = prepared.steps
    fig = fig or plt.figure(figsize=(size * len(steps), size * 1.15))
    for i, (title, a) in enumerate(steps.items()):
        ax = fig.add_subplot(1, len(steps), i + 1)
        if a.ndim == 3:
            ax.imshow(a)
        else:
            ax.imshow(a, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title}\n{a.shape[1]}x{a.shape[0]}", fontsize=8)
        ax.axis("off")
    return fig


def folder_name(class_name: str) -> str:
    """The folder name for a class: lower case, every run of other characters one ``-``.

    ``"T-shirt/top"`` -> ``"t-shirt-top"``, ``"Ankle boot"`` -> ``"ankle-boot"``: a class name
    may hold a ``/``, which no folder name can.
    """
    return re.sub(r"[^0-9a-z]+", "-", str(class_name).lower()).strip("-")


def labelled_images(
    folder: str | os.PathLike, classes=CLASSES
) -> list[tuple[Path, int]]:
    """``(path, class index)`` for every photo in ``folder/<class name>/``, sorted.

    A class folder may be named like the class or like :func:`folder_name` of it (``Ankle boot``,
    ``ankle_boot`` and ``ankle-boot`` all mean "Ankle boot"); hidden files and files that are not
    images by their suffix are skipped. A missing or empty folder, or a folder that names no
    class, raises :class:`ImageError` saying what to do. (torchvision's ``ImageFolder`` reads the
    same layout, but numbers the folders it finds instead of matching a model's classes.)
    """
    folder = Path(folder)
    index = {folder_name(c): i for i, c in enumerate(classes)}
    expected = ", ".join(index)
    layout = f"lay the photos out as {folder}/<class>/*.png with one folder per class, named {expected}"
    if not folder.is_dir():
        raise ImageError(f"{folder} is not a folder; {layout}")
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise ImageError(f"{folder} has no class folders; {layout}")
    unknown = [p.name for p in subfolders if folder_name(p.name) not in index]
    if unknown:
        raise ImageError(
            f"{folder} has folders that name no class of the model ({', '.join(unknown)}); name "
            f"each class folder after one of the model's classes: {expected}"
        )
    found = []
    for sub in subfolders:
        label = index[folder_name(sub.name)]
        found += [
            (path, label) for path in sorted(sub.iterdir())
            if path.is_file() and not path.name.startswith(".")
            and path.suffix.lower() in IMAGE_SUFFIXES
        ]
    if not found:
        raise ImageError(
            f"{folder} has class folders but no images in them ({', '.join(IMAGE_SUFFIXES)}); "
            f"{layout}"
        )
    return found
