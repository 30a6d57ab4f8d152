"""Pure NumPy kernels, no state: fast convolution and pooling, and their naive loop twins (``naive``)."""

from . import naive
from .conv import (
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
    conv_output_size,
    same_padding,
)
from .pool import (
    avgpool2d_backward,
    avgpool2d_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    pool_output_hw,
)

__all__ = [
    "naive", "conv1d_backward", "conv1d_forward", "conv2d_backward", "conv2d_forward", "conv_output_size",
    "same_padding", "avgpool2d_backward", "avgpool2d_forward", "maxpool2d_backward", "maxpool2d_forward",
    "pool_output_hw",
]
