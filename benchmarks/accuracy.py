"""Test accuracy within a training-time budget on the real datasets, for convnetpy and (optionally) PyTorch.

    python benchmarks/accuracy.py --data-dir ../shared/data                      # all three runs, convnetpy
    python benchmarks/accuracy.py --data-dir ../shared/data --runs lenet5-mnist --framework convnetpy torch
    python benchmarks/accuracy.py --data-dir ../shared/data --runs cifar10net-cifar10 --framework convnetpy torch \
        --until 0.70 --epochs 20 --seeds 0 1 2 3                                 # time to 70%, both engines

Each run trains with a one-cycle learning rate spread over its time budget (SGD with Nesterov momentum,
weight decay, shifts of up to 2 pixels, flips for CIFAR-10), evaluates on the test split after every epoch
and prints: epoch, seconds of training, train loss, test accuracy. The PyTorch twin trains the same
architecture from the same initial weights on the same batches (our preprocessing and augmentation, our
learning-rate schedule), so the two differ only in the engine.

With ``--until``, a run stops once it reaches that test accuracy, and reports the training seconds it took.
A schedule spread over a time budget gives both engines the same learning rate at the same second, so they
cross at about the same second whatever their speed: a faster engine only gets more steps at each rate.
``--epochs N`` spreads it over N epochs instead, so both take the same steps at the same rates and the faster
one gets there sooner. Where a curve crosses depends on its swings from epoch to epoch as well, so ``--seeds``
repeats everything with other initial weights and batches (each seed's the same for both engines) and the
summary gives each engine's median time over the seeds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import convnetpy
from convnetpy.allocator import keep_freed_memory
from convnetpy.checkpoint import save_checkpoint
from convnetpy.data import load_dataset
from convnetpy.models import MODELS
from convnetpy.preprocess import Preprocessor
from convnetpy.train import FitConfig, Trainer, evaluate, schedule_progress, scheduled_lr
from load import LoadMeter


@dataclass
class Run:
    model: str
    dataset: str
    seconds: float  # training-time budget
    target: float  # test accuracy to reach within the budget
    lr: float = 0.05
    batch_size: int = 64
    flip: bool = False
    max_shift: int = 2  # pixels; on top of the random crop when the net's input is smaller than the images


RUNS = {
    "lenet5-mnist": Run("lenet5", "mnist", 300, 0.990),
    # ConvNetJS trained this net on random 24x24 crops of the 28x28 digits (shifts of up to 2 pixels), no more.
    "mnistnet-mnist": Run("mnistnet", "mnist", 900, 0.990, lr=0.02, max_shift=0),
    "cifar10net-cifar10": Run("cifar10net", "cifar10", 1200, 0.75, lr=0.02, flip=True),
}


def config_for(run: Run, scale: float, seed: int = 0, epochs: int | None = None) -> FitConfig:
    """The run's recipe; its learning rate follows its time budget, or ``epochs`` when given."""
    return FitConfig(epochs=epochs, time_limit=None if epochs else run.seconds * scale, batch_size=run.batch_size,
                     optimizer="sgd", lr=run.lr, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
                     augment=True, flip=run.flip, max_shift=run.max_shift, val_fraction=0.0, seed=seed)


def report(epoch: int, seconds: float, train_loss: float, accuracy: float) -> None:
    print(f"{epoch:>5} {seconds:>8.0f} {train_loss:>10.4f} {accuracy:>9.2%}", flush=True)


class Curve:
    """Test accuracy after each epoch; with ``until``, the training seconds at which it first reached it."""

    def __init__(self, until: float | None) -> None:
        self.until, self.points, self.reached = until, [], None

    def add(self, epoch: int, seconds: float, train_loss: float, accuracy: float) -> bool:
        """Record and print one epoch; True when training should stop (``until`` reached)."""
        report(epoch, seconds, train_loss, accuracy)
        self.points.append((epoch, seconds, accuracy))
        if self.until is not None and self.reached is None and accuracy >= self.until:
            self.reached = seconds
        return self.reached is not None


def train_convnetpy(run: Run, config: FitConfig, train, test, curve: Curve, out: Path | None = None) -> float:
    net = convnetpy.Net(MODELS[run.model](), seed=config.seed)
    pre = Preprocessor.fit(train.images, net.input_shape, train.classes, flip=config.flip,
                           max_shift=config.max_shift)

    def on_epoch(event, trainer):
        if event["event"] == "epoch_end":
            acc = evaluate(net, pre, test.images, test.labels)["accuracy"]
            if curve.add(event["epoch"], event["seconds"], event["train_loss"], acc):
                trainer.stop_requested = True

    trainer = Trainer(net, config, pre, callbacks=[on_epoch])
    trainer.fit(train.images, train.labels)
    if curve.reached is not None:
        return curve.points[-1][2]
    acc = evaluate(net, pre, test.images, test.labels)["accuracy"]
    steps = [r for r in trainer.state.history["steps"] if r["epoch"] == trainer.state.epoch]
    loss = float(np.mean([r["loss"] for r in steps])) if steps else float("nan")
    report(trainer.state.epoch + 1, trainer.state.elapsed, loss, acc)
    tta = evaluate(net, pre, test.images, test.labels, tta=True)["accuracy"]
    print(f"test accuracy with test-time augmentation (1-pixel shifted crops, mirrored when training flipped): "
          f"{tta:.2%}")
    if out is not None:
        path = out / f"{run.model}-{run.dataset}.npz"
        save_checkpoint(path, net, trainer.optimizer, trainer.state_dict())
        print(f"saved {path} (convnetpy evaluate {path} --dataset {run.dataset} --tta)")
    return acc


