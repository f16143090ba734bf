"""The one interface every way of measuring a test implements, and the registry keyed by marker name.

An :class:`Instrument` measures one test body: ``start`` before it, ``stop`` after it (returning the
figures as :class:`~modelperf.records.Measurement` records), ``close`` when the caller is done with it.
It gets the session's :class:`MeasureContext` and its own marker's typed options (in its
:class:`Target`), nothing else; it never decides pass or fail and knows nothing of pytest, so the
plugin's hooks and a worker process that measures a test for another process drive it the same way::

    instrument = create("peak_memory", Target("tests/test_x.py::test_load", MemoryOptions()), MeasureContext())
    with instrument.measuring(models) as measured:
        body()
    figures = measured.measurements

Adding an instrument is one module (its options in :mod:`modelperf.markers`, its class here) and one
line in :data:`INSTRUMENTS`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from modelperf.markers import MarkerOptions
from modelperf.models.base import Model
from modelperf.records import Measurement, TestResult

__all__ = ["INSTRUMENTS", "Instrument", "MeasureContext", "Measured", "Pace", "RunPlan", "Target", "create",
           "model_key"]


@dataclass(frozen=True)
class Target:
    """What an instrument measures: one test and its marker's options."""

    test_id: str
    options: MarkerOptions


class Pace(Protocol):
    """Where a paced run may hand the machine to its partner: once its turn has lasted long enough,
    or at once with ``now`` (a load test between its phases)."""

    def __call__(self, now: bool = False) -> None: ...


@dataclass(frozen=True)
class RunPlan:
    """How the tests of this process are run: as a whole (the default), or as one run of several.

    ``round_scale`` scales a latency test's rounds, and a load test's duration and request budget: an
    ``--against`` worker runs a share of them.
    ``remeasure_busy`` re-measures a test whose control ran slow; ``--against`` needs no such repair,
    since its interleaved blocks put the two sides through the same moments. ``pace``, where set,
    runs before every timed round: an ``--against`` worker waits there for its turn, so that its
    rounds alternate with its partner's; a load test hands over between its phases. ``seconds_per_call``, where set, is a test's time per call
    from an earlier run of it in this session: a slow test then skips its warm-up call.
    """

    round_scale: float = 1.0
    remeasure_busy: bool = True
    pace: Pace | None = None
    seconds_per_call: float | None = None


@dataclass(frozen=True)
class MeasureContext:
    """The session's settings every instrument may read: where captures go, and the run plan."""

    capture_dir: Path = Path(".modelperf/captures")
    keep_captures: bool = False
    plan: RunPlan = RunPlan()
    # glibc malloc during latency tests: its thresholds fixed (--malloc-thresholds fixed), or left its own
    # and, where figures must not depend on test order (stored baselines), settled before the first one.
    fixed_malloc: bool = False
    settle_malloc: bool = False
    # Per marker, state that outlives one test (latency's quietest control floors), filled by create().
    states: dict[str, Any] = field(default_factory=dict)


@dataclass
class Measured:
    """What :meth:`Instrument.measuring` hands back: filled in when the block ends."""

    measurements: tuple[Measurement, ...] = ()


class Instrument(ABC):
    """Measures one test body; implemented by latency, peak memory and accuracy."""

    # The marker whose options this instrument takes (a key of modelperf.markers.MARKERS).
    marker: ClassVar[str]

    def __init__(self, target: Target, context: MeasureContext) -> None:
        self.target = target
        self.context = context
        # (summary section, line) pairs for the end-of-session summary, e.g. why a test was re-measured.
        self.notes: list[tuple[str, str]] = []

    @classmethod
    def new_state(cls) -> Any:
        """State shared by this instrument's tests for a whole session (None: it needs none)."""
        return None

    @property
    def state(self) -> Any:
        return self.context.states.get(self.marker)

    def fixture_value(self, upstream: Any) -> Any:
        """What a test gets from the fixture this instrument serves (latency wraps ``benchmark``)."""
        return upstream

    def record(self, measurement: Measurement) -> None:
        """A figure the test body measured itself (accuracy hands its figures in this way)."""
        raise TypeError(f"@pytest.mark.{self.marker} measures the test body itself; it takes no recorded figures.")

    @abstractmethod
    def start(self, models: Mapping[str, Model]) -> None:
        """Called just before the body runs; ``models`` are the model fixtures the test uses."""

    @abstractmethod
    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        """Called just after the body; the figures it measured (none when a failed body makes them moot)."""

    def remeasure(self, first: Measurement) -> Measurement | None:
        """``first`` pooled with a re-measurement of the same call, or None where it cannot be repeated."""
        return None

    def after_verdict(self, result: TestResult) -> str | None:
        """Told the verdict of one of its figures; may return a report section for a failed test."""
        return None

    def close(self) -> None:
        """Release what :meth:`start` took; called once, after the figures have been judged."""

    @contextmanager
    def measuring(self, models: Mapping[str, Model] | None = None) -> Iterator[Measured]:
        """``start``, the block, ``stop`` and ``close``: the way to drive an instrument outside pytest."""
        measured = Measured()
        self.start(models or {})
        try:
            try:
                yield measured
            except BaseException:
                self.stop(failed=True)
                raise
            measured.measurements = self.stop(failed=False)
        finally:
            self.close()


def model_key(models: Mapping[str, Model]) -> str | None:
    """The ``model`` of a Measurement: the keys of the models a test used, comma-separated."""
    return ",".join(model.info.key for model in models.values()) or None


# Marker name -> "module:class" of its instrument, imported when first used (memray loads only then).
INSTRUMENTS: dict[str, str] = {
    "latency": "modelperf.measure.latency:LatencyInstrument",
    "peak_memory": "modelperf.measure.memory_instrument:MemoryInstrument",
    "accuracy": "modelperf.measure.accuracy:AccuracyInstrument",
    "load": "modelperf.measure.load:LoadInstrument",
}


def _class_of(marker: str) -> type[Instrument]:
    module, _, name = INSTRUMENTS[marker].partition(":")
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type) and issubclass(found, Instrument)
    return found


def create(marker: str, target: Target, context: MeasureContext) -> Instrument:
    """The instrument of ``marker`` for ``target``; its session state is made with the first one.

    ``context.states`` is the session's one mutable mapping: an instrument's module (memray's, for
    peak memory) is imported only when a test first uses its marker, never at plugin start-up.
    """
    cls = _class_of(marker)
    states = context.states
    if marker not in states and isinstance(states, dict):
        states[marker] = cls.new_state()
    return cls(target, context)
