"""Data-parallel throughput on this machine, and a paper estimate of scaling to 8 and 64 machines.

    python benchmarks/mpi.py          # cifar10net, global batch 64: 1 rank x 2 threads vs 2 ranks x 1 thread
    python benchmarks/mpi.py --steps 60 --rounds 3 --batch 128

Each configuration trains the net with the Trainer (SGD with momentum, augmentation on, as ``convnetpy train``) on
synthetic CIFAR-10-shaped images, in its own processes: one process with 2 threads (convnetpy's and BLAS's), then
``mpiexec -n 2`` with 1 thread each, alternating round by round so both see the same machine load; the best round
of each is kept. It prints images/second, the seconds per step spent in MPI calls (which include waiting for the
slower rank), an Allreduce of the gradients alone, and the compute time per example.

From the measured compute time per example and the gradient size (22,466 float32 parameters for the CIFAR-10 net:
90 kB) it then estimates, on paper, the step time and speed-up on 8 and 64 machines over 1, 10 and 100 Gb/s links,
with a fixed global batch (strong scaling) and with a fixed batch per machine (weak scaling). The assumptions are
printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from load import LoadMeter

# Links: (name, bytes per second, latency of one small message in seconds). Latencies are typical MPI figures:
# TCP over Ethernet, and RDMA (InfiniBand or RoCE) at 100 Gb/s.
LINKS = [("1 Gb/s Ethernet", 1e9 / 8, 50e-6), ("10 Gb/s Ethernet", 10e9 / 8, 20e-6),
         ("100 Gb/s InfiniBand", 100e9 / 8, 3e-6)]
SMALL_ALLREDUCES = 2  # per step besides the gradients: the loss and hits, and the ranks' agreement on stopping


# -- one configuration (run as its own processes) ----------------------------------------------------------------------
def worker(args) -> None:
    from convnetpy import Net, distributed
    from convnetpy.functional.parallel import set_num_threads
    from convnetpy.models import MODELS
    from convnetpy.preprocess import Preprocessor
    from convnetpy.train import FitConfig, Trainer

    set_num_threads(args.threads)
    mpi = distributed.world()
    rank, size = (0, 1) if mpi is None else (mpi.rank, mpi.size)
    net = Net(MODELS[args.model](), seed=0)
    steps = args.warmup + args.steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch * steps, *net.input_shape), dtype=np.uint8)  # (N, C, H, W)
    labels = rng.integers(0, net.output_shape[0], len(images))
    pre = Preprocessor.fit(images[:1024], net.input_shape, flip=True, max_shift=2)
    config = FitConfig(epochs=1, batch_size=args.batch, lr=0.001, momentum=0.9, augment=True, val_fraction=0.0)
    marks = {}

    def clock(event, trainer):
        if event["event"] == "step" and event["step"] in (args.warmup, steps):
            marks[event["step"]] = (time.perf_counter(), 0.0 if mpi is None else mpi.comm_seconds)

    parallel = None if mpi is None else distributed.DataParallel(mpi)
    Trainer(net, config, pre, callbacks=[clock], parallel=parallel).fit(images, labels)
    (t0, c0), (t1, c1) = marks[args.warmup], marks[steps]
    step_seconds = (t1 - t0) / args.steps
    comm = np.array([(c1 - c0) / args.steps])
    allreduce = np.zeros(1)
    comm_min = comm_max = 0.0
    if mpi is not None:  # the slowest rank waits least: its MPI time is the communication itself
        comm_max = float(mpi.allreduce(comm.copy(), op="max")[0])
        comm_min = -float(mpi.allreduce(-comm, op="max")[0])
        allreduce[0] = gradient_allreduce_seconds(mpi, net.num_params())
        mpi.allreduce(allreduce, op="max")
    t = time.perf_counter()
    for i in range(10):  # preprocessing (crop, flip, normalise) of this rank's share of a batch, per example
        pre(images[:args.batch // size], rng=np.random.default_rng(i))
    preprocess = (time.perf_counter() - t) / 10 / (args.batch // size)
    if rank == 0:
        print("RESULT " + json.dumps({
            "ranks": size, "threads": args.threads, "params": net.num_params(), "step_seconds": step_seconds,
            "images_per_second": args.batch / step_seconds, "comm_seconds_per_step": comm_min,
            "comm_seconds_per_step_max": comm_max, "allreduce_seconds": float(allreduce[0]),
            # one rank's compute (on its threads) per example of its share: a step of the slowest rank without MPI
            "compute_seconds_per_example": (step_seconds - comm_min) / (args.batch / size),
            "preprocess_seconds_per_example": preprocess,
            "mpi": "" if mpi is None else mpi.MPI.Get_library_version().splitlines()[0].strip()}), flush=True)


def gradient_allreduce_seconds(mpi, n_params: int, reps: int = 50) -> float:
    """Seconds per Allreduce of an (n_params,) float32 buffer, every rank ready at the start (no waiting)."""
    buf = np.zeros(n_params, np.float32)
    mpi.comm.Barrier()
    t = time.perf_counter()
    for _ in range(reps):
        mpi.comm.Allreduce(mpi.MPI.IN_PLACE, buf)
    return (time.perf_counter() - t) / reps


# -- the driver --------------------------------------------------------------------------------------------------------
def mpiexec() -> str:
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        sys.exit("benchmarks/mpi.py: no mpiexec: pip install 'convnetpy[mpi]'")
    return found


def launch(ranks: int, threads: int, args) -> dict:
    """Run one configuration in fresh processes; its result, with the CPU load during the run."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--model", args.model,
           "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    meter = LoadMeter().start()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    busy = meter.busy()
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"benchmarks/mpi.py: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {**json.loads(lines[0][len("RESULT "):]), "cpu_load": busy}


