"""Where a training step's time goes: median milliseconds per layer, forward and backward, and GFLOP/s.

    python benchmarks/layers.py --model cifar10net --batch 64 --threads 1
    python benchmarks/layers.py --model cifar10net --batch 64 --threads 1 --numpy-only   # im2col and BLAS
    python benchmarks/layers.py --model cifar10net --batch 64 --threads 1 --torch        # and the PyTorch twin

Layers run in the order ``Net`` runs them (a ReLU followed by max pooling runs after the pool). Each weighted
layer's rate counts 2 FLOPs per multiply-add: forward 1x, backward 2x its multiply-adds (weight gradient and
input gradient; the first layer computes no input gradient). The machine's peak is estimated by a large
float32 matmul on the same threads, the best BLAS can do here (the compiled kernels are not BLAS and can
pass it: OpenBLAS may be pinned to older kernels, see ``OPENBLAS_CORETYPE`` in the README).

``--torch`` then profiles the PyTorch twin's training step (``benchmarks/twins.py``, SGD with momentum) with
``torch.profiler``: its self CPU time per operator and input shape, per step, with the profiler's own
overhead included, so its total runs a little above ``speed.py``'s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import convnetpy
from convnetpy.allocator import keep_freed_memory
from convnetpy.functional import compiled
from convnetpy.functional.parallel import set_num_threads
from convnetpy.models import MODELS


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n float32 matmul: the practical ceiling for the conv layers' matmuls."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = min(_seconds(lambda: a @ a) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def profile(model: str, batch: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    net = convnetpy.Net(MODELS[model](), seed=0)
    x = rng.random((batch, *net.input_shape), dtype=np.float32)
    y = rng.integers(0, net.output_shape[0], batch)
    order = net._order  # execution order (see Net._execution_order)
    shapes = {}
    shape = net.input_shape
    for i, layer in enumerate(net.layers):
        shapes[i] = shape
        shape = layer.output_shape(shape)
    fwd = {i: [] for i in order}
    bwd = {i: [] for i in order}
    loss_times = []
    for _ in range(repeats + 2):  # the first two steps warm up workspaces and compiled kernels
        h = x
        for i in order:
            t0 = time.perf_counter()
            h = net.layers[i].forward(h, training=True)
            fwd[i].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, d = net.loss(h, y)
        loss_times.append(time.perf_counter() - t0)
        for k, i in enumerate(reversed(order)):
            t0 = time.perf_counter()
            d = net.layers[i].backward(d, input_grad=k < len(order) - 1)
            bwd[i].append(time.perf_counter() - t0)
    peak = matmul_peak()
    print(f"{model}, batch {batch}: median ms per layer over {repeats} steps "
          f"(compiled kernels: {'on' if compiled.available() else 'off'})")
    print(f"{'#':>2} {'layer':<12} {'forward':>8} {'backward':>9} {'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}")
    total_f = total_b = 0.0
    for i in order:
        layer = net.layers[i]
        f = statistics.median(fwd[i][2:]) * 1e3
        b = statistics.median(bwd[i][2:]) * 1e3
        total_f, total_b = total_f + f, total_b + b
        flops = 2 * layer.mult_adds(shapes[i]) * batch
        rates = ""
        if flops:
            backward_flops = flops * (2 if i != order[0] else 1)
            rates = f" {flops / f / 1e6:>12.1f} {backward_flops / b / 1e6:>12.1f}"
        print(f"{i:>2} {type(layer).__name__:<12} {f:>8.2f} {b:>9.2f}{rates}")
    loss_ms = statistics.median(loss_times[2:]) * 1e3
    total = total_f + total_b + loss_ms
    print(f"   {'loss':<12} {loss_ms:>8.2f}")
    print(f"   {'total':<12} {total_f:>8.2f} {total_b:>9.2f}  = {total:.2f} ms/step, "
          f"{batch / total * 1e3:,.0f} images/s (without the optimizer step)")
    print(f"peak: a 2048x2048 float32 matmul runs at {peak:.1f} GFLOP/s on these threads")


def profile_torch(model: str, batch: int, repeats: int, rows: int = 16) -> None:
    """The PyTorch twin's step through torch.profiler: milliseconds per step of its costliest operators."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from twins import torch_train_step, torch_twin

    net = convnetpy.Net(MODELS[model](), seed=0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((batch, *net.input_shape), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, net.output_shape[0], batch))
    step = torch_train_step(torch_twin(net), x, y)
    for _ in range(3):
        step()
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(repeats):
            step()
    ops = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ops) / repeats / 1e3
    print(f"PyTorch twin, batch {batch}, {torch.get_num_threads()} thread(s): self CPU ms per step, "
          f"torch.profiler, {rows} costliest of {len(ops)} operator/shape pairs")
    for e in ops[:rows]:
        first_input = next((shape for shape in e.input_shapes if shape), [])
        print(f"{e.self_cpu_time_total / repeats / 1e3:>8.2f}  {e.key:<42} {first_input}")
    print(f"{total:>8.2f}  total, the profiler's overhead included")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cifar10net", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="default: all CPUs")
    parser.add_argument("--numpy-only", action="store_true",
                        help="switch off the compiled (Numba) kernels, which are on wherever Numba is installed")
    parser.add_argument("--torch", action="store_true",
                        help="then profile the PyTorch twin's step with torch.profiler, on the same threads")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="tune malloc as the convnetpy command does (convnetpy.allocator): no page faults")
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    if args.numpy_only:
        compiled.use_compiled(False)
    if args.threads:
        set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        profile(args.model, args.batch, args.repeats)
    if args.torch:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        profile_torch(args.model, args.batch, args.repeats)
