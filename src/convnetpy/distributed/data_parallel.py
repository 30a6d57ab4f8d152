"""Data-parallel training and evaluation over an MPI world: the Trainer's ``parallel`` hook.

With K ranks and a global batch of B examples, step by step:

1. every rank draws the same batch indices (from (seed, epoch), as one process does) and takes its rows
   [B r / K, B (r + 1) / K); it augments them with the step's generator drawing for the whole batch
   (``ShardedGenerator``), so each row gets exactly the crop and flip one process would give it;
2. forward and backward run on those rows; the loss is a mean over the batch, so this rank's dscores (the
   gradient of its own rows' mean) are scaled by its share n_r / B;
3. the gradients are summed over ranks with ``Allreduce`` on a few contiguous buffers (``GradientBuckets``):
   the sum of the shares is the gradient of the whole batch's mean, on every rank;
4. every rank applies the same optimizer step to the same weights, so they stay equal without being sent.

Dropout and BatchNorm get twins that look at the whole batch (``convnetpy.distributed.layers``). A rank whose
share is empty (a last batch smaller than K) runs one stand-in row with weight 0, so every rank makes the same
collective calls. At each step boundary the ranks agree on the time taken (the slowest rank's), on Ctrl-C and
on stop requests, so they always stop together. The result equals one process's run up to floating-point
summation order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
import zlib

import numpy as np

from . import layers as twins
from .world import World


class GradientBuckets:
    """The gradients of ``params`` packed into contiguous buffers of about ``bucket_bytes`` each (a gradient
    is never split), summed over ranks with one ``Allreduce`` per buffer, and unpacked in place.

    One message per bucket rather than one per tensor: each message costs a latency (microseconds on one
    machine, tens of microseconds over Ethernet), a few large ones approach the link's bandwidth.
    """

    def __init__(self, params, bucket_bytes: int = 4 << 20) -> None:
        self.params = list(params)
        self.buckets: list[list] = [[]]
        size = 0
        for p in self.params:
            nbytes = p.value.nbytes
            if self.buckets[-1] and size + nbytes > bucket_bytes:
                self.buckets.append([])
                size = 0
            self.buckets[-1].append(p)
            size += nbytes
        self.buffers = [np.empty(sum(p.value.size for p in bucket), dtype=np.result_type(*[p.value for p in bucket]))
                        for bucket in self.buckets]

    @property
    def numel(self) -> int:
        return sum(b.size for b in self.buffers)

    def allreduce(self, world: World) -> None:
        """Replace every gradient by its sum over all ranks."""
        for bucket, buffer in zip(self.buckets, self.buffers):
            offset = 0
            for p in bucket:
                buffer[offset:offset + p.grad.size] = p.grad.ravel()
                offset += p.grad.size
            world.allreduce(buffer)
            offset = 0
            for p in bucket:
                p.grad[...] = buffer[offset:offset + p.grad.size].reshape(p.grad.shape)
                offset += p.grad.size


def _live_arrays(net, optimizer) -> list[np.ndarray]:
    """Every parameter, buffer and optimizer state array, in a fixed order (the arrays themselves)."""
    arrays = [a for layer in net.layers for store in (layer.params, layer.buffers) for a in store.values()]
    arrays += [state[k] for state in optimizer.state for k in sorted(state)]
    return arrays


def _digest(arrays: list[np.ndarray]) -> int:
    """A CRC-32 of the arrays' bytes: equal on every rank when their weights are."""
    crc = 0
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a).view(np.uint8), crc)
    return crc


