"""Figures of real data: sample grids, training curves, confusion matrices, mistakes.

Every helper takes an ``ax`` (or a ``fig``) and returns it; none calls ``plt.show()`` or changes
global style. Taught across 02 (grids), 05 (curves, confusion matrix, mistakes) and 07.
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


def _as_image(x) -> torch.Tensor:
    x = torch.as_tensor(x).detach().cpu().float()
    return x.squeeze(0) if x.ndim == 3 else x


def show_images(images, titles=None, *, ncols: int = 8, fig=None, size: float = 1.4):
    """Draw images (``(N, 28, 28)`` or ``(N, 1, 28, 28)``) in a grid with optional titles."""
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


def plot_sample_grid(dataset, *, rows: int = 3, cols: int = 3, generator=None, fig=None):
    """A ``rows`` x ``cols`` grid of random samples of a dataset, titled with their class."""
    picks = torch.randint(len(dataset), (rows * cols,), generator=generator).tolist()
    samples = [dataset[i] for i in picks]
    return show_images(
        [img for img, _ in samples], [CLASSES[int(label)] for _, label in samples],
        ncols=cols, fig=fig, size=2.0,
    )


def plot_class_grid(images, labels, *, per_class: int = 8, fig=None):
    """One row per class with its first ``per_class`` examples (``images`` ``(N, 28, 28)``)."""
    import matplotlib.pyplot as plt

    labels = torch.as_tensor(labels)
    fig = fig or plt.figure(figsize=(per_class * 0.9 + 1.5, len(CLASSES) * 0.9))
    axes = fig.subplots(len(CLASSES), per_class)
    for c, name in enumerate(CLASSES):
        index = (labels == c).nonzero().flatten()[:per_class]
        for j, ax in enumerate(axes[c]):
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


def plot_confusion_matrix(confusion, *, ax=None, normalize: bool = True):
    """A confusion matrix (rows = true class, columns = predicted) with counts or row shares."""
    import matplotlib.pyplot as plt

    cm = torch.as_tensor(confusion).float()
    shown = cm / cm.sum(1, keepdim=True).clamp(min=1) if normalize else cm
    ax = ax or plt.gca()
    ax.imshow(shown, cmap="Blues")
    ticks = range(len(CLASSES))
    ax.set_xticks(ticks, CLASSES, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, CLASSES, fontsize=8)
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


def plot_misclassified(images, labels, predictions, *, count: int = 16, ncols: int = 8, fig=None):
    """The first ``count`` mistakes, titled ``true -> predicted``."""
    labels, predictions = torch.as_tensor(labels), torch.as_tensor(predictions)
    wrong = (labels != predictions).nonzero().flatten()[:count].tolist()
    titles = [f"{CLASSES[labels[i]]}\n-> {CLASSES[predictions[i]]}" for i in wrong]
    return show_images([images[i] for i in wrong], titles, ncols=ncols, fig=fig, size=1.6)
