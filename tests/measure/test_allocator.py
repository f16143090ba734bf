"""The allocator latency tests run under: found out and named, settled in stored mode, fixed on request."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from modelperf.measure import allocator
from modelperf.measure.allocator import describe_allocator, steady_malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
glibc_only = pytest.mark.skipif(not GLIBC, reason="glibc only")

# In a fresh interpreter: does glibc serve an 8 MiB block with mmap (its IS_MMAPPED size bit) before
# and after settle_malloc? Fresh, because the test process's thresholds have moved already.
_PROBE = """
import ctypes
from modelperf.measure.allocator import settle_malloc
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def mmapped(size):
    block = libc.malloc(size)
    flag = ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value & 2
    libc.free(block)
    return bool(flag)
before = mmapped(8 << 20)
print(before, settle_malloc(), mmapped(12 << 20), mmapped(40 << 20), settle_malloc())
"""


@glibc_only
def test_settling_raises_glibcs_dynamic_thresholds_once_per_process() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    # mmapped before; then settled now; a 12 MiB block from the heap; 40 MiB beyond any threshold; not again.
    assert done.stdout.split() == ["True", "True", "False", "True", "False"]


@glibc_only
def test_thresholds_are_fixed_inside_the_block_and_said() -> None:
    with steady_malloc() as sentence:
        assert sentence is not None and "mmap 32 MiB, trim 256 MiB; --malloc-thresholds fixed" in sentence


@glibc_only
@pytest.mark.parametrize(("environ", "mode", "settle", "line"), [
    ({}, "process", False, "glibc * malloc; its own dynamic thresholds"),
    ({}, "process", True, "glibc * malloc; its own dynamic thresholds, raised to their steady state*"),
    ({"MALLOC_ARENA_MAX": "2"}, "process", True, "glibc * malloc; set by MALLOC_ARENA_MAX=2; its own dynamic*"),
    ({"MALLOC_MMAP_THRESHOLD_": "65536"}, "process", True, "glibc * malloc; set by MALLOC_MMAP_THRESHOLD_=65536"),
    ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=9:glibc.rtld.nns=2"}, "process", True,
     "glibc * malloc; set by GLIBC_TUNABLES glibc.malloc.trim_threshold=9"),
    ({}, "fixed", False, "glibc * malloc; thresholds fixed during latency tests (mmap 32 MiB, trim 256 MiB; *"),
])
def test_glibcs_malloc_is_named_with_what_the_environment_sets(
        environ: dict[str, str], mode: str, settle: bool, line: str) -> None:
    import fnmatch

    found = describe_allocator(mode, settle, environ).line()
    assert fnmatch.fnmatch(found, line), found


@pytest.mark.parametrize(("library", "mode", "line"), [
    ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "process",
     "jemalloc from /usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
    ("/opt/lib/libtcmalloc_minimal.so.4", "fixed",
     "tcmalloc from /opt/lib/libtcmalloc_minimal.so.4; --malloc-thresholds fixed has no effect on it"),
    ("/opt/lib/libmyalloc.so", "process", "libmyalloc.so from /opt/lib/libmyalloc.so"),
])
def test_a_preloaded_allocator_is_named_by_the_library_that_serves_malloc(
        monkeypatch: pytest.MonkeyPatch, library: str, mode: str, line: str) -> None:
    monkeypatch.setattr(allocator, "_malloc_library", lambda: library)
    info = describe_allocator(mode, settle=True, environ={"LD_PRELOAD": library})
    assert info.line() == line and not info.settled


@pytest.mark.skipif(not GLIBC, reason="reads /proc/self/maps")
def test_this_process_malloc_is_found_in_its_maps() -> None:
    library = allocator._malloc_library()
    assert library is not None and "libc" in library
