from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.measure.kv_cache import kv_cache_bytes_per_token, kv_growth_per_token
from modelperf.measure.memory import (
    MemoryResult,
    MemoryTracker,
    measure_in_subprocess,
)

MB = 1_000_000
# Room for the interpreter, numpy and memray's own bookkeeping on top of what a test allocates.
SLACK = 30 * MB


def _result(tracker: MemoryTracker) -> MemoryResult:
    assert tracker.result is not None
    return tracker.result


@pytest.mark.parametrize("native", [True, False])
def test_memray_peak_counts_a_numpy_allocation(tmp_path: Path, native: bool) -> None:
    with MemoryTracker(tmp_path, native=native) as tracker:
        data = np.ones(50 * MB, dtype=np.uint8)
        del data
    result = _result(tracker)
    assert 50 * MB <= result.memray_peak_bytes < 50 * MB + SLACK


def test_memray_peak_is_a_high_water_mark_not_the_final_heap(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, native=False) as tracker:
        first = bytearray(30 * MB)
        second = bytearray(20 * MB)
        del first, second
        third = bytearray(10 * MB)
        del third
    assert 50 * MB <= _result(tracker).memray_peak_bytes < 50 * MB + SLACK


def test_rss_delta_grows_when_pages_are_touched(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, native=False) as tracker:
        data = np.ones(50 * MB, dtype=np.uint8)
        del data
    result = _result(tracker)
    assert result.rss_delta_bytes >= 45 * MB
    assert result.rss_peak_bytes == result.rss_start_bytes + result.rss_delta_bytes


def test_untouched_memory_counts_for_memray_but_not_for_rss(tmp_path: Path) -> None:
    # np.empty maps pages it never writes: allocated, yet not resident. The two figures differ.
    with MemoryTracker(tmp_path, native=False) as tracker:
        data = np.empty(100 * MB, dtype=np.uint8)
        del data
    result = _result(tracker)
    assert result.memray_peak_bytes >= 100 * MB
    assert result.rss_delta_bytes < 50 * MB


