"""Change points of history series, as the reports name them: the commit where a figure moved.

The statistics live in :mod:`modelperf.trend`; this module maps a step's index back to its run and
phrases it once, for ``modelperf history``, the markdown summary and the HTML report alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelperf.report.series import series_by_key
from modelperf.store.history import HistoryRow
from modelperf.trend import Step, find_steps
from modelperf.units import format_commit, format_time, format_value

__all__ = ["ChangePoint", "change_points", "series_change_points"]

_SHORT_ID = 8  # characters of a run id, as in every other table


@dataclass(frozen=True)
class ChangePoint:
    """A lasting step of one series, at the first run that measured the new level."""

    run: HistoryRow
    step: Step

    def line(self) -> str:
        """E.g. ``+3.0 % at commit abc1234 (run 1a2b3c4d, 2025-01-05 00:00:00): 50.00 ms -> 51.50 ms``."""
        unit = self.run.unit
        return (f"{self.step.change * 100:+.1f} % at commit {format_commit(self.run.commit, self.run.dirty)} "
                f"(run {self.run.run_id[:_SHORT_ID]}, {format_time(self.run.started_at)}): "
                f"{format_value(self.step.before, unit)} -> {format_value(self.step.after, unit)}")


def change_points(points: Sequence[HistoryRow]) -> list[ChangePoint]:
    """The change points of one series (one hardware, test and metric, oldest first)."""
    return [ChangePoint(points[step.index], step) for step in find_steps([p.value for p in points])]


def series_change_points(rows: Sequence[HistoryRow]) -> list[tuple[str, str, str, ChangePoint]]:
    """Every change point of every series in ``rows``, as (hardware, test, metric, change point)."""
    return [(*key, point) for key, points in series_by_key(rows).items() for point in change_points(points)]
