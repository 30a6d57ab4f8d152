"""Split the copies and elementwise work of a kernel over the batch, one slice per thread.

BLAS already runs matrix products on every core, but NumPy's copies and ufuncs (im2col, col2im, pooling,
ReLU) run on one. They release the GIL in their inner loops, so plain Python threads working on disjoint
batch slices use the other cores too. ``set_num_threads(1)`` turns this off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_num_threads = os.cpu_count() or 1
_pool: ThreadPoolExecutor | None = None
MIN_PER_THREAD = 4096  # elements per slice below which a thread costs more than it saves


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for convnetpy's own (non-BLAS) kernels; BLAS has its own setting (threadpoolctl)."""
    global _num_threads, _pool
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    _num_threads = int(n)
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def get_num_threads() -> int:
    return _num_threads


def over_batch(fn: Callable[[slice], object], n: int, work: int) -> None:
    """Call ``fn(batch_slice)`` for contiguous slices covering range(n), in parallel when it pays.

    ``work`` is the number of elements the whole call touches (used to skip threading for small work).
    """
    global _pool
    parts = min(_num_threads, n, max(1, work // MIN_PER_THREAD))
    if parts <= 1:
        fn(slice(0, n))
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads, thread_name_prefix="convnetpy")
    bounds = [n * i // parts for i in range(parts + 1)]
    futures = [_pool.submit(fn, slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    for f in futures:
        f.result()  # re-raises a worker's exception here
