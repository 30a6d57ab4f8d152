"""Tools that explain a net: explain (one conv unit's arithmetic), activations (every layer's output), and
gradcheck (analytic against numerical gradients, layer by layer, skipping kinks)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import convnetpy
from convnetpy import GradcheckResult, Net, ShapeError, activations, explain, gradcheck, models
from convnetpy.layers import BatchNorm2D, Conv2D, Dense, Flatten, LeakyReLU, MaxPool2D, ReLU, Sigmoid, Tanh
from helpers import rel_error


def example(net: Net, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
    shape = net.input_shape if n is None else (n, *net.input_shape)
    return rng.standard_normal(shape).astype(np.float32)


def positions(shape: tuple[int, ...]):
    return [tuple(int(i) for i in idx) for idx in np.ndindex(*shape)]


# -- explain ---------------------------------------------------------------------------------------------------
def test_explain_writes_out_the_formula():
    conv = Conv2D(1, 1, 2, dtype=np.float64)
    conv.params["weight"][...] = [[[[1, 2], [3, 4]]]]
    conv.params["bias"][...] = -0.5
    net = Net([conv, ReLU(), Flatten(), Dense(4, 2, dtype=np.float64)], input_shape=(1, 3, 3), dtype=np.float64)
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3)  # [[0 1 2] [3 4 5] [6 7 8]]
    unit = explain(net, x, 0, (0, 1, 0))  # the window of rows 1-2, columns 0-1
    np.testing.assert_array_equal(unit["patch"], [[[3, 4], [6, 7]]])
    np.testing.assert_array_equal(unit["weights"], [[[1, 2], [3, 4]]])
    np.testing.assert_array_equal(unit["products"], [[[3, 8], [18, 28]]])
    assert (unit["bias"], unit["pre_activation"], unit["activation"], unit["output"]) == (-0.5, 56.5, "relu", 56.5)
    assert unit["formula"] == "relu(sum(patch*weights) + bias) = relu(57 + -0.5) = 56.5"
    conv.params["bias"][...] = -60
    assert explain(net, x, 0, (0, 1, 0))["formula"] == "relu(sum(patch*weights) + bias) = relu(57 + -60) = 0"
    assert set(unit) == {"patch", "weights", "products", "bias", "pre_activation", "activation", "output", "formula"}


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 3), padding=(2, 1), dilation=(1, 2)),
    dict(kernel_size=3, stride=2, padding="same", dilation=2),  # asymmetric 'same' padding
    dict(kernel_size=(2, 4), stride=1, padding=0, bias=False),
])
def test_explain_every_unit_of_a_2d_conv_matches_the_layer(kwargs):
    rng = np.random.default_rng(0)
    conv = Conv2D(2, 3, rng=rng, **kwargs)
    if "bias" in conv.params:
        conv.params["bias"][...] = rng.standard_normal(3)
    net = Net([conv, Tanh()], input_shape=(2, 7, 9))
    x = example(net, rng)
    out = conv.forward(x[None])[0]  # (F, OH, OW)
    padded = np.pad(x, ((0, 0), *conv._pads(x.shape[1:])))
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    for f, r, c in positions(out.shape):
        unit = explain(net, x, 0, (f, r, c))
        window = padded[:, r * sh:r * sh + dh * (kh - 1) + 1:dh, c * sw:c * sw + dw * (kw - 1) + 1:dw]
        np.testing.assert_array_equal(unit["patch"], window)
        np.testing.assert_array_equal(unit["weights"], conv.params["weight"][f])
        np.testing.assert_array_equal(unit["products"], window * conv.params["weight"][f])
        assert unit["pre_activation"] == pytest.approx(unit["products"].sum(dtype=np.float64) + unit["bias"])
        assert unit["pre_activation"] == pytest.approx(float(out[f, r, c]), rel=1e-5, abs=1e-6)
        assert unit["activation"] == "tanh"
        assert unit["output"] == pytest.approx(np.tanh(out[f, r, c]), rel=1e-5, abs=1e-6)
    assert explain(net, x, 0, (0, 0, 0))["bias"] == (0.0 if kwargs.get("bias") is False else
                                                    pytest.approx(float(conv.params["bias"][0])))


def test_explain_a_1d_conv():
    rng = np.random.default_rng(1)
    net = Net([{"type": "input", "shape": [2, 21]},
               {"type": "conv", "filters": 3, "size": 4, "stride": 3, "pad": 2, "dilation": 2, "ragged": True,
                "activation": "leaky_relu"},
               {"type": "conv", "filters": 2, "size": 3, "pad": "same", "activation": "sigmoid"}], seed=3)
    for layer in (0, 2):
        net.layers[layer].params["bias"][...] = rng.standard_normal(net.layers[layer].out_channels)
    x = example(net, rng)
    acts = activations(net, x)
    for layer in (0, 2):
        conv = net.layers[layer]
        for f, i in positions(acts[layer].shape):
            unit = explain(net, x[None], layer, (f, i))  # a batch of one works too
            assert unit["patch"].shape == unit["weights"].shape == (conv.in_channels, conv.kernel_size[0])
            assert unit["pre_activation"] == pytest.approx(float(acts[layer][f, i]), rel=1e-5, abs=1e-6)
            assert unit["output"] == pytest.approx(float(acts[layer + 1][f, i]), rel=1e-5, abs=1e-6)
            assert unit["activation"] == ("leaky_relu" if layer == 0 else "sigmoid")
    assert explain(net, x, 0, (2, 0))["patch"][:, 0].tolist() == [0, 0]  # the first tap reads the padding


@pytest.mark.parametrize("after, name", [(ReLU(), "relu"), (LeakyReLU(0.2), "leaky_relu"), (Tanh(), "tanh"),
                                         (Sigmoid(), "sigmoid"), (BatchNorm2D(2), None), (MaxPool2D(2), None)])
def test_explain_output_applies_the_next_activation_only(after, name):
    rng = np.random.default_rng(2)
    net = Net([Conv2D(1, 2, 3, padding=1, rng=rng), after], input_shape=(1, 4, 4))
    x = example(net, rng)
    acts = activations(net, x)
    for f, r, c in positions((2, 4, 4)):
        unit = explain(net, x, 0, (f, r, c))
        assert unit["activation"] == name
        expected = acts[1][f, r, c] if name else unit["pre_activation"]
        assert unit["output"] == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
    unit = explain(net, x, 0, (1, 2, 3))
    if name is None:
        assert re.fullmatch(r"sum\(patch\*weights\) \+ bias = \S+ \+ 0 = \S+", unit["formula"])


def test_explain_on_the_cifar10_net():
    rng = np.random.default_rng(3)
    net = Net(models.cifar10net(), seed=0)
    x = example(net, rng)
    acts = activations(net, x)
    for layer, position in [(0, (15, 31, 0)), (3, (4, 7, 9)), (6, (19, 3, 3))]:
        unit = explain(net, x, layer, position)
        assert unit["patch"].shape == (net.layers[layer].in_channels, 5, 5)
        assert unit["pre_activation"] == pytest.approx(float(acts[layer][position]), rel=1e-5, abs=1e-5)
        assert unit["output"] == pytest.approx(max(unit["pre_activation"], 0.0), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("args, error, message", [
    ((1, (0, 0, 0)), ValueError, "explain: layer 1 is a ReLU; explain works on Conv2D and Conv1D layers "
                                 "(here layers [0, 3, 6])"),
    ((11, (0, 0, 0)), IndexError, "explain: layer must be an index into net.layers (0 to 10), got 11"),
    ((0, (16, 0, 0)), IndexError, "explain: position (16, 0, 0) is outside layer 0 (Conv2D)'s output of shape "
                                  "(16, 32, 32)"),
    ((3, (0, 16, 0)), IndexError, "explain: position (0, 16, 0) is outside layer 3 (Conv2D)'s output of shape "
                                  "(20, 16, 16)"),
    ((0, (0, 0)), ValueError, "explain: position for a Conv2D is (filter, row, col), got (0, 0)"),
    ((0, (0, 0.0, 1)), ValueError, "explain: position for a Conv2D is (filter, row, col), got (0, 0.0, 1)"),
])
def test_explain_errors(args, error, message):
    net = Net(models.cifar10net())
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        explain(net, np.zeros((3, 32, 32), np.float32), *args)


def test_explain_and_activations_take_one_example():
    net = Net(models.mnistnet())
    message = "x must be one example of shape (1, 24, 24) or a batch of one (1, 1, 24, 24), got (2, 1, 24, 24)"
    with pytest.raises(ShapeError, match=re.escape("explain: " + message)):
        explain(net, np.zeros((2, 1, 24, 24), np.float32), 0, (0, 0, 0))
    with pytest.raises(ShapeError, match=re.escape("activations: " + message)):
        activations(net, np.zeros((2, 1, 24, 24), np.float32))
    with pytest.raises(TypeError, match="activations expects a NumPy array, got list"):
        activations(net, np.zeros((1, 24, 24)).tolist())


# -- activations -----------------------------------------------------------------------------------------------
def test_activations_follow_the_list_order():
    rng = np.random.default_rng(4)
    net = Net(models.cifar10net(), seed=1)
    x = example(net, rng)
    acts = activations(net, x)
    assert [a.shape for a in acts] == [r.output_shape(s) for r, s in
                                       zip(net.layers, [net.input_shape, *(a.shape for a in acts[:-1])])]
    assert all(a.dtype == np.float32 for a in acts)
    # Net.forward pools before the ReLU; activations shows the ReLU's own output, full size.
    np.testing.assert_array_equal(acts[1], np.maximum(acts[0], 0))
    np.testing.assert_array_equal(acts[2], acts[1].reshape(16, 16, 2, 16, 2).max(axis=(2, 4)))
    np.testing.assert_allclose(acts[-1], net.forward(x[None])[0], rtol=1e-5, atol=1e-6)
    acts[9][...] = 0  # copies: changing one leaves the others alone (Flatten would return a view)
    assert np.any(acts[8] != 0)


def test_activations_run_in_inference_mode():
    rng = np.random.default_rng(5)
    net = Net([{"type": "input", "shape": [6]}, {"type": "fc", "neurons": 5, "dropout": 0.5},
               {"type": "batchnorm"}, {"type": "regression", "outputs": 2}], seed=0)
    x = example(net, rng)
    acts = activations(net, x)
    np.testing.assert_array_equal(acts[1], acts[0])  # dropout off
    np.testing.assert_allclose(acts[-1], net.forward(x[None])[0], rtol=1e-6)


# -- gradcheck ---------------------------------------------------------------------------------------------------
def labels(net: Net, n: int, rng: np.random.Generator):
    if net.head == "regression":
        return rng.standard_normal((n, *net.output_shape))
    return rng.integers(0, net.output_shape[0], n)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_gradcheck_every_model(name):
    rng = np.random.default_rng(6)
    net = Net(models.MODELS[name](), seed=0)
    for p in net.params():  # nonzero biases, so a dropped bias gradient would show
        if p.name.endswith("bias"):
            p.value[...] = 0.1 * rng.standard_normal(p.value.shape)
    before = net.state_dict()
    grads = {p.name: p.grad.copy() for p in net.params()}
    result = gradcheck(net, example(net, rng, 2), labels(net, 2, rng), max_points=6)
    assert result.passed(), str(result)
    assert result.max_error < 1e-6
    assert [f"{r.index}.{r.param}" for r in result.rows] == [p.name for p in net.params()]
    assert [r.layer for r in result.rows] == [type(p.layer).__name__ for p in net.params()]
    assert [(r.checked, r.skipped) for r in result.rows] == [(min(6, r.size), 0) for r in result.rows]
    # The user's net is untouched: still float32, same weights, same grads.
    assert net.dtype == np.float32
    for name_, value in net.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, before[name_])
    for p in net.params():
        np.testing.assert_array_equal(p.grad, grads[p.name])


EVERYTHING = [
    {"type": "input", "shape": [2, 7, 7]},
    {"type": "conv", "filters": 3, "size": 3, "pad": "same", "bias": False},
    {"type": "batchnorm"},
    {"type": "leaky_relu", "negative_slope": 0.1},
    {"type": "pool", "size": 2, "mode": "avg", "ragged": True},
    {"type": "conv", "filters": 3, "size": 2, "activation": "tanh"},
    {"type": "pool", "size": 2},
    {"type": "fc", "neurons": 5, "activation": "sigmoid", "dropout": 0.4},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "svm", "classes": 3},
]
SIGNAL = [
    {"type": "input", "shape": [2, 17]},
    {"type": "conv", "filters": 3, "size": 4, "stride": 2, "pad": 1, "dilation": 2, "activation": "relu",
     "ragged": True},
    {"type": "pool", "size": 3, "stride": 2, "pad": 1, "ragged": True},
    {"type": "conv", "filters": 2, "size": 2},
    {"type": "regression", "outputs": 2},
]


@pytest.mark.parametrize("specs, layers", [
    (EVERYTHING, ["Conv2D", "BatchNorm2D", "BatchNorm2D", "Conv2D", "Conv2D", "Dense", "Dense", "BatchNorm1D",
                  "BatchNorm1D", "Dense", "Dense"]),
    (SIGNAL, ["Conv1D", "Conv1D", "Conv1D", "Conv1D", "Dense", "Dense"]),
], ids=["everything", "signal"])
def test_gradcheck_every_layer_type(specs, layers):
    rng = np.random.default_rng(7)
    net = Net(specs, seed=1)
    result = gradcheck(net, example(net, rng, 4), labels(net, 4, rng), max_points=8, seed=3)
    assert result.passed(), str(result)
    assert [r.layer for r in result.rows] == layers


def test_gradcheck_without_a_head_weights_the_scores():
    rng = np.random.default_rng(8)
    net = Net([Conv2D(1, 2, 3, rng=rng), ReLU(), MaxPool2D(2)], input_shape=(1, 6, 6))
    result = gradcheck(net, example(net, rng, 2), rng.standard_normal((2, 2, 2, 2)))
    assert result.passed(), str(result)
    with pytest.raises(ValueError, match=re.escape("gradcheck: a net without a loss head takes y of the scores' "
                                                   "shape (2, 2, 2, 2) (the loss is sum(scores * y)), got (2,)")):
        gradcheck(net, example(net, rng, 2), np.zeros(2))


@pytest.mark.parametrize("cls, key", [(Conv2D, "weight"), (Conv2D, "bias"), (Dense, "weight")])
def test_gradcheck_catches_a_broken_backward(monkeypatch, cls, key):
    rng = np.random.default_rng(9)
    net = Net(models.mnistnet(), seed=0)
    x, y = example(net, rng, 2), labels(net, 2, rng)
    assert gradcheck(net, x, y, max_points=4).passed()
    backward = cls.backward

    def broken(self, dy, input_grad=True):
        dx = backward(self, dy, input_grad)
        self.grads[key] *= 1.01  # a 1% error
        return dx

    monkeypatch.setattr(cls, "backward", broken)
    result = gradcheck(net, x, y, max_points=4)
    assert not result.passed()
    bad = {(r.layer, r.param) for r in result.rows if r.rel_error > 1e-4}
    assert bad == {(r.layer, r.param) for r in result.rows if r.layer == cls.__name__ and r.param == key}
    assert result.max_error == pytest.approx(0.01 / 2.01, rel=1e-3)  # ||0.01 g|| / (||1.01 g|| + ||g||)


def test_gradcheck_catches_a_broken_input_gradient(monkeypatch):
    rng = np.random.default_rng(10)
    net = Net(models.mnistnet(), seed=0)
    backward = MaxPool2D.backward
    monkeypatch.setattr(MaxPool2D, "backward", lambda self, dy, input_grad=True: 0.5 * backward(self, dy))
    result = gradcheck(net, example(net, rng, 2), labels(net, 2, rng), max_points=4)
    # Layers 0 and 3 (convs) get half and a quarter of their gradients; the Dense at the top is right.
    errors = [r.rel_error for r in result.rows]
    assert errors[:2] == pytest.approx([0.75 / 1.25] * 2) and errors[2:4] == pytest.approx([0.5 / 1.5] * 2)
    assert max(errors[4:]) < 1e-6


def test_gradcheck_skips_relu_kinks():
    # Hidden unit 0 has weights and bias 0: its ReLU input is exactly 0, a kink, for every example.
    dense = Dense(3, 4, rng=np.random.default_rng(0), dtype=np.float64)
    dense.params["weight"][0] = 0
    dense.params["bias"][...] = [0, 0.1, 0.2, 0.3]
    net = Net([dense, ReLU(), Dense(4, 2, rng=np.random.default_rng(1), dtype=np.float64)], input_shape=(3,),
              head="softmax", dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((5, 3))
    result = gradcheck(net, x, np.array([0, 1, 0, 1, 1]), max_points=100)
    rows = {(r.index, r.param): r for r in result.rows}
    assert (rows[0, "weight"].skipped, rows[0, "weight"].checked) == (3, 9)  # the 3 weights of unit 0
    assert (rows[0, "bias"].skipped, rows[0, "bias"].checked) == (1, 3)
    assert all(r.skipped == 0 for r in result.rows if r.index == 2)
    assert result.passed(), str(result)


def test_gradcheck_skips_max_pool_ties():
    # A conv with zero weights outputs its bias everywhere: every pool window is a tie, so nudging a weight
    # picks a new maximum. The bias moves the whole window at once and keeps the first maximum.
    # Seeded: with some random Dense weights the bias gradient nearly cancels, and its relative error is noise.
    net = Net([Conv2D(1, 1, 2, dtype=np.float64), MaxPool2D(2), Flatten(),
               Dense(4, 2, rng=np.random.default_rng(0), dtype=np.float64)],
              input_shape=(1, 5, 5), head="softmax", dtype=np.float64)
    net.layers[0].params["weight"][...] = 0
    net.layers[0].params["bias"][...] = 0.5
    x = np.random.default_rng(3).standard_normal((2, 1, 5, 5))
    result = gradcheck(net, x, np.array([0, 1]))
    conv_weight, conv_bias = result.rows[:2]
    assert conv_weight.skipped == 4 and conv_weight.checked == 0
    assert conv_bias.skipped == 0 and conv_bias.checked == 1
    assert result.passed(), str(result)
    assert "-" in str(result).splitlines()[2].split()  # no error to show for a parameter with nothing checked


def test_gradcheck_samples_entries_with_a_seed():
    rng = np.random.default_rng(11)
    net = Net(models.lenet5(), seed=0)
    x, y = example(net, rng, 2), labels(net, 2, rng)
    a, b = gradcheck(net, x, y, max_points=3, seed=1), gradcheck(net, x, y, max_points=3, seed=1)
    assert a == b
    assert [r.checked + r.skipped for r in a.rows] == [3] * len(a.rows)
    assert [r.size for r in a.rows] == [p.value.size for p in net.params()]


def test_gradcheck_result_table():
    result = GradcheckResult((convnetpy.GradcheckRow(0, "Conv2D", "weight", 3.1e-9, 20, 1, 1200),
                              convnetpy.GradcheckRow(3, "Dense", "bias", 2e-7, 10, 0, 10)), eps=1e-6)
    assert str(result).splitlines() == [
        "#  layer   param   rel. error  checked  skipped  entries",
        "-  ------  ------  ----------  -------  -------  -------",
        "0  Conv2D  weight    3.10e-09       20        1    1,200",
        "3  Dense   bias      2.00e-07       10        0       10",
        "max relative error 2.00e-07 (passes 1e-06; eps 1e-06, float64)",
    ]
    assert result.max_error == 2e-7
    assert result.passed() and result.passed(threshold=1e-6) and not result.passed(threshold=1e-7)
    assert rel_error(np.array([result.max_error]), np.array([2e-7])) == 0
