"""Data augmentation and normalisation, vectorised over the batch; randomness from an explicit Generator.

ConvNetJS's CIFAR-10 demo augments with random horizontal flips and random shifts of up to 2 pixels (the image
moved inside a zero border); ``random_flip`` and ``random_shift(x, 2, rng)`` do the same to a whole batch.
``random_shift`` and ``Normalizer`` also take 1D signals (N, C, L).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError


def _check_batch(x: np.ndarray, what: str) -> None:
    if x.ndim != 4:
        raise ShapeError(f"{what}: expected a batch of images (N, C, H, W), got shape {x.shape}")


def _check_channels_first(x: np.ndarray, what: str) -> None:
    if x.ndim < 3:
        raise ShapeError(f"{what}: expected a batch (N, C, ...): images (N, C, H, W) or signals (N, C, L), "
                         f"got shape {x.shape}")


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """(C,) -> (C, 1, ...) broadcasting against one (C, ...) example of ``ndim - 1`` axes."""
    return v.reshape(-1, *[1] * (ndim - 2))


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
    """Move each image by a random whole number of pixels in [-max_shift, max_shift] in y and in x, or each
    signal by a random whole number of positions along L.

    x: images (N, C, H, W) or signals (N, C, L) -> same shape and dtype; values moved in from outside are 0.
    """
    if x.ndim not in (3, 4):
        raise ShapeError(f"random_shift: expected a batch of images (N, C, H, W) or signals (N, C, L), got shape "
                         f"{x.shape}")
    if x.ndim == 3:
        if max_shift < 0:
            raise ShapeError(f"random_shift: max_shift must be >= 0, got {max_shift}")
        n, _, length = x.shape
        padded = np.pad(x, ((0, 0), (0, 0), (max_shift, max_shift)))  # (N, C, L + 2s), zeros
        start = rng.integers(0, 2 * max_shift + 1, size=n)  # (N,)
        windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=2)  # (N, C, 2s + 1, L)
        return windows[np.arange(n), :, start]  # (N, C, L), a copy
    return random_crop(x, x.shape[2:], rng, padding=max_shift)


@dataclass
class Normalizer:
    """Per-channel standardisation ``(x - mean) / std``, with statistics fitted on training images or signals.

    mean, std: (C,) float32. ``Normalizer.fit(train.images)`` then ``norm(images)`` -> float32 (N, C, H, W);
    the same for signals (N, C, L), or any (N, C, ...).
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
        """Mean and std of every channel of images (N, C, H, W) (or signals (N, C, L)), in float64 chunks of
        ``chunk`` examples.

        A constant channel gets std 1, so normalising it gives zeros rather than NaN.
        """
        _check_channels_first(images, "Normalizer.fit")
        n = len(images)
        if n == 0:
            raise ShapeError("Normalizer.fit: no images")
        axes = (0, *range(2, images.ndim))  # all but the channel axis
        count = n * int(np.prod(images.shape[2:]))
        total = sum(images[i:i + chunk].sum(axis=axes, dtype=np.float64) for i in range(0, n, chunk))
        mean = total / count  # (C,)
        # Two passes (mean, then squared deviations) stay accurate where E[x^2] - E[x]^2 would cancel.
        centre = _per_channel(mean, images.ndim)
        sq = sum(((images[i:i + chunk] - centre) ** 2).sum(axis=axes) for i in range(0, n, chunk))
        std = np.sqrt(sq / count)
        return cls(mean, np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) or (N, C, L), any real dtype -> float32, same shape."""
        _check_channels_first(x, "Normalizer")
        if x.shape[1] != len(self.mean):
            raise ShapeError(f"Normalizer: fitted on {len(self.mean)} channels, got a batch with {x.shape[1]}")
        out = x.astype(np.float32)  # float32 statistics keep it float32
        out -= _per_channel(self.mean, x.ndim)
        out /= _per_channel(self.std, x.ndim)
        return out

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """Undo ``__call__``: float32 (N, C, H, W) or (N, C, L) back in input units (e.g. to show images)."""
        _check_channels_first(x, "Normalizer.inverse")
        return np.asarray(x, np.float32) * _per_channel(self.std, x.ndim) + _per_channel(self.mean, x.ndim)

    def to_dict(self) -> dict:
        """JSON-ready ``{"mean": [...], "std": [...]}``, e.g. for a checkpoint; ``Normalizer(**d)`` restores it."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}
