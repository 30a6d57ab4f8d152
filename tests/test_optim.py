"""Optimizers: 20-step trajectories equal to torch.optim (float32 and float64), weight-decay multipliers,
state_dict round trips mid-training, learning-rate changes, and argument errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convnetpy import Net, optim
from helpers import assert_close, copy_net_to_torch, torch_tensor

SPECS = [
    {"type": "input", "shape": [2, 6, 6]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1, "bias": False},  # a bias before BatchNorm has no effect
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "pool", "size": 2},
    {"type": "fc", "neurons": 8, "activation": "tanh"},
    {"type": "softmax", "classes": 3},
]
STEPS, BATCH = 20, 8


def torch_twin() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 3))


def torch_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two param groups, decided from PyTorch's module types (not from our multipliers): conv and linear weights
    decay, biases and BatchNorm parameters do not."""
    decay, no_decay = [], []
    for m in module.modules():
        for name, p in m.named_parameters(recurse=False):
            (decay if isinstance(m, (nn.Conv2d, nn.Linear)) and name == "weight" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# name: (our class, our kwargs, torch class, torch kwargs)
CONFIGS = {
    "sgd": (optim.SGD, {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    "sgd_weight_decay": (optim.SGD, {"lr": 0.1, "weight_decay": 0.05},
                         torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
    "sgd_momentum": (optim.SGD, {"lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "sgd_nesterov": (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True},
                     torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd_momentum_weight_decay": (optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05},
                                  torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05}),
    "adagrad": (optim.Adagrad, {"lr": 0.05}, torch.optim.Adagrad, {"lr": 0.05}),
    "adagrad_weight_decay": (optim.Adagrad, {"lr": 0.05, "weight_decay": 0.05},
                             torch.optim.Adagrad, {"lr": 0.05, "weight_decay": 0.05}),
    # Our Adadelta defaults are ConvNetJS's (rho 0.95, eps 1e-6, lr 1.0); PyTorch's rho is 0.9.
    "adadelta": (optim.Adadelta, {}, torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95, "eps": 1e-6}),
    "adadelta_weight_decay": (optim.Adadelta, {"lr": 0.5, "rho": 0.9, "eps": 1e-5, "weight_decay": 0.05},
                              torch.optim.Adadelta, {"lr": 0.5, "rho": 0.9, "eps": 1e-5, "weight_decay": 0.05}),
    "adam": (optim.Adam, {"lr": 0.01}, torch.optim.Adam, {"lr": 0.01}),
    "adam_betas": (optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6},
                   torch.optim.Adam, {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}),
    "adam_weight_decay": (optim.Adam, {"lr": 0.01, "weight_decay": 0.05},
                          torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.05}),
}


def make_pair(name: str, dtype, seed: int = 0):
    """Our net and optimizer, and the PyTorch twin with the same weights and its optimizer."""
    ours_cls, ours_kwargs, torch_cls, torch_kwargs = CONFIGS[name]
    net = Net(SPECS, seed=seed, dtype=dtype)
    module = torch_twin().to(torch.float64 if dtype == np.float64 else torch.float32)
    tparams = copy_net_to_torch(net, module)
    kwargs = dict(torch_kwargs)
    groups = torch_groups(module, kwargs.pop("weight_decay", 0.0))
    return net, ours_cls(net.params(), **ours_kwargs), module, tparams, torch_cls(groups, **kwargs)


def batches(dtype, n: int = STEPS, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, 2, 6, 6)).astype(dtype), rng.integers(0, 3, BATCH)) for _ in range(n)]


def torch_step(module, opt, x, y) -> float:
    opt.zero_grad()
    loss = F.cross_entropy(module(torch_tensor(x)), torch.from_numpy(y))
    loss.backward()
    opt.step()
    return loss.item()


def our_step(net, opt, x, y) -> float:
    loss = net.backprop(x, y)
    opt.step()
    return loss


