"""Dataset: the images (or 1D signals), labels and class names every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(repr=False)
class Dataset:
    """One split of a classification dataset of images or 1D signals, held in memory.

    images: images (N, C, H, W) uint8, values 0-255 (C = 1 grey, 3 RGB), or signals (N, C, L) float32
    (MNIST-1D: (N, 1, 40), standardised by its generator); the net's input layer shape is ``shape``.
    labels: (N,) int64, each in ``range(len(classes))``.
    classes: class names; ``classes[k]`` is the name of label ``k``.
    name, split: e.g. ``"cifar10"``, ``"test"``; source: the file or folder it was read from.
    """

    name: str
    split: str
    images: np.ndarray  # (N, C, H, W) uint8 or (N, C, L) float32
    labels: np.ndarray  # (N,) int64
    classes: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image or (C, L) of one signal: what an ``input`` layer spec needs."""
        return tuple(self.images.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, split={self.split!r}, images={self.images.dtype}{list(self.images.shape)}, "
                f"classes={len(self.classes)}, source={self.source!r})")