def train_torch(run: Run, config: FitConfig, train, test, curve: Curve) -> float:
    """The same recipe in PyTorch: same initial weights, batches, augmentation and learning rates."""
    import torch

    from twins import torch_twin

    net = convnetpy.Net(MODELS[run.model](), seed=config.seed)
    model = torch_twin(net)
    pre = Preprocessor.fit(train.images, net.input_shape, train.classes, flip=config.flip,
                           max_shift=config.max_shift)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, momentum=config.momentum,
                          nesterov=config.nesterov)
    loss_fn = torch.nn.CrossEntropyLoss()

    @torch.inference_mode()
    def accuracy() -> float:
        model.eval()
        correct = 0
        for i in range(0, len(test), 500):
            x = torch.from_numpy(pre(test.images[i:i + 500]))
            correct += int((model(x).argmax(1).numpy() == test.labels[i:i + 500]).sum())
        model.train()
        return correct / len(test)

    elapsed, epoch, n = 0.0, 0, len(train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    budget = config.time_limit or math.inf
    while elapsed < budget and (config.epochs is None or epoch < config.epochs):
        order = np.random.default_rng([config.seed, epoch]).permutation(n)
        losses = []
        for step in range(steps_per_epoch):
            if elapsed >= budget:
                break
            t0 = time.perf_counter()
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            x = torch.from_numpy(pre(train.images[idx], rng=np.random.default_rng([config.seed, epoch, step])))
            y = torch.from_numpy(train.labels[idx])
            for group in opt.param_groups:
                group["lr"] = scheduled_lr(config, epoch, schedule_progress(
                    config, elapsed, epoch * steps_per_epoch + step, steps_per_epoch))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            elapsed += time.perf_counter() - t0
        epoch += 1
        if curve.add(epoch, elapsed, float(np.mean(losses)) if losses else float("nan"), accuracy()):
            break
    return curve.points[-1][2]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding mnist/ and cifar10/ (../shared/data)")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--framework", nargs="+", default=["convnetpy"], choices=["convnetpy", "torch"])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every time budget (quick checks)")
    parser.add_argument("--out", type=Path, help="save each convnetpy run's checkpoint in this folder")
    parser.add_argument("--until", type=float, help="time to accuracy: stop each run once its test accuracy "
                        "reaches this fraction (e.g. 0.70) and report the training seconds it took")
    parser.add_argument("--epochs", type=int, help="train this many epochs, the learning rate's schedule spread "
                        "over them instead of over the time budget: the same rate at the same step for both "
                        "engines")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="repeat every run with these seeds "
                        "(initial weights, batches, augmentation; the same for both engines)")
    parser.add_argument("--threads", type=int, help="threads for BLAS, convnetpy's kernels and PyTorch "
                        "(default: all CPUs)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="tune malloc as the convnetpy command does (convnetpy.allocator), for both engines")
    args = parser.parse_args(argv)
    if args.keep_freed_memory:
        print(f"malloc keeps freed memory: {keep_freed_memory()}")
    if args.threads:
        from threadpoolctl import threadpool_limits

        from convnetpy.functional.parallel import set_num_threads

        threadpool_limits(args.threads)
        set_num_threads(args.threads)
        if "torch" in args.framework:
            import torch

            torch.set_num_threads(args.threads)

    results = []
    for name in args.runs:
        run = RUNS[name]
        train = load_dataset(run.dataset, "train", data_dir=args.data_dir, download=False)
        test = load_dataset(run.dataset, "test", data_dir=args.data_dir, download=False)
        for seed, framework in itertools.product(args.seeds, args.framework):
            config = config_for(run, args.scale, seed, args.epochs)
            budget = f"{args.epochs} epochs" if args.epochs else f"{config.time_limit:.0f} s budget"
            print(f"\n{name} [{framework}], seed {seed}: {len(train):,} train / {len(test):,} test images, "
                  f"{budget}, target {run.target:.1%}")
            print(f"{'epoch':>5} {'seconds':>8} {'train loss':>10} {'test acc':>9}")
            curve = Curve(args.until)
            meter = LoadMeter().start()
            if framework == "convnetpy":
                acc = train_convnetpy(run, config, train, test, curve, args.out)
            else:
                acc = train_torch(run, config, train, test, curve)
            results.append((name, framework, seed, budget, acc, run.target, meter.busy(), curve))
    print(f"\n{'run':<20} {'framework':<10} {'seed':>4} {'budget':>10} {'test acc':>9} {'target':>7} {'cpu load':>9}")
    for name, framework, seed, budget, acc, target, load, _ in results:
        verdict = "met" if acc >= target else "missed"
        print(f"{name:<20} {framework:<10} {seed:>4} {budget.replace(' budget', ''):>10} {acc:>9.2%} "
              f"{target:>7.1%} {load:>5.2f} CPUs {verdict}")
    if args.until is not None:
        print_time_to_accuracy(results, args.until)


def print_time_to_accuracy(results: list, until: float) -> None:
    """Seconds to ``until`` per run and seed (with the epochs it took), then each engine's median over seeds."""
    print(f"\ntime to {until:.0%} test accuracy (seconds of training, data loading included)")
    times: dict[tuple[str, str], list[float]] = {}
    for name, framework, seed, *_, curve in results:
        took = "not reached"
        if curve.reached is not None:
            times.setdefault((name, framework), []).append(curve.reached)
            took = f"{curve.reached:.0f} s, epoch {curve.points[-1][0]}"
        print(f"{name:<20} {framework:<10} seed {seed:<4} {took}")
    for (name, framework), seconds in times.items():
        print(f"{name:<20} {framework:<10} median {statistics.median(seconds):.0f} s over {len(seconds)} seeds "
              f"that reached it")


if __name__ == "__main__":
    main()
