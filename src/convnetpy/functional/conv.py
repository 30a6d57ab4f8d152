"""Fast 2D convolution: im2col through a strided view, then one BLAS matmul.

The public layout is PyTorch's NCHW, but inside the kernel images are channels-last (N, H, W, C): each
im2col row then copies contiguous runs of KW*C values, the whole batch is one large
(N*OH*OW, KH*KW*C) @ (KH*KW*C, F) matmul, and col2im adds contiguous (OW, C) blocks. The output is returned
as an NCHW *view* of channels-last memory, so ReLU and pooling keep that layout and the next convolution
reads its input without a transpose copy. Each im2col row usually covers two neighbouring output pixels
(``PIXEL_GROUP``): the matmul is then (N*OH*OW/2, KH*(KW+S)*C) @ (KH*(KW+S)*C, 2F), twice as wide.

Grey inputs (C <= 2, the first layer of the MNIST nets) take the planar path instead: channels-last would
give im2col runs of only KW*C values, while planar (N, C, H, W) rows give runs of OW. The columns are then
(C*KH*KW, OH*OW) per image, and the matmul reads them transposed, (OH*OW, C*KH*KW) @ (C*KH*KW, F), so the
output is channels-last like the other path's.

1D convolution is the same kernel with H = 1 (see ``conv1d_*``).

Where Numba is installed, the compiled kernels of ``functional.compiled`` take the passes they do faster
(``_compiled_forward``, ``_compiled_weight_grad``): dot products over contiguous runs, no im2col, compiled for
the CPU at hand. The NumPy kernels here stay the fallback, and the tests run both.

Output size per spatial axis (PyTorch's formula, with explicit before/after padding):
    out = (in + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from . import compiled
from .parallel import over_batch, over_chunks

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


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair, pixels: int = 1) -> np.ndarray:
    """Strided view of every receptive field: (N, OH, OW, KH, KW, C), no copy.

    Without dilation along W, each kernel row's KW*C values are one contiguous run of xp, and the view says
    so: (N, OH, OW, KH, KW*C). Copying it (im2col) then moves runs of KW*C values instead of C, which is
    what makes the first layer's im2col fast (C = 1 or 3). With ``pixels`` > 1, one row of the view covers
    that many neighbouring output pixels along W: (N, OH, OW / pixels, KH, width*C), width the columns they
    span together (see ``_pixel_group``).
    """
    (KH, KW), (sh, sw), (dh, dw), (OH, OW) = kernel, stride, dilation, out_hw
    if dw == 1:
        sN, sH, sW, sC = xp.strides
        width = _group_width(KW, sw, pixels)
        return as_strided(xp, (xp.shape[0], OH, OW // pixels, KH, width * xp.shape[3]),
                          (sN, sH * sh, sW * sw * pixels, sH * dh, sC), writeable=False)
    span = (dh * (KH - 1) + 1, dw * (KW - 1) + 1)
    view = sliding_window_view(xp, span, axis=(1, 2))  # (N, H', W', C, spanH, spanW)
    view = view[:, : sh * (OH - 1) + 1: sh, : sw * (OW - 1) + 1: sw, :, ::dh, ::dw]
    return view.transpose(0, 1, 2, 4, 5, 3)


# Neighbouring output pixels computed by one im2col row. A pair of pixels shares most of its receptive field:
# one row of KH x (KW + stride) x C values against a (.., 2F) weight matrix with the kernel placed twice,
# shifted by the stride, zeros elsewhere. That is 20% more multiply-adds for a 5x5 kernel, but twice the
# matmul's width (F = 16-20 is narrow for BLAS) and 40% less im2col copying. Measured on the CIFAR-10 net,
# 32 images, one thread, im2col and matmul: first layer 2.05 -> 1.19 ms, second 1.79 -> 1.51, third
# 0.53 -> 0.46.
PIXEL_GROUP = 2


def _group_width(kernel_w: int, stride_w: int, pixels: int) -> int:
    """Input columns that ``pixels`` neighbouring output pixels read together: the kernel, plus one stride
    per extra pixel."""
    return kernel_w + (pixels - 1) * stride_w


def _pixel_group(out_w: int, dilation_w: int) -> int:
    """Output pixels per im2col row: PIXEL_GROUP when the row's width divides evenly, else 1."""
    return PIXEL_GROUP if dilation_w == 1 and out_w % PIXEL_GROUP == 0 else 1


