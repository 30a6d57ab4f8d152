"""Fast convolution (functional.conv) against its naive loop twin, in float64, on random configurations.

Every test runs four times: with the channels-last kernel and with the planar one (used for few input
channels), each with the NumPy kernels and with the compiled ones (``kernels`` in conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from convnetpy.functional import conv as conv_module
from convnetpy.functional import (
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
    conv_output_size,
    naive,
    same_padding,
)
from helpers import rel_error

TOL = 1e-12  # float64: the two kernels only differ in summation order

pytestmark = pytest.mark.usefixtures("kernels")


@pytest.fixture(params=["channels_last", "planar"], autouse=True)
def layout(request, monkeypatch):
    """Route every convolution through one kernel: planar for any channel count, or never."""
    monkeypatch.setattr(conv_module, "PLANAR_MAX_CHANNELS", 10 ** 9 if request.param == "planar" else -1)
    return request.param


def _random_conv2d(rng: np.random.Generator, lanes: bool = False):
    """A random conv2d configuration whose output is non-empty: asymmetric pads, strides and dilations.

    ``lanes``: 16 or 32 filters, and input channels too half the time, so that the forward pass and the input
    gradient run the compiled kernel's outer-product tiles (``compiled.LANES`` filters each)."""
    while True:
        N, C, F = rng.integers(1, 4), rng.integers(1, 4), rng.integers(1, 4)
        if lanes:
            F = rng.choice([16, 32])
            C = rng.choice([C, 16])
        H, W = rng.integers(1, 10), rng.integers(1, 10)
        KH, KW = rng.integers(1, 5), rng.integers(1, 5)
        stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
        dilation = tuple(int(d) for d in rng.integers(1, 3, size=2))
        pads = tuple(int(p) for p in rng.integers(0, 3, size=4))  # (top, bottom, left, right), independent
        OH = conv_output_size(H, KH, stride[0], pads[0], pads[1], dilation[0])
        OW = conv_output_size(W, KW, stride[1], pads[2], pads[3], dilation[1])
        if OH >= 1 and OW >= 1:
            x = rng.standard_normal((N, C, H, W))  # (N, C, H, W)
            weight = rng.standard_normal((F, C, KH, KW))  # (F, C, KH, KW)
            bias = rng.standard_normal(F)  # (F,)
            return x, weight, bias, stride, pads, dilation, (OH, OW)


@pytest.mark.parametrize("seed", range(40))
def test_conv2d_forward_and_backward_match_naive(seed):
    _check_against_naive(np.random.default_rng(seed))


@pytest.mark.parametrize("seed", range(10))
def test_filters_by_the_vector_match_naive(seed):
    _check_against_naive(np.random.default_rng(1000 + seed), lanes=True)


def _check_against_naive(rng, lanes: bool = False):
    x, weight, bias, stride, pads, dilation, (OH, OW) = _random_conv2d(rng, lanes)
    out, cache = conv2d_forward(x, weight, bias, stride, pads, dilation)
    expected = naive.conv2d_forward(x, weight, bias, stride, pads, dilation)
    assert out.shape == expected.shape == (x.shape[0], weight.shape[0], OH, OW)
    assert rel_error(out, expected) < TOL

    dout = rng.standard_normal(out.shape)  # (N, F, OH, OW)
    dx, dweight, dbias = conv2d_backward(dout, cache)
    ndx, ndweight, ndbias = naive.conv2d_backward(dout, x, weight, stride, pads, dilation)
    assert dx.shape == x.shape and dweight.shape == weight.shape and dbias.shape == bias.shape
    assert rel_error(dx, ndx) < TOL
    assert rel_error(dweight, ndweight) < TOL
    assert rel_error(dbias, ndbias) < TOL


