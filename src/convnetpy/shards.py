"""Data parallelism over threads inside one process: the batch cut into shards, one replica of the net each.

Threading each kernel (``functional.parallel.over_batch``) splits every copy and matmul of a pass and then
waits: dozens of hand-offs per step, and matmuls cut small. On the CIFAR-10 net at batch 64 that left two
threads no faster than one. Cutting the batch instead lets each thread run whole forward and backward passes
on its shard, as MPI ranks do, with single-threaded BLAS, and the threads meet once per pass.

A replica is a shallow copy of each layer: it shares the layer's parameters (so optimizer updates reach it)
and has its own gradients, cache and scratch buffers, kept between steps. How a batch is cut depends on the
machine (``SHARDS``), not on the number of threads, and the shards' gradients are summed in shard order, so
a net computes bitwise the same on any number of threads. Nets with a layer whose training pass couples the
examples of a batch (BatchNorm) or draws random numbers (Dropout) keep the batch whole: see
``Layer.shardable``.

Threads still share the interpreter's lock between kernels, which costs small nets most: a training step
(``ShardedPass.train``) and an inference pass hand shards to helper processes instead where they can
(``convnetpy.processes``).
"""

from __future__ import annotations

import numpy as np

from .functional.parallel import available_cpus, on_this_thread, run_tasks, task_groups
from .layers import Layer

# A batch is cut into one shard per CPU of the machine, of at least MIN_SHARD_IMAGES images each. The count
# depends on the machine, never on set_num_threads, so results do not either. Fewer, larger shards run faster:
# on the CIFAR-10 net at batch 64, two threads ran 2 shards of 32 about 10% faster than 4 of 16; one thread
# runs the shards one after the other, 0-10% slower than the whole batch (measured on this 2-CPU machine).
SHARDS = available_cpus()
MIN_SHARD_IMAGES = 16


def shard_slices(n: int, layers: list[Layer]) -> list[slice] | None:
    """The shards of a batch of ``n`` examples, or None when it stays whole (small, or a layer forbids it)."""
    count = min(SHARDS, n // MIN_SHARD_IMAGES)
    if count < 2 or not all(layer.shardable for layer in layers):
        return None
    bounds = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def forward_through(layers: list[Layer], order: list[int], x: np.ndarray, training: bool) -> np.ndarray:
    """x through ``layers`` in ``order`` (Net's execution order): a whole batch's pass, or one shard's."""
    for i in order:
        x = layers[i].forward(x, training)
    return x


def backward_through(layers: list[Layer], order: list[int], d: np.ndarray, input_grad: bool) -> np.ndarray | None:
    """d back through ``layers`` in reverse ``order``, filling their grads; the first layer computes an input
    gradient only when ``input_grad`` is True."""
    for step, i in enumerate(reversed(order)):
        d = layers[i].backward(d, input_grad=input_grad or step < len(order) - 1)
    return d


def train_shard(layers: list[Layer], order: list[int], x: np.ndarray, targets: np.ndarray, share: float,
                loss_fn) -> tuple[float, np.ndarray]:
    """One shard's forward pass, loss and backward pass; its loss and gradients are scaled by ``share``, its
    part of the batch. Returns the scaled loss and the shard's scores."""
    scores = forward_through(layers, order, x, training=True)
    loss, dscores = loss_fn(scores, targets)
    dscores *= share
    backward_through(layers, order, dscores, input_grad=False)
    return loss * share, scores


def bare_copy(layer: Layer, grads: dict | None = None, workspace: dict | None = None) -> Layer:
    """A shallow copy of ``layer`` sharing its parameters, with no cache and its own scratch buffers
    (``workspace``, new by default) and, where given, its own ``grads``. As copy.copy makes it, but 4x faster
    (one per layer and shard, every step)."""
    copy = object.__new__(type(layer))
    copy.__dict__.update(layer.__dict__)
    copy._cache = None
    if grads is not None:
        copy.grads = grads
    if hasattr(layer, "_workspace"):
        copy._workspace = {} if workspace is None else workspace
    return copy


class Replicas:
    """Per-shard copies of a net's layers; their gradients and scratch buffers live here between steps."""

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], dict] = {}  # (shard, layer index) -> {"grads": ..., "workspace": ...}

    def make(self, layers: list[Layer], shards: int) -> list[list[Layer]]:
        """replicas[s][i]: layer i for shard s, sharing the layer's current parameters."""
        return [[self._replica(layer, s, i) for i, layer in enumerate(layers)] for s in range(shards)]

    def _replica(self, layer: Layer, s: int, i: int) -> Layer:
        kept = self._kept.setdefault((s, i), {"grads": {}, "workspace": {}})
        grads = kept["grads"]
        for key, value in layer.params.items():
            if key not in grads or grads[key].shape != value.shape or grads[key].dtype != value.dtype:
                grads[key] = np.zeros_like(value)
        return bare_copy(layer, grads, kept["workspace"])