def _grouped_weight(weight: np.ndarray, stride_w: int, pixels: int) -> np.ndarray:
    """(F, C, KH, KW) -> (KH*width*C, pixels*F): pixel p's kernel sits p*stride_w columns to the right."""
    F, C, KH, KW = weight.shape
    width = _group_width(KW, stride_w, pixels)
    grouped = np.zeros((KH, width, C, pixels, F), weight.dtype)
    for p in range(pixels):
        grouped[:, p * stride_w: p * stride_w + KW, :, p, :] = weight.transpose(2, 3, 1, 0)  # (KH, KW, C, F)
    return grouped.reshape(KH * width * C, pixels * F)


def _ungrouped_weight_grad(grouped: np.ndarray, weight_shape, stride_w: int, pixels: int) -> np.ndarray:
    """The gradient of ``_grouped_weight``'s result (pixels*F, KH*width*C) -> (F, C, KH, KW): the sum over
    the pixels of each one's kernel-sized block."""
    F, C, KH, KW = weight_shape
    width = _group_width(KW, stride_w, pixels)
    blocks = grouped.reshape(pixels, F, KH, width, C)
    dweight = blocks[0, :, :, :KW].copy()  # (F, KH, KW, C)
    for p in range(1, pixels):
        dweight += blocks[p, :, :, p * stride_w: p * stride_w + KW]
    return dweight.transpose(0, 3, 1, 2)


# Images per im2col chunk: about 1 MiB of columns, so the matmul reads them from cache, not memory, right after
# they are written. Measured on the CIFAR-10 net (batch 64): 20-35% faster than one batch-wide matmul.
CHUNK_BYTES = 1 << 20


def _chunk_images(bytes_per_image: int) -> int:
    """Images per chunk: about CHUNK_BYTES of columns, at least one image."""
    return max(1, CHUNK_BYTES // max(bytes_per_image, 1))


# Inputs with at most this many channels use the planar kernel (see the module docstring). Measured at batch 64,
# one thread (alternating runs): LeNet-5 inference 7.1 -> 4.9 ms, training 16.6 -> 15.7 ms; for the CIFAR-10
# net's first layer (C = 3) it made no difference to training, so it stays channels-last.
PLANAR_MAX_CHANNELS = 2


def conv2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                   stride: Pair = (1, 1), pads: Pads = (0, 0, 0, 0), dilation: Pair = (1, 1),
                   keep_cache: bool = True, workspace: dict | None = None):
    """2D cross-correlation, as ``torch.nn.functional.conv2d``.

    x: (N, C, H, W); weight: (F, C, KH, KW); bias: (F,) or None.
    Returns out (N, F, OH, OW) and a cache for ``conv2d_backward`` (None when ``keep_cache`` is False).
    The batch is processed a chunk of images at a time: im2col the chunk, then one matmul while the columns
    are still in cache; the chunks are spread over the threads. Each chunk's columns go after its matmul:
    with ``keep_cache`` the cache keeps the padded input's windows (a view), and the backward pass makes
    the columns again, chunk by chunk, for the weight gradient.
    ``workspace``: a dict owned by the caller in which scratch buffers are kept between calls; the cache
    refers to them, so a later call with the same workspace invalidates an earlier cache.
    """
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    OH = conv_output_size(H, KH, stride[0], pads[0], pads[1], dilation[0])
    OW = conv_output_size(W, KW, stride[1], pads[2], pads[3], dilation[1])
    if C <= PLANAR_MAX_CHANNELS:
        return _conv2d_forward_planar(x, weight, bias, stride, pads, dilation, (OH, OW), keep_cache, workspace)
    g = _pixel_group(OW, dilation[1])
    xp = _pad_channels_last(x, pads, workspace)  # (N, Hp, Wp, C)
    windows = _windows(xp, (KH, KW), stride, dilation, (OH, OW), g)  # (N, OH, OW/g, KH, width*C), or unmerged
    cache = (("channels_last", windows, weight, x.shape, stride, pads, dilation, bias is not None, xp)
             if keep_cache else None)
    if _compiled_forward(C * KH * KW, dilation):
        weights = compiled.conv_weights(weight, bias)  # laid out for the kernel that runs
        out = np.empty((N, OH, OW, F), dtype=x.dtype)  # channels-last
        over_batch(lambda b: compiled.conv_forward(xp, weights, KH, stride, dilation[0], out, b), N, out.size * KH)
        return out.transpose(0, 3, 1, 2), cache  # NCHW view of channels-last memory
    w2 = _grouped_weight(weight, stride[1], g)  # (K, g*F), rows ordered like the columns
    P, K = OH * OW // g, w2.shape[0]  # im2col rows per image, row length
    out = np.empty((N * P, g * F), dtype=x.dtype)  # (N*OH*OW/g, g*F): channels-last rows of g pixels

    def run(images: slice) -> None:  # im2col of a chunk of images, then its matmul while the columns are in cache
        c = _im2col(windows, images)
        np.matmul(c.reshape(-1, K), w2, out=out[images.start * P: images.stop * P])

    over_chunks(run, N, _chunk_images(P * K * x.itemsize))
    out = out.reshape(N, OH, OW, F)
    if bias is not None:
        out += bias
    return out.transpose(0, 3, 1, 2), cache  # NCHW view of channels-last memory