class ShardedGenerator:
    """Stands in for a batch's Generator while only rows [lo, hi) of the batch of ``batch`` are augmented.

    Each draw whose first axis is the rows' number is made for the whole batch (first axis ``batch``) and rows
    [lo, hi) are kept, so they get exactly the crops, shifts and flips one process would give them and the
    generator advances as one process's does; other draws pass through. Every rank thus augments only its own
    rows (one process's preprocessing costs ~3% of a CIFAR-10 training step: repeated on K ranks, the whole
    batch would cost K times that).
    """

    def __init__(self, rng: np.random.Generator, batch: int, lo: int, hi: int) -> None:
        self.rng, self.batch, self.lo, self.hi = rng, batch, lo, hi

    def _whole(self, size):
        """(size for the whole batch, whether it was expanded)."""
        shape = (size,) if isinstance(size, (int, np.integer)) else size
        if shape is None or len(shape) == 0 or shape[0] != self.hi - self.lo:
            return size, False
        return (self.batch, *shape[1:]), True

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        size, whole = self._whole(size)
        values = self.rng.integers(low, high, size=size, dtype=dtype, endpoint=endpoint)
        return values[self.lo:self.hi] if whole else values

    def random(self, size=None, dtype=np.float64):
        size, whole = self._whole(size)
        values = self.rng.random(size, dtype=dtype)
        return values[self.lo:self.hi] if whole else values

    def __getattr__(self, name):
        raise AttributeError(f"ShardedGenerator: data-parallel augmentation draws with integers() and random() "
                             f"only; {name}() would give this rank's rows other values than one process's")


@dataclasses.dataclass
class _Shard:
    """This step's rows: [lo, hi) of a global batch of ``batch``; ``real`` of them count (0: a stand-in row)."""

    world: World
    batch: int = 0
    lo: int = 0
    hi: int = 0
    real: int = 0


