"""What the page draws, as JSON-ready dicts: the layer table, one example's activations and the conv filters with
their gradients, test cards with top-3 classes, the confusion matrix and the most confused examples.

Arrays travel as ``encode(a)``: ``{"shape", "min", "max", "data"}`` where data is base64 of uint8 levels 0-255
spread between the array's min and max (as ConvNetJS scales a whole layer's maps together), a quarter of float32's
size and plenty for a picture; min and max give the real range. Everything here runs in the trainer thread
(``Session.call``): inference passes clear the caches a training step needs, so they must not interleave with one.
"""

from __future__ import annotations

import base64

import numpy as np

from ..introspect import activations, explain
from ..layers import ACTIVATIONS, Conv1D, Conv2D
from ..losses import softmax
from ..summary import summary_rows

MAX_MAPS = 64  # feature maps (or filters) sent per layer; a wider layer says "64 of 256"
MAX_CHANNELS = 16  # input channels of each filter drawn
MAX_UNITS = 1024  # values of a flat (D,) layer output drawn


def encode(a: np.ndarray) -> dict:
    """``a`` (any shape) as 8-bit levels between its min and max: {"shape", "min", "max", "data" (base64)}."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float32), posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if hi > lo:
        levels = np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    else:
        levels = np.full(a.shape, 128, np.uint8)
    return {"shape": list(a.shape), "min": lo, "max": hi, "data": base64.b64encode(levels.tobytes()).decode()}


def encode_example(x: np.ndarray) -> dict:
    """A dataset example: uint8 image (C, H, W) sent as its own pixels (min 0, max 255); a float signal (C, L)
    scaled by ``encode``."""
    if x.dtype == np.uint8:
        return {"shape": list(x.shape), "min": 0.0, "max": 255.0, "data": base64.b64encode(x.tobytes()).decode()}
    return encode(x)


def layer_rows(net) -> list[dict]:
    """Per layer: index, type, description, output shape and parameter count (the network view's headings)."""
    return [{"index": r["index"], "type": layer.type, "name": r["layer"], "output_shape": list(r["output_shape"]),
             "params": r["params"]} for r, layer in zip(summary_rows(net), net.layers)]


def explainable(net) -> dict[int, int]:
    """Layer index -> the conv layer ``explain`` works on: each conv layer, and an activation right after one."""
    out = {}
    for i, layer in enumerate(net.layers):
        if isinstance(layer, (Conv1D, Conv2D)):
            out[i] = i
            if i + 1 < len(net.layers) and isinstance(net.layers[i + 1], tuple(ACTIVATIONS.values())):
                out[i + 1] = i
    return out


def network_view(net, pre, example: np.ndarray, label: int | None, classes: list[str]) -> dict:
    """One example through the net: input, every layer's output, conv filters and their last gradients.

    example: one dataset image (C, H, W) uint8 or signal (C, L). Returns {"input", "label", "probs",
    "layers": [{"index", "activations", "maps"[, "filters", "filter_grads", "rgb"]}]}: activations are
    (maps, H, W), (maps, L) or (units,) after the caps above; filters (F, C, KH, KW) or (F, C, K).
    """
    x = pre(example[None])  # (1, *input_shape), deterministic (centre crop, no augmentation)
    outputs = activations(net, x)
    first_conv = next((i for i, layer in enumerate(net.layers) if isinstance(layer, (Conv1D, Conv2D))), None)
    layers = []
    for i, (layer, a) in enumerate(zip(net.layers, outputs)):
        entry = {"index": i, "maps": int(a.shape[0]) if a.ndim > 1 else 1,
                 "activations": encode(a[:MAX_MAPS] if a.ndim > 1 else a[:MAX_UNITS])}
        if isinstance(layer, (Conv1D, Conv2D)):
            w, g = layer.params["weight"], layer.grads["weight"]  # (F, C, KH, KW) or (F, C, K)
            rgb = i == first_conv and w.ndim == 4 and w.shape[1] == 3
            channels = 3 if rgb else MAX_CHANNELS
            entry.update(filters=encode(w[:MAX_MAPS, :channels]), filter_grads=encode(g[:MAX_MAPS, :channels]),
                         rgb=rgb, filter_count=int(w.shape[0]), filter_channels=int(w.shape[1]))
        layers.append(entry)
    probs = softmax(outputs[-1][None])[0]  # (K,) from the last layer's scores: no second forward pass
    return {"input": encode_example(example), "label": None if label is None else int(label),
            "top3": top3(probs, classes), "layers": layers}


def top3(probs: np.ndarray, classes: list[str]) -> list[dict]:
    """The three most likely classes of one example's probabilities (K,): [{"class", "name", "p"}]."""
    best = np.argsort(-probs, kind="stable")[:3]
    return [{"class": int(k), "name": classes[k] if k < len(classes) else str(k), "p": float(probs[k])} for k in best]


def test_cards(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, probs: np.ndarray,
               classes: list[str]) -> list[dict]:
    """Cards for test examples ``indices`` (n,) with their probabilities (n, K): image, true label, top-3."""
    return [{"index": int(i), "image": encode_example(images[i]), "label": int(labels[i]),
             "top3": top3(p, classes)} for i, p in zip(indices, probs)]


def confusion(true: np.ndarray, pred: np.ndarray, k: int) -> list[list[int]]:
    """Counts (K, K): rows the true class, columns the predicted one."""
    return np.bincount(np.asarray(true) * k + np.asarray(pred), minlength=k * k).reshape(k, k).tolist()


def most_confused(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, indices: np.ndarray,
                  n: int = 8) -> np.ndarray:
    """Positions of the ``n`` wrong predictions made with the highest confidence, most confident first."""
    wrong = np.flatnonzero(true != pred)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")]
    _, first = np.unique(indices[order], return_index=True)  # each example once
    return order[np.sort(first)][:n]


def explain_unit(net, pre, example: np.ndarray, layer: int, position: list[int]) -> dict:
    """``convnetpy.explain`` for a clicked unit of layer ``layer`` (a conv layer or the activation after one):
    the formula with real numbers, and the patch, weights and products as nested lists (rounded)."""
    conv = explainable(net).get(layer)
    if conv is None:
        raise ValueError(f"layer {layer} ({net.layers[layer].type}) has no formula to show: click a unit of a "
                         "conv layer or of the activation right after one")
    result = explain(net, pre(example[None]), conv, [int(p) for p in position])

    def rounded(a):
        return np.round(a.astype(np.float64), 4).tolist()

    return {"layer": layer, "conv_layer": conv, "position": [int(p) for p in position],
            "formula": result["formula"], "patch": rounded(result["patch"]), "weights": rounded(result["weights"]),
            "products": rounded(result["products"]), "bias": result["bias"], "output": result["output"],
            "activation": result["activation"]}
