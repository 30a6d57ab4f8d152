"""Forward and backward time per example, from the Trainer's own training passes only."""

from __future__ import annotations

import numpy as np

from convnetpy import Net
from convnetpy.net import Net as NetClass
from convnetpy.studio.timing import PassTimer
from studio_helpers import BAR_SPECS


def test_pass_timer_counts_training_passes_and_restores_the_net():
    net = Net(BAR_SPECS, seed=0)
    timer = PassTimer(net)
    x = np.random.default_rng(0).random((5, 1, 12, 12), dtype=np.float32)
    net.forward(x)  # inference: not counted
    assert timer.take() is None
    net.backprop(x, np.array([0, 1, 2, 0, 1]))
    forward_ms, backward_ms = timer.take()
    assert forward_ms > 0 and backward_ms > 0
    assert timer.take() is None  # reset by take
    timer.remove()
    assert "forward" not in net.__dict__ and net.forward.__func__ is NetClass.forward
