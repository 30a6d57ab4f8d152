"""A Keras-style summary table: layer, output shape, parameters, multiply-adds and receptive field per layer."""

from __future__ import annotations

import numpy as np

from .layers import ACTIVATIONS, BatchNorm1D, BatchNorm2D, Dropout, Flatten

# Layers whose every output value depends on one value of their input: they keep the receptive field.
_POINTWISE = (*ACTIVATIONS.values(), BatchNorm1D, BatchNorm2D, Dropout, Flatten)


def _describe(layer) -> str:
    spec = layer.spec()
    if spec["type"] == "conv":
        k = "x".join(map(str, layer.kernel_size))
        extra = f", stride {layer.stride}" if max(layer.stride) > 1 else ""
        pad = layer.padding if layer.padding == "same" else tuple(layer.padding)
        return f"{type(layer).__name__} {k}x{layer.out_channels}, pad {pad}{extra}"
    if spec["type"] == "pool":
        k = "x".join(map(str, layer.kernel_size))
        return f"{type(layer).__name__} {k}, stride {'x'.join(map(str, layer.stride))}"
    if spec["type"] == "fc":
        return f"Dense {layer.in_features}->{layer.out_features}"
    return repr(layer)


def receptive_fields(net) -> list[tuple[int, ...] | None]:
    """Per layer, the input pixels (H, W) or samples (L,) that one output value of that layer can see.

    The standard recurrence over conv and pool layers, starting from r = j = 1 per axis:
    r_out = r_in + (K - 1) * D * j_in and j_out = j_in * S, where j is the distance in input pixels between
    neighbouring outputs (Araujo et al. 2019, "Computing receptive fields of convolutional neural
    networks", Distill). Padding does not change it, and it may exceed the input: the CIFAR-10 net's
    third pool sees 36x36 of a 32x32 image. None once a Dense layer has mixed every position (its units see
    the whole input), and for every layer of a net on flat vectors.
    """
    ndim = len(net.input_shape) - 1
    r, j = ((1,) * ndim, (1,) * ndim) if ndim in (1, 2) else (None, None)
    fields = []
    for layer in net.layers:
        if r is not None and layer.type in ("conv", "pool"):
            dilation = getattr(layer, "dilation", (1,) * ndim)
            r = tuple(ri + (k - 1) * d * ji for ri, k, d, ji in zip(r, layer.kernel_size, dilation, j))
            j = tuple(ji * s for ji, s in zip(j, layer.stride))
        elif not isinstance(layer, _POINTWISE):
            r = None  # Dense (or a layer we cannot see into): each output depends on the whole input
        fields.append(r)
    return fields


def summary_rows(net) -> list[dict]:
    """One dict per layer: index, name, output shape, parameter count, multiply-adds per example and
    receptive field ((RH, RW) or (RL,) in input pixels, None when the layer sees the whole input)."""
    rows, shape = [], net.input_shape
    for i, (layer, field) in enumerate(zip(net.layers, receptive_fields(net))):
        macs = layer.mult_adds(shape)
        shape = layer.output_shape(shape)
        rows.append({"index": i, "layer": _describe(layer), "output_shape": shape,
                     "params": int(sum(v.size for v in layer.params.values())), "mult_adds": int(macs),
                     "receptive_field": field})
    return rows


def summary(net) -> str:
    rows = summary_rows(net)
    spatial = len(net.input_shape) > 1  # a receptive-field column for images and signals only
    table = [("#", "layer", "output shape", "params", "mult-adds", "receptive field"),
             ("", "input", str(net.input_shape), "", "", "")]
    table += [(str(r["index"]), r["layer"], str(r["output_shape"]), f"{r['params']:,}", f"{r['mult_adds']:,}",
               "x".join(map(str, r["receptive_field"])) if r["receptive_field"] else "all")
              for r in rows]
    columns = 6 if spatial else 5
    widths = [max(len(row[c]) for row in table) for c in range(columns)]
    align = ["<", "<", "<", ">", ">", "<"]

    def line(row):
        return "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    total_params = sum(r["params"] for r in rows)
    total_macs = sum(r["mult_adds"] for r in rows)
    head = f", head: {net.head}" if net.head else ""
    out = [line(table[0]), rule, *map(line, table[1:]), rule,
           f"total: {total_params:,} parameters, {total_macs:,} multiply-adds per example{head}",
           f"memory: {total_params * np.dtype(net.dtype).itemsize:,} bytes of {np.dtype(net.dtype).name} parameters"]
    return "\n".join(out)
