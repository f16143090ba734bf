"""The allocator latency is measured under: the process's own, found out and said; fixed glibc thresholds on request.

By default a latency test runs under the allocator the code runs with anywhere else: glibc's malloc
with its dynamic thresholds, unless the user sets ``MALLOC_*`` (or ``GLIBC_TUNABLES``) or preloads
another allocator, which :func:`describe_allocator` finds out (the library that serves ``malloc``)
and every report names.

glibc serves a large allocation with a fresh ``mmap`` (page-faulted in on every call) until a free
of such a block raises its mmap threshold to that block's size, up to 32 MiB on 64-bit, with the trim
threshold at twice that. So a call's speed depends on the largest block freed earlier in the
process: measured on a 2-core VM, DistilBERT at batch 32 took 140-160 ms in a fresh process and
134-136 ms after 120 calls of other batch sizes. In stored mode, where a test must read the same
whatever ran before it, :func:`settle_malloc` frees one block of just under 32 MiB before the
first latency test: the thresholds stand where any long-running process stands once it has freed a
large block, and where no later test can move them. ``--against`` needs no settling: both sides run
the same tests in the same order.

``--malloc-thresholds fixed`` keeps the older behaviour: the thresholds fixed during latency tests
(mmap 32 MiB, trim 256 MiB), glibc's start-up values after them (a fixed trim threshold keeps freed
memory resident and would hide a later test's RSS growth). That also gives order independence, but
it spares larger buffers the page faults they pay under glibc's own settings, so a change that grows
buffers reads smaller than it is (docs/concepts/statistics.md#allocator).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import platform
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelperf.vocab import MALLOC_MODES

__all__ = ["MALLOC_MODES", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "AllocatorInfo", "describe_allocator",
           "release_free_memory", "settle_malloc", "steady_malloc"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_GLIBC_DEFAULT = 128 * 1024  # both thresholds' start-up values
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024
# The block settle_malloc frees: under glibc's largest dynamic threshold with its chunk header and
# page rounding, so that freeing it raises the threshold all the way.
_SETTLE_BYTES = MMAP_THRESHOLD - 2 * 4096
# Environment variables that set glibc malloc's behaviour; the four threshold ones also stop its dynamic thresholds.
_GLIBC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
              "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_PERTURB_", "MALLOC_CHECK_")
_FIXING = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
           "glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold", "glibc.malloc.top_pad",
           "glibc.malloc.mmap_max")
_KNOWN = {"jemalloc": "jemalloc", "tcmalloc": "tcmalloc", "mimalloc": "mimalloc"}
_settled = False


@dataclass(frozen=True)
class AllocatorInfo:
    """Which allocator serves ``malloc`` in this process and how it is set.

    ``name``: "glibc 2.36 malloc", "jemalloc", or the serving library's file name; ``library``: that
    file where it is not the C library; ``settings``: the ``MALLOC_*`` and ``GLIBC_TUNABLES`` malloc
    settings of the environment; ``mode``: "process" or "fixed" (--malloc-thresholds); ``settled``:
    glibc's dynamic thresholds are raised to their steady state before the first latency test.
    """

    name: str
    library: str | None = None
    settings: tuple[str, ...] = ()
    mode: str = "process"
    settled: bool = False

    @property
    def glibc(self) -> bool:
        return self.name.startswith("glibc")

    @property
    def dynamic(self) -> bool:
        """glibc's thresholds move by themselves: glibc's malloc, and nothing fixes them."""
        return self.glibc and self.mode == "process" and not any(
            name in setting for setting in self.settings for name in _FIXING)

    def line(self) -> str:
        """One sentence for the reports: what served malloc while latency was measured."""
        parts = [self.name + (f" from {self.library}" if self.library else "")]
        if self.settings:
            parts.append("set by " + ", ".join(self.settings))
        if self.glibc and self.mode == "fixed":
            parts.append(f"thresholds fixed during latency tests (mmap {MMAP_THRESHOLD >> 20} MiB, trim "
                         f"{TRIM_THRESHOLD >> 20} MiB; --malloc-thresholds fixed)")
        elif self.dynamic:
            parts.append("its own dynamic thresholds" + (
                ", raised to their steady state (a block of just under 32 MiB freed) before the first latency "
                "test" if self.settled else ""))
        elif self.mode == "fixed":
            parts.append("--malloc-thresholds fixed has no effect on it")
        return "; ".join(parts)


def _malloc_library() -> str | None:
    """The file whose ``malloc`` the process calls (a preloaded allocator's, or the C library's); None if unknown."""
    try:
        address = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
        maps = Path("/proc/self/maps").read_text().splitlines()
    except (OSError, AttributeError):
        return None
    for line in maps:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and address is not None:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return fields[5].strip()
    return None


def _environment_settings(environ: Mapping[str, str]) -> tuple[str, ...]:
    found = [f"{name}={environ[name]}" for name in _GLIBC_ENV if environ.get(name)]
    tunables = [t for t in environ.get("GLIBC_TUNABLES", "").split(":") if t.startswith("glibc.malloc.")]
    return (*found, *(f"GLIBC_TUNABLES {t}" for t in tunables))


def describe_allocator(mode: str = "process", settle: bool = False,
                       environ: Mapping[str, str] | None = None) -> AllocatorInfo:
    """This process's allocator, under ``mode`` (--malloc-thresholds), settled before latency tests or not."""
    environ = os.environ if environ is None else environ
    library = _malloc_library()
    file = Path(library).name if library else ""
    libc_name, libc_version = platform.libc_ver()
    if library is None or file.startswith(("libc.so", "libc-")):
        preloaded = environ.get("LD_PRELOAD", "").strip()
        if library is None and preloaded:  # not found out (no /proc): the preload is the best guess
            return AllocatorInfo(f"the preloaded {preloaded}", mode=mode)
        if libc_name == "glibc":
            info = AllocatorInfo(f"glibc {libc_version} malloc", settings=_environment_settings(environ), mode=mode)
            return AllocatorInfo(info.name, None, info.settings, mode, settled=settle and info.dynamic)
        return AllocatorInfo(f"{platform.system()}'s C library malloc", mode=mode)
    name = next((label for key, label in _KNOWN.items() if key in file), file)
    return AllocatorInfo(name, library, mode=mode)


def settle_malloc() -> bool:
    """Raise glibc's dynamic mmap and trim thresholds to their steady state, once per process.

    Frees one mmapped block of just under 32 MiB: glibc then serves every smaller block from its heap
    (mmap threshold about 32 MiB, trim threshold twice that), as in any process that has freed a block
    that large, and no later allocation can raise them further. True when it did so now.
    """
    global _settled
    if _settled:
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    except (OSError, AttributeError):
        return False
    block = libc.malloc(_SETTLE_BYTES)  # never touched: mapped and unmapped, no page is faulted in
    if block:
        libc.free(block)
    _settled = True
    return bool(block)


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
    start-up values (fixed there: glibc's dynamic thresholds stay off in this process afterwards).
    """
    mallopt = _mallopt()
    if mallopt is None or not (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        yield None
        return
    try:
        yield (f"latency tests ran with glibc malloc's thresholds fixed (mmap {MMAP_THRESHOLD >> 20} MiB, trim "
               f"{TRIM_THRESHOLD >> 20} MiB; --malloc-thresholds fixed), so a test's speed does not depend on what "
               "ran before it, but buffers that grow pay fewer page faults than under glibc's own thresholds")
    finally:
        mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT)
        mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT)
