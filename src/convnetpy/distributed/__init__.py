"""Data-parallel training over MPI: ``mpiexec -n K convnetpy train ...`` trains one net on K processes.

- ``world()``: this process's MPI world (rank, size, collectives on NumPy buffers), or None when it was not
  started by an MPI launcher as one of several; mpi4py is imported only then.
- ``DataParallel(world)``: the Trainer hook (``Trainer(..., parallel=DataParallel(world))``): each rank takes its
  share of every global batch, gradients are summed with bucketed ``Allreduce``, Dropout and BatchNorm see the
  whole batch, and the ranks stop together.
- ``evaluate(world, ...)``: an evaluation sharded over the ranks, counts summed.
"""

from .data_parallel import DataParallel, GradientBuckets, ShardedGenerator, evaluate
from .layers import ShardedDropout, SyncBatchNorm1D, SyncBatchNorm2D
from .world import MPIError, World, connect, launcher_size, world

__all__ = ["DataParallel", "GradientBuckets", "MPIError", "ShardedDropout", "ShardedGenerator", "SyncBatchNorm1D",
           "SyncBatchNorm2D", "World", "connect", "evaluate", "launcher_size", "world"]
