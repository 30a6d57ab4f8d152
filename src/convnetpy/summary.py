"""A Keras-style summary table: layer, output shape, parameters and multiply-adds per example."""

from __future__ import annotations

import numpy as np


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


def summary_rows(net) -> list[dict]:
    """One dict per layer: index, name, output shape, parameter count and multiply-adds per example."""
    rows, shape = [], net.input_shape
    for i, layer in enumerate(net.layers):
        macs = layer.mult_adds(shape)
        shape = layer.output_shape(shape)
        rows.append({"index": i, "layer": _describe(layer), "output_shape": shape,
                     "params": int(sum(v.size for v in layer.params.values())), "mult_adds": int(macs)})
    return rows


def summary(net) -> str:
    rows = summary_rows(net)
    table = [("#", "layer", "output shape", "params", "mult-adds"),
             ("", "input", str(net.input_shape), "", "")]
    table += [(str(r["index"]), r["layer"], str(r["output_shape"]), f"{r['params']:,}", f"{r['mult_adds']:,}")
              for r in rows]
    widths = [max(len(row[c]) for row in table) for c in range(5)]
    align = ["<", "<", "<", ">", ">"]

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
