"""The MPI world of a run: which process this is, collectives on NumPy buffers, and ending the job together.

convnetpy never starts MPI by itself. ``world()`` is None unless an MPI launcher (``mpiexec -n K``) started
this process as one of K > 1, so a single-process run never imports mpi4py and the engine stays NumPy-only.
Under a launcher it imports mpi4py (``pip install 'convnetpy[mpi]'``) and fails with one clear line when
mpi4py is missing or speaks to another MPI than the launcher's.

The collectives of every step reduce contiguous NumPy buffers in place (MPI's fast path, no pickling); only
small things sent once (a config to compare, a checkpoint rank 0 read) travel pickled. The time spent in them
is added up in ``World.comm_seconds`` (it includes waiting for slower ranks).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import ConvnetpyError, portable

# Set by the launchers: MPICH's and Intel MPI's hydra and Slurm's PMI-2 (PMI_SIZE), Open MPI (OMPI_COMM_WORLD_SIZE),
# MVAPICH (MV2_COMM_WORLD_SIZE); PMIx launchers set PMIX_RANK without a size.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LAUNCHER_VARIABLES = (*SIZE_VARIABLES, "PMIX_RANK")
END_TIMEOUT = 10.0  # seconds a failed rank waits for the others to fail with it before aborting the job
# Seconds between printing an error and MPI_Abort: the launcher forwards output asynchronously and can drop
# what is still in flight when the job is torn down (seen with MPICH's hydra).
ABORT_GRACE = 0.3


class MPIError(ConvnetpyError):
    """MPI was asked for (the process runs under mpiexec) but cannot be used as it is installed."""


def launcher_size(environ: Mapping[str, str] = os.environ) -> int | None:
    """The number of processes the MPI launcher says it started; None when no launcher started this one
    (0 when a launcher did but does not say how many)."""
    for name in SIZE_VARIABLES:
        if environ.get(name, "").strip().isdigit():
            return int(environ[name])
    return 0 if any(name in environ for name in LAUNCHER_VARIABLES) else None


class World:
    """This process's place in an MPI job: ``rank`` (0..size-1) of ``size``, and collectives over all ranks.

    ``comm`` is an mpi4py communicator (``MPI.COMM_WORLD``); rank 0 is the one that writes files and prints.
    """

    def __init__(self, comm) -> None:
        from mpi4py import MPI

        self.MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        # Its own communicator: the end-of-job barrier can never be matched with a training collective.
        self._ending = comm.Dup()
        self.comm_seconds = 0.0
        self.end_timeout = END_TIMEOUT
        self.local_size = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()  # ranks on this machine

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size})"

    @property
    def where(self) -> str:
        return f"rank {self.rank} of {self.size}"

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of range(n): rows [n r / K, n (r + 1) / K), sizes differing by at most 1."""
        return slice(n * self.rank // self.size, n * (self.rank + 1) // self.size)

    # -- collectives (every rank must call them in the same order) ---------------------------------------------
    def allreduce(self, buf: np.ndarray, op: str = "sum") -> np.ndarray:
        """Reduce the contiguous ``buf`` over all ranks in place (``op`` "sum" or "max"); returns it."""
        assert buf.flags.c_contiguous, "allreduce needs a contiguous buffer"
        t0 = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM if op == "sum" else self.MPI.MAX)
        self.comm_seconds += time.perf_counter() - t0
        return buf

    def broadcast(self, buf: np.ndarray) -> np.ndarray:
        """Overwrite the contiguous ``buf`` with rank 0's, in place; returns it."""
        assert buf.flags.c_contiguous, "broadcast needs a contiguous buffer"
        t0 = time.perf_counter()
        self.comm.Bcast(buf, root=0)
        self.comm_seconds += time.perf_counter() - t0
        return buf

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` (pickled) on every rank: for small metadata, not for arrays that matter for speed."""
        t0 = time.perf_counter()
        obj = self.comm.bcast(obj, root=0)
        self.comm_seconds += time.perf_counter() - t0
        return obj

    def from_root(self, fn: Callable, *args):
        """``fn(*args)`` run on rank 0 alone, its result on every rank: for files only rank 0 may see (a
        checkpoint on its own disk). When it raises, every rank raises the same error; rank 0 reports it."""
        if self.rank == 0:
            try:
                result = fn(*args)
            except Exception as e:
                self.broadcast_object((False, portable(e)))
                raise
            return self.broadcast_object((True, result))[1]
        ok, value = self.broadcast_object(None)
        if not ok:
            raise value
        return value

    # -- ending the job ---------------------------------------------------------------------------------------
    def abort(self, code: int) -> None:
        """Kill every rank of the job (MPI_Abort), once what this one printed is on its way."""
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        time.sleep(ABORT_GRACE)
        self.comm.Abort(code)

    def ended_together(self) -> bool:
        """True when every rank reaches this point within ``end_timeout`` seconds (they all failed together, e.g.
        a diverged loss or an agreed Ctrl-C), False when some rank is still busy: it failed alone."""
        request = self._ending.Ibarrier()
        deadline = time.monotonic() + self.end_timeout
        while not request.Test():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def run_rank(self, run: Callable[[object, str], int]) -> int:
        """Run this rank's part of a command, ``run(err, where) -> exit code``, as convnetpy's command line does.

        Only rank 0 prints: the others' stdout and stderr go to /dev/null while ``run`` works, and ``run``
        writes its one-line error to ``err``, named by ``where``. A non-zero code ends the job: when every rank
        fails together, each returns its code (rank 0's message is the one shown); a rank that failed alone
        shows its message and aborts the job, so nobody waits for it forever. An exception ``run`` does not
        handle (a bug, a second Ctrl-C) aborts at once with the rank and the traceback.
        """
        err = sys.stderr
        held = err if self.rank == 0 else io.StringIO()  # others' messages wait: shown only if they failed alone
        lead = "\n" if self.rank else ""  # rank 0's progress bar may be mid-line: start a line of our own
        try:
            with open(os.devnull, "w") as devnull, contextlib.ExitStack() as quiet:
                if self.rank != 0:
                    quiet.enter_context(contextlib.redirect_stdout(devnull))
                    quiet.enter_context(contextlib.redirect_stderr(devnull))
                code = run(held, f"{self.where}: ")
        except BaseException as e:  # whatever it is, the other ranks would wait for this one forever
            print(f"{lead}convnetpy: error: {self.where} failed: {type(e).__name__}: {e}", file=err)
            traceback.print_exc(file=err)
            self.abort(1)
            raise
        if code and not self.ended_together():
            if held is not err:
                err.write(lead + held.getvalue())
            self.abort(code)
        return code


_WORLD: World | None = None
_CONNECTED = False


def world() -> World | None:
    """The MPI world when this process was started by an MPI launcher as one of several, else None.

    Imports mpi4py (initialising MPI) only in that case. Raises MPIError when mpi4py is missing, or when
    its MPI sees fewer processes than the launcher started (mpiexec from another MPI implementation).
    """
    global _WORLD, _CONNECTED
    if not _CONNECTED:
        _WORLD = connect(os.environ)
        _CONNECTED = True
    return _WORLD


def connect(environ: Mapping[str, str]) -> World | None:
    """``world()`` for the given environment variables (uncached)."""
    expected = launcher_size(environ)
    if expected is None or expected == 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise MPIError(f"started by an MPI launcher ({_launcher_hint(environ)}), but mpi4py is not installed: "
                       "pip install 'convnetpy[mpi]'") from None
    comm = MPI.COMM_WORLD
    size = comm.Get_size()
    if expected and size != expected:
        library = MPI.Get_library_version().splitlines()[0].strip()
        raise MPIError(f"the MPI launcher started {expected} processes, but mpi4py's MPI ({library}) sees {size}: "
                       "mpiexec comes from another MPI implementation than mpi4py's; use the mpiexec installed "
                       f"with it (beside {sys.executable})")
    if size == 1:
        return None
    world = World(comm)
    share_cores(world.local_size)
    return world


def share_cores(ranks_here: int, environ: Mapping[str, str] = os.environ) -> int:
    """Give this rank its share of the machine's cores, as many threads as cores // ranks on this machine, for
    convnetpy's kernels and for BLAS (through threadpoolctl, unless the user set OMP_NUM_THREADS or the like):
    else each of K ranks would start a thread per core and K times too many threads would compete. A rank
    cuts its share of a batch into as many shards (convnetpy.shards)."""
    from .. import shards
    from ..functional.parallel import available_cpus, set_num_threads

    cores = available_cpus()
    threads = max(1, cores // max(1, ranks_here))
    set_num_threads(threads)
    shards.SHARDS = threads
    if not any(name in environ for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
    return threads


def _launcher_hint(environ: Mapping[str, str]) -> str:
    return ", ".join(f"{name}={environ[name]}" for name in LAUNCHER_VARIABLES if name in environ)
