"""Shared by the training tests: a tiny net, synthetic images whose class is visible, and resuming from a checkpoint."""

from __future__ import annotations

import numpy as np

from convnetpy import Net
from convnetpy.checkpoint import load_checkpoint
from convnetpy.data import load_dataset, write_idx
from convnetpy.preprocess import Preprocessor
from convnetpy.train import FitConfig, Trainer, TrainerState, make_optimizer

# 12x12 grey input (the 14x14 images are cropped to it), conv + pool + fc with dropout + softmax: 3 classes.
SPECS = [
    {"type": "input", "shape": [1, 12, 12]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1, "activation": "relu"},
    {"type": "pool", "size": 2},
    {"type": "fc", "neurons": 16, "activation": "relu", "dropout": 0.2},
    {"type": "softmax", "classes": 3},
]
CLASSES = ["horizontal", "vertical", "diagonal"]


def synthetic(n: int = 200, seed: int = 0, size: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """images (n, 1, size, size) uint8: noise plus a horizontal bar (class 0), a vertical bar (1) or a diagonal (2);
    labels (n,) int64."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 120, (n, 1, size, size)).astype(np.uint8)
    mid, diag = size // 2, np.eye(size - 6, dtype=bool)
    for image, label in zip(images[:, 0], labels):
        if label == 0:
            image[mid - 1:mid + 1, :] = 200
        elif label == 1:
            image[:, mid - 1:mid + 1] = 200
        else:
            image[3:size - 3, 3:size - 3][diag] = 200
    return images, labels.astype(np.int64)


def fresh(config: FitConfig, images: np.ndarray, callbacks=(), specs=SPECS, seed: int = 0) -> Trainer:
    """A new net (seeded) and a Trainer; augmentation as in the CLI: flips and shifts when ``config.augment``."""
    net = Net(specs, seed=seed)
    pre = Preprocessor.fit(images, net.input_shape, CLASSES, flip=config.flip,
                           max_shift=config.max_shift if config.augment else 0)
    return Trainer(net, config, pre, callbacks=callbacks)


def resumed(path, callbacks=(), **config_changes) -> Trainer:
    """A Trainer continuing the run saved at ``path``, restored as the CLI's ``--resume`` does."""
    net, opt_state, saved = load_checkpoint(path)
    config = FitConfig(**{**saved["config"], **config_changes})
    optimizer = make_optimizer(net, config)
    optimizer.load_state_dict(opt_state)
    pre = Preprocessor.from_dict(saved["preprocess"])
    return Trainer(net, config, pre, callbacks=callbacks, optimizer=optimizer, state=TrainerState(**saved["state"]))


def assert_same_weights(a: Net, b: Net) -> None:
    """Every parameter and buffer bitwise equal."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert np.array_equal(sa[key], sb[key]), f"{key} differs"


def fashion_data_dir(root, n_train: int, n_test: int):
    """A --data-dir under ``root`` whose fashion-mnist/ holds the first images of the bundled sample, as IDX
    files; returns the data dir."""
    folder = root / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        sample = load_dataset("fashion-mnist-sample", split)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", sample.images[:n, 0])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", sample.labels[:n].astype(np.uint8))
    return root / "data"
