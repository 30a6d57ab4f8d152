"""Messages from the trainer thread to every watching browser tab, across threads.

The trainer thread calls ``publish`` with a dict; it is encoded to JSON once, there (so the cost is counted
in the studio's throttled budget, not paid again per tab on the server's event loop), and handed to each tab's
asyncio queue with ``call_soon_threadsafe``. A tab that falls behind loses its oldest messages rather than
slowing training. The last pictures (the kinds in ``KEEP``) are remembered, so a tab that opens later is shown
them at once (the session's ``hello`` brings the rest).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading

import numpy as np

KEEP = ("network", "tests")
QUEUE_SIZE = 64


class Hub:
    """The set of connected tabs: each an (event loop, asyncio.Queue of JSON strings)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self.latest: dict[str, str] = {}

    @property
    def watching(self) -> int:
        """How many tabs are connected (the studio computes pictures only when someone watches)."""
        return len(self._clients)

    def add(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        with self._lock:
            self._clients.append((loop, queue))

    def remove(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._clients = [(lp, q) for lp, q in self._clients if q is not queue]

    def publish(self, message: dict) -> str:
        """Send ``message`` (with a "type") to every tab; returns its JSON text."""
        text = json.dumps(_jsonable(message), separators=(",", ":"), allow_nan=False)
        with self._lock:
            if message["type"] in KEEP:
                self.latest[message["type"]] = text
            clients = list(self._clients)
        for loop, queue in clients:
            try:
                loop.call_soon_threadsafe(_put, queue, text)
            except RuntimeError:  # that tab's loop has closed; its handler removes it
                pass
        return text

    def forget(self, *kinds: str) -> None:
        """Drop the remembered messages of ``kinds`` (a new run starts)."""
        with self._lock:
            for kind in kinds:
                self.latest.pop(kind, None)


def _put(queue: asyncio.Queue, text: str) -> None:
    if queue.full():
        queue.get_nowait()  # drop the oldest: a slow tab must not hold training back
    queue.put_nowait(text)


def _jsonable(value):
    """``value`` with NumPy scalars made plain and NaN or infinite floats made None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
