"""PyTorch twins of convnetpy nets, built the way a PyTorch user would: ``nn.Sequential`` of the same layers."""

from __future__ import annotations

import torch

import convnetpy
from convnetpy import layers as L


def torch_twin(net: convnetpy.Net) -> torch.nn.Sequential:
    """The same architecture in torch.nn, with our weights copied in."""
    modules = []
    for layer in net.layers:
        if isinstance(layer, L.Conv2D):
            m = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                                layer.padding, layer.dilation)
        elif isinstance(layer, L.MaxPool2D):
            m = torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, L.ReLU):
            m = torch.nn.ReLU()
        elif isinstance(layer, L.Flatten):
            m = torch.nn.Flatten()
        elif isinstance(layer, L.Dense):
            m = torch.nn.Linear(layer.in_features, layer.out_features)
        else:
            raise NotImplementedError(f"no PyTorch twin for {layer!r}")
        with torch.no_grad():
            for name, value in layer.params.items():
                getattr(m, name).copy_(torch.from_numpy(value))
        modules.append(m)
    return torch.nn.Sequential(*modules)


def torch_train_step(twin: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """A PyTorch user's training step for ``twin`` on the batch (x, y): cross-entropy, then SGD with momentum,
    as the benchmarks run convnetpy's. Returns the step as a function of no arguments."""
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.001, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(twin(x), y).backward()
        optimizer.step()

    return step
