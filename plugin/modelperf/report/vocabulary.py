"""What the reports call each metric, and the unit they show it in: the one place for display names.

A stored figure keeps its key and its SI unit (``p10_s`` in seconds, ``memray_peak_bytes`` in bytes,
``accuracy`` as a fraction); that is what the store, baselines and ``modelperf history --metric`` use.
People read "latency p10" in milliseconds, "peak memory (memray)" in MiB and accuracy in percent, so
every report that shows a figure to a person asks :func:`describe` for its :class:`MetricLabel`.

Imports nothing of ours and nothing heavy: the plugin, the CLI and the HTML page all read it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "MetricLabel", "describe", "short_test"]

LOWER_IS_BETTER = "lower"
HIGHER_IS_BETTER = "higher"

_SECONDS = frozenset({"s", "sec", "second", "seconds"})
_BYTES = frozenset({"b", "byte", "bytes"})
_MIB = 2.0**20
_GIB = 2.0**30
# Figures of these keys, whatever their unit: the plugin's own metric names.
_NAMES = {
    "memray_peak_bytes": "peak memory (memray)",
    "rss_delta_bytes": "memory growth (RSS)",
    "rss_peak_bytes": "peak RSS",
    "accuracy": "accuracy",
    "perplexity": "perplexity",
}
# How a latency statistic is named after "latency": the marker's statistic names, plus older keys.
_STATISTICS = ("p10", "p50", "p90", "p95", "p99", "median", "mean", "min", "max")


@dataclass(frozen=True)
class MetricLabel:
    """How one metric reads for people: ``name`` ("latency p10"), the ``unit`` shown ("ms") and the ``scale``
    that takes a stored value to it (1000 for seconds to ms); ``better`` says which way is good."""

    key: str
    name: str
    unit: str
    scale: float = 1.0
    better: str = LOWER_IS_BETTER

    @property
    def title(self) -> str:
        """An axis title, e.g. ``latency p10 (ms)``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    def shown(self, value: float) -> float:
        """A stored value in the unit people read."""
        return value * self.scale

    def format(self, value: float | None) -> str:
        """A stored value as text in the shown unit, e.g. ``12.35 ms``, ``85.0 %``; ``-`` for none."""
        if value is None:
            return "-"
        number = _number(self.shown(value))
        return f"{number} {self.unit}" if self.unit else number


def _number(value: float) -> str:
    """Four significant figures at most, without a float's noise (12.35, 378.2, 0.8512)."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.1f}"
    if size >= 10:
        return f"{value:.2f}"
    return f"{value:.3f}" if size >= 0.01 or size == 0 else f"{value:.3g}"


def describe(metric: str, unit: str, values: Iterable[float] = ()) -> MetricLabel:
    """The label of a metric stored in ``unit``; ``values`` (stored figures) pick a readable scale, so a
    model load of 40 s shows in seconds while a batch-1 call of 12 ms shows in milliseconds."""
    lowered = unit.lower()
    largest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if lowered in _SECONDS:
        shown, scale = _time_unit(largest)
        return MetricLabel(metric, _NAMES.get(metric) or f"latency {_statistic(metric)}", shown, scale)
    if lowered in _BYTES:
        shown, scale = ("GiB", 1 / _GIB) if largest >= 10 * _GIB else ("MiB", 1 / _MIB)
        return MetricLabel(metric, _NAMES.get(metric) or _memory_name(metric), shown, scale)
    if lowered == "fraction":
        return MetricLabel(metric, _NAMES.get(metric) or _words(metric), "%", 100.0, HIGHER_IS_BETTER)
    if lowered == "ppl":
        return MetricLabel(metric, "perplexity", "")
    if lowered.endswith("/s"):  # rates (tokens/s, requests/s): more is better
        return MetricLabel(metric, _NAMES.get(metric) or _words(metric), unit, 1.0, HIGHER_IS_BETTER)
    return MetricLabel(metric, _NAMES.get(metric) or _words(metric), unit)


def _time_unit(largest: float) -> tuple[str, float]:
    if 0 < largest < 1e-3:
        return "µs", 1e6
    if largest >= 10:
        return "s", 1.0
    return "ms", 1e3


def _statistic(metric: str) -> str:
    """``p10_s`` -> ``p10``; a key that is not a statistic keeps its words (``ttft_p99_s`` -> ``ttft p99``)."""
    stem = metric.removesuffix("_s")
    return stem if stem in _STATISTICS else _words(stem)


def _memory_name(metric: str) -> str:
    words = _words(metric.removesuffix("_bytes"))
    return words if "memory" in words else f"{words} memory"


def _words(key: str) -> str:
    return key.replace("_", " ").strip() or key


def short_test(test_id: str) -> str:
    """A test id without its file, as a chart's row label (``test_batch1[distilbert]``)."""
    return test_id.split("::", 1)[-1]
