"""The latency measurement's helpers: rounds, where control slots go, the busy check, pooling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.figures import statistic_of
from modelperf.measure.control import QuietestControl
from modelperf.measure.latency import (
    CONTROL_EVERY,
    CONTROL_PER_SLOT,
    MAX_ROUNDS,
    MIN_CONTROL_SLOTS,
    MIN_ROUNDS,
    RUN_CONTROL_SLOTS,
    CapturingBenchmark,
    choose_rounds,
    control_slots,
    pooled,
    scaled_rounds,
)
from modelperf.records import Kind, LatencyDetail, Measurement


@pytest.mark.parametrize(("seconds", "rounds"), [(1e-6, MAX_ROUNDS), (0.01, MAX_ROUNDS), (0.05, 40), (5.0, MIN_ROUNDS)])
def test_rounds_fill_the_budget_within_bounds(seconds: float, rounds: int) -> None:
    assert choose_rounds(seconds) == rounds


@given(st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=300))
def test_p10_matches_numpys_lower_decile(samples: list[float]) -> None:
    assert statistic_of("p10", samples) == pytest.approx(float(np.quantile(samples, 0.10)), rel=1e-12)


class _Recorder:
    """Stands in for pytest-benchmark's fixture: runs setup before every (warm-up and timed) round."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def pedantic(self, target: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                 setup: Callable[[], Any] | None = None, rounds: int = 1, warmup_rounds: int = 0,
                 iterations: int = 1) -> Any:
        if iterations > 1 and setup is not None:
            raise ValueError("Can't use more than 1 `iterations` with a `setup` function.")
        for index in range(warmup_rounds + rounds):
            if setup is not None:
                setup()
            self.events.append("warm-up" if index < warmup_rounds else "timed")
            target(*args, **(kwargs or {}))
        return "result"


def _capturing(round_scale: float = 1.0, seconds_per_call: float | None = None) -> tuple[CapturingBenchmark, _Recorder]:
    recorder = _Recorder()
    calls: list[str] = []

    def control() -> float:
        recorder.events.append("control")
        calls.append("control")
        return 0.005

    return CapturingBenchmark(recorder, control, round_scale, seconds_per_call=seconds_per_call), recorder


def _slots(events: list[str]) -> list[int]:
    """Index of the timed round each run of control events precedes (-1: after the last)."""
    found, timed, previous = [], 0, ""
    for event in events:
        if event == "control" and previous != "control":
            found.append(timed)
        timed += event == "timed"
        previous = event
    return [-1 if index == timed else index for index in found]


def test_benchmark_call_runs_a_control_slot_before_every_few_timed_rounds() -> None:
    capturing, recorder = _capturing()
    assert capturing(lambda: None) == "result"
    rounds = recorder.events.count("timed")
    assert _slots(recorder.events) == list(range(0, rounds, CONTROL_EVERY))
    assert len(capturing.controls) == len(range(0, rounds, CONTROL_EVERY)) * CONTROL_PER_SLOT


def test_pedantic_keeps_the_tests_setup_and_skips_warm_up_rounds_when_placing_slots() -> None:
    capturing, recorder = _capturing()
    setups: list[int] = []
    capturing.pedantic(lambda: None, setup=lambda: setups.append(1), rounds=20, warmup_rounds=2)
    assert len(setups) == 22
    timed_only = [e for e in recorder.events if e != "warm-up"]
    assert _slots(timed_only) == list(range(0, 20, 2))  # 20 rounds: every 2nd, for MIN_CONTROL_SLOTS slots


def test_pedantic_with_iterations_controls_only_before_and_after() -> None:
    capturing, recorder = _capturing()
    capturing.pedantic(lambda: None, rounds=4, iterations=3)
    assert _slots(recorder.events) == [0, -1]
    assert len(capturing.controls) == MIN_CONTROL_SLOTS * CONTROL_PER_SLOT


