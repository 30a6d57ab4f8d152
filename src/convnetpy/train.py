"""Trainer: fit a net on uint8 images with mini-batch SGD (or Adam...), validate, evaluate, predict top-k.

Progress is reported as plain-dict events to callbacks (``fit_start``, ``step``, ``epoch_end``, ``fit_end``);
the progress bar, the checkpoint writer, the history writer and the studio are all callbacks. Batch order and
augmentation come from generators seeded with (seed, epoch, step), so a resumed run sees exactly the batches
an uninterrupted one would have seen.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import ConvnetpyError
from .losses import log_softmax
from .optim import OPTIMIZERS
from .preprocess import Preprocessor


class TrainingDiverged(ConvnetpyError):
    """The loss became NaN or infinite; the run stops and the last good checkpoint is kept."""


@dataclass
class FitConfig:
    """Hyperparameters of a run (saved in checkpoints, so a resume continues with the same ones)."""

    epochs: int | None = 10
    time_limit: float | None = None  # seconds of training; stops after the step that crosses it
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "constant"  # constant | step | cosine | onecycle
    step_epochs: int = 10  # "step": multiply lr by step_gamma every step_epochs epochs
    step_gamma: float = 0.1
    augment: bool = False  # random flips (when flip) and shifts up to max_shift pixels, zero-padded
    flip: bool = True
    max_shift: int = 2
    val_fraction: float = 0.1  # held out of the training set for validation each epoch
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in ("constant", "step", "cosine", "onecycle"):
            raise ValueError(f"schedule must be constant, step, cosine or onecycle, got {self.schedule!r}")
        if self.epochs is None and self.time_limit is None:
            raise ValueError("give epochs, time_limit or both")
        if self.batch_size < 1 or self.lr <= 0 or not 0 <= self.val_fraction < 1:
            raise ValueError("batch_size must be >= 1, lr > 0 and val_fraction in [0, 1)")


def make_optimizer(net, config: FitConfig):
    """The optimizer named by ``config`` on ``net.params()``."""
    cls = OPTIMIZERS[config.optimizer]
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        kwargs.update(momentum=config.momentum, nesterov=config.nesterov)
    return cls(net.params(), **kwargs)


def schedule_progress(config: FitConfig, elapsed: float, step: int, steps_per_epoch: int) -> float:
    """How far a run is through its learning-rate schedule: ``elapsed`` seconds of ``config.time_limit`` or
    ``step`` steps of ``config.epochs``, whichever is further along (0 for a limit not set)."""
    by_time = elapsed / config.time_limit if config.time_limit else 0.0
    by_steps = step / (config.epochs * steps_per_epoch) if config.epochs else 0.0
    return max(by_time, by_steps)


def scheduled_lr(config: FitConfig, epoch: int, progress: float) -> float:
    """Learning rate for ``epoch`` at ``progress`` (0..1 of the whole run, by steps or by time).

    one-cycle follows torch.optim.lr_scheduler.OneCycleLR's defaults (Smith & Topin 2017): from lr/25 up to
    lr over the first 30%, then cosine down to lr/25e4.
    """
    base, t = config.lr, min(max(progress, 0.0), 1.0)
    if config.schedule == "step":
        return base * config.step_gamma ** (epoch // config.step_epochs)
    if config.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t))
    if config.schedule == "onecycle":
        lo, end, warm = base / 25, base / 25e4, 0.3
        if t < warm:
            return lo + (base - lo) * 0.5 * (1 - math.cos(math.pi * t / warm))
        return end + (base - end) * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))
    return base


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): a seeded random hold-out of ``fraction`` of n examples."""
    order = np.random.default_rng([seed, 7]).permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class TrainerState:
    """Where a run is: saved in checkpoints and restored on resume."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed inside the current epoch
    global_step: int = 0
    examples_seen: int = 0
    elapsed: float = 0.0  # seconds of training so far (for time limits and time-based schedules)
    history: dict = field(default_factory=lambda: {"epochs": [], "steps": []})
    finished: bool = False


class Trainer:
    """Fits ``net`` on (images uint8 (N, C, H, W) or signals float32 (N, C, L), labels (N,)) with ``config``;
    reports to ``callbacks``.

    A callback is any callable taking (event: dict, trainer). ``state`` can be restored from a checkpoint
    (see ``Trainer.resume``) to continue a run exactly. ``parallel`` (a ``convnetpy.distributed.DataParallel``)
    trains data-parallel over MPI ranks: each rank computes its share of every batch, with the same result.
    """

    def __init__(self, net, config: FitConfig, preprocessor: Preprocessor, callbacks=(), optimizer=None,
                 state: TrainerState | None = None, parallel=None) -> None:
        self.net, self.config, self.pre = net, config, preprocessor
        self.parallel = parallel
        self.optimizer = optimizer if optimizer is not None else make_optimizer(net, config)
        self.callbacks = list(callbacks)
        self.state = state if state is not None else TrainerState()
        self.stop_requested = False  # set by a callback (or the studio) to stop after the current step
        self.extra: dict = {}  # JSON-serialisable facts saved with checkpoints (dataset name, image shape)
        self._interrupt_pending = False

    def emit(self, event: dict) -> None:
        for callback in self.callbacks:
            callback(event, self)

    def state_dict(self) -> dict:
        """JSON-serialisable: config, position, history and preprocessing; the checkpoint writer saves it."""
        return {**self.extra, "config": asdict(self.config), "state": asdict(self.state),
                "preprocess": self.pre.to_dict()}

    # -- training ------------------------------------------------------------------------------------
    def _done(self, steps_per_epoch: int) -> str | None:
        c, s = self.config, self.state
        if c.epochs is not None and s.epoch >= c.epochs:
            return "epochs"
        if c.time_limit is not None and s.elapsed >= c.time_limit:
            return "time_limit"
        return None

    def fit(self, images: np.ndarray, labels: np.ndarray, val_images: np.ndarray | None = None,
            val_labels: np.ndarray | None = None) -> dict:
        """Train until ``config.epochs`` or ``config.time_limit``; returns the history.

        Without ``val_images``, ``config.val_fraction`` of the training set is held out for validation.
        Ctrl-C ends the run after emitting a ``fit_end`` event with reason ``interrupted`` (the checkpoint
        callback saves then) and re-raises KeyboardInterrupt. A NaN or infinite loss or parameter raises
        TrainingDiverged after a ``fit_end`` event with reason ``diverged`` (the checkpoint callback skips it).
        """
        c, s = self.config, self.state
        labels = np.asarray(labels, dtype=np.int64)
        if val_images is None and c.val_fraction > 0:
            train_idx, val_idx = split_validation(len(images), c.val_fraction, c.seed)
            val_images, val_labels = images[val_idx], labels[val_idx]
            images, labels = images[train_idx], labels[train_idx]
        n = len(images)
        steps_per_epoch = math.ceil(n / c.batch_size)
        self.emit({"event": "fit_start", "n_train": n, "n_val": 0 if val_images is None else len(val_images),
                   "steps_per_epoch": steps_per_epoch, "epoch": s.epoch, "config": asdict(c)})
        # Data-parallel: the ranks check they run alike and take rank 0's weights, optimizer state and position.
        joined = self.parallel.attach(self, labels) if self.parallel is not None else contextlib.nullcontext()
        try:
            with self._ctrl_c_between_steps(), joined:
                reason = self._loop(images, labels, val_images, val_labels, steps_per_epoch)
        except KeyboardInterrupt:
            self.emit({"event": "fit_end", "reason": "interrupted", "epoch": s.epoch, "step": s.step})
            raise
        except TrainingDiverged:  # callbacks close up (the progress bar); the checkpoint writer saves nothing
            self.emit({"event": "fit_end", "reason": "diverged", "epoch": s.epoch, "step": s.step})
            raise
        s.finished = reason in ("epochs", "time_limit")
        self.emit({"event": "fit_end", "reason": reason, "epoch": s.epoch, "step": s.step})
        return s.history

    def _loop(self, images, labels, val_images, val_labels, steps_per_epoch: int) -> str:
        """Epochs until done; returns why it ended."""
        s = self.state
        while True:
            _, stop = self._flags(check_weights=True)
            reason = self._done(steps_per_epoch) or ("stopped" if stop else None)
            if reason:
                return reason
            self._run_epoch(images, labels, steps_per_epoch)
            if s.step == steps_per_epoch:  # else it stopped inside the epoch: time limit or stop request
                self._end_epoch(val_images, val_labels)

    def _flags(self, check_weights: bool = False) -> tuple[bool, bool]:
        """(interrupt, stop): a pending Ctrl-C and a stop request. Data-parallel, as all ranks agree on them (and on
        the elapsed time): a rank acting alone would leave the others waiting for it forever."""
        if self.parallel is None:
            return self._interrupt_pending, self.stop_requested
        return self.parallel.agree(self, self._interrupt_pending, self.stop_requested, check_weights)

    @contextlib.contextmanager
    def _ctrl_c_between_steps(self):
        """Hold a first Ctrl-C until the current step is complete, so a checkpoint never holds a half-applied
        update; a second Ctrl-C interrupts at once. (Signal handlers exist only in the main thread.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._interrupt_pending:
                raise KeyboardInterrupt
            self._interrupt_pending = True

        self._interrupt_pending = False
        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            self._interrupt_pending = False

    def _run_epoch(self, images, labels, steps_per_epoch: int) -> None:
        c, s = self.config, self.state
        order = np.random.default_rng([c.seed, s.epoch]).permutation(len(images))
        while s.step < steps_per_epoch:
            interrupt, stop = self._flags()
            if interrupt:
                raise KeyboardInterrupt  # at a step boundary: weights, optimizer and position agree
            if (c.time_limit is not None and s.elapsed >= c.time_limit) or stop:
                return
            t0 = time.perf_counter()
            idx = order[s.step * c.batch_size:(s.step + 1) * c.batch_size]
            rng = np.random.default_rng([c.seed, s.epoch, s.step]) if c.augment else None
            mine = idx
            if self.parallel is not None:  # this rank's rows of the batch, augmented as by one process
                mine, rng = self.parallel.shard(idx, rng)
            x = self.pre(images[mine], rng=rng)
            y = labels[mine]
            lr = scheduled_lr(c, s.epoch, schedule_progress(c, s.elapsed, s.global_step, steps_per_epoch))
            self.optimizer.lr = lr
            # Overflow is reported below as TrainingDiverged, one clear error instead of NumPy warnings before it.
            with np.errstate(over="ignore", invalid="ignore"):
                if self.parallel is None:  # one call: a sharded batch's threads meet once per step (Net.train_step)
                    loss, scores = self.net.train_step(x, y)
                else:
                    scores = self.net.forward(x, training=True)
                    loss, dscores = self.net.loss(scores, y)
                hits = int((scores.argmax(axis=1) == y).sum())
                if self.parallel is not None:  # the whole batch's loss and hits; dscores scaled to this share
                    loss, hits = self.parallel.combine_loss(loss, dscores, hits)
                if not math.isfinite(loss):  # before the optimizer step: the weights stay as they were
                    raise TrainingDiverged(
                        f"the loss became {loss} at epoch {s.epoch + 1}, step {s.step + 1} (lr {lr:g}): training "
                        "stopped; lower the learning rate. The last good checkpoint is kept.")
                if self.parallel is not None:
                    self.net.backward(dscores)
                    self.parallel.allreduce_grads()  # the shares' sum over ranks: the whole batch's gradient
                self.optimizer.step()
            # An overflowing update can leave the loss finite until the next step; catch it before any checkpoint.
            bad = next((p.name for p in self.optimizer.params if not np.isfinite(p.value).all()), None)
            if bad is not None:
                raise TrainingDiverged(
                    f"parameter {bad} became NaN or infinite at epoch {s.epoch + 1}, step {s.step + 1} (lr {lr:g}): "
                    "training stopped; lower the learning rate. The last good checkpoint is kept.")
            seconds = time.perf_counter() - t0
            s.step += 1
            s.global_step += 1
            s.examples_seen += len(idx)
            s.elapsed += seconds
            accuracy = hits / len(idx)
            record = {"epoch": s.epoch, "step": s.global_step, "loss": loss, "accuracy": accuracy, "lr": lr,
                      "images_per_second": len(idx) / max(seconds, 1e-9)}
            s.history["steps"].append(record)
            self.emit({"event": "step", **record, "epoch_step": s.step, "steps_per_epoch": steps_per_epoch,
                       "examples_seen": s.examples_seen, "elapsed": s.elapsed, "batch_size": len(idx)})

    def _end_epoch(self, val_images, val_labels) -> None:
        s = self.state
        steps = [r for r in s.history["steps"] if r["epoch"] == s.epoch]
        record = {"epoch": s.epoch + 1, "seconds": s.elapsed,
                  "train_loss": float(np.mean([r["loss"] for r in steps])) if steps else float("nan"),
                  "train_accuracy": float(np.mean([r["accuracy"] for r in steps])) if steps else float("nan")}
        if val_images is not None and len(val_images):
            result = self.evaluate(val_images, val_labels)
            record.update(val_loss=result["loss"], val_accuracy=result["accuracy"])
        s.epoch += 1
        s.step = 0
        s.history["epochs"].append(record)
        self.emit({"event": "epoch_end", **record})

    # -- evaluation ----------------------------------------------------------------------------------
    def predict_log_proba(self, images: np.ndarray, batch_size: int = 500, tta: bool = False) -> np.ndarray:
        """Log-probabilities (N, K) for uint8 images; ``tta`` averages flipped and shifted copies (ConvNetJS)."""
        return predict_log_proba(self.net, self.pre, images, batch_size, tta)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 500, tta: bool = False) -> dict:
        if self.parallel is not None:  # each rank evaluates its share; the counts are summed
            return self.parallel.evaluate(self.net, self.pre, images, labels, batch_size, tta)
        return evaluate(self.net, self.pre, images, labels, batch_size, tta)