@pytest.mark.parametrize("seed", range(6))
def test_conv2d_without_bias_and_without_input_grad(seed):
    rng = np.random.default_rng(100 + seed)
    x, weight, _, stride, pads, dilation, _ = _random_conv2d(rng)
    out, cache = conv2d_forward(x, weight, None, stride, pads, dilation)
    assert rel_error(out, naive.conv2d_forward(x, weight, None, stride, pads, dilation)) < TOL
    dout = rng.standard_normal(out.shape)
    dx, dweight, dbias = conv2d_backward(dout, cache, input_grad=False)
    assert dx is None and dbias is None
    assert rel_error(dweight, naive.conv2d_backward(dout, x, weight, stride, pads, dilation)[1]) < TOL


def test_conv2d_forward_without_cache():
    rng = np.random.default_rng(7)
    x, weight, bias, stride, pads, dilation, _ = _random_conv2d(rng)
    out, cache = conv2d_forward(x, weight, bias, stride, pads, dilation, keep_cache=False)
    assert cache is None
    assert rel_error(out, naive.conv2d_forward(x, weight, bias, stride, pads, dilation)) < TOL


@pytest.mark.parametrize("seed", range(25))
def test_conv1d_matches_naive_conv2d_with_unit_height(seed):
    rng = np.random.default_rng(200 + seed)
    while True:
        N, C, F, L, K = (int(v) for v in rng.integers(1, [4, 4, 4, 12, 6]))
        stride, dilation = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        pads = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        OL = conv_output_size(L, K, stride, pads[0], pads[1], dilation)
        if OL >= 1:
            break
    x = rng.standard_normal((N, C, L))  # (N, C, L)
    weight = rng.standard_normal((F, C, K))  # (F, C, K)
    bias = rng.standard_normal(F)
    out, cache = conv1d_forward(x, weight, bias, stride, pads, dilation)
    args4 = (x[:, :, None, :], weight[:, :, None, :])
    pads4, stride4, dilation4 = (0, 0, *pads), (1, stride), (1, dilation)
    expected = naive.conv2d_forward(*args4, bias, stride4, pads4, dilation4)[:, :, 0, :]
    assert out.shape == expected.shape == (N, F, OL)
    assert rel_error(out, expected) < TOL

    dout = rng.standard_normal(out.shape)  # (N, F, OL)
    dx, dweight, dbias = conv1d_backward(dout, cache)
    ndx, ndweight, ndbias = naive.conv2d_backward(dout[:, :, None, :], *args4, stride4, pads4, dilation4)
    assert dx.shape == x.shape and dweight.shape == weight.shape
    assert rel_error(dx, ndx[:, :, 0, :]) < TOL
    assert rel_error(dweight, ndweight[:, :, 0, :]) < TOL
    assert rel_error(dbias, ndbias) < TOL


def test_conv1d_without_input_grad():
    rng = np.random.default_rng(3)
    x, weight = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 3))
    out, cache = conv1d_forward(x, weight, None, 2, (1, 0), 1)
    dx, dweight, dbias = conv1d_backward(rng.standard_normal(out.shape), cache, input_grad=False)
    assert dx is None and dbias is None and dweight.shape == weight.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_keeps_dtype(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5)).astype(dtype)
    weight, bias = rng.standard_normal((4, 3, 3, 2)).astype(dtype), rng.standard_normal(4).astype(dtype)
    out, cache = conv2d_forward(x, weight, bias, (2, 1), (1, 0, 1, 1), (1, 2))
    dx, dweight, dbias = conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dweight.dtype == dbias.dtype == dtype


# -- output-size arithmetic ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "kernel", "stride", "before", "after", "dilation", "expected"), [
    (5, 3, 1, 0, 0, 1, 3),
    (5, 3, 1, 1, 1, 1, 5),
    (7, 3, 2, 0, 0, 1, 3),
    (8, 3, 2, 0, 0, 1, 3),  # floor: the last column is never a window's start
    (8, 3, 2, 0, 1, 1, 4),
    (7, 3, 1, 0, 0, 2, 3),  # dilated 3-tap kernel spans 5
    (32, 5, 1, 2, 2, 1, 32),
    (2, 3, 1, 0, 0, 1, 0),  # does not fit
    (1, 5, 1, 0, 0, 1, -3),
])
def test_conv_output_size(size, kernel, stride, before, after, dilation, expected):
    assert conv_output_size(size, kernel, stride, before, after, dilation) == expected


