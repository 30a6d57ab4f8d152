"""Exceptions that name the problem, so users see one clear line instead of a NumPy traceback."""

import pickle


class ConvnetpyError(Exception):
    """Base class of every error convnetpy raises on purpose."""


class SpecError(ConvnetpyError, ValueError):
    """A layer spec is unknown, incomplete or invalid; the message names the layer index, key and values."""


class ShapeError(ConvnetpyError, ValueError):
    """An input or an intermediate output has the wrong shape (or would be empty)."""


class NetFileError(ConvnetpyError, ValueError):
    """A saved net or checkpoint file is missing, truncated or not a convnetpy file."""


def portable(e: Exception) -> Exception:
    """``e`` if it survives pickling (to travel to another process), else a ConvnetpyError with its message."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:
        return ConvnetpyError(str(e))