def predict_log_proba(net, pre: Preprocessor, images: np.ndarray, batch_size: int = 500,
                      tta: bool = False) -> np.ndarray:
    """Log-probabilities (N, K) of a softmax net for uint8 images (N, C, H, W), batch by batch.

    ``tta``: average the probabilities over the preprocessor's test-time views (``Preprocessor.tta_views``).
    """
    out = []
    for i in range(0, len(images), batch_size):
        batch = images[i:i + batch_size]
        if tta and len(pre.input_shape) == 3:  # images: average the probabilities of the views
            probs = np.mean([np.exp(log_softmax(net.forward(v))) for v in pre.tta_views(batch)], axis=0)
            out.append(np.log(np.maximum(probs, 1e-30)))
        else:
            out.append(log_softmax(net.forward(pre(batch))))
    return np.concatenate(out) if out else np.zeros((0, net.output_shape[0]), np.float32)


def evaluate(net, pre: Preprocessor, images: np.ndarray, labels: np.ndarray, batch_size: int = 500,
             tta: bool = False) -> dict:
    """accuracy, mean cross-entropy loss, n, and the confusion matrix (rows: true class, columns: predicted)."""
    labels = np.asarray(labels, dtype=np.int64)
    k = net.output_shape[0]
    if len(labels) and (labels.min() < 0 or labels.max() >= k):  # else the confusion matrix fails obscurely
        raise ValueError(f"labels go from {labels.min()} to {labels.max()}, but the net has {k} classes "
                         f"(0 to {k - 1}): evaluate it on the kind of data it was trained on")
    logp = predict_log_proba(net, pre, images, batch_size, tta)
    pred = logp.argmax(axis=1)
    confusion = np.bincount(labels * k + pred, minlength=k * k).reshape(k, k)
    n = len(labels)
    return {"accuracy": float((pred == labels).mean()) if n else float("nan"),
            "loss": float(-logp[np.arange(n), labels].mean()) if n else float("nan"), "n": int(n),
            "confusion": confusion.tolist()}


def top_k(net, pre: Preprocessor, images: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """For each image, the k most likely (class index, probability) pairs, most likely first."""
    probs = np.exp(predict_log_proba(net, pre, images))
    best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(c), float(p[c])) for c in row] for p, row in zip(probs, best)]
