"""The compiled (Numba) kernels: which convolutions they take, and results independent of the thread count.

Their agreement with the naive loops and with the NumPy kernels is tested in test_conv.py and test_pool.py.
"""

from __future__ import annotations

import subprocess
import sys

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
    (6, 5, 10, True, True),  # rows of 14 for 10 output columns, as in LeNet-5's second layer
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


@pytest.mark.parametrize("rows", range(1, 10))
def test_dot_tiles_cover_every_tile_shape(rows):
    """Four-by-four tiles, 4 x 2 and 2 x 4 tiles for two rows or columns left over, 4 x 1 and 1 x 4 for one,
    and the corner: every (rows, columns) up to 9 x 9 against NumPy, each product added exactly once."""
    compiled._compile()
    rng = np.random.default_rng(rows)
    length = 37
    a, b = rng.standard_normal(200), rng.standard_normal(200)  # rows are overlapping windows into these
    for columns in range(1, 10):
        a_starts, b_starts = rng.integers(0, 200 - length, rows), rng.integers(0, 200 - length, columns)
        out = rng.standard_normal((rows, columns))
        want = out + np.array([[a[i:i + length] @ b[j:j + length] for j in b_starts] for i in a_starts])
        compiled._dot_tiles(a, a_starts, b, b_starts, length, out)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_numba_comes_without_scipy_which_stays_importable():
    """Numba would import SciPy (15 MB resident) to offer BLAS that the kernels never call. In a fresh process:
    the kernels run without it, and compiled code of the user's own that needs it still gets it."""
    pytest.importorskip("scipy")
    script = """
import sys
import numpy as np
from convnetpy.functional import compiled, conv2d_forward
compiled.use_compiled(True)
conv2d_forward(np.ones((2, 16, 8, 8), np.float32), np.ones((4, 16, 3, 3), np.float32), None)
assert "numba" in sys.modules and "scipy" not in sys.modules, sorted(m for m in sys.modules if "scipy" in m)
import numba
dot = numba.njit(lambda a, b: np.dot(a, b))
assert dot(np.eye(3), np.full((3, 3), 2.0)).sum() == 18.0
assert "scipy.linalg.cython_blas" in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_use_compiled_without_numba_names_the_package(monkeypatch):
    monkeypatch.setattr(compiled, "installed", False)
    with pytest.raises(RuntimeError, match="pip install numba"):
        compiled.use_compiled(True)
