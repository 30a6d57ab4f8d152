"""Elementwise nonlinearities. Each keeps the input's memory layout (NumPy's order 'K')."""

from __future__ import annotations

import numpy as np

from ..functional.parallel import over_batch
from .base import Layer, check_input

_ANY = "(N, ...)"


class ReLU(Layer):
    """y = max(x, 0); dy flows where y > 0 (the gradient at exactly 0 is taken as 0, as PyTorch)."""
    shardable = True

    type = "relu"

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(1, 8)), None, _ANY)
        y = np.empty_like(x)
        over_batch(lambda b: np.maximum(x[b], 0, out=y[b]), len(x), x.size)
        self._cache = y if training else None
        return y

    def backward(self, dy, input_grad=True):
        y = self._take_cache()
        if not input_grad:
            return None
        dx = np.empty_like(dy)
        # A boolean mask multiplies ~5x faster than np.where.
        over_batch(lambda b: np.multiply(dy[b], y[b] > 0, out=dx[b]), len(dy), dy.size)
        return dx


class LeakyReLU(Layer):
    """y = x for x > 0, else negative_slope * x."""
    shardable = True

    type = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(1, 8)), None, _ANY)
        positive = x > 0
        self._cache = positive if training else None
        return np.where(positive, x, x * self.negative_slope)

    def backward(self, dy, input_grad=True):
        positive = self._take_cache()
        return np.where(positive, dy, dy * self.negative_slope) if input_grad else None

    def spec(self):
        return {"type": self.type, "negative_slope": self.negative_slope}


class Tanh(Layer):
    """y = tanh(x); dx = dy * (1 - y^2)."""
    shardable = True

    type = "tanh"

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(1, 8)), None, _ANY)
        y = np.tanh(x)
        self._cache = y if training else None
        return y

    def backward(self, dy, input_grad=True):
        y = self._take_cache()
        return dy * (1 - y * y) if input_grad else None


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), computed without overflow; dx = dy * y * (1 - y)."""
    shardable = True

    type = "sigmoid"

    def forward(self, x, training=False):
        check_input(self, x, tuple(range(1, 8)), None, _ANY)
        # 0.5 * (1 + tanh(x / 2)) equals the logistic function and never overflows exp.
        y = 0.5 * (1 + np.tanh(0.5 * x))
        self._cache = y if training else None
        return y

    def backward(self, dy, input_grad=True):
        y = self._take_cache()
        return dy * y * (1 - y) if input_grad else None


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid}
