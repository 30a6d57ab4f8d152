"""MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D: finite differences, PyTorch, dtypes, errors, attributes.

The numerical tests run with the NumPy kernels and with the compiled ones (``kernels`` in conftest.py).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from convnetpy import ShapeError
from convnetpy.layers import AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D
from helpers import check_layer_gradients, compare_with_torch, torch_tensor

TORCH = {MaxPool2D: torch.nn.MaxPool2d, AvgPool2D: torch.nn.AvgPool2d, MaxPool1D: torch.nn.MaxPool1d,
         AvgPool1D: torch.nn.AvgPool1d}
POOLS_2D, POOLS_1D = (MaxPool2D, AvgPool2D), (MaxPool1D, AvgPool1D)


def distinct(rng: np.random.Generator, shape: tuple[int, ...], spacing: float = 1.0) -> np.ndarray:
    """Values a random permutation apart: every window has one maximum, so max pooling has no ties."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * spacing


def _random_pool(rng: np.random.Generator, cls):
    ndim = 2 if cls in POOLS_2D else 1
    while True:
        N, C = (int(v) for v in rng.integers(1, 4, size=2))
        sizes = tuple(int(v) for v in rng.integers(1, 12, size=ndim))
        kernel = tuple(int(k) for k in rng.integers(1, 5, size=ndim))
        stride = None if rng.random() < 0.3 else tuple(int(s) for s in rng.integers(1, 4, size=ndim))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        eff_stride = kernel if stride is None else stride
        outs = tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(sizes, kernel, eff_stride, padding))
        if min(outs) >= 1:
            break
    # int spellings for 1D (and for 2D when both axes agree); tuples otherwise
    spell = (lambda t: t if t is None else t[0]) if ndim == 1 else (lambda t: t if t is None or t[0] != t[1] else t[0])
    layer = cls(spell(kernel), spell(stride), spell(padding))
    module = TORCH[cls](spell(kernel), spell(stride), spell(padding))
    x = distinct(rng, (N, C, *sizes), 0.01).astype(np.float32)
    return layer, module, x, (C, *outs)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D])
@pytest.mark.parametrize("seed", range(25))
def test_pool_matches_torch(seed, cls, kernels):
    rng = np.random.default_rng(seed)
    layer, module, x, out_shape = _random_pool(rng, cls)
    compare_with_torch(layer, module, x, rng)
    assert layer.output_shape(x.shape[1:]) == out_shape
    assert tuple(module(torch_tensor(x)).shape[1:]) == out_shape


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0)),
                                                           (3, 1, 0), (2, 3, 1)])
def test_pool2d_gradients(cls, kernel, stride, padding, kernels):
    rng = np.random.default_rng(0)
    layer = cls(kernel, stride, padding)
    x = distinct(rng, (2, 2, 5, 6), 0.1).astype(np.float64)  # 0.1 apart: eps = 1e-6 never swaps a maximum
    errors = check_layer_gradients(layer, x, rng)
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize("cls", [MaxPool1D, AvgPool1D])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (3, 1, 0), (4, 3, 2)])
def test_pool1d_gradients(cls, kernel, stride, padding, kernels):
    rng = np.random.default_rng(1)
    layer = cls(kernel, stride, padding)
    errors = check_layer_gradients(layer, distinct(rng, (2, 3, 9), 0.1).astype(np.float64), rng)
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_keeps_dtype(cls, dtype):
    rng = np.random.default_rng(2)
    shape = (2, 3, 7, 6) if cls in POOLS_2D else (2, 3, 7)
    layer = cls(3, 2, 1)
    y = layer.forward(rng.standard_normal(shape).astype(dtype), training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype
    assert dx.shape == shape


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D])
def test_pool_backward_without_input_grad(cls):
    layer = cls(2)
    shape = (1, 1, 4, 4) if cls in POOLS_2D else (1, 1, 4)
    y = layer.forward(np.ones(shape, np.float32), training=True)
    assert layer.backward(np.ones_like(y), input_grad=False) is None
    assert layer.params == {} and layer.grads == {}


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "bad_shape", "layout"), [
    (MaxPool2D, (2, 3, 8), "(N, C, H, W)"), (AvgPool2D, (2, 3, 8, 8, 1), "(N, C, H, W)"),
    (MaxPool1D, (2, 3, 8, 8), "(N, C, L)"), (AvgPool1D, (8,), "(N, C, L)"),
])
def test_pool_rejects_wrong_ndim(cls, bad_shape, layout):
    with pytest.raises(ShapeError, match=re.escape(f"{cls.__name__} expects input of shape {layout}, got {bad_shape}")):
        cls(2).forward(np.zeros(bad_shape, np.float32))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D])
