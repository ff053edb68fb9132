"""Checkers for the exercises of 07_cnn: counting a CNN's parameters and a convolution's work."""

from __future__ import annotations

from typing import Any

from ._core import Outcome, attempt, solved, wrong

__all__ = ["check_cnn_parameters", "check_conv_multiply_adds"]

CHANNELS = [(24, 64, 96), (8, 16, 32), (4, 8, 8)]


def _cnn_parameters(channels: tuple[int, int, int], *, hidden: int = 256) -> int:
    from ..models import FashionCNN, count_parameters

    return count_parameters(FashionCNN(channels=channels, hidden=hidden))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_cnn_parameters(cnn_parameters: Any) -> Outcome:
    """``cnn_parameters((c1, c2, c3))`` must equal ``fc.count_parameters(fc.FashionCNN(channels=...))``."""
    for channels in CHANNELS:
        got = attempt(cnn_parameters, channels)
        if isinstance(got, Outcome):
            return got
        if hasattr(got, "item") and getattr(got, "numel", lambda: 0)() == 1:
            got = got.item()
        if not _is_integer(got):
            return wrong(f"cnn_parameters({channels}) returned {type(got).__name__}, expected an int.",
                         "add up whole numbers of weights; `//` keeps integers, `/` makes floats.")
        expected = _cnn_parameters(channels)
        if got == expected:
            continue
        c1, c2, c3 = channels
        difference = got - expected
        if difference == c1 + c2 + c3:
            return wrong(f"for {channels} you count {difference} too many: one bias per convolution channel.",
                         "the convolutions have no bias (`bias=False`): batch norm's shift replaces it.")
        if difference == -2 * (c1 + c2 + c3):
            return wrong(f"for {channels} you count {-difference} too few: the batch norms' parameters.",
                         "each BatchNorm2d(C) learns a scale and a shift per channel: 2 x C.")
        if difference == -(256 + 10):
            return wrong(f"for {channels} you count {-difference} too few: the linear layers' biases.",
                         "nn.Linear(n, m) has n x m weights and m biases.")
        if got == expected + c3 * 256 * (14 * 14 - 7 * 7) or got == expected + c3 * 256 * (28 * 28 - 7 * 7):
            return wrong(f"for {channels} the first linear layer is too large.",
                         "after two poolings the feature maps are 7 x 7: it receives c3 x 7 x 7 values.")
        return wrong(f"cnn_parameters({channels}) = {got:,}, expected {expected:,} (off by {difference:+,}).",
                     "add the layers one by one: 3 convolutions (no bias), 3 batch norms, 2 linear layers.")
    return solved(f"your count matches fc.count_parameters for {len(CHANNELS)} channel settings, "
                  f"{_cnn_parameters(CHANNELS[0]):,} for the default CNN.")


CONV_CASES = [(1, 24, 28, 3), (24, 64, 14, 3), (64, 96, 7, 3), (3, 8, 10, 5)]


def _conv_multiply_adds(in_channels: int, out_channels: int, size: int, kernel_size: int) -> int:
    from torch import nn

    from ..bench import multiply_adds

    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    return multiply_adds(conv, (in_channels, size, size))


def check_conv_multiply_adds(conv_multiply_adds: Any) -> Outcome:
    """``conv_multiply_adds(in_channels, out_channels, size, kernel_size)`` of a size-keeping convolution."""
    for c_in, c_out, size, k in CONV_CASES:
        call = f"conv_multiply_adds({c_in}, {c_out}, {size}, {k})"
        got = attempt(conv_multiply_adds, c_in, c_out, size, k)
        if isinstance(got, Outcome):
            return got
        if not _is_integer(got):
            return wrong(f"{call} returned {type(got).__name__}, expected an int.",
                         "multiply whole numbers; avoid `/`, which makes a float.")
        expected = _conv_multiply_adds(c_in, c_out, size, k)
        if got == expected:
            continue
        if got in (c_in * c_out * k * k, c_in * c_out * k * k + c_out):
            return wrong(f"{call} = {got:,}: that is the layer's weights, applied once.",
                         "each kernel is applied at every output position: size x size of them.")
        if got == expected // c_in:
            return wrong(f"{call} = {got:,} is {c_in} times too small.",
                         "each kernel looks at all input channels: k x k x in_channels weights per output.")
        if got == 2 * expected:
            return wrong(f"{call} = {got:,} is twice the answer.",
                         "a multiply-add counts once here (floating-point operations would count it twice).")
        if got * 4 == expected:
            return wrong(f"{call} = {got:,} is a quarter of the answer.",
                         "with padding k // 2 the output keeps the input's size: size x size positions.")
        return wrong(f"{call} = {got:,}, expected {expected:,}.",
                     "out_channels x size x size outputs, in_channels x k x k multiply-adds each.")
    return solved("right: out_channels x size x size outputs, in_channels x k x k multiply-adds each "
                  f"({_conv_multiply_adds(24, 64, 14, 3):,} for the CNN's second convolution).")