def tolerances(dtype) -> dict:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_trajectory_matches_torch(name, dtype):
    net, opt, module, tparams, topt = make_pair(name, dtype)
    tol = tolerances(dtype)
    start = {p.name: p.value.copy() for p in net.params()}
    for step, (x, y) in enumerate(batches(dtype)):
        loss, tloss = our_step(net, opt, x, y), torch_step(module, topt, x, y)
        assert loss == pytest.approx(tloss, rel=tol["rtol"], abs=tol["atol"]), f"step {step} loss"
        for p in net.params():
            assert_close(p.value, tparams[p.name], what=f"{name} step {step} {p.name}", **tol)
    assert opt.steps == STEPS
    bn, tbn = net.layers[1], module[1]
    assert_close(bn.buffers["running_mean"], tbn.running_mean, what="running_mean", **tol)
    assert_close(bn.buffers["running_var"], tbn.running_var, what="running_var", **tol)
    for p in net.params():  # the params really moved
        assert not np.allclose(p.value, start[p.name]), p.name


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adadelta", "adam"])
def test_weight_decay_changes_the_trajectory(name):
    ours_cls, kwargs, _, _ = CONFIGS[name]
    finals = []
    for wd in (0.0, 0.05):
        net = Net(SPECS, seed=0, dtype=np.float64)
        opt = ours_cls(net.params(), **{**kwargs, "weight_decay": wd})
        for x, y in batches(np.float64, 5):
            our_step(net, opt, x, y)
        finals.append({p.name: p.value.copy() for p in net.params()})
    assert not np.allclose(finals[0]["0.weight"], finals[1]["0.weight"], rtol=0, atol=1e-6)


def test_weight_decay_multipliers_skip_biases_and_batchnorm():
    """With zero gradients, only weight decay moves params: weights shrink by lr * wd, the rest stay."""
    net = Net(SPECS, seed=0)
    for p in net.params():
        p.value[...] = 1.0
        p.grad[...] = 0.0
    optim.SGD(net.params(), lr=0.5, weight_decay=0.1).step()
    for p in net.params():
        expected = 1.0 - 0.5 * 0.1 if p.name in ("0.weight", "5.weight", "7.weight") else 1.0
        np.testing.assert_allclose(p.value, expected, rtol=1e-7, err_msg=p.name)
        assert p.decay == (1.0 if expected != 1.0 else 0.0), p.name


@pytest.mark.parametrize("name", ["sgd_momentum_weight_decay", "sgd_nesterov", "adagrad_weight_decay",
                                  "adadelta", "adam_weight_decay"])
def test_state_dict_resumes_exactly(name):
    data = batches(np.float32)
    ours_cls, kwargs, _, _ = CONFIGS[name]
    # Uninterrupted run.
    net_a = Net(SPECS, seed=0)
    opt_a = ours_cls(net_a.params(), **kwargs)
    for x, y in data:
        our_step(net_a, opt_a, x, y)
    # Interrupted after 10 steps: save net and optimizer state, keep training the original (the saved state must
    # be a copy), then restore into a fresh net and a fresh optimizer built with default hyperparameters.
    net_b = Net(SPECS, seed=0)
    opt_b = ours_cls(net_b.params(), **kwargs)
    for x, y in data[:10]:
        our_step(net_b, opt_b, x, y)
    net_state, opt_state = net_b.state_dict(), opt_b.state_dict()
    assert opt_state["steps"] == 10
    for x, y in data[10:]:
        our_step(net_b, opt_b, x, y)
    net_c = Net(SPECS, seed=99)
    net_c.load_state_dict(net_state)
    opt_c = ours_cls(net_c.params())
    opt_c.load_state_dict(opt_state)
    assert opt_c.steps == 10
    assert {k: getattr(opt_c, k) for k in opt_c.hyperparams} == opt_state["hyperparams"]
    for x, y in data[10:]:
        our_step(net_c, opt_c, x, y)
    for net in (net_b, net_c):
        for (k, va), vb in zip(net_a.state_dict().items(), net.state_dict().values()):
            np.testing.assert_array_equal(vb, va, err_msg=f"{name} {k}")


def test_state_dict_contents():
    net = Net(SPECS, seed=0)
    opt = optim.Adam(net.params(), lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.1)
    x, y = batches(np.float32, 1)[0]
    our_step(net, opt, x, y)
    sd = opt.state_dict()
    assert sd["type"] == "Adam"
    assert sd["steps"] == 1
    assert sd["hyperparams"] == {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "weight_decay": 0.1}
    assert sorted(sd["arrays"]) == sorted(f"{p.name}/{b}" for p in net.params() for b in ("m", "v"))
    for p in net.params():
        assert sd["arrays"][f"{p.name}/m"].shape == p.value.shape
        assert sd["arrays"][f"{p.name}/m"].dtype == np.float32


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_lr_change_between_steps(name):
    dtype = np.float64
    net, opt, module, tparams, topt = make_pair(name, dtype)
    reference = Net(SPECS, seed=0, dtype=dtype)  # the same run without the schedule
    ref_opt = CONFIGS[name][0](reference.params(), **CONFIGS[name][1])
    for step, (x, y) in enumerate(batches(dtype)):
        if step in (5, 12):
            opt.lr *= 0.3
            for group in topt.param_groups:
                group["lr"] *= 0.3
        our_step(net, opt, x, y)
        our_step(reference, ref_opt, x, y)
        torch_step(module, topt, x, y)
        for p in net.params():
            assert_close(p.value, tparams[p.name], what=f"step {step} {p.name}", **tolerances(dtype))
    assert not np.allclose(net.params()[0].value, reference.params()[0].value)


