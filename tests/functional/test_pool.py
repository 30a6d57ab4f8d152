"""Fast max and average pooling (functional.pool) against the naive loop twins, in float64.

Every test runs twice: with the NumPy kernels and with the compiled (Numba) max pooling, when Numba is installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnetpy.functional import (
    avgpool2d_backward,
    avgpool2d_forward,
    compiled,
    maxpool2d_backward,
    maxpool2d_forward,
    naive,
    pool_output_hw,
)
from helpers import rel_error

TOL = 1e-12


pytestmark = pytest.mark.usefixtures("kernels")  # each test with the NumPy kernels, then the compiled ones


def _channels_last(x: np.ndarray) -> np.ndarray:
    """The same values, (N, C, H, W) view of channels-last memory, as a convolution writes them."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize(("kernel", "stride", "padding"), [
    ((3, 2), (2, 2), (1, 1)),  # overlapping rows, padding
    ((2, 2), (2, 2), (0, 0)),  # windows that tile the input: the compiled forward pass on channels-last input
])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_maxpool2d_paths_agree_with_nan_and_layouts(kernels, layout, kernel, stride, padding):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 9, 8)).astype(np.float32)
    if layout == "channels_last":
        x = _channels_last(x)
    with_nan = x.copy(order="K")
    with_nan[0, 1, 2, 3] = np.nan  # inside a window
    with_nan[1, 2, 0, 0] = np.nan  # where a window starts, with larger values after it
    with_nan[1, 2, 0:2, 1] = 1e9

    def run():
        out, cache = maxpool2d_forward(x, kernel, stride, padding)
        dout = np.random.default_rng(8).standard_normal(out.shape).astype(np.float32)
        return out, maxpool2d_backward(dout, cache), maxpool2d_forward(with_nan, kernel, stride, padding)[0]

    out, dx, out_nan = run()
    compiled.use_compiled(kernels != "compiled" and compiled.installed)  # the other path
    other_out, other_dx, other_out_nan = run()
    np.testing.assert_array_equal(out, other_out)
    np.testing.assert_array_equal(dx, other_dx)
    np.testing.assert_array_equal(out_nan, other_out_nan)  # NaN propagates, as in PyTorch
    assert np.isnan(out_nan[0, 1]).any() and np.isnan(out_nan[1, 2, 0, 0])


def _random_pool(rng: np.random.Generator, overlap: bool):
    """Random pooling config: padding <= kernel / 2, windows that overlap (stride < kernel) when ``overlap``,
    and sizes that usually leave a ragged edge (windows that do not tile the input)."""
    while True:
        N, C = rng.integers(1, 4), rng.integers(1, 4)
        H, W = rng.integers(1, 11), rng.integers(1, 11)
        kernel = tuple(int(k) for k in rng.integers(1, 5, size=2))
        if overlap:
            stride = tuple(int(rng.integers(1, k)) if k > 1 else 1 for k in kernel)
        else:
            stride = tuple(int(s) for s in rng.integers(1, 5, size=2))
        padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
        out_hw = pool_output_hw((H, W), kernel, stride, padding)
        if min(out_hw) >= 1:
            # A random permutation: distinct values, so the maximum of every window is unique.
            x = rng.permutation(N * C * H * W).reshape(N, C, H, W) + rng.random((N, C, H, W)) * 0.5
            return x - x.mean(), kernel, stride, padding, out_hw


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_maxpool2d_matches_naive(seed, overlap):
    rng = np.random.default_rng(seed + 1000 * overlap)
    x, kernel, stride, padding, out_hw = _random_pool(rng, overlap)
    out, cache = maxpool2d_forward(x, kernel, stride, padding)
    expected = naive.pool2d_forward(x, kernel, stride, padding, mode="max")
    assert out.shape == expected.shape == (*x.shape[:2], *out_hw)
    assert rel_error(out, expected) < TOL
    dout = rng.standard_normal(out.shape)  # (N, C, OH, OW)
    dx = maxpool2d_backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, naive.pool2d_backward(dout, x, kernel, stride, padding, mode="max")) < TOL


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
@pytest.mark.parametrize(("shape", "kernel", "padding"), [
    ((2, 3, 8, 8), (2, 2), (0, 0)),  # windows tile the input exactly
    ((2, 3, 9, 7), (2, 2), (0, 0)),  # a last row and column no window reaches: their gradient is zero
    ((3, 6, 11, 13), (3, 4), (0, 0)),  # wider than tall windows, rows and columns left over
    ((1, 4, 7, 10), (3, 2), (1, 1)),  # padding, and rows left over
])
def test_maxpool2d_tiling_windows_match_naive(shape, kernel, padding, layout):
    """Windows with stride = kernel (the compiled kernels' tiled case) leave no stale values where they end."""
    rng = np.random.default_rng(sum(shape))
    x = rng.permutation(int(np.prod(shape))).reshape(shape) + 0.25
    if layout == "channels_last":
        x = _channels_last(x)
    out, cache = maxpool2d_forward(x, kernel, kernel, padding)
    assert rel_error(out, naive.pool2d_forward(x, kernel, kernel, padding, mode="max")) < TOL
    for _ in range(3):  # freed buffers come back from malloc full of the last call's gradients
        dout = rng.standard_normal(out.shape)
        dx = maxpool2d_backward(dout, cache)
        assert rel_error(dx, naive.pool2d_backward(dout, x, kernel, kernel, padding, mode="max")) < TOL
        del dx


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("seed", range(20))
def test_avgpool2d_matches_naive(seed, overlap):
    rng = np.random.default_rng(seed + 2000 + 1000 * overlap)
    x, kernel, stride, padding, out_hw = _random_pool(rng, overlap)
    out, cache = avgpool2d_forward(x, kernel, stride, padding)
    expected = naive.pool2d_forward(x, kernel, stride, padding, mode="avg")
    assert out.shape == expected.shape == (*x.shape[:2], *out_hw)
    assert rel_error(out, expected) < TOL
    dout = rng.standard_normal(out.shape)
    dx = avgpool2d_backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, naive.pool2d_backward(dout, x, kernel, stride, padding, mode="avg")) < TOL


