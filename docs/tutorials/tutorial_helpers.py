"""What the tutorial notebooks share: where the datasets are, and where the figures go.

- Datasets are read at run time, never copied into the repository. The folder is ``$CONVNETPY_DATA_DIR`` if set,
  else the first ``shared/data`` found walking up from this folder (a checkout at ``X/main`` finds ``X/shared/data``).
  When MNIST or CIFAR-10 cannot be found there, the notebooks fall back to the Fashion-MNIST sample bundled with
  convnetpy and say so; their assertions hold for either.
- Figures are written to ``$CONVNETPY_FIGURES`` if set, else to ``docs/tutorials/figures/`` (git-ignored: figures
  of MNIST or CIFAR-10 images must never be committed).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from convnetpy.data import Dataset, DatasetNotFoundError, load_dataset

HERE = Path(__file__).resolve().parent
FALLBACK = "fashion-mnist-sample"


def data_dir() -> Path | None:
    """The folder holding ``mnist/``, ``cifar10/`` and ``fashion-mnist/``, or None when there is none."""
    if os.environ.get("CONVNETPY_DATA_DIR"):
        return Path(os.environ["CONVNETPY_DATA_DIR"]).expanduser()
    for folder in (HERE, *HERE.parents):
        if (folder / "shared" / "data").is_dir():
            return folder / "shared" / "data"
    return None


def load(name: str, split: str = "train") -> Dataset:
    """One split of a dataset (no download); the bundled Fashion-MNIST sample, with a note, when it is absent.

    For ``cifar10`` the fallback images are padded to 32x32 and repeated over 3 channels, so nets built for
    CIFAR-10 still take them (``dataset.name`` tells which data you got).
    """
    try:
        return load_dataset(name, split, data_dir=data_dir(), download=False)
    except DatasetNotFoundError:
        print(f"NOTE: {name} ({split}) not found (data folder: {data_dir()}); using the Fashion-MNIST sample "
              f"bundled with convnetpy instead. Set CONVNETPY_DATA_DIR to the folder holding {name}/.")
    data = load_dataset(FALLBACK, split)
    if name == "cifar10":  # (N, 1, 28, 28) -> (N, 3, 32, 32): a grey stand-in with CIFAR-10's shape
        data.images = np.repeat(np.pad(data.images, ((0, 0), (0, 0), (2, 2), (2, 2))), 3, axis=1)
    return data


def figure_dir() -> Path:
    folder = Path(os.environ.get("CONVNETPY_FIGURES") or HERE / "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(fig, name: str) -> Path:
    """Write a matplotlib figure to the figure folder as ``name`` (a .png file name) and return its path."""
    path = figure_dir() / name
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"saved {path}")
    return path
