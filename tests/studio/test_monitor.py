"""Statistics and pictures at throttled rates: the weight-decay loss, the picture budget, curves from history."""

from __future__ import annotations

import time

import numpy as np
import pytest

from convnetpy import Net
from convnetpy.optim import SGD
from convnetpy.studio.hub import Hub
from convnetpy.studio.monitor import Monitor, decay_loss
from studio_helpers import BAR_SPECS


def test_decay_loss_is_the_penalty_whose_gradient_the_optimizer_adds():
    net = Net(BAR_SPECS, seed=0)
    weights = [p.value for p in net.params() if p.decay]
    expected = 0.5 * 1e-3 * sum(float((w.astype(np.float64) ** 2).sum()) for w in weights)
    assert decay_loss(SGD(net.params(), lr=0.1).params, 1e-3) == pytest.approx(expected, rel=1e-5)
    assert decay_loss(net.params(), 0.0) == 0.0


def test_pictures_wait_longer_when_they_cost_more_than_their_budget(monkeypatch):
    monitor = Monitor(Hub(), viz_interval=0.1, viz_budget=0.05)
    monkeypatch.setattr(monitor, "publish_views", lambda run: time.sleep(0.02))
    now = time.monotonic()
    monitor.publish_views_throttled(None)
    assert monitor._next_views - now >= 0.02 / 0.05  # at most 5% of the time goes to pictures


def test_curves_are_redrawn_from_a_loaded_history():
    steps = [{"epoch": s // 10, "step": s + 1, "loss": 1.0 / (s + 1), "accuracy": 0.5} for s in range(30)]
    epochs = [{"epoch": e + 1, "val_accuracy": 0.1 * (e + 1), "val_loss": 1.0} for e in range(3)]
    monitor = Monitor(Hub())
    monitor.reset({"steps": steps, "epochs": epochs}, batch_size=8)
    loss = [p for p in monitor.points if "loss" in p]
    val = [p for p in monitor.points if "val_acc" in p]
    assert len(loss) == 30 and loss[-1]["x"] == 240
    assert [p["x"] for p in val] == [80, 160, 240] and val[-1]["val_acc"] == pytest.approx(0.3)