# Reductions (C*KH*KW) shorter than this stay with BLAS: the compiled dot products end each output value with a
# sum across vector lanes, which short reductions do not repay. Measured forward passes at batch 64, one
# thread, BLAS vs compiled: 3 -> 16 channels, 3x3 (27): 1.18 vs 1.69 ms; 8 -> 8, 3x3 (72): 0.39 vs 0.40;
# 3 -> 16, 5x5 (75): 2.34 vs 2.29; 16 -> 32, 3x3 (144): 1.87 vs 1.27; 16 -> 20, 5x5 (400): 3.3 vs 1.8.
COMPILED_MIN_REDUCTION = 64


def _compiled_forward(reduction: int, dilation: Pair) -> bool:
    """Whether the compiled convolution (``compiled.conv_forward``) runs this forward pass."""
    return compiled.available() and dilation[1] == 1 and reduction >= COMPILED_MIN_REDUCTION


def _im2col(windows: np.ndarray, images: slice) -> np.ndarray:
    """The im2col columns of ``images``: a fresh contiguous copy of their windows."""
    return np.ascontiguousarray(windows[images])


def _conv2d_forward_planar(x, weight, bias, stride, pads, dilation, out_hw, keep_cache, workspace):
    """``conv2d_forward`` for few input channels: planar im2col (N, C*KH*KW, OH*OW), one matmul per image."""
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    (OH, OW), (pt, pb, pl, pr) = out_hw, pads
    (sh, sw), (dh, dw) = stride, dilation
    P, K = OH * OW, C * KH * KW
    xp = scratch(workspace, "padded", (N, C, H + pt + pb, W + pl + pr), x.dtype)  # (N, C, Hp, Wp)
    xp[...] = 0
    xp[:, :, pt:pt + H, pl:pl + W] = x
    span = (dh * (KH - 1) + 1, dw * (KW - 1) + 1)
    windows = sliding_window_view(xp, span, axis=(2, 3))[:, :, : sh * (OH - 1) + 1: sh, : sw * (OW - 1) + 1: sw,
                                                          ::dh, ::dw]  # (N, C, OH, OW, KH, KW)
    windows = windows.transpose(0, 1, 4, 5, 2, 3)  # (N, C, KH, KW, OH, OW): rows run along OW
    w2 = weight.reshape(F, K)  # (F, C*KH*KW), rows ordered like the columns
    out = np.empty((N, P, F), dtype=x.dtype)  # (N, OH*OW, F): channels-last

    def run(images: slice) -> None:  # im2col of a chunk of images, then its matmuls while the columns are in cache
        c = _im2col(windows, images)
        np.matmul(c.reshape(-1, K, P).transpose(0, 2, 1), w2.T, out=out[images])  # (P, K) @ (K, F) per image

    if compiled.available() and stride == (1, 1):  # adds the bias itself
        out4, b4 = out.reshape(N, OH, OW, F), np.zeros(F, x.dtype) if bias is None else bias.astype(x.dtype)  # (F,)
        over_batch(lambda b: compiled.conv_forward_planar(xp, weight, b4, dilation, out4, b), N, out.size * K)
    else:
        over_chunks(run, N, _chunk_images(P * K * x.itemsize))
        if bias is not None:
            out += bias
    cache = ("planar", windows, weight, x.shape, stride, pads, dilation, bias is not None, xp) if keep_cache else None
    return out.reshape(N, OH, OW, F).transpose(0, 3, 1, 2), cache  # NCHW view of channels-last memory


