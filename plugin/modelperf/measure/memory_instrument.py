"""The ``peak_memory`` marker's instrument: memray and RSS around the test body, as one Measurement.

The capture file outlives :meth:`MemoryInstrument.stop` because whether it is worth keeping (a
regression, or ``--keep-captures``) is known only once the figure has been judged: the caller says
so with :meth:`~MemoryInstrument.after_verdict` before :meth:`~MemoryInstrument.close`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from modelperf.markers import MemoryOptions
from modelperf.measure.instrument import Instrument, MeasureContext, Target, model_key
from modelperf.measure.memory import MemoryResult, MemoryTracker
from modelperf.models.base import Model
from modelperf.records import Kind, Measurement, MemoryDetail, TestResult

__all__ = ["MemoryInstrument"]


class MemoryInstrument(Instrument):
    """Peak memory of the test body: memray's high-water mark and the RSS growth, either one asserted."""

    marker: ClassVar[str] = "peak_memory"

    def __init__(self, target: Target, context: MeasureContext) -> None:
        super().__init__(target, context)
        assert isinstance(target.options, MemoryOptions)
        self.options = target.options
        self.tracker = MemoryTracker(context.capture_dir, keep_capture=None, label=target.test_id)
        self.result: MemoryResult | None = None
        self._model: str | None = None
        self._keep = context.keep_captures

    def start(self, models: Mapping[str, Model]) -> None:
        from modelperf.measure.allocator import release_free_memory

        self._model = model_key(models)
        release_free_memory()
        self.tracker.start()

    def stop(self, failed: bool) -> tuple[Measurement, ...]:
        self.tracker.stop(failed=False)  # the body's exception is the caller's to report
        found = self.tracker.result
        if failed or found is None:
            self._keep = False
            return ()
        self.result = found
        use_rss = self.options.figure == "rss"
        value = float(found.rss_delta_bytes if use_rss else found.memray_peak_bytes)
        detail = MemoryDetail(self.options.figure, found.memray_peak_bytes, found.rss_peak_bytes,
                              found.rss_delta_bytes)
        metric = "rss_delta_bytes" if use_rss else "memray_peak_bytes"
        return (Measurement(self.target.test_id, Kind.MEMORY, metric, "B", value, (value,), (), self._model,
                            memory=detail),)

    def after_verdict(self, result: TestResult) -> str | None:
        """A regression keeps its capture file for ``memray flamegraph`` (``close`` deletes it otherwise)
        and gets the largest allocations as a report section."""
        if not result.regressed or self.result is None:
            return None
        self._keep = True
        return self.result.section()

    def close(self) -> None:
        if self._keep and self.result is not None:
            self.tracker.keep()
        else:
            self.tracker.discard()
