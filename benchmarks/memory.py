"""Peak memory of training steps, convnetpy against PyTorch, same net, batch and threads.

    python benchmarks/memory.py                       # cifar10net and lenet5, batches 64 and 128
    python benchmarks/memory.py --models cifar10net --batches 64
    python benchmarks/memory.py --numpy-only          # convnetpy without Numba's compiler and code

Method: each (library, model, batch) runs in a fresh Python process. It builds the net (PyTorch: the twin
with our weights) and one random float32 batch, reads its resident set size (VmRSS), resets the kernel's
high-water mark (``echo 5 > /proc/self/clear_refs``), runs training steps (forward, softmax cross-entropy,
backward, SGD-momentum step) and reads the high-water mark (VmHWM). Two figures:

- VmHWM - VmRSS over five steps from a fresh net: everything training needs on top of the net and the batch,
  including buffers kept between steps (our workspaces, PyTorch's allocator caches) and code loaded lazily on
  first use (oneDNN's kernels; Numba with its compiler and our compiled kernels, about 130 MB).
- VmHWM itself: the whole process's peak, the libraries included (PyTorch loads its own on import). This is
  what a training process needs from the machine. Both processes import NumPy and convnetpy; only one
  imports PyTorch.

With more than one thread convnetpy trains with helper processes (``convnetpy.processes``), which the steps
start: each helper's own peak (VmHWM) is added to both figures, and shown on its own. That counts twice the
pages of shared libraries (NumPy, LLVM) that both processes map from the same files, so a third figure is
what the processes hold after the steps, shared pages split between them (the sum of their PSS, from
/proc/PID/smaps_rollup); for PyTorch's one process it is about its resident memory. ``--threads-only``
measures convnetpy without helpers.

(A later step alone adds almost nothing to the high-water mark for either library: freed memory is reused, so
it says little.) Linux only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, {bench!r})
import convnetpy
from convnetpy.models import MODELS
from convnetpy.functional import compiled
from convnetpy.functional.parallel import set_num_threads
from threadpoolctl import threadpool_limits

library, model, batch, threads = {library!r}, {model!r}, {batch}, {threads}

def status(key, pid="self"):
    for line in open(f"/proc/{{pid}}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # kB -> bytes
    raise KeyError(key)

rng = np.random.default_rng(0)
net = convnetpy.Net(MODELS[model](), seed=0)
x = rng.random((batch, *net.input_shape), dtype=np.float32)
y = rng.integers(0, net.output_shape[0], batch)
if library == "torch":
    import torch
    from twins import torch_train_step, torch_twin
    torch.set_num_threads(threads)
    step = torch_train_step(torch_twin(net), torch.from_numpy(x), torch.from_numpy(y))
else:
    from convnetpy.optim import SGD
    set_num_threads(threads)
    if {numpy_only}:
        compiled.use_compiled(False)
    if {threads_only}:
        from convnetpy import processes
        processes.use_processes(False)
    opt = SGD(net.params(), lr=0.001, momentum=0.9)
    def step():
        net.backprop(x, y)
        opt.step()
def peak_above_rss(steps):
    before = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    for _ in range(steps):
        step()
    return status("VmHWM") - before

with threadpool_limits(threads):
    cold = peak_above_rss(5)
from convnetpy import processes
pids = [h.process.pid for h in processes._helpers]  # helpers these steps started
helpers = sum(status("VmHWM", pid) for pid in pids)

def pss(pid):  # resident memory with pages shared by several processes split between them
    for line in open(f"/proc/{{pid}}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise KeyError("Pss")

print(json.dumps({{"cold": cold + helpers, "process": status("VmHWM") + helpers, "helpers": helpers,
                  "pss": sum(pss(pid) for pid in ["self", *pids])}}))
"""


def measure(library: str, model: str, batch: int, threads: int, numpy_only: bool = False,
            threads_only: bool = False) -> dict:
    """{"cold": bytes above the net and batch over five steps, "process": the process's peak resident memory,
    "helpers": the part of both that is convnetpy's helper processes} (see the module docstring), in a fresh
    process."""
    code = CHILD.format(bench=str(Path(__file__).parent), library=library, model=model, batch=batch,
                        threads=threads, numpy_only=numpy_only, threads_only=threads_only)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["cifar10net", "lenet5"])
    parser.add_argument("--batches", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--numpy-only", action="store_true",
                        help="convnetpy without its compiled (Numba) kernels: no compiler or compiled code loaded")
    parser.add_argument("--threads-only", action="store_true",
                        help="convnetpy without helper processes (convnetpy.processes): its shards on threads")
    args = parser.parse_args(argv)
    print(f"peak memory of 5 training steps, {args.threads} threads: above the net and batch (VmHWM - VmRSS), "
          "and the whole process's peak (VmHWM)")
    print(f"{'model':<11} {'batch':>5} | {'ours MB':>8} {'torch MB':>9} {'ratio':>6} | "
          f"{'process: ours':>13} {'torch':>7} {'ratio':>6} | {'of ours, helpers':>16} | "
          f"{'PSS: ours':>9} {'torch':>7} {'ratio':>6}")
    for model in args.models:
        for batch in args.batches:
            ours = measure("convnetpy", model, batch, args.threads, args.numpy_only, args.threads_only)
            theirs = measure("torch", model, batch, args.threads)
            a, b = ours["cold"], theirs["cold"]
            pa, pb = ours["process"], theirs["process"]
            print(f"{model:<11} {batch:>5} | {a / 1e6:>8.1f} {b / 1e6:>9.1f} {a / max(b, 1):>6.2f} | "
                  f"{pa / 1e6:>13.1f} {pb / 1e6:>7.1f} {pa / max(pb, 1):>6.2f} | "
                  f"{ours['helpers'] / 1e6:>16.1f} | {ours['pss'] / 1e6:>9.1f} {theirs['pss'] / 1e6:>7.1f} "
                  f"{ours['pss'] / max(theirs['pss'], 1):>6.2f}", flush=True)
    print("ratio = ours / PyTorch (lower is better)")


if __name__ == "__main__":
    main()
