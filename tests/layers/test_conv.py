"""Conv2D and Conv1D: finite differences, PyTorch on random configurations, dtypes, errors, attributes.

The numerical tests run with the NumPy kernels and with the compiled ones (``kernels`` in conftest.py).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convnetpy import ShapeError
from convnetpy.layers import Conv1D, Conv2D
from helpers import check_layer_gradients, compare_with_torch, torch_tensor

# PyTorch warns that 'same' with an even kernel copies the input; that is its business, not a test failure.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def keras_same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding of one axis, written out from its definition (the test oracle):
    output ceil(size / stride), total padding just enough for that, the odd pixel at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class PaddedConv2d(torch.nn.Conv2d):
    """nn.Conv2d after an explicit (left, right, top, bottom) zero pad: PyTorch refuses 'same' with stride > 1."""

    def __init__(self, *args, pads, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pads = pads

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))


class PaddedConv1d(torch.nn.Conv1d):
    def __init__(self, *args, pads, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.pads = pads

    def forward(self, x):
        return super().forward(F.pad(x, self.pads))


def _size_arg(rng, values: np.ndarray):
    """An int when all values agree and a coin says so, else a tuple: both spellings get exercised."""
    values = tuple(int(v) for v in values)
    return values[0] if len(set(values)) == 1 and rng.random() < 0.7 else values


def _random_padding(rng, ndim: int):
    kind = rng.integers(4)
    if kind == 0:
        return "same"
    if kind == 1:
        return "valid"
    if kind == 2:
        return int(rng.integers(0, 3))
    return tuple(int(p) for p in rng.integers(0, 3, size=ndim))


def _random_conv(rng, ndim: int):
    """Random (layer, torch module, x) for Conv2D (ndim 2) or Conv1D (ndim 1) with a non-empty output."""
    while True:
        N, C, F_ = (int(v) for v in rng.integers(1, [4, 5, 6]))
        sizes = tuple(int(v) for v in rng.integers(1, 12, size=ndim))
        kernel = rng.integers(1, 6, size=ndim)
        stride = rng.integers(1, 4, size=ndim) if rng.random() < 0.7 else np.ones(ndim, int)
        dilation = rng.integers(1, 3, size=ndim) if rng.random() < 0.5 else np.ones(ndim, int)
        padding = _random_padding(rng, ndim)
        pads = ([keras_same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, stride, dilation)]
                if padding == "same" else [(p, p) for p in np.broadcast_to(
                    0 if padding == "valid" else np.asarray(padding), (ndim,))])
        outs = [(n + pb + pa - d * (k - 1) - 1) // s + 1
                for n, k, s, d, (pb, pa) in zip(sizes, kernel, stride, dilation, pads)]
        if min(outs) >= 1:
            break
    bias = bool(rng.random() < 0.8)
    kernel_arg, stride_arg, dilation_arg = (_size_arg(rng, v) for v in (kernel, stride, dilation))
    if ndim == 1:
        kernel_arg, stride_arg, dilation_arg = (v if isinstance(v, int) else v[0]
                                                for v in (kernel_arg, stride_arg, dilation_arg))
    layer_cls = Conv2D if ndim == 2 else Conv1D
    layer = layer_cls(C, F_, kernel_arg, stride_arg, padding, dilation_arg, bias=bias, rng=rng)
    if bias:
        layer.params["bias"][...] = rng.standard_normal(F_)
    torch_args = dict(kernel_size=tuple(kernel.tolist()), stride=tuple(stride.tolist()),
                      dilation=tuple(dilation.tolist()), bias=bias)
    torch_pad = [p for pb_pa in reversed(pads) for p in pb_pa]  # F.pad wants the last axis first
    conv, padded = (torch.nn.Conv2d, PaddedConv2d) if ndim == 2 else (torch.nn.Conv1d, PaddedConv1d)
    if padding != "same":
        module = conv(C, F_, padding=tuple(pb for pb, _ in pads), **torch_args)
    elif max(stride) == 1:
        module = conv(C, F_, padding="same", **torch_args)
    else:
        module = padded(C, F_, pads=torch_pad, **torch_args)
    x = rng.standard_normal((N, C, *sizes)).astype(np.float32)
    return layer, module, x, (F_, *outs)


@pytest.mark.parametrize("ndim", [2, 1])
@pytest.mark.parametrize("seed", range(30))
def test_conv_matches_torch(seed, ndim, kernels):
    rng = np.random.default_rng(seed + 100 * ndim)
    layer, module, x, out_shape = _random_conv(rng, ndim)
    compare_with_torch(layer, module, x, rng)
    assert layer.output_shape(x.shape[1:]) == out_shape
    assert tuple(module(torch_tensor(x)).shape[1:]) == out_shape


@pytest.mark.parametrize("ndim", [2, 1])
def test_conv_same_with_stride_covers_keras_cases(ndim):
    """'same' with stride > 1 and an odd total padding: the extra pixel must go at the end, as Keras."""
    rng = np.random.default_rng(3)
    sizes = (8, 6)[:ndim]
    kernel, stride = (3, 4)[:ndim], (2, 3)[:ndim]  # H: total 1 -> (0, 1); W: total 1 -> (0, 1)
    layer = (Conv2D if ndim == 2 else Conv1D)(2, 3, kernel, stride, "same", rng=rng)  # Conv1D takes 1-tuples
    pads = [keras_same_pads(n, k, s, 1) for n, k, s in zip(sizes, kernel, stride)]
    assert all(pa == pb + 1 for pb, pa in pads)
    cls = PaddedConv2d if ndim == 2 else PaddedConv1d
    module = cls(2, 3, kernel, stride, pads=[p for pb_pa in reversed(pads) for p in pb_pa])
    layer.params["bias"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, *sizes)).astype(np.float32)
    compare_with_torch(layer, module, x, rng)
    assert layer.output_shape(x.shape[1:])[1:] == tuple(-(-n // s) for n, s in zip(sizes, stride))


# -- finite differences in float64 --------------------------------------------------------------------------
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "bias"), [
    (3, 1, 0, 1, True),
    ((2, 3), (2, 1), (1, 0), 1, True),
    (3, 2, "same", 1, False),
    ((3, 2), 1, "same", (2, 1), True),
    (2, (1, 2), 1, 2, True),
])
def test_conv2d_gradients(kernel, stride, padding, dilation, bias, kernels):
    rng = np.random.default_rng(0)
    layer = Conv2D(2, 3, kernel, stride, padding, dilation, bias=bias, rng=rng, dtype=np.float64)
    if bias:
        layer.params["bias"][...] = rng.standard_normal(3)
    x = rng.standard_normal((2, 2, 5, 6))
    errors = check_layer_gradients(layer, x, rng)
    assert set(errors) == {"x", "weight", *(["bias"] if bias else [])}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), [
    (3, 1, 0, 1), (2, 2, 1, 1), (3, 2, "same", 1), (2, 1, "same", 2), (3, 3, "valid", 2),
])
def test_conv1d_gradients(kernel, stride, padding, dilation, kernels):
    rng = np.random.default_rng(1)
    layer = Conv1D(2, 3, kernel, stride, padding, dilation, rng=rng, dtype=np.float64)
    layer.params["bias"][...] = rng.standard_normal(3)
    errors = check_layer_gradients(layer, rng.standard_normal((2, 2, 9)), rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-6, errors


def test_conv_backward_without_input_grad():
    rng = np.random.default_rng(2)
    layer = Conv2D(2, 3, 3, rng=rng)
    y = layer.forward(rng.standard_normal((2, 2, 5, 5)).astype(np.float32), training=True)
    assert layer.backward(np.ones_like(y), input_grad=False) is None
    assert np.abs(layer.grads["weight"]).sum() > 0
    np.testing.assert_allclose(layer.grads["bias"], np.full(3, 2 * 3 * 3, np.float32))


# -- dtypes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "shape"), [(Conv2D, (2, 3, 7, 6)), (Conv1D, (2, 3, 9))])
def test_conv_keeps_dtype(cls, shape, dtype, kernels):
    rng = np.random.default_rng(4)
    layer = cls(3, 4, 3, 2, "same", dtype=dtype, rng=rng)
    assert all(p.dtype == dtype for p in layer.params.values())
    y = layer.forward(rng.standard_normal(shape).astype(dtype), training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype
    assert all(g.dtype == dtype for g in layer.grads.values())
    assert all(p.dtype == dtype for p in layer.params.values())


# -- errors -------------------------------------------------------------------------------------------------
def test_conv2d_rejects_wrong_ndim_and_channels():
    layer = Conv2D(3, 4, 3)
    msg = re.escape("Conv2D expects input of shape (N, 3, H, W), got (2, 3, 8)")
    with pytest.raises(ShapeError, match=msg):
        layer.forward(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(ShapeError, match=re.escape("Conv2D expects input of shape (N, 3, H, W), got (2, 1, 8, 8)")):
        layer.forward(np.zeros((2, 1, 8, 8), np.float32))


def test_conv1d_rejects_wrong_ndim_and_channels():
    layer = Conv1D(2, 4, 3)
    with pytest.raises(ShapeError, match=re.escape("Conv1D expects input of shape (N, 2, L), got (2, 2, 8, 8)")):
        layer.forward(np.zeros((2, 2, 8, 8), np.float32))
    with pytest.raises(ShapeError, match=re.escape("Conv1D expects input of shape (N, 2, L), got (2, 5, 8)")):
        layer.forward(np.zeros((2, 5, 8), np.float32))


@pytest.mark.parametrize(("layer", "shape"), [(Conv2D(3, 4, 3), (1, 3, 5, 5)), (Conv1D(3, 4, 3), (1, 3, 5))])
def test_conv_rejects_integer_and_non_array_input(layer, shape):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=f"{name} expects float32 or float64 input, got int64"):
        layer.forward(np.zeros(shape, np.int64))
    with pytest.raises(TypeError, match=f"{name} expects a NumPy array, got list"):
        layer.forward(np.zeros(shape, np.float32).tolist())


@pytest.mark.parametrize(("layer", "shape"), [(Conv2D(3, 4, 3), (1, 3, 5, 5)), (Conv1D(3, 4, 3), (1, 3, 5))])
def test_conv_backward_needs_training_forward(layer, shape):
    dy = np.ones((1, 4, *(s - 2 for s in shape[2:])), np.float32)
    msg = rf"{type(layer).__name__}\.backward called before forward\(x, training=True\)"
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(dy)
    layer.forward(np.zeros(shape, np.float32))  # inference: keeps nothing
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(dy)


def test_conv_rejects_input_too_small():
    with pytest.raises(ShapeError, match=re.escape(
            "Conv2D: output H would be -1 (empty): (H - D*(K-1) - 1 + 2P) / S + 1 = "
            "(3 - 1*(5-1) - 1 + 0) // 1 + 1 = -1")):
        Conv2D(1, 1, 5).forward(np.zeros((1, 1, 3, 9), np.float32))
    with pytest.raises(ShapeError, match=re.escape(
            "Conv2D: output W would be 0 (empty): (W - D*(K-1) - 1 + 2P) / S + 1 = "
            "(2 - 2*(3-1) - 1 + 2) // 2 + 1 = 0")):
        Conv2D(1, 1, 3, stride=2, padding=(0, 1), dilation=(1, 2)).forward(np.zeros((1, 1, 9, 2), np.float32))
    with pytest.raises(ShapeError, match=re.escape(
            "Conv1D: output L would be 0 (empty): (L - D*(K-1) - 1 + 2P) / S + 1 = "
            "(2 - 1*(3-1) - 1 + 0) // 1 + 1 = 0")):
        Conv1D(1, 1, 3).forward(np.zeros((1, 1, 2), np.float32))


@pytest.mark.parametrize(("kwargs", "msg"), [
    (dict(kernel_size=0), "Conv2D: kernel_size must be >= 1, got (0, 0)"),
    (dict(kernel_size=3, stride=(1, 0)), "Conv2D: stride must be >= 1, got (1, 0)"),
    (dict(kernel_size=3, dilation=0), "Conv2D: dilation must be >= 1, got (0, 0)"),
    (dict(kernel_size=3, padding=-1), "Conv2D: padding must be >= 0, got (-1, -1)"),
    (dict(kernel_size=3, padding="full"), "padding must be an int, a tuple, 'valid' or 'same', got 'full'"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size must be an int or a pair of ints, got (3, 3, 3)"),
    (dict(kernel_size=2.5), "kernel_size must be an int or a pair of ints, got 2.5"),
    (dict(kernel_size=True), "kernel_size must be an int or a pair of ints, got True"),
    (dict(kernel_size=3, stride="2"), "stride must be an int or a pair of ints, got '2'"),
    (dict(kernel_size=3, init="xavier"), "init must be 'he' or 'lecun', got 'xavier'"),
])
def test_conv2d_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        Conv2D(3, 4, **kwargs)


@pytest.mark.parametrize(("args", "msg"), [
    ((0, 4, 3), "Conv2D: in_channels and out_channels must be >= 1, got 0, 4"),
    ((3, 0, 3), "Conv2D: in_channels and out_channels must be >= 1, got 3, 0"),
])
def test_conv_rejects_bad_channel_counts(args, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        Conv2D(*args)


@pytest.mark.parametrize(("kwargs", "msg"), [
    (dict(kernel_size=(3, 3)), "kernel_size must be an int, got (3, 3)"),
    (dict(kernel_size=0), "Conv1D: kernel_size must be >= 1, got (0,)"),
    (dict(kernel_size=3, padding=(1, 1)), "padding must be an int, got (1, 1)"),
    (dict(kernel_size=3, stride=-1), "Conv1D: stride must be >= 1, got (-1,)"),
])
def test_conv1d_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        Conv1D(3, 4, **kwargs)


# -- normalised attributes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(kernel_size=3), ((3, 3), (1, 1), (0, 0), (1, 1))),
    (dict(kernel_size=(3, 5), stride=2, padding=(1, 2), dilation=(2, 1)), ((3, 5), (2, 2), (1, 2), (2, 1))),
    (dict(kernel_size=[2, 4], stride=[1, 3], padding="valid", dilation=np.int64(2)), ((2, 4), (1, 3), (0, 0), (2, 2))),
    (dict(kernel_size=3, stride=2, padding="same"), ((3, 3), (2, 2), "same", (1, 1))),
])
def test_conv2d_attributes_are_normalised(kwargs, expected):
    layer = Conv2D(2, 5, **kwargs)
    got = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    assert got == expected
    assert all(type(v) is int for t in got if t != "same" for v in t)
    assert layer.params["weight"].shape == (5, 2, *expected[0])
    assert layer.params["bias"].shape == (5,)


@pytest.mark.parametrize(("kwargs", "expected"), [
    (dict(kernel_size=3), ((3,), (1,), (0,), (1,))),
    (dict(kernel_size=(5,), stride=[2], padding=1, dilation=3), ((5,), (2,), (1,), (3,))),
    (dict(kernel_size=3, padding="valid"), ((3,), (1,), (0,), (1,))),
    (dict(kernel_size=4, stride=3, padding="same"), ((4,), (3,), "same", (1,))),
])
def test_conv1d_attributes_are_normalised(kwargs, expected):
    layer = Conv1D(2, 5, **kwargs)
    assert (layer.kernel_size, layer.stride, layer.padding, layer.dilation) == expected
    assert layer.params["weight"].shape == (5, 2, expected[0][0])


def test_conv_without_bias_has_only_weight():
    layer = Conv2D(2, 3, 3, bias=False)
    assert set(layer.params) == set(layer.grads) == {"weight"}
