"""Objects handed to tests by the plugin's function-scoped fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from modelperf.measure.accuracy import AccuracyResult, ExampleError, evaluate_sentiment
from modelperf.measure.instrument import Instrument
from modelperf.records import Kind, Measurement

__all__ = ["AccuracyRecorder"]

PROGRESS_AFTER_EXAMPLES = 64  # shorter runs finish in a few seconds and need no progress bar


class AccuracyRecorder:
    """Runs a model over a labelled set and hands the per-example result to the test's accuracy instrument."""

    def __init__(self, instrument: Instrument, item: pytest.Item) -> None:
        self._instrument = instrument
        self._item = item
        self.recorded: list[Any] = []

    def evaluate(self, model: Any, data: Any, split: str = "test") -> AccuracyResult:
        """Classify ``data``'s ``split`` examples (all of them for a user's set without splits)."""
        examples = data.split(split) or data.examples
        warning = getattr(data, "warning", None)
        if warning:
            from modelperf.pytest.session import add_summary_line

            add_summary_line(self._item, "modelperf: dataset", warning)
        try:
            with self._progress(len(examples), f"{model.info.name} on {data.name}") as advance:
                result = evaluate_sentiment(model, examples, data.name, data.sha256, advance)
        except ExampleError as exc:
            raise pytest.fail.Exception(f"{self._item.nodeid}: {exc}", pytrace=False) from None
        self.record(result)
        return result

    def record(self, result: AccuracyResult) -> None:
        self.recorded.append(result)
        self._instrument.record(result.to_measurement(self._item.nodeid))

    def _progress(self, total: int, label: str) -> Any:
        import contextlib

        from tqdm import tqdm

        config = self._item.config
        capture = config.pluginmanager.getplugin("capturemanager")
        quiet = total < PROGRESS_AFTER_EXAMPLES or capture is None or config.option.verbose < 0

        @contextlib.contextmanager
        def bar() -> Any:
            if quiet:
                yield lambda n: None
                return
            # Output capture would hide the bar until the test ends; show it live instead.
            with capture.global_and_fixture_disabled(), tqdm(total=total, desc=label, unit="ex",
                                                             leave=False) as progress:
                yield progress.update

        return bar()

    def record_perplexity(self, model: Any, result: Any) -> None:
        """Record a perplexity figure (lower is better) for comparison with the baseline."""
        measurement = Measurement(
            self._item.nodeid, Kind.ACCURACY, "perplexity", "ppl", float(result.value), (float(result.value),), (),
            model.info.key, info={"scored_tokens": result.scored_tokens, "chunks": result.chunks,
                                  "window": result.context})
        self._instrument.record(measurement)
        self.recorded.append(result)
