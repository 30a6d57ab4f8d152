"""Compiled kernels (Numba) for the convolutions and the max-pooling backward pass; NumPy paths otherwise.

On wherever Numba is installed (a dependency of convnetpy); ``use_compiled(False)`` switches them off.
Without Numba, or switched off, the NumPy kernels do the same work; the tests run both and compare them.

Convolutions. NumPy's convolutions are BLAS matmuls, and BLAS decides their speed: with the Haswell kernels
that ``OPENBLAS_CORETYPE=Haswell`` selects, OpenBLAS runs the conv matmuls at 105-117 GFLOP/s on one core of
a machine where its AVX-512 kernels reach 160-240. Numba compiles for the CPU it runs on, AVX-512 included.
The compiled convolution is a grid of dot products between contiguous runs (``_dot_tiles``): the forward
pass and the input gradient read each receptive field straight from a copy of KH input rows
(``_conv_rows``), no im2col; the weight gradient reads shifted runs of the zero-padded input planes
(``_weight_grad_rows``). Measured at batch 64, one thread (``python benchmarks/layers.py --model
cifar10net``): a CIFAR-10 training step 22.8 -> 15.9 ms; its second layer's forward pass 3.5 -> 2.1 ms.
Where the filters come in whole vectors (16, 32, ...), the forward pass and the input gradient take outer
products instead (``_outer_tiles``), which need no sum across a vector's lanes: the CIFAR-10 net's first
layer, 16 filters of 75 weights, at batch 32: 1.27 -> 0.92 ms; a training step at batch 64, 16.5 -> 15.4 ms.

Max pooling. NumPy finds each window's first maximum with a compare, a multiply and a mask update per window
offset, on strided slices whose contiguous runs are only C values long in channels-last activations, so the
ufunc loops spend their time starting and stopping. One compiled loop finds the first maximum and adds the
gradient there. The forward pass of windows that tile channels-last input (both nets' pools) is one compiled
loop too: at batch 64, one thread, 0.17 -> 0.12 ms for LeNet-5's first pool (6 channels), 0.29 -> 0.09 ms for
the CIFAR-10 net's first (16 channels); overlapping windows and other layouts stay NumPy's maximum of strided
slices.

Numba is imported, and the kernels compiled or loaded from Numba's cache, on first use, not on ``import
convnetpy``: that costs about 130 MB of compiler and code (``benchmarks/memory.py``) and half a second,
which commands that train nothing should not pay. A fresh install compiles for about 10 s on its first step.
"""

from __future__ import annotations

import importlib.util
import sys
import threading

import numpy as np

from .parallel import over_chunks

installed = importlib.util.find_spec("numba") is not None
_enabled = installed  # see the module docstring
_compiled = False  # the kernels below have been replaced by their compiled versions (``_compile``)
_compile_lock = threading.Lock()


def available() -> bool:
    """True when Numba is installed and compiled kernels are switched on."""
    return _enabled


def use_compiled(on: bool) -> None:
    """Switch the compiled kernels on or off (on needs Numba)."""
    global _enabled
    if on and not installed:
        raise RuntimeError("compiled kernels need Numba: pip install numba")
    _enabled = bool(on)


def _maxpool_forward_tiled(xp, kernel_h, kernel_w, out):
    """out (N, OH, OW, C) = the maximum of each window of xp (N, Hp, Wp, C), for windows that tile the input
    (stride = kernel). NaN wins, as in ``np.maximum`` and PyTorch.

    Window row by window row, one input row at a time; each channel is its own running maximum.
    """
    N, OH, OW, C = out.shape
    for n in range(N):
        for oh in range(OH):
            o = out[n, oh]  # (OW, C)
            for kh in range(kernel_h):
                x_row = xp[n, oh * kernel_h + kh]  # (Wp, C)
                for kw in range(kernel_w):
                    if kh == 0 and kw == 0:
                        for ow in range(OW):
                            for c in range(C):
                                o[ow, c] = x_row[ow * kernel_w, c]
                        continue
                    for ow in range(OW):
                        for c in range(C):
                            v = x_row[ow * kernel_w + kw, c]
                            o[ow, c] = v if v > o[ow, c] or v != v else o[ow, c]


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


