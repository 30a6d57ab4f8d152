"""Trainer events -> the page's statistics, charts, network view and test cards, at throttled rates.

Costs, and why the studio stays within a few percent of ``convnetpy train``'s throughput:

- per step: a few additions (loss, accuracy, examples) and a clock read;
- every ``stats_interval`` seconds (0.5): one small "stats" message, including the weight-decay loss (one dot
  product per parameter array);
- pictures ("network": one example's activations and the conv filters; "tests": a rotating batch of
  ``ROLL`` test images with top-3 cards, a rolling accuracy, confusion matrix and most confused examples) only
  while a tab is watching, at most every ``viz_interval`` seconds, and never more often than keeps their
  measured cost under ``viz_budget`` (5%) of the time: a big net or a slow machine just refreshes less often.

Everything runs in the trainer thread, between steps.
"""

from __future__ import annotations

import time

import numpy as np

from ..train import predict_log_proba
from . import views

ROLL = 100  # test images predicted per picture refresh
CARDS = 12  # of which shown as cards
WINDOW = 500  # recent predictions the confusion matrix and the most confused examples come from (5 refreshes)
RECENT = 200  # recent predictions the rolling test accuracy comes from: 2 refreshes, so it lags training little
MAX_POINTS = 4000  # chart points kept for a tab that opens later; older loss points are thinned beyond that


