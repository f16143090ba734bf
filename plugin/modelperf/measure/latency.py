"""Latency figures from pytest-benchmark's fixture, with the control workload beside them.

pytest-benchmark is the timing engine: its calibrated rounds give the samples. What this module
adds is what the fixture lacks for a trustworthy gate on a noisy machine: a fixed control workload
timed between the timed rounds (a slot of CONTROL_PER_SLOT control rounds before every
CONTROL_EVERY-th round), so a later run can tell how fast the machine is right now, and, when a
test looks regressed or ran on a busy machine, a re-measurement in the same pattern.

Why interleaved and not a few large slots, which disturb the timed rounds less: the model's speed
drifts by a few per cent over seconds on a shared host (cache and memory contention from other
tenants) in ways a control in separate slots does not see: in slots, the control did not follow the
model and the gate gave false alarms that interleaving removed. The price is some harness overhead on
the median of the timed rounds. The measurements: docs/concepts/design-measurements.md#interleaved-control.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pytest_benchmark.fixture import BenchmarkFixture

from modelperf.figures import statistic_of
from modelperf.markers import LatencyOptions
from modelperf.measure.control import QuietestControl, choose_control
from modelperf.measure.instrument import Instrument, MeasureContext, Target, model_key
from modelperf.models.base import Model
from modelperf.records import Kind, LatencyDetail, Measurement

__all__ = ["BUSY_LIMIT", "CONTROL_EVERY", "CONTROL_PER_SLOT", "MIN_CONTROL_SLOTS", "RUN_CONTROL_SLOTS",
           "CapturingBenchmark", "LatencyCapture", "LatencyInstrument", "choose_rounds", "control_slots",
           "measurement_from_benchmark", "pool_runs", "pooled", "remeasure", "scaled_rounds"]

CONTROL_EVERY = 5  # a control slot before every 5th timed round (before every one: +4-6 % on a 10 ms call)
CONTROL_PER_SLOT = 3  # gate benchmark: 1 per slot gave 8 % A/A false alarms, 3 gave 1 %
MIN_CONTROL_SLOTS = 10  # fewer slots give too noisy a control floor (seen: x0.83 from 4 slots)
# A run of several (--against) is judged on its raw figure beside its partner run's, measured turn
# by turn (modelperf.decide.paired says why not corrected); its control only shows that both sides saw
# the same machine. So one slot, before the first round: more slots and their re-warming calls cost
# a large share of an --against session (docs/concepts/design-measurements.md#against-raw-figures).
RUN_CONTROL_SLOTS = 1
# Rounds are chosen so a test costs about ROUND_BUDGET_S of timed calls, within these bounds:
# fewer than 20 rounds leave a lower decile of 2 rounds, more than 100 add little but time.
ROUND_BUDGET_S = 2.0
MIN_ROUNDS, MAX_ROUNDS = 20, 100
# A run of several (--against's worker runs) keeps at least this many rounds. For slow calls (prefill,
# decode) a run gets only these: with 10 processes a side, a pass is then 30 calls a side, 1.5 times a
# single run's 20 (3 rounds were chosen at 6 processes, where a pass came to 18).
MIN_RUN_ROUNDS = 3
# In a run of several, calls longer than this get no untimed re-warming call after a control slot,
# and, once an earlier run of the test has told their time per call, no warm-up call either.
REWARM_BELOW_S = 0.1
# A test whose control floor is this much above the session's quietest ran on a busy machine: it is
# re-measured before it is compared or saved: disturbed tests run their control well past this, quiet
# tests stay within a few per cent of each other (docs/concepts/design-measurements.md#drift-limit).
BUSY_LIMIT = 1.10


@dataclass
class LatencyCapture:
    """What the test handed to ``benchmark(...)``, kept so the call can be timed again."""

    target: Callable[..., Any] | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def control_slots(rounds: int) -> frozenset[int]:
    """Indexes of a whole run's timed rounds that a control slot runs before: every CONTROL_EVERY-th,
    or closer together so a test of few rounds still gets MIN_CONTROL_SLOTS slots.
    """
    every = max(1, min(CONTROL_EVERY, rounds // MIN_CONTROL_SLOTS))
    return frozenset(range(0, rounds, every))


def choose_rounds(seconds_per_call: float) -> int:
    return max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(ROUND_BUDGET_S / max(seconds_per_call, 1e-9))))


def scaled_rounds(rounds: int, scale: float) -> int:
    """``rounds`` for one run of several: ``scale`` of them (rounded: 20 rounds over 6 runs are 3 a run,
    not 4, which cost a slow test a fifth more time), never fewer than MIN_RUN_ROUNDS (nor than asked)."""
    return rounds if scale >= 1.0 else min(rounds, max(MIN_RUN_ROUNDS, round(rounds * scale)))


class CapturingBenchmark(BenchmarkFixture):
    """pytest-benchmark's fixture with control slots between its timed rounds.

    A subclass so that pytest-benchmark's own hooks accept it as the ``benchmark`` a test used; it
    wraps the real fixture (``fixture``) rather than being one, and hands it whatever is set on it.

    ``benchmark(fn)`` becomes ``pedantic(fn, setup=<control slot every few rounds>, rounds=<chosen>)``:
    pytest-benchmark still times the rounds, and its ``setup`` runs the control outside the timed
    region. A test's own ``pedantic(..., setup=...)`` keeps its setup, which runs after the control.
    """

    def __init__(self, fixture: Any, control: Callable[[], float] | None = None, round_scale: float = 1.0,
                 pace: Callable[[], None] | None = None, seconds_per_call: float | None = None) -> None:
        # BenchmarkFixture.__init__ is not called: every attribute not set here is the wrapped fixture's.
        object.__setattr__(self, "_fixture", fixture)
        self._control = control
        self._scale = round_scale
        self._one_of_several = round_scale < 1.0
        # A run of several after the first knows the test's time per call from an earlier run. A slow
        # test's warm-up call then only costs time: 12 runs of a 0.7 s prefill paid 8 s for them, and a
        # cold first round barely moves a lower decile. The first run of each test still warms up.
        # Set only in that case: the time per call that chooses the rounds instead of a warm-up call.
        self._known_slow_seconds = (seconds_per_call if self._one_of_several and seconds_per_call is not None
                                    and seconds_per_call >= REWARM_BELOW_S else None)
        # Called before every round, ahead of its control slot: an --against worker hands the machine
        # to its partner process there, so the two sides' rounds alternate (see Target.pace).
        self._pace = pace or (lambda: None)
        self.controls: list[float] = []
        self.capture = LatencyCapture()

    def attach(self, control: Callable[[], float]) -> None:
        """Set the control round: the fixture exists before the test's models, which the control walks."""
        self._control = control

    def _control_slot(self) -> None:
        if self._control is None:
            raise RuntimeError("benchmark(...) was called before the test body started (in a fixture's set-up?): "
                               "call it from the test, or from a fixture while the test runs.")
        control = self._control
        self.controls.extend(control() for _ in range(CONTROL_PER_SLOT))

    def _slots(self, rounds: int) -> frozenset[int]:
        """The rounds a control slot runs before: a whole run's spread-out slots, or a run of several's one."""
        return control_slots(rounds) if not self._one_of_several else frozenset(range(min(rounds, RUN_CONTROL_SLOTS)))

    def __call__(self, target: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.capture = LatencyCapture(target, args, kwargs)
        if self._known_slow_seconds is not None:
            seconds = self._known_slow_seconds
        else:
            start = time.perf_counter()
            target(*args, **kwargs)  # warm-up, and the time per call that sets the number of rounds
            seconds = time.perf_counter() - start
        rounds = scaled_rounds(choose_rounds(seconds), self._scale)
        slots = self._slots(rounds)
        calls = iter(range(1 << 62))
        # A run of several has few rounds: a re-warming call per slot would double a long call's
        # cost, for a pause effect that is a small share of it.
        rewarm = not self._one_of_several or seconds < REWARM_BELOW_S

        def control_then_rewarm() -> None:
            self._pace()
            if next(calls) in slots:
                self._control_slot()
                # Any pause slows the next call by 5-10 % (caches, idle CPU); one untimed call after
                # the control restores the back-to-back steady state the other rounds run in.
                if rewarm:
                    target(*args, **kwargs)

        return self._fixture.pedantic(target, args=args, kwargs=kwargs, setup=control_then_rewarm, rounds=rounds)

    def pedantic(  # type: ignore[override]
            self, target: Callable[..., Any], args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                 setup: Callable[[], Any] | None = None, **options: Any) -> Any:
        if setup is None:  # with a setup function the call cannot be repeated faithfully on its own
            self.capture = LatencyCapture(target, tuple(args), dict(kwargs or {}))
        if "rounds" in options:
            options["rounds"] = scaled_rounds(int(options["rounds"]), self._scale)
        if self._known_slow_seconds is not None:
            options["warmup_rounds"] = 0
        if int(options.get("iterations", 1)) > 1:
            # pytest-benchmark refuses a setup with several iterations: a control block before and after.
            before, after = (RUN_CONTROL_SLOTS, 0) if self._one_of_several else (MIN_CONTROL_SLOTS // 2,) * 2
            for _ in range(before):
                self._control_slot()
            result = self._fixture.pedantic(target, args=args, kwargs=kwargs, setup=setup, **options)
            for _ in range(after):
                self._control_slot()
            return result
        # make_arguments() runs setup before warm-up rounds too: count them in.
        warmup = int(options.get("warmup_rounds", 0))
        slots = {warmup + index for index in self._slots(int(options.get("rounds", 1)))}
        calls = iter(range(1 << 62))

        def control_then_setup() -> Any:
            self._pace()
            if next(calls) in slots:
                self._control_slot()
            return setup() if setup is not None else None

        return self._fixture.pedantic(target, args=args, kwargs=kwargs, setup=control_then_setup, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fixture, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # pytest-benchmark's makereport sets ``skipped`` on what funcargs holds: it is the real fixture's.
        if name in _OURS:
            object.__setattr__(self, name, value)
        else:
            setattr(self._fixture, name, value)

    @property
    def fixture(self) -> Any:
        return self._fixture


# CapturingBenchmark's own attributes; every other one set on it is the wrapped fixture's.
_OURS = frozenset({"_control", "_scale", "_one_of_several", "_known_slow_seconds", "_pace", "controls", "capture"})


def measurement_from_benchmark(
    fixture: Any, test_id: str, control: tuple[float, ...], model: str | None, statistic: str, control_version: str
) -> Measurement | None:
    """The Measurement of a finished ``benchmark`` call, or None when it measured nothing.

    ``control`` holds the control rounds run between the timed rounds.
    """
    stats = getattr(fixture, "stats", None)
    data = tuple(float(x) for x in getattr(getattr(stats, "stats", None), "data", ()) or ())
    if not data:
        return None
    value = statistic_of(statistic, data)
    detail = LatencyDetail(statistic, len(data), int(getattr(stats, "iterations", 1)), control_version)
    # The test's own figures (benchmark.extra_info["tokens_per_s"] = ...) are kept for people to read.
    info = {k: v for k, v in dict(getattr(fixture, "extra_info", {}) or {}).items()
            if isinstance(v, (int, float, str, bool))}
    return Measurement(test_id, Kind.LATENCY, f"{statistic}_s", "s", value, data, control, model, latency=detail,
                       info=info)


def pool_runs(runs: Sequence[Measurement]) -> Measurement:
    """One Measurement holding every round and control round of several runs of one test (the first
    run's identity and statistic, recomputed over all the rounds)."""
    first = runs[0]
    samples = tuple(s for m in runs for s in m.samples)
    control = tuple(s for m in runs for s in m.control)
    detail = replace(first.latency or LatencyDetail(), rounds=len(samples))
    return replace(first, value=statistic_of(first.statistic, samples), samples=samples, control=control,
                   latency=detail)


def pooled(first: Measurement, rerun: Measurement) -> Measurement:
    """One Measurement holding the samples and control rounds of a first run and its re-measurement."""
    both = pool_runs((first, rerun))
    return replace(both, latency=replace(both.latency or LatencyDetail(), remeasured_rounds=len(rerun.samples)))


def remeasure(capture: LatencyCapture, control: Callable[[], float], first: Measurement) -> Measurement:
    """Time the captured call again in the same pattern as CapturingBenchmark: a fresh Measurement.

    As many rounds as the first run, and no more than its time budget buys.
    """
    assert capture.target is not None
    rounds = min(len(first.samples), choose_rounds(statistics.median(first.samples)))
    samples: list[float] = []
    controls: list[float] = []
    slots = control_slots(rounds)
    for index in range(rounds):
        if index in slots:
            controls.extend(control() for _ in range(CONTROL_PER_SLOT))
            capture.target(*capture.args, **capture.kwargs)  # untimed, as in CapturingBenchmark
        start = time.perf_counter()
        capture.target(*capture.args, **capture.kwargs)
        samples.append(time.perf_counter() - start)
    detail = replace(first.latency or LatencyDetail(), rounds=rounds, iterations=1, remeasured_alone=True)
    return replace(first, value=statistic_of(first.statistic, samples), samples=tuple(samples),
                   control=tuple(controls), latency=detail)


SETUP_SECTION = "modelperf: measurement set-up"
BUSY_SECTION = "modelperf: re-measured because the machine was busy"


class LatencyInstrument(Instrument):
    """Latency through pytest-benchmark's fixture, the control workload between its rounds.

    The fixture times the rounds (see :meth:`fixture_value`); this adds the control slots, re-measures a test that ran on a busy
    machine, and sets glibc's malloc up as the session asks (:mod:`modelperf.measure.allocator`).
    """

    marker: ClassVar[str] = "latency"

    def __init__(self, target: Target, context: MeasureContext) -> None:
        super().__init__(target, context)
        assert isinstance(target.options, LatencyOptions)
        self.options = target.options
        self.proxy: CapturingBenchmark | None = None
        self._timer: Callable[[], float] | None = None
        self._identity = ""
        self._floor_key: tuple[int, str] = (0, "")
        self._model: str | None = None
        self._malloc = contextlib.ExitStack()

    @classmethod
    def new_state(cls) -> QuietestControl:
        return QuietestControl()

    def fixture_value(self, upstream: Any) -> CapturingBenchmark:
        """The ``benchmark`` a test gets: pytest-benchmark's fixture with control slots between rounds."""
        plan = self.context.plan
        self.proxy = CapturingBenchmark(upstream, self._timer, plan.round_scale, plan.pace, plan.seconds_per_call)
        return self.proxy

    def _quietest(self) -> QuietestControl:
        found = self.state
        assert isinstance(found, QuietestControl), "the session's MeasureContext has no latency state"
        return found

    def start(self, models: Mapping[str, Model]) -> None:
        from modelperf.measure.allocator import settle_malloc, steady_malloc

        if self.context.fixed_malloc:
            fixed = self._malloc.enter_context(steady_malloc())
            if fixed:
                self.notes.append((SETUP_SECTION, fixed))
        elif self.context.settle_malloc:
            settle_malloc()
        self._model = model_key(models)
        timer, self._identity, threads = choose_control(models)
        self._timer = timer
        timer()  # warm-up: first-call allocations are not the machine's speed
        self._floor_key = (threads, self._identity)
        if self.context.plan.remeasure_busy:  # the quietest floor only serves to spot a busy machine
            self._quietest().calibrate(self._floor_key, timer)
        if self.proxy is not None:
            self.proxy.attach(timer)

    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        if failed or self.proxy is None:
            return ()
        current = measurement_from_benchmark(self.proxy.fixture, self.target.test_id, tuple(self.proxy.controls),
                                             self._model, self.options.statistic, self._identity)
        if current is None:
            return ()
        busy = self._quietest().busy_factor(self._floor_key, current.control)
        if busy > BUSY_LIMIT and self.context.plan.remeasure_busy:
            # Re-measure before comparing or saving; the pooled lower decile keeps the quieter rounds.
            again = self.remeasure(current)
            if again is not None:
                current = replace(again, latency=replace(again.latency or LatencyDetail(), busy_factor=round(busy, 4)))
                why = f"{self.target.test_id}: its control ran x{busy:.2f} slower than this session's quietest"
                self.notes.append((BUSY_SECTION, why))
        return (current,)

    def remeasure(self, first: Measurement) -> Measurement | None:
        """``first`` pooled with a re-measurement of the same call; None when the call cannot be repeated."""
        if self.proxy is None or self.proxy.capture.target is None or self._timer is None:
            return None
        return pooled(first, remeasure(self.proxy.capture, self._timer, first))

    def close(self) -> None:
        self._malloc.close()
