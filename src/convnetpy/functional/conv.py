"""Fast 2D convolution: im2col through a strided view, then one BLAS matmul.

The public layout is PyTorch's NCHW, but inside the kernel images are channels-last (N, H, W, C): each
im2col row then copies contiguous runs of KW*C values, the whole batch is one large
(N*OH*OW, KH*KW*C) @ (KH*KW*C, F) matmul, and col2im adds contiguous (OW, C) blocks. The output is returned
as an NCHW *view* of channels-last memory, so ReLU and pooling keep that layout and the next convolution
reads its input without a transpose copy.

1D convolution is the same kernel with H = 1 (see ``conv1d_*``).

Output size per spatial axis (PyTorch's formula, with explicit before/after padding):
    out = (in + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .parallel import over_batch

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    """Output length along one axis; <= 0 means the window does not fit."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow 'same': output ceil(size / stride), the odd pixel of padding goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def scratch(workspace: dict | None, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised buffer, reused from ``workspace`` between steps when the shape matches.

    Reuse spares the allocator: glibc hands large buffers back to the OS after every free, and fresh
    pages cost a page fault each on first touch (a few milliseconds per step for the CIFAR-10 net).
    Only buffers that never leave the kernel (padded input, im2col columns, col2im blocks) live here.
    """
    if workspace is None:
        return np.empty(shape, dtype)
    buf = workspace.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = workspace[name] = np.empty(shape, dtype)
    return buf


def _pad_channels_last(x: np.ndarray, pads: Pads, workspace: dict | None = None) -> np.ndarray:
    """(N, C, H, W) -> zero-padded channels-last copy (N, H + pt + pb, W + pl + pr, C)."""
    N, C, H, W = x.shape
    pt, pb, pl, pr = pads
    xp = scratch(workspace, "padded", (N, H + pt + pb, W + pl + pr, C), x.dtype)
    # Zero only the border; the interior is overwritten just below.
    xp[:, :pt] = 0
    xp[:, pt + H:] = 0
    xp[:, pt:pt + H, :pl] = 0
    xp[:, pt:pt + H, pl + W:] = 0
    x_nhwc = x.transpose(0, 2, 3, 1)  # a view; the copy below does the transposition
    over_batch(lambda b: np.copyto(xp[b, pt:pt + H, pl:pl + W], x_nhwc[b]), N, x.size)
    return xp


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Strided view of every receptive field: (N, OH, OW, KH, KW, C), no copy."""
    (KH, KW), (sh, sw), (dh, dw), (OH, OW) = kernel, stride, dilation, out_hw
    span = (dh * (KH - 1) + 1, dw * (KW - 1) + 1)
    view = sliding_window_view(xp, span, axis=(1, 2))  # (N, H', W', C, spanH, spanW)
    view = view[:, : sh * (OH - 1) + 1: sh, : sw * (OW - 1) + 1: sw, :, ::dh, ::dw]
    return view.transpose(0, 1, 2, 4, 5, 3)


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   stride: Pair = (1, 1), pads: Pads = (0, 0, 0, 0), dilation: Pair = (1, 1),
                   keep_cache: bool = True, workspace: dict | None = None):
    """2D cross-correlation, as ``torch.nn.functional.conv2d``.

    x: (N, C, H, W); weight: (F, C, KH, KW); bias: (F,) or None.
    Returns out (N, F, OH, OW) and a cache for ``conv2d_backward`` (None when ``keep_cache`` is False).
    ``workspace``: a dict owned by the caller in which scratch buffers are kept between calls; the cache
    refers to them, so a later call with the same workspace invalidates an earlier cache.
    """
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH = conv_output_size(H, KH, stride[0], pads[0], pads[1], dilation[0])
    OW = conv_output_size(W, KW, stride[1], pads[2], pads[3], dilation[1])
    xp = _pad_channels_last(x, pads, workspace)  # (N, Hp, Wp, C)
    cols = scratch(workspace, "cols", (N, OH, OW, KH, KW, C), x.dtype)
    windows = _windows(xp, (KH, KW), stride, dilation, (OH, OW))
    over_batch(lambda b: np.copyto(cols[b], windows[b]), N, cols.size)  # im2col
    cols = cols.reshape(N * OH * OW, KH * KW * C)  # (M, K)
    w2 = weight.transpose(2, 3, 1, 0).reshape(KH * KW * C, F)  # (K, F), rows ordered like cols
    out = cols @ w2  # (M, F)
    if bias is not None:
        out += bias
    out = out.reshape(N, OH, OW, F).transpose(0, 3, 1, 2)  # NCHW view of channels-last memory
    cache = (cols, w2, x.shape, weight.shape, stride, pads, dilation, bias is not None) if keep_cache else None
    return out, cache


