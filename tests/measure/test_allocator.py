"""The allocator set-up around latency tests (glibc only)."""

from __future__ import annotations

import platform

import pytest

from modelperf.measure.allocator import steady_malloc

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_thresholds_are_fixed_inside_the_block_and_said() -> None:
    with steady_malloc() as sentence:
        assert sentence is not None and "mmap 32 MiB, trim 256 MiB" in sentence