def ring_seconds(p: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Ring allreduce (reduce-scatter then allgather): 2(p-1) messages of nbytes/p each (Patarasuk & Yuan 2009)."""
    return 2 * (p - 1) * (latency + nbytes / p / bandwidth)


def halving_doubling_seconds(p: int, nbytes: float, bandwidth: float, latency: float) -> float:
    """Recursive halving then doubling (Rabenseifner; MPICH's choice for mid-size messages): 2 log2(p) messages,
    the same 2 (p-1)/p * nbytes on the wire as the ring."""
    return 2 * math.log2(p) * latency + 2 * (p - 1) / p * nbytes / bandwidth


def estimate(c: float, n_params: int, batch: int) -> list[str]:
    """Paper estimate of step time and speed-up on 8 and 64 machines; ``c``: compute seconds per example of one
    whole machine (its best measured configuration, communication excluded)."""
    nbytes = 4 * n_params
    out = [f"Paper estimate. Assumptions: a machine is this one, computing {c * 1e6:,.0f} us per example (its best "
           f"configuration above, MPI time excluded); gradients {n_params:,} float32 = {nbytes / 1e3:,.1f} kB summed "
           f"with one Allreduce per step, as a ring (2(P-1) messages of {nbytes / 1e3:.0f}/P kB) or by recursive "
           f"halving and doubling (2 log2 P messages), whichever is faster, plus {SMALL_ALLREDUCES} latency-bound "
           "Allreduces of a few numbers (2 log2 P messages each); one latency per message: "
           + ", ".join(f"{name} {lat * 1e6:.0f} us" for name, _, lat in LINKS)
           + "; computation and communication do not overlap; no straggler, no I/O wait. The compute time per "
           f"example is the one measured at batch {batch}: a machine with a batch of 1 or 2 examples computes "
           "each more slowly (benchmarks/README: about a third of the speed at batch 1), so the strong-scaling rows "
           "at 64 machines are optimistic. Speed-up: one machine's time for the global batch / the step time.",
           "",
           f"{'link':20} {'P':>3} | {'scaling':28} {'compute ms':>10} {'allreduce ms':>12} {'step ms':>8} "
           f"{'img/s':>9} {'speed-up':>9} {'efficiency':>10}",
           "-" * 124]
    for name, bandwidth, latency in LINKS:
        for p in (8, 64):
            grads = min(ring_seconds(p, nbytes, bandwidth, latency),
                        halving_doubling_seconds(p, nbytes, bandwidth, latency))
            comm = grads + SMALL_ALLREDUCES * 2 * math.log2(p) * latency
            for label, global_batch in ((f"strong: global batch {batch}", batch),
                                        (f"weak: {batch} per machine ({batch * p:,})", batch * p)):
                compute = c * global_batch / p
                step = compute + comm
                speedup = (c * global_batch) / step  # one machine computes the whole batch, without MPI
                out.append(f"{name:20} {p:>3} | {label:28} {compute * 1e3:>10.2f} {comm * 1e3:>12.2f} "
                           f"{step * 1e3:>8.2f} {global_batch / step:>9,.0f} {speedup:>9.1f} {speedup / p:>10.0%}")
    return out


def report(results: list[dict], args) -> None:
    import convnetpy

    one, two = results
    print(f"convnetpy {convnetpy.__version__} data-parallel benchmark: {args.model} ({one['params']:,} parameters), "
          f"global batch {args.batch}, best of {args.rounds} rounds of {args.steps} steps after {args.warmup} "
          "warm-up steps")
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, NumPy {np.__version__}, "
          f"{two['mpi']}")
    print()
    print(f"{'configuration':22} {'img/s':>7} {'step ms':>8} {'MPI ms/step':>14} {'gradient Allreduce ms':>22} "
          f"{'compute us/example':>19} {'preprocess us/ex':>17} {'cpu load':>9}")
    print("-" * 124)
    for r in results:
        mpi_ms = (f"{r['comm_seconds_per_step'] * 1e3:.2f}-{r['comm_seconds_per_step_max'] * 1e3:.2f}"
                  if r["ranks"] > 1 else "-")
        alone = f"{r['allreduce_seconds'] * 1e3:.3f}" if r["ranks"] > 1 else "-"
        name = f"{r['ranks']} rank{'s' * (r['ranks'] > 1)} x {r['threads']} thread{'s' * (r['threads'] > 1)}"
        print(f"{name:22} {r['images_per_second']:>7,.0f} {r['step_seconds'] * 1e3:>8.1f} {mpi_ms:>14} {alone:>22} "
              f"{r['compute_seconds_per_example'] * 1e6:>19,.0f} {r['preprocess_seconds_per_example'] * 1e6:>17,.1f} "
              f"{r['cpu_load']:>6.2f} CPUs")
    print()
    print(f"2 ranks x 1 thread / 1 rank x 2 threads: {two['images_per_second'] / one['images_per_second']:.2f} x the "
          f"images/s. MPI calls take {two['comm_seconds_per_step'] * 1e3:.2f} ms of a {two['step_seconds'] * 1e3:.1f} "
          f"ms step on the slowest rank ({two['comm_seconds_per_step'] / two['step_seconds']:.1%}) and "
          f"{two['comm_seconds_per_step_max'] * 1e3:.2f} ms on the fastest (which waits for it); an Allreduce of the "
          f"{one['params']:,} gradients alone takes {two['allreduce_seconds'] * 1e3:.3f} ms.")
    print()
    machine = min(one["compute_seconds_per_example"], two["compute_seconds_per_example"] / two["ranks"])
    for line in estimate(machine, one["params"], args.batch):
        print(line)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cifar10net")
    parser.add_argument("--batch", type=int, default=64, help="global batch (split over the ranks)")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    best: dict[tuple[int, int], dict] = {}
    for _ in range(args.rounds):
        for ranks, threads in ((1, 2), (2, 1)):
            result = launch(ranks, threads, args)
            key = (ranks, threads)
            if key not in best or result["images_per_second"] > best[key]["images_per_second"]:
                best[key] = result
    report([best[(1, 2)], best[(2, 1)]], args)


if __name__ == "__main__":
    main()
