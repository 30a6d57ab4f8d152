"""Training checkpoints: one ``.npz`` holding everything needed to resume a run exactly, written atomically.

Inside: the net (specs JSON + parameters and buffers, readable by ``convnetpy.load``), the optimizer's
hyperparameters and state arrays, the trainer's position (epoch, step), its config and history, the
preprocessing (class names, per-channel mean and std) and the state of every random generator the net owns
(Dropout). Batch order and augmentation are derived from (seed, epoch, step), so they need no state.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import NetFileError
from .serialization import atomic_write, net_arrays, net_from_arrays, read_npz


def _rng_states(net) -> list:
    return [layer.rng.bit_generator.state if hasattr(layer, "rng") else None for layer in net.layers]


def _set_rng_states(net, states: list) -> None:
    for layer, state in zip(net.layers, states):
        if state is not None and hasattr(layer, "rng"):
            layer.rng.bit_generator.state = state


def save_checkpoint(path, net, optimizer, trainer_state: dict) -> None:
    """Write net, optimizer and ``trainer_state`` (JSON-serialisable) to ``path``, atomically."""
    arrays = net_arrays(net)
    opt = optimizer.state_dict()
    arrays.update({f"optim/{k}": v for k, v in opt["arrays"].items()})
    meta = {"optimizer": {k: v for k, v in opt.items() if k != "arrays"}, "trainer": trainer_state,
            "rng_states": _rng_states(net)}
    arrays["checkpoint"] = np.array(json.dumps(meta))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """Read a checkpoint: returns (net, optimizer state dict, trainer state dict).

    The optimizer state dict is what ``Optimizer.load_state_dict`` takes; build the optimizer on the
    returned net's params first (``make_optimizer`` in ``convnetpy.train`` does this from the state).
    """
    arrays = read_npz(path, "convnetpy checkpoint")
    if "checkpoint" not in arrays:
        raise NetFileError(f"{path} holds a saved net, not a training checkpoint (no optimizer or trainer state)")
    net = net_from_arrays(arrays, path)
    try:
        meta = json.loads(str(arrays["checkpoint"]))
        opt = dict(meta["optimizer"])
        opt["arrays"] = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
        _set_rng_states(net, meta["rng_states"])
        return net, opt, meta["trainer"]
    except (KeyError, ValueError, TypeError) as e:
        raise NetFileError(f"{path}: the checkpoint is damaged: {e}") from None


def is_checkpoint(path) -> bool:
    """True when ``path`` is a readable training checkpoint (not just a saved net)."""
    try:
        return "checkpoint" in read_npz(Path(path), "convnetpy checkpoint")
    except (OSError, NetFileError):
        return False