class DataParallel:
    """Train one net on K MPI ranks: ``Trainer(net, config, pre, parallel=DataParallel(world))`` on every rank.

    The Trainer calls ``attach`` around ``fit``, and per step ``shard``, ``combine_loss``, ``allreduce_grads`` and
    ``agree``; ``evaluate`` shards an evaluation. ``world.comm_seconds`` adds up the time spent communicating.
    """

    def __init__(self, world: World, bucket_bytes: int = 4 << 20) -> None:
        self.world = world
        self.bucket_bytes = bucket_bytes
        self.current = _Shard(world)
        self.buckets: GradientBuckets | None = None
        self._arrays: list[np.ndarray] = []

    # -- around fit -------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def attach(self, trainer, labels: np.ndarray):
        """Check every rank trains alike, take rank 0's weights, optimizer and position, and install the twins."""
        self._check_same_run(trainer, labels)
        self.buckets = GradientBuckets(trainer.optimizer.params, self.bucket_bytes)
        self._arrays = _live_arrays(trainer.net, trainer.optimizer)
        self._broadcast_state(trainer)
        swapped = twins.install(trainer.net, self.current)
        try:
            yield self
        finally:
            twins.uninstall(swapped)

    def _check_same_run(self, trainer, labels: np.ndarray) -> None:
        mine = {"config": dataclasses.asdict(trainer.config), "examples": len(labels),
                "labels": zlib.crc32(np.ascontiguousarray(labels, np.int64).view(np.uint8)),
                "net": trainer.net.specs(), "dtype": str(trainer.net.dtype)}
        root = self.world.broadcast_object(mine)
        differ = [k for k in mine if mine[k] != root[k]]
        if differ:
            what = {"examples": f"{mine['examples']} training examples where rank 0 has {root['examples']}",
                    "labels": "other labels than rank 0"}
            details = "; ".join(what.get(k, f"another {k} than rank 0") for k in differ)
            raise ValueError(f"{self.world.where} has {details}: every rank must run the same command on the "
                             "same data")

    def _broadcast_state(self, trainer) -> None:
        """Weights, buffers and optimizer state (one Bcast per dtype), then position and generators (pickled)."""
        for dtype in sorted({a.dtype.str for a in self._arrays}):
            group = [a for a in self._arrays if a.dtype.str == dtype]
            flat = np.concatenate([a.ravel() for a in group])
            self.world.broadcast(flat)
            offset = 0
            for a in group:
                a[...] = flat[offset:offset + a.size].reshape(a.shape)
                offset += a.size
        rngs = [layer.rng.bit_generator.state if hasattr(layer, "rng") else None for layer in trainer.net.layers]
        small = self.world.broadcast_object({"steps": trainer.optimizer.steps, "state": trainer.state,
                                             "lr": trainer.optimizer.lr, "rngs": rngs})
        trainer.optimizer.steps, trainer.optimizer.lr = small["steps"], small["lr"]
        for f in dataclasses.fields(trainer.state):  # in place: fit holds this object
            setattr(trainer.state, f.name, getattr(small["state"], f.name))
        for layer, state in zip(trainer.net.layers, small["rngs"]):
            if state is not None:
                layer.rng.bit_generator.state = state

    # -- each step ------------------------------------------------------------------------------------------------
    def shard(self, idx: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, object]:
        """This rank's part of a batch: (its example indices (n,) of the batch's ``idx`` (B,), the generator to
        augment them with: ``rng`` drawing for the whole batch and keeping these rows, or None)."""
        s = self.current
        rows = self.world.shard(len(idx))
        s.batch, s.lo, s.hi = len(idx), rows.start, rows.stop
        s.real = s.hi - s.lo
        if s.real == 0:  # fewer rows than ranks: one stand-in row of weight 0 keeps the collectives in step
            s.lo, s.hi = 0, 1
        return idx[s.lo:s.hi], (None if rng is None else ShardedGenerator(rng, s.batch, s.lo, s.hi))

    def combine_loss(self, loss: float, dscores: np.ndarray, hits: int) -> tuple[float, int]:
        """Scale ``dscores`` (this shard's mean-loss gradient) in place by the shard's share of the batch, and
        return the whole batch's mean loss and number of correct predictions."""
        s = self.current
        share = s.real / s.batch
        dscores *= share
        totals = np.array([loss * share if s.real else 0.0, hits if s.real else 0], dtype=np.float64)
        self.world.allreduce(totals)
        return float(totals[0]), int(round(totals[1]))

    def allreduce_grads(self) -> None:
        """Sum every gradient over ranks: the gradient of the whole batch's mean loss."""
        self.buckets.allreduce(self.world)

    def agree(self, trainer, interrupt: bool, stop: bool, check_weights: bool = False) -> tuple[bool, bool]:
        """(interrupt, stop): true on every rank when true on any (a Ctrl-C, a stop request), and the slowest
        rank's ``trainer.state.elapsed`` on every rank, so all make the same decisions at a step boundary.

        With ``check_weights`` (at epoch boundaries) it also compares the ranks' weights; should they ever
        differ (an MPI whose Allreduce rounds differently on different ranks) rank 0's are broadcast again.
        """
        digest = float(_digest(self._arrays)) if check_weights else 0.0
        flags = np.array([trainer.state.elapsed, interrupt, stop, digest, -digest])
        self.world.allreduce(flags, op="max")
        trainer.state.elapsed = float(flags[0])
        if check_weights and flags[3] != -flags[4]:
            if self.world.rank == 0:
                warnings.warn("the ranks' weights drifted apart; rank 0's were broadcast again", stacklevel=2)
            self._broadcast_state(trainer)
        return bool(flags[1]), bool(flags[2])

    # -- evaluation ------------------------------------------------------------------------------------------------
    def evaluate(self, net, pre, images, labels, batch_size: int = 500, tta: bool = False) -> dict:
        return evaluate(self.world, net, pre, images, labels, batch_size, tta)


def evaluate(world: World, net, pre, images: np.ndarray, labels: np.ndarray, batch_size: int = 500,
             tta: bool = False) -> dict:
    """``convnetpy.train.evaluate`` with each rank taking its contiguous share of the images; the counts and the
    loss sums are added over ranks (one Allreduce), so every rank gets the whole set's result."""
    from ..train import evaluate as evaluate_here

    labels = np.asarray(labels, dtype=np.int64)
    rows = world.shard(len(labels))
    mine = evaluate_here(net, pre, images[rows], labels[rows], batch_size, tta)
    k, n_mine = net.output_shape[0], mine["n"]
    totals = np.concatenate([[mine["loss"] * n_mine if n_mine else 0.0],
                             np.asarray(mine["confusion"], np.float64).ravel()])  # exact counts up to 2**53
    world.allreduce(totals)
    confusion = np.rint(totals[1:]).astype(np.int64).reshape(k, k)
    n = int(confusion.sum())
    return {"accuracy": float(np.trace(confusion) / n) if n else float("nan"),
            "loss": float(totals[0] / n) if n else float("nan"), "n": n, "confusion": confusion.tolist()}
