"""The two shared test helpers: finite-difference gradient checks (float64) and comparison with PyTorch."""

from __future__ import annotations

import numpy as np

from convnetpy.layers import Layer


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / (||a|| + ||b||): a relative error that tiny entries cannot inflate (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 0 else 0.0


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Centred differences of the scalar function ``f()`` w.r.t. every entry of ``x`` (changed in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        plus = f()
        x[i] = old - eps
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_layer_gradients(layer: Layer, x: np.ndarray, rng: np.random.Generator, eps: float = 1e-6,
                          reseed=None) -> dict[str, float]:
    """Relative errors of ``layer.backward`` against finite differences, for dx and every parameter.

    The scalar checked is L = sum(forward(x) * g) for a fixed random g, so dL/dy = g. ``reseed`` (if given)
    is called before every forward pass so stochastic layers (Dropout) use the same mask each time.
    Everything must be float64.
    """
    assert x.dtype == np.float64, "gradient checks run in float64"

    def run(training=True):
        if reseed is not None:
            reseed()
        return layer.forward(x, training=training)

    g = rng.standard_normal(run().shape)

    def loss():
        return float(np.sum(run() * g))

    run()
    dx = layer.backward(g)
    errors = {"x": rel_error(dx, numerical_gradient(loss, x, eps))}
    analytic = {k: v.copy() for k, v in layer.grads.items()}
    for name, value in layer.params.items():
        errors[name] = rel_error(analytic[name], numerical_gradient(loss, value, eps))
    return errors


def torch_tensor(a: np.ndarray, grad: bool = False):
    import torch

    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


def assert_close(ours, theirs, rtol: float = 1e-4, atol: float = 1e-5, what: str = "") -> None:
    """Our array equals PyTorch's (a tensor or array) within float32 tolerances, shapes and dtypes included."""
    if hasattr(theirs, "detach"):
        theirs = theirs.detach().numpy()
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != PyTorch's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != PyTorch's {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=what)


def compare_with_torch(layer: Layer, module, x: np.ndarray, rng: np.random.Generator, training: bool = True,
                       rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """Copy the layer's params into ``module``, run both forward and backward, compare y, dx and every grad.

    ``module`` is a torch.nn.Module (or any callable with the same named parameters as ``layer.params``).
    """
    import torch

    params = dict(module.named_parameters()) if isinstance(module, torch.nn.Module) else {}
    with torch.no_grad():
        for name, value in layer.params.items():
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    if isinstance(module, torch.nn.Module):
        module.train(training)
    y = layer.forward(x, training=training)
    tx = torch_tensor(x, grad=True)
    ty = module(tx)
    assert_close(y, ty, rtol, atol, f"{type(layer).__name__} forward")
    g = rng.standard_normal(y.shape).astype(x.dtype)
    ty.backward(torch_tensor(g))
    dx = layer.backward(g)
    assert_close(dx, tx.grad, rtol, atol, f"{type(layer).__name__} input gradient")
    for name in layer.params:
        assert_close(layer.grads[name], params[name].grad, rtol, atol, f"{type(layer).__name__} grad {name}")


def copy_net_to_torch(net, module) -> dict:
    """Copy every parameter of a Net into a torch.nn.Module with the same parameter names and shapes
    (an ``nn.Sequential`` with the same layer order); return the module's named parameters."""
    import torch

    tparams = dict(module.named_parameters())
    ours = {p.name: p.value for p in net.params()}
    assert sorted(tparams) == sorted(ours), f"parameter names differ: {sorted(tparams)} != {sorted(ours)}"
    with torch.no_grad():
        for name, value in ours.items():
            assert tuple(tparams[name].shape) == value.shape, f"{name}: {tuple(tparams[name].shape)} != {value.shape}"
            tparams[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return tparams


def assert_same_evaluation(ours: dict, expected: dict) -> None:
    """Two ``evaluate`` results agree: the confusion matrix exactly, the numbers approximately."""
    import pytest

    assert ours["confusion"] == expected["confusion"]
    rest = {k: v for k, v in expected.items() if k != "confusion"}
    assert {k: v for k, v in ours.items() if k != "confusion"} == pytest.approx(rest)


def compare_training_pass_with_torch(net, module, tparams: dict, x: np.ndarray, labels: np.ndarray, name: str) -> None:
    """One training pass of a softmax net and its PyTorch twin: same logits, loss, parameter and input gradients.

    ``tparams`` maps our parameter names to the twin's parameters (as ``copy_net_to_torch`` returns).
    """
    import pytest
    import torch
    import torch.nn.functional as F

    scores = net.forward(x, training=True)
    loss, dscores = net.loss(scores, labels)
    dx = net.backward(dscores, input_grad=True)
    tx = torch_tensor(x, grad=True)
    tscores = module(tx)
    tloss = F.cross_entropy(tscores, torch.from_numpy(labels))
    tloss.backward()

    assert_close(scores, tscores, 1e-4, 1e-5, f"{name} logits")
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    for p in net.params():
        assert_close(p.grad, tparams[p.name].grad, 1e-4, 1e-5, f"{name} grad {p.name}")
    assert_close(dx, tx.grad, 1e-4, 1e-6, f"{name} input gradient")