@pytest.mark.parametrize(("size", "kernel", "stride", "dilation", "expected"), [
    (5, 3, 1, 1, (1, 1)),
    (5, 4, 1, 1, (1, 2)),  # even kernel: the odd pixel goes at the end (Keras/TensorFlow)
    (5, 1, 1, 1, (0, 0)),
    (7, 3, 2, 1, (1, 1)),  # out 4: total (4-1)*2 + 3 - 7 = 2
    (8, 3, 2, 1, (0, 1)),  # out 4: total (4-1)*2 + 3 - 8 = 1
    (6, 1, 3, 1, (0, 0)),  # total would be negative: clipped to 0
    (10, 3, 1, 2, (2, 2)),  # dilated kernel spans 5
    (9, 2, 2, 3, (1, 2)),  # out 5: total 8 + 4 - 9 = 3
])
def test_same_padding_known_values(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


@pytest.mark.parametrize("seed", range(10))
def test_same_padding_gives_ceil_output(seed):
    rng = np.random.default_rng(300 + seed)
    for _ in range(50):
        size, kernel, stride, dilation = (int(v) for v in (rng.integers(1, 40), rng.integers(1, 8),
                                                           rng.integers(1, 5), rng.integers(1, 4)))
        before, after = same_padding(size, kernel, stride, dilation)
        assert 0 <= before <= after <= before + 1  # extra pixel at the end
        assert conv_output_size(size, kernel, stride, before, after, dilation) == -(-size // stride)


def test_conv2d_accepts_non_contiguous_input():
    """A convolution's output is an NCHW view of channels-last memory; the next convolution must read it."""
    rng = np.random.default_rng(11)
    x = np.ascontiguousarray(rng.standard_normal((2, 5, 6, 3))).transpose(0, 3, 1, 2)  # (N, C, H, W) view
    assert not x.flags.c_contiguous
    weight, bias = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    out, cache = conv2d_forward(x, weight, bias, (1, 2), (1, 1, 0, 2), (1, 1))
    assert rel_error(out, naive.conv2d_forward(x, weight, bias, (1, 2), (1, 1, 0, 2), (1, 1))) < TOL
    dout = np.ascontiguousarray(rng.standard_normal((2, *out.shape[2:], 4))).transpose(0, 3, 1, 2)
    dx, dweight, _ = conv2d_backward(dout, cache)
    ndx, ndweight, _ = naive.conv2d_backward(dout, x, weight, (1, 2), (1, 1, 0, 2), (1, 1))
    assert rel_error(dx, ndx) < TOL and rel_error(dweight, ndweight) < TOL


def test_conv2d_workspace_reuse_across_shapes():
    """Scratch buffers kept in a workspace between calls must never leak values from an earlier call."""
    rng = np.random.default_rng(12)
    workspace: dict = {}
    # (x shape, kernel, pads): the second call has the same padded shape as the first but other pads
    cases = [((2, 3, 5, 5), (3, 3), (1, 1, 1, 1)), ((2, 3, 6, 6), (3, 3), (0, 1, 1, 0)),
             ((2, 3, 4, 7), (2, 3), (2, 2, 0, 0)), ((2, 3, 5, 5), (3, 3), (1, 1, 1, 1))]
    for shape, kernel, pads in cases:
        x, weight, bias = rng.standard_normal(shape), rng.standard_normal((4, 3, *kernel)), rng.standard_normal(4)
        out, cache = conv2d_forward(x, weight, bias, (1, 1), pads, (1, 1), workspace=workspace)
        assert rel_error(out, naive.conv2d_forward(x, weight, bias, (1, 1), pads, (1, 1))) < TOL
        dout = rng.standard_normal(out.shape)
        dx, dweight, _ = conv2d_backward(dout, cache, workspace=workspace)
        ndx, ndweight, _ = naive.conv2d_backward(dout, x, weight, (1, 1), pads, (1, 1))
        assert rel_error(dx, ndx) < TOL and rel_error(dweight, ndweight) < TOL


@pytest.mark.parametrize("width, stride", [(8, 1), (9, 1), (9, 2), (12, 3), (7, 2)])
@pytest.mark.parametrize("group", [1, 2, 3])
def test_pixel_groups_match_naive(layout, monkeypatch, width, stride, group):
    """Rows of 1, 2 or 3 neighbouring output pixels (and the fallback to 1 when they do not divide the width)
    give the same output and gradients as the naive loops."""
    monkeypatch.setattr(conv_module, "PIXEL_GROUP", group)
    rng = np.random.default_rng(width * 100 + stride * 10 + group)
    x = rng.standard_normal((3, 4, 6, width))
    weight, bias = rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)
    pads = (1, 0, 1, 2)
    out, cache = conv2d_forward(x, weight, bias, (1, stride), pads)
    assert rel_error(out, naive.conv2d_forward(x, weight, bias, (1, stride), pads)) < TOL
    dout = rng.standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), naive.conv2d_backward(dout, x, weight, (1, stride), pads)):
        assert rel_error(got, want) < TOL


