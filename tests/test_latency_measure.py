"""Pure helpers of the latency measurement: rounds, control spacing, pooling."""

from __future__ import annotations

import pytest

from modelperf.measure.latency import MAX_ROUNDS, MIN_CONTROLS, MIN_ROUNDS, choose_rounds, control_every, pooled
from modelperf.records import Kind, Measurement


@pytest.mark.parametrize(("seconds", "rounds"), [(1e-6, MAX_ROUNDS), (0.01, MAX_ROUNDS), (0.05, 40), (5.0, MIN_ROUNDS)])
def test_rounds_fill_the_budget_within_bounds(seconds: float, rounds: int) -> None:
    assert choose_rounds(seconds) == rounds


@pytest.mark.parametrize("rounds", [1, 5, 20, 49, 50, 100])
def test_every_test_gets_enough_control_rounds(rounds: int) -> None:
    every = control_every(rounds)
    assert every >= 1
    assert len(range(0, rounds, every)) >= min(rounds, MIN_CONTROLS)


def test_pooled_keeps_both_runs_samples_and_controls() -> None:
    first = Measurement("t::a", Kind.LATENCY, "median_s", "s", 2.0, (1.0, 2.0, 3.0), (0.1,), None, {"statistic": "median"})
    rerun = Measurement("t::a", Kind.LATENCY, "median_s", "s", 5.0, (4.0, 5.0), (0.2, 0.3), None, {"statistic": "median"})
    both = pooled(first, rerun)
    assert both.samples == (1.0, 2.0, 3.0, 4.0, 5.0) and both.control == (0.1, 0.2, 0.3)
    assert both.value == 3.0 and both.extra["remeasured"] == 2
