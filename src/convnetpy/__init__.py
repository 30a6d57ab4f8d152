"""convnetpy: convolutional neural networks in NumPy, with explicit forward and backward passes."""

from . import data, functional, layers, losses, models, optim
from .errors import ConvnetpyError, NetFileError, ShapeError, SpecError
from .gradient_check import GradcheckResult, GradcheckRow, gradcheck
from .introspect import activations, explain
from .net import Net, Param
from .serialization import load

__version__ = "0.1.0"

__all__ = [
    "ConvnetpyError", "GradcheckResult", "GradcheckRow", "Net", "NetFileError", "Param", "ShapeError", "SpecError",
    "activations", "data", "explain", "functional", "gradcheck", "layers", "load", "losses", "models", "optim",
    "__version__",
]
