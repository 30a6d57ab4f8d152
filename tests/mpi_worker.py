"""Run by ``mpiexec -n K python tests/mpi_worker.py OUT`` from test_distributed.py: data-parallel training runs whose
results every rank writes to OUT, for the tests to compare with one process doing the same.

One launch does everything (each launch costs every rank a Python start and the NumPy import):

- every case of ``CASES`` trained for two epochs: ``{case}-rank{r}.npz`` (weights, optimizer state, history);
- a run stopped at global step ``STOP_AT`` by a callback on rank 0 alone, checkpointed by rank 0: ``stopped-{K}.npz``;
- the run ``stopped-1.npz`` (written by one process, if present) resumed to the end: ``resumed-rank{r}.npz``;
- a Ctrl-C (a real SIGINT) on rank 1 alone after step ``SIGINT_AT``: ``interrupted-rank{r}.json``, and rank 0's
  checkpoint ``interrupted.npz``;
- a sharded evaluation: ``evaluation-rank{r}.json``.

``mpi_worker.py cli FAULT RANK STEP ARGV...`` instead runs ``convnetpy ARGV`` with a failure injected on one rank.
A worker that fails prints its traceback and aborts the job (so the launch never hangs).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from convnetpy import Net  # noqa: E402
from convnetpy.callbacks import CheckpointWriter  # noqa: E402
from convnetpy.checkpoint import load_checkpoint  # noqa: E402
from convnetpy.preprocess import Preprocessor  # noqa: E402
from convnetpy.train import FitConfig, Trainer, TrainerState, make_optimizer  # noqa: E402
from train_helpers import CLASSES, SPECS, synthetic  # noqa: E402

# Conv, BatchNorm2D, ReLU, pool, then fc with BatchNorm1D and dropout: every layer that looks across the batch.
BN_SPECS = [
    {"type": "input", "shape": [1, 12, 12]},
    {"type": "conv", "filters": 4, "size": 3, "pad": 1},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "pool", "size": 2},
    {"type": "fc", "neurons": 16},
    {"type": "batchnorm"},
    {"type": "relu"},
    {"type": "dropout", "p": 0.2},
    {"type": "softmax", "classes": 3},
]
# 179 images, 10% held out -> 161 training images in batches of 16: 11 steps per epoch, the last of ONE image, so
# with 2 or 3 ranks some shards of that step are empty. BatchNorm needs two examples: 180 images leave a last batch
# of two, one shard of three empty.
STOP_AT, SIGINT_AT = 7, 5
BASE = {"epochs": 2, "batch_size": 16, "lr": 0.05, "augment": True, "seed": 3, "weight_decay": 5e-4}
CASES = {
    # name: (specs, dtype, number of images, config changes)
    "sgd-float64": (SPECS, np.float64, 179, {"momentum": 0.0}),
    "momentum-float64-batchnorm": (BN_SPECS, np.float64, 180, {"momentum": 0.9, "nesterov": True}),
    "sgd-float32-batchnorm": (BN_SPECS, np.float32, 180, {"momentum": 0.0}),
    "momentum-float32": (SPECS, np.float32, 179, {"momentum": 0.9}),
}
RESUME_CASE = "momentum-float64-batchnorm"


def data(case: str = RESUME_CASE) -> tuple[np.ndarray, np.ndarray]:
    return synthetic(CASES[case][2], seed=0)


def build(case: str, callbacks=(), parallel=None) -> Trainer:
    """A fresh Trainer for ``case`` (the same on every rank and in the single-process reference)."""
    specs, dtype, _, changes = CASES[case]
    config = FitConfig(**{**BASE, **changes})
    net = Net(specs, seed=0, dtype=dtype)
    images = data(case)[0]
    pre = Preprocessor.fit(images, net.input_shape, CLASSES, flip=config.flip, max_shift=config.max_shift)
    return Trainer(net, config, pre, callbacks=callbacks, parallel=parallel)


def resume(path, callbacks=(), parallel=None) -> Trainer:
    """A Trainer continuing the checkpoint at ``path`` (as ``convnetpy train --resume`` builds it)."""
    net, opt_state, saved = load_checkpoint(path)
    config = FitConfig(**saved["config"])
    optimizer = make_optimizer(net, config)
    optimizer.load_state_dict(opt_state)
    return Trainer(net, config, Preprocessor.from_dict(saved["preprocess"]), callbacks=callbacks, optimizer=optimizer,
                   state=TrainerState(**saved["state"]), parallel=parallel)


def save_run(path, trainer: Trainer) -> None:
    """Weights, buffers, optimizer state and the history (without wall-clock figures) of a finished run."""
    steps, epochs = trainer.state.history["steps"], trainer.state.history["epochs"]
    history = {"steps": [{k: v for k, v in r.items() if k != "images_per_second"} for r in steps],
               "epochs": [{k: v for k, v in r.items() if k != "seconds"} for r in epochs]}
    opt = trainer.optimizer.state_dict()
    np.savez(path, **trainer.net.state_dict(), **{f"optim/{k}": v for k, v in opt["arrays"].items()},
             steps=opt["steps"], history=json.dumps(history), global_step=trainer.state.global_step)


class StopAt:
    """Requests a stop after global step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, event, trainer) -> None:
        if event["event"] == "step" and event["step"] == self.at:
            trainer.stop_requested = True


