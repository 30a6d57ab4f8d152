"""Data augmentation and normalisation, vectorised over the batch; randomness from an explicit Generator.

ConvNetJS's CIFAR-10 demo augments with random horizontal flips and random shifts of up to 2 pixels (the image
moved inside a zero border); ``random_flip`` and ``random_shift(x, 2, rng)`` do the same to a whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError


def _check_batch(x: np.ndarray, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what}: expected a batch of images (N, C, H, W), got shape {x.shape}")


def random_flip(x: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p``; x (N, C, H, W) -> new array, same shape and dtype."""
    _check_batch(x, "random_flip")
    flip = rng.random(len(x)) < p  # (N,)
    out = x.copy()
    out[flip] = x[flip, :, :, ::-1]
    return out


def random_crop(x: np.ndarray, size: int | tuple[int, int], rng: np.random.Generator, padding: int = 0) -> np.ndarray:
    """A random (H', W') window of each image after zero-padding it by ``padding`` pixels on every side.

    x: (N, C, H, W) -> (N, C, H', W'), same dtype; each image gets its own uniformly drawn window.
    """
    _check_batch(x, "random_crop")
    ch, cw = (size, size) if isinstance(size, int) else tuple(size)
    n, _, h, w = x.shape
    if padding < 0 or not (0 < ch <= h + 2 * padding and 0 < cw <= w + 2 * padding):
        raise ShapeError(f"random_crop: a {ch}x{cw} window does not fit {h}x{w} images padded by {padding}")
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # (N, C, H+2p, W+2p), zeros
    top = rng.integers(0, h + 2 * padding - ch + 1, size=n)  # (N,)
    left = rng.integers(0, w + 2 * padding - cw + 1, size=n)  # (N,)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (ch, cw), axis=(2, 3))  # (N, C, oy, ox, H', W')
    # The indices on axes 0, 2, 3 are split by the slice on axis 1, so NumPy puts their broadcast axis (N) first.
    return windows[np.arange(n), :, top, left]  # (N, C, H', W'), a copy


def random_shift(x: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Move each image by a random whole number of pixels in [-max_shift, max_shift] in y and in x.

    x: (N, C, H, W) -> same shape and dtype; pixels moved in from outside are 0.
    """
    _check_batch(x, "random_shift")
    return random_crop(x, x.shape[2:], rng, padding=max_shift)


@dataclass
class Normalizer:
    """Per-channel standardisation ``(x - mean) / std``, with statistics fitted on training images.

    mean, std: (C,) float32. ``Normalizer.fit(train.images)`` then ``norm(images)`` -> float32 (N, C, H, W).
    """

    mean: np.ndarray  # (C,) float32
    std: np.ndarray  # (C,) float32

    def __post_init__(self):
        self.mean = np.asarray(self.mean, np.float32).reshape(-1)
        self.std = np.asarray(self.std, np.float32).reshape(-1)
        if self.mean.shape != self.std.shape or not np.all(self.std > 0):
            raise ValueError(f"Normalizer: mean and std must be (C,) with std > 0, got {self.mean} and {self.std}")

    @classmethod
    def fit(cls, images: np.ndarray, chunk: int = 1024) -> Normalizer:
        """Mean and std of every channel of images (N, C, H, W), in float64 chunks of ``chunk`` images.

        A constant channel gets std 1, so normalising it gives zeros rather than NaN.
        """
        _check_batch(images, "Normalizer.fit")
        n, c, h, w = images.shape
        if n == 0:
            raise ShapeError("Normalizer.fit: no images")
        count = n * h * w
        total = sum(images[i:i + chunk].sum(axis=(0, 2, 3), dtype=np.float64) for i in range(0, n, chunk))
        mean = total / count  # (C,)
        # Two passes (mean, then squared deviations) stay accurate where E[x^2] - E[x]^2 would cancel.
        sq = sum(((images[i:i + chunk] - mean[:, None, None]) ** 2).sum(axis=(0, 2, 3)) for i in range(0, n, chunk))
        std = np.sqrt(sq / count)
        return cls(mean, np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W), any real dtype -> float32 (N, C, H, W)."""
        _check_batch(x, "Normalizer")
        if x.shape[1] != len(self.mean):
            raise ShapeError(f"Normalizer: fitted on {len(self.mean)} channels, got images with {x.shape[1]}")
        out = x.astype(np.float32)  # float32 statistics keep it float32
        out -= self.mean[:, None, None]
        out /= self.std[:, None, None]
        return out

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Undo ``__call__``: float32 (N, C, H, W) back in pixel units (e.g. to show images)."""
        _check_batch(x, "Normalizer.inverse")
        return np.asarray(x, np.float32) * self.std[:, None, None] + self.mean[:, None, None]

    def to_dict(self) -> dict:
        """JSON-ready ``{"mean": [...], "std": [...]}``, e.g. for a checkpoint; ``Normalizer(**d)`` restores it."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
