"""The markdown summary of a history store's latest runs, for a CI job summary or a chat message.

(The markdown summary of one session, the pull request comment, is :func:`modelperf.report.terminal.
markdown_summary`: it reads a session's results, this reads the store.)
"""

from __future__ import annotations

from collections.abc import Sequence

from modelperf.report.series import latest_summary
from modelperf.report.table import Table, markdown_cell
from modelperf.report.terminal import report_link
from modelperf.report.trends import series_change_points
from modelperf.store.history import HistoryRow
from modelperf.units import format_change, format_commit, format_time, format_value
from modelperf.vocab import Verdict

__all__ = ["render_markdown"]


def render_markdown(rows: Sequence[HistoryRow], report_url: str | None = None) -> str:
    """A markdown summary of the latest run per hardware id, for a CI job summary or a PR comment;
    ``report_url`` links it to the HTML report."""
    out = ["# Model performance: latest runs", "", *report_link(report_url)]
    summary = latest_summary(rows)
    for hardware in sorted({s.hardware_id for s in summary}):
        mine = [s for s in summary if s.hardware_id == hardware]
        first = next(r for r in reversed(rows) if r.run_id == mine[0].run_id)
        commit = format_commit(first.commit, first.dirty)
        out += [
            f"## {hardware}",
            "",
            f"Run `{first.run_id[:8]}` at {format_time(first.started_at)}, commit {commit}.",
            "",
        ]
        cells = [[f"`{s.test_id}`", s.metric, format_value(s.value, s.unit), format_change(s.previous, s.value),
                  f"**{s.verdict}**" if s.verdict == Verdict.REGRESSED.value else s.verdict] for s in mine]
        headers = ("test", "metric", "value", "change vs previous run", "verdict")
        out += Table.of(headers, cells, "llrrl").markdown()
        regressed = sum(s.verdict == Verdict.REGRESSED.value for s in mine)
        out += ["", f"{len(mine)} figures, {regressed} regressed.", ""]
    return "\n".join(out + _change_points(rows))


def _change_points(rows: Sequence[HistoryRow]) -> list[str]:
    found = series_change_points(rows)
    if not found:
        return []
    lines = ["## Change points", "", "Lasting steps in each figure's history, at the first run of the new level.", ""]
    lines += [f"- `{markdown_cell(test)}` {markdown_cell(metric)} [{markdown_cell(hardware)}]: "
              f"{markdown_cell(point.line())}"
              for hardware, test, metric, point in found]
    return [*lines, ""]

