"""Optional compiled kernels (Numba) for the loops NumPy runs slowly; without Numba, NumPy paths are used.

The backward pass of max pooling is the case that pays: NumPy finds each window's first maximum with a
compare, a multiply and a mask update per window offset, on strided slices whose contiguous runs are only
C values long in channels-last activations, so the ufunc loops spend their time starting and stopping. One
compiled loop finds the first maximum and adds the gradient there. (The forward pass stays NumPy's maximum
of strided slices: a compiled forward measured 2x slower.) Measured on the CIFAR-10 net, batch 64, one
thread: max-pooling backward 5.6 ms -> 2.1 ms per training step (``python benchmarks/layers.py``).

Off by default since the third speed session: in a whole training step, alternating the two paths in one
process, the compiled backward saved at most 3% (CIFAR-10 net, batch 32-128, one and two threads: 63.9 vs
64.5 ms, 81.5 vs 84.1 ms; LeNet-5 was 2% faster without it), while loading Numba's compiler and code on the
first call adds about 65 MB to a training process (``python benchmarks/memory.py``: 85 MB against 20 MB for
the CIFAR-10 net at batch 64). ``install: pip install 'convnetpy[fast]'``, then ``use_compiled(True)``;
tests compare both paths.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the NumPy paths do the same work
    numba = None

_enabled = False  # opt in with use_compiled(True); see the module docstring


def available() -> bool:
    """True when Numba is installed and compiled kernels are switched on."""
    return _enabled


def use_compiled(on: bool) -> None:
    """Switch the compiled kernels on or off (on needs Numba)."""
    global _enabled
    if on and numba is None:
        raise RuntimeError("compiled kernels need Numba: pip install 'convnetpy[fast]'")
    _enabled = bool(on)


def _maxpool_backward(xp, out, dout, kernel_h, kernel_w, stride_h, stride_w, dxp):
    """Adds each dout (N, OH, OW, C) to the first position of its window in xp (N, Hp, Wp, C) that holds the
    window's maximum ``out`` (N, OH, OW, C), as PyTorch routes ties; dxp (N, Hp, Wp, C) is zeroed by the caller.

    The same steps as the NumPy path (a gradient still pending is routed to the first position equal to the
    maximum, then cleared), written branch-free over contiguous channels so that the compiler vectorises them.
    """
    N, OH, OW, C = out.shape
    pending = np.empty(C, dout.dtype)  # (C,) gradient of the current window not yet routed
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                h0, w0 = oh * stride_h, ow * stride_w
                for c in range(C):
                    pending[c] = dout[n, oh, ow, c]
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        for c in range(C):
                            hit = xp[n, h0 + kh, w0 + kw, c] == out[n, oh, ow, c]
                            dxp[n, h0 + kh, w0 + kw, c] += pending[c] if hit else 0.0
                            pending[c] = 0.0 if hit else pending[c]


if numba is not None:
    # nogil: the caller splits the batch over threads (functional.parallel.over_batch); cache: compile once.
    _maxpool_backward = numba.njit(nogil=True, cache=True)(_maxpool_backward)


def _nhwc(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> the channels-last view (N, H, W, C); contiguous when the memory is channels-last."""
    return a.transpose(0, 2, 3, 1)


def maxpool_backward(xp: np.ndarray, out: np.ndarray, dout: np.ndarray, kernel, stride, dxp: np.ndarray,
                     batch: slice) -> None:
    """Routes dout (N, C, OH, OW) of the examples ``batch`` to each window's first maximum in dxp (N, C, Hp, Wp)."""
    _maxpool_backward(_nhwc(xp[batch]), _nhwc(out[batch]), _nhwc(dout[batch]), kernel[0], kernel[1], stride[0],
                      stride[1], _nhwc(dxp[batch]))