def _maxpool_backward_tiled(xp, out, dout, kernel_h, kernel_w, dxp):
    """``_maxpool_backward`` for windows that tile the input (stride = kernel): every position lies in one
    window, so dxp is written, not added to, and need not be zeroed first, except where no window reaches
    (the caller's job). Row by row of windows: twice as fast as the general kernel on the CIFAR-10 net.
    """
    N, OH, OW, C = out.shape
    pending = np.empty((OW, C), dout.dtype)  # (OW, C) gradients of one row of windows not yet routed
    for n in range(N):
        for oh in range(OH):
            pending[:] = dout[n, oh]
            o = out[n, oh]  # (OW, C)
            for kh in range(kernel_h):
                x_row, dx_row = xp[n, oh * kernel_h + kh], dxp[n, oh * kernel_h + kh]  # (Wp, C)
                for kw in range(kernel_w):
                    for ow in range(OW):
                        for c in range(C):
                            hit = x_row[ow * kernel_w + kw, c] == o[ow, c]
                            dx_row[ow * kernel_w + kw, c] = pending[ow, c] if hit else 0.0
                            pending[ow, c] = 0.0 if hit else pending[ow, c]


# Filters per outer-product tile (``_outer_tiles``): one AVX-512 vector of float32.
LANES = 16


def _accumulator(like):
    """LANES values of like's dtype, for a running sum. Compiled (``_compile``), they live on the stack, where
    LLVM keeps them in a vector register; a NumPy array would be stored to memory at every step."""
    return np.empty(LANES, like.dtype)


def _outer_tiles(a, a_starts, w, bias, first, length, out):
    """out[i, first:first + LANES] = bias[first:][:LANES] + the sum over k of a[a_starts[i] + k] * w[k] for every
    i, eight at a time. w: (length, LANES); out: (I, F), I a multiple of eight.

    Outer products: each step broadcasts one input value of eight receptive fields and multiplies it with LANES
    filters' weights, into eight vector sums. No sum across vector lanes at the end, so short receptive
    fields pay: the CIFAR-10 net's first layer (75 values, 16 filters) at batch 64, one thread, 2.52 ms by
    dot products (``_dot_tiles``), 1.56 ms by outer products. The loops over LANES are written out one per
    running sum: LLVM turns each into one vector instruction.
    """
    s0, s1, s2, s3 = _accumulator(out), _accumulator(out), _accumulator(out), _accumulator(out)
    s4, s5, s6, s7 = _accumulator(out), _accumulator(out), _accumulator(out), _accumulator(out)
    for i in range(0, out.shape[0], 8):
        a0 = a[a_starts[i]:a_starts[i] + length]
        a1 = a[a_starts[i + 1]:a_starts[i + 1] + length]
        a2 = a[a_starts[i + 2]:a_starts[i + 2] + length]
        a3 = a[a_starts[i + 3]:a_starts[i + 3] + length]
        a4 = a[a_starts[i + 4]:a_starts[i + 4] + length]
        a5 = a[a_starts[i + 5]:a_starts[i + 5] + length]
        a6 = a[a_starts[i + 6]:a_starts[i + 6] + length]
        a7 = a[a_starts[i + 7]:a_starts[i + 7] + length]
        for f in range(LANES):
            s0[f] = bias[first + f]
        for f in range(LANES):
            s1[f] = bias[first + f]
        for f in range(LANES):
            s2[f] = bias[first + f]
        for f in range(LANES):
            s3[f] = bias[first + f]
        for f in range(LANES):
            s4[f] = bias[first + f]
        for f in range(LANES):
            s5[f] = bias[first + f]
        for f in range(LANES):
            s6[f] = bias[first + f]
        for f in range(LANES):
            s7[f] = bias[first + f]
        for k in range(length):
            wk = w[k]
            x0 = a0[k]
            x1 = a1[k]
            x2 = a2[k]
            x3 = a3[k]
            x4 = a4[k]
            x5 = a5[k]
            x6 = a6[k]
            x7 = a7[k]
            for f in range(LANES):
                wf = wk[f]
                s0[f] += x0 * wf
                s1[f] += x1 * wf
                s2[f] += x2 * wf
                s3[f] += x3 * wf
                s4[f] += x4 * wf
                s5[f] += x5 * wf
                s6[f] += x6 * wf
                s7[f] += x7 * wf
        for f in range(LANES):
            out[i, first + f] = s0[f]
        for f in range(LANES):
            out[i + 1, first + f] = s1[f]
        for f in range(LANES):
            out[i + 2, first + f] = s2[f]
        for f in range(LANES):
            out[i + 3, first + f] = s3[f]
        for f in range(LANES):
            out[i + 4, first + f] = s4[f]
        for f in range(LANES):
            out[i + 5, first + f] = s5[f]
        for f in range(LANES):
            out[i + 6, first + f] = s6[f]
        for f in range(LANES):
            out[i + 7, first + f] = s7[f]


