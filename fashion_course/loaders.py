"""Batches for training: torchvision's per-sample DataLoader, and the whole split in memory.

The DataLoader path is taught in 02_datasets_and_transforms; the in-memory path, which holds a
split as one tensor, normalises it once and slices shuffled batches by index on any device, is
taught in 07_cnn (it is what makes CPU training take minutes instead of tens of minutes).
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, random_split

from .data import MEAN, STD, fashion_mnist, load_tensors

__all__ = [
    "normalize_transform",
    "dataloaders",
    "train_val_split",
    "validation_indices",
    "InMemoryLoader",
    "in_memory_loaders",
    "random_flip_shift",
    "random_erase",
    "batch_augmentation",
    "alternating_flips",
]


def normalize_transform(mean: float = MEAN, std: float = STD):
    """``ToTensor`` then ``Normalize`` with the training set's statistics."""
    from torchvision import transforms

    return transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])


def dataloaders(
    batch_size: int = 64,
    *,
    root: str | os.PathLike | None = None,
    normalize: bool = True,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[DataLoader, DataLoader]:
    """Train (shuffled) and test DataLoaders over torchvision's ``FashionMNIST``."""
    transform = normalize_transform() if normalize else None
    train = fashion_mnist(True, root=root, transform=transform)
    test = fashion_mnist(False, root=root, transform=transform)
    return (
        DataLoader(train, batch_size, shuffle=True, num_workers=num_workers, generator=generator),
        DataLoader(test, batch_size, shuffle=False, num_workers=num_workers),
    )


def train_val_split(
    dataset: Dataset, val_size: int = 5000, *, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """A seeded split into training and validation parts (the same split every run)."""
    if not 0 < val_size < len(dataset):
        raise ValueError(f"val_size must be between 1 and {len(dataset) - 1}, got {val_size}")
    sizes = [len(dataset) - val_size, val_size]
    train, val = random_split(dataset, sizes, generator=torch.Generator().manual_seed(seed))
    return train, val


def validation_indices(n: int = 60_000, val_size: int = 5000, *, seed: int = 0):
    """The indices ``(train part, validation part)`` that :func:`train_val_split` picks.

    ``random_split`` takes the first ``n - val_size`` entries of one seeded permutation for
    training and the rest for validation; the same permutation here gives the same split of
    tensors in memory.
    """
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1}, got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n - val_size], order[n - val_size :]


def random_flip_shift(
    X: torch.Tensor,
    *,
    max_shift: int = 2,
    generator: torch.Generator | None = None,
    flip: bool = True,
) -> torch.Tensor:
    """Flip half of a batch left-right and shift every image by up to ``max_shift`` pixels.

    Works on a whole ``(N, C, H, W)`` batch at once, on its device; the label of a flipped or
    slightly shifted garment is unchanged. Pixels shifted in from outside the image take the
    smallest value in the batch (the background). The random numbers come from ``generator``
    (on its own device), so a seeded generator gives the same batch every time. ``flip=False``
    only shifts (the loader's ``alternate_flips`` does the mirroring then).
    """
    n, _, h, w = X.shape
    device = X.device
    gen_device = generator.device if generator is not None else "cpu"
    if flip:
        mirror = torch.rand(n, generator=generator, device=gen_device) < 0.5
        X = torch.where(mirror.to(device)[:, None, None, None], X.flip(3), X)
    if max_shift == 0:
        return X
    s = max_shift
    dy = torch.randint(-s, s + 1, (n, 1), generator=generator, device=gen_device).to(device)
    dx = torch.randint(-s, s + 1, (n, 1), generator=generator, device=gen_device).to(device)
    # Output pixel (r, c) of image i is input pixel (r - dy_i, c - dx_i), or background outside.
    rows = torch.arange(h, device=device) - dy  # (n, h)
    cols = torch.arange(w, device=device) - dx  # (n, w)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n, device=device)[:, None, None]
    moved = X.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    # X.amin() stays a tensor: no host-device synchronisation per batch on a GPU.
    moved = torch.where(inside[..., None], moved, X.amin())
    return moved.permute(0, 3, 1, 2).contiguous()


def random_erase(
    X: torch.Tensor,
    *,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.25),
    ratio: tuple[float, float] = (0.3, 3.3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random erasing (Zhong et al., 2017) of a whole ``(N, C, H, W)`` batch at once.

    Each image, with probability ``p``, gets one rectangle covering a fraction ``scale`` of its
    area, with height/width in ``ratio`` (sampled log-uniformly), filled with standard-normal
    noise: on standardised inputs, noise of the data's own scale. It is torchvision's
    ``RandomErasing(p, scale, ratio, value="random")`` without the per-image Python loop. The
    label of a garment with a patch hidden is unchanged; the network learns not to rely on any
    one part of it. Returns a new tensor; ``X`` is left as it was.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability between 0 and 1, got {p}")
    if not 0.0 < scale[0] <= scale[1] <= 1.0 or not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1], "
                         f"got scale={scale}, ratio={ratio}")
    n, c, h, w = X.shape
    device = X.device
    gen_device = generator.device if generator is not None else "cpu"

    def uniform(low, high, size=(n,)):
        return low + (high - low) * torch.rand(size, generator=generator, device=gen_device)

    erase = torch.rand(n, generator=generator, device=gen_device) < p
    area = uniform(*scale) * (h * w)
    aspect = torch.exp(uniform(*torch.log(torch.tensor(ratio, dtype=torch.float64)).tolist()))
    eh = torch.sqrt(area * aspect).round().clamp(1, h).long()  # rectangle height
    ew = torch.sqrt(area / aspect).round().clamp(1, w).long()  # rectangle width
    top = (uniform(0.0, 1.0) * (h - eh + 1)).floor().long()  # so that it fits inside the image
    left = (uniform(0.0, 1.0) * (w - ew + 1)).floor().long()
    noise = torch.randn((n, c, h, w), generator=generator, device=gen_device)
    erase, eh, ew, top, left, noise = (t.to(device) for t in (erase, eh, ew, top, left, noise))
    r = torch.arange(h, device=device)[None, :]
    k = torch.arange(w, device=device)[None, :]
    rows = (r >= top[:, None]) & (r < (top + eh)[:, None])  # (n, h)
    cols = (k >= left[:, None]) & (k < (left + ew)[:, None])  # (n, w)
    mask = (rows[:, :, None] & cols[:, None, :] & erase[:, None, None])[:, None]  # (n, 1, h, w)
    return torch.where(mask, noise.to(X.dtype), X)


