"""Dropout and batch normalisation: layers that behave differently in training and in evaluation."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import Layer, check_input


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by 1 / (1 - p),
    so evaluation is the identity (Srivastava et al. 2014). Randomness comes from ``rng``."""

    type = "dropout"

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng() if rng is None else rng

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(1, 8)), None, "(N, ...)")
        if not training:
            self._cache = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        scale = keep * x.dtype.type(1.0 / (1.0 - self.p))  # (same shape as x)
        self._cache = scale
        return x * scale

    def backward(self, dy, input_grad=True):
        scale = self._take_cache()
        return dy * scale if input_grad else None

    def spec(self):
        return {"type": self.type, "p": self.p}


class _BatchNorm(Layer):
    """Normalise each channel over the batch (and positions), then scale by ``weight``, shift by ``bias``.

    Ioffe & Szegedy 2015. Training uses batch statistics and updates the running ones as PyTorch does
    (running_var takes the unbiased variance); evaluation uses the running statistics.
    """

    type = "batchnorm"
    ndims: tuple[int, ...] = (4,)
    layout = "(N, C, H, W)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=np.float32) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        if self.num_features < 1 or not self.eps > 0 or not 0 <= self.momentum <= 1:
            raise ValueError(f"{type(self).__name__}: need num_features >= 1, eps > 0 and momentum in [0, 1], "
                             f"got {num_features!r}, {eps!r}, {momentum!r}")
        self._add_param("weight", np.ones(self.num_features, dtype=dtype), decay=0.0)
        self._add_param("bias", np.zeros(self.num_features, dtype=dtype), decay=0.0)
        self.buffers["running_mean"] = np.zeros(self.num_features, dtype=dtype)
        self.buffers["running_var"] = np.ones(self.num_features, dtype=dtype)

    def forward(self, x, training=False):
        check_input(self, x, self.ndims, self.num_features, self.layout.replace("C", str(self.num_features)))
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector over (N, C, ...)
        if training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            n = x.size // x.shape[1]
            if n < 2:
                raise ValueError(f"{type(self).__name__}: training needs more than one value per channel, "
                                 f"got input of shape {tuple(x.shape)}")
            m = self.momentum
            self.buffers["running_mean"] *= 1 - m
            self.buffers["running_mean"] += m * mean
            self.buffers["running_var"] *= 1 - m
            self.buffers["running_var"] += (m * n / (n - 1)) * var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self._cache = (xhat, inv_std, axes, shape) if training else None
        return xhat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)

    def backward(self, dy, input_grad=True):
        xhat, inv_std, axes, shape = self._take_cache()
        self._set_grad("weight", (dy * xhat).sum(axis=axes))
        self._set_grad("bias", dy.sum(axis=axes))
        if not input_grad:
            return None
        n = dy.size // dy.shape[1]
        dxhat = dy * self.params["weight"].reshape(shape)
        # dx = (1/n) * inv_std * (n * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
        mean_dxhat = dxhat.mean(axis=axes).reshape(shape)
        mean_dxhat_xhat = (dxhat * xhat).sum(axis=axes).reshape(shape) * (1.0 / n)
        return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv_std.reshape(shape)

    def output_shape(self, in_shape):
        if len(in_shape) + 1 not in self.ndims or in_shape[0] != self.num_features:
            raise ShapeError(f"{type(self).__name__} expects input of shape "
                             f"{self.layout.replace('C', str(self.num_features))}, got examples of shape "
                             f"{tuple(in_shape)}")
        return tuple(in_shape)

    def spec(self):
        return {"type": self.type, "eps": self.eps, "momentum": self.momentum}

    def __repr__(self):
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm2D(_BatchNorm):
    """Batch normalisation of images: x (N, C, H, W), statistics per channel over N, H and W."""

    ndims, layout = (4,), "(N, C, H, W)"


class BatchNorm1D(_BatchNorm):
    """Batch normalisation of features (N, C) or signals (N, C, L), statistics per channel."""

    ndims, layout = (2, 3), "(N, C) or (N, C, L)"
