"""Max and average pooling in 2D and 1D: thin wrappers over ``functional.pool``."""

from __future__ import annotations

from ..functional.pool import (
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    pool_output_hw,
)
from ..shape_debugger import check_empty
from .base import Layer, check_input, pair, single

_KERNELS = {"max": (maxpool2d_forward, maxpool2d_backward), "avg": (avgpool2d_forward, avgpool2d_backward)}


class _Pool(Layer):
    """Shared by the four pooling layers. 1D pooling runs the 2D kernel with H = 1.

    The output size is floored, as PyTorch's: windows need not tile the input (the last
    ``(N - K + 2P) % S`` padded positions are then never read), and only an empty output is an error. Nets
    built from specs are stricter unless the spec says ``"ragged": true`` (see ``specs.build``).
    """
    shardable = True

    type = "pool"
    mode = "max"
    ndim = 2

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        norm = pair if self.ndim == 2 else (lambda v, n: (single(v, n),))
        self.kernel_size = norm(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else norm(stride, "stride")
        self.padding = norm(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be >= 1 and padding >= 0, "
                             f"got {self.kernel_size}, {self.stride}, {self.padding}")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half the kernel "
                             f"{self.kernel_size} (a window of padding alone has no maximum)")

    def _as2d(self, t: tuple[int, ...], fill: int) -> tuple[int, int]:
        return tuple(t) if self.ndim == 2 else (fill, t[0])

    def output_shape(self, in_shape):
        check_empty(self, in_shape)  # names the arithmetic and the nearest paddings or windows that fit
        hw = self._as2d(in_shape[1:], 1)
        out = pool_output_hw(hw, self._as2d(self.kernel_size, 1), self._as2d(self.stride, 1),
                             self._as2d(self.padding, 0))
        return (in_shape[0], *out[2 - self.ndim:])

    def forward(self, x, training=False):
        layout = "(N, C, H, W)" if self.ndim == 2 else "(N, C, L)"
        check_input(self, x, self.ndim + 2, None, layout)
        self.output_shape(x.shape[1:])
        x4 = x if self.ndim == 2 else x[:, :, None, :]
        fwd, _ = _KERNELS[self.mode]
        out, self._cache = fwd(x4, self._as2d(self.kernel_size, 1), self._as2d(self.stride, 1),
                               self._as2d(self.padding, 0), keep_cache=training)
        return out if self.ndim == 2 else out[:, :, 0, :]

    def backward(self, dy, input_grad=True):
        cache = self._take_cache()
        if not input_grad:
            return None
        _, bwd = _KERNELS[self.mode]
        dx = bwd(dy if self.ndim == 2 else dy[:, :, None, :], cache)
        return dx if self.ndim == 2 else dx[:, :, 0, :]

    def spec(self):
        one = (lambda t: t[0]) if self.ndim == 1 else list
        return {"type": "pool", "mode": self.mode, "size": one(self.kernel_size), "stride": one(self.stride),
                "pad": one(self.padding)}

    def __repr__(self):
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding})"


class MaxPool2D(_Pool):
    """Max over each KH x KW window: x (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2P - KH) // S + 1."""

    mode, ndim = "max", 2


class AvgPool2D(_Pool):
    """Mean over each window (zero padding counts, as PyTorch's default): (N, C, H, W) -> (N, C, OH, OW)."""

    mode, ndim = "avg", 2


class MaxPool1D(_Pool):
    """Max over each window of K samples: x (N, C, L) -> (N, C, OL), OL = (L + 2P - K) // S + 1."""

    mode, ndim = "max", 1


class AvgPool1D(_Pool):
    """Mean over each window of K samples: x (N, C, L) -> (N, C, OL)."""

    mode, ndim = "avg", 1