# The convolution kernels below are dot products of contiguous rows, four rows against four rows at a time:
# sixteen running sums, each of which LLVM turns into a vector of 16 lanes (AVX-512) or 8 (AVX2) over k.
# Only reassociation (to vectorise a sum) and contraction (fused multiply-add) are allowed, so NaN and inf
# propagate as in NumPy. nogil: the callers split the work over threads.


def _dot_tiles(a, a_starts, b, b_starts, length, out):
    """out[i, j] += a[a_starts[i]:][:length] . b[b_starts[j]:][:length] for every i, j.

    a, b: 1-D arrays; the rows are windows into them and may overlap. out: (I, J).
    """
    I, J = out.shape
    I4, J4 = I - I % 4, J - J % 4
    for i in range(0, I4, 4):
        a0 = a[a_starts[i]:a_starts[i] + length]
        a1 = a[a_starts[i + 1]:a_starts[i + 1] + length]
        a2 = a[a_starts[i + 2]:a_starts[i + 2] + length]
        a3 = a[a_starts[i + 3]:a_starts[i + 3] + length]
        for j in range(0, J4, 4):
            b0 = b[b_starts[j]:b_starts[j] + length]
            b1 = b[b_starts[j + 1]:b_starts[j + 1] + length]
            b2 = b[b_starts[j + 2]:b_starts[j + 2] + length]
            b3 = b[b_starts[j + 3]:b_starts[j + 3] + length]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = out.dtype.type(0)
            s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = out.dtype.type(0)
            for k in range(length):
                x0, x1, x2, x3 = a0[k], a1[k], a2[k], a3[k]
                y0, y1, y2, y3 = b0[k], b1[k], b2[k], b3[k]
                s00 += x0 * y0
                s01 += x0 * y1
                s02 += x0 * y2
                s03 += x0 * y3
                s10 += x1 * y0
                s11 += x1 * y1
                s12 += x1 * y2
                s13 += x1 * y3
                s20 += x2 * y0
                s21 += x2 * y1
                s22 += x2 * y2
                s23 += x2 * y3
                s30 += x3 * y0
                s31 += x3 * y1
                s32 += x3 * y2
                s33 += x3 * y3
            out[i, j] += s00
            out[i, j + 1] += s01
            out[i, j + 2] += s02
            out[i, j + 3] += s03
            out[i + 1, j] += s10
            out[i + 1, j + 1] += s11
            out[i + 1, j + 2] += s12
            out[i + 1, j + 3] += s13
            out[i + 2, j] += s20
            out[i + 2, j + 1] += s21
            out[i + 2, j + 2] += s22
            out[i + 2, j + 3] += s23
            out[i + 3, j] += s30
            out[i + 3, j + 1] += s31
            out[i + 3, j + 2] += s32
            out[i + 3, j + 3] += s33
    I2, J2 = I4 + (I - I4) // 2 * 2, J4 + (J - J4) // 2 * 2  # two rows or two columns left over: 2 x 4 tiles
    if J2 > J4:
        for i in range(0, I4, 4):
            _dot_4x2(a, a_starts[i:i + 4], b, b_starts[J4:J2], length, out[i:i + 4, J4:J2])
    if I2 > I4:
        for j in range(0, J4, 4):
            _dot_4x2(b, b_starts[j:j + 4], a, a_starts[I4:I2], length, out[I4:I2, j:j + 4].T)
    for i in range(0, I4, 4):  # a column left over: four rows against one
        for j in range(J2, J):
            bj = b[b_starts[j]:b_starts[j] + length]
            s0, s1, s2, s3 = _dot4(bj, a, a_starts[i:i + 4], length)
            out[i, j] += s0
            out[i + 1, j] += s1
            out[i + 2, j] += s2
            out[i + 3, j] += s3
    for i in range(I4, I):  # a row left over: one row against four; then the corner, one against one
        ai = a[a_starts[i]:a_starts[i] + length]
        if i >= I2:
            for j in range(0, J4, 4):
                s0, s1, s2, s3 = _dot4(ai, b, b_starts[j:j + 4], length)
                out[i, j] += s0
                out[i, j + 1] += s1
                out[i, j + 2] += s2
                out[i, j + 3] += s3
        for j in range(J4, J):
            bj = b[b_starts[j]:b_starts[j] + length]
            s = out.dtype.type(0)
            for k in range(length):
                s += ai[k] * bj[k]
            out[i, j] += s