def conv2d_backward(dout: np.ndarray, cache, input_grad: bool = True, workspace: dict | None = None):
    """Gradients of ``conv2d_forward``.

    dout: (N, F, OH, OW). Returns dx (N, C, H, W) or None when ``input_grad`` is False (a net's first
    layer needs no input gradient), dweight (F, C, KH, KW) and dbias (F,) or None.
    """
    cols, w2, (N, C, H, W), (F, _, KH, KW), stride, pads, dilation, has_bias = cache
    _, _, OH, OW = dout.shape
    d = dout.transpose(0, 2, 3, 1).reshape(N * OH * OW, F)  # (M, F); free when dout is channels-last
    dweight = (d.T @ cols).reshape(F, KH, KW, C).transpose(0, 3, 1, 2)  # (F, C, KH, KW)
    dbias = d.sum(axis=0) if has_bias else None
    if not input_grad:
        return None, np.ascontiguousarray(dweight), dbias
    # col2im: one batched matmul gives, for each kernel offset (kh, kw), the contribution (N, OH, OW, C)
    # of every output pixel to its input pixel; each is added to a strided slice of the padded input.
    # Laid out offset-major, every block is contiguous, so the adds stream through memory.
    w3 = w2.reshape(KH * KW, C, F).transpose(0, 2, 1)  # (KH*KW, F, C)
    dblocks = scratch(workspace, "dblocks", (KH * KW, N * OH * OW, C), dout.dtype)
    np.matmul(d, w3, out=dblocks)
    dblocks = dblocks.reshape(KH, KW, N, OH, OW, C)
    pt, pb, pl, pr = pads
    (sh, sw), (dh, dw) = stride, dilation
    dxp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=dout.dtype)  # (N, Hp, Wp, C)

    def col2im(b: slice) -> None:
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dh, kw * dw
                dxp[b, h0: h0 + sh * (OH - 1) + 1: sh, w0: w0 + sw * (OW - 1) + 1: sw] += dblocks[kh, kw, b]

    over_batch(col2im, N, dblocks.size)
    dx = dxp[:, pt:pt + H, pl:pl + W].transpose(0, 3, 1, 2)  # (N, C, H, W) view
    return dx, np.ascontiguousarray(dweight), dbias


def conv1d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int = 1,
                   pads: tuple[int, int] = (0, 0), dilation: int = 1, keep_cache: bool = True,
                   workspace: dict | None = None):
    """1D cross-correlation as ``torch.nn.functional.conv1d``: x (N, C, L), weight (F, C, K) -> (N, F, OL)."""
    out, cache = conv2d_forward(x[:, :, None, :], weight[:, :, None, :], bias, (1, stride),
                                (0, 0, pads[0], pads[1]), (1, dilation), keep_cache, workspace)
    return out[:, :, 0, :], cache


def conv1d_backward(dout: np.ndarray, cache, input_grad: bool = True, workspace: dict | None = None):
    """Gradients of ``conv1d_forward``: dout (N, F, OL) -> dx (N, C, L), dweight (F, C, K), dbias (F,)."""
    dx, dweight, dbias = conv2d_backward(dout[:, :, None, :], cache, input_grad, workspace)
    return (None if dx is None else dx[:, :, 0, :]), dweight[:, :, 0, :], dbias
