"""Helper processes that run shards of a training step, so that several cores work without sharing one GIL.

Threads (``convnetpy.shards``) run the shards of a batch side by side, but every Python statement and every
small NumPy call between two kernels needs the interpreter's lock. A LeNet-5 shard of 16 images spends much
of its 1.3 ms there: on two threads each shard took twice as long as alone, and two threads trained hardly
faster than one. A helper process has its own interpreter. Each step this process copies the net's
parameters and the helper's rows of the batch into memory both map (a few hundred KB); the helper runs its
shards (forward pass, loss, backward pass) while this process runs its own, and writes their gradients and
scores back; this process sums all the shards' gradients in shard order. The helper runs the same kernels on
the same numbers, so a step's results are bitwise those of the threads, or of one thread.

``Net.train_step`` and inference passes (``Net.forward``, ``predict``) use helpers when more than one thread
is set (``functional.parallel.set_num_threads``) and the net is made of convnetpy's own layers; an inference
pass sends only rows and gets scores back. ``use_processes(False)`` keeps to threads. Helpers start on
first use (about a second: a fresh interpreter imports NumPy, convnetpy and the compiled kernels), serve
every net of this process, and exit with it. A helper that stops is replaced, and its shards of that step run
on this thread instead.
"""

from __future__ import annotations

import atexit
import mmap
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from .errors import portable
from .functional import compiled, conv
from .layers import Layer
from .losses import HEAD_LOSSES
from .shards import Replicas, bare_copy, forward_through, train_shard

ALIGN = 64  # bytes: each array in the shared memory starts on a cache line of its own
# Seconds a process polls for the other's message before it sleeps. On this 2-CPU virtual machine a process
# that sleeps between steps computes its next shard 20-40% slower (a LeNet-5 step at batch 32: 2.1 ms with
# sleeping, 1.5 ms with polling): an idle virtual CPU seems to come back with cold caches. OpenMP's threads,
# PyTorch's, poll the same way. The parent polls for a helper's result; a helper polls for the next step
# a while, to cover the optimizer step and the next batch, and then sleeps.
WAIT_SPIN = 0.1
NEXT_STEP_SPIN = 0.005

_enabled = os.name == "posix"  # helpers get their file descriptors at start-up (pass_fds)
_helpers: list[Helper] = []
_lock = threading.Lock()


def use_processes(on: bool) -> None:
    """Run a training step's shards in helper processes (on, the default on POSIX) or on threads only."""
    global _enabled
    if on and os.name != "posix":
        raise RuntimeError("helper processes need a POSIX system; convnetpy uses threads here")
    _enabled = bool(on)
    if not on:
        close_helpers()


def _switch_off() -> None:
    """use_processes(False) for a caller that holds the helpers' lock: the helpers left are closed next time."""
    global _enabled
    _enabled = False


def processes_enabled() -> bool:
    return _enabled


def usable(layers: list[Layer]) -> bool:
    """True when helpers can take this net: convnetpy's own layer classes (a helper imports them by name)."""
    return _enabled and all(type(layer).__module__.startswith("convnetpy.") for layer in layers)


@contextmanager
def borrowed(count: int):
    """A context with ``count`` running helpers (started when fewer run), or None: when count is 0, or while
    another thread has them (a step then runs on threads)."""
    if count < 1 or not _lock.acquire(blocking=False):
        yield None
        return
    try:
        _helpers[:] = [h for h in _helpers if h.alive()]
        try:
            while len(_helpers) < count:
                _helpers.append(Helper())
        except OSError as e:  # no process or file descriptor to be had
            warnings.warn(f"convnetpy: cannot start a helper process ({e}); training goes on with threads only "
                          "(convnetpy.processes)", RuntimeWarning, stacklevel=3)
            _switch_off()
            yield None
            return
        yield _helpers[:count]
    finally:
        _lock.release()


def close_helpers() -> None:
    """Stop every helper (they also exit by themselves when this process does)."""
    with _lock:
        for helper in _helpers:
            helper.close()
        _helpers.clear()


atexit.register(close_helpers)


def kernel_settings() -> tuple:
    """The switches that decide which kernel computes a convolution; a helper sets the same ones."""
    return compiled.available(), conv.COMPILED_MIN_REDUCTION, conv.COMPILED_MAX_WIDENING


def _apply_kernel_settings(settings: tuple) -> None:
    on, conv.COMPILED_MIN_REDUCTION, conv.COMPILED_MAX_WIDENING = settings
    compiled.use_compiled(on)


# -- the shared memory ---------------------------------------------------------------------------------

