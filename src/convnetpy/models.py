"""Classic nets as functions returning spec lists (one source of truth; ``Net(cifar10net())`` builds one)."""

from __future__ import annotations


def cifar10net() -> list[dict]:
    """The ConvNetJS CIFAR-10 demo net: 32x32 RGB -> 10 classes; 1216 + 8020 + 10020 + 3210 = 22,466 params."""
    return [
        {"type": "input", "shape": [3, 32, 32]},
        {"type": "conv", "filters": 16, "size": 5, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "conv", "filters": 20, "size": 5, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "conv", "filters": 20, "size": 5, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "softmax", "classes": 10},
    ]


def lenet5() -> list[dict]:
    """LeNet-5 (LeCun et al. 1998) for 28x28 grey input, with ReLU and max pooling; 61,706 params."""
    return [
        {"type": "input", "shape": [1, 28, 28]},
        {"type": "conv", "filters": 6, "size": 5, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "conv", "filters": 16, "size": 5, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "fc", "neurons": 120, "activation": "relu"},
        {"type": "fc", "neurons": 84, "activation": "relu"},
        {"type": "softmax", "classes": 10},
    ]


def mnistnet() -> list[dict]:
    """The ConvNetJS MNIST demo net: 24x24 grey crops -> 10 classes; 5,994 params."""
    return [
        {"type": "input", "shape": [1, 24, 24]},
        {"type": "conv", "filters": 8, "size": 5, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 2, "stride": 2},
        {"type": "conv", "filters": 16, "size": 5, "stride": 1, "pad": 2, "activation": "relu"},
        {"type": "pool", "size": 3, "stride": 3},
        {"type": "softmax", "classes": 10},
    ]


MODELS = {"cifar10net": cifar10net, "lenet5": lenet5, "mnistnet": mnistnet}