# -- errors ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.Adadelta, optim.Adam])
def test_no_params(cls):
    with pytest.raises(ValueError, match=f"^{cls.__name__}: got no parameters to optimize$"):
        cls([])
    with pytest.raises(ValueError, match=f"^{cls.__name__}: got no parameters to optimize$"):
        cls(p for p in ())


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.Adadelta, optim.Adam])
@pytest.mark.parametrize("lr, weight_decay", [(-0.1, 0.0), (0.1, -1e-4)])
def test_negative_lr_or_weight_decay(cls, lr, weight_decay):
    net = Net(SPECS, seed=0)
    message = f"{cls.__name__}: lr and weight_decay must be >= 0, got {lr}, {weight_decay}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        cls(net.params(), lr=lr, weight_decay=weight_decay)


@pytest.mark.parametrize("momentum", [0.0, -0.5])
def test_nesterov_without_momentum(momentum):
    net = Net(SPECS, seed=0)
    with pytest.raises(ValueError, match=re.escape("SGD: Nesterov momentum needs momentum > 0")):
        optim.SGD(net.params(), lr=0.1, momentum=momentum, nesterov=True)


def test_load_state_dict_of_another_optimizer_or_net():
    net = Net(SPECS, seed=0)
    sgd = optim.SGD(net.params(), momentum=0.9)
    with pytest.raises(ValueError, match=re.escape("optimizer state is for SGD, not Adam")):
        optim.Adam(net.params()).load_state_dict(sgd.state_dict())
    wider = Net([*SPECS[:1], {**SPECS[1], "filters": 5}, *SPECS[2:]], seed=0)
    with pytest.raises(ValueError, match=re.escape("optimizer state 0.weight/velocity has shape (4, 2, 3, 3), "
                                                   "the parameter has (5, 2, 3, 3)")):
        optim.SGD(wider.params(), momentum=0.9).load_state_dict(sgd.state_dict())


def test_load_state_dict_of_different_params_names_them_and_changes_nothing():
    net = Net(SPECS, seed=0)
    adam = optim.Adam(net.params(), lr=0.5)
    our_step(net, adam, *batches(np.float32, 1)[0])
    other = Net([*SPECS[:1], {**SPECS[1], "bias": True}, *SPECS[2:]], seed=0)  # one more param: 0.bias
    fresh = optim.Adam(other.params(), lr=0.25)
    with pytest.raises(ValueError, match=re.escape("optimizer state does not fit these parameters: missing "
                                                   "['0.bias/m', '0.bias/v'], unexpected []")):
        fresh.load_state_dict(adam.state_dict())
    assert (fresh.lr, fresh.steps) == (0.25, 0)
    assert all(not a.any() for state in fresh.state for a in state.values())
    with pytest.raises(ValueError, match=re.escape("missing [], unexpected ['0.bias/m', '0.bias/v']")):
        adam.load_state_dict(fresh.state_dict())
    assert (adam.lr, adam.steps) == (0.5, 1)


def test_defaults():
    params = Net(SPECS, seed=0).params()
    assert (optim.SGD(params).lr, optim.SGD(params).momentum, optim.SGD(params).nesterov) == (0.01, 0.0, False)
    assert (optim.Adagrad(params).lr, optim.Adagrad(params).eps) == (0.01, 1e-10)
    assert (optim.Adadelta(params).lr, optim.Adadelta(params).rho, optim.Adadelta(params).eps) == (1.0, 0.95, 1e-6)
    adam = optim.Adam(params)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay) == (0.001, 0.9, 0.999, 1e-8, 0.0)
    assert optim.OPTIMIZERS == {"sgd": optim.SGD, "adagrad": optim.Adagrad, "adadelta": optim.Adadelta,
                                "adam": optim.Adam}