class ShardedPass:
    """One forward pass over shards, kept for its backward pass."""

    def __init__(self, replicas: list[list[Layer]], shards: list[slice], order: list[int]) -> None:
        self.replicas, self.shards, self.order = replicas, shards, order

    def forward(self, x: np.ndarray, training: bool, helpers: list | None = None,
                layers: list[Layer] | None = None) -> np.ndarray:
        """x (N, ...) -> scores (N, ...), each shard through its replica, on the threads; an inference pass
        may hand shards to ``helpers`` (see ``train``; ``layers``: the net's own)."""
        outs: list = [None] * len(self.shards)

        def run(s: int) -> None:
            outs[s] = forward_through(self.replicas[s], self.order, x[self.shards[s]], training)

        def take(s: int, results: tuple, k: int) -> None:
            outs[s] = results[2][k]

        if helpers and not training:
            self._on_helpers(helpers, run, lambda helper, group: helper.submit(
                layers, self.order, None, x, None, [self.shards[s] for s in group]), take)
        else:
            run_tasks([lambda s=s: run(s) for s in range(len(self.shards))])
        return np.concatenate(outs)

    def _on_helpers(self, helpers: list, run, submit, take) -> None:
        """The shards in groups: the first on this thread (``run(s)``), one group per helper (``submit(helper,
        group)``, then ``take(s, results, k)`` for its k-th shard s). A helper that stopped leaves its shards
        to this thread."""
        groups = task_groups(len(self.shards), len(helpers) + 1)
        for helper, group in zip(helpers, groups[1:]):
            submit(helper, group)
        with on_this_thread():  # the other cores run the helpers
            for s in groups[0]:
                run(s)
        for helper, group in zip(helpers, groups[1:]):
            results = helper.result()  # None: the helper stopped
            for k, s in enumerate(group):
                if results is None:
                    run(s)
                else:
                    take(s, results, k)

    def backward(self, dscores: np.ndarray, layers: list[Layer], input_grad: bool) -> np.ndarray | None:
        """Backpropagate each shard's rows of dscores; ``layers`` get the shards' gradients summed in order."""
        dxs: list = [None] * len(self.shards)

        def run(s: int) -> None:
            dxs[s] = backward_through(self.replicas[s], self.order, dscores[self.shards[s]], input_grad)

        run_tasks([lambda s=s: run(s) for s in range(len(self.shards))])
        self._sum_grads(layers)
        return np.concatenate(dxs) if input_grad else None

    def train(self, x: np.ndarray, targets: np.ndarray, loss_fn, layers: list[Layer],
              helpers: list | None = None, head: str | None = None) -> tuple[float, np.ndarray]:
        """Each shard's forward pass, loss and backward pass as one task, so the threads meet once, not twice.

        ``loss_fn(scores, targets) -> (mean loss, its gradient)``. Each shard's loss and gradient are scaled by
        its share of the batch, so that they add up to the whole batch's mean and its gradient; ``layers`` get
        the shards' gradients summed in order. Returns the batch's loss and scores (N, ...).

        With ``helpers`` (``convnetpy.processes``, one per thread but this one; ``head`` names the loss they
        use), this thread runs the first group of shards and each helper process one of the others.
        """
        scores: list = [None] * len(self.shards)
        losses = [0.0] * len(self.shards)
        grads: list = [None] * len(self.shards)  # a helper's shards: their gradients, in layout order

        def run(s: int) -> None:
            rows = self.shards[s]
            losses[s], scores[s] = train_shard(self.replicas[s], self.order, x[rows], targets[rows],
                                               (rows.stop - rows.start) / len(x), loss_fn)

        def take(s: int, results: tuple, k: int) -> None:
            losses[s], grads[s], scores[s] = results[0][k], results[1][k], results[2][k]

        if helpers:
            self._on_helpers(helpers, run, lambda helper, group: helper.submit(
                layers, self.order, head, x, targets, [self.shards[s] for s in group]), take)
        else:
            run_tasks([lambda s=s: run(s) for s in range(len(self.shards))])
        self._sum_grads(layers, grads)
        return float(sum(losses)), np.concatenate(scores)

    def _sum_grads(self, layers: list[Layer], remote: list | None = None) -> None:
        """Each layer's gradients: the sum of its replicas', in shard order.

        ``remote[s]``, where given, holds shard s's gradients as a helper process computed them: one array
        per parameter, layer by layer.
        """
        sources = [[replica.grads for replica in shard] for shard in self.replicas]
        for s, flat in enumerate(remote or []):
            if flat is not None:
                arrays = iter(flat)
                sources[s] = [{key: next(arrays) for key in layer.params} for layer in layers]
        for i, layer in enumerate(layers):
            for key, grad in layer.grads.items():
                np.copyto(grad, sources[0][i][key])
                for shard in sources[1:]:
                    grad += shard[i][key]
