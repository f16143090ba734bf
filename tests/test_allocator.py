"""The allocator set-up of --benchmark sessions (glibc only)."""

from __future__ import annotations

import platform

import pytest

from modelperf.measure.allocator import fix_malloc_thresholds


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_thresholds_are_fixed_and_said_on_glibc() -> None:
    sentence = fix_malloc_thresholds()
    assert sentence is not None and "mmap 32 MiB, trim 256 MiB" in sentence


def test_benchmark_session_names_the_allocator_set_up(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    result = pytester.runpytest("--benchmark", "--history", "off", "--baseline-dir", "baselines")
    result.assert_outcomes(passed=1)
    if fix_malloc_thresholds() is not None:
        result.stdout.fnmatch_lines(["*modelperf: measurement set-up*", "glibc malloc thresholds fixed*"])
