"""Mini-batches as index arrays: shuffled from an explicit Generator, so a seed reproduces them."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[np.ndarray]:
    """Yield index arrays (int64, (batch_size,); the last may be shorter) covering ``range(n)`` once.

    ``rng`` shuffles the order (one ``rng.permutation(n)`` per call, so one epoch); None keeps 0..n-1 in order,
    as for evaluation. ``drop_last`` skips a last, short batch. Use as ``x[idx], y[idx]``.
    """
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    if n < 0:
        raise ValueError(f"batches: n must be >= 0, got {n}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"batches: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    return (order[i:i + batch_size] for i in range(0, stop, batch_size))
