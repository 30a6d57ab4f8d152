"""Dropout, BatchNorm2D and BatchNorm1D: finite differences, PyTorch, dtypes, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from convnetpy import ShapeError
from convnetpy.layers import BatchNorm1D, BatchNorm2D, Dropout
from helpers import assert_close, check_layer_gradients, compare_with_torch, torch_tensor

TORCH_BN = {BatchNorm2D: torch.nn.BatchNorm2d, BatchNorm1D: torch.nn.BatchNorm1d}
# (layer class, input ndim): BatchNorm1D takes both features (N, C) and signals (N, C, L)
BN_CASES = [(BatchNorm2D, 4), (BatchNorm1D, 2), (BatchNorm1D, 3)]
BN_IDS = ["2d", "1d-NC", "1d-NCL"]


# -- Dropout ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_train_mask_statistics_and_backward(p, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 8, 16, 16)) + 5).astype(dtype)  # 131072 values, none zero
    layer = Dropout(p, rng=np.random.default_rng(1))
    y = layer.forward(x, training=True)
    assert y.dtype == dtype and y.shape == x.shape
    dropped = y == 0
    # the dropped fraction is binomial: 5 standard deviations of sqrt(p (1-p) / n) is below 0.007
    assert abs(dropped.mean() - p) < 0.007
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)  # survivors scaled by 1 / (1-p)

    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx[dropped], 0)  # the same mask as forward
    np.testing.assert_allclose(dx[~dropped], dy[~dropped] / (1 - p), rtol=1e-6)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_agrees_with_torch_statistics(p):
    """PyTorch draws other random numbers, so compare what both do: drop rate, scale, identity in eval."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((32, 64, 64)) + 5).astype(np.float32)
    ours = Dropout(p, rng=rng).forward(x, training=True)
    module = torch.nn.Dropout(p).train()
    torch.manual_seed(0)
    theirs = module(torch_tensor(x)).numpy()
    assert abs((ours == 0).mean() - (theirs == 0).mean()) < 0.01
    for y in (ours, theirs):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    module.eval()
    np.testing.assert_array_equal(Dropout(p).forward(x), module(torch_tensor(x)).numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_eval_is_identity(dtype):
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(dtype)
    y = Dropout(0.5).forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, x)


def test_dropout_is_reproducible_from_its_rng():
    x = np.ones((50, 40), np.float32)
    a = Dropout(0.5, rng=np.random.default_rng(7)).forward(x, training=True)
    b = Dropout(0.5, rng=np.random.default_rng(7)).forward(x, training=True)
    c = Dropout(0.5, rng=np.random.default_rng(8)).forward(x, training=True)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    layer = Dropout(0.5, rng=np.random.default_rng(7))
    assert (layer.forward(x, training=True) != layer.forward(x, training=True)).any()  # a fresh mask each step


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)])
def test_dropout_gradients(p, shape):
    rng = np.random.default_rng(4)
    layer = Dropout(p)

    def reseed():
        layer.rng = np.random.default_rng(123)  # the same mask on every forward of the finite differences

    errors = check_layer_gradients(layer, rng.standard_normal(shape), rng, reseed=reseed)
    assert errors["x"] < 1e-6, errors


def test_dropout_errors():
    for p in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=re.escape(f"Dropout: p must be in [0, 1), got {p!r}")):
            Dropout(p)
    layer = Dropout(0.5)
    with pytest.raises(TypeError, match="Dropout expects float32 or float64 input, got int64"):
        layer.forward(np.ones((2, 3), np.int64), training=True)
    with pytest.raises(ShapeError, match=re.escape("Dropout expects input of shape (N, ...), got ()")):
        layer.forward(np.ones(()), training=True)
    with pytest.raises(RuntimeError, match=r"Dropout\.backward called before forward\(x, training=True\)"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.ones((2, 3)), training=False)
    with pytest.raises(RuntimeError, match=r"training=True"):
        layer.backward(np.ones((2, 3)))


# -- BatchNorm ----------------------------------------------------------------------------------------------
def _bn_shape(rng: np.random.Generator, ndim: int, C: int) -> tuple[int, ...]:
    N = int(rng.integers(2, 7)) if ndim == 2 else int(rng.integers(1, 5))
    return (N, C, *(int(v) for v in rng.integers(1, 7, size=ndim - 2)))


