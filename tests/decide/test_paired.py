"""The pure parts of ``--against``: paired verdicts over worker-process blocks, block order, source roots."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.ab.git import source_roots
from modelperf.ab.plan import blocks
from modelperf.decide import Verdict
from modelperf.decide.paired import block_spread, compare_paired, run_of
from modelperf.records import Kind, LatencyDetail, Measurement
from modelperf.records import RunFigure as Run
from modelperf.vocab import MIN_PROCESS_PAIRS

values = st.floats(min_value=1e-4, max_value=10.0, allow_nan=False)
controls = st.floats(min_value=1e-3, max_value=1.0, allow_nan=False)


def _runs(pairs: list[tuple[float, float]], factor: float = 1.0) -> tuple[list[Run], list[Run]]:
    base = [Run(i, value, control, 10) for i, (value, control) in enumerate(pairs)]
    change = [Run(i, value * factor, control, 10) for i, (value, control) in enumerate(pairs)]
    return base, change


@given(st.lists(st.tuples(values, controls), min_size=MIN_PROCESS_PAIRS, max_size=12))
def test_identical_sides_give_a_ratio_of_one_and_pass(pairs: list[tuple[float, float]]) -> None:
    comparison = compare_paired(*_runs(pairs), min_effect=0.05)
    assert comparison.ratio == pytest.approx(1.0)
    assert comparison.verdict is Verdict.PASS


@given(st.lists(st.tuples(values, controls), min_size=MIN_PROCESS_PAIRS, max_size=12),
       st.floats(min_value=1.04, max_value=5.0))
def test_a_uniform_slowdown_past_the_alarm_line_regresses_and_its_inverse_improves(
        pairs: list[tuple[float, float]], factor: float) -> None:
    slower = compare_paired(*_runs(pairs, factor), min_effect=0.05)
    assert slower.ratio == pytest.approx(factor) and slower.verdict is Verdict.REGRESSED
    faster = compare_paired(*_runs(pairs, 1 / factor), min_effect=0.05)
    assert faster.verdict is Verdict.IMPROVED


def test_the_verdict_is_on_raw_figures_and_the_control_is_only_reported() -> None:
    # The change's control rounds ran twice as slow in every block, its model calls 10 % slower: the
    # two sides took turns on one machine, so the control is not the machine's speed but its own
    # noise (or a change to the control's code). A correction would read x0.55, an improvement.
    base = [Run(i, 1.0, 0.1, 10) for i in range(4)]
    change = [Run(i, 1.1 + 0.001 * i, 0.2, 10) for i in range(4)]
    comparison = compare_paired(base, change, min_effect=0.05)
    assert comparison.ratio == pytest.approx(1.1015, rel=1e-3) and comparison.verdict is Verdict.REGRESSED
    assert comparison.drift == pytest.approx(2.0)
    assert "side-by-side p10 x1.10" in comparison.line() and "control x2.00" in comparison.line()


def test_a_higher_rate_is_better_whatever_the_control() -> None:
    base = [Run(i, 100.0, 0.1, 10) for i in range(3)]
    change = [Run(i, 50.0 + i, 0.05, 10) for i in range(3)]  # half the tokens per second
    comparison = compare_paired(base, change, min_effect=0.05, direction="higher")
    assert comparison.ratio == pytest.approx(0.51, rel=1e-2) and comparison.verdict is Verdict.REGRESSED


def test_both_sides_are_reduced_by_the_statistic_the_caller_names() -> None:
    # A base measured under a p10 marker and a change under a median marker: the same samples must
    # give the same figure, whatever statistic each side's measurement recorded.
    samples = tuple(float(x) for x in range(1, 11))
    p10 = Measurement("t", Kind.LATENCY, "p10_s", "s", 1.0, samples=samples, latency=LatencyDetail("p10"))
    median = Measurement("t", Kind.LATENCY, "median_s", "s", 5.5, samples=samples, latency=LatencyDetail("median"))
    assert run_of(p10, 0, "median").value == run_of(median, 0, "median").value == pytest.approx(5.5)


def test_blocks_of_one_process_pair_count_once() -> None:
    # Two passes over the same three pairs: three samples for the t-test, not six.
    base = [Run(i % 3, 1.0, None, 10) for i in range(6)]
    change = [Run(i % 3, 1.0 + 0.01 * (i % 3), None, 10) for i in range(6)]
    comparison = compare_paired(base, change, min_effect=0.05)
    spread = math.exp(0.01)  # the three pair means are 0, ~0.01, ~0.02 in log
    assert comparison.ratio_high / comparison.ratio_low > spread


def test_too_few_process_pairs_is_inconclusive_and_says_how_to_fix_it() -> None:
    comparison = compare_paired(*_runs([(1.0, 0.1)] * (MIN_PROCESS_PAIRS - 1), 2.0), min_effect=0.05)
    assert comparison.verdict is Verdict.INCONCLUSIVE
    assert "raise --against-processes" in comparison.line()


def test_runs_that_do_not_pair_up_are_refused() -> None:
    with pytest.raises(ValueError, match="do not pair up"):
        compare_paired([Run(0, 1.0, None, 5)] * 3, [Run(0, 1.0, None, 5)] * 2, min_effect=0.05)


def test_blocks_alternate_which_side_runs_first_and_a_second_pass_mirrors_the_first() -> None:
    assert blocks(4) == [(0, ("base", "change")), (1, ("change", "base")), (2, ("base", "change")),
                         (3, ("change", "base"))]
    assert [order for _, order in blocks(4, mirrored=True)] == [order[::-1] for _, order in blocks(4)]


def test_source_roots_are_the_repository_directories_modules_came_from(tmp_path: Path) -> None:
    modules = [SimpleNamespace(__name__="mypkg", __file__=str(tmp_path / "src" / "mypkg" / "__init__.py")),
               SimpleNamespace(__name__="mypkg.sub", __file__=str(tmp_path / "src" / "mypkg" / "sub.py")),
               SimpleNamespace(__name__="conftest", __file__=str(tmp_path / "conftest.py")),
               SimpleNamespace(__name__="numpy", __file__=str(tmp_path / ".venv" / "site-packages" / "numpy" / "x.py")),
               SimpleNamespace(__name__="os", __file__="/usr/lib/python3.11/os.py")]
    assert source_roots(tmp_path, modules) == [".", "src"]


def _blocks(logs_per_pair: list[list[float]]) -> tuple[list[Run], list[Run]]:
    """Blocks whose change/base log ratios are ``logs_per_pair``, pair by pair, the passes interleaved as the runner goes."""
    base: list[Run] = []
    change: list[Run] = []
    for block in range(max(len(logs) for logs in logs_per_pair)):
        for pair, logs in enumerate(logs_per_pair):
            if block < len(logs):
                base.append(Run(pair, 1.0, None, 3))
                change.append(Run(pair, math.exp(logs[block]), None, 3))
    return base, change


def test_block_spread_tells_noise_within_a_pair_from_offsets_between_pairs() -> None:
    # 300 pairs of 6 blocks: each pair keeps an offset (sd 4 %), each block adds noise (sd 8 %).
    rng = np.random.default_rng(7)
    logs = [list(offset + rng.normal(0.0, 0.08, 6)) for offset in rng.normal(0.0, 0.04, 300)]
    spread = block_spread(*_blocks(logs))
    assert spread is not None and (spread.pairs, spread.blocks) == (300, 1800)
    assert spread.within == pytest.approx(0.08, rel=0.05)
    assert spread.between == pytest.approx(0.04, rel=0.2)


@given(st.lists(st.floats(min_value=-0.5, max_value=0.5), min_size=2, max_size=12), st.integers(2, 6))
def test_pairs_without_block_noise_spread_only_between(offsets: list[float], passes: int) -> None:
    spread = block_spread(*_blocks([[offset] * passes for offset in offsets]))
    assert spread is not None
    assert spread.within == pytest.approx(0.0, abs=1e-9)
    assert spread.between == pytest.approx(float(np.std(offsets, ddof=1)), abs=1e-9)


@given(st.lists(st.floats(min_value=-0.5, max_value=0.5), min_size=2, max_size=6), st.integers(2, 12))
def test_pairs_with_the_same_blocks_have_no_spread_between(blocks: list[float], pairs: int) -> None:
    spread = block_spread(*_blocks([blocks[i:] + blocks[:i] for i in range(pairs)]))  # each pair: the same blocks
    assert spread is not None and spread.between == pytest.approx(0.0, abs=1e-9)


def test_block_spread_needs_two_pairs_and_a_pair_with_two_blocks() -> None:
    assert block_spread(*_blocks([[0.01], [0.02], [0.03]])) is None  # one pass: the noise within is unknown
    assert block_spread(*_blocks([[0.01, 0.02, 0.03]])) is None  # one pair: the offsets between are unknown
    with pytest.raises(ValueError, match="do not pair up"):
        block_spread([Run(0, 1.0, None, 5)] * 3, [Run(0, 1.0, None, 5)] * 2)
