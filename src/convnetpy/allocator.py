"""Keep freed memory in the process, so that training steps stop paying page faults.

A training step frees and allocates the same few megabytes of activations and gradients every time. glibc's
malloc hands large freed blocks back to the operating system (blocks above the mmap threshold at once, the top
of a heap above the trim threshold), so each step then touches fresh pages and pays a page fault per 4 KiB:
about 1,900 per step for the CIFAR-10 net at batch 64 on two threads. With two threads each fault also
contends for the process's memory map. Fixed, high thresholds keep those pages instead; resident memory then
stays at the step's peak between steps, a peak the process reaches every step anyway.

The setting is process-wide, so importing convnetpy never changes it: the ``convnetpy`` command sets it at
start-up, and a training script may call ``keep_freed_memory()`` itself. PyTorch's CPU tensors come from the
same malloc, so a script that trains both gets the same benefit for both (``benchmarks/speed.py`` measures
with and without it).
"""

from __future__ import annotations

import ctypes

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above 32 MiB on 64-bit machines; larger blocks are rare and still mmap'd.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB for reuse; True if it accepted.

    False, and nothing changed, where the C library has no ``mallopt`` (macOS, Windows, musl).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already uses
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # Setting either threshold also turns off glibc's own adjustment of both, which would undo the other.
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
