"""--against's block order: each process pair once a pass, ABBA, mirrored on a re-measurement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.ab.plan import blocks, untimed_at_once


def test_blocks_alternate_which_side_goes_first() -> None:
    assert blocks(4) == [(0, ("base", "change")), (1, ("change", "base")), (2, ("base", "change")),
                         (3, ("change", "base"))]


@given(st.integers(1, 32))
def test_a_mirrored_pass_swaps_every_block_and_each_process_runs_once(processes: int) -> None:
    first, again = blocks(processes), blocks(processes, mirrored=True)
    assert [index for index, _ in first] == list(range(processes))
    assert all(a == b[::-1] for (_, a), (_, b) in zip(first, again))
    starts = [order[0] for _, order in first]
    assert abs(starts.count("base") - starts.count("change")) <= 1


@pytest.mark.parametrize(("threads", "cores", "at_once"), [
    (1, 2, True),  # the 2-core CI machine, 'auto' threads: one a side
    (1, 1, False),  # one core: the sides would share it
    (3, 4, False),  # 'auto' on 4 cores: 3 threads a side would oversubscribe them
    (4, 8, True),  # --llama-threads 4 on 8 cores
])
def test_untimed_runs_overlap_only_where_the_cores_hold_both_sides_threads(threads: int, cores: int,
                                                                           at_once: bool) -> None:
    assert untimed_at_once(threads, cores) is at_once
