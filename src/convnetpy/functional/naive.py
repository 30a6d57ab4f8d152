"""Naive loop versions of convolution and pooling: the readable definition, and the test oracle.

Every output value is computed the way a lecture writes it down,
    out[n, f, i, j] = bias[f] + sum_{c, kh, kw} w[f, c, kh, kw] * x_pad[n, c, i*S + kh*D, j*S + kw*D],
one window at a time. They are slow on purpose; ``conv.py`` and ``pool.py`` must agree with them.
"""

from __future__ import annotations

import numpy as np

from .conv import conv_output_size


def _pad(x: np.ndarray, pads, fill: float = 0.0) -> np.ndarray:
    pt, pb, pl, pr = pads
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)


def conv2d_forward(x, weight, bias, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """x (N, C, H, W), weight (F, C, KH, KW), bias (F,) or None -> out (N, F, OH, OW)."""
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    OH = conv_output_size(H, KH, sh, pads[0], pads[1], dh)
    OW = conv_output_size(W, KW, sw, pads[2], pads[3], dw)
    xp = _pad(x, pads)
    out = np.zeros((N, F, OH, OW), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    patch = xp[n, :, i * sh: i * sh + dh * (KH - 1) + 1: dh, j * sw: j * sw + dw * (KW - 1) + 1: dw]
                    out[n, f, i, j] = np.sum(patch * weight[f]) + (bias[f] if bias is not None else 0)
    return out


def conv2d_backward(dout, x, weight, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """Gradients of ``conv2d_forward``: returns dx (N, C, H, W), dweight (F, C, KH, KW), dbias (F,)."""
    N, C, H, W = x.shape
    F, _, KH, KW = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    _, _, OH, OW = dout.shape
    xp = _pad(x, pads)
    dxp = np.zeros_like(xp)
    dweight = np.zeros_like(weight)
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    rows = slice(i * sh, i * sh + dh * (KH - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (KW - 1) + 1, dw)
                    dweight[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * weight[f]
    dbias = dout.sum(axis=(0, 2, 3))
    pt, _, pl, _ = pads
    return dxp[:, :, pt:pt + H, pl:pl + W], dweight, dbias


def pool2d_forward(x, kernel, stride, padding=(0, 0), mode="max"):
    """x (N, C, H, W) -> (N, C, OH, OW): max or mean (zero padding counted) of each window."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel, stride, padding
    OH = conv_output_size(H, KH, sh, ph, ph)
    OW = conv_output_size(W, KW, sw, pw, pw)
    xp = _pad(x, (ph, ph, pw, pw), -np.inf if mode == "max" else 0.0)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    window = xp[n, c, i * sh: i * sh + KH, j * sw: j * sw + KW]
                    out[n, c, i, j] = window.max() if mode == "max" else window.mean()
    return out


def pool2d_backward(dout, x, kernel, stride, padding=(0, 0), mode="max"):
    """dout (N, C, OH, OW) -> dx (N, C, H, W); max routes to the first maximum of each window."""
    N, C, H, W = x.shape
    (KH, KW), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = _pad(x, (ph, ph, pw, pw), -np.inf if mode == "max" else 0.0)
    dxp = np.zeros_like(xp)
    for n in range(N):
        for c in range(C):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    window = xp[n, c, i * sh: i * sh + KH, j * sw: j * sw + KW]
                    if mode == "max":
                        a, b = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                        dxp[n, c, i * sh + a, j * sw + b] += dout[n, c, i, j]
                    else:
                        dxp[n, c, i * sh: i * sh + KH, j * sw: j * sw + KW] += dout[n, c, i, j] / (KH * KW)
    return dxp[:, :, ph:ph + H, pw:pw + W]
