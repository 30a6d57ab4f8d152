"""keep_freed_memory: freed blocks stay in the process, so a repeated step stops paying page faults."""

import platform
import subprocess
import sys

import pytest

# One "step": a 4 MiB block, freed (glibc then raises its thresholds to 4 MiB mmap / 8 MiB trim), then four
# 3 MiB blocks live at once and freed: the 12 MiB at the top of the heap are past the trim threshold, so by
# default they go back to the OS and the next step faults them in again, page by page.
SCRIPT = """
import resource, sys
import numpy as np
import convnetpy.cli  # importing the library and its command line must not tune malloc
from convnetpy.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()

def steps(n):
    for _ in range(n):
        big = np.ones(1 << 20, np.float32)
        del big
        parts = [np.ones(3 << 18, np.float32) for _ in range(4)]
        del parts

steps(3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
steps(20)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt tuning is glibc's")


def faults_per_step(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@glibc_only
def test_keep_freed_memory_stops_page_faults_between_steps():
    assert faults_per_step("default") > 1000  # 12 MiB of fresh pages per step, even after importing convnetpy
    assert faults_per_step("keep") < 10


def test_command_line_entry_point_keeps_freed_memory(monkeypatch):
    import convnetpy.cli as cli

    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(True) or True)
    monkeypatch.setattr(cli, "main", lambda argv=None: 0)
    with pytest.raises(SystemExit) as exit_info:
        cli.entry_point()
    assert exit_info.value.code == 0 and calls == [True]
