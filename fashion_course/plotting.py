"""Figures of real data: sample grids, training curves, confusion matrices, mistakes.

Every helper takes an ``ax`` (or a ``fig``) and returns it; none calls ``plt.show()`` or changes
global style. Taught across 02 (grids), 05 (curves, confusion matrix, mistakes) and 07. They work
for any labelled image dataset: ``classes=`` names its classes (Fashion-MNIST's by default), and
images may be grayscale ``(1, H, W)``/``(H, W)`` or colour ``(3, H, W)``.
"""

from __future__ import annotations

import torch

from .data import CLASSES

__all__ = [
    "show_images",
    "plot_sample_grid",
    "plot_class_grid",
    "plot_history",
    "plot_confusion_matrix",
    "plot_misclassified",
]


def _as_image(x):
    """An image as matplotlib draws it: ``(H, W)`` grayscale or ``(H, W, 3)`` colour (NumPy)."""
    return _as_array(x).numpy()


def _as_array(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().float()
    if x.ndim == 3 and x.shape[0] == 1:
        return x.squeeze(0)
    if x.ndim == 3 and x.shape[0] == 3:  # a colour tensor (C, H, W): matplotlib wants (H, W, C)
        low, high = x.min(), x.max()
        if low < 0 or high > 1:  # normalised: stretch to [0, 1] so that nothing is clipped
            x = (x - low) / (high - low).clamp(min=1e-12)
        return x.permute(1, 2, 0)
    if x.ndim == 2:
        return x
    if x.ndim == 3 and x.shape[2] == 3:  # already (H, W, 3), e.g. a uint8 array of a dataset
        return x / 255 if x.max() > 1 else x
    raise ValueError(
        f"cannot draw an image of shape {tuple(x.shape)}: pass (H, W), (1, H, W) or (3, H, W) "
        "tensors (a PIL image becomes one with torchvision.transforms.functional.to_tensor)"
    )


def _class_names(classes, count: int, what: str) -> tuple[str, ...]:
    """``classes`` as a tuple, refused with one message unless it has exactly ``count`` names."""
    names = tuple(str(c) for c in classes)
    if len(names) != count:
        raise ValueError(
            f"{what} has {count} classes but {len(names)} class names were given "
            f"({', '.join(names[:12])}); pass classes= with one name per class"
        )
    return names


def _name(classes, label) -> str:
    index = int(label)
    if not 0 <= index < len(classes):
        raise ValueError(
            f"label {index} has no name among the {len(classes)} classes; pass classes= naming "
            "every class of your dataset (for an ImageFolder: classes=dataset.classes)"
        )
    return str(classes[index])


def show_images(images, titles=None, *, ncols: int = 8, fig=None, size: float = 1.4):
    """Draw images (``(N, H, W)``, ``(N, 1, H, W)`` or colour ``(N, 3, H, W)``) in a grid with
    optional titles."""
    import matplotlib.pyplot as plt

    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig = fig or plt.figure(figsize=(size * ncols, size * 1.2 * nrows))
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(_as_image(images[i]), cmap="gray")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_sample_grid(
    dataset, *, rows: int = 3, cols: int = 3, generator=None, fig=None, classes=CLASSES
):
    """A ``rows`` x ``cols`` grid of random samples of a dataset, titled with their class."""
    picks = torch.randint(len(dataset), (rows * cols,), generator=generator).tolist()
    samples = [dataset[i] for i in picks]
    return show_images(
        [img for img, _ in samples], [_name(classes, label) for _, label in samples],
        ncols=cols, fig=fig, size=2.0,
    )


def plot_class_grid(images, labels, *, per_class: int = 8, fig=None, classes=CLASSES):
    """One row per class with its first ``per_class`` examples (``images`` ``(N, 28, 28)``).

    A class with fewer examples leaves the rest of its row empty.
    """
    import matplotlib.pyplot as plt

    labels = torch.as_tensor(labels)
    classes = tuple(str(c) for c in classes)
    if len(labels) and int(labels.max()) >= len(classes):
        _name(classes, labels.max())
    fig = fig or plt.figure(figsize=(per_class * 0.9 + 1.5, len(classes) * 0.9))
    axes = fig.subplots(len(classes), per_class, squeeze=False)
    for c, name in enumerate(classes):
        index = (labels == c).nonzero().flatten()[:per_class]
        for j, ax in enumerate(axes[c]):
            if j < len(index):
                ax.imshow(_as_image(images[index[j]]), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(histories, *, ax=None, metric: str = "test_accuracy", x: str = "epoch"):
    """Curves of one metric for one or several labelled histories (``{label: History}``).

    ``x`` is ``"epoch"`` or ``"seconds"`` (cumulative training time).
    """
    import matplotlib.pyplot as plt

    if not isinstance(histories, dict):
        histories = {"": histories}
    ax = ax or plt.gca()
    for label, history in histories.items():
        values = getattr(history, metric)
        xs = history.seconds if x == "seconds" else range(1, len(values) + 1)
        ax.plot(list(xs), values, marker="o", label=label or None)
    ax.set_xlabel("training seconds" if x == "seconds" else "epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    if any(histories):
        ax.legend()
    return ax


def plot_confusion_matrix(confusion, *, ax=None, normalize: bool = True, classes=CLASSES):
    """A confusion matrix (rows = true class, columns = predicted) with counts or row shares.

    ``classes`` labels the rows and columns; pass ``evaluation.classes`` (or your dataset's
    names) for a dataset other than Fashion-MNIST.
    """
    import matplotlib.pyplot as plt

    cm = torch.as_tensor(confusion).float()
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square, not of shape {tuple(cm.shape)}")
    names = _class_names(classes, cm.shape[0], f"the {cm.shape[0]}x{cm.shape[0]} confusion matrix")
    shown = cm / cm.sum(1, keepdim=True).clamp(min=1) if normalize else cm
    ax = ax or plt.gca()
    ax.imshow(shown.numpy(), cmap="Blues")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in ticks:
        for j in ticks:
            value = shown[i, j].item()
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            if value > 0:
                color = "white" if value > shown.max().item() / 2 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=6, color=color)
    return ax


def plot_misclassified(
    images, labels, predictions, *, count: int = 16, ncols: int = 8, fig=None, classes=CLASSES
):
    """The first ``count`` mistakes, titled ``true -> predicted``."""
    labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
    wrong = (labels != predictions).nonzero().flatten()[:count].tolist()
    titles = [f"{_name(classes, labels[i])}\n-> {_name(classes, predictions[i])}" for i in wrong]
    return show_images([images[i] for i in wrong], titles, ncols=ncols, fig=fig, size=1.6)
