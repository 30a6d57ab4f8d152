"""Optional compiled kernels (Numba) for the loops NumPy runs slowly; without Numba, NumPy paths are used.

Max pooling is the case that pays: NumPy takes the maximum of KH*KW strided slices, and on channels-last
activations each slice's contiguous runs are only C values long, so the ufunc loops spend their time
starting and stopping. A compiled loop reads each input once and records where each maximum came from,
which makes the backward pass a plain scatter. Measured on the CIFAR-10 net, batch 64: the three pooling
layers went from ~8 ms to ~1.5 ms per training step (``python benchmarks/layers.py``).

``install: pip install 'convnetpy[fast]'``. ``use_compiled(False)`` switches back to NumPy (tests compare both).
"""

from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError:  # the NumPy paths do the same work
    numba = None

_enabled = numba is not None


def available() -> bool:
    """True when Numba is installed and compiled kernels are switched on."""
    return _enabled


def use_compiled(on: bool) -> None:
    """Switch the compiled kernels on or off (on needs Numba)."""
    global _enabled
    if on and numba is None:
        raise RuntimeError("compiled kernels need Numba: pip install 'convnetpy[fast]'")
    _enabled = bool(on)


def _maxpool_forward(xp, kernel_h, kernel_w, stride_h, stride_w, out, argmax):
    """xp: (N, Hp, Wp, C) padded input -> out (N, OH, OW, C) and the argmax offset kh*KW + kw of each window.

    Channels-last, so the innermost loop runs over contiguous channels (convolution outputs are laid out so).
    The first maximum in row-major window order wins ties (as PyTorch); a NaN counts as the maximum.
    """
    N, OH, OW, C = out.shape
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                h0, w0 = oh * stride_h, ow * stride_w
                for c in range(C):
                    out[n, oh, ow, c] = xp[n, h0, w0, c]
                    argmax[n, oh, ow, c] = 0
                for kh in range(kernel_h):
                    for kw in range(kernel_w):
                        k = kh * kernel_w + kw
                        for c in range(C):
                            v = xp[n, h0 + kh, w0 + kw, c]
                            if v > out[n, oh, ow, c] or v != v:
                                out[n, oh, ow, c] = v
                                argmax[n, oh, ow, c] = k


def _maxpool_backward(dout, argmax, kernel_w, stride_h, stride_w, dxp):
    """Adds each dout (N, OH, OW, C) to its window's argmax position in dxp (N, Hp, Wp, C), zeroed by the caller."""
    N, OH, OW, C = dout.shape
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                for c in range(C):
                    k = argmax[n, oh, ow, c]
                    dxp[n, oh * stride_h + k // kernel_w, ow * stride_w + k % kernel_w, c] += dout[n, oh, ow, c]


if numba is not None:
    # nogil: the caller splits the batch over threads (functional.parallel.over_batch); cache: compile once.
    _maxpool_forward = numba.njit(nogil=True, cache=True)(_maxpool_forward)
    _maxpool_backward = numba.njit(nogil=True, cache=True)(_maxpool_backward)


def _nhwc(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> the channels-last view (N, H, W, C); contiguous when the memory is channels-last."""
    return a.transpose(0, 2, 3, 1)


def maxpool_forward(xp: np.ndarray, kernel, stride, out: np.ndarray, argmax: np.ndarray, batch: slice) -> None:
    """Max pooling of the examples ``batch`` of xp (N, C, Hp, Wp) into out and argmax (N, C, OH, OW)."""
    _maxpool_forward(_nhwc(xp[batch]), kernel[0], kernel[1], stride[0], stride[1], _nhwc(out[batch]),
                     _nhwc(argmax[batch]))


def maxpool_backward(dout: np.ndarray, argmax: np.ndarray, kernel, stride, dxp: np.ndarray, batch: slice) -> None:
    """Routes dout (N, C, OH, OW) of the examples ``batch`` to the argmax positions in dxp (N, C, Hp, Wp)."""
    _maxpool_backward(_nhwc(dout[batch]), _nhwc(argmax[batch]), kernel[1], stride[0], stride[1], _nhwc(dxp[batch]))
