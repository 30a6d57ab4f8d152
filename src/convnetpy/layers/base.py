"""The Layer interface every layer implements, and small helpers they share."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


class Layer:
    """A layer computes ``forward(x, training) -> y`` and ``backward(dy) -> dx`` explicitly.

    ``params`` and ``grads`` are dicts with the same keys and PyTorch's names and shapes. ``backward`` writes
    ``grads`` in place (it never changes ``params``; only optimizers do). ``buffers`` holds state that is
    saved but not learned (BatchNorm running statistics). ``decay`` gives each parameter's weight-decay
    multiplier (ConvNetJS's ``l2_decay_mul``): 1 for weights, 0 for biases and BatchNorm parameters.
    """

    type: str = "layer"  # the spec "type" this layer is written as
    # True when a training pass treats each example on its own, without random numbers, and keeps no state
    # but params, grads, _cache and _workspace: a net may then run a batch as shards on shallow copies of
    # the layer (convnetpy.shards). False unless a layer says so.
    shardable: bool = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.decay: dict[str, float] = {}
        self._cache = None

    # -- the interface -------------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Gradient of the loss w.r.t. the input, given ``dy`` w.r.t. the output; fills ``grads``.

        With ``input_grad=False`` only the parameter gradients are computed and None is returned (a net's
        first layer has nobody to pass dx to).
        """
        raise NotImplementedError

    def output_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one example's output, given one example's input shape (no batch axis)."""
        return tuple(in_shape)

    def mult_adds(self, in_shape: tuple[int, ...]) -> int:
        """Multiply-adds this layer spends on one example (0 for layers without weights)."""
        return 0

    def spec(self) -> dict:
        """The layer written as a JSON-serialisable spec; ``Net`` can rebuild it from this."""
        return {"type": self.type}

    # -- shared helpers ------------------------------------------------------------------------------
    def _add_param(self, name: str, value: np.ndarray, decay: float) -> None:
        self.params[name] = value
        self.grads[name] = np.zeros_like(value)
        self.decay[name] = decay

    def _set_grad(self, name: str, value: np.ndarray) -> None:
        self.grads[name][...] = value  # in place: optimizers may hold references to the array

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before forward(x, training=True): "
                "run a training forward pass first (inference passes keep nothing for backward)")
        return self._cache

    def astype(self, dtype) -> Layer:
        """Cast parameters, gradients and buffers to ``dtype`` (float64 for gradient checks)."""
        for store in (self.params, self.grads, self.buffers):
            for k, v in store.items():
                store[k] = v.astype(dtype)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "type")
        return f"{type(self).__name__}({args})"


def check_input(layer: Layer, x: np.ndarray, ndim: int | tuple[int, ...], channels: int | None,
                layout: str) -> None:
    """Raise a clear error unless ``x`` is a float array with ``ndim`` axes and ``channels`` at axis 1."""
    name = type(layer).__name__
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} expects a NumPy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} expects float32 or float64 input, got {x.dtype} "
                        "(convert images to floats first, e.g. x.astype(np.float32) / 255)")
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in ndims or (channels is not None and x.shape[1] != channels):
        raise ShapeError(f"{name} expects input of shape {layout}, got {tuple(x.shape)}")


def pair(value, name: str) -> tuple[int, int]:
    """Normalise an int or a 2-sequence of ints to a tuple (used for kernel sizes, strides...)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")


def single(value, name: str) -> int:
    """Normalise an int or a 1-sequence of ints to an int (1D sizes)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"{name} must be an int, got {value!r}")


def init_weight(rng: np.random.Generator | None, shape: tuple[int, ...], fan_in: int, init: str,
                dtype) -> np.ndarray:
    """He/Kaiming normal (std sqrt(2 / fan_in)) for ReLU nets, LeCun normal (sqrt(1 / fan_in)) otherwise.

    He et al. 2015, "Delving Deep into Rectifiers": the factor 2 keeps activation variance constant
    through ReLU layers.
    """
    if init not in ("he", "lecun"):
        raise ValueError(f"init must be 'he' or 'lecun', got {init!r}")
    rng = np.random.default_rng() if rng is None else rng
    std = (2.0 if init == "he" else 1.0) / fan_in
    return (rng.standard_normal(shape) * std ** 0.5).astype(dtype)