def _dot_4x2(a, a_starts, b, b_starts, length, out):
    """out (4, 2) += the dot products of the four rows a[a_starts[i]:][:length] with the two rows of b: the
    tile for two rows or columns left over. Cheaper than four-by-four tiles that compute zeros, and than 4 x 1
    tiles: LeNet-5's input gradient of its second layer (6 channels) at batch 32, 0.394 -> 0.352 ms.
    """
    a0 = a[a_starts[0]:a_starts[0] + length]
    a1 = a[a_starts[1]:a_starts[1] + length]
    a2 = a[a_starts[2]:a_starts[2] + length]
    a3 = a[a_starts[3]:a_starts[3] + length]
    b0 = b[b_starts[0]:b_starts[0] + length]
    b1 = b[b_starts[1]:b_starts[1] + length]
    s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = out.dtype.type(0)
    for k in range(length):
        x0, x1, x2, x3, y0, y1 = a0[k], a1[k], a2[k], a3[k], b0[k], b1[k]
        s00 += x0 * y0
        s01 += x0 * y1
        s10 += x1 * y0
        s11 += x1 * y1
        s20 += x2 * y0
        s21 += x2 * y1
        s30 += x3 * y0
        s31 += x3 * y1
    out[0, 0] += s00
    out[0, 1] += s01
    out[1, 0] += s10
    out[1, 1] += s11
    out[2, 0] += s20
    out[2, 1] += s21
    out[3, 0] += s30
    out[3, 1] += s31


def _dot4(x, b, starts, length):
    """The dot products of x (length,) with the four rows b[starts[r]:][:length]."""
    b0 = b[starts[0]:starts[0] + length]
    b1 = b[starts[1]:starts[1] + length]
    b2 = b[starts[2]:starts[2] + length]
    b3 = b[starts[3]:starts[3] + length]
    s0 = s1 = s2 = s3 = x.dtype.type(0)
    for k in range(length):
        s0 += x[k] * b0[k]
        s1 += x[k] * b1[k]
        s2 += x[k] * b2[k]
        s3 += x[k] * b3[k]
    return s0, s1, s2, s3


