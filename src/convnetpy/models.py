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


# MNIST-1D baselines (Greydanus 2020, "Scaling down deep learning", arXiv:2011.14439): the architectures of
# github.com/greydanus/mnist1d (notebooks/models.py), for signals (1, 40) -> 10 classes. Test accuracy there:
# logistic regression 32%, MLP 68%, CNN 94% (56% with the positions shuffled); see benchmarks/mnist1d.py.
def mnist1d_cnn() -> list[dict]:
    """The MNIST-1D paper's CNN (its ConvBase): three stride-2 conv layers of 25 channels with ReLU (kernels 5,
    3 and 3, padding 1: 40 -> 19 -> 10 -> 5 positions), then a linear classifier on the 125 features;
    150 + 1900 + 1900 + 1260 = 5,210 params.

    The first and third layers leave their last padded position unread (19.5 and 4.5 windows): ``ragged``
    floors the size as PyTorch does, so the net is the paper's exactly.
    """
    return [
        {"type": "input", "shape": [1, 40]},
        {"type": "conv", "filters": 25, "size": 5, "stride": 2, "pad": 1, "activation": "relu", "ragged": True},
        {"type": "conv", "filters": 25, "size": 3, "stride": 2, "pad": 1, "activation": "relu"},
        {"type": "conv", "filters": 25, "size": 3, "stride": 2, "pad": 1, "activation": "relu", "ragged": True},
        {"type": "softmax", "classes": 10},
    ]


def mnist1d_mlp() -> list[dict]:
    """The MNIST-1D paper's MLP: two hidden layers of 100 with ReLU; 4100 + 10100 + 1010 = 15,210 params.

    The paper's MLPBase adds its second hidden layer's output to its input (``h + relu(W2 h + b2)``); a spec
    list is a plain stack, so here the second layer feeds forward alone (same layers and parameter count).
    """
    return [
        {"type": "input", "shape": [1, 40]},
        {"type": "fc", "neurons": 100, "activation": "relu"},
        {"type": "fc", "neurons": 100, "activation": "relu"},
        {"type": "softmax", "classes": 10},
    ]


def mnist1d_logreg() -> list[dict]:
    """Logistic regression on MNIST-1D: one linear layer from the 40 values to 10 scores; 410 params."""
    return [
        {"type": "input", "shape": [1, 40]},
        {"type": "softmax", "classes": 10},
    ]


MODELS = {"cifar10net": cifar10net, "lenet5": lenet5, "mnistnet": mnistnet, "mnist1d_cnn": mnist1d_cnn,
          "mnist1d_mlp": mnist1d_mlp, "mnist1d_logreg": mnist1d_logreg}