def conv2d_backward(dout: np.ndarray, cache, input_grad: bool = True, workspace: dict | None = None):
    """Gradients of ``conv2d_forward``.

    dout: (N, F, OH, OW). Returns dx (N, C, H, W) or None when ``input_grad`` is False (a net's first
    layer needs no input gradient), dweight (F, C, KH, KW) and dbias (F,) or None.
    """
    layout, windows, weight, (N, C, H, W), stride, pads, dilation, has_bias, xp = cache
    F, _, KH, KW = weight.shape
    _, _, OH, OW = dout.shape
    P, K = OH * OW, KH * KW * C
    d = dout.transpose(0, 2, 3, 1).reshape(N * P, F)  # (M, F); free when dout is channels-last
    if _compiled_weight_grad(stride, OW, KW, dilation[1]):
        xp_nchw = xp.transpose(0, 3, 1, 2) if layout == "channels_last" else xp  # (N, C, Hp, Wp) view
        dweight = compiled.conv_weight_grad(dout, xp_nchw, (KH, KW), dilation, COMPILED_CHUNK)
    else:
        dweight = _weight_grad(d, windows, layout, (F, C, KH, KW), stride[1], (OH, OW))
    # A matrix-vector product sums the rows ~6x faster than d.sum(axis=0) for the first layer's tall d.
    dbias = np.ones(len(d), dtype=d.dtype) @ d if has_bias else None
    if not input_grad:
        return None, np.ascontiguousarray(dweight), dbias
    full = _full_pads(weight.shape, pads, dilation)
    # As a convolution, dx costs an im2col of dout, (H*W) x (KH*KW*F) per image; col2im's blocks cost
    # (OH*OW) x (KH*KW*C). Take the convolution unless it is much larger (LeNet-5's second layer: 5x).
    # The compiled convolution copies only KH times the output gradient, so it always takes the convolution.
    compiled_dx = F > PLANAR_MAX_CHANNELS and _compiled_forward(F * KH * KW, dilation)
    if stride == (1, 1) and min(full) >= 0 and (compiled_dx or H * W * F <= 2 * OH * OW * C):
        dx = _input_grad_by_convolution(dout, weight, full, dilation, workspace)
    else:
        w2 = weight.transpose(2, 3, 1, 0).reshape(K, F)  # (K, F), rows ordered (kh, kw, c)
        dx = _input_grad_by_col2im(d, w2, (N, C, H, W), (OH, OW), (KH, KW), stride, pads, dilation, workspace)
    return dx, np.ascontiguousarray(dweight), dbias


# The compiled weight gradient reads rows as wide as the padded input, of which only the output's width counts
# (the rest is multiplied by zeros). Measured at batch 64, one thread, BLAS vs compiled: 3 -> 16 channels, 32x32
# (rows of 36 for 32): 2.74 vs 1.63 ms; 16 -> 20, 16x16 (20 for 16): 3.59 vs 2.00 ms; 20 -> 20, 8x8 (12 for 8):
# 0.98 vs 1.13 ms. LeNet-5's second layer, 6 -> 16, 10x10 (14 for 10), at batch 32: 0.241 vs 0.222 ms, and a
# training step on one thread, b64 4.02 -> 3.96 ms, b128 7.48 -> 7.40 ms (alternating, with 4 x 2 tiles).
COMPILED_MAX_WIDENING = 1.4


def _compiled_weight_grad(stride: Pair, out_w: int, kernel_w: int, dilation_w: int) -> bool:
    """Whether ``compiled.conv_weight_grad`` computes this weight gradient: stride 1, rows not too much wider
    than the output."""
    widening = (out_w + (kernel_w - 1) * dilation_w) / out_w
    return compiled.available() and stride == (1, 1) and widening <= COMPILED_MAX_WIDENING


# Images per partial sum of the compiled weight gradient: enough to share the work between threads, few
# enough partial sums to add up.
COMPILED_CHUNK = 8