class SigintAt:
    """Sends this process a real SIGINT (Ctrl-C) after global step ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self, event, trainer) -> None:
        if event["event"] == "step" and event["step"] == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def run(out: Path) -> None:
    from convnetpy import distributed
    from convnetpy.functional.parallel import set_num_threads

    set_num_threads(1)  # K ranks share two cores
    mpi = distributed.world()
    assert mpi is not None, "run me under mpiexec -n K with K > 1"
    r, k = mpi.rank, mpi.size
    for case in CASES:
        trainer = build(case, parallel=distributed.DataParallel(mpi))
        trainer.fit(*data(case))
        save_run(out / f"{case}-rank{r}.npz", trainer)

    images, labels = data(RESUME_CASE)

    rank0 = [StopAt(STOP_AT), CheckpointWriter(out / f"stopped-{k}.npz")] if r == 0 else []
    build(RESUME_CASE, callbacks=rank0, parallel=distributed.DataParallel(mpi)).fit(images, labels)

    if (out / "stopped-1.npz").exists():
        trainer = resume(out / "stopped-1.npz", parallel=distributed.DataParallel(mpi))
        trainer.fit(images, labels)
        save_run(out / f"resumed-rank{r}.npz", trainer)

    callbacks = [SigintAt(SIGINT_AT)] if r == 1 else []
    callbacks += [CheckpointWriter(out / "interrupted.npz")] if r == 0 else []
    trainer = build(RESUME_CASE, callbacks=callbacks, parallel=distributed.DataParallel(mpi))
    try:
        trainer.fit(images, labels)
        interrupted = False
    except KeyboardInterrupt:
        interrupted = True
    (out / f"interrupted-rank{r}.json").write_text(json.dumps({"interrupted": interrupted,
                                                                "global_step": trainer.state.global_step}))

    net = Net(SPECS, seed=1)
    pre = Preprocessor.fit(images, net.input_shape, CLASSES)
    test_images, test_labels = synthetic(61, seed=4)
    result = distributed.evaluate(mpi, net, pre, test_images, test_labels, batch_size=7)
    (out / f"evaluation-rank{r}.json").write_text(json.dumps(result))


def cli_with_fault(fault: str, rank: int, step: int, argv: list[str]) -> int:
    """``convnetpy ARGV`` where rank ``rank`` fails after global step ``step``: ``raise`` (a RuntimeError),
    ``oserror`` (an error the command line handles: this rank alone fails cleanly) or ``kill`` (SIGKILL)."""
    from convnetpy import cli, distributed

    mpi = distributed.world()
    mpi.end_timeout = 2.0  # how long a cleanly failing rank waits for the others before aborting the job
    emit = Trainer.emit

    def faulty_emit(trainer, event):
        emit(trainer, event)
        if mpi.rank == rank and event["event"] == "step" and event["step"] == step:
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == "oserror":
                raise OSError(f"injected disk failure after step {step}")
            raise RuntimeError(f"injected failure after step {step}")

    Trainer.emit = faulty_emit
    return cli.main(argv)


def main() -> None:
    from convnetpy import distributed

    if sys.argv[1] == "cli":  # cli FAULT RANK STEP ARGV...: the command line itself, failing on purpose
        sys.exit(cli_with_fault(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]))
    try:
        run(Path(sys.argv[1]))
    except BaseException:
        traceback.print_exc()
        mpi = distributed.world()
        if mpi is not None:
            print(f"mpi_worker: {mpi.where} failed", file=sys.stderr)
            mpi.abort(1)
        raise


if __name__ == "__main__":
    main()
