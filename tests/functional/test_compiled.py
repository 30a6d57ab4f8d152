"""The compiled (Numba) kernels: which convolutions they take, and results independent of the thread count.

Their agreement with the naive loops and with the NumPy kernels is tested in test_conv.py and test_pool.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from convnetpy.functional import compiled, conv2d_backward, conv2d_forward, parallel

pytestmark = pytest.mark.skipif(not compiled.installed, reason="Numba is not installed")


@pytest.fixture(autouse=True)
def compiled_on():
    before = compiled.available()
    compiled.use_compiled(True)
    yield
    compiled.use_compiled(before)


def test_compiled_kernels_take_the_nets_convolutions(monkeypatch):
    """With Numba, the CIFAR-10 net's second convolution runs compiled forward and backward (so the tests
    above test compiled code), and the results do not depend on the number of threads."""
    calls = []
    for name in ("conv_forward", "conv_weight_grad"):
        original = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 16, 16, 16), dtype=np.float32)
    weight = rng.standard_normal((20, 16, 5, 5), dtype=np.float32)
    dout = rng.standard_normal((6, 20, 16, 16), dtype=np.float32)
    results = {}
    for threads in (1, 2, 3):
        before = parallel.get_num_threads()
        parallel.set_num_threads(threads)
        try:
            out, cache = conv2d_forward(x, weight, None, (1, 1), (2, 2, 2, 2))
            results[threads] = (out, *conv2d_backward(dout, cache)[:2])
        finally:
            parallel.set_num_threads(before)
    assert "conv_forward" in calls and "conv_weight_grad" in calls
    for threads in (2, 3):
        for got, want in zip(results[threads], results[1]):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("channels", "kernel", "width", "compiled_forward", "compiled_weight_grad"), [
    (16, 5, 16, True, True),  # the CIFAR-10 net's second layer
    (20, 5, 8, True, False),  # its third: rows of 12 for 8 output columns, too wide for the weight gradient
    (3, 3, 32, False, True),  # a reduction of 27: BLAS
])
def test_compiled_kernels_are_chosen_by_shape(monkeypatch, channels, kernel, width, compiled_forward,
                                              compiled_weight_grad):
    calls = []
    for name in ("conv_forward", "conv_weight_grad"):
        original = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    x = np.ones((2, channels, width, width), np.float32)
    pad = kernel // 2
    out, cache = conv2d_forward(x, np.ones((8, channels, kernel, kernel), np.float32), None, (1, 1), (pad,) * 4)
    conv2d_backward(np.ones(out.shape, np.float32), cache, input_grad=False)
    assert ("conv_forward" in calls) == compiled_forward
    assert ("conv_weight_grad" in calls) == compiled_weight_grad


def test_use_compiled_without_numba_names_the_package(monkeypatch):
    monkeypatch.setattr(compiled, "installed", False)
    with pytest.raises(RuntimeError, match="pip install numba"):
        compiled.use_compiled(True)
