"""Look inside a net: every layer's output for one input, and the arithmetic of one convolution unit.

``explain`` writes out the lecture's formula for one output value of a conv layer with the net's real
numbers: the zero-padded input patch under the filter, the filter's weights, their products, the sum plus
bias, and the activation that follows. Both functions run the net in inference mode (dropout off, batch
norm with its running statistics), layer by layer in list order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ShapeError
from .layers import Conv1D, Conv2D, LeakyReLU, ReLU, Sigmoid, Tanh

_ACTIVATIONS = (ReLU, LeakyReLU, Tanh, Sigmoid)


def _one_example(net, x: np.ndarray, who: str) -> np.ndarray:
    """x as a batch of one (1, *input_shape) in the net's dtype; x is one example or a batch of one."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{who} expects a NumPy array, got {type(x).__name__}")
    if x.shape == net.input_shape:
        x = x[None]
    elif x.shape != (1, *net.input_shape):
        raise ShapeError(f"{who}: x must be one example of shape {net.input_shape} or a batch of one "
                         f"{(1, *net.input_shape)}, got {x.shape}")
    net._check_input(x)  # float dtype
    return x.astype(net.dtype, copy=False)


def activations(net, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's output for one input, for plots: one array per layer of ``net.layers``, in that order.

    x: one example (*input_shape) or a batch of one (1, *input_shape). Returns arrays without the batch
    axis, e.g. (F, OH, OW) after a Conv2D. Layers run in list order (``Net.forward`` runs a max pool before
    the ReLU in front of it, which gives the same final values but different per-layer outputs).
    """
    x = _one_example(net, x, "activations")
    outputs = []
    for layer in net.layers:
        x = layer.forward(x, training=False)
        outputs.append(x[0].copy())  # a copy: some layers return their input (Dropout) or a view (Flatten)
    return outputs


def _conv_index(net, layer: int) -> int:
    convs = [i for i, lay in enumerate(net.layers) if isinstance(lay, (Conv1D, Conv2D))]
    if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool) or not -len(net) <= layer < len(net):
        raise IndexError(f"explain: layer must be an index into net.layers (0 to {len(net) - 1}), got {layer!r}")
    layer = int(layer) % len(net)
    if layer not in convs:
        raise ValueError(f"explain: layer {layer} is a {type(net.layers[layer]).__name__}; explain works on "
                         f"Conv2D and Conv1D layers (here layers {convs})")
    return layer


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def explain(net, x: np.ndarray, layer: int, position: Sequence[int]) -> dict:
    """The arithmetic of one output value of conv layer ``net.layers[layer]`` for input ``x``.

    x: one example (*input_shape) or a batch of one. position: (filter, row, col) for a Conv2D, (filter,
    index) for a Conv1D, in that layer's output. Returns a dict:

    - ``patch`` (C, KH, KW) or (C, K): the zero-padded window of the layer's input feeding that unit
      (rows ``row*S : row*S + D*(KH-1) + 1 : D`` of the padded input, likewise columns);
    - ``weights`` (C, KH, KW) or (C, K): the filter; ``products``: patch * weights;
    - ``bias``: the filter's bias (0.0 without one); ``pre_activation``: products.sum() + bias, the conv
      layer's output at ``position`` (summed in float64);
    - ``activation``: "relu", "leaky_relu", "tanh" or "sigmoid" when such a layer comes next, else None;
      ``output``: the activation applied to pre_activation (by that layer's own code), else pre_activation;
    - ``formula``: e.g. "relu(sum(patch*weights) + bias) = relu(1.23 + -0.1) = 1.13".
    """
    index = _conv_index(net, layer)
    conv = net.layers[index]
    h = _one_example(net, x, "explain")
    for lay in net.layers[:index]:
        h = lay.forward(h, training=False)  # (1, C, *sizes): the conv layer's input
    out_shape = conv.output_shape(h.shape[1:])  # (F, OH, OW) or (F, OL)
    axes = "(filter, row, col)" if conv.ndim == 2 else "(filter, index)"
    if (not isinstance(position, (tuple, list)) or len(position) != len(out_shape)
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in position)):
        raise ValueError(f"explain: position for a {type(conv).__name__} is {axes}, got {position!r}")
    if not all(0 <= p < n for p, n in zip(position, out_shape)):
        raise IndexError(f"explain: position {tuple(int(p) for p in position)} is outside layer {index} "
                         f"({type(conv).__name__})'s output of shape {out_shape}")
    f, *where = (int(p) for p in position)
    padded = np.pad(h[0], ((0, 0), *conv._pads(h.shape[2:])))  # (C, H + pads, W + pads), zeros
    window = tuple(slice(o * s, o * s + d * (k - 1) + 1, d)
                   for o, s, d, k in zip(where, conv.stride, conv.dilation, conv.kernel_size))
    patch = padded[(slice(None), *window)].copy()  # (C, KH, KW)
    weights = conv.params["weight"][f].copy()  # (C, KH, KW)
    products = patch * weights
    has_bias = "bias" in conv.params
    bias = float(conv.params["bias"][f]) if has_bias else 0.0
    total = float(products.sum(dtype=np.float64))
    pre = total + bias
    after = net.layers[index + 1] if index + 1 < len(net) else None
    activation = after.type if isinstance(after, _ACTIVATIONS) else None
    output = float(after.forward(np.array([pre], net.dtype))[0]) if activation else pre

    inner, numbers = "sum(patch*weights)", _fmt(total)
    if has_bias:
        inner, numbers = inner + " + bias", f"{numbers} + {_fmt(bias)}"
    formula = (f"{activation}({inner}) = {activation}({numbers}) = {_fmt(output)}" if activation
               else f"{inner} = {numbers} = {_fmt(pre)}")
    return {"patch": patch, "weights": weights, "products": products, "bias": bias, "pre_activation": pre,
            "activation": activation, "output": output, "formula": formula}
