"""The course's models, buildable by name so that a checkpoint can rebuild them.

``NeuralNetwork`` is taught in 03_build_the_model; ``FashionCNN`` in 07_cnn.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "NeuralNetwork", "FashionCNN", "MODELS", "build_model", "count_parameters", "input_shape",
    "patch_whitening",
]

IMAGE_SHAPE = (1, 28, 28)  # Fashion-MNIST: one channel (grayscale), 28x28 pixels


def _image_config(in_channels: int, image_size) -> tuple[dict, tuple[int, int, int]]:
    """The non-default image settings (for ``config``) and the full ``(C, H, W)`` input shape.

    Only settings that differ from Fashion-MNIST's are recorded, so the course's own models and
    checkpoints describe themselves exactly as before.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    shape = (int(in_channels), int(height), int(width))
    if min(shape) < 1:
        raise ValueError(f"in_channels and image_size must be positive, not {shape}")
    config = {}
    if shape[0] != IMAGE_SHAPE[0]:
        config["in_channels"] = shape[0]
    if shape[1:] != IMAGE_SHAPE[1:]:
        config["image_size"] = shape[1] if shape[1] == shape[2] else list(shape[1:])
    return config, shape


def _check_input(model: nn.Module, x, *, flat_ok: bool) -> None:
    """Refuse a batch of the wrong shape with one message saying what was expected and what to do.

    Without it a wrong shape fails deep inside a layer ("mat1 and mat2 shapes cannot be
    multiplied"), which names neither the images nor the fix.
    """
    expected = model.input_shape
    got = tuple(x.shape[1:])
    if got == expected or (flat_ok and x.dim() >= 2 and math.prod(got) == math.prod(expected)):
        return
    name = type(model).__name__
    wanted = f"{name} expects a batch of images of shape (batch, {', '.join(map(str, expected))})"
    if tuple(x.shape) == expected:
        raise ValueError(f"{wanted}, but got one image {tuple(x.shape)} without a batch dimension: "
                         "pass X.unsqueeze(0)")
    fix = ""
    if len(got) == 3:
        size = got[1] if got[1] == got[2] else list(got[1:])
        fix = f"build the model for your images ({name}(num_classes=..., in_channels={got[0]}, " \
              f"image_size={size})), or "
    raise ValueError(
        f"{wanted}, but got {tuple(x.shape)}: {fix}convert your images to {expected[0]} "
        f"channel(s) of {expected[1]}x{expected[2]} pixels (e.g. torchvision.transforms.Grayscale "
        "and Resize)"
    )