def test_maxpool2d_ties_route_to_first_maximum():
    x = np.zeros((1, 1, 2, 2))  # one window, four equal values
    out, cache = maxpool2d_forward(x, (2, 2), (2, 2))
    dx = maxpool2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[1.0, 0.0], [0.0, 0.0]]]])
    np.testing.assert_array_equal(dx, naive.pool2d_backward(np.ones_like(out), x, (2, 2), (2, 2), mode="max"))


def test_maxpool2d_padding_never_wins():
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3) - 100  # all negative: zero padding would win, -inf must not
    out, _ = maxpool2d_forward(x, (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(out, naive.pool2d_forward(x, (2, 2), (2, 2), (1, 1), mode="max"))
    assert (out <= -101).all()


def test_avgpool2d_counts_zero_padding():
    x = np.ones((1, 1, 2, 2))
    out, _ = avgpool2d_forward(x, (2, 2), (2, 2), (1, 1))
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 0.25))


@pytest.mark.parametrize("kernel", [(16, 16), (17, 15)])
def test_maxpool2d_large_window_argmax(kernel):
    """KH*KW >= 256 window offsets no longer fit the uint8 argmax cache."""
    rng = np.random.default_rng(5)
    x = rng.permutation(2 * 20 * 18).reshape(1, 2, 20, 18).astype(np.float64)
    out, cache = maxpool2d_forward(x, kernel, (2, 3))
    dout = rng.standard_normal(out.shape)
    assert rel_error(out, naive.pool2d_forward(x, kernel, (2, 3), mode="max")) < TOL
    assert rel_error(maxpool2d_backward(dout, cache), naive.pool2d_backward(dout, x, kernel, (2, 3), mode="max")) < TOL


@pytest.mark.parametrize("keep_cache", [True, False])
def test_pool_keep_cache(keep_cache):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 6))
    for fwd, mode in ((maxpool2d_forward, "max"), (avgpool2d_forward, "avg")):
        out, cache = fwd(x, (3, 2), (2, 2), (1, 0), keep_cache=keep_cache)
        assert (cache is not None) == keep_cache
        assert rel_error(out, naive.pool2d_forward(x, (3, 2), (2, 2), (1, 0), mode=mode)) < TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pool_keeps_dtype(dtype):
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(dtype)
    for fwd, bwd in ((maxpool2d_forward, maxpool2d_backward), (avgpool2d_forward, avgpool2d_backward)):
        out, cache = fwd(x, (3, 3), (2, 2), (1, 1))
        assert out.dtype == dtype
        assert bwd(np.ones_like(out), cache).dtype == dtype


def test_pool_output_hw():
    assert pool_output_hw((7, 8), (2, 3), (2, 2), (0, 1)) == (3, 4)
    assert pool_output_hw((5, 5), (3, 3), (1, 1), (1, 1)) == (5, 5)
    assert pool_output_hw((2, 9), (3, 1), (1, 4), (0, 0)) == (0, 3)


def test_pool_accepts_channels_last_views():
    rng = np.random.default_rng(9)
    x = np.ascontiguousarray(rng.permutation(2 * 7 * 6 * 3).reshape(2, 7, 6, 3) * 1.0).transpose(0, 3, 1, 2)
    for fwd, bwd, mode in ((maxpool2d_forward, maxpool2d_backward, "max"),
                           (avgpool2d_forward, avgpool2d_backward, "avg")):
        out, cache = fwd(x, (3, 2), (2, 1), (1, 1))
        assert rel_error(out, naive.pool2d_forward(x, (3, 2), (2, 1), (1, 1), mode=mode)) < TOL
        dout = rng.standard_normal(out.shape)
        assert rel_error(bwd(dout, cache), naive.pool2d_backward(dout, x, (3, 2), (2, 1), (1, 1), mode=mode)) < TOL


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("seed", range(10))
def test_maxpool2d_ties_match_naive(seed, overlap):
    """Few distinct values, so most windows hold tied maxima: the gradient goes to the first, in row-major
    window order, even when overlapping windows share that value."""
    rng = np.random.default_rng(seed + 3000 + 1000 * overlap)
    _, kernel, stride, padding, _ = _random_pool(rng, overlap)
    x = rng.integers(-1, 2, size=(2, 2, *rng.integers(max(kernel), 9, size=2))).astype(np.float64)
    out, cache = maxpool2d_forward(x, kernel, stride, padding)
    assert rel_error(out, naive.pool2d_forward(x, kernel, stride, padding, mode="max")) < TOL
    dout = rng.standard_normal(out.shape)
    assert rel_error(maxpool2d_backward(dout, cache), naive.pool2d_backward(dout, x, kernel, stride, padding)) < TOL
