"""Classify photos of clothing: top-K classes with probabilities, or "unsure".

Taught in 09_classify_your_own_images; the command line is ``python -m fashion_course predict``.
A model trained on ten classes always picks one of them, even for a photo of a cat; the softmax
probability of the best class is a (rough) measure of how sure it is, so below a threshold the
answer is "unsure" instead of a confident-looking guess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from .data import CLASSES, MEAN, STD, default_data_dir
from .export import CheckpointError, load_any, model_classes
from .images import PreparedImage, prepare_image

__all__ = [
    "DEFAULT_THRESHOLD",
    "Prediction",
    "Classifier",
    "load_classifier",
    "classify_images",
    "format_predictions",
]

# Below this probability for the best class the verdict is "unsure". Models trained with the
# course's recipes give 0.75-0.95 to photos they get right (label smoothing caps them near 0.93).
DEFAULT_THRESHOLD = 0.5
DEFAULT_MODELS = ("model_cnn.pth", "model.pth")  # what `python -m fashion_course train` writes


@dataclass(frozen=True)
class Prediction:
    """The answer for one image: ``top`` is ``[(class name, probability), ...]``, best first."""

    source: str
    top: list[tuple[str, float]]
    unsure: bool
    reason: str = ""

    @property
    def label(self) -> str:
        """The best class, or ``"unsure"``."""
        return "unsure" if self.unsure else self.top[0][0]

    def as_dict(self) -> dict:
        return {
            "image": self.source,
            "label": self.label,
            "unsure": self.unsure,
            "reason": self.reason,
            "top": [{"class": name, "probability": round(p, 4)} for name, p in self.top],
        }

    def __str__(self) -> str:
        ranked = ", ".join(f"{name} {p:.1%}" for name, p in self.top)
        verdict = f"unsure ({self.reason})" if self.unsure else self.top[0][0]
        return f"{self.source}: {verdict}  [{ranked}]"


class Classifier:
    """A model (``.pth``, ``.onnx`` or an in-memory module) with the normalisation it expects.

    ``classes`` names the model's outputs in order (Fashion-MNIST's by default); ``input_shape``
    is the ``(channels, height, width)`` it takes.
    """

    def __init__(self, logits_fn: Callable[[torch.Tensor], torch.Tensor],
                 normalization: tuple[float, float], name: str = "model", *,
                 classes=CLASSES, input_shape: tuple[int, int, int] = (1, 28, 28)) -> None:
        self.logits_fn = logits_fn
        self.normalization = (float(normalization[0]), float(normalization[1]))
        self.name = name
        self.classes = tuple(str(c) for c in classes)
        self.input_shape = tuple(input_shape)

    def probabilities(self, X: torch.Tensor) -> torch.Tensor:
        """Softmax probabilities for a normalised batch ``(N, 1, 28, 28)``."""
        probs = self.logits_fn(X).float().softmax(dim=1)
        if probs.shape[1] != len(self.classes):
            raise ValueError(
                f"{self.name} gives {probs.shape[1]} class scores but has {len(self.classes)} "
                "class names; pass classes= with one name per output"
            )
        return probs

    def classify(
        self, prepared: Iterable[PreparedImage], *, top: int = 3,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> list[Prediction]:
        """Top-``top`` classes for already prepared images; "unsure" below ``threshold``."""
        prepared = list(prepared)
        if not prepared:
            return []
        if self.input_shape != (1, *prepared[0].pixels.shape):
            raise ValueError(
                f"{self.name} takes images of shape {self.input_shape}, but photos are prepared "
                f"as {(1, *prepared[0].pixels.shape)} Fashion-MNIST-like images; for other "
                "images, classify your own tensors with fc.predict(model, X)"
            )
        if not 1 <= top <= len(self.classes):
            raise ValueError(f"--top must be between 1 and {len(self.classes)}, not {top}")
        mean, std = self.normalization  # the statistics this model was trained with
        X = (torch.stack([p.pixels for p in prepared]).unsqueeze(1) - mean) / std
        probs = self.probabilities(X)
        results = []
        for item, p in zip(prepared, probs, strict=True):
            values, indices = p.topk(top)
            ranked = [(self.classes[i], float(v))
                      for v, i in zip(values.tolist(), indices.tolist(), strict=True)]
            if not item.found_object:
                reason = "nothing stands out from the background"
            elif ranked[0][1] < threshold:
                reason = f"best guess below {threshold:.0%}"
            else:
                reason = ""
            results.append(Prediction(item.source, ranked, unsure=bool(reason), reason=reason))
        return results


def load_classifier(
    model: nn.Module | str | os.PathLike | None = None, *, classes=None
) -> Classifier:
    """A :class:`Classifier` from a module, a ``.pth``/``.onnx`` path, or the default trained model.

    With no ``model``, uses ``data/model_cnn.pth`` or else ``data/model.pth`` (the files
    ``python -m fashion_course train`` writes). The class names come from ``classes``, else the
    file (or the module's ``classes`` attribute), else Fashion-MNIST's.
    """
    if isinstance(model, nn.Module):
        from .models import IMAGE_SHAPE
        from .training import predict

        norm = getattr(model, "normalization", (MEAN, STD))
        return Classifier(lambda X: predict(model, X), norm, type(model).__name__,
                          classes=model_classes(model, classes),
                          input_shape=getattr(model, "input_shape", IMAGE_SHAPE))
    if model is None:
        folder = default_data_dir()
        found = [folder / name for name in DEFAULT_MODELS if (folder / name).is_file()]
        if not found:
            raise CheckpointError(
                f"no trained model found ({' or '.join(str(folder / n) for n in DEFAULT_MODELS)}"
                "): train one with `python -m fashion_course train` or pass --model PATH"
            )
        model = found[0]
    path = Path(model)
    loaded = load_any(path)  # one loader for .pth and .onnx, shared with `evaluate`
    names = tuple(classes) if classes is not None else loaded.classes
    return Classifier(loaded.logits_fn, loaded.normalization, str(path), classes=names,
                      input_shape=loaded.input_shape)


def classify_images(
    images: Iterable[str | os.PathLike | Image.Image],
    *,
    model: nn.Module | str | os.PathLike | Classifier | None = None,
    top: int = 3,
    threshold: float = DEFAULT_THRESHOLD,
    classes=None,
) -> list[Prediction]:
    """Prepare and classify images (file paths or Pillow images) with ``model``.

    ``model`` is a module, a ``.pth`` or ``.onnx`` path, a :class:`Classifier`, or None for the
    default trained model; ``classes`` overrides the class names it carries. Every image is
    opened and checked before the model is loaded, so a bad file costs nothing; the first
    unusable one raises ``ImageError`` naming it.
    """
    if top < 1:  # the upper bound is the model's number of classes, checked once it is loaded
        raise ValueError(f"--top must be at least 1, not {top}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"--threshold must be a probability between 0 and 1, not {threshold}")
    prepared = [prepare_image(path) for path in images]
    if isinstance(model, Classifier):
        classifier = model
        if classes is not None:
            classifier = Classifier(model.logits_fn, model.normalization, model.name,
                                    classes=classes, input_shape=model.input_shape)
    else:
        classifier = load_classifier(model, classes=classes)
    return classifier.classify(prepared, top=top, threshold=threshold)


def format_predictions(predictions: list[Prediction], *, as_json: bool = False) -> str:
    """One line per image, or a JSON list (for other programs)."""
    if as_json:
        return json.dumps([p.as_dict() for p in predictions], indent=2)
    return "\n".join(str(p) for p in predictions)