class NeuralNetwork(nn.Module):
    """The study note's multilayer perceptron: Flatten, then 784-512-ReLU-512-ReLU-10.

    The last layer returns logits with no activation: ``nn.CrossEntropyLoss`` applies
    log-softmax itself, and a ReLU there would clip every negative logit to zero.
    ``batch_norm=True`` puts an ``nn.BatchNorm1d`` between each hidden layer and its ReLU (the
    linear layer then needs no bias, batch norm adds one); ``RECIPES["mlp"]`` uses it with
    ``hidden=1024`` (05_optimization_loop says why).
    ``in_channels`` and ``image_size`` (an int or ``(height, width)``) fit it to other images,
    e.g. ``NeuralNetwork(num_classes=5, in_channels=3, image_size=32)`` for small colour photos.
    """

    def __init__(
        self, hidden: int = 512, num_classes: int = 10, *, batch_norm: bool = False,
        in_channels: int = 1, image_size: int | tuple[int, int] = 28,
    ) -> None:
        super().__init__()
        image_config, self.input_shape = _image_config(in_channels, image_size)
        self.config = {"hidden": hidden, "num_classes": num_classes, **image_config}
        if batch_norm:  # only when set: checkpoints of the plain network keep their config
            self.config["batch_norm"] = True
        self.flatten = nn.Flatten()

        def hidden_layer(n_in: int) -> list[nn.Module]:
            if batch_norm:
                return [nn.Linear(n_in, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU()]
            return [nn.Linear(n_in, hidden), nn.ReLU()]

        self.linear_relu_stack = nn.Sequential(
            *hidden_layer(math.prod(self.input_shape)),
            *hidden_layer(hidden),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        if tuple(x.shape[1:]) != self.input_shape:  # (N, 28, 28) or (N, 784) flatten the same
            _check_input(self, x, flat_ok=True)
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def patch_whitening(
    images: torch.Tensor, count: int, *, kernel_size: int = 3, eps: float = 1e-2,
    max_images: int = 10_000,
) -> torch.Tensor:
    """Convolution filters that whiten the images' small patches: ``2 * count`` of them, ``±`` each.

    Every ``kernel_size`` x ``kernel_size`` patch (zero-padded at the border, as a convolution with
    ``padding=kernel_size // 2`` sees it) of the first ``max_images`` images is a vector; its
    covariance matrix has eigenvectors, the patterns in which patches vary (their brightness, then
    horizontal and vertical gradients, ... , finally the finest checkerboards), and eigenvalues,
    how much they vary along each. The ``count`` eigenvectors of the largest eigenvalues, each
    divided by the square root of its eigenvalue (plus ``eps``), give outputs of roughly unit
    variance that are uncorrelated: the patch *whitened*. Each filter comes with its negative, so
    that a ReLU after it keeps both signs of the pattern. Each eigenvector's sign is fixed (its
    first entry of at least half its largest magnitude is positive) so that every machine builds
    the same filters in the same order.
    ``images`` is ``(N, C, H, W)`` float, normalised as the network sees it; the result is
    ``(2 * count, C, kernel_size, kernel_size)``. The idea is the first layer of airbench's
    CIFAR-10 networks (Keller Jordan, 2024).
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, C, H, W) tensor, got {images.dtype} "
                         f"{tuple(images.shape)}")
    channels, k = images.shape[1], kernel_size
    dim = channels * k * k
    if not 1 <= count <= dim:
        raise ValueError(f"count must be between 1 and {dim} (the values in a {channels}x{k}x{k} "
                         f"patch), got {count}")
    total, outer, n = torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64), 0
    for chunk in images[:max_images].split(1000):
        patches = nn.functional.unfold(chunk.detach().cpu().double(), k, padding=k // 2)
        patches = patches.transpose(1, 2).reshape(-1, dim)
        total += patches.sum(0)
        outer += patches.T @ patches
        n += len(patches)
    mean = total / n
    covariance = outer / n - torch.outer(mean, mean)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
    eigenvalues, eigenvectors = eigenvalues.flip(0)[:count], eigenvectors.flip(1)[:, :count]
    # An eigenvector's sign is arbitrary; fix it by its first entry of at least half its largest
    # magnitude. ("Its largest entry" would not do: a pattern that is antisymmetric under a half
    # turn, such as a diagonal gradient, has two largest entries of opposite sign, and rounding
    # would pick one or the other on different machines.)
    magnitude = eigenvectors.abs()
    first = (magnitude >= magnitude.max(0).values / 2).int().argmax(0)  # argmax: the first True
    eigenvectors = eigenvectors * eigenvectors[first, torch.arange(count)].sign()
    filters = (eigenvectors / (eigenvalues.clamp_min(0) + eps).sqrt()).T
    return torch.cat([filters, -filters]).float().reshape(2 * count, channels, k, k)


def _conv_block(c_in: int, c_out: int, *, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)]  # BN adds the bias
    if pool:
        # Pooling before batch norm and ReLU: max pooling commutes with ReLU, and batch norm and
        # ReLU then work on a quarter of the values, which saves time on a CPU.
        layers.append(nn.MaxPool2d(2))
    layers += [nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class FashionCNN(nn.Module):
    """The course's convolutional network: three conv stages, then a two-layer classifier.

    28x28 -> conv (c1), pool -> 14x14 -> conv (c2), pool -> 7x7 -> conv (c3) -> 7x7 x c3 features
    -> [dropout] -> linear (hidden) -> ReLU -> dropout -> linear -> 10 logits. The classifier sees
    every position (no global pooling): where a feature appears (a collar, a sleeve, a heel)
    matters for telling garments apart. Sized for ``RECIPES["cnn"]`` on a 2-core CPU (07_cnn):
    the first stage, the only one at full 28x28 resolution, has 24 channels, because its pooling
    and its gradients cost as much time as the second convolution; no dropout on the 4,704
    flattened features, because drawing their random masks took a tenth of each training step and
    the network scored as well without it on the validation split. ``feature_dropout`` puts that
    dropout back (``RECIPES["cnn_best"]`` and the networks of earlier releases use 0.25; a
    checkpoint that does not record it loads with 0, the same network at inference).
    ``in_channels`` and ``image_size`` fit it to other images (each side is halved twice,
    rounding down).

    ``whitened_stem=True`` freezes the first convolution: it is not learned but set from the
    training images by :meth:`whiten_stem` (:func:`patch_whitening`: ``c1 / 2`` whitening filters
    and their negatives). Nothing before it needs a gradient, so the backward pass stops at the
    first batch norm: the gradients of the 28x28 stage's pooling and convolution, the costliest
    memory traffic of a training step, are never computed. ``RECIPES["cnn"]`` uses it with
    ``channels=(16, 48, 80)``, ``hidden=128`` and ``dropout=0`` (07_cnn, section 8).
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (24, 64, 96),
        num_classes: int = 10,
        hidden: int = 256,
        dropout: float = 0.25,
        *,
        feature_dropout: float = 0.0,
        whitened_stem: bool = False,
        in_channels: int = 1,
        image_size: int | tuple[int, int] = 28,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        image_config, self.input_shape = _image_config(in_channels, image_size)
        _, height, width = self.input_shape
        if min(height, width) < 4:
            raise ValueError(f"FashionCNN pools twice: images need at least 4x4 pixels, not "
                             f"{height}x{width}")
        if whitened_stem and (c1 % 2 or not 2 <= c1 <= 2 * 9 * self.input_shape[0]):
            raise ValueError(f"a whitened stem has a filter and its negative per pattern: its "
                             f"channels must be even and at most {2 * 9 * self.input_shape[0]} "
                             f"(twice the values in a 3x3 patch), not {c1}")
        self.config = {
            "channels": list(channels), "num_classes": num_classes, "hidden": hidden,
            "dropout": dropout, "feature_dropout": feature_dropout, **image_config,
        }
        if whitened_stem:  # only when set: checkpoints of the learned stem keep their config
            self.config["whitened_stem"] = True
        self.features = nn.Sequential(
            _conv_block(self.input_shape[0], c1, pool=True),
            _conv_block(c1, c2, pool=True),
            _conv_block(c2, c3, pool=False),
        )
        if whitened_stem:
            self.features[0][0].weight.requires_grad_(False)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(feature_dropout),  # p=0 returns its input untouched: no random numbers drawn
            nn.Linear(c3 * (height // 4) * (width // 4), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def whiten_stem(self, images: torch.Tensor) -> FashionCNN:
        """Set the frozen first convolution from ``images`` (float ``(N, C, H, W)``, normalised as
        the network sees them, e.g. ``InMemoryLoader.X``); returns the model."""
        if not self.config.get("whitened_stem"):
            raise ValueError("this FashionCNN learns its first convolution; build it with "
                             "whitened_stem=True to set that convolution from the data")
        if tuple(images.shape[1:]) != self.input_shape:
            _check_input(self, images, flat_ok=False)
        conv = self.features[0][0]
        with torch.no_grad():
            conv.weight.copy_(patch_whitening(images, conv.out_channels // 2))
        return self

    def forward(self, x):
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            _check_input(self, x, flat_ok=False)
        return self.classifier(self.features(x))


MODELS = {"mlp": NeuralNetwork, "cnn": FashionCNN}


def build_model(name: str, **config) -> nn.Module:
    """A fresh model by name (``"mlp"`` or ``"cnn"``) with its constructor arguments."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    try:
        return cls(**config)
    except TypeError as exc:
        raise ValueError(f"model {name!r} does not accept {config}: {exc}") from None


def model_name(model: nn.Module) -> str:
    """The name under which ``build_model`` rebuilds this model."""
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    raise ValueError(
        f"{type(model).__name__} is not one of the course's models ({', '.join(MODELS)})"
    )


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """The number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def input_shape(model: nn.Module) -> tuple[int, int, int] | None:
    """The ``(channels, height, width)`` a course model takes; None for other models."""
    shape = getattr(model, "input_shape", None)
    return tuple(shape) if shape is not None else None
