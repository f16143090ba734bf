"""History rows as the reports read them: series per machine, test and metric, a run's spread, the
latest run's summary, and the change its verdict was made on.

Pure functions of :class:`~modelperf.store.history.HistoryRow` values; every report (``modelperf
history``, the markdown summary, the HTML page) takes them from here, so none imports another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelperf.records import Kind
from modelperf.store.history import HistoryRow

__all__ = ["SPREAD_LABEL", "SeriesKey", "SummaryLine", "latest_summary", "series_by_key", "spread", "verdict",
           "verdict_change"]

SeriesKey = tuple[str, str, str]  # (hardware_id, test_id, metric)

# What the band around each point is: the run's own spread, so one noisy run reads as noisy.
SPREAD_LABEL = "spread of each run (rounds p10-p90; accuracy 95% Wilson)"
_SPREAD_QUANTILES = (0.10, 0.90)


@dataclass(frozen=True)
class SummaryLine:
    """One figure of the latest run on a hardware id, beside the same figure one run earlier."""

    hardware_id: str
    run_id: str
    test_id: str
    metric: str
    unit: str
    value: float
    previous: float | None
    verdict: str
    against_baseline: str | None = None  # the change the verdict was made on, when there was one
    model: str | None = None


def verdict(row: HistoryRow) -> str:
    """The verdict the session stored with the figure; empty for rows written before verdicts were."""
    return row.judgement.verdict.value if row.judgement is not None else ""


def verdict_change(row: HistoryRow) -> str | None:
    """The change a verdict was made on: latency's drift-corrected ratio, else the figure against the
    baseline; None for a run that compared nothing."""
    judged = row.judgement
    if judged is None:
        return None
    ratio, baseline = judged.ratio, judged.reference
    if ratio is not None and math.isfinite(ratio):
        low, high = judged.ratio_low, judged.ratio_high
        if low is not None and high is not None:
            return f"{ratio - 1:+.1%} ({low - 1:+.1%} to {high - 1:+.1%}) vs baseline (drift-corrected)"
        return f"{ratio - 1:+.1%} vs baseline (drift-corrected)"
    if baseline:
        return f"{row.value / baseline - 1:+.1%} vs baseline"
    return None


def series_by_key(rows: Sequence[HistoryRow]) -> dict[SeriesKey, list[HistoryRow]]:
    """Rows grouped by hardware, test and metric, each group oldest first as the store gives it."""
    grouped: dict[SeriesKey, list[HistoryRow]] = {}
    for row in rows:
        grouped.setdefault((row.hardware_id, row.test_id, row.metric), []).append(row)
    return grouped


def latest_summary(rows: Sequence[HistoryRow]) -> list[SummaryLine]:
    """The figures of the newest run of each hardware id, each with its value one run earlier."""
    latest_run: dict[str, HistoryRow] = {}
    for row in rows:
        latest_run[row.hardware_id] = row  # rows come oldest first, so the last one wins
    lines = []
    for (hardware, _test, _metric), points in series_by_key(rows).items():
        last = points[-1]
        if last.run_id != latest_run[hardware].run_id:
            continue  # this figure was not measured in the latest run
        previous = points[-2].value if len(points) > 1 else None
        lines.append(SummaryLine(hardware, last.run_id, last.test_id, last.metric, last.unit, last.value, previous,
                                 verdict(last), verdict_change(last), last.model))
    return sorted(lines, key=lambda s: (s.hardware_id, s.test_id, s.metric))


def spread(point: HistoryRow) -> tuple[float, float]:
    """The interval a run's figure came with: Wilson for per-example accuracy, else its samples' p10-p90."""
    samples = point.samples
    if point.kind is Kind.ACCURACY and samples and set(samples) <= {0.0, 1.0}:
        from modelperf.decide import wilson_interval  # scipy: only for reports that show accuracy

        return wilson_interval(int(sum(samples)), len(samples))
    if len(samples) < 2:
        return point.value, point.value
    ordered = sorted(samples)
    pick = [ordered[round(q * (len(ordered) - 1))] for q in _SPREAD_QUANTILES]
    return min(pick[0], point.value), max(pick[1], point.value)
