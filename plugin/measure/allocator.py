"""Keep glibc's malloc from making a test's speed depend on what ran before it in the process.

glibc serves a large allocation with a fresh ``mmap`` (and page-faults it in) until a free of such a
block raises its mmap threshold, and hands memory back to the system past a trim threshold that
moves with it. So a model call with large activations runs slower in a fresh process than after
other work: measured on the 2-core VM, DistilBERT at batch 32 (1 thread, p10 of 20 calls) took
140-160 ms in a fresh process and 134-136 ms after 120 calls of other batch sizes. With the two
thresholds fixed at process start it took 132-134 ms both ways, which is also where a long-running
server settles. ``--benchmark`` sessions therefore fix them, once, before any model loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "fix_malloc_thresholds"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024


def fix_malloc_thresholds() -> str | None:
    """Fix glibc's mmap and trim thresholds; a sentence saying so, or None where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None  # not glibc (macOS, musl without mallopt, Windows): nothing to fix
    if not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return None
    return (f"glibc malloc thresholds fixed for this session (mmap {MMAP_THRESHOLD >> 20} MiB, trim "
            f"{TRIM_THRESHOLD >> 20} MiB), so a test's speed does not depend on what ran before it")