def _conv_rows(xp, weights, bias, out, kernel_h, stride_h, stride_w, dilation_h, outer, first, last):
    """out[n] for n in range(first, last): the convolution of xp (N, Hp, Wp, C) with ``weights``, plus bias.

    For each output row, the KH input rows it reads are interleaved into ``rows`` (Wp, column): input column
    w holds its KH*C values (kh, c), then zeros up to ``column``. Output pixel ow's receptive field is then one
    contiguous run of KW*column values starting at row ow*stride_w, and the weights are laid out (kw, kh, c)
    to match: an im2col of one image row, KH times the input instead of KH*KW times. out: (N, OH, OW, F),
    C-contiguous.

    With ``outer``, weights (F / LANES, KW*KH*C, LANES) and bias (F,) come from ``conv_weight_blocks`` and
    ``_outer_tiles`` computes eight pixels by LANES filters at a time; otherwise weights (filters, KW, column)
    and bias (filters,) come from ``conv_weight_rows`` and ``_dot_tiles`` computes four by four.

    ``group`` output rows go through the tiles together, enough for a whole number of tiles: the pixels left
    over from four-by-four dot-product tiles cost twice as much each. LeNet-5's second layer (rows of 10
    pixels) at batch 32, one thread: forward 0.250 -> 0.188 ms, input gradient (rows of 14) 0.467 -> 0.398 ms.
    """
    N, OH, OW, F = out.shape
    Wp, C = xp.shape[2], xp.shape[3]
    tile_pixels = 8 if outer else 4
    column = kernel_h * C if outer else weights.shape[2]
    K = weights.shape[1] if outer else weights.shape[1] * column
    filters = F if outer else weights.shape[0]  # dot products: F rounded up to an even number
    group = 1
    while group * OW % tile_pixels != 0:
        group += 1
    group = min(group, OH)
    rows = np.zeros((group, Wp, column), xp.dtype)
    flat = rows.reshape(-1)
    padded = -(-group * OW // tile_pixels) * tile_pixels  # whole tiles; the pixels past the group's reuse the
    pixel_starts = np.zeros(padded, np.int64)  # first receptive field, and their results are dropped
    for r in range(group):
        for ow in range(OW):
            pixel_starts[r * OW + ow] = (r * Wp + ow * stride_w) * column
    filter_starts = np.arange(filters) * K
    flat_weights = weights.reshape(-1)
    tile = np.empty((padded, filters), out.dtype)  # the group's pixels, when they are not whole tiles or F is odd
    out_pixels = out.reshape(N, OH * OW, F)
    for n in range(first, last):
        for oh in range(0, OH, group):
            count = min(group, OH - oh)
            for r in range(count):
                for kh in range(kernel_h):
                    rows[r, :, kh * C:(kh + 1) * C] = xp[n, (oh + r) * stride_h + kh * dilation_h]
            pixels = count * OW
            direct = filters == F and (pixels % tile_pixels == 0 or not outer)
            o = out_pixels[n, oh * OW:oh * OW + pixels] if direct else tile  # (pixels or padded, filters)
            if outer:
                for b in range(F // LANES):
                    _outer_tiles(flat, pixel_starts, weights[b], bias, b * LANES, K, o)
            else:
                o = o[:pixels]
                o[:] = bias
                _dot_tiles(flat, pixel_starts[:pixels], flat_weights, filter_starts, K, o)
            if not direct:
                out_pixels[n, oh * OW:oh * OW + pixels] = tile[:pixels, :F]


def _conv_planes(xp, weight, bias, out, dilation_h, dilation_w, first, last):
    """out[n] for n in range(first, last): the stride-1 convolution of xp (N, C, Hp, Wp), planar, with weight
    (F, C, KH, KW), plus bias (F,). out: (N, OH, OW, F), written channels-last.

    For few input channels (a grey image's one), where a receptive field is too short for dot products.
    Read as one run, rows of Wp values, each output plane of a filter is a sum of the input planes shifted by
    (kh, kw) and scaled by one weight each: long runs of multiply-adds that LLVM vectorises. The Wp - OW
    values at the end of each row of the sum wrapped around from the next input row, and are dropped.
    """
    OH, OW, F = out.shape[1:]
    C, KH, KW = weight.shape[1:]
    Wp = xp.shape[3]
    L = (OH - 1) * Wp + OW  # one run: output rows of Wp values, the last one cut to OW (it would read past the plane)
    planes = np.empty((F, L), out.dtype)  # (F, L) the output planes of one image, rows Wp apart
    for n in range(first, last):
        for f in range(F):  # filter by filter: its plane stays in L1 while the KH*KW*C shifted runs are added
            plane = planes[f]
            plane[:] = bias[f]
            for c in range(C):
                x = xp[n, c].reshape(-1)  # (Hp*Wp,)
                for kh in range(KH):
                    for kw in range(KW):
                        start = kh * dilation_h * Wp + kw * dilation_w
                        shifted = x[start:start + L]
                        w = weight[f, c, kh, kw]
                        for i in range(L):
                            plane[i] += w * shifted[i]
        for oh in range(OH):  # to channels-last: each plane's row read in one run (15% faster than
            o = out[n, oh]  # reading the F planes side by side, LeNet-5's first layer at batch 32)
            for f in range(F):
                row = planes[f, oh * Wp:oh * Wp + OW]
                for ow in range(OW):
                    o[ow, f] = row[ow]


def _to_planes(src, dst, width):
    """dst[n, c, h * width:][:W] = src[n, h, :, c], zeros after.

    src: (N, H, W, C) channels-last; dst: (N, C, L), rows of ``width`` >= W values from the start of each
    plane, zeros from H * width to L. The weight gradient's transposing copy of the output gradient: 0.26 ms
    per 64 images for the CIFAR-10 net's first layer, NumPy's strided copy 0.50.
    """
    N, H, W, C = src.shape
    for n in range(N):
        for h in range(H):
            block = src[n, h]  # (W, C), read from L1 for every c
            for c in range(C):
                row = dst[n, c, h * width:(h + 1) * width]
                for w in range(W):
                    row[w] = block[w, c]
                row[W:] = 0
        dst[n, :, H * width:] = 0


def _weight_grad_rows(dout_rows, planes, starts, out):
    """out (F, C*KH*KW) += sum over images n of dout_rows[n] (F, L) against planes[n].

    Row (c, kh, kw) of image n is planes[n][starts[...]:][:L]: the zero-padded input plane c shifted by
    (kh, kw), read as one run of L >= OH*Wp values. dout_rows holds the output gradient padded to width Wp,
    and to L, with zeros, so the values a shifted run reads beyond the output's width count for nothing.
    """
    N, F, L = dout_rows.shape
    dout_starts = np.arange(F) * L
    for n in range(N):
        _dot_tiles(dout_rows[n].reshape(-1), dout_starts, planes[n], starts, L, out)


def _compile() -> None:
    """Replace the kernels above by their compiled versions, once; callees first, so that each kernel calls
    compiled code. ``cache``: compiled once per machine, then loaded from Numba's cache."""
    global _compiled
    with _compile_lock:
        if _compiled:
            return
        numba = _import_numba()
        kernels = globals()
        kernels["_accumulator"] = _stack_accumulator(numba)
        fast = numba.njit(fastmath={"reassoc", "contract"}, nogil=True, cache=True, boundscheck=False)
        for name in ("_dot4", "_dot_4x2", "_dot_tiles", "_outer_tiles", "_conv_rows", "_conv_planes",
                     "_to_planes", "_weight_grad_rows"):
            kernels[name] = fast(kernels[name])
        for name in ("_maxpool_forward_tiled", "_maxpool_backward", "_maxpool_backward_tiled"):
            kernels[name] = numba.njit(nogil=True, cache=True)(kernels[name])
        _compiled = True


def _stack_accumulator(numba):
    """The compiled ``_accumulator``: LANES values on the stack (an LLVM alloca in the calling kernel's entry
    block, through an intrinsic), viewed as an array. Inlined into the kernel, so the memory outlives the call."""
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def stack_values(typingctx, like, size):  # a pointer to ``size`` values of like's dtype on the stack
        if not isinstance(size, types.IntegerLiteral):
            return None

        def codegen(context, builder, signature, args):
            return cgutils.alloca_once(builder, context.get_value_type(like.dtype), size=size.literal_value)
        return types.CPointer(like.dtype)(like, size), codegen

    @numba.njit(inline="always")
    def accumulator(like):
        return numba.carray(stack_values(like, LANES), LANES)
    return accumulator


def _import_numba():
    """Numba, imported without SciPy.

    Numba imports SciPy, where installed, only to offer BLAS inside compiled code (``np.dot``), which the
    kernels never call: 15 MB of each process's resident memory (``benchmarks/memory.py``). SciPy is blocked
    only while Numba is imported: compiled code of the user's own that calls ``np.dot`` imports it when it is
    first compiled, as it would anyway. (Numba's ``np.correlate`` and ``np.convolve`` then use their own loop
    rather than BLAS.) Where either is imported already, this changes nothing.
    """
    if "numba" in sys.modules or "scipy" in sys.modules:
        import numba
        return numba
    sys.modules["scipy"] = None  # an import of SciPy now raises ImportError, which Numba expects without it
    try:
        import numba
        import numba.np.arraymath  # noqa: F401  (imported on the first compile; it is the one that asks for SciPy)
    finally:
        if sys.modules.get("scipy", False) is None:
            del sys.modules["scipy"]
    return numba


def _nhwc(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> the channels-last view (N, H, W, C); contiguous when the memory is channels-last."""
    return a.transpose(0, 2, 3, 1)


def maxpool_forward_tiled(xp: np.ndarray, kernel, out: np.ndarray, batch: slice) -> None:
    """out (N, C, OH, OW) = the maximum of each window of xp (N, C, Hp, Wp), windows that tile the input
    (``tiles(kernel, stride)``), for the examples ``batch``."""
    _compile()
    _maxpool_forward_tiled(_nhwc(xp[batch]), kernel[0], kernel[1], _nhwc(out[batch]))


def maxpool_backward(xp: np.ndarray, out: np.ndarray, dout: np.ndarray, kernel, stride, dxp: np.ndarray,
                     batch: slice) -> None:
    """Routes dout (N, C, OH, OW) of the examples ``batch`` to each window's first maximum in dxp (N, C, Hp, Wp).

    dxp must hold zeros where no window reaches, and everywhere unless the windows tile the input
    (``tiles(kernel, stride)``).
    """
    _compile()
    xp, out, dout, dxp = _nhwc(xp[batch]), _nhwc(out[batch]), _nhwc(dout[batch]), _nhwc(dxp[batch])
    if tiles(kernel, stride):
        _maxpool_backward_tiled(xp, out, dout, kernel[0], kernel[1], dxp)
    else:
        _maxpool_backward(xp, out, dout, kernel[0], kernel[1], stride[0], stride[1], dxp)


def tiles(kernel, stride) -> bool:
    """Whether pooling windows tile the input: no overlap, no gaps."""
    return tuple(kernel) == tuple(stride)


def column_length(kernel_h: int, kernel_w: int, channels: int, lanes: int = 16) -> int:
    """Values per input column in ``_conv_rows``: KH*C, padded with zeros to a multiple of ``lanes`` when that
    makes less work, counting a vector of 16 lanes (AVX-512) and a leftover value each as one step.

    The CIFAR-10 net's first layer (KH*C = 15, KW = 5): 75 values, 4 vectors and 11 leftovers, against 5
    columns of 16, 5 vectors.
    """
    kc = kernel_h * channels
    padded = -(-kc // lanes) * lanes

    def steps(k: int) -> int:
        return k // lanes + k % lanes

    return padded if steps(kernel_w * padded) < steps(kernel_w * kc) else kc


def conv_weight_rows(weight: np.ndarray) -> np.ndarray:
    """(F, C, KH, KW) -> (filters, KW, column): each filter laid out (kw, kh, c) like ``_conv_rows``' receptive
    fields, each column padded with zeros to ``column_length``, and a zero filter when F is odd.

    A zero filter is cheaper than a column left over (``_dot_tiles``): two filters left over go through 4 x 2
    tiles, one through 4 x 1 tiles at nearly the cost of 4 x 2.
    """
    F, C, KH, KW = weight.shape
    rows = np.zeros((-(-F // 2) * 2, KW, column_length(KH, KW, C)), weight.dtype)
    rows[:F, :, :KH * C] = weight.transpose(0, 3, 2, 1).reshape(F, KW, KH * C)
    return rows


def conv_weight_blocks(weight: np.ndarray) -> np.ndarray:
    """(F, C, KH, KW) -> (F / LANES, KW*KH*C, LANES): for ``_outer_tiles``, each block of LANES filters with its
    weights laid out (kw, kh, c) like ``_conv_rows``' receptive fields, one row of LANES filters per position."""
    F, C, KH, KW = weight.shape
    rows = weight.transpose(0, 3, 2, 1).reshape(F // LANES, LANES, KW * KH * C)  # (blocks, LANES, K)
    return np.ascontiguousarray(rows.transpose(0, 2, 1))


def conv_weights(weight: np.ndarray, bias: np.ndarray | None):
    """Weights and bias laid out for ``conv_forward``: blocks of LANES filters for outer products when F is a
    multiple of LANES, else rows for dot products; the bias zero-padded to match (zeros without one)."""
    F = weight.shape[0]
    outer = F % LANES == 0
    weights = conv_weight_blocks(weight) if outer else conv_weight_rows(weight)
    padded_bias = np.zeros(F if outer else len(weights), weight.dtype)  # (filters,)
    if bias is not None:
        padded_bias[:F] = bias
    return outer, weights, padded_bias


def conv_forward(xp: np.ndarray, weights, kernel_h: int, stride, dilation_h: int, out: np.ndarray,
                 batch: slice) -> None:
    """Fills out (N, OH, OW, F) for the examples ``batch`` from xp (N, Hp, Wp, C), padded channels-last, and
    the weights and bias of ``conv_weights``."""
    _compile()
    outer, w, bias = weights
    _conv_rows(xp, w, bias, out, kernel_h, stride[0], stride[1], dilation_h, outer, batch.start, batch.stop)


def conv_forward_planar(xp: np.ndarray, weight: np.ndarray, bias: np.ndarray, dilation, out: np.ndarray,
                        batch: slice) -> None:
    """Fills out (N, OH, OW, F) for the examples ``batch`` from xp (N, C, Hp, Wp), padded planar, weight
    (F, C, KH, KW) and bias (F,); stride 1."""
    _compile()
    _conv_planes(np.ascontiguousarray(xp), np.ascontiguousarray(weight), bias, out, dilation[0], dilation[1],
                 batch.start, batch.stop)


def conv_weight_grad(dout: np.ndarray, xp: np.ndarray, kernel, dilation, chunk: int) -> np.ndarray:
    """dweight (F, C, KH, KW) of a stride-1 convolution from dout (N, F, OH, OW) and the padded input xp
    (N, C, Hp, Wp), each in any memory layout.

    A chunk of images at a time, both are copied to planes first: the input (n, C*Hp*Wp + slack), the output
    gradient padded with zeros to width Wp, (n, F, OH*Wp rounded up to a multiple of 16). Rounding up spares
    the dot products a scalar tail: LeNet-5's second layer (OH*Wp = 140) at batch 32, 0.248 -> 0.216 ms. Row
    (c, kh, kw) of the gradient is then a dot product of contiguous runs, see ``_weight_grad_rows``. Partial
    sums over ``chunk`` images at a time, added in order: the result does not depend on the number of threads.
    """
    _compile()
    (N, F, OH, _), (_, C, Hp, Wp) = dout.shape, xp.shape
    (KH, KW), (dh, dw) = kernel, dilation
    L = -(-OH * Wp // 16) * 16  # each run: OH rows of Wp values, then zeros to whole vectors of 16 lanes
    slack = (KW - 1) * dw + L - OH * Wp  # the last shifted run ends this far past the last plane
    c, kh, kw = np.meshgrid(np.arange(C), np.arange(KH), np.arange(KW), indexing="ij")
    starts = (c * (Hp * Wp) + kh * (dh * Wp) + kw * dw).reshape(-1)  # (C*KH*KW,), ordered like dweight
    partial = np.zeros((-(-N // chunk), F, C * KH * KW), dout.dtype)  # (chunks, F, C*KH*KW)

    def grad(images: slice) -> None:  # copy the chunk's planes, then its dot products while they are in cache
        n = images.stop - images.start  # planes for this chunk only: for the whole batch they would be the
        planes = np.empty((n, C * Hp * Wp + slack), xp.dtype)  # largest buffers of a step (the CIFAR-10 net's
        dout_rows = np.empty((n, F, L), dout.dtype)  # first layer, 64 images: 4.7 MB of output gradient)
        planes[:, C * Hp * Wp:] = 0
        planes[:, :C * Hp * Wp].reshape(-1, C, Hp, Wp)[...] = xp[images]  # NumPy copies this one as fast
        _to_planes(_nhwc(dout[images]), dout_rows, Wp)
        _weight_grad_rows(dout_rows, planes, starts, partial[images.start // chunk])

    over_chunks(grad, N, chunk)
    return partial.sum(axis=0).reshape(F, C, KH, KW)
