"""convnetpy: convolutional neural networks in NumPy, with explicit forward and backward passes."""

from . import data, functional, layers, losses, models, optim
from .errors import ConvnetpyError, NetFileError, ShapeError, SpecError
from .net import Net, Param
from .serialization import load

__version__ = "0.1.0"

__all__ = [
    "ConvnetpyError", "Net", "NetFileError", "Param", "ShapeError", "SpecError", "data", "functional", "layers", "load",
    "losses", "models", "optim", "__version__",
]