def test_quietest_control_reports_how_much_slower_a_test_ran() -> None:
    quietest = QuietestControl()
    quietest.calibrate(1, lambda: 0.005)
    assert quietest.busy_factor(1, [0.005] * 20) == pytest.approx(1.0)
    assert quietest.busy_factor(1, [0.006] * 20) == pytest.approx(1.2)
    assert quietest.busy_factor(1, [0.004] * 20) == pytest.approx(1.0)  # a quieter test lowers the floor
    assert quietest.busy_factor(1, [0.005] * 20) == pytest.approx(1.25)
    assert quietest.busy_factor(2, [0.009] * 20) == pytest.approx(1.0)  # thread counts are kept apart
    assert quietest.busy_factor(1, []) == 1.0


def test_pooled_keeps_both_runs_samples_and_controls() -> None:
    first = Measurement("t::a", Kind.LATENCY, "median_s", "s", 2.0, (1.0, 2.0, 3.0), (0.1,), None,
                        latency=LatencyDetail("median"))
    rerun = Measurement("t::a", Kind.LATENCY, "median_s", "s", 5.0, (4.0, 5.0), (0.2, 0.3), None,
                        latency=LatencyDetail("median"))
    both = pooled(first, rerun)
    assert both.samples == (1.0, 2.0, 3.0, 4.0, 5.0) and both.control == (0.1, 0.2, 0.3)
    assert both.value == 3.0 and both.latency is not None and both.latency.remeasured_rounds == 2


@pytest.mark.parametrize("rounds", [1, 5, 20, 49, 50, 100])
def test_every_test_gets_enough_control_slots(rounds: int) -> None:
    slots = control_slots(rounds)
    assert 0 in slots and all(0 <= index < rounds for index in slots)
    assert len(slots) >= min(rounds, MIN_CONTROL_SLOTS)


@pytest.mark.parametrize(("rounds", "runs", "each"), [(20, 6, 3), (100, 6, 17), (40, 6, 7), (20, 4, 5), (5, 6, 3)])
def test_a_run_of_several_gets_its_share_of_the_rounds(rounds: int, runs: int, each: int) -> None:
    assert scaled_rounds(rounds, 1.0 / runs) == each
    assert scaled_rounds(rounds, 1.0) == rounds


def test_a_run_of_several_times_one_control_slot_before_its_first_round() -> None:
    # --against judges a run on its raw figure beside its partner's; its control only shows both
    # sides saw the same machine. A whole run's floor is compared with a baseline's from another hour.
    whole, whole_recorder = _capturing()
    whole.pedantic(lambda: None, rounds=20)
    part, part_recorder = _capturing(round_scale=1 / 6)
    part.pedantic(lambda: None, rounds=100)  # 17 rounds
    assert part_recorder.events.count("timed") == 17
    assert _slots(part_recorder.events) == list(range(RUN_CONTROL_SLOTS)) == [0]
    assert len(_slots(whole_recorder.events)) == MIN_CONTROL_SLOTS


@pytest.mark.parametrize(("round_scale", "seconds_per_call", "warmed"), [
    (1 / 6, 0.7, False),   # a later run of several, slow calls: the earlier run told their time
    (1 / 6, None, True),   # the first run of several: nothing known yet
    (1 / 6, 0.02, True),   # fast calls: a warm-up costs little and steadies many rounds
    (1.0, 0.7, True),      # a whole run always warms up
])
def test_only_a_later_run_of_a_slow_test_skips_its_warm_up(round_scale: float, seconds_per_call: float | None,
                                                          warmed: bool) -> None:
    capturing, recorder = _capturing(round_scale, seconds_per_call)
    capturing(lambda: recorder.events.append("call"))
    assert (recorder.events[0] == "call") is warmed  # the warm-up call comes before any round or control
    if seconds_per_call == 0.7 and round_scale < 1:
        assert recorder.events.count("timed") == scaled_rounds(20, round_scale)  # the rounds a 0.7 s call gets
    pedantic, pedantic_recorder = _capturing(round_scale, seconds_per_call)
    pedantic.pedantic(lambda: None, setup=lambda: None, rounds=20, warmup_rounds=1)
    assert pedantic_recorder.events.count("warm-up") == int(warmed)
