"""Data-parallel twins of the layers that look across the batch: Dropout and BatchNorm.

When K ranks each hold rows [lo, hi) of a global batch of B examples, two layers would see only their own
rows and so differ from one process training on the whole batch:

- Dropout draws its mask from the net's generator for the shape of its input. ``ShardedDropout`` draws the
  mask of the whole (B, ...) batch and keeps rows [lo, hi): every rank's generator advances exactly as one
  process's does, and each row gets the mask one process would give it.
- BatchNorm normalises with the batch's mean and variance. ``SyncBatchNorm1D/2D`` sum the per-channel sums
  over ranks (two passes: the mean, then the squared deviations), so every rank normalises with the statistics
  of the whole batch and updates the running ones alike; backward sums its two per-channel reductions too
  (as torch.nn.SyncBatchNorm does).

``install`` turns a net's layers into their twins in place (``layer.__class__``: the same objects, so the
optimizer's parameters, the checkpoint and the generators stay attached) and ``uninstall`` turns them back.
In evaluation mode a twin behaves exactly as the layer it came from.
"""

from __future__ import annotations

import numpy as np

from ..layers import BatchNorm1D, BatchNorm2D, Dropout
from ..layers.base import check_input


class ShardedDropout(Dropout):
    """Dropout whose mask is drawn for the whole global batch; this rank keeps its rows."""

    def forward(self, x, training=False):
        if not training:
            return super().forward(x, training)
        check_input(self, x, tuple(range(1, 8)), None, "(N, ...)")
        shard = self._shard
        full = self.rng.random((shard.batch, *x.shape[1:]), dtype=x.dtype)  # (B, ...): one process's draw
        keep = full[shard.lo:shard.hi] >= self.p  # (N, ...) this rank's rows
        scale = keep * x.dtype.type(1.0 / (1.0 - self.p))
        self._cache = scale
        return x * scale

    def backward(self, dy, input_grad=True):
        scale = self._take_cache()
        return dy * scale if input_grad else None


class _SyncBatchNorm:
    """Batch statistics summed over ranks. Mixed into BatchNorm1D and BatchNorm2D (their checks and buffers)."""

    def forward(self, x, training=False):
        if not training:
            return super().forward(x, training)
        check_input(self, x, self.ndims, self.num_features, self.layout.replace("C", str(self.num_features)))
        shard, world = self._shard, self._shard.world
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)  # broadcast a (C,) vector over (N, C, ...)
        counts = shard.real > 0  # an empty shard runs one stand-in row that must not count
        c = self.num_features
        first = np.zeros(c + 1)  # float64: per-channel sums, then the number of values per channel
        if counts:
            first[:c] = x.sum(axis=axes)
            first[c] = x.size // c
        world.allreduce(first)
        n = int(first[c])
        if n < 2:
            raise ValueError(f"{type(self).__name__}: training needs more than one value per channel, got "
                             f"{n} over the whole batch")
        mean = (first[:c] / n).astype(x.dtype)  # (C,)
        centred = x - mean.reshape(shape)
        second = (centred * centred).sum(axis=axes).astype(np.float64) if counts else np.zeros(c)
        var = (world.allreduce(second) / n).astype(x.dtype)  # (C,) biased, as in normalising
        m = self.momentum
        self.buffers["running_mean"] *= 1 - m
        self.buffers["running_mean"] += m * mean
        self.buffers["running_var"] *= 1 - m
        self.buffers["running_var"] += (m * n / (n - 1)) * var
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        xhat = centred * inv_std.reshape(shape)
        self._cache = (xhat, inv_std, axes, shape, n)
        return xhat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)

    def backward(self, dy, input_grad=True):
        xhat, inv_std, axes, shape, n = self._take_cache()
        # This rank's part; the optimizer's gradient sum over ranks adds the rest.
        self._set_grad("weight", (dy * xhat).sum(axis=axes))
        self._set_grad("bias", dy.sum(axis=axes))
        if not input_grad:
            return None
        c = self.num_features
        dxhat = dy * self.params["weight"].reshape(shape)
        sums = np.concatenate([dxhat.sum(axis=axes), (dxhat * xhat).sum(axis=axes)]).astype(np.float64)  # (2C,)
        self._shard.world.allreduce(sums)
        if self._shard.real == 0:  # the stand-in row of an empty shard: nothing flows back from it
            return np.zeros_like(dy)
        mean_dxhat = (sums[:c] / n).astype(dy.dtype).reshape(shape)
        mean_dxhat_xhat = (sums[c:] / n).astype(dy.dtype).reshape(shape)
        # dx = (1/n) * inv_std * (n * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)), the sums over all ranks
        return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv_std.reshape(shape)


class SyncBatchNorm2D(_SyncBatchNorm, BatchNorm2D):
    """BatchNorm2D with batch statistics over every rank's rows."""


class SyncBatchNorm1D(_SyncBatchNorm, BatchNorm1D):
    """BatchNorm1D with batch statistics over every rank's rows."""


TWINS = {Dropout: ShardedDropout, BatchNorm2D: SyncBatchNorm2D, BatchNorm1D: SyncBatchNorm1D}


def install(net, shard) -> list:
    """Turn the net's Dropout and BatchNorm layers into their twins reading ``shard`` (which has ``batch``,
    ``lo``, ``hi``, ``real`` and ``world``); returns what ``uninstall`` needs."""
    swapped = []
    for layer in net.layers:
        twin = TWINS.get(type(layer))
        if twin is not None:
            swapped.append((layer, type(layer)))
            layer.__class__ = twin
            layer._shard = shard
    return swapped


def uninstall(swapped: list) -> None:
    """Undo ``install``."""
    for layer, original in swapped:
        layer.__class__ = original
        del layer._shard
