"""CPU load during a measurement, read from /proc/stat: benchmarks print it beside their figures."""

from __future__ import annotations

import os


def cpu_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of all CPUs, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class LoadMeter:
    """Busy CPUs (0..cpu_count) between ``start()`` and ``busy()``."""

    def start(self) -> LoadMeter:
        self.busy0, self.total0 = cpu_busy()
        return self

    def busy(self) -> float:
        busy1, total1 = cpu_busy()
        return (busy1 - self.busy0) / max(total1 - self.total0, 1) * (os.cpu_count() or 1)
