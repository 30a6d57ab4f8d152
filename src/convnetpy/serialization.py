"""Save a Net to one ``.npz`` file and load it back: specs as JSON, every parameter and buffer, atomically."""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from .errors import NetFileError

FORMAT = "convnetpy-net"
VERSION = 1


def _create_temp(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file beside ``path``, opened for writing.

    Unlike ``tempfile.mkstemp`` (always mode 0o600), the mode is 0o666 less the umask, as for a file
    ``open(path, "wb")`` would create, so a saved net is as readable as any other file the user writes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # 48 random bits: practically never taken
            continue


def atomic_write(path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash mid-write leaves the old file intact: ``os.replace`` is atomic on POSIX and Windows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def net_arrays(net) -> dict[str, np.ndarray]:
    """The arrays that describe a net: format marker, specs JSON, and state under "state/<name>"."""
    arrays = {"format": np.array(FORMAT), "version": np.array(VERSION),
              "specs": np.array(json.dumps(net.specs())), "dtype": np.array(np.dtype(net.dtype).name)}
    arrays.update({f"state/{k}": v for k, v in net.state_dict().items()})
    return arrays


def save_net(net, path) -> None:
    arrays = net_arrays(net)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_npz(path, what: str = "convnetpy net") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, with clear errors for a missing, truncated or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file at {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise NetFileError(f"{path} is not a readable {what} file (truncated or not an .npz archive): {e}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):  # a single .npy array loads as an ndarray
        raise NetFileError(f"{path} is a single .npy array, not a {what} file (an .npz archive)")
    try:
        with data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise NetFileError(f"{path} is not a readable {what} file (truncated or not an .npz archive): {e}") from None
    if str(arrays.get("format", "")) != FORMAT:
        raise NetFileError(f"{path} is an .npz archive but not a {what} file (no '{FORMAT}' marker)")
    return arrays


def net_from_arrays(arrays: dict[str, np.ndarray], path=""):
    from .net import Net

    try:
        specs = json.loads(str(arrays["specs"]))
        net = Net(specs, dtype=str(arrays["dtype"]))
        net.load_state_dict({k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")})
    except (KeyError, ValueError, TypeError) as e:
        raise NetFileError(f"{path}: the saved net is damaged or does not match its specs: {e}") from None
    return net


def load(path):
    """Load a net written by ``Net.save`` (or the net inside a training checkpoint)."""
    return net_from_arrays(read_npz(path), path)
