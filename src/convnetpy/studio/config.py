"""What the page's Set up panel sends, checked: the net's specs, the dataset it names and the optimizer's settings.

Specs arrive as JSON text and are parsed with ``json.loads`` and validated by ``convnetpy.specs`` (never
evaluated as code). Before any weight is allocated, the parameters are counted from the specs, so a net of
billions of parameters is refused with a message instead of exhausting memory. Every error is a ``SetupError``
that says which part of the page it belongs to (``field``: "spec", "dataset" or "settings").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import ConvnetpyError, SpecError
from ..functional.conv import conv_output_size, same_padding
from ..optim import OPTIMIZERS
from ..specs import HEADS, validate
from ..train import FitConfig

MAX_SPEC_CHARS = 100_000
MAX_PARAMS = 20_000_000  # 80 MB of float32 weights: far beyond what NumPy trains in a browser session's patience


class SetupError(ConvnetpyError):
    """A setup the studio cannot run; ``field`` is the page element the message is shown next to."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def parse_specs(text) -> list[dict]:
    """The spec list in ``text`` (JSON, or an already parsed list), validated; SetupError(field="spec") if not.

    Shape errors (a conv larger than its input, a ragged stride) are found when the net is built
    (``build_net``); this only checks the JSON and each spec's keys and values.
    """
    if isinstance(text, str):
        if len(text) > MAX_SPEC_CHARS:
            raise SetupError(f"the specs are {len(text):,} characters long; at most {MAX_SPEC_CHARS:,}", "spec")
        try:
            specs = json.loads(text)
        except json.JSONDecodeError as e:
            raise SetupError(f"the specs are not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
                             "spec") from None
    else:
        specs = text
    try:
        return validate(specs)
    except SpecError as e:
        raise SetupError(str(e), "spec") from None


def _per_axis(value, n: int) -> list[int]:
    return list(value) if isinstance(value, list) else [value] * n


def count_params(clean: list[dict]) -> int:
    """Parameters of the net that validated specs describe, counted without building it.

    Follows the output-size arithmetic of the conv and pool layers (``functional.conv``); where a shape would
    be invalid it stops counting, and building the net then reports the problem precisely.
    """
    shape, total = list(clean[0]["shape"]), 0  # (C, H, W), (C, L) or (D,)
    for spec in clean[1:]:
        kind = spec["type"]
        if kind in ("conv", "pool"):
            if len(shape) not in (2, 3):
                return total
            sizes, n = shape[1:], len(shape) - 1
            k, d = _per_axis(spec["size"], n), _per_axis(spec.get("dilation", 1), n)
            s = k if spec["stride"] is None else _per_axis(spec["stride"], n)
            if spec["pad"] == "same":
                pads = [same_padding(m, ki, si, di) for m, ki, si, di in zip(sizes, k, s, d)]
            else:
                pads = [(p, p) for p in _per_axis(0 if spec["pad"] == "valid" else spec["pad"], n)]
            if len(k) != n or len(s) != n or len(d) != n or len(pads) != n:
                return total
            out = [conv_output_size(m, ki, si, pb, pa, di) for m, ki, si, di, (pb, pa) in zip(sizes, k, s, d, pads)]
            if min(out) < 1:
                return total
            if kind == "conv":
                total += spec["filters"] * shape[0] * math.prod(k) + (spec["filters"] if spec["bias"] else 0)
                shape = [spec["filters"], *out]
            else:
                shape = [shape[0], *out]
        elif kind in ("fc", *HEADS):
            width = spec.get("neurons") or spec.get("classes") or spec.get("outputs")
            total += math.prod(shape) * width + (width if spec.get("bias", True) else 0)
            shape = [width]
        elif kind == "batchnorm":
            total += 2 * shape[0]
        elif kind == "flatten":
            shape = [math.prod(shape)]
    return total


