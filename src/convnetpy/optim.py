"""Optimizers: one class each, apart from the layers, taking ``net.params()``; ``step()`` updates in place.

Update rules are those of ``torch.optim`` (tested step by step against it). L2 weight decay adds
``weight_decay * decay_multiplier * value`` to each gradient, where the multiplier is 1 for weights and 0
for biases and BatchNorm parameters (ConvNetJS's ``l2_decay_mul``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class Optimizer:
    """Holds the params, the hyperparameters (``lr`` may be changed between steps) and per-param state."""

    hyperparams: tuple[str, ...] = ("lr", "weight_decay")
    buffers: tuple[str, ...] = ()  # names of per-parameter state arrays

    def __init__(self, params: Iterable, lr: float, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got no parameters to optimize")
        if lr < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr and weight_decay must be >= 0, got {lr}, {weight_decay}")
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.steps = 0
        self.state = [{name: np.zeros_like(p.value) for name in self.buffers} for p in self.params]

    def _grad(self, p) -> np.ndarray:
        decay = self.weight_decay * p.decay
        return p.grad + decay * p.value if decay else p.grad

    def step(self) -> None:
        """Apply one update to every parameter, in place."""
        self.steps += 1
        for p, state in zip(self.params, self.state):
            self._update(p.value, self._grad(p), state)

    def _update(self, value: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyperparameters, step count and every state array (keyed "<param name>/<buffer>")."""
        arrays = {f"{p.name}/{k}": v.copy() for p, state in zip(self.params, self.state) for k, v in state.items()}
        return {"type": type(self).__name__, "steps": self.steps,
                "hyperparams": {k: getattr(self, k) for k in self.hyperparams}, "arrays": arrays}

    def load_state_dict(self, sd: dict) -> None:
        """Restore what ``state_dict`` returned (for the same parameters, in the same order)."""
        if sd.get("type") != type(self).__name__:
            raise ValueError(f"optimizer state is for {sd.get('type')}, not {type(self).__name__}")
        # Check everything before changing anything, so a mismatch leaves this optimizer as it was.
        expected = {f"{p.name}/{k}": array for p, state in zip(self.params, self.state) for k, array in state.items()}
        missing, unexpected = sorted(set(expected) - set(sd["arrays"])), sorted(set(sd["arrays"]) - set(expected))
        if missing or unexpected:
            raise ValueError(f"optimizer state does not fit these parameters: missing {missing}, "
                             f"unexpected {unexpected}")
        for key, array in expected.items():
            value = sd["arrays"][key]
            if value.shape != array.shape:
                raise ValueError(f"optimizer state {key} has shape {value.shape}, the parameter has {array.shape}")
        for k, v in sd["hyperparams"].items():
            setattr(self, k, v)
        self.steps = int(sd["steps"])
        for key, array in expected.items():
            array[...] = sd["arrays"][key]


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and Nesterov momentum, as ``torch.optim.SGD``:
    v = momentum * v + g (v = g at the first step); update = g + momentum * v if nesterov else v."""

    hyperparams = ("lr", "momentum", "nesterov", "weight_decay")
    buffers = ("velocity",)

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        super().__init__(params, lr, weight_decay)

    def _update(self, value, grad, state):
        if self.momentum:
            v = state["velocity"]
            if self.steps == 1:
                v[...] = grad
            else:
                v *= self.momentum
                v += grad
            grad = grad + self.momentum * v if self.nesterov else v
        value -= self.lr * grad


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011), as ``torch.optim.Adagrad``: sum += g^2; value -= lr * g / (sqrt(sum) + eps)."""

    hyperparams = ("lr", "eps", "weight_decay")
    buffers = ("sum",)

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0) -> None:
        self.eps = float(eps)
        super().__init__(params, lr, weight_decay)

    def _update(self, value, grad, state):
        state["sum"] += grad * grad
        value -= self.lr * grad / (np.sqrt(state["sum"]) + self.eps)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``, with ConvNetJS's defaults rho 0.95, eps 1e-6:
    sq = rho sq + (1-rho) g^2; delta = sqrt(dsq + eps) / sqrt(sq + eps) * g; dsq = rho dsq + (1-rho) delta^2."""

    hyperparams = ("lr", "rho", "eps", "weight_decay")
    buffers = ("square_avg", "acc_delta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        self.rho, self.eps = float(rho), float(eps)
        super().__init__(params, lr, weight_decay)

    def _update(self, value, grad, state):
        sq, acc = state["square_avg"], state["acc_delta"]
        sq *= self.rho
        sq += (1 - self.rho) * grad * grad
        delta = np.sqrt(acc + self.eps) / np.sqrt(sq + self.eps) * grad
        acc *= self.rho
        acc += (1 - self.rho) * delta * delta
        value -= self.lr * delta


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), as ``torch.optim.Adam`` (L2 decay added to the gradient, not AdamW)."""

    hyperparams = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("m", "v")

    def __init__(self, params, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        super().__init__(params, lr, weight_decay)

    def _update(self, value, grad, state):
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (1 - self.beta1) * grad
        v *= self.beta2
        v += (1 - self.beta2) * grad * grad
        bias1 = 1 - self.beta1 ** self.steps
        bias2 = 1 - self.beta2 ** self.steps
        value -= (self.lr / bias1) * m / (np.sqrt(v) / bias2 ** 0.5 + self.eps)


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adadelta": Adadelta, "adam": Adam}
