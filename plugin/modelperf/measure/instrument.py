"""The one interface every way of measuring a test implements, and the registry keyed by marker name.

An :class:`Instrument` measures one test body: ``start`` before it, ``stop`` after it (returning the
figures as :class:`~modelperf.records.Measurement` records), ``close`` when the caller is done with it.
It never decides pass or fail and knows nothing of pytest, so the plugin's hooks and a worker process
that measures a test for another process drive it the same way::

    instrument = create("peak_memory", Target("tests/test_x.py::test_load", MemoryOptions()))
    with instrument.measuring(models) as measured:
        body()
    figures = measured.measurements
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelperf.markers import MarkerOptions
from modelperf.models.base import Model
from modelperf.records import Measurement

__all__ = ["INSTRUMENTS", "Instrument", "Measured", "Target", "create", "model_key"]


@dataclass(frozen=True)
class Target:
    """What an instrument measures: one test, its marker's options, and where it may keep files.

    ``shared`` holds state that outlives one test (latency's quietest control floors), keyed by the
    instrument that owns it; a worker process that measures several tests passes the same mapping.
    ``round_scale`` scales a latency test's rounds: an ``--against`` worker runs a share of them, as
    one of several runs. ``remeasure_busy`` re-measures a test whose control ran slow; ``--against``
    needs no such repair, since its interleaved blocks put the two sides through the same moments.
    ``pace``, where set, runs before every timed round of a latency test: an ``--against`` worker
    waits there for its turn, so that its rounds alternate with its partner's on the other side.
    ``seconds_per_call``, where set, is a latency test's time per call from an earlier run of it in
    this session (an ``--against`` run after the first): a slow test then skips its warm-up call.
    """

    test_id: str
    options: MarkerOptions
    capture_dir: Path = Path(".modelperf/captures")
    keep_captures: bool = False
    shared: dict[str, Any] = field(default_factory=dict)
    round_scale: float = 1.0
    remeasure_busy: bool = True
    pace: Callable[[], None] | None = None
    seconds_per_call: float | None = None


@dataclass
class Measured:
    """What :meth:`Instrument.measuring` hands back: filled in when the block ends."""

    measurements: tuple[Measurement, ...] = ()


class Instrument(ABC):
    """Measures one test body; implemented by latency, peak memory and accuracy."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # (summary section, line) pairs for the end-of-session summary, e.g. why a test was re-measured.
        self.notes: list[tuple[str, str]] = []

    @abstractmethod
    def start(self, models: Mapping[str, Model]) -> None:
        """Called just before the body runs; ``models`` are the model fixtures the test uses."""

    @abstractmethod
    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        """Called just after the body; the figures it measured (none when a failed body makes them moot)."""

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


def _latency(target: Target) -> Instrument:
    from modelperf.measure.latency import LatencyInstrument

    return LatencyInstrument(target)


def _memory(target: Target) -> Instrument:
    from modelperf.measure.memory_instrument import MemoryInstrument  # memray loads only when used

    return MemoryInstrument(target)


def _accuracy(target: Target) -> Instrument:
    from modelperf.measure.accuracy import AccuracyInstrument

    return AccuracyInstrument(target)


# Marker name -> factory; the same keys as modelperf.markers.MARKERS (tested).
INSTRUMENTS: dict[str, Callable[[Target], Instrument]] = {
    "latency": _latency,
    "peak_memory": _memory,
    "accuracy": _accuracy,
}


def create(marker: str, target: Target) -> Instrument:
    """The instrument of ``marker`` for ``target``."""
    return INSTRUMENTS[marker](target)
