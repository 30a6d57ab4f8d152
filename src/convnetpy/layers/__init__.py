"""Layers with explicit forward and backward passes (PyTorch's NCHW layout and parameter names)."""

from .activations import ACTIVATIONS, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer
from .conv import Conv1D, Conv2D
from .dense import Dense, Flatten
from .pool import AvgPool1D, AvgPool2D, MaxPool1D, MaxPool2D
from .regularization import BatchNorm1D, BatchNorm2D, Dropout

__all__ = [
    "ACTIVATIONS", "AvgPool1D", "AvgPool2D", "BatchNorm1D", "BatchNorm2D", "Conv1D", "Conv2D", "Dense",
    "Dropout", "Flatten", "Layer", "LeakyReLU", "MaxPool1D", "MaxPool2D", "ReLU", "Sigmoid", "Tanh",
]
