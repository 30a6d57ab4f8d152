"""convnetpy's threads: a kernel's work split over the batch, or whole shards of a batch run side by side.

NumPy's copies and ufuncs (im2col, col2im, pooling, ReLU) run on one core. They release the GIL, so plain
Python threads working on disjoint batch slices use every core (``over_batch``). Nets cut large batches into
shards and run each shard's whole pass on one thread (``run_tasks``, see ``convnetpy.shards``), which
meets far less often. BLAS runs single-threaded inside both: its results can depend on its own thread
count, and convnetpy's results do not depend on ``set_num_threads``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, as in containers)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_num_threads = available_cpus()
_pool: ThreadPoolExecutor | None = None
_blas: list | None = None  # the BLAS libraries' controllers, found on first use (scanning takes ~10 ms)
_blas_single = False  # inside single_threaded_blas
_local = threading.local()  # inside_task: this thread runs one of run_tasks' tasks
MIN_PER_THREAD = 4096  # elements per slice below which a thread costs more than it saves


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for convnetpy's kernels and shards (BLAS runs single-threaded inside them)."""
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

    For copies and elementwise work, whose results do not depend on how the batch is cut. ``work`` is the
    number of elements the whole call touches (used to skip threading for small work).
    """
    parts = 1 if _inside_task() else min(_num_threads, n, max(1, work // MIN_PER_THREAD))
    bounds = [n * i // parts for i in range(parts + 1)]
    _run([lambda a=a, b=b: fn(slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])])


def over_chunks(fn: Callable[[slice], object], n: int, chunk: int) -> None:
    """Call ``fn(chunk_slice)`` once per chunk of ``chunk`` items of range(n), the chunks spread over the threads.

    For work that calls BLAS: a matmul's round-off can depend on its shape and on BLAS's own thread count,
    so the chunks are cut the same whatever the threads, and BLAS runs single-threaded in every chunk.
    """
    starts = range(0, n, chunk)
    parts = 1 if _inside_task() else min(_num_threads, len(starts))
    bounds = [len(starts) * i // parts for i in range(parts + 1)]

    def run(first: int, last: int) -> None:
        for a in starts[first:last]:
            fn(slice(a, min(a + chunk, n)))

    with single_threaded_blas():  # nothing to do inside a task: BLAS is single-threaded there already
        _run([lambda a=a, b=b: run(a, b) for a, b in zip(bounds[:-1], bounds[1:])])


def run_tasks(tasks: list[Callable[[], object]]) -> None:
    """Run independent tasks (a shard's pass each), spread over the threads in contiguous groups.

    Inside a task, kernels run on its thread alone (``over_batch`` does not split again) and BLAS is
    single-threaded. With fewer tasks than threads the tasks run one after another instead, each with its
    kernels threaded, so that no core idles.
    """
    if len(tasks) < max(_num_threads, 2) or _inside_task():
        for task in tasks:
            task()
        return
    def run_group(group: range) -> None:
        with on_this_thread():
            for i in group:
                tasks[i]()

    with single_threaded_blas():
        _run([lambda g=g: run_group(g) for g in task_groups(len(tasks), _num_threads)])


def task_groups(n: int, groups: int) -> list[range]:
    """range(n) cut into ``groups`` contiguous groups, as even as they go."""
    bounds = [n * i // groups for i in range(groups + 1)]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@contextmanager
def on_this_thread():
    """A context in which kernels run on the calling thread alone, as inside one of ``run_tasks``' tasks."""
    before = _inside_task()
    _local.inside_task = True
    try:
        yield
    finally:
        _local.inside_task = before


def _inside_task() -> bool:
    return getattr(_local, "inside_task", False)


def _run(calls: list[Callable[[], object]]) -> None:
    """Run the calls: the first on this thread, the others on the pool; a worker's exception is re-raised here.

    The calling thread works instead of sleeping until the pool is done: one thread wake-up fewer per call,
    which costs tens of microseconds on a virtual machine.
    """
    global _pool
    if len(calls) == 1:
        calls[0]()
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_num_threads, thread_name_prefix="convnetpy")
    futures = [_pool.submit(call) for call in calls[1:]]
    try:
        calls[0]()
    finally:
        wait(futures)  # all of them, so that none still runs BLAS once its setting is restored
    for f in futures:
        f.result()


@contextmanager
def single_threaded_blas():
    """A context in which BLAS runs on the calling thread only (restored on exit); nested entries are free.

    Costs a few microseconds: the BLAS libraries are found once (threadpoolctl), then only their
    get/set-threads functions are called.
    """
    global _blas, _blas_single
    if _blas_single or _inside_task():
        yield
        return
    if _blas is None:
        _blas = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    before = [lib.num_threads for lib in _blas]
    for lib, n in zip(_blas, before):
        if n != 1:
            lib.set_num_threads(1)
    _blas_single = True
    try:
        yield
    finally:
        _blas_single = False
        for lib, n in zip(_blas, before):
            if n != 1:
                lib.set_num_threads(n)