def _weight_grad(d: np.ndarray, windows: np.ndarray, layout: str, weight_shape, stride_w: int,
                 out_hw: Pair) -> np.ndarray:
    """dweight (F, C, KH, KW) from d (N*OH*OW, F) and the forward pass's windows, a chunk of images at a time.

    The forward pass keeps no columns (for the CIFAR-10 net at batch 64 they would be 54 MB, 25x the inputs);
    each chunk's columns are made again here and used while they are in cache. The chunks' partial sums are
    added in chunk order, whatever thread computed them.
    """
    F, C, KH, KW = weight_shape
    N = len(d) // (out_hw[0] * out_hw[1])
    if layout == "planar":  # windows (N, C, KH, KW, OH, OW)
        g, P, K = 1, out_hw[0] * out_hw[1], C * KH * KW
    else:  # windows (N, OH, OW/g, KH, width*C): rows of g neighbouring output pixels, as in the forward pass
        g = out_hw[1] // windows.shape[2]
        P, K = out_hw[0] * windows.shape[2], math.prod(windows.shape[3:])
    d = d.reshape(N * P, g * F)  # free: a row's g pixels are neighbours in channels-last memory
    step = _chunk_images(P * K * d.itemsize)
    partial = np.empty((-(-N // step), g * F, K), dtype=d.dtype)  # (chunks, g*F, K)

    def grad(images: slice) -> None:
        rows = d[images.start * P: images.stop * P]  # (n*P, g*F)
        c = _im2col(windows, images)
        if layout == "planar":  # columns (n, C, KH, KW, OH, OW): per image (F, P) @ (P, K), summed
            c = c.reshape(-1, K, P)
            np.sum(rows.reshape(-1, P, F).transpose(0, 2, 1) @ c.transpose(0, 2, 1), axis=0,
                   out=partial[images.start // step])
        else:  # columns (n*P, K): one (g*F, n*P) @ (n*P, K)
            np.matmul(rows.T, c.reshape(-1, K), out=partial[images.start // step])

    over_chunks(grad, N, step)
    dw2 = partial.sum(axis=0)  # (g*F, K)
    if layout == "planar":
        return dw2.reshape(F, C, KH, KW)
    return _ungrouped_weight_grad(dw2, weight_shape, stride_w, g)  # columns ordered (kh, kw, c), g pixels


def _full_pads(weight_shape, pads: Pads, dilation: Pair) -> Pads:
    """Padding of dout that turns a stride-1 convolution's input gradient into a convolution (negative: crop)."""
    _, _, KH, KW = weight_shape
    (dh, dw), (pt, pb, pl, pr) = dilation, pads
    return ((KH - 1) * dh - pt, (KH - 1) * dh - pb, (KW - 1) * dw - pl, (KW - 1) * dw - pr)


def _input_grad_by_convolution(dout: np.ndarray, weight: np.ndarray, full: Pads, dilation: Pair,
                               workspace: dict | None) -> np.ndarray:
    """dx of a stride-1 convolution: the output gradient, zero-padded, convolved with the flipped kernel.

    dx[h, w] = sum over (kh, kw) of dout[h + pt - kh*dh, w + pl - kw*dw] * weight[..., kh, kw]: a correlation
    of dout with weight[:, :, ::-1, ::-1], channels swapped (F <-> C). No col2im scatter is needed, and the
    same cache-sized chunks as the forward pass apply.
    """
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, F, KH, KW)
    inner = None if workspace is None else workspace.setdefault("input_grad", {})
    dx, _ = conv2d_forward(dout, flipped, None, (1, 1), full, dilation, keep_cache=False, workspace=inner)
    return dx  # (N, C, H, W) view of channels-last memory


def _input_grad_by_col2im(d: np.ndarray, w2: np.ndarray, x_shape, out_hw: Pair, kernel: Pair, stride: Pair,
                          pads: Pads, dilation: Pair, workspace: dict | None) -> np.ndarray:
    """dx for any stride: scatter each output pixel's gradient back over its receptive field (col2im).

    One batched matmul gives, for each kernel offset (kh, kw), the contribution (N, OH, OW, C) of every
    output pixel to its input pixel; each is added to a strided slice of the padded input. Laid out
    offset-major, every block is contiguous, so the adds stream through memory.
    """
    N, C, H, W = x_shape
    (OH, OW), (KH, KW) = out_hw, kernel
    F = w2.shape[1]
    w3 = w2.reshape(KH * KW, C, F).transpose(0, 2, 1)  # (KH*KW, F, C)
    P = OH * OW
    dblocks = scratch(workspace, "dblocks", (KH * KW, N * P, C), d.dtype)
    blocks = dblocks.reshape(KH, KW, N, OH, OW, C)
    pt, pb, pl, pr = pads
    (sh, sw), (dh, dw) = stride, dilation
    dxp = np.zeros((N, H + pt + pb, W + pl + pr, C), dtype=d.dtype)  # (N, Hp, Wp, C)

    def col2im(b: slice) -> None:
        rows = slice(b.start * P, b.stop * P)
        np.matmul(d[rows], w3, out=dblocks[:, rows])  # (KH*KW, rows, C)
        for kh in range(KH):
            for kw in range(KW):
                h0, w0 = kh * dh, kw * dw
                dxp[b, h0: h0 + sh * (OH - 1) + 1: sh, w0: w0 + sw * (OW - 1) + 1: sw] += blocks[kh, kw, b]

    over_chunks(col2im, N, _chunk_images(P * KH * KW * C * d.itemsize))
    return dxp[:, pt:pt + H, pl:pl + W].transpose(0, 3, 1, 2)  # (N, C, H, W) view


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
