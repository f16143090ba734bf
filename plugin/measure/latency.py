"""Latency figures from pytest-benchmark's fixture, with the control workload beside them.

pytest-benchmark is the timing engine: its calibrated rounds give the samples. What this module
adds is what the fixture lacks for a trustworthy gate on a noisy machine: a fixed control workload
timed before and after the test (so a later run can tell how fast the machine is right now), and,
when a test looks regressed, a re-measurement that interleaves the test's call with the control,
so that drift during the re-measurement affects both alike.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelperf.records import Kind, Measurement

__all__ = ["CapturingBenchmark", "LatencyCapture", "choose_rounds", "interleaved_measurement",
           "measurement_from_benchmark", "pooled"]

CONFIRM_ROUNDS = 60  # rounds of a re-measurement when a regression must be confirmed
# A control round runs before every CONTROL_EVERY-th timed round: often enough to follow drift
# through the test, rarely enough that the timed calls stay back to back (measured: control before
# every call inflated a 10 ms DistilBERT call by 4-6 %, before every 10th by under 1.5 %).
CONTROL_EVERY = 5
MIN_CONTROLS = 10  # a control median from fewer rounds is too noisy to correct by (seen: x0.83 from 4)
CONTROL_PER_SLOT = 3  # gate benchmark: 1 per slot gave 8 % A/A false alarms, 3 gave 1 % (at a 4 % timing overhead)
# Rounds are chosen so a test costs about ROUND_BUDGET_S of timed calls, within these bounds:
# fewer than 20 rounds cannot reach p < 0.001, more than 100 add little but time.
ROUND_BUDGET_S = 2.0  # of timed calls; each round also makes one untimed call and a control round
MIN_ROUNDS, MAX_ROUNDS = 20, 100


@dataclass
class LatencyCapture:
    """What the test handed to ``benchmark(...)``, kept so the call can be timed again."""

    target: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def control_every(rounds: int) -> int:
    """Timed rounds per control slot: CONTROL_EVERY, or fewer so a test gets MIN_CONTROLS controls."""
    return max(1, min(CONTROL_EVERY, rounds // MIN_CONTROLS))


def choose_rounds(seconds_per_call: float) -> int:
    return max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(ROUND_BUDGET_S / max(seconds_per_call, 1e-9))))


class CapturingBenchmark:
    """pytest-benchmark's fixture with a control round between every few timed rounds.

    Every call becomes ``pedantic(..., setup=<control round>)``: pytest-benchmark still times the
    rounds, and its ``setup`` runs the control workload between them, outside the timed region, so
    test and control see the same machine state. A test's own ``setup`` runs after the control.
    """

    def __init__(self, fixture: Any, control: Callable[[], float]) -> None:
        self._fixture = fixture
        self._control = control
        self.controls: list[float] = []
        self.capture = LatencyCapture()

    def _control_round(self) -> None:
        self.controls.extend(self._control() for _ in range(CONTROL_PER_SLOT))

    def __call__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.capture = LatencyCapture(target, args, kwargs)
        start = time.perf_counter()
        target(*args, **kwargs)  # warm-up, and the time per call that sets the number of rounds
        rounds = choose_rounds(time.perf_counter() - start)

        calls = iter(range(1 << 62))
        every = control_every(rounds)

        def control_then_rewarm() -> None:
            if next(calls) % every == 0:
                self._control_round()
                # Any pause slows the next call by 5-10 % (caches, idle CPU); one untimed call after
                # the control restores the back-to-back steady state the other rounds run in.
                target(*args, **kwargs)

        return self._fixture.pedantic(target, args=args, kwargs=kwargs, setup=control_then_rewarm, rounds=rounds)

    def pedantic(self, target: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                 setup: Callable[[], Any] | None = None, **options: Any) -> Any:
        if setup is None:  # with a setup function the call cannot be repeated faithfully on its own
            self.capture = LatencyCapture(target, tuple(args), dict(kwargs or {}))

        def control_then_setup() -> Any:
            self._control_round()
            return setup() if setup is not None else None

        return self._fixture.pedantic(target, args=args, kwargs=kwargs, setup=control_then_setup, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fixture, name)

    @property
    def fixture(self) -> Any:
        return self._fixture


def _reduce(statistic: str, samples: Sequence[float]) -> float:
    if statistic == "mean":
        return statistics.fmean(samples)
    if statistic == "min":
        return min(samples)
    return float(statistics.median(samples))


def measurement_from_benchmark(
    fixture: Any, test_id: str, control: tuple[float, ...], model: str | None, statistic: str, control_version: int
) -> Measurement | None:
    """The Measurement of a finished ``benchmark`` call, or None when it measured nothing.

    ``control`` holds the control rounds run between the timed rounds.
    """
    stats = getattr(fixture, "stats", None)
    data = tuple(float(x) for x in getattr(getattr(stats, "stats", None), "data", ()) or ())
    if not data:
        return None
    value = _reduce(statistic, data)
    extra: dict[str, Any] = {"statistic": statistic, "rounds": len(data),
                             "iterations": int(getattr(stats, "iterations", 1)), "control_version": control_version}
    extra.update({k: v for k, v in dict(getattr(fixture, "extra_info", {}) or {}).items()
                  if isinstance(v, (int, float, str, bool))})
    return Measurement(test_id, Kind.LATENCY, f"{statistic}_s", "s", value, data, control, model, extra)


def pooled(first: Measurement, rerun: Measurement) -> Measurement:
    """One Measurement holding the samples and control rounds of a first run and its re-measurement."""
    samples, control = first.samples + rerun.samples, first.control + rerun.control
    statistic = str(first.extra.get("statistic", "median"))
    value = _reduce(statistic, samples)
    extra = dict(first.extra, rounds=len(samples), remeasured=len(rerun.samples))
    return Measurement(first.test_id, first.kind, first.metric, first.unit, value, samples, control, first.model, extra)


def interleaved_measurement(
    capture: LatencyCapture, control: Callable[[], float], first: Measurement, rounds: int = CONFIRM_ROUNDS
) -> Measurement:
    """Time the captured call again in the same pattern as CapturingBenchmark: a fresh Measurement."""
    assert capture.target is not None
    samples: list[float] = []
    controls: list[float] = []
    every = control_every(rounds)
    for index in range(rounds):
        if index % every == 0:
            controls.extend(control() for _ in range(CONTROL_PER_SLOT))
            capture.target(*capture.args, **capture.kwargs)  # untimed, as in CapturingBenchmark
        start = time.perf_counter()
        capture.target(*capture.args, **capture.kwargs)
        samples.append(time.perf_counter() - start)
    statistic = str(first.extra.get("statistic", "median"))
    value = _reduce(statistic, samples)
    extra = dict(first.extra, rounds=rounds, iterations=1, interleaved=True)
    return Measurement(first.test_id, first.kind, first.metric, first.unit, value, tuple(samples),
                       tuple(controls), first.model, extra)