class Layout:
    """Where each array of a step lies in the shared memory: the parameters, then each shard's rows and results.

    ``params`` and ``grads[k]``: (layer index, key, offset, shape, dtype) per parameter, layer by layer;
    ``x[k]`` and ``scores[k]``: (offset, shape, dtype), for the k-th shard the helper runs.
    """

    def __init__(self, layers: list[Layer], rows: list[int], in_shape: tuple, out_shape: tuple, dtype) -> None:
        self.size = 0
        self.params = self._place_params(layers)
        self.x, self.grads, self.scores = [], [], []
        for n in rows:
            self.x.append(self._place((n, *in_shape), dtype))
            self.grads.append(self._place_params(layers))
            self.scores.append(self._place((n, *out_shape), dtype))

    def views(self, buffer: np.ndarray) -> Views:
        """The layout's arrays in ``buffer``, the shared memory mapped as bytes (uint8)."""
        return Views(params=[_view(buffer, *where) for _, _, *where in self.params],
                     x=[_view(buffer, *where) for where in self.x],
                     grads=[[_view(buffer, *where) for _, _, *where in placed] for placed in self.grads],
                     scores=[_view(buffer, *where) for where in self.scores])

    def _place(self, shape: tuple, dtype) -> tuple:
        offset, dtype = self.size, np.dtype(dtype)
        self.size += -(-int(np.prod(shape)) * dtype.itemsize // ALIGN) * ALIGN
        return offset, tuple(shape), dtype.str

    def _place_params(self, layers: list[Layer]) -> list[tuple]:
        return [(i, key, *self._place(value.shape, value.dtype))
                for i, layer in enumerate(layers) for key, value in layer.params.items()]


@dataclass
class Views:
    """A layout's arrays in one mapping of the shared memory (see ``Layout``)."""

    params: list[np.ndarray]
    x: list[np.ndarray]
    grads: list[list[np.ndarray]]
    scores: list[np.ndarray]


def _view(buffer: np.ndarray, offset: int, shape: tuple, dtype: str) -> np.ndarray:
    dtype = np.dtype(dtype)
    return buffer[offset:offset + int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)


class SharedMemory:
    """An anonymous file that a process and its helper both map: memfd on Linux, an unlinked temporary file
    elsewhere. Nothing to unlink or leak: the file goes when both have closed it."""

    def __init__(self, fd: int | None = None) -> None:
        """A new file, or the one open as ``fd`` (a helper's, inherited from its parent)."""
        if fd is not None:
            self.fd = fd
        elif hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("convnetpy-shards")
        else:
            self.fd, path = tempfile.mkstemp(prefix="convnetpy-shards-")
            os.unlink(path)
        self.size, self.bytes = 0, None
        self.layout: Layout | None = None
        self.arrays: Views | None = None

    def views(self, layout: Layout, grow: bool) -> Views:
        """``layout``'s arrays; the file is mapped anew when its size changes, and resized by its owner (``grow``)."""
        if layout is not self.layout:
            if layout.size != self.size:
                if grow:
                    os.ftruncate(self.fd, layout.size)
                # the old mapping closes once no view of it is left
                self.bytes = np.frombuffer(mmap.mmap(self.fd, layout.size), dtype=np.uint8)
                self.size = layout.size
            self.layout, self.arrays = layout, layout.views(self.bytes)
        return self.arrays

    def close(self) -> None:
        os.close(self.fd)


# -- this process's side -------------------------------------------------------------------------------

class Helper:
    """One helper process: it keeps a copy of the last net it was sent and runs shards of it on request."""

    def __init__(self) -> None:
        self.memory = SharedMemory()
        ours, theirs = socket.socketpair()
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the same convnetpy
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([package_root, os.environ.get("PYTHONPATH", "")]),
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one core each
        code = f"from convnetpy.processes import serve; serve({theirs.fileno()}, {self.memory.fd})"
        try:
            self.process = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.DEVNULL,
                                            pass_fds=(theirs.fileno(), self.memory.fd))
        except BaseException:
            ours.close()
            self.memory.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        self.net_key = self.layout_key = None  # what the helper holds
        self.layout: Layout | None = None
        self.steps = 0  # steps it answered
        self.pending = False  # a step was sent and its reply not read (the caller raised in between)

    def alive(self) -> bool:
        return not self.conn.closed and self.process.poll() is None

    def submit(self, layers: list[Layer], order: list[int], head: str | None, x: np.ndarray,
               targets: np.ndarray | None, shards: list[slice]) -> None:
        """Start the helper on ``shards`` of the batch x (N, ...): a training step, or an inference pass when
        ``targets`` is None; ``result`` waits for it."""
        if self.pending:  # the last step stopped before reading this reply (an exception, Ctrl-C)
            self.result_or_error()
        net_key = (id(layers), tuple(map(id, layers)),
                   tuple(value.dtype.str for layer in layers for value in layer.params.values()))
        if net_key != self.net_key:  # a new net, or changed layers: send a copy
            self.net_key = self.layout_key = None
            copies = pickle.dumps([bare_copy(layer) for layer in layers], protocol=pickle.HIGHEST_PROTOCOL)
            if not self._send(("net", copies, order, head)):
                return
            self.net_key = net_key
        rows = [s.stop - s.start for s in shards]
        layout_key = (net_key, tuple(rows), x.shape[1:])
        if layout_key != self.layout_key:
            self.layout = Layout(layers, rows, x.shape[1:], _output_shape(layers, x.shape[1:]), x.dtype)
            if not self._send(("layout", self.layout)):
                return
            self.layout_key = layout_key
        views = self.memory.views(self.layout, grow=True)
        for value, (i, key, *_) in zip(views.params, self.layout.params):
            np.copyto(value, layers[i].params[key])
        for rows_of_shard, x_rows in zip(shards, views.x):
            np.copyto(x_rows, x[rows_of_shard])
        self.pending = self._send(("step", None if targets is None else [targets[s] for s in shards],
                                   [(s.stop - s.start) / len(x) for s in shards], kernel_settings()))

    def result(self) -> tuple[list[float], list[list[np.ndarray]], list[np.ndarray]] | None:
        """The submitted shards' losses, gradients (a list per shard, in ``layout.grads`` order) and scores,
        or None when the helper has stopped (the caller then runs those shards itself).

        The arrays are views of the shared memory, valid until the next ``submit``. An exception raised in
        the helper (bad targets, say) is raised here.
        """
        reply = self.result_or_error()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def result_or_error(self):
        """``result``, with the helper's exception returned rather than raised."""
        self.pending = False
        try:
            _wait(self.conn, WAIT_SPIN)
            kind, value = self.conn.recv()
        except (EOFError, OSError):
            self._stopped()
            return None
        if kind == "error":
            return value
        self.steps += 1
        return value, self.memory.arrays.grads, self.memory.arrays.scores

    def _send(self, message) -> bool:
        try:
            self.conn.send(message)
            return True
        except OSError:
            return False  # ``result`` finds the connection closed and says so

    def _stopped(self) -> None:
        """The helper exited: warn, and switch helpers off if it never ran a step (it cannot start here)."""
        code = self.process.wait()
        self.close()
        if self.steps == 0:
            _switch_off()
            warnings.warn(f"convnetpy: a helper process could not start (exit code {code}); training goes on "
                          "with threads only (convnetpy.processes)", RuntimeWarning, stacklevel=4)
        else:
            warnings.warn(f"convnetpy: a helper process stopped (exit code {code}); this thread ran its shards "
                          "of this step, and the next step starts a new helper", RuntimeWarning, stacklevel=4)

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()  # the helper reads end-of-file and exits
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.memory.close()


