"""Keep glibc's malloc from making a timed call's speed depend on what ran before it in the process.

glibc serves a large allocation with a fresh ``mmap`` (and page-faults it in) until a free of such a
block raises its mmap threshold, and hands memory back to the system past a trim threshold that
moves with it. So a model call with large activations runs slower in a fresh process than after
other work: measured on the 2-core VM, DistilBERT at batch 32 (1 thread, p10 of 20 calls) took
140-160 ms in a fresh process and 134-136 ms after 120 calls of other batch sizes. With the two
thresholds fixed it took 132-134 ms both ways, which is also where a long-running server settles.

Latency tests run with the thresholds fixed; afterwards they go back to glibc's start-up values,
because a fixed trim threshold keeps freed memory resident and would hide a later test's RSS growth.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
from collections.abc import Callable, Iterator

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "release_free_memory", "steady_malloc"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_GLIBC_DEFAULT = 128 * 1024  # both thresholds' start-up values
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024


def release_free_memory() -> None:
    """Collect Python's garbage and hand glibc's free heap memory back to the system.

    Memory tests call it before they start, so the resident-set growth they report does not depend
    on how much freed memory earlier tests left in the allocator for this one to reuse.
    """
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to trim


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        function: Callable[[int, int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None  # not glibc (macOS, musl, Windows): nothing to fix
    return function


@contextlib.contextmanager
def steady_malloc() -> Iterator[str | None]:
    """Fix glibc's mmap and trim thresholds inside the block; yields a sentence saying so, or None.

    None where there is no glibc ``mallopt``. On leaving, both thresholds return to glibc's
    start-up values.
    """
    mallopt = _mallopt()
    if mallopt is None or not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        yield None
        return
    try:
        yield (f"latency tests ran with glibc malloc's thresholds fixed (mmap {MMAP_THRESHOLD >> 20} MiB, trim "
               f"{TRIM_THRESHOLD >> 20} MiB), so a test's speed does not depend on what ran before it")
    finally:
        mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
        mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
