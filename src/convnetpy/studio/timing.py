"""Forward and backward time per example, as ConvNetJS's demo page showed them, measured on the Trainer's own steps.

The Trainer times whole steps; the studio wants the two passes apart. ``PassTimer`` wraps one Net's ``forward``
and ``backward`` on the instance (the class is untouched, and ``remove`` restores it): two ``perf_counter``
calls per pass, about a microsecond per step. Only training passes (``training=True``) are counted, so the
studio's own inference passes (test cards, the network view) do not blur the numbers.
"""

from __future__ import annotations

import threading
import time


class PassTimer:
    """Seconds spent in training forward and backward passes of ``net`` and the examples they saw."""

    def __init__(self, net) -> None:
        self.net = net
        self._lock = threading.Lock()
        self.forward_seconds = self.backward_seconds = 0.0
        self.examples = 0
        forward, backward = net.forward, net.backward

        def timed_forward(x, training=False):
            if not training:
                return forward(x, training)
            t0 = time.perf_counter()
            out = forward(x, training)
            with self._lock:
                self.forward_seconds += time.perf_counter() - t0
                self.examples += len(x)
            return out

        def timed_backward(dscores, *args, **kwargs):
            t0 = time.perf_counter()
            out = backward(dscores, *args, **kwargs)
            with self._lock:
                self.backward_seconds += time.perf_counter() - t0
            return out

        net.forward, net.backward = timed_forward, timed_backward

    def take(self) -> tuple[float, float] | None:
        """(forward, backward) milliseconds per example since the last call, or None if no step ran."""
        with self._lock:
            n, f, b = self.examples, self.forward_seconds, self.backward_seconds
            self.forward_seconds = self.backward_seconds = 0.0
            self.examples = 0
        return (1000 * f / n, 1000 * b / n) if n else None

    def remove(self) -> None:
        """Put the net's own methods back."""
        for name in ("forward", "backward"):
            self.net.__dict__.pop(name, None)