def test_pool_rejects_integer_input(cls):
    shape = (1, 1, 4, 4) if cls in POOLS_2D else (1, 1, 4)
    with pytest.raises(TypeError, match=f"{cls.__name__} expects float32 or float64 input, got uint8"):
        cls(2).forward(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D, MaxPool1D, AvgPool1D])
def test_pool_backward_needs_training_forward(cls):
    layer = cls(2)
    shape = (1, 1, 4, 4) if cls in POOLS_2D else (1, 1, 4)
    msg = rf"{cls.__name__}\.backward called before forward\(x, training=True\)"
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(np.ones((1, 1, 2, 2)[:len(shape)], np.float32))
    y = layer.forward(np.ones(shape, np.float32))
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(np.ones_like(y))


@pytest.mark.parametrize(("layer", "shape", "msg"), [
    (MaxPool2D(3), (1, 1, 2, 8), "MaxPool2D: output H would be 0 (empty): (H - K + 2P) / S + 1 = "
                                 "(2 - 3 + 2*0) // 3 + 1 = 0"),
    (AvgPool2D((2, 5), 1, (1, 2)), (1, 1, 4, 0), "AvgPool2D: output W would be 0 (empty): (W - K + 2P) / S + 1 = "
                                                 "(0 - 5 + 2*2) // 1 + 1 = 0"),
    (MaxPool1D(4, 2), (1, 1, 3), "MaxPool1D: output L would be 0 (empty): (L - K + 2P) / S + 1 = "
                                 "(3 - 4 + 2*0) // 2 + 1 = 0"),
    (AvgPool1D(5, 1, 1), (1, 1, 2), "AvgPool1D: output L would be 0 (empty): (L - K + 2P) / S + 1 = "
                                    "(2 - 5 + 2*1) // 1 + 1 = 0"),
])
def test_pool_rejects_input_too_small(layer, shape, msg):
    with pytest.raises(ShapeError, match=re.escape(msg)):
        layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize(("cls", "args", "msg"), [
    (MaxPool2D, (0,), "MaxPool2D: kernel_size and stride must be >= 1 and padding >= 0, got (0, 0), (0, 0), (0, 0)"),
    (AvgPool2D, (2, (1, 0)), "AvgPool2D: kernel_size and stride must be >= 1 and padding >= 0, "
                             "got (2, 2), (1, 0), (0, 0)"),
    (MaxPool1D, (2, 1, -1), "MaxPool1D: kernel_size and stride must be >= 1 and padding >= 0, got (2,), (1,), (-1,)"),
    (MaxPool2D, (3, 1, 2), "MaxPool2D: padding (2, 2) must be at most half the kernel (3, 3)"),
    (AvgPool1D, (2, 1, 2), "AvgPool1D: padding (2,) must be at most half the kernel (2,)"),
    (MaxPool2D, ((2, 2, 2),), "kernel_size must be an int or a pair of ints, got (2, 2, 2)"),
    (AvgPool2D, (2, 1.5), "stride must be an int or a pair of ints, got 1.5"),
    (MaxPool1D, ((2, 2),), "kernel_size must be an int, got (2, 2)"),
    (AvgPool1D, (2, None, "same"), "padding must be an int, got 'same'"),
])
def test_pool_rejects_bad_arguments(cls, args, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        cls(*args)


# -- normalised attributes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", POOLS_2D)
@pytest.mark.parametrize(("args", "expected"), [
    ((2,), ((2, 2), (2, 2), (0, 0))),  # stride None means stride = kernel_size
    ((3, None, 1), ((3, 3), (3, 3), (1, 1))),
    (((3, 2), 1), ((3, 2), (1, 1), (0, 0))),
    (([4, 2], [2, 1], [2, 1]), ((4, 2), (2, 1), (2, 1))),
    (((3, 5),), ((3, 5), (3, 5), (0, 0))),
])
def test_pool2d_attributes_are_normalised(cls, args, expected):
    layer = cls(*args)
    assert (layer.kernel_size, layer.stride, layer.padding) == expected


@pytest.mark.parametrize("cls", POOLS_1D)
@pytest.mark.parametrize(("args", "expected"), [
    ((2,), ((2,), (2,), (0,))),
    ((3, None, 1), ((3,), (3,), (1,))),
    (((3,), [1]), ((3,), (1,), (0,))),
])
def test_pool1d_attributes_are_normalised(cls, args, expected):
    layer = cls(*args)
    assert (layer.kernel_size, layer.stride, layer.padding) == expected


@pytest.mark.parametrize("cls", [MaxPool2D, MaxPool1D])
@pytest.mark.parametrize("seed", range(10))
def test_maxpool_ties_match_torch(seed, cls, kernels):
    """With tied maxima both libraries send the gradient to the first maximum of each window."""
    rng = np.random.default_rng(500 + seed)
    layer, module, x, _ = _random_pool(rng, cls)
    x = rng.integers(-1, 2, size=x.shape).astype(np.float32)
    compare_with_torch(layer, module, x, rng)
