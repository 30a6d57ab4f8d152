"""Layer specs: validate them, fill in defaults, and desugar them into layers, as ConvNetJS's ``layer_defs``.

A net is a JSON-serialisable list of dicts, the first one ``{"type": "input", "shape": [C, H, W]}``
(or ``[C, L]`` for signals, ``[D]`` for vectors) and the last one usually a loss head such as
``{"type": "softmax", "classes": 10}``. Desugaring, as in ConvNetJS:

- ``"activation": "relu"`` on a conv or fc spec becomes its own layer after it;
- ``"dropout": p`` on an fc spec becomes a Dropout layer after the activation;
- an fc spec (or a head) on an image or signal gets a Flatten in front of it;
- a head (``softmax``, ``svm``, ``regression``) becomes the fully connected layer that computes its scores;
  the loss itself is applied by ``Net.loss``.

Errors name the layer index, its type, the key, what was expected and what was received.

Conv and pool specs are strict about sizes, unlike the layer classes (which floor, as PyTorch): an output
size ``(N - D*(K-1) - 1 + 2P) / S + 1`` that is not a whole number is a SpecError showing the arithmetic
and the nearest pads, strides or sizes that fit, unless the spec says ``"ragged": true`` (then the size
is floored and the last padded positions go unread, as in PyTorch). An empty output is always an error.
``"pad": "same"`` is never ragged: its output is ceil(N / S) by definition.
"""

from __future__ import annotations

import difflib
import numbers

import numpy as np

from .errors import ShapeError, SpecError
from .layers import (
    ACTIVATIONS,
    AvgPool1D,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool1D,
    MaxPool2D,
)
from .shape_debugger import check_spec

HEADS = ("softmax", "svm", "regression")
REQUIRED = object()  # marks a key without a default


# -- value checkers: each returns the normalised value or raises ValueError("expected ...") ----------------
def _positive_int(v):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1:
        return int(v)
    raise ValueError("a positive integer")


def _nonneg_int(v):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0:
        return int(v)
    raise ValueError("a non-negative integer")


def _size(v, check=_positive_int, what="a positive integer or a list of them"):
    try:
        return check(v)
    except ValueError:
        pass
    if isinstance(v, (list, tuple)) and 1 <= len(v) <= 2:
        try:
            return [check(x) for x in v]
        except ValueError:
            pass
    raise ValueError(what)


def _padding(v):
    if v in ("same", "valid"):
        return v
    return _size(v, _nonneg_int, "'same', 'valid', a non-negative integer or a list of them")


def _optional_size(v):
    return None if v is None else _size(v)


def _shape(v):
    if isinstance(v, (list, tuple)) and 1 <= len(v) <= 3:
        try:
            return [_positive_int(x) for x in v]
        except ValueError:
            pass
    raise ValueError("a list of 1 to 3 positive integers: [C, H, W], [C, L] or [D]")


def _bool(v):
    if isinstance(v, bool):
        return v
    raise ValueError("true or false")


def _probability(v):
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1:
        return float(v)
    raise ValueError("a number in [0, 1)")


def _optional_probability(v):
    return None if v is None else _probability(v)


def _positive_float(v):
    if isinstance(v, numbers.Real) and not isinstance(v, bool) and v > 0:
        return float(v)
    raise ValueError("a positive number")


def _float(v):
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return float(v)
    raise ValueError("a number")


def _activation(v):
    if v is None or v in ACTIVATIONS:
        return v
    raise ValueError(f"one of {sorted(ACTIVATIONS)} (or null)")


def _pool_mode(v):
    if v in ("max", "avg"):
        return v
    raise ValueError("'max' or 'avg'")


# type -> {key: (checker, default)}
SCHEMA: dict[str, dict[str, tuple]] = {
    "input": {"shape": (_shape, REQUIRED)},
    "conv": {"filters": (_positive_int, REQUIRED), "size": (_size, REQUIRED), "stride": (_size, 1),
             "pad": (_padding, 0), "dilation": (_size, 1), "bias": (_bool, True), "activation": (_activation, None),
             "ragged": (_bool, False)},
    "pool": {"size": (_size, REQUIRED), "stride": (_optional_size, None),
             "pad": (lambda v: _size(v, _nonneg_int, "a non-negative integer or a list of them"), 0),
             "mode": (_pool_mode, "max"), "ragged": (_bool, False)},
    "fc": {"neurons": (_positive_int, REQUIRED), "bias": (_bool, True), "activation": (_activation, None),
           "dropout": (_optional_probability, None)},
    "relu": {}, "tanh": {}, "sigmoid": {},
    "leaky_relu": {"negative_slope": (_float, 0.01)},
    "dropout": {"p": (_probability, 0.5)},
    "batchnorm": {"eps": (_positive_float, 1e-5), "momentum": (_probability, 0.1)},
    "flatten": {},
    "softmax": {"classes": (_positive_int, REQUIRED)},
    "svm": {"classes": (_positive_int, REQUIRED)},
    "regression": {"outputs": (_positive_int, REQUIRED)},
}


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate(specs) -> list[dict]:
    """Check a spec list and return a copy with every default filled in; raise SpecError naming the problem."""
    if not isinstance(specs, (list, tuple)) or not specs:
        raise SpecError(f"a net is a non-empty list of layer specs, got {type(specs).__name__}")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise SpecError(f"layer {i}: a spec must be a dict like {{'type': 'conv', ...}}, got {spec!r}")
        kind = spec.get("type")
        if kind not in SCHEMA:
            raise SpecError(f"layer {i}: unknown type {kind!r}{_suggest(str(kind), SCHEMA)}; "
                            f"known types: {', '.join(SCHEMA)}")
        schema = SCHEMA[kind]
        for key in spec:
            if key != "type" and key not in schema:
                allowed = ", ".join(schema) or "none"
                raise SpecError(f"layer {i} ({kind}): unknown key {key!r}{_suggest(key, schema)}; "
                                f"allowed keys: {allowed}")
        clean = {"type": kind}
        for key, (check, default) in schema.items():
            if key not in spec:
                if default is REQUIRED:
                    raise SpecError(f"layer {i} ({kind}): missing key {key!r}")
                clean[key] = default
                continue
            try:
                clean[key] = check(spec[key])
            except ValueError as e:
                raise SpecError(f"layer {i} ({kind}): key {key!r} expected {e}, got {spec[key]!r}") from None
        out.append(clean)
    if out[0]["type"] != "input":
        raise SpecError(f"layer 0: the first spec must be {{'type': 'input', 'shape': [...]}}, got type "
                        f"{out[0]['type']!r}")
    for i, spec in enumerate(out[1:], start=1):
        if spec["type"] == "input":
            raise SpecError(f"layer {i} (input): only the first spec may be an input")
        if spec["type"] in HEADS and i != len(out) - 1:
            raise SpecError(f"layer {i} ({spec['type']}): a loss head must be the last spec")
    return out


