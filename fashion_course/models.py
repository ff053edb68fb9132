"""The course's models, buildable by name so that a checkpoint can rebuild them.

``NeuralNetwork`` is taught in 03_build_the_model; ``FashionCNN`` in 07_cnn.
"""

from __future__ import annotations

from torch import nn

__all__ = ["NeuralNetwork", "FashionCNN", "MODELS", "build_model", "count_parameters"]


class NeuralNetwork(nn.Module):
    """The study note's multilayer perceptron: Flatten, then 784-512-ReLU-512-ReLU-10.

    The last layer returns logits with no activation: ``nn.CrossEntropyLoss`` applies
    log-softmax itself, and a ReLU there would clip every negative logit to zero.
    """

    def __init__(self, hidden: int = 512, num_classes: int = 10) -> None:
        super().__init__()
        self.config = {"hidden": hidden, "num_classes": num_classes}
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),  # BN adds the bias
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class FashionCNN(nn.Module):
    """A small convolutional network: three conv-BN-ReLU stages with pooling, then a classifier.

    28x28 -> (c1) 28x28 -> pool 14x14 -> (c2) 14x14 -> pool 7x7 -> (c3) 7x7 -> global average.
    Sized to train to over 93 % in a few minutes on a 2-core CPU.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (32, 64, 128),
        num_classes: int = 10,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.config = {"channels": list(channels), "num_classes": num_classes, "dropout": dropout}
        self.features = nn.Sequential(
            _conv_block(1, c1),
            nn.MaxPool2d(2),
            _conv_block(c1, c2),
            nn.MaxPool2d(2),
            _conv_block(c2, c3),
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c3, num_classes),
        )

    def forward(self, x):
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
