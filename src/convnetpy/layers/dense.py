"""Fully connected layer and the Flatten that feeds it."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import Layer, check_input, init_weight


class Dense(Layer):
    """y = x @ weight.T + bias: x (N, in_features) -> (N, out_features); weight (out, in) as PyTorch."""
    shardable = True

    type = "fc"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, init: str = "he", dtype=np.float32) -> None:
        super().__init__()
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        if self.in_features < 1 or self.out_features < 1:
            raise ValueError(f"Dense: in_features and out_features must be >= 1, got "
                             f"{self.in_features}, {self.out_features}")
        weight = init_weight(rng, (self.out_features, self.in_features), self.in_features, init, dtype)
        self._add_param("weight", weight, decay=1.0)
        if bias:
            self._add_param("bias", np.zeros(self.out_features, dtype=dtype), decay=0.0)

    def forward(self, x, training=False):
        check_input(self, x, 2, self.in_features, f"(N, {self.in_features})")
        y = x @ self.params["weight"].T  # (N, out)
        if "bias" in self.params:
            y += self.params["bias"]
        self._cache = x if training else None
        return y

    def backward(self, dy, input_grad=True):
        x = self._take_cache()  # (N, in)
        self._set_grad("weight", dy.T @ x)  # (out, in)
        if "bias" in self.params:
            self._set_grad("bias", dy.sum(axis=0))
        return dy @ self.params["weight"] if input_grad else None  # (N, in)

    def output_shape(self, in_shape):
        if tuple(in_shape) != (self.in_features,):
            hint = " (put a Flatten before it)" if len(in_shape) > 1 else ""
            raise ShapeError(f"Dense expects {self.in_features} features per example, got shape "
                             f"{tuple(in_shape)}{hint}")
        return (self.out_features,)

    def mult_adds(self, in_shape):
        return self.in_features * self.out_features

    def spec(self):
        return {"type": "fc", "neurons": self.out_features, "bias": "bias" in self.params}

    def __repr__(self):
        return f"Dense({self.in_features}, {self.out_features})"


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...), in C order (as torch.flatten(x, 1))."""
    shardable = True

    type = "flatten"

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(2, 8)), None, "(N, ...)")
        self._cache = x.shape if training else None
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, input_grad=True):
        shape = self._take_cache()
        return dy.reshape(shape) if input_grad else None

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)