def test_an_mmapped_file_counts_whole_for_memray(tmp_path: Path) -> None:
    # Like a GGUF model that llama.cpp maps: memray counts the mapping, RSS only pages read.
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(40 * MB))
    with MemoryTracker(tmp_path / "captures", native=False) as tracker, weights.open("rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        mapping.close()
    result = _result(tracker)
    assert result.memray_peak_bytes >= 40 * MB
    assert result.rss_delta_bytes < 20 * MB


def test_top_stacks_point_at_the_allocating_line(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, native=True) as tracker:
        data = bytearray(20 * MB)
        del data
    stacks = _result(tracker).top_stacks
    assert 1 <= len(stacks) <= 5
    assert "test_memory.py:" in stacks[0] and "test_top_stacks_point_at_the_allocating_line" in stacks[0]
    assert "MiB" in stacks[0]


def test_capture_is_deleted_by_default(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path) as tracker:
        bytearray(MB)
    assert _result(tracker).capture_path is None
    assert not tracker.capture_path.exists()
    assert list(tmp_path.iterdir()) == []


def test_capture_is_kept_when_asked_and_named_in_the_section(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, keep_capture=True, label="load model") as tracker:
        bytearray(MB)
    result = _result(tracker)
    assert result.capture_path is not None and result.capture_path.exists()
    assert result.capture_path.parent == tmp_path
    section = result.section()
    assert f"memray flamegraph {result.capture_path}" in section
    assert "memray peak:" in section and "RSS peak:" in section


def test_capture_decision_can_wait_until_after_the_region(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, keep_capture=None) as kept:
        bytearray(MB)
    assert kept.keep().exists()
    assert _result(kept).capture_path == kept.capture_path

    with MemoryTracker(tmp_path, keep_capture=None) as dropped:
        bytearray(MB)
    dropped.discard()
    assert not dropped.capture_path.exists()
    assert _result(dropped).capture_path is None
    with pytest.raises(RuntimeError, match="is gone"):
        dropped.keep()


def test_section_without_capture_names_both_figures_only(tmp_path: Path) -> None:
    result = MemoryResult(
        memray_peak_bytes=300 * 1024**2,
        rss_peak_bytes=500 * 1024**2,
        rss_start_bytes=400 * 1024**2,
        wall_seconds=1.5,
        top_stacks=["  1.0 MiB  1 alloc  x.py:1 f"],
    )
    section = result.section()
    assert "memray peak: 300.0 MiB" in section
    assert "RSS peak:    500.0 MiB resident, 100.0 MiB above the 400.0 MiB" in section
    assert "x.py:1 f" in section
    assert "flamegraph" not in section


def test_an_error_in_the_region_propagates_and_frees_the_tracker(tmp_path: Path) -> None:
    with pytest.raises(KeyError), MemoryTracker(tmp_path) as failed:
        raise KeyError("boom")
    assert failed.result is None
    assert not failed.capture_path.exists()
    with MemoryTracker(tmp_path) as again:
        bytearray(MB)
    assert again.result is not None


def test_nested_trackers_are_refused_with_a_clear_sentence(tmp_path: Path) -> None:
    with MemoryTracker(tmp_path, label="outer") as outer:
        refused = pytest.raises(RuntimeError, match="'inner' because MemoryTracker 'outer' is already active")
        with refused, MemoryTracker(tmp_path, label="inner"):
            pass
        bytearray(MB)
    assert outer.result is not None


def test_result_survives_json(tmp_path: Path) -> None:
    result = MemoryResult(1, 3, 2, 0.5, tmp_path / "c.bin", ["a", "b"])
    assert MemoryResult.from_json(result.to_json()) == result
    assert result.rss_delta_bytes == 1


def test_subprocess_measures_an_allocation_in_isolation(tmp_path: Path) -> None:
    result = measure_in_subprocess(
        "data = bytearray(40_000_000)", setup="import os", capture_dir=tmp_path, native=False, timeout=120
    )
    assert 40 * MB <= result.memray_peak_bytes < 40 * MB + SLACK
    assert result.rss_delta_bytes >= 35 * MB
    assert result.capture_path is None
    assert list(tmp_path.iterdir()) == []


def test_subprocess_keeps_the_capture_when_asked(tmp_path: Path) -> None:
    result = measure_in_subprocess(
        "x = bytearray(1000)", capture_dir=tmp_path, keep_capture=True, timeout=120
    )
    assert result.capture_path is not None and result.capture_path.exists()


def test_subprocess_failure_reports_the_child_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="ValueError: no such model"):
        measure_in_subprocess("raise ValueError('no such model')", capture_dir=tmp_path, timeout=120)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("layers", "kv_heads", "head_dim", "width", "expected"),
    [
        (30, 3, 64, 2, 23_040),  # SmolLM2-135M in f16
        (32, 8, 128, 2, 131_072),  # Llama-3-8B in f16
        (1, 1, 1, 4, 8),
    ],
)
def test_kv_cache_bytes_per_token(
    layers: int, kv_heads: int, head_dim: int, width: int, expected: int
) -> None:
    assert kv_cache_bytes_per_token(layers, kv_heads, head_dim, width) == expected


def test_kv_cache_bytes_per_token_refuses_non_positive_sizes() -> None:
    with pytest.raises(ValueError, match="positive n_kv_heads, got 0"):
        kv_cache_bytes_per_token(30, 0, 64, 2)


@given(
    slope=st.integers(min_value=0, max_value=1_000_000),
    base=st.integers(min_value=0, max_value=10**10),
    lengths=st.lists(st.integers(min_value=0, max_value=100_000), min_size=2, max_size=8, unique=True),
)
def test_kv_growth_recovers_an_exact_slope(slope: int, base: int, lengths: list[int]) -> None:
    points = [(n, base + slope * n) for n in lengths]
    assert kv_growth_per_token(points) == pytest.approx(slope, rel=1e-6, abs=1e-3)


def test_kv_growth_needs_two_context_lengths() -> None:
    with pytest.raises(ValueError, match="two or more different context lengths"):
        kv_growth_per_token([(128, 10), (128, 12)])