def _random_bn(rng: np.random.Generator, cls):
    C = int(rng.integers(1, 6))
    eps, momentum = float(rng.choice([1e-5, 1e-3, 0.1])), float(rng.uniform(0.05, 0.9))
    layer = cls(C, eps, momentum)
    layer.params["weight"][...] = rng.uniform(0.5, 2, C)
    layer.params["bias"][...] = rng.standard_normal(C)
    return layer, TORCH_BN[cls](C, eps=eps, momentum=momentum)


def _bn_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Per-channel offsets and scales, so the statistics differ between channels."""
    C = shape[1]
    scale = rng.uniform(0.5, 3, C).reshape(1, C, *(1,) * (len(shape) - 2))
    offset = rng.uniform(-3, 3, C).reshape(1, C, *(1,) * (len(shape) - 2))
    return (rng.standard_normal(shape) * scale + offset).astype(np.float32)


@pytest.mark.parametrize(("cls", "ndim"), BN_CASES, ids=BN_IDS)
@pytest.mark.parametrize("seed", range(20))
def test_batchnorm_train_matches_torch(seed, cls, ndim):
    rng = np.random.default_rng(seed)
    layer, module = _random_bn(rng, cls)
    x = _bn_input(rng, _bn_shape(rng, ndim, layer.num_features))
    if x.size // x.shape[1] < 2:
        x = np.concatenate([x, x + 1])  # training needs two values per channel
    compare_with_torch(layer, module, x, rng)
    assert_close(layer.buffers["running_mean"], module.running_mean, what="running_mean")
    assert_close(layer.buffers["running_var"], module.running_var, what="running_var")


@pytest.mark.parametrize(("cls", "ndim"), BN_CASES, ids=BN_IDS)
@pytest.mark.parametrize("seed", range(5))
def test_batchnorm_running_statistics_and_eval_match_torch(seed, cls, ndim):
    """A few training steps on shifting batches, then evaluation with the running statistics."""
    rng = np.random.default_rng(100 + seed)
    layer, module = _random_bn(rng, cls)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(layer.params["weight"]))
        module.bias.copy_(torch.from_numpy(layer.params["bias"]))
    module.train()
    for _ in range(4):
        x = _bn_input(rng, _bn_shape(rng, ndim, layer.num_features))
        if x.size // x.shape[1] < 2:
            x = np.concatenate([x, x - 1])
        assert_close(layer.forward(x, training=True), module(torch_tensor(x)), what="train forward")
        assert_close(layer.buffers["running_mean"], module.running_mean, what="running_mean")
        assert_close(layer.buffers["running_var"], module.running_var, what="running_var")  # unbiased
    module.eval()
    x = _bn_input(rng, _bn_shape(rng, ndim, layer.num_features))
    assert_close(layer.forward(x), module(torch_tensor(x)), what="eval forward")
    assert_close(layer.forward(x[:1]), module(torch_tensor(x[:1])), what="eval forward, batch of one")


@pytest.mark.parametrize(("cls", "ndim"), BN_CASES, ids=BN_IDS)
@pytest.mark.parametrize("seed", range(20))
def test_batchnorm_eval_matches_torch(seed, cls, ndim):
    rng = np.random.default_rng(200 + seed)
    layer, module = _random_bn(rng, cls)
    C = layer.num_features
    layer.buffers["running_mean"][...] = rng.standard_normal(C)
    layer.buffers["running_var"][...] = rng.uniform(0.2, 4, C)
    with torch.no_grad():
        for name in ("weight", "bias"):
            getattr(module, name).copy_(torch.from_numpy(layer.params[name]))
        for name in ("running_mean", "running_var"):
            getattr(module, name).copy_(torch.from_numpy(layer.buffers[name]))
    module.eval()
    x = _bn_input(rng, _bn_shape(rng, ndim, C))
    before = {k: v.copy() for k, v in layer.buffers.items()}
    assert_close(layer.forward(x), module(torch_tensor(x)), what="eval forward")
    for name, value in before.items():
        np.testing.assert_array_equal(layer.buffers[name], value, err_msg=f"eval changed {name}")


@pytest.mark.parametrize(("cls", "shape"), [(BatchNorm2D, (3, 2, 2, 3)), (BatchNorm2D, (2, 1, 1, 2)),
                                            (BatchNorm1D, (5, 3)), (BatchNorm1D, (2, 3, 4)),
                                            (BatchNorm1D, (3, 2, 1))])
def test_batchnorm_gradients(cls, shape):
    rng = np.random.default_rng(5)
    layer = cls(shape[1], dtype=np.float64)
    layer.params["weight"][...] = rng.uniform(0.5, 2, shape[1])
    layer.params["bias"][...] = rng.standard_normal(shape[1])
    x = rng.standard_normal(shape) * 2 + 1
    errors = check_layer_gradients(layer, x, rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("cls", "ndim"), BN_CASES, ids=BN_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_keeps_dtype(cls, ndim, dtype):
    rng = np.random.default_rng(6)
    layer = cls(3, dtype=dtype)
    x = rng.standard_normal((4, 3, 5, 5)[:ndim]).astype(dtype)
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == dtype
    for store in (layer.params, layer.grads, layer.buffers):
        assert all(v.dtype == dtype for v in store.values()), store
    assert layer.forward(x).dtype == dtype  # evaluation, with the running statistics


def test_batchnorm_backward_without_input_grad():
    layer = BatchNorm2D(2)
    y = layer.forward(np.random.default_rng(7).standard_normal((3, 2, 2, 2)).astype(np.float32), training=True)
    assert layer.backward(np.ones_like(y), input_grad=False) is None
    np.testing.assert_allclose(layer.grads["bias"], [12, 12])


def test_batchnorm_parameter_names_follow_torch():
    layer = BatchNorm2D(4)
    assert set(layer.params) == set(layer.grads) == {"weight", "bias"}
    assert set(layer.buffers) == {"running_mean", "running_var"}
    assert layer.decay == {"weight": 0.0, "bias": 0.0}
    np.testing.assert_array_equal(layer.buffers["running_var"], np.ones(4, np.float32))


@pytest.mark.parametrize(("layer", "shape", "msg"), [
    (BatchNorm2D(3), (2, 3, 4), "BatchNorm2D expects input of shape (N, 3, H, W), got (2, 3, 4)"),
    (BatchNorm2D(3), (2, 4, 5, 5), "BatchNorm2D expects input of shape (N, 3, H, W), got (2, 4, 5, 5)"),
    (BatchNorm1D(3), (2, 3, 4, 4), "BatchNorm1D expects input of shape (N, 3) or (N, 3, L), got (2, 3, 4, 4)"),
    (BatchNorm1D(3), (2, 5), "BatchNorm1D expects input of shape (N, 3) or (N, 3, L), got (2, 5)"),
    (BatchNorm1D(3), (2, 2, 7), "BatchNorm1D expects input of shape (N, 3) or (N, 3, L), got (2, 2, 7)"),
])
def test_batchnorm_rejects_wrong_shapes(layer, shape, msg):
    with pytest.raises(ShapeError, match=re.escape(msg)):
        layer.forward(np.zeros(shape, np.float32))


@pytest.mark.parametrize(("cls", "shape"), [(BatchNorm2D, (1, 2, 1, 1)), (BatchNorm1D, (1, 2)),
                                            (BatchNorm1D, (1, 2, 1))])
def test_batchnorm_training_needs_two_values_per_channel(cls, shape):
    with pytest.raises(ValueError, match=re.escape(
            f"{cls.__name__}: training needs more than one value per channel, got input of shape {shape}")):
        cls(2).forward(np.zeros(shape, np.float32), training=True)
    assert cls(2).forward(np.zeros(shape, np.float32)).shape == shape  # evaluation is fine


@pytest.mark.parametrize("cls", [BatchNorm2D, BatchNorm1D])
def test_batchnorm_type_and_order_errors(cls):
    layer = cls(2)
    shape = (2, 2, 3, 3) if cls is BatchNorm2D else (2, 2)
    with pytest.raises(TypeError, match=f"{cls.__name__} expects float32 or float64 input, got int64"):
        layer.forward(np.zeros(shape, np.int64))
    msg = rf"{cls.__name__}\.backward called before forward\(x, training=True\)"
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(np.zeros(shape, np.float32))
    layer.forward(np.zeros(shape, np.float32))
    with pytest.raises(RuntimeError, match=msg):
        layer.backward(np.zeros(shape, np.float32))


@pytest.mark.parametrize(("args", "msg"), [
    ((0,), "BatchNorm2D: need num_features >= 1, eps > 0 and momentum in [0, 1], got 0, 1e-05, 0.1"),
    ((3, 0.0), "BatchNorm2D: need num_features >= 1, eps > 0 and momentum in [0, 1], got 3, 0.0, 0.1"),
    ((3, 1e-5, 1.5), "BatchNorm2D: need num_features >= 1, eps > 0 and momentum in [0, 1], got 3, 1e-05, 1.5"),
    ((3, 1e-5, -0.1), "BatchNorm2D: need num_features >= 1, eps > 0 and momentum in [0, 1], got 3, 1e-05, -0.1"),
])
def test_batchnorm_rejects_bad_arguments(args, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        BatchNorm2D(*args)