def build_net(text, seed: int = 0):
    """A Net from spec JSON (or a parsed list); SetupError(field="spec") naming the layer and the problem."""
    from ..net import Net

    clean = parse_specs(text)
    n = count_params(clean)
    if n > MAX_PARAMS:
        raise SetupError(f"the net has {n:,} parameters; the studio trains at most {MAX_PARAMS:,}", "spec")
    try:
        return Net(clean, seed=seed)
    except SpecError as e:
        raise SetupError(str(e), "spec") from None


# The settings a running session may change between steps, with the FitConfig field each one sets.
LIVE_SETTINGS = ("lr", "momentum", "batch_size", "weight_decay")


def _number(payload: dict, key: str, kind, low: float, high: float, default):
    value = payload.get(key, default)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise SetupError(f"{key} must be a {'number' if kind is float else 'whole number'}, got {value!r}",
                         "settings")
    if not (low <= value <= high) or (kind is float and not math.isfinite(value)):
        raise SetupError(f"{key} must be between {low:g} and {high:g}, got {value!r}", "settings")
    return kind(value)


def live_settings(payload: dict) -> dict:
    """The live settings in ``payload`` (any of lr, momentum, batch_size, weight_decay), checked."""
    unknown = sorted(set(payload) - set(LIVE_SETTINGS))
    if unknown:
        raise SetupError(f"cannot change {', '.join(unknown)} while training; live settings: "
                         f"{', '.join(LIVE_SETTINGS)}", "settings")
    return {k: _RULES[k](payload) for k in payload}


_RULES = {
    "lr": lambda p: _number(p, "lr", float, 1e-8, 10.0, None),
    "momentum": lambda p: _number(p, "momentum", float, 0.0, 0.999, None),
    "batch_size": lambda p: _number(p, "batch_size", int, 1, 4096, None),
    "weight_decay": lambda p: _number(p, "weight_decay", float, 0.0, 1.0, None),
}


@dataclass
class Setup:
    """A checked request to train: the dataset's id, the net's clean specs, and the FitConfig settings."""

    dataset: str
    specs: list[dict]
    config: FitConfig


def parse_setup(payload: dict, flip_default: dict[str, bool]) -> Setup:
    """``payload`` from the page: {"dataset", "specs" (JSON text), "optimizer", "lr", "momentum", "nesterov",
    "batch_size", "weight_decay", "epochs", "augment", "seed"} -> Setup, or SetupError naming the field."""
    if not isinstance(payload, dict):
        raise SetupError("the setup must be a JSON object", "settings")
    dataset = payload.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise SetupError("choose a dataset", "dataset")
    specs = parse_specs(payload.get("specs"))
    optimizer = payload.get("optimizer", "sgd")
    if optimizer not in OPTIMIZERS:
        raise SetupError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}", "settings")
    default_lr = {"adam": 0.001, "adadelta": 1.0}.get(optimizer, 0.01)
    settings = {k: _RULES[k]({**{"lr": default_lr, "momentum": 0.9, "batch_size": 64, "weight_decay": 5e-4},
                              **payload}) for k in LIVE_SETTINGS}
    epochs = _number(payload, "epochs", int, 1, 100_000, 10)
    seed = _number(payload, "seed", int, 0, 2**31 - 1, 0)
    nesterov, augment = payload.get("nesterov", False), payload.get("augment", True)
    if not isinstance(nesterov, bool) or not isinstance(augment, bool):
        raise SetupError("nesterov and augment must be true or false", "settings")
    if nesterov and (optimizer != "sgd" or settings["momentum"] <= 0):
        raise SetupError("Nesterov momentum needs the sgd optimizer and momentum > 0", "settings")
    config = FitConfig(**settings, optimizer=optimizer, epochs=epochs, nesterov=nesterov, augment=augment,
                       flip=flip_default.get(dataset, True), max_shift=2 if augment else 0, seed=seed)
    return Setup(dataset, specs, config)
