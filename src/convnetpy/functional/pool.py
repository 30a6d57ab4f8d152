"""Fast 2D max and average pooling as a reduction over KH*KW strided slices.

Each window offset (kh, kw) picks one strided slice (N, C, OH, OW) of the padded input; the pooled output is
the elementwise max (or mean) of those KH*KW slices. No Python loop touches examples or pixels, windows may
overlap (stride < kernel) or leave a ragged edge (floor mode, as PyTorch), and the slices keep whatever
memory layout the input has (channels-last output of a convolution stays channels-last).

Semantics follow PyTorch: max pooling pads with -inf and, on ties, routes the gradient to the first maximum
in row-major window order; average pooling pads with zeros that count in the mean (count_include_pad=True).
"""

from __future__ import annotations

import numpy as np

from . import compiled
from .conv import conv_output_size
from .parallel import over_batch

Pair = tuple[int, int]


def _padded(x: np.ndarray, padding: Pair, fill: float) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), fill, dtype=x.dtype)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def _channels_last(x: np.ndarray) -> bool:
    """Whether x (N, C, H, W) is a view of contiguous channels-last memory (N, H, W, C), as convolutions write."""
    return x.transpose(0, 2, 3, 1).flags.c_contiguous


def _slices(kernel: Pair, stride: Pair, out_hw: Pair):
    """Yield the index of each window offset's strided slice, in row-major window order."""
    (KH, KW), (sh, sw), (OH, OW) = kernel, stride, out_hw
    for kh in range(KH):
        for kw in range(KW):
            yield (slice(None), slice(None), slice(kh, kh + sh * (OH - 1) + 1, sh),
                   slice(kw, kw + sw * (OW - 1) + 1, sw))


def pool_output_hw(hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    return (conv_output_size(hw[0], kernel[0], stride[0], padding[0], padding[0]),
            conv_output_size(hw[1], kernel[1], stride[1], padding[1], padding[1]))


def maxpool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
                      keep_cache: bool = True):
    """x: (N, C, H, W) -> out (N, C, OH, OW), the maximum of each window.

    The cache holds references to the padded input and the output (no copies): backward finds each
    window's first maximum again by comparing slices with the output. Windows that tile channels-last input
    take one compiled pass (``compiled.maxpool_forward_tiled``): NumPy's slices of it have contiguous runs of
    only C values, too short for its loops.
    """
    out_hw = pool_output_hw(x.shape[2:], kernel, stride, padding)
    xp = _padded(x, padding, -np.inf)
    slices = list(_slices(kernel, stride, out_hw))
    out = np.empty_like(xp[slices[0]])  # (N, C, OH, OW), in the input's memory layout

    def run(b: slice) -> None:
        xb, ob = xp[b], out[b]
        np.copyto(ob, xb[slices[0]])
        for s in slices[1:]:
            np.maximum(ob, xb[s], out=ob)

    if compiled.available() and compiled.tiles(kernel, stride) and _channels_last(xp):
        over_batch(lambda b: compiled.maxpool_forward_tiled(xp, kernel, out, b), len(x), xp.size)
    else:
        over_batch(run, len(x), xp.size)
    cache = (xp, out, x.shape, kernel, stride, padding) if keep_cache else None
    return out, cache


def maxpool2d_backward(dout: np.ndarray, cache) -> np.ndarray:
    """dout: (N, C, OH, OW) -> dx (N, C, H, W): each gradient goes to its window's first maximum."""
    xp, out, (N, C, H, W), kernel, stride, padding = cache
    ph, pw = padding
    if compiled.available():  # one compiled pass (see functional.compiled)
        if compiled.tiles(kernel, stride):  # the kernel writes every position a window covers
            dxp = np.empty_like(xp)  # same memory layout as the input
            dxp[:, :, out.shape[2] * kernel[0]:] = 0
            dxp[:, :, :, out.shape[3] * kernel[1]:] = 0
        else:
            dxp = np.zeros_like(xp)
        over_batch(lambda b: compiled.maxpool_backward(xp, out, dout, kernel, stride, dxp, b), N, xp.size)
        return dxp[:, :, ph:ph + H, pw:pw + W]
    dxp = np.zeros_like(xp)  # same memory layout as the input
    pending = np.empty_like(out)  # gradient not yet routed, in the output's memory layout;
    overlap = stride[0] < kernel[0] or stride[1] < kernel[1]
    slices = list(_slices(kernel, stride, out.shape[2:]))

    # Masks are applied by multiplying with booleans: NumPy's masked copy (copyto where=) is ~10x slower.
    def run(b: slice) -> None:
        xb, ob, db, pb = xp[b], out[b], dxp[b], pending[b]
        pb[...] = dout[b]  # zeroed window by window once its first maximum is found
        for i, s in enumerate(slices):
            hit = xb[s] == ob
            if overlap:  # a value can be the maximum of several windows: accumulate
                db[s] += hit * pb
            else:
                np.multiply(hit, pb, out=db[s])
            if i + 1 < len(slices):
                pb *= ~hit  # later ties get nothing: the first maximum wins, as PyTorch

    over_batch(run, N, xp.size)
    return dxp[:, :, ph:ph + H, pw:pw + W]


def avgpool2d_forward(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair = (0, 0),
                      keep_cache: bool = True):
    """x: (N, C, H, W) -> out (N, C, OH, OW): mean of each window, zero padding counted."""
    out_hw = pool_output_hw(x.shape[2:], kernel, stride, padding)
    xp = _padded(x, padding, 0.0)
    slices = _slices(kernel, stride, out_hw)
    out = xp[next(slices)].copy(order="K")  # keep the input's memory layout
    for s in slices:
        out += xp[s]
    out *= 1.0 / (kernel[0] * kernel[1])
    cache = (x.shape, kernel, stride, padding) if keep_cache else None
    return out, cache


def avgpool2d_backward(dout: np.ndarray, cache) -> np.ndarray:
    """dout: (N, C, OH, OW) -> dx (N, C, H, W): each window shares its gradient equally."""
    (N, C, H, W), kernel, stride, padding = cache
    ph, pw = padding
    share = dout * (1.0 / (kernel[0] * kernel[1]))
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
    for s in _slices(kernel, stride, dout.shape[2:]):
        dxp[s] += share
    return dxp[:, :, ph:ph + H, pw:pw + W]
