"""Where a training step's time goes: median milliseconds per layer, forward and backward.

    python benchmarks/layers.py --model cifar10net --batch 64
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import convnetpy
from convnetpy.models import MODELS


def profile(model: str, batch: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    net = convnetpy.Net(MODELS[model](), seed=0)
    x = rng.random((batch, *net.input_shape), dtype=np.float32)
    y = rng.integers(0, net.output_shape[0], batch)
    fwd = [[] for _ in net.layers]
    bwd = [[] for _ in net.layers]
    loss_times = []
    for _ in range(repeats):
        h = x
        for i, layer in enumerate(net.layers):
            t0 = time.perf_counter()
            h = layer.forward(h, training=True)
            fwd[i].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, d = net.loss(h, y)
        loss_times.append(time.perf_counter() - t0)
        for i in range(len(net.layers) - 1, -1, -1):
            t0 = time.perf_counter()
            d = net.layers[i].backward(d, input_grad=i > 0)
            bwd[i].append(time.perf_counter() - t0)
    total_f = total_b = 0.0
    print(f"{model}, batch {batch}: median ms per layer over {repeats} steps")
    print(f"{'#':>2} {'layer':<28} {'forward':>8} {'backward':>9}")
    for i, layer in enumerate(net.layers):
        f, b = statistics.median(fwd[i]) * 1e3, statistics.median(bwd[i]) * 1e3
        total_f, total_b = total_f + f, total_b + b
        print(f"{i:>2} {type(layer).__name__:<28} {f:>8.2f} {b:>9.2f}")
    loss_ms = statistics.median(loss_times) * 1e3
    total = total_f + total_b + loss_ms
    print(f"   {'loss':<28} {loss_ms:>8.2f}")
    print(f"   {'total':<28} {total_f:>8.2f} {total_b:>9.2f}  = {total:.2f} ms/step, "
          f"{batch / total * 1e3:,.0f} images/s (without the optimizer step)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cifar10net", choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    profile(args.model, args.batch, args.repeats)
