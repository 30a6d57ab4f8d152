"""ReLU, LeakyReLU, Tanh, Sigmoid: finite differences, PyTorch, dtypes, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from convnetpy import ShapeError
from convnetpy.layers import ACTIVATIONS, LeakyReLU, ReLU, Sigmoid, Tanh
from helpers import check_layer_gradients, compare_with_torch

ALL = [ReLU, LeakyReLU, Tanh, Sigmoid]


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], gap: float = 0.05) -> np.ndarray:
    """Normal values pushed at least ``gap`` away from 0, the kink of ReLU and LeakyReLU."""
    x = rng.standard_normal(shape)
    return x + np.where(x >= 0, gap, -gap)


def _torch_module(layer):
    if isinstance(layer, LeakyReLU):
        return torch.nn.LeakyReLU(layer.negative_slope)
    return {ReLU: torch.nn.ReLU, Tanh: torch.nn.Tanh, Sigmoid: torch.nn.Sigmoid}[type(layer)]()


def _random_shape(rng: np.random.Generator) -> tuple[int, ...]:
    ndim = int(rng.integers(1, 6))  # (N,), (N, D), (N, C, L), (N, C, H, W), (N, C, D, H, W)
    return tuple(int(v) for v in rng.integers(1, 7, size=ndim))


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("seed", range(20))
def test_activation_matches_torch(seed, cls):
    rng = np.random.default_rng(seed)
    layer = LeakyReLU(float(rng.uniform(0.001, 0.5))) if cls is LeakyReLU else cls()
    x = (away_from_zero(rng, _random_shape(rng)) * rng.uniform(0.5, 5)).astype(np.float32)
    compare_with_torch(layer, _torch_module(layer), x, rng)


@pytest.mark.parametrize("cls", ALL)
def test_activation_matches_torch_on_large_inputs(cls):
    """Saturated tanh/sigmoid and large magnitudes (sigmoid must not overflow exp)."""
    rng = np.random.default_rng(42)
    x = (rng.choice([-1, 1], size=(4, 50)) * rng.uniform(10, 500, size=(4, 50))).astype(np.float32)
    layer = cls()
    with np.errstate(over="raise", invalid="raise"):
        compare_with_torch(layer, _torch_module(layer), x, rng)


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(), LeakyReLU(0.3), Tanh(), Sigmoid()], ids=repr)
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 2, 3)])
def test_activation_gradients(layer, shape):
    rng = np.random.default_rng(0)
    errors = check_layer_gradients(layer, away_from_zero(rng, shape), rng)
    assert set(errors) == {"x"}
    assert errors["x"] < 1e-6, errors


def test_relu_gradient_at_zero_is_zero():
    layer = ReLU()
    layer.forward(np.array([[-1.0, 0.0, 2.0]]), training=True)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 3))), [[0.0, 0.0, 1.0]])


def test_leaky_relu_values():
    layer = LeakyReLU(0.1)
    y = layer.forward(np.array([[-2.0, 0.0, 3.0]]), training=True)
    np.testing.assert_allclose(y, [[-0.2, 0.0, 3.0]])
    np.testing.assert_allclose(layer.backward(np.ones((1, 3))), [[0.1, 0.1, 1.0]])


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.2), Tanh(), Sigmoid()], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_keeps_dtype_and_layout(layer, dtype):
    rng = np.random.default_rng(1)
    x = np.ascontiguousarray(rng.standard_normal((2, 4, 5, 3)).astype(dtype)).transpose(0, 3, 1, 2)  # channels-last
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype
    assert y.shape == dx.shape == x.shape
    assert y.strides == x.strides  # order 'K': a channels-last view stays channels-last


@pytest.mark.parametrize("cls", ALL)
def test_activation_backward_without_input_grad(cls):
    layer = cls()
    layer.forward(np.ones((2, 3)), training=True)
    assert layer.backward(np.ones((2, 3)), input_grad=False) is None


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL)
def test_activation_errors(cls):
    layer = cls()
    name = cls.__name__
    with pytest.raises(TypeError, match=f"{name} expects float32 or float64 input, got int32"):
        layer.forward(np.ones((2, 3), np.int32))
    with pytest.raises(TypeError, match=f"{name} expects float32 or float64 input, got float16"):
        layer.forward(np.ones((2, 3), np.float16))
    with pytest.raises(ShapeError, match=re.escape(f"{name} expects input of shape (N, ...), got ()")):
        layer.forward(np.ones(()))
    with pytest.raises(RuntimeError, match=rf"{name}\.backward called before forward\(x, training=True\)"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"training=True"):
        layer.backward(np.ones((2, 3)))


def test_activation_registry():
    assert ACTIVATIONS == {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
    assert LeakyReLU(0.2).spec() == {"type": "leaky_relu", "negative_slope": 0.2}
    assert LeakyReLU().negative_slope == 0.01  # PyTorch's default
