"""Conv2D and Conv1D: thin stateful wrappers over ``functional.conv``."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..functional.conv import (
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
    conv_output_size,
    same_padding,
)
from ..shape_debugger import check_empty
from .base import Layer, check_input, init_weight, pair, single


def _resolve_padding(padding, normalise):
    """'valid' -> zeros; 'same' stays a string (it depends on the input size when stride > 1)."""
    if isinstance(padding, str):
        if padding == "valid":
            return normalise(0, "padding")
        if padding == "same":
            return "same"
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    return normalise(padding, "padding")


class _Conv(Layer):
    """Shared by Conv1D and Conv2D: sizes are tuples of length ``ndim`` (1 or 2).

    The output size is floored, as PyTorch's: a window that does not tile the input leaves the last
    ``(N - D*(K-1) - 1 + 2P) % S`` padded positions unread, and only an empty output is an error. Nets built
    from specs are stricter: there a fraction is a SpecError unless the spec says ``"ragged": true``
    (see ``specs.build`` and ``shape_debugger``).
    """
    shardable = True

    type = "conv"
    ndim = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 bias: bool = True, *, rng: np.random.Generator | None = None, init: str = "he",
                 dtype=np.float32) -> None:
        super().__init__()
        norm = pair if self.ndim == 2 else (lambda v, n: (single(v, n),))
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        if self.in_channels < 1 or self.out_channels < 1:
            raise ValueError(f"{type(self).__name__}: in_channels and out_channels must be >= 1, got "
                             f"{self.in_channels}, {self.out_channels}")
        self.kernel_size = norm(kernel_size, "kernel_size")
        self.stride = norm(stride, "stride")
        self.dilation = norm(dilation, "dilation")
        self.padding = _resolve_padding(padding, norm)
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {getattr(self, name)}")
        if self.padding != "same" and min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: padding must be >= 0, got {self.padding}")
        self.init = init
        self._workspace: dict = {}  # scratch buffers reused by training passes (see functional.conv.scratch)
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        fan_in = self.in_channels * int(np.prod(self.kernel_size))
        self._add_param("weight", init_weight(rng, shape, fan_in, init, dtype), decay=1.0)
        if bias:
            self._add_param("bias", np.zeros(self.out_channels, dtype=dtype), decay=0.0)

    # Padding as (before, after) per spatial axis, for an input of spatial size ``sizes``.
    def _pads(self, sizes: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        if self.padding == "same":
            return tuple(same_padding(n, k, s, d) for n, k, s, d in
                         zip(sizes, self.kernel_size, self.stride, self.dilation))
        return tuple((p, p) for p in self.padding)

    def output_shape(self, in_shape):
        if len(in_shape) != self.ndim + 1 or in_shape[0] != self.in_channels:
            layout = "H, W" if self.ndim == 2 else "L"
            raise ShapeError(f"{type(self).__name__} expects examples of shape ({self.in_channels}, {layout}), "
                             f"got {tuple(in_shape)}")
        check_empty(self, in_shape)  # names the arithmetic and the nearest paddings or kernels that fit
        sizes = tuple(in_shape[1:])
        return (self.out_channels, *(conv_output_size(n, k, s, pb, pa, d) for n, k, s, d, (pb, pa) in
                                     zip(sizes, self.kernel_size, self.stride, self.dilation, self._pads(sizes))))

    def mult_adds(self, in_shape):
        out = self.output_shape(in_shape)
        return int(np.prod(out)) * self.in_channels * int(np.prod(self.kernel_size))

    def spec(self):
        one = (lambda t: t[0]) if self.ndim == 1 else list
        return {"type": "conv", "filters": self.out_channels, "size": one(self.kernel_size),
                "stride": one(self.stride), "pad": self.padding if self.padding == "same" else one(self.padding),
                "dilation": one(self.dilation), "bias": "bias" in self.params}

    def __repr__(self):
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, dilation={self.dilation})")


class Conv2D(_Conv):
    """2D convolution (cross-correlation, as PyTorch): x (N, C, H, W) -> (N, F, OH, OW).

    weight (F, C, KH, KW), bias (F,). OH = (H + 2P - D*(KH-1) - 1) // S + 1, likewise OW.
    ``padding='same'`` gives OH = ceil(H / S), the extra pixel at the end (Keras/TensorFlow).
    """

    ndim = 2

    def forward(self, x, training=False):
        check_input(self, x, 4, self.in_channels, f"(N, {self.in_channels}, H, W)")
        self.output_shape(x.shape[1:])  # a clear error if the input is too small
        (pt, pb), (pl, pr) = self._pads(x.shape[2:])
        out, self._cache = conv2d_forward(x, self.params["weight"], self.params.get("bias"), self.stride,
                                          (pt, pb, pl, pr), self.dilation, keep_cache=training,
                                          workspace=self._workspace if training else None)
        return out

    def backward(self, dy, input_grad=True):
        dx, dweight, dbias = conv2d_backward(dy, self._take_cache(), input_grad, self._workspace)
        self._set_grad("weight", dweight)
        if dbias is not None:
            self._set_grad("bias", dbias)
        return dx


class Conv1D(_Conv):
    """1D convolution: x (N, C, L) -> (N, F, OL); weight (F, C, K), bias (F,).

    OL = (L + 2P - D*(K-1) - 1) // S + 1; ``padding='same'`` gives OL = ceil(L / S).
    """

    ndim = 1

    def forward(self, x, training=False):
        check_input(self, x, 3, self.in_channels, f"(N, {self.in_channels}, L)")
        self.output_shape(x.shape[1:])
        (pads,) = self._pads(x.shape[2:])
        out, self._cache = conv1d_forward(x, self.params["weight"], self.params.get("bias"), self.stride[0],
                                          pads, self.dilation[0], keep_cache=training,
                                          workspace=self._workspace if training else None)
        return out

    def backward(self, dy, input_grad=True):
        dx, dweight, dbias = conv1d_backward(dy, self._take_cache(), input_grad, self._workspace)
        self._set_grad("weight", dweight)
        if dbias is not None:
            self._set_grad("bias", dbias)
        return dx
