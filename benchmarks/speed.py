"""Images/second for convnetpy and PyTorch on the same net, batch and threads, measured in one run.

    python benchmarks/speed.py                      # cifar10net and lenet5, batches 1 32 64 128, 2 threads
    python benchmarks/speed.py --models cifar10net --batches 64 --threads 1 2

For every (model, batch, threads) it times a training step (forward, softmax cross-entropy, backward,
SGD-momentum step) and an inference pass, alternating convnetpy and PyTorch round by round so that both see
the same machine load, and prints medians and the ratio ours / PyTorch. The PyTorch twin is the
``nn.Sequential`` a PyTorch user would write, with our initial weights copied in. CPU load from /proc/stat
during the run is printed beside the table: on a shared machine, spinning BLAS threads slow down a lot.

Both libraries allocate their tensors from the same malloc. By default glibc gives large freed blocks back to
the OS and adjusts its thresholds to what was freed so far, so a library's figures depend on what ran before
it in the process. ``--keep-freed-memory`` fixes the thresholds as the ``convnetpy`` command does, for both:
no page faults from step to step on either side.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import convnetpy
from convnetpy.allocator import keep_freed_memory
from convnetpy.functional import compiled
from convnetpy.functional.parallel import set_num_threads
from convnetpy.models import MODELS
from convnetpy.optim import SGD
from load import cpu_busy
from twins import torch_train_step, torch_twin


def time_steps(step, n: int) -> float:
    """Seconds per call of ``step``, averaged over n calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def measure(model: str, batch: int, rounds: int, seconds: float) -> dict:
    rng = np.random.default_rng(0)
    net = convnetpy.Net(MODELS[model](), seed=0)
    twin = torch_twin(net)
    x = rng.random((batch, *net.input_shape), dtype=np.float32)
    y = rng.integers(0, net.output_shape[0], batch)
    tx, ty = torch.from_numpy(x.copy()), torch.from_numpy(y)

    ours_opt = SGD(net.params(), lr=0.001, momentum=0.9)
    torch_train = torch_train_step(twin, tx, ty)

    def ours_train():
        net.backprop(x, y)
        ours_opt.step()

    def ours_infer():
        net.forward(x)

    @torch.inference_mode()
    def torch_infer():
        twin(tx)

    result = {}
    for kind, ours, theirs in (("train", ours_train, torch_train), ("infer", ours_infer, torch_infer)):
        # Warm up (convnetpy's first training step starts its helper processes), then size each timed block
        # to about `seconds`.
        time_steps(ours, 3), time_steps(theirs, 3)
        per_step = max(time_steps(ours, 3), time_steps(theirs, 3), 1e-5)
        n = max(1, int(seconds / per_step))
        ours_times, torch_times = [], []
        for _ in range(rounds):
            ours_times.append(time_steps(ours, n))
            torch_times.append(time_steps(theirs, n))
        result[kind] = (batch / statistics.median(ours_times), batch / statistics.median(torch_times))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cifar10net", "lenet5"], choices=sorted(MODELS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32, 64, 128])
    parser.add_argument("--threads", nargs="+", type=int, default=[os.cpu_count() or 1])
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per library")
    parser.add_argument("--seconds", type=float, default=0.4, help="length of one timed round")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="tune malloc as the convnetpy command does (convnetpy.allocator), for both libraries")
    parser.add_argument("--numpy-only", action="store_true",
                        help="switch off the compiled (Numba) kernels, which are on wherever Numba is installed")
    args = parser.parse_args(argv)
    kept = keep_freed_memory() if args.keep_freed_memory else False
    if args.numpy_only:
        compiled.use_compiled(False)

    blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in threadpool_info())
    print(f"convnetpy {convnetpy.__version__}, numpy {np.__version__} [{blas}], torch {torch.__version__}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"malloc: {'keeps freed memory (convnetpy.allocator)' if kept else 'default'}, "
          f"compiled kernels: {'on' if compiled.available() else 'off'}")
    header = (f"{'model':<11} {'batch':>5} {'thr':>3} | {'train ours':>10} {'torch':>8} {'ratio':>6} | "
              f"{'infer ours':>10} {'torch':>8} {'ratio':>6} | {'cpu load':>8}")
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        set_num_threads(threads)  # convnetpy's own kernels; BLAS is limited by threadpool_limits below
        with threadpool_limits(limits=threads):
            for model in args.models:
                for batch in args.batches:
                    busy0, total0 = cpu_busy()
                    r = measure(model, batch, args.rounds, args.seconds)
                    busy1, total1 = cpu_busy()
                    load = (busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1)
                    (tr_o, tr_t), (in_o, in_t) = r["train"], r["infer"]
                    print(f"{model:<11} {batch:>5} {threads:>3} | {tr_o:>10,.0f} {tr_t:>8,.0f} {tr_o / tr_t:>6.2f} | "
                          f"{in_o:>10,.0f} {in_t:>8,.0f} {in_o / in_t:>6.2f} | {load:>5.2f} CPUs", flush=True)
    print("images/second, medians of alternating rounds; ratio = ours / PyTorch (higher is better); "
          "cpu load = busy CPUs during the row (expected ~= threads)")


if __name__ == "__main__":
    main()
