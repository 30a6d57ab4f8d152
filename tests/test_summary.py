"""Net.summary's receptive-field column and summary_rows' "receptive_field", checked by hand and against the
input pixels one output really depends on (the nonzero gradient of a linear net)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from convnetpy import Net, models
from convnetpy.summary import summary_rows


def table(net: Net) -> list[list[str]]:
    """The per-layer rows of net.summary(), split into cells."""
    return [cells for line in net.summary().splitlines() if (cells := re.split(r"\s{2,}", line.strip()))[0].isdigit()]


def test_cifar10net_receptive_fields():
    net = Net(models.cifar10net())
    # conv 5x5: 5; pool 2/2: 5 + 1 = 6; conv: 6 + 4*2 = 14; pool: 14 + 1*2 = 16; conv: 16 + 4*4 = 32; pool: 36
    expected = [5, 5, 6, 14, 14, 16, 32, 32, 36, 36, None]
    assert [r["receptive_field"] for r in summary_rows(net)] == [(n, n) if n else None for n in expected]
    assert net.summary().splitlines()[0].split() == ["#", "layer", "output", "shape", "params", "mult-adds",
                                                     "receptive", "field"]
    assert [row[-1] for row in table(net)] == ["5x5", "5x5", "6x6", "14x14", "14x14", "16x16", "32x32", "32x32",
                                               "36x36", "36x36", "all"]
    assert table(net)[0][:5] == ["0", "Conv2D 5x5x16, pad (2, 2)", "(16, 32, 32)", "1,216", "1,228,800"]


@pytest.mark.parametrize("name, expected", [
    ("lenet5", [5, 5, 6, 14, 14, 16, 16, None, None, None, None, None]),  # then Flatten and the fc layers
    ("mnistnet", [5, 5, 6, 14, 14, 18, 18, None]),  # the 3x3 pool after a stride of 2: 14 + 2*2
])
def test_other_models(name, expected):
    net = Net(models.MODELS[name]())
    assert [r["receptive_field"] for r in summary_rows(net)] == [(n, n) if n else None for n in expected]


def test_signals_dilation_strides_and_rectangles():
    net = Net([{"type": "input", "shape": [1, 64]},
               {"type": "conv", "filters": 2, "size": 3, "dilation": 2, "activation": "relu"},  # 1 + 2*2*1 = 5
               {"type": "conv", "filters": 2, "size": 3, "stride": 2, "pad": 1, "ragged": True},  # 5 + 2*1 = 7, j 2
               {"type": "pool", "size": 2, "mode": "avg"},  # 7 + 1*2 = 9, j 4
               {"type": "conv", "filters": 2, "size": 3, "dilation": 2, "pad": "same"},  # 9 + 2*2*4 = 25
               {"type": "batchnorm"}, {"type": "fc", "neurons": 3}])
    assert [r["receptive_field"] for r in summary_rows(net)] == [(5,), (5,), (7,), (9,), (25,), (25,), (25,), None]
    assert [row[-1] for row in table(net)] == ["5", "5", "7", "9", "25", "25", "25", "all"]
    rect = Net([{"type": "input", "shape": [1, 16, 16]}, {"type": "conv", "filters": 1, "size": [3, 1]},
                {"type": "pool", "size": [1, 2]}])
    assert [r["receptive_field"] for r in summary_rows(rect)] == [(3, 1), (3, 2)]


def test_flat_input_has_no_receptive_field_column():
    net = Net([{"type": "input", "shape": [6]}, {"type": "fc", "neurons": 4, "activation": "relu"},
               {"type": "softmax", "classes": 2}])
    assert all(r["receptive_field"] is None for r in summary_rows(net))
    assert "receptive field" not in net.summary()
    assert [len(row) for row in table(net)] == [5, 5, 5]


@pytest.mark.parametrize("specs", [
    [{"type": "input", "shape": [1, 50, 50]},
     {"type": "conv", "filters": 2, "size": 3, "stride": 2, "ragged": True},
     {"type": "pool", "size": 2, "mode": "avg"},
     {"type": "conv", "filters": 2, "size": [3, 5], "dilation": [2, 1]},
     {"type": "pool", "size": 3, "stride": 1, "mode": "avg"}],
    [{"type": "input", "shape": [1, 90]},
     {"type": "conv", "filters": 2, "size": 4, "stride": 3, "dilation": 2, "ragged": True},
     {"type": "conv", "filters": 1, "size": 3, "stride": 2, "ragged": True}],
])
def test_receptive_field_is_what_one_output_depends_on(specs):
    # A linear net with positive weights: an output's gradient is nonzero exactly on the pixels it sees.
    net = Net(specs, dtype=np.float64, seed=0)
    for layer in net.layers:
        for value in layer.params.values():
            value[...] = 1.0
    x = np.random.default_rng(0).standard_normal((1, *net.input_shape))
    out = net.forward(x, training=True)
    dout = np.zeros_like(out)
    dout[(0, 0, *(n // 2 for n in out.shape[2:]))] = 1.0
    seen = np.nonzero(net.backward(dout, input_grad=True)[0, 0])
    extent = tuple(int(idx.max() - idx.min() + 1) for idx in seen)
    assert extent == summary_rows(net)[-1]["receptive_field"]