def _spatial(i: int, kind: str, in_shape: tuple[int, ...]) -> int:
    """Number of spatial axes of an input that a conv or pool layer can take (1 or 2)."""
    if len(in_shape) not in (2, 3):
        raise SpecError(f"layer {i} ({kind}): needs an image [C, H, W] or a signal [C, L] as input, "
                        f"got shape {list(in_shape)}")
    return len(in_shape) - 1


def _uses_relu(specs: list[dict], i: int) -> bool:
    """He initialisation when a ReLU-family activation follows this layer, LeCun's otherwise."""
    nxt = specs[i + 1]["type"] if i + 1 < len(specs) else None
    return specs[i].get("activation") in ("relu", "leaky_relu") or nxt in ("relu", "leaky_relu")


def _expand(i: int, spec: dict, specs: list[dict], in_shape, rng, dtype) -> list[Layer]:
    """The layers one validated spec stands for, given its input shape (no batch axis)."""
    kind = spec["type"]
    init = "he" if _uses_relu(specs, i) else "lecun"
    if kind == "conv":
        cls = Conv2D if _spatial(i, kind, in_shape) == 2 else Conv1D
        layers = [cls(in_shape[0], spec["filters"], spec["size"], spec["stride"], spec["pad"], spec["dilation"],
                      spec["bias"], rng=rng, init=init, dtype=dtype)]
    elif kind == "pool":
        two_d = _spatial(i, kind, in_shape) == 2
        cls = {("max", True): MaxPool2D, ("avg", True): AvgPool2D,
               ("max", False): MaxPool1D, ("avg", False): AvgPool1D}[spec["mode"], two_d]
        layers = [cls(spec["size"], spec["stride"], spec["pad"])]
    elif kind in ("fc", *HEADS):
        flatten = [Flatten()] if len(in_shape) > 1 else []
        width = spec.get("neurons") or spec.get("classes") or spec.get("outputs")
        fan_in = int(np.prod(in_shape))
        layers = [*flatten, Dense(fan_in, width, spec.get("bias", True), rng=rng,
                                  init=init if kind == "fc" else "lecun", dtype=dtype)]
    elif kind == "batchnorm":
        cls = BatchNorm2D if len(in_shape) == 3 else BatchNorm1D
        layers = [cls(in_shape[0], spec["eps"], spec["momentum"], dtype=dtype)]
    elif kind == "dropout":
        layers = [Dropout(spec["p"], rng=rng)]
    elif kind == "flatten":
        layers = [Flatten()]
    elif kind == "leaky_relu":
        layers = [ACTIVATIONS[kind](spec["negative_slope"])]
    else:  # relu, tanh, sigmoid
        layers = [ACTIVATIONS[kind]()]
    if spec.get("activation"):
        layers.append(ACTIVATIONS[spec["activation"]]())
    if spec.get("dropout"):
        layers.append(Dropout(spec["dropout"], rng=rng))
    return layers


def build(specs, rng: np.random.Generator | None = None, dtype=np.float32):
    """Validate and desugar ``specs``; return (clean specs, layers, input shape, head or None)."""
    clean = validate(specs)
    shape = tuple(clean[0]["shape"])
    input_shape, layers = shape, []
    for i, spec in enumerate(clean[1:], start=1):
        try:
            for layer in _expand(i, spec, clean, shape, rng, dtype):
                if isinstance(layer, (Conv1D, Conv2D, MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D)):
                    check_spec(layer, shape, spec["ragged"], stride_is_size=spec.get("stride", 1) is None)
                shape = layer.output_shape(shape)
                layers.append(layer)
        except SpecError:  # already names the layer (e.g. a conv on a flat input)
            raise
        except (ShapeError, ValueError) as e:  # a layer refused its arguments or its input size
            raise SpecError(f"layer {i} ({spec['type']}) on input {list(shape)}: {e}") from None
    head = clean[-1]["type"] if clean[-1]["type"] in HEADS else None
    return clean, layers, input_shape, head