def _wait(conn: Connection, seconds: float) -> None:
    """Poll ``conn`` for up to ``seconds`` (see WAIT_SPIN); the caller's ``recv`` then sleeps if need be."""
    end = time.perf_counter() + seconds
    while not conn.poll(0) and time.perf_counter() < end:
        pass


def _output_shape(layers: list[Layer], shape: tuple) -> tuple:
    for layer in layers:
        shape = layer.output_shape(shape)
    return tuple(shape)


# -- the helper's side ---------------------------------------------------------------------------------

def serve(conn_fd: int, memory_fd: int) -> None:
    """A helper's loop: a net, a layout, then steps, until the parent closes the connection (or exits)."""
    import signal

    from .allocator import keep_freed_memory
    from .functional.parallel import set_num_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then closes the connection
    keep_freed_memory()
    set_num_threads(1)  # a helper is one core's worth of work
    conn, memory = Connection(conn_fd), SharedMemory(memory_fd)
    layers = order = loss_fn = layout = None
    replicas = Replicas()
    while True:
        try:
            _wait(conn, NEXT_STEP_SPIN)
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "net":
            layers, order, loss_fn = pickle.loads(message[1]), message[2], HEAD_LOSSES.get(message[3])
            replicas = Replicas()
        elif message[0] == "layout":
            layout = message[1]
        elif message[0] == "step":
            try:
                conn.send(("done", _run_step(memory, layers, order, loss_fn, layout, replicas, *message[1:])))
            except Exception as e:  # the parent raises it
                conn.send(("error", portable(e)))


def _run_step(memory: SharedMemory, layers: list[Layer], order: list[int], loss_fn, layout: Layout,
              replicas: Replicas, targets: list, shares: list[float], settings: tuple) -> list[float]:
    """Run the shards of a step on the parameters and rows the parent wrote; results go into the memory.
    Without ``targets``, an inference pass: scores only."""
    _apply_kernel_settings(settings)
    if memory.layout is not layout:
        for value, (i, key, *_) in zip(memory.views(layout, grow=False).params, layout.params):
            layers[i].params[key] = value  # the replicas share these, as they share a layer's
    views, losses = memory.arrays, []
    if targets is None:
        for x, scores in zip(views.x, views.scores):
            np.copyto(scores, forward_through(layers, order, x, training=False))
        return losses
    for k, shard in enumerate(replicas.make(layers, len(targets))):
        grads = iter(views.grads[k])
        for replica in shard:  # backward writes gradients in place (Layer): here, straight into the memory
            replica.grads = {key: next(grads) for key in replica.params}
        loss, scores = train_shard(shard, order, views.x[k], targets[k], shares[k], loss_fn)
        losses.append(loss)
        np.copyto(views.scores[k], scores)
    return losses