def test_grouped_weight_gradient_is_the_adjoint():
    """<grouped(w), G> == <w, ungrouped(G)> for any G: the weight gradient folds the pixel blocks back exactly."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((5, 3, 4, 3))  # (F, C, KH, KW)
    for stride_w, pixels in [(1, 2), (2, 2), (1, 3), (3, 1)]:
        grouped = conv_module._grouped_weight(weight, stride_w, pixels)  # (K, pixels*F)
        g = rng.standard_normal(grouped.shape)
        back = conv_module._ungrouped_weight_grad(g.T, weight.shape, stride_w, pixels)
        assert np.isclose(np.sum(grouped * g), np.sum(weight * back), rtol=1e-12)


CIFAR_SHAPES = [  # the CIFAR-10 net's and LeNet-5's convolutions: (N, C, H, W), (F, KH, KW), pads
    ((4, 3, 32, 32), (16, 5, 5), (2, 2, 2, 2)),
    ((4, 16, 16, 16), (20, 5, 5), (2, 2, 2, 2)),
    ((4, 20, 8, 8), (20, 5, 5), (2, 2, 2, 2)),
    ((4, 6, 14, 14), (16, 5, 5), (0, 0, 0, 0)),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "pads"), CIFAR_SHAPES)
def test_compiled_and_numpy_kernels_agree_in_float32(kernels, x_shape, w_shape, pads):
    """The nets' own shapes, float32, channels-last input: both paths within float32 round-off of each other,
    and NaN in the input reaches the outputs that read it, on both."""
    from convnetpy.functional import compiled

    rng = np.random.default_rng(sum(x_shape))
    x = np.ascontiguousarray(rng.standard_normal(x_shape, dtype=np.float32).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    weight = rng.standard_normal((w_shape[0], x_shape[1], *w_shape[1:]), dtype=np.float32)
    bias = rng.standard_normal(w_shape[0], dtype=np.float32)

    def run():
        out, cache = conv2d_forward(x, weight, bias, (1, 1), pads)
        dout = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)
        return (out, *conv2d_backward(dout, cache))

    results = run()
    compiled.use_compiled(kernels != "compiled" and compiled.installed)  # the other path
    for got, want in zip(results, run()):
        assert got.dtype == np.float32
        assert rel_error(got, want) < 1e-5

    x[0, 1, 3, 4] = np.nan
    out, _ = conv2d_forward(x, weight, bias, (1, 1), pads)
    assert np.isnan(out[0]).any() and not np.isnan(out[1:]).any()

