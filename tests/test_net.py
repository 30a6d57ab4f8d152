"""Net: shapes, parameters, input errors, dtypes, seeds, summary; whole-net conformance with PyTorch and
finite-difference gradient checks of whole nets in float64."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convnetpy import Net, ShapeError, SpecError, models
from convnetpy.layers import Dense, ReLU
from helpers import (
    assert_close,
    compare_training_pass_with_torch,
    copy_net_to_torch,
    numerical_gradient,
    rel_error,
    torch_tensor,
)

# Every layer type and desugaring in one small net (svm head).
EVERYTHING = [
    {"type": "input", "shape": [3, 10, 10]},
    {"type": "conv", "filters": 4, "size": 3, "pad": "same", "bias": False},
    {"type": "batchnorm"},
    {"type": "leaky_relu", "negative_slope": 0.1},
    {"type": "pool", "size": 2, "mode": "avg"},
    {"type": "conv", "filters": 3, "size": 3, "activation": "tanh"},
    {"type": "pool", "size": 2, "ragged": True},  # 3x3 -> 1x1, as PyTorch floors it
    {"type": "fc", "neurons": 6, "activation": "sigmoid", "dropout": 0.5},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "svm", "classes": 4},
]
SIGNAL_NET = [
    {"type": "input", "shape": [2, 16]},
    {"type": "conv", "filters": 4, "size": 5, "stride": 2, "pad": 2, "activation": "relu", "ragged": True},  # 7.5 -> 8
    {"type": "pool", "size": 2},
    {"type": "conv", "filters": 3, "size": 3, "pad": 1},
    {"type": "batchnorm"},
    {"type": "regression", "outputs": 2},
]
NETS = {"cifar10net": models.cifar10net(), "lenet5": models.lenet5(), "mnistnet": models.mnistnet(),
        "everything": EVERYTHING, "signal": SIGNAL_NET}


def batch(net: Net, n: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    return rng.standard_normal((n, *net.input_shape)).astype(dtype)


def targets(net: Net, n: int, rng: np.random.Generator):
    if net.head == "regression":
        return rng.standard_normal((n, *net.output_shape)).astype(net.dtype)
    return rng.integers(0, net.output_shape[0], n)


# -- shapes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(NETS))
def test_forward_backward_shapes(name):
    rng = np.random.default_rng(0)
    net = Net(NETS[name], rng=rng)
    x = batch(net, 3, rng)
    scores = net.forward(x, training=True)
    assert scores.shape == (3, *net.output_shape)
    loss, dscores = net.loss(scores, targets(net, 3, rng))
    assert np.isfinite(loss)
    assert dscores.shape == scores.shape
    dx = net.backward(dscores, input_grad=True)
    assert dx.shape == x.shape
    for p in net.params():
        assert p.grad.shape == p.value.shape, p.name


def test_backward_without_input_grad_returns_none_and_same_grads():
    rng = np.random.default_rng(1)
    net = Net(models.mnistnet(), rng=rng)
    x = batch(net, 2, rng)
    d = rng.standard_normal((2, 10)).astype(np.float32)
    net.forward(x, training=True)
    net.backward(d, input_grad=True)
    with_dx = {p.name: p.grad.copy() for p in net.params()}
    net.forward(x, training=True)
    assert net.backward(d) is None
    for p in net.params():
        np.testing.assert_array_equal(p.grad, with_dx[p.name], err_msg=p.name)


def test_backward_after_inference_forward_is_refused():
    rng = np.random.default_rng(2)
    net = Net(models.mnistnet(), rng=rng)
    net.forward(batch(net, 2, rng))
    with pytest.raises(RuntimeError, match=re.escape("Dense.backward called before forward(x, training=True)")):
        net.backward(np.ones((2, 10), np.float32))


def test_predict_proba_and_predict():
    rng = np.random.default_rng(3)
    net = Net(models.mnistnet(), rng=rng)
    x = batch(net, 7, rng)
    proba = net.predict_proba(x)
    assert proba.shape == (7, 10)
    assert proba.dtype == np.float32
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-6)
    scores = net.forward(x)
    np.testing.assert_allclose(proba, np.exp(scores) / np.exp(scores).sum(1, keepdims=True), rtol=1e-5, atol=1e-7)
    # Batch by batch gives the same answer as all at once.
    np.testing.assert_allclose(net.predict_proba(x, batch_size=3), proba, rtol=1e-5, atol=1e-7)
    labels = net.predict(x, batch_size=2)
    assert labels.shape == (7,)
    assert np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, scores.argmax(axis=1))
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))


def test_predict_on_an_empty_batch():
    net = Net(models.mnistnet(), seed=0)
    empty = np.zeros((0, 1, 24, 24), np.float32)
    assert net.predict_proba(empty).shape == (0, 10)
    labels = net.predict(empty)
    assert labels.shape == (0,)
    assert np.issubdtype(labels.dtype, np.integer)


def test_inference_is_deterministic_and_training_forward_uses_dropout():
    rng = np.random.default_rng(4)
    net = Net(EVERYTHING, rng=rng)
    x = batch(net, 4, rng)
    np.testing.assert_array_equal(net.forward(x), net.forward(x))
    assert not np.array_equal(net.forward(x, training=True), net.forward(x, training=True))


# -- parameters -------------------------------------------------------------------------------------------------
def test_params_names_and_decay_multipliers():
    net = Net(models.cifar10net(), seed=0)
    params = net.params()
    assert [p.name for p in params] == ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias",
                                        "10.weight", "10.bias"]
    assert [p.decay for p in params] == [1.0, 0.0] * 4
    assert [p.value.shape for p in params] == [(16, 3, 5, 5), (16,), (20, 16, 5, 5), (20,), (20, 20, 5, 5), (20,),
                                               (10, 320), (10,)]
    assert net.num_params() == 22_466
    # value and grad are the very arrays the layer uses (optimizers update them in place).
    assert params[0].value is net.layers[0].params["weight"]
    assert params[0].grad is net.layers[0].grads["weight"]


def test_params_of_batchnorm_and_biasless_layers():
    net = Net(EVERYTHING, seed=0)
    decays = {p.name: p.decay for p in net.params()}
    assert decays == {"0.weight": 1.0, "1.weight": 0.0, "1.bias": 0.0, "4.weight": 1.0, "4.bias": 0.0,
                      "8.weight": 1.0, "8.bias": 0.0, "11.weight": 0.0, "11.bias": 0.0,
                      "13.weight": 1.0, "13.bias": 0.0}
    assert sorted(net.state_dict()) == sorted([*decays, "1.running_mean", "1.running_var", "11.running_mean",
                                               "11.running_var"])


def test_state_dict_is_a_copy_and_load_state_dict_checks_names_and_shapes():
    a, b = Net(models.mnistnet(), seed=0), Net(models.mnistnet(), seed=1)
    state = a.state_dict()
    state["0.weight"][...] = 0
    assert not np.all(a.layers[0].params["weight"] == 0)
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    missing = a.state_dict()
    del missing["3.bias"]
    with pytest.raises(ValueError, match=re.escape("state does not fit this net: missing ['3.bias'], unexpected []")):
        b.load_state_dict(missing)
    wrong = a.state_dict()
    wrong["7.weight"] = np.zeros((10, 255), np.float32)
    with pytest.raises(ValueError, match=re.escape("state '7.weight' has shape (10, 255), the net expects (10, 256)")):
        b.load_state_dict(wrong)


# -- input errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 32, 31), (2, 1, 32, 32), (3, 32, 32), (2, 3, 32, 32, 1)])
def test_wrong_input_shape(shape):
    net = Net(models.cifar10net(), seed=0)
    message = f"Net expects input of shape (N, 3, 32, 32), got {shape}"
    with pytest.raises(ShapeError, match="^" + re.escape(message) + "$"):
        net.forward(np.zeros(shape, np.float32))
    with pytest.raises(ShapeError, match="^" + re.escape(message) + "$"):
        net.predict(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.bool_, np.float16])
def test_non_float_input(dtype):
    net = Net(models.cifar10net(), seed=0)
    with pytest.raises(TypeError, match=re.escape(f"Net.forward expects float32 or float64 input, got "
                                                  f"{np.dtype(dtype)} (convert images to floats first")):
        net.forward(np.zeros((2, 3, 32, 32), dtype))


def test_non_array_input():
    net = Net([{"type": "input", "shape": [2]}, {"type": "fc", "neurons": 1}])
    with pytest.raises(TypeError, match="^Net.forward expects a NumPy array, got list$"):
        net.forward([[1.0, 2.0]])


def test_loss_without_head():
    net = Net([{"type": "input", "shape": [4]}, {"type": "fc", "neurons": 3}])
    scores = net.forward(np.ones((2, 4), np.float32))
    message = "Net.loss: this net has no loss head (end the specs with softmax, svm or regression)"
    with pytest.raises(SpecError, match=re.escape(message)):
        net.loss(scores, np.array([0, 1]))
    with pytest.raises(SpecError, match=re.escape(message)):
        net.backprop(np.ones((2, 4), np.float32), np.array([0, 1]))


def test_bad_net_dtype():
    with pytest.raises(TypeError, match=re.escape("Net: dtype must be float32 or float64, got float16")):
        Net(models.mnistnet(), dtype=np.float16)


def test_layer_dtype_must_match_net_dtype():
    with pytest.raises(TypeError, match=re.escape("Net: layer 1 (Dense) holds float64 'weight' but the net's dtype "
                                                  "is float32")):
        Net([ReLU(), Dense(4, 3, dtype=np.float64)], input_shape=(4,))
    net = Net([ReLU(), Dense(4, 3, dtype=np.float64)], input_shape=(4,), dtype=np.float64)
    assert net.forward(np.ones((2, 4))).dtype == np.float64


# -- dtypes and seeds ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [None, np.float32, np.float64])
@pytest.mark.parametrize("name", ["everything", "signal", "lenet5"])
def test_dtype_everywhere(name, dtype):
    rng = np.random.default_rng(5)
    net = Net(NETS[name], rng=rng) if dtype is None else Net(NETS[name], rng=rng, dtype=dtype)
    want = np.dtype(np.float32 if dtype is None else dtype)
    assert net.dtype == want
    for i, layer in enumerate(net.layers):
        for store in (layer.params, layer.grads, layer.buffers):
            for k, v in store.items():
                assert v.dtype == want, f"layer {i} {k}"
    x = batch(net, 3, rng, want)
    out = x
    for i, layer in enumerate(net.layers):  # every intermediate output keeps the dtype
        out = layer.forward(out, training=True)
        assert out.dtype == want, f"layer {i} ({type(layer).__name__}) output"
    loss, dscores = net.loss(net.forward(x, training=True), targets(net, 3, rng))
    assert dscores.dtype == want
    assert net.backward(dscores, input_grad=True).dtype == want
    for p in net.params():
        assert p.grad.dtype == want, p.name
    assert net.forward(x).dtype == want
    if net.head == "softmax":
        assert net.predict_proba(x).dtype == want


def test_seed_reproducibility():
    specs = EVERYTHING
    a, b, c = Net(specs, seed=7), Net(specs, seed=7), Net(specs, seed=8)
    d = Net(specs, rng=np.random.default_rng(7))
    for (name, va), vb, vc, vd in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values(),
                                      d.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=name)
        np.testing.assert_array_equal(va, vd, err_msg=name)
        if name.endswith("weight") and name not in ("1.weight", "11.weight"):  # BatchNorm weights start at 1
            assert not np.array_equal(va, vc), name
    # The seed also drives dropout: the same training forward pass for the same seed.
    x = batch(a, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(a.forward(x, training=True), b.forward(x, training=True))


# -- summary ----------------------------------------------------------------------------------------------------------
def summary_table(net: Net) -> list[list[str]]:
    """The per-layer rows of net.summary(): [index, layer, output shape, params, mult-adds, receptive field]."""
    rows = []
    for line in net.summary().splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0].isdigit():
            rows.append(cells)
    return rows


def test_summary_cifar10net():
    net = Net(models.cifar10net())
    rows = summary_table(net)
    assert len(rows) == len(net.layers) == 11
    assert [r[3] for r in rows if r[3] != "0"] == ["1,216", "8,020", "10,020", "3,210"]
    assert [r[4] for r in rows if r[1].startswith("Conv2D")] == ["1,228,800", "2,048,000", "640,000"]
    assert [r[2] for r in rows if r[1].startswith("Conv2D")] == ["(16, 32, 32)", "(20, 16, 16)", "(20, 8, 8)"]
    assert rows[-1][1:] == ["Dense 320->10", "(10,)", "3,210", "3,200", "all"]  # its receptive field: everything
    text = net.summary()
    assert "total: 22,466 parameters, 3,920,000 multiply-adds per example, head: softmax" in text
    assert "memory: 89,864 bytes of float32 parameters" in text
    assert "memory: 179,728 bytes of float64 parameters" in Net(models.cifar10net(), dtype=np.float64).summary()


@pytest.mark.parametrize("name, params, total", [
    ("lenet5", ["156", "2,416", "48,120", "10,164", "850"], "61,706"),
    ("mnistnet", ["208", "3,216", "2,570"], "5,994"),
])
def test_summary_other_models(name, params, total):
    net = Net(models.MODELS[name]())
    assert [r[3] for r in summary_table(net) if r[3] != "0"] == params
    assert f"total: {total} parameters" in net.summary()
    assert net.num_params() == int(total.replace(",", ""))


# -- whole-net conformance with PyTorch ----------------------------------------------------------------------------
def torch_twin(name: str) -> nn.Sequential:
    """The PyTorch net a user would write for each model (same layer order, so the same parameter names)."""
    if name == "cifar10net":
        return nn.Sequential(
            nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(20, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(320, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name == "mnistnet":
        return nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 3),
            nn.Flatten(), nn.Linear(256, 10))
    raise KeyError(name)


@pytest.mark.parametrize("name", ["cifar10net", "lenet5", "mnistnet"])
def test_model_matches_pytorch(name):
    rng = np.random.default_rng(10)
    net = Net(models.MODELS[name](), rng=rng)
    module = torch_twin(name)
    tparams = copy_net_to_torch(net, module)
    x = batch(net, 4, rng)
    labels = rng.integers(0, 10, 4)
    # A nonzero bias everywhere, so a dropped bias would show.
    for p in net.params():
        if p.name.endswith("bias"):
            p.value[...] = rng.standard_normal(p.value.shape) * 0.1
    copy_net_to_torch(net, module)

    compare_training_pass_with_torch(net, module, tparams, x, labels, name)
    with torch.no_grad():
        assert_close(net.forward(x), module(torch_tensor(x)), 1e-4, 1e-5, f"{name} inference logits")
        assert_close(net.predict_proba(x), torch.softmax(module(torch_tensor(x)), 1), 1e-4, 1e-6, f"{name} proba")


@pytest.mark.parametrize("head", ["softmax", "svm", "regression"])
def test_heads_match_pytorch(head):
    rng = np.random.default_rng(11)
    key = "outputs" if head == "regression" else "classes"
    net = Net([{"type": "input", "shape": [6]}, {"type": "fc", "neurons": 5, "activation": "tanh"},
               {"type": head, key: 4}], rng=rng)
    module = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))
    tparams = copy_net_to_torch(net, module)
    x = batch(net, 8, rng)
    y = targets(net, 8, rng)
    loss = net.backprop(x, y)
    tscores = module(torch_tensor(x))
    if head == "softmax":
        tloss = F.cross_entropy(tscores, torch.from_numpy(y))
    elif head == "svm":  # PyTorch divides the hinge sum by the number of classes; ConvNetJS and CS231n do not
        tloss = F.multi_margin_loss(tscores, torch.from_numpy(y), margin=1.0) * 4
    else:
        tloss = F.mse_loss(tscores, torch.from_numpy(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for p in net.params():
        assert_close(p.grad, tparams[p.name].grad, 1e-4, 1e-6, f"{head} grad {p.name}")


# -- finite differences of whole nets (float64) ----------------------------------------------------------------
FD_NETS = {
    "conv_pool_fc_softmax": [
        {"type": "input", "shape": [1, 6, 6]},
        {"type": "conv", "filters": 2, "size": 3, "pad": 1, "activation": "relu"},
        {"type": "pool", "size": 2},
        {"type": "fc", "neurons": 4, "activation": "relu"},
        {"type": "softmax", "classes": 3},
    ],
    "conv1d_regression": [
        {"type": "input", "shape": [2, 9]},
        {"type": "conv", "filters": 3, "size": 3, "stride": 2, "pad": 1, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 1, "mode": "avg"},
        {"type": "conv", "filters": 2, "size": 2, "dilation": 2},
        {"type": "regression", "outputs": 2},
    ],
    "batchnorm_tanh_sigmoid_leaky": [
        {"type": "input", "shape": [2, 5, 5]},
        {"type": "conv", "filters": 3, "size": 3, "bias": False},
        {"type": "batchnorm"},
        {"type": "tanh"},
        {"type": "pool", "size": 2, "stride": 1},
        {"type": "fc", "neurons": 4, "activation": "sigmoid"},
        {"type": "batchnorm"},
        {"type": "leaky_relu", "negative_slope": 0.2},
        {"type": "softmax", "classes": 3},
    ],
    "svm_head": [
        {"type": "input", "shape": [1, 5, 5]},
        {"type": "conv", "filters": 2, "size": 2, "stride": 2, "pad": "same", "activation": "tanh"},
        {"type": "svm", "classes": 3},
    ],
}


@pytest.mark.parametrize("name", sorted(FD_NETS))
def test_whole_net_gradients_by_finite_differences(name):
    rng = np.random.default_rng(12)
    net = Net(FD_NETS[name], rng=rng, dtype=np.float64)
    for p in net.params():  # random biases and BatchNorm affine params, so every path matters
        if not p.name.endswith("weight") or p.decay == 0:
            p.value[...] = rng.standard_normal(p.value.shape) * 0.5
    x = batch(net, 4, rng, np.float64)
    y = targets(net, 4, rng)

    def loss() -> float:
        return net.loss(net.forward(x, training=True), y)[0]

    _, dscores = net.loss(net.forward(x, training=True), y)
    dx = net.backward(dscores, input_grad=True)
    analytic = {p.name: p.grad.copy() for p in net.params()}
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    for p in net.params():
        assert rel_error(analytic[p.name], numerical_gradient(loss, p.value)) < 1e-6, p.name
