"""Spec validation (pinned error messages) and desugaring into layers; specs() round trips."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convnetpy import Net, SpecError, models
from convnetpy.layers import (
    AvgPool1D,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)

IMAGE = {"type": "input", "shape": [3, 8, 8]}
SIGNAL = {"type": "input", "shape": [2, 16]}
VECTOR = {"type": "input", "shape": [10]}


def types(net: Net) -> list[type]:
    return [type(layer) for layer in net.layers]


def architecture(net: Net) -> tuple:
    """Everything that defines the architecture (not the weights): layer types, param and buffer shapes, reprs."""
    return (net.input_shape, net.output_shape, net.head,
            [(type(layer).__name__, repr(layer), layer.spec(), {k: v.shape for k, v in layer.params.items()},
              {k: v.shape for k, v in layer.buffers.items()}) for layer in net.layers])


# -- validation: every message pinned -----------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ({"type": "convv", "filters": 2, "size": 3}, "layer 1: unknown type 'convv' (did you mean 'conv'?); known types: "),
    ({"type": "maxpool", "size": 2}, "layer 1: unknown type 'maxpool' (did you mean 'pool'?)"),
    ({"type": "softmaxx", "classes": 2}, "layer 1: unknown type 'softmaxx' (did you mean 'softmax'?)"),
    ({"filters": 2, "size": 3}, "layer 1: unknown type None; known types: input, conv, pool, fc"),
    ({"type": "conv", "filters": 2, "size": 3, "strid": 2},
     "layer 1 (conv): unknown key 'strid' (did you mean 'stride'?); allowed keys: filters, size, stride, pad, "
     "dilation, bias, activation, ragged"),
    ({"type": "relu", "slope": 0.1}, "layer 1 (relu): unknown key 'slope'; allowed keys: none"),
    ({"type": "fc", "neuron": 4}, "layer 1 (fc): unknown key 'neuron' (did you mean 'neurons'?)"),
    ({"type": "conv", "size": 3}, "layer 1 (conv): missing key 'filters'"),
    ({"type": "conv", "filters": 3}, "layer 1 (conv): missing key 'size'"),
    ({"type": "fc"}, "layer 1 (fc): missing key 'neurons'"),
    ({"type": "pool"}, "layer 1 (pool): missing key 'size'"),
    ({"type": "softmax"}, "layer 1 (softmax): missing key 'classes'"),
    ({"type": "regression"}, "layer 1 (regression): missing key 'outputs'"),
    ({"type": "conv", "filters": -2, "size": 3}, "layer 1 (conv): key 'filters' expected a positive integer, got -2"),
    ({"type": "conv", "filters": 0, "size": 3}, "layer 1 (conv): key 'filters' expected a positive integer, got 0"),
    ({"type": "conv", "filters": 2.0, "size": 3}, "layer 1 (conv): key 'filters' expected a positive integer, got 2.0"),
    ({"type": "conv", "filters": True, "size": 3},
     "layer 1 (conv): key 'filters' expected a positive integer, got True"),
    ({"type": "conv", "filters": 2, "size": [3, 3, 3]},
     "layer 1 (conv): key 'size' expected a positive integer or a list of them, got [3, 3, 3]"),
    ({"type": "conv", "filters": 2, "size": 3, "pad": "full"},
     "layer 1 (conv): key 'pad' expected 'same', 'valid', a non-negative integer or a list of them, got 'full'"),
    ({"type": "conv", "filters": 2, "size": 3, "pad": -1},
     "layer 1 (conv): key 'pad' expected 'same', 'valid', a non-negative integer or a list of them, got -1"),
    ({"type": "conv", "filters": 2, "size": 3, "activation": "gelu"},
     "layer 1 (conv): key 'activation' expected one of ['leaky_relu', 'relu', 'sigmoid', 'tanh'] (or null), "
     "got 'gelu'"),
    ({"type": "conv", "filters": 2, "size": 3, "bias": 1}, "layer 1 (conv): key 'bias' expected true or false, got 1"),
    ({"type": "pool", "size": 2, "pad": -1},
     "layer 1 (pool): key 'pad' expected a non-negative integer or a list of them, got -1"),
    ({"type": "pool", "size": 2, "mode": "min"}, "layer 1 (pool): key 'mode' expected 'max' or 'avg', got 'min'"),
    ({"type": "dropout", "p": 1.0}, "layer 1 (dropout): key 'p' expected a number in [0, 1), got 1.0"),
    ({"type": "dropout", "p": -0.1}, "layer 1 (dropout): key 'p' expected a number in [0, 1), got -0.1"),
    ({"type": "fc", "neurons": 4, "dropout": 1.5}, "layer 1 (fc): key 'dropout' expected a number in [0, 1), got 1.5"),
    ({"type": "batchnorm", "eps": 0}, "layer 1 (batchnorm): key 'eps' expected a positive number, got 0"),
    ({"type": "leaky_relu", "negative_slope": "0.1"},
     "layer 1 (leaky_relu): key 'negative_slope' expected a number, got '0.1'"),
    ({"type": "input", "shape": [3, 8, 8]}, "layer 1 (input): only the first spec may be an input"),
])
def test_invalid_spec_message(spec, message):
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        Net([IMAGE, spec])


@pytest.mark.parametrize("specs, message", [
    ([], "a net is a non-empty list of layer specs, got list"),
    ({"type": "input"}, "a net is a non-empty list of layer specs, got dict"),
    ([IMAGE, "relu"], "layer 1: a spec must be a dict like {'type': 'conv', ...}, got 'relu'"),
    ([{"type": "conv", "filters": 2, "size": 3}],
     "layer 0: the first spec must be {'type': 'input', 'shape': [...]}, got type 'conv'"),
    ([{"type": "input"}], "layer 0 (input): missing key 'shape'"),
    ([{"type": "input", "shape": [3, 0, 8]}],
     "layer 0 (input): key 'shape' expected a list of 1 to 3 positive integers: [C, H, W], [C, L] or [D], "
     "got [3, 0, 8]"),
    ([{"type": "input", "shape": [1, 2, 3, 4]}], "layer 0 (input): key 'shape' expected a list of 1 to 3"),
    ([IMAGE, {"type": "softmax", "classes": 3}, {"type": "relu"}],
     "layer 1 (softmax): a loss head must be the last spec"),
    ([IMAGE, {"type": "svm", "classes": 3}, {"type": "regression", "outputs": 1}],
     "layer 1 (svm): a loss head must be the last spec"),
])
def test_invalid_net_message(specs, message):
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        Net(specs)


@pytest.mark.parametrize("kind", ["conv", "pool"])
def test_conv_and_pool_on_a_flat_input(kind):
    spec = {"type": "conv", "filters": 2, "size": 3} if kind == "conv" else {"type": "pool", "size": 2}
    message = f"layer 2 ({kind}): needs an image [C, H, W] or a signal [C, L] as input, got shape [4]"
    with pytest.raises(SpecError, match="^" + re.escape(message) + "$"):
        Net([IMAGE, {"type": "fc", "neurons": 4}, spec])


@pytest.mark.parametrize("specs, message", [
    # (8 - 1*(3-1) - 1 + 0) // 1 + 1 = 6 after layer 1, then the 7x7 window does not fit 6.
    ([IMAGE, {"type": "conv", "filters": 2, "size": 3}, {"type": "conv", "filters": 2, "size": 7}],
     "layer 2 (conv) on input [2, 6, 6]: Conv2D: output H would be 0 (empty): (H - D*(K-1) - 1 + 2P) / S + 1 = "
     "(6 - 1*(7-1) - 1 + 0) // 1 + 1 = 0; use pad 1 or 2 or \"same\", or size 5 or 6"),
    ([IMAGE, {"type": "conv", "filters": 2, "size": 3, "dilation": 4}],
     "layer 1 (conv) on input [3, 8, 8]: Conv2D: output H would be 0 (empty): (H - D*(K-1) - 1 + 2P) / S + 1 = "
     "(8 - 4*(3-1) - 1 + 0) // 1 + 1 = 0; use pad 1 or 2 or \"same\", or dilation 2 or 3, or size 1 or 2"),
    ([IMAGE, {"type": "conv", "filters": 2, "size": [1, 9]}],
     "layer 1 (conv) on input [3, 8, 8]: Conv2D: output W would be 0 (empty): (W - D*(K-1) - 1 + 2P) / S + 1 = "
     "(8 - 1*(9-1) - 1 + 0) // 1 + 1 = 0; use pad 1 or 2 or \"same\", or size [1, 7] or [1, 8]"),
    ([SIGNAL, {"type": "conv", "filters": 2, "size": 18}],
     "layer 1 (conv) on input [2, 16]: Conv1D: output L would be -1 (empty): (L - D*(K-1) - 1 + 2P) / S + 1 = "
     "(16 - 1*(18-1) - 1 + 0) // 1 + 1 = -1; use pad 1 or 2 or \"same\", or size 15 or 16"),
    # The first 3x3 pool floors 8 to 2 only because the spec allows it ("ragged"); then 3 does not fit 2.
    ([IMAGE, {"type": "pool", "size": 3, "ragged": True}, {"type": "pool", "size": 3}],
     "layer 2 (pool) on input [3, 2, 2]: MaxPool2D: output H would be 0 (empty): (H - K + 2P) / S + 1 = "
     "(2 - 3 + 2*0) // 3 + 1 = 0; use size 2"),
    ([SIGNAL, {"type": "pool", "size": 17, "stride": 2, "mode": "avg"}],
     "layer 1 (pool) on input [2, 16]: AvgPool1D: output L would be 0 (empty): (L - K + 2P) / S + 1 = "
     "(16 - 17 + 2*0) // 2 + 1 = 0; use size 14 or 16"),
])
def test_empty_output_names_layer_and_arithmetic(specs, message):
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        Net(specs)


def test_layer_argument_refused_by_the_layer_is_a_spec_error():
    # Valid as a spec value, refused by the layer: a padding larger than half the window.
    with pytest.raises(SpecError, match=re.escape(
            "layer 1 (pool) on input [3, 8, 8]: MaxPool2D: padding (2, 2) must be at most half the kernel (2, 2)")):
        Net([IMAGE, {"type": "pool", "size": 2, "pad": 2}])
    with pytest.raises(SpecError, match=re.escape("layer 1 (conv) on input [2, 16]: kernel_size must be an int, "
                                                  "got [3, 3]")):
        Net([SIGNAL, {"type": "conv", "filters": 2, "size": [3, 3]}])


# -- desugaring --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("activation, cls", [("relu", ReLU), ("tanh", Tanh), ("sigmoid", Sigmoid),
                                             ("leaky_relu", LeakyReLU)])
def test_activation_key_becomes_its_own_layer(activation, cls):
    net = Net([IMAGE, {"type": "conv", "filters": 4, "size": 3, "activation": activation},
               {"type": "fc", "neurons": 5, "activation": activation}])
    assert types(net) == [Conv2D, cls, Flatten, Dense, cls]
    assert net.output_shape == (5,)
    assert net.head is None


def test_no_activation_adds_no_layer():
    net = Net([VECTOR, {"type": "fc", "neurons": 5}, {"type": "fc", "neurons": 3, "activation": None}])
    assert types(net) == [Dense, Dense]


def test_fc_on_image_and_signal_gets_a_flatten():
    net = Net([IMAGE, {"type": "fc", "neurons": 7}])
    assert types(net) == [Flatten, Dense]
    assert (net.layers[1].in_features, net.layers[1].out_features) == (3 * 8 * 8, 7)
    assert types(Net([SIGNAL, {"type": "fc", "neurons": 7}])) == [Flatten, Dense]
    assert types(Net([VECTOR, {"type": "fc", "neurons": 7}])) == [Dense]


def test_softmax_becomes_dense_with_classes():
    net = Net([IMAGE, {"type": "conv", "filters": 4, "size": 3, "activation": "relu"}, {"type": "pool", "size": 2},
               {"type": "softmax", "classes": 10}])
    assert types(net) == [Conv2D, ReLU, MaxPool2D, Flatten, Dense]
    assert net.head == "softmax"
    assert (net.layers[-1].in_features, net.layers[-1].out_features) == (4 * 3 * 3, 10)
    assert net.output_shape == (10,)


@pytest.mark.parametrize("head, key, size", [("softmax", "classes", 4), ("svm", "classes", 5),
                                             ("regression", "outputs", 3)])
def test_heads(head, key, size):
    net = Net([VECTOR, {"type": "fc", "neurons": 6, "activation": "tanh"}, {"type": head, key: size}])
    assert types(net) == [Dense, Tanh, Dense]
    assert net.head == head
    assert net.output_shape == (size,)
    assert net.layers[-1].params["weight"].shape == (size, 6)


def test_no_head():
    net = Net([VECTOR, {"type": "fc", "neurons": 6}])
    assert net.head is None


def test_dropout_key_on_fc_comes_after_the_activation():
    net = Net([VECTOR, {"type": "fc", "neurons": 6, "activation": "relu", "dropout": 0.25},
               {"type": "fc", "neurons": 4, "dropout": 0.5}, {"type": "dropout"}])
    assert types(net) == [Dense, ReLU, Dropout, Dense, Dropout, Dropout]
    assert [net.layers[i].p for i in (2, 4, 5)] == [0.25, 0.5, 0.5]


def test_dropout_zero_adds_no_layer():
    net = Net([VECTOR, {"type": "fc", "neurons": 6, "dropout": 0}])
    assert types(net) == [Dense]


@pytest.mark.parametrize("mode, cls2d, cls1d", [("max", MaxPool2D, MaxPool1D), ("avg", AvgPool2D, AvgPool1D)])
def test_conv_and_pool_pick_2d_or_1d(mode, cls2d, cls1d):
    def net(inp):
        return Net([inp, {"type": "conv", "filters": 4, "size": 3, "pad": 1},
                    {"type": "pool", "size": 2, "mode": mode}])

    image, signal = net(IMAGE), net(SIGNAL)
    assert types(image) == [Conv2D, cls2d]
    assert types(signal) == [Conv1D, cls1d]
    assert image.output_shape == (4, 4, 4)
    assert signal.output_shape == (4, 8)
    assert signal.layers[0].params["weight"].shape == (4, 2, 3)


@pytest.mark.parametrize("inp, before, cls, shape", [
    (IMAGE, [], BatchNorm2D, (3, 8, 8)),
    (SIGNAL, [], BatchNorm1D, (2, 16)),
    (VECTOR, [], BatchNorm1D, (10,)),
    (IMAGE, [{"type": "fc", "neurons": 5}], BatchNorm1D, (5,)),
    (SIGNAL, [{"type": "conv", "filters": 6, "size": 3}], BatchNorm1D, (6, 14)),
])
def test_batchnorm_picks_2d_or_1d(inp, before, cls, shape):
    net = Net([inp, *before, {"type": "batchnorm", "eps": 1e-3, "momentum": 0.2}])
    bn = net.layers[-1]
    assert type(bn) is cls
    assert (bn.num_features, bn.eps, bn.momentum) == (shape[0], 1e-3, 0.2)
    assert net.output_shape == shape


def test_layer_attributes_normalised_to_tuples():
    net = Net([IMAGE, {"type": "conv", "filters": 4, "size": [3, 1], "stride": 2, "pad": [1, 0], "dilation": [1, 2],
                       "ragged": True},
               {"type": "pool", "size": 2}, {"type": "conv", "filters": 2, "size": 1, "pad": "same"},
               {"type": "conv", "filters": 2, "size": 2, "pad": "valid"}])
    conv, pool, same, valid = net.layers
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == ((3, 1), (2, 2), (1, 0), (1, 2))
    assert (pool.kernel_size, pool.stride, pool.padding) == ((2, 2), (2, 2), (0, 0))  # stride defaults to size
    assert same.padding == "same"
    assert valid.padding == (0, 0)
    assert conv.params["weight"].shape == (4, 3, 3, 1)
    # H: (8 + 2 - 2 - 1) // 2 + 1 = 4; W: (8 + 0 - 0 - 1) // 2 + 1 = 4
    # conv: H (8 + 2 - 1*(3-1) - 1) // 2 + 1 = 4, W (8 + 0 - 2*(1-1) - 1) // 2 + 1 = 4; pool -> 2x2;
    # 'same' keeps 2x2; a 'valid' 2x2 kernel gives 1x1.
    assert [layer.output_shape(s) for layer, s in zip(net.layers, [(3, 8, 8), (4, 4, 4), (4, 2, 2), (2, 2, 2)])] \
        == [(4, 4, 4), (4, 2, 2), (2, 2, 2), (2, 1, 1)]
    signal = Net([SIGNAL, {"type": "conv", "filters": 4, "size": [5], "stride": 2, "pad": 2, "ragged": True},
                  {"type": "pool", "size": 3, "stride": 1, "pad": 1}])
    conv1, pool1 = signal.layers
    assert (conv1.kernel_size, conv1.stride, conv1.padding, conv1.dilation) == ((5,), (2,), (2,), (1,))
    assert (pool1.kernel_size, pool1.stride, pool1.padding) == ((3,), (1,), (1,))
    assert signal.output_shape == (4, 8)


def test_validated_specs_fill_defaults_and_normalise_values():
    net = Net([{"type": "input", "shape": (np.int64(3), 8, 8)},
               {"type": "conv", "filters": np.int32(4), "size": (3, 3)},
               {"type": "pool", "size": 2}, {"type": "dropout", "p": np.float32(0.5)},
               {"type": "softmax", "classes": 3}])
    assert net.specs() == [
        {"type": "input", "shape": [3, 8, 8]},
        {"type": "conv", "filters": 4, "size": [3, 3], "stride": 1, "pad": 0, "dilation": 1, "bias": True,
         "activation": None, "ragged": False},
        {"type": "pool", "size": 2, "stride": None, "pad": 0, "mode": "max", "ragged": False},
        {"type": "dropout", "p": 0.5},
        {"type": "softmax", "classes": 3},
    ]
    assert all(type(v) is int for v in net.specs()[0]["shape"])
    assert type(net.specs()[1]["filters"]) is int


def test_specs_returns_a_copy():
    net = Net(models.lenet5())
    specs = net.specs()
    specs[1]["filters"] = 99
    specs[0]["shape"][0] = 99  # nested lists too
    assert net.specs()[1]["filters"] == 6
    assert net.specs()[0]["shape"] == [1, 28, 28]
    spec = [IMAGE, {"type": "conv", "filters": 2, "size": [3, 3]}]
    net = Net(spec)
    net.specs()[1]["size"].append(5)
    assert net.specs()[1]["size"] == [3, 3]
    assert spec[1]["size"] == [3, 3]


# -- round trips ---------------------------------------------------------------------------------------------
ROUND_TRIP_NETS = {
    **{name: fn() for name, fn in models.MODELS.items()},
    "everything": [
        {"type": "input", "shape": [3, 12, 16]},
        {"type": "conv", "filters": 4, "size": [3, 5], "stride": [1, 2], "pad": "same", "bias": False},
        {"type": "batchnorm", "momentum": 0.3},
        {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "pool", "size": 2, "mode": "avg", "pad": 1},
        {"type": "conv", "filters": 3, "size": 3, "dilation": 2, "activation": "sigmoid"},
        {"type": "flatten"},
        {"type": "fc", "neurons": 8, "activation": "tanh", "dropout": 0.3},
        {"type": "batchnorm"},
        {"type": "svm", "classes": 4},
    ],
    "signal": [
        {"type": "input", "shape": [2, 20]},
        {"type": "conv", "filters": 4, "size": 5, "stride": 2, "pad": 2, "activation": "relu", "ragged": True},
        {"type": "batchnorm"},
        {"type": "pool", "size": 3, "stride": 2, "mode": "max", "ragged": True},
        {"type": "conv", "filters": 3, "size": 3, "pad": "valid"},
        {"type": "regression", "outputs": 2},
    ],
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIP_NETS))
def test_specs_round_trip(name):
    net = Net(ROUND_TRIP_NETS[name], seed=0)
    specs = net.specs()
    rebuilt = Net(specs, seed=1)
    assert rebuilt.specs() == specs
    assert architecture(rebuilt) == architecture(net)
    assert json.loads(json.dumps(specs)) == specs
    assert Net(json.loads(json.dumps(specs))).specs() == specs


def test_net_from_layer_objects():
    rng = np.random.default_rng(0)
    layers = [Conv2D(3, 4, 3, padding=1, bias=False, rng=rng), BatchNorm2D(4, eps=1e-3, momentum=0.2), ReLU(),
              MaxPool2D(2),
              Conv2D(4, 5, (3, 1), stride=(1, 2), padding="same", dilation=(2, 1), rng=rng), LeakyReLU(0.3),
              AvgPool2D(2, stride=1), Flatten(), Dense(5 * 3 * 1, 6, rng=rng), Tanh(), Dropout(0.2, rng=rng),
              Dense(6, 3, rng=rng)]
    net = Net(layers, input_shape=[3, 8, 8], head="softmax")
    assert net.input_shape == (3, 8, 8)
    assert net.output_shape == (3,)
    specs = net.specs()
    json.dumps(specs)
    assert specs[0] == {"type": "input", "shape": [3, 8, 8]}
    assert specs[-1] == {"type": "softmax", "classes": 3}
    rebuilt = Net(specs)
    assert architecture(rebuilt) == architecture(net)
    assert Net(rebuilt.specs()).specs() == rebuilt.specs()


def test_net_from_1d_layer_objects_without_head():
    layers = [Conv1D(2, 3, 5, stride=2, padding=2), BatchNorm1D(3), Sigmoid(), MaxPool1D(2), AvgPool1D(3, 1, 1),
              Flatten(), Dense(12, 2)]
    net = Net(layers, input_shape=(2, 16))
    assert net.head is None
    specs = net.specs()
    assert specs[-1] == {"type": "fc", "neurons": 2, "bias": True}
    assert architecture(Net(json.loads(json.dumps(specs)))) == architecture(net)


@pytest.mark.parametrize("head, key", [("svm", "classes"), ("regression", "outputs")])
def test_net_from_layer_objects_with_other_heads(head, key):
    net = Net([Dense(4, 3)], input_shape=(4,), head=head)
    assert net.specs() == [{"type": "input", "shape": [4]}, {"type": head, key: 3}]
    assert Net(net.specs()).head == head


@pytest.mark.parametrize("kwargs, layers, message", [
    ({}, [Dense(4, 3)], "Net: a net built from layer objects needs input_shape=(C, H, W), (C, L) or (D,)"),
    ({"input_shape": (4,), "head": "hinge"}, [Dense(4, 3)],
     "Net: head must be one of ('softmax', 'svm', 'regression') or None, got 'hinge'"),
    ({"input_shape": (4,), "head": "softmax"}, [Dense(4, 3), ReLU()],
     "Net: a softmax head needs a Dense last layer to compute its scores"),
    ({"input_shape": (1, 8, 8)}, [Flatten(), Dense(5, 3)],
     "layer 1 (Dense) on input [64]: Dense expects 5 features per example, got shape (64,)"),
    ({"input_shape": (1, 8, 8)}, [Conv2D(1, 2, 3), Dense(72, 3)],
     "layer 1 (Dense) on input [2, 6, 6]: Dense expects 72 features per example, got shape (2, 6, 6) "
     "(put a Flatten before it)"),
    ({"input_shape": (1, 8, 8)}, [Conv2D(3, 2, 3)],
     "layer 0 (Conv2D) on input [1, 8, 8]: Conv2D expects examples of shape (3, H, W), got (1, 8, 8)"),
    ({"input_shape": (1, 8, 8)}, [Conv1D(1, 2, 3)],
     "layer 0 (Conv1D) on input [1, 8, 8]: Conv1D expects examples of shape (1, L), got (1, 8, 8)"),
    ({"input_shape": (1, 8, 8)}, [Conv2D(1, 2, 3), BatchNorm2D(3)],
     "layer 1 (BatchNorm2D) on input [2, 6, 6]: BatchNorm2D expects input of shape (N, 3, H, W)"),
    ({"input_shape": (1, 4, 4)}, [Conv2D(1, 2, 5)],
     "layer 0 (Conv2D) on input [1, 4, 4]: Conv2D: output H would be 0 (empty)"),
])
def test_net_from_layer_objects_errors(kwargs, layers, message):
    with pytest.raises(SpecError, match="^" + re.escape(message)):
        Net(layers, **kwargs)


def test_input_shape_and_head_only_with_layer_objects():
    with pytest.raises(SpecError, match=re.escape("Net: input_shape and head come from the specs")):
        Net(models.mnistnet(), head="softmax")
    with pytest.raises(SpecError, match=re.escape("Net: input_shape and head come from the specs")):
        Net(models.mnistnet(), input_shape=(1, 24, 24))


def test_mixed_layers_and_specs_are_rejected():
    with pytest.raises(SpecError, match=re.escape("layer 1: a spec must be a dict like {'type': 'conv', ...}, "
                                                  "got ReLU()")):
        Net([VECTOR, ReLU()])