def batch_augmentation(*, max_shift: int = 1, erase: float = 0.0, flip: bool = True):
    """The training-batch augmentation of a recipe: flips and shifts, then random erasing.

    ``flip=False`` leaves the mirroring out (for a loader with ``alternate_flips``); with no
    shift and no erasing either there is nothing left to do, and the result is ``None``.
    """
    if not flip and max_shift == 0 and erase == 0.0:
        return None
    if erase == 0.0:
        from functools import partial

        return partial(random_flip_shift, max_shift=max_shift, flip=flip)

    def augment(X: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        X = random_flip_shift(X, max_shift=max_shift, generator=generator, flip=flip)
        return random_erase(X, p=erase, generator=generator)

    return augment


def alternating_flips(X: torch.Tensor, index: torch.Tensor, phase: torch.Tensor, epoch: int) -> torch.Tensor:
    """Mirror the images of a batch that are due in this epoch: every other epoch for each image.

    ``index`` says which training images the batch ``X`` holds and ``phase`` (a boolean per
    training image, drawn once) whether an image is mirrored in even epochs; in odd epochs the
    others are. Over any two epochs in a row every image is seen once as it is and once mirrored,
    where random flips show half of them the same way twice in a row (the "alternating flip" of
    Keller Jordan's airbench, which trains CIFAR-10 networks to the same accuracy in fewer epochs).
    """
    mirror = phase[index] ^ bool(epoch % 2)
    return torch.where(mirror[:, None, None, None], X.flip(3), X)


class InMemoryLoader:
    """Batches sliced from one normalised tensor: the same samples as the DataLoader, faster.

    ``images`` is ``(N, 28, 28)`` uint8 and ``labels`` ``(N,)``; both are moved to ``device`` once.
    ``X = (images / 255 - mean) / std`` exactly as ``ToTensor`` followed by ``Normalize`` computes
    it. ``augment`` (a function of a batch and a generator) is applied to each training batch.
    With ``alternate_flips`` each image is mirrored in every other epoch (which ones first is drawn
    from ``generator`` here, once), before ``augment``: see :func:`alternating_flips`.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int = 64,
        shuffle: bool = False,
        device: str | torch.device = "cpu",
        mean: float = MEAN,
        std: float = STD,
        augment=None,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        alternate_flips: bool = False,
    ) -> None:
        if images.ndim != 3 or images.dtype != torch.uint8:
            raise ValueError(
                f"images must be a (N, 28, 28) uint8 tensor, got {tuple(images.shape)} "
                f"{images.dtype}; use fc.load_tensors() to get one"
            )
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.device = torch.device(device)
        X = images.to(self.device).float().div(255).unsqueeze(1)
        self.X = (X - mean) / std
        self.y = labels.to(self.device).long()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.generator = generator
        self.drop_last = drop_last
        self.mean, self.std = mean, std
        self.epoch = 0  # epochs begun: with alternate_flips, which images are mirrored
        self.flip_phase = None
        if alternate_flips:
            self.flip_phase = (torch.rand(len(self.y), generator=generator) < 0.5).to(self.device)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        return len(self.y)

    def __iter__(self):
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        epoch, self.epoch = self.epoch, self.epoch + 1
        for i in range(len(self)):
            index = order[i * self.batch_size : (i + 1) * self.batch_size]
            X = self.X[index]
            if self.flip_phase is not None:
                X = alternating_flips(X, index, self.flip_phase, epoch)
            if self.augment is not None:
                X = self.augment(X, generator=self.generator)
            yield X, self.y[index]


def in_memory_loaders(
    batch_size: int = 64,
    *,
    root: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    normalize: bool = True,
    augment=None,
    test_batch_size: int = 1000,
    seed: int = 0,
    validation: bool = False,
    alternate_flips: bool = False,
) -> tuple[InMemoryLoader, InMemoryLoader]:
    """Train (shuffled, seeded, optionally augmented) and test loaders held in memory.

    With ``validation=True`` the second loader holds the 5,000 validation images of
    :func:`train_val_split` (seed 0, whatever ``seed`` is) and the first one the other 55,000
    training images: the split on which settings are chosen without looking at the test set
    (05_optimization_loop).
    """
    mean, std = (MEAN, STD) if normalize else (0.0, 1.0)
    generator = torch.Generator().manual_seed(seed)
    train_images, train_labels = load_tensors(True, root=root)
    if validation:
        train_part, val_part = validation_indices(len(train_labels))
        test_images, test_labels = train_images[val_part], train_labels[val_part]
        train_images, train_labels = train_images[train_part], train_labels[train_part]
    else:
        test_images, test_labels = load_tensors(False, root=root)
    train = InMemoryLoader(
        train_images, train_labels, batch_size=batch_size, shuffle=True, device=device,
        mean=mean, std=std, augment=augment, generator=generator, alternate_flips=alternate_flips,
    )
    test = InMemoryLoader(
        test_images, test_labels, batch_size=test_batch_size, device=device, mean=mean, std=std
    )
    return train, test