class Monitor:
    """Collects step results and publishes "stats", "network" and "tests" messages to ``hub``."""

    def __init__(self, hub, stats_interval: float = 0.5, viz_interval: float = 1.0, viz_budget: float = 0.05):
        self.hub = hub
        self.stats_interval, self.viz_interval, self.viz_budget = stats_interval, viz_interval, viz_budget
        self.timer = None  # a PassTimer while a run trains
        self.reset()

    def reset(self, history: dict | None = None, batch_size: int = 1) -> None:
        """Forget the previous run's charts; with ``history`` (a loaded checkpoint's), redraw its curves."""
        self.points: list[dict] = []
        self.marks: list[dict] = []
        self._new_points: list[dict] = []
        self._new_marks: list[dict] = []
        self.last_stats: dict = {}
        self._val: dict = {}
        self._roll_cursor = 0
        self._window = {k: np.zeros(0, dtype) for k, dtype in
                        (("index", np.int64), ("true", np.int64), ("pred", np.int64), ("p", np.float64))}
        self._restart_counters(0)
        self._next_views = 0.0
        if history:
            self._points_from_history(history, batch_size)

    def _restart_counters(self, examples_seen: int) -> None:
        self._loss = self._acc = 0.0
        self._steps = 0
        self._seen_at = examples_seen
        self._time_at = time.monotonic()
        self._paused = 0.0
        self._next_stats = self._time_at + self.stats_interval

    def _points_from_history(self, history: dict, batch_size: int) -> None:
        """Chart points from a checkpoint's history: step records averaged into at most 400 points (x: examples,
        approximated as steps times the batch size), and each epoch's validation accuracy."""
        steps = history.get("steps", [])
        chunk = max(1, len(steps) // 400)
        for i in range(0, len(steps), chunk):
            part = steps[i:i + chunk]
            self._add_point({"x": part[-1]["step"] * batch_size, "loss": float(np.mean([r["loss"] for r in part])),
                             "train_acc": float(np.mean([r["accuracy"] for r in part]))})
        for e in history.get("epochs", []):
            if "val_accuracy" in e:
                x = sum(1 for r in steps if r["epoch"] < e["epoch"]) * batch_size
                self._add_point({"x": x, "val_acc": e["val_accuracy"]})
                self._val = {"val_accuracy": e["val_accuracy"], "val_loss": e.get("val_loss")}
        self._new_points = []

    # -- events ----------------------------------------------------------------------------------------
    def on_event(self, event: dict, trainer, run, state: str) -> None:
        kind = event["event"]
        if kind == "step":
            self._loss += event["loss"]
            self._acc += event["accuracy"]
            self._steps += 1
            now = time.monotonic()
            if now >= self._next_stats:
                self.publish_stats(trainer, state)
            if self.hub.watching and now >= self._next_views:
                self.publish_views_throttled(run)
        elif kind == "epoch_end" and "val_accuracy" in event:
            self._val = {"val_accuracy": event["val_accuracy"], "val_loss": event["val_loss"]}
            self._add_point({"x": trainer.state.examples_seen, "val_acc": event["val_accuracy"]})
            self.publish_stats(trainer, state)
        elif kind == "fit_start":
            self._restart_counters(trainer.state.examples_seen)

    def paused_for(self, seconds: float) -> None:
        """Time spent paused is left out of images/second."""
        self._paused += seconds

    def mark(self, x: int, label: str) -> None:
        """A live setting changed at ``x`` examples: a vertical line on the loss chart."""
        mark = {"x": int(x), "label": label}
        self.marks.append(mark)
        self._new_marks.append(mark)

    def _add_point(self, point: dict) -> None:
        self.points.append(point)
        self._new_points.append(point)
        if len(self.points) > MAX_POINTS:  # thin the older half's loss points: the curve keeps its shape
            half = len(self.points) // 2
            old = [p for i, p in enumerate(self.points[:half]) if "loss" not in p or i % 2 == 0]
            self.points = old + self.points[half:]

    # -- statistics -------------------------------------------------------------------------------------
    def publish_stats(self, trainer, state: str) -> None:
        """Numbers since the last message, and the new chart points."""
        s, c = trainer.state, trainer.config
        now = time.monotonic()
        wall = now - self._time_at - self._paused
        stats = {"state": state, "epoch": s.epoch, "epochs": c.epochs, "examples_seen": s.examples_seen,
                 "step": s.global_step, "elapsed": s.elapsed, "optimizer": c.optimizer, "lr": c.lr,
                 "momentum": c.momentum, "batch_size": c.batch_size, "weight_decay": c.weight_decay,
                 "decay_loss": decay_loss(trainer.optimizer.params, c.weight_decay), **self._val,
                 "test_accuracy": self.last_stats.get("test_accuracy")}
        if self._steps:
            stats.update(loss=self._loss / self._steps, train_accuracy=self._acc / self._steps)
            stats["total_loss"] = stats["loss"] + stats["decay_loss"]
            if wall > 0:
                stats["images_per_second"] = (s.examples_seen - self._seen_at) / wall
            self._add_point({"x": s.examples_seen, "loss": stats["loss"], "train_acc": stats["train_accuracy"]})
        else:
            keep = ("loss", "train_accuracy", "total_loss", "images_per_second", "forward_ms", "backward_ms")
            stats.update({k: self.last_stats[k] for k in keep if k in self.last_stats})
        times = self.timer.take() if self.timer is not None else None
        if times is not None:
            stats["forward_ms"], stats["backward_ms"] = times
        self.last_stats = stats
        self.hub.publish({"type": "stats", **stats, "points": self._new_points, "marks": self._new_marks})
        self._new_points, self._new_marks = [], []
        self._restart_counters(s.examples_seen)

    # -- pictures ---------------------------------------------------------------------------------------
    def publish_views_throttled(self, run) -> None:
        t0 = time.perf_counter()
        self.publish_views(run)
        cost = time.perf_counter() - t0
        self._next_views = time.monotonic() + max(self.viz_interval, cost / self.viz_budget)

    def publish_views(self, run) -> None:
        """The "network" and "tests" messages for ``run`` (a Session's Run)."""
        self.publish_network(run)
        self.publish_tests(run)

    def publish_network(self, run) -> None:
        images, labels = run.test_images, run.test_labels
        i = min(run.example, len(images) - 1)
        view = views.network_view(run.net, run.pre, images[i], labels[i], run.classes)
        self.hub.publish({"type": "network", "example": int(i), "source": run.test_name, **view})

    def publish_tests(self, run) -> None:
        images, labels, k = run.test_images, run.test_labels, len(run.classes)
        n = len(images)
        idx = (self._roll_cursor + np.arange(min(ROLL, n))) % n  # (ROLL,) the next test images, cyclically
        self._roll_cursor = int((self._roll_cursor + len(idx)) % n)
        probs = np.exp(predict_log_proba(run.net, run.pre, images[idx]))  # (ROLL, K)
        pred = probs.argmax(axis=1)
        new = {"index": idx, "true": labels[idx], "pred": pred, "p": probs[np.arange(len(idx)), pred]}
        w = self._window = {key: np.concatenate([self._window[key], new[key]])[-WINDOW:] for key in new}
        accuracy = float((w["true"][-RECENT:] == w["pred"][-RECENT:]).mean())
        self.last_stats["test_accuracy"] = accuracy
        if run.trainer is not None:
            self._add_point({"x": run.trainer.state.examples_seen, "test_acc": accuracy})
        worst = views.most_confused(w["true"], w["pred"], w["p"], w["index"])
        confused = [{"index": int(w["index"][j]), "image": views.encode_example(images[w["index"][j]]),
                     "label": int(w["true"][j]), "pred": int(w["pred"][j]), "p": float(w["p"][j])} for j in worst]
        self.hub.publish({"type": "tests", "source": run.test_name, "classes": run.classes,
                          "cards": views.test_cards(images, labels, idx[:CARDS], probs[:CARDS], run.classes),
                          "accuracy": accuracy, "recent": min(RECENT, len(w["true"])), "window": len(w["true"]),
                          "confusion": views.confusion(w["true"], w["pred"], k), "confused": confused})


def decay_loss(params, weight_decay: float) -> float:
    """The L2 penalty the optimizer's decay adds: weight_decay / 2 * sum of decay_mul * ||w||^2 (its gradient is the
    ``weight_decay * decay_mul * w`` the optimizers add; ConvNetJS's "L2 weight decay loss")."""
    if not weight_decay:
        return 0.0
    total = 0.0
    for p in params:
        if p.decay:
            v = p.value.ravel()
            total += p.decay * float(np.dot(v, v))
    return 0.5 * weight_decay * total
