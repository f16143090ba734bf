"""Latency figures from pytest-benchmark's fixture, with the control workload beside them.

pytest-benchmark is the timing engine: its calibrated rounds give the samples. What this module
adds is what the fixture lacks for a trustworthy gate on a noisy machine: a fixed control workload
timed before and after the test (so a later run can tell how fast the machine is right now), and,
when a test looks regressed, a re-measurement that interleaves the test's call with the control,
so that drift during the re-measurement affects both alike.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from modelperf.records import Kind, Measurement

__all__ = ["CapturingBenchmark", "LatencyCapture", "interleaved_measurement", "measurement_from_benchmark"]

CONTROL_ROUNDS = 15  # per side of a test: enough for a stable median at a few ms a round
CONFIRM_ROUNDS = 30  # interleaved pairs when a regression must be confirmed


@dataclass
class LatencyCapture:
    """What the test handed to ``benchmark(...)``, kept so the call can be timed again."""

    target: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class CapturingBenchmark:
    """A transparent stand-in for pytest-benchmark's fixture that remembers the timed call."""

    def __init__(self, fixture: Any) -> None:
        self._fixture = fixture
        self.capture = LatencyCapture()

    def __call__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.capture = LatencyCapture(target, args, kwargs)
        return self._fixture(target, *args, **kwargs)

    def pedantic(self, target: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                 **options: Any) -> Any:
        if options.get("setup") is None:  # with a setup function the call cannot be repeated faithfully
            self.capture = LatencyCapture(target, tuple(args), dict(kwargs or {}))
        return self._fixture.pedantic(target, args=args, kwargs=kwargs, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fixture, name)

    @property
    def fixture(self) -> Any:
        return self._fixture


def measurement_from_benchmark(
    fixture: Any, test_id: str, control: tuple[float, ...], model: str | None, statistic: str
) -> Measurement | None:
    """The Measurement of a finished ``benchmark`` call, or None when it measured nothing."""
    stats = getattr(fixture, "stats", None)
    data = tuple(float(x) for x in getattr(getattr(stats, "stats", None), "data", ()) or ())
    if not data:
        return None
    value = {"median": statistics.median, "mean": statistics.fmean, "min": min}[statistic](data)
    extra: dict[str, Any] = {"statistic": statistic, "rounds": len(data),
                             "iterations": int(getattr(stats, "iterations", 1))}
    extra.update({k: v for k, v in dict(getattr(fixture, "extra_info", {}) or {}).items()
                  if isinstance(v, (int, float, str, bool))})
    return Measurement(test_id, Kind.LATENCY, f"{statistic}_s", "s", value, data, control, model, extra)


def interleaved_measurement(
    capture: LatencyCapture, control: Callable[[], float], first: Measurement, rounds: int = CONFIRM_ROUNDS
) -> Measurement:
    """Time the captured call and the control alternately, ``rounds`` pairs, as a fresh Measurement."""
    assert capture.target is not None
    samples, controls = [], []
    for _ in range(rounds):
        controls.append(control())
        start = time.perf_counter()
        capture.target(*capture.args, **capture.kwargs)
        samples.append(time.perf_counter() - start)
    statistic = str(first.extra.get("statistic", "median"))
    value = {"median": statistics.median, "mean": statistics.fmean, "min": min}[statistic](samples)
    extra = dict(first.extra, rounds=rounds, iterations=1, interleaved=True)
    return Measurement(first.test_id, first.kind, first.metric, first.unit, value, tuple(samples),
                       tuple(controls), first.model, extra)
