"""Dense and Flatten: finite differences, PyTorch, dtypes, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from convnetpy import ShapeError
from convnetpy.layers import Dense, Flatten
from helpers import check_layer_gradients, compare_with_torch


@pytest.mark.parametrize("seed", range(25))
def test_dense_matches_torch(seed):
    rng = np.random.default_rng(seed)
    N, D, K = (int(v) for v in rng.integers(1, [9, 40, 20]))
    bias = bool(rng.random() < 0.8)
    layer = Dense(D, K, bias=bias, rng=rng, init=str(rng.choice(["he", "lecun"])))
    if bias:
        layer.params["bias"][...] = rng.standard_normal(K)
    x = rng.standard_normal((N, D)).astype(np.float32)
    compare_with_torch(layer, torch.nn.Linear(D, K, bias=bias), x, rng)


@pytest.mark.parametrize("seed", range(20))
def test_flatten_matches_torch(seed):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(2, 6))))
    x = rng.standard_normal(shape).astype(np.float32)
    layer = Flatten()
    compare_with_torch(layer, torch.nn.Flatten(), x, rng)
    assert layer.output_shape(shape[1:]) == (int(np.prod(shape[1:])),)


def test_flatten_of_channels_last_view_is_c_order():
    """A convolution hands Flatten an NCHW view of channels-last memory; the order must still be (C, H, W)."""
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    view = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    layer = Flatten()
    np.testing.assert_array_equal(layer.forward(view, training=True), x.reshape(2, -1))
    dy = np.arange(2 * 60, dtype=np.float32).reshape(2, 60)
    np.testing.assert_array_equal(layer.backward(dy), dy.reshape(2, 3, 4, 5))


@pytest.mark.parametrize(("N", "D", "K", "bias"), [(1, 1, 1, True), (3, 5, 4, True), (4, 7, 2, False)])
def test_dense_gradients(N, D, K, bias):
    rng = np.random.default_rng(0)
    layer = Dense(D, K, bias=bias, rng=rng, dtype=np.float64)
    if bias:
        layer.params["bias"][...] = rng.standard_normal(K)
    errors = check_layer_gradients(layer, rng.standard_normal((N, D)), rng)
    assert set(errors) == {"x", "weight", *(["bias"] if bias else [])}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (1, 2, 3, 2)])
def test_flatten_gradients(shape):
    rng = np.random.default_rng(1)
    errors = check_layer_gradients(Flatten(), rng.standard_normal(shape), rng)
    assert errors["x"] < 1e-6, errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_and_flatten_keep_dtype(dtype):
    rng = np.random.default_rng(2)
    flatten, dense = Flatten(), Dense(12, 5, rng=rng, dtype=dtype)
    assert all(p.dtype == dtype for p in dense.params.values())
    h = flatten.forward(rng.standard_normal((3, 3, 2, 2)).astype(dtype), training=True)
    y = dense.forward(h, training=True)
    dh = dense.backward(np.ones_like(y))
    dx = flatten.backward(dh)
    assert h.dtype == y.dtype == dh.dtype == dx.dtype == dtype
    assert all(g.dtype == dtype for g in dense.grads.values())
    assert dx.shape == (3, 3, 2, 2)


def test_dense_backward_without_input_grad():
    layer = Dense(3, 2)
    y = layer.forward(np.ones((4, 3), np.float32), training=True)
    assert layer.backward(np.ones_like(y), input_grad=False) is None
    np.testing.assert_array_equal(layer.grads["weight"], np.full((2, 3), 4, np.float32))
    np.testing.assert_array_equal(layer.grads["bias"], np.full(2, 4, np.float32))


def test_dense_shapes_and_names_follow_torch():
    layer = Dense(7, 3)
    assert layer.params["weight"].shape == (3, 7) and layer.params["bias"].shape == (3,)
    assert set(layer.params) == set(layer.grads) == set(layer.decay) == {"weight", "bias"}
    assert layer.decay == {"weight": 1.0, "bias": 0.0}
    assert set(Dense(7, 3, bias=False).params) == {"weight"}


# -- errors -------------------------------------------------------------------------------------------------
def test_dense_errors():
    layer = Dense(6, 2)
    with pytest.raises(ShapeError, match=re.escape("Dense expects input of shape (N, 6), got (4, 2, 3)")):
        layer.forward(np.zeros((4, 2, 3), np.float32))
    with pytest.raises(ShapeError, match=re.escape("Dense expects input of shape (N, 6), got (4, 5)")):
        layer.forward(np.zeros((4, 5), np.float32))
    with pytest.raises(TypeError, match="Dense expects float32 or float64 input, got int64"):
        layer.forward(np.zeros((4, 6), np.int64))
    with pytest.raises(RuntimeError, match=r"Dense\.backward called before forward\(x, training=True\)"):
        layer.backward(np.zeros((4, 2), np.float32))
    layer.forward(np.zeros((4, 6), np.float32))
    with pytest.raises(RuntimeError, match=r"training=True"):
        layer.backward(np.zeros((4, 2), np.float32))


@pytest.mark.parametrize(("args", "kwargs", "msg"), [
    ((0, 3), {}, "Dense: in_features and out_features must be >= 1, got 0, 3"),
    ((3, 0), {}, "Dense: in_features and out_features must be >= 1, got 3, 0"),
    ((3, 2), {"init": "glorot"}, "init must be 'he' or 'lecun', got 'glorot'"),
])
def test_dense_rejects_bad_arguments(args, kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        Dense(*args, **kwargs)


def test_flatten_errors():
    layer = Flatten()
    with pytest.raises(ShapeError, match=re.escape("Flatten expects input of shape (N, ...), got (5,)")):
        layer.forward(np.zeros(5, np.float32))
    with pytest.raises(TypeError, match="Flatten expects float32 or float64 input, got bool"):
        layer.forward(np.zeros((2, 3), bool))
    with pytest.raises(RuntimeError, match=r"Flatten\.backward called before forward\(x, training=True\)"):
        layer.backward(np.zeros((2, 3), np.float32))
