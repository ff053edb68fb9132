"""07_cnn's exercise checkers: solutions pass, typical mistakes get their hint, stubs are not solved."""

from __future__ import annotations

import fashion_course as fc
from fashion_course.exercises import nb07


def cnn_parameters(channels):
    c1, c2, c3 = channels
    convolutions = 1 * c1 * 9 + c1 * c2 * 9 + c2 * c3 * 9
    batch_norms = 2 * (c1 + c2 + c3)
    return convolutions + batch_norms + (c3 * 7 * 7 * 256 + 256) + (256 * 10 + 10)


def conv_multiply_adds(in_channels, out_channels, size, kernel_size=3):
    return out_channels * size * size * in_channels * kernel_size * kernel_size


def test_parameter_count_solution_is_accepted():
    outcome = nb07.check_cnn_parameters(cnn_parameters)
    assert outcome and "1,276,754" in outcome.message
    assert cnn_parameters((24, 64, 96)) == fc.count_parameters(fc.FashionCNN()) == 1_276_754
    assert cnn_parameters((32, 64, 96)) == fc.count_parameters(fc.FashionCNN((32, 64, 96))) == 1_281_450


def test_parameter_count_mistakes_get_their_hint():
    with_bias = nb07.check_cnn_parameters(lambda ch: cnn_parameters(ch) + sum(ch))
    assert with_bias.status == "wrong" and "batch norm's shift replaces it" in with_bias.hint
    no_norms = nb07.check_cnn_parameters(lambda ch: cnn_parameters(ch) - 2 * sum(ch))
    assert no_norms.status == "wrong" and "2 x C" in no_norms.hint
    unpooled = nb07.check_cnn_parameters(lambda ch: cnn_parameters(ch) + ch[2] * 256 * (14 * 14 - 49))
    assert unpooled.status == "wrong" and "7 x 7" in unpooled.hint
    as_float = nb07.check_cnn_parameters(lambda ch: float(cnn_parameters(ch)))
    assert as_float.status == "wrong" and "expected an int" in as_float.message
    other = nb07.check_cnn_parameters(lambda ch: cnn_parameters(ch) + 1)
    assert other.status == "wrong" and "off by +1" in other.message


def test_multiply_adds_solution_is_accepted():
    outcome = nb07.check_conv_multiply_adds(conv_multiply_adds)
    assert outcome and "2,709,504" in outcome.message  # 14 x 14 x 64 x 24 x 9


def test_multiply_adds_mistakes_get_their_hint():
    weights_only = nb07.check_conv_multiply_adds(lambda i, o, n, k=3: i * o * k * k)
    assert weights_only.status == "wrong" and "every output position" in weights_only.hint
    one_channel = nb07.check_conv_multiply_adds(lambda i, o, n, k=3: o * n * n * k * k)
    assert one_channel.status == "wrong" and "all input channels" in one_channel.hint
    flops = nb07.check_conv_multiply_adds(lambda i, o, n, k=3: 2 * conv_multiply_adds(i, o, n, k))
    assert flops.status == "wrong" and "counts once" in flops.hint
    pooled = nb07.check_conv_multiply_adds(lambda i, o, n, k=3: conv_multiply_adds(i, o, n // 2, k))
    assert pooled.status == "wrong" and "keeps the input's size" in pooled.hint
    fixed_kernel = nb07.check_conv_multiply_adds(lambda i, o, n, k=3: conv_multiply_adds(i, o, n, 3))
    assert fixed_kernel.status == "wrong" and "expected" in fixed_kernel.message


def test_stubs_and_crashes_are_reported_not_raised():
    def parameters_stub(channels):
        ...

    def multiply_adds_stub(in_channels, out_channels, size, kernel_size=3):
        ...

    for check, stub in ((nb07.check_cnn_parameters, parameters_stub),
                        (nb07.check_conv_multiply_adds, multiply_adds_stub)):
        assert check(None).status == "not solved"
        assert check(stub).status == "not solved"
        crashed = check(lambda *args: 1 / 0)
        assert crashed.status == "wrong" and "ZeroDivisionError" in crashed.message
