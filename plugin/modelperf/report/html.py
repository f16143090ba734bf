"""Reports over the history store: text tables, a markdown summary and one self-contained HTML page.

The HTML page must open anywhere, from a CI artifact or a mail attachment, so it carries its CSS
inline and its plots as base64 PNG data URIs and refers to nothing on the network. Plots are drawn
with matplotlib's Agg backend, which needs no display.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from modelperf.report.table import Table, markdown_cell
from modelperf.store.history import HistoryRow
from modelperf.units import format_change, format_value
from modelperf.vocab import Kind, Verdict

if TYPE_CHECKING:
    from modelperf.store.baselines import StoredRecord

__all__ = [
    "SPREAD_LABEL",
    "SummaryLine",
    "format_commit",
    "format_time",
    "latest_summary",
    "render_html",
    "render_markdown",
    "series_by_key",
    "spread",
    "verdict_change",
]

# Small enough that a page with dozens of plots stays a few MB, large enough to read.
_PLOT_SIZE_IN = (7.0, 2.6)
_PLOT_DPI = 80

SeriesKey = tuple[str, str, str]  # (hardware_id, test_id, metric)
Baselines = Mapping[str, Mapping[str, "StoredRecord"]]  # hardware_id -> Measurement.key -> record


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


def _verdict(row: HistoryRow) -> Verdict | None:
    return row.judgement.verdict if row.judgement else None


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
        verdict = last.judgement.verdict.value if last.judgement else ""
        lines.append(SummaryLine(hardware, last.run_id, last.test_id, last.metric, last.unit, last.value, previous,
                                 verdict, verdict_change(last)))
    return sorted(lines, key=lambda s: (s.hardware_id, s.test_id, s.metric))


def render_markdown(rows: Sequence[HistoryRow]) -> str:
    """A markdown summary of the latest run per hardware id, for a CI job summary or a PR comment."""
    out = ["# Model performance: latest runs", ""]
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
    return "\n".join(out + _markdown_change_points(rows))


def _markdown_change_points(rows: Sequence[HistoryRow]) -> list[str]:
    from modelperf.report.trends import series_change_points  # it imports this module's formatters

    found = series_change_points(rows)
    if not found:
        return []
    lines = ["## Change points", "", "Lasting steps in each figure's history, at the first run of the new level.", ""]
    lines += [f"- `{markdown_cell(test)}` {markdown_cell(metric)} [{markdown_cell(hardware)}]: "
              f"{markdown_cell(point.line())}"
              for hardware, test, metric, point in found]
    return [*lines, ""]


def format_commit(commit: str | None, dirty: bool) -> str:
    """A short commit hash, marked when the working tree had uncommitted changes."""
    return (commit[:10] if commit else "unknown") + ("+dirty" if dirty else "")


def format_time(started_at: str) -> str:
    """ISO time to the second, as people read it in a table."""
    return started_at.replace("T", " ")[:19]


def render_html(rows: Sequence[HistoryRow], baselines: Baselines | None = None, title: str = "",
                tradeoff: Sequence[Sequence[str]] | None = None) -> str:
    """One self-contained HTML page: a trend plot per hardware, test and metric, regressions marked.

    ``tradeoff`` (rows of figure, distilbert, llama) adds the side-by-side table of the latest run.
    """
    title = title or "Model performance history"
    runs = {r.run_id for r in rows}
    body = [f"<h1>{_h(title)}</h1>"]
    body.append(
        f"<p>{len(runs)} runs from {_h(format_time(rows[0].started_at))} to {_h(format_time(rows[-1].started_at))}.</p>"
        if rows
        else "<p>No runs recorded.</p>"
    )
    body.append(_summary_html(latest_summary(rows)))
    if tradeoff:
        table = Table.of(("figure", "distilbert", "llama"), tradeoff)
        body.append("<h2>DistilBERT vs Llama (latest run)</h2>\n" + table.html())
    current = ""
    for (hardware, test, metric), points in series_by_key(sorted(rows, key=lambda r: r.hardware_id)).items():
        if hardware != current:
            body.append(f"<h2>Hardware {_h(hardware)}</h2>")
            current = hardware
        stored = (baselines or {}).get(hardware, {}).get(f"{test}::{metric}")
        body.append(_series_html(points, stored))
    return _PAGE.format(title=_h(title), css=_CSS, body="\n".join(body))


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _summary_html(summary: Sequence[SummaryLine]) -> str:
    """One table per hardware id, named once above it rather than on every row."""
    parts = ["<h2>Latest run per hardware</h2>"]
    for hardware in sorted({s.hardware_id for s in summary}):
        lines = [line for line in summary if line.hardware_id == hardware]
        # The verdict's own figure when it compared; a raw run-to-run change only when it did not.
        rows = [[s.test_id, s.metric, format_value(s.value, s.unit), s.against_baseline or (
            "-" if s.previous is None else f"{format_change(s.previous, s.value)} vs previous run"), s.verdict]
            for s in lines]
        marked = [i for i, s in enumerate(lines) if s.verdict == Verdict.REGRESSED.value]
        table = Table.of(("test", "metric", "value", "change", "verdict"), rows, marked=marked)
        parts.append(f'<h3 class="hardware">Hardware {_h(hardware)}</h3>\n{table.html()}')
    return "\n".join(parts)


def _series_html(points: Sequence[HistoryRow], stored: StoredRecord | None) -> str:
    from modelperf.report.trends import change_points  # it imports this module's formatters

    last = points[-1]
    regressed = [p for p in points if _verdict(p) is Verdict.REGRESSED]
    parts = [f"<h3><code>{_h(last.test_id)}</code> &middot; {_h(last.metric)}</h3>"]
    steps = change_points(points)
    image = _plot(points, stored, [p.step.index for p in steps])
    alt = _h(f"trend of {last.test_id} {last.metric}")
    parts.append(f'<img src="data:image/png;base64,{image}" alt="{alt}">')
    if stored is not None:
        when = format_time(stored.saved_at)
        parts.append(f"<p>Baseline {_h(format_value(stored.measurement.value, last.unit))} saved {_h(when)}.</p>")
    if regressed:
        items = "".join(
            f'<li class="regressed">{_h(format_time(p.started_at))} commit {_h(format_commit(p.commit, p.dirty))}: '
            f"{_h(format_value(p.value, p.unit))}</li>"
            for p in regressed
        )
        parts.append(f"<ul>{items}</ul>")
    if steps:
        items = "".join(f'<li class="step">change point: {_h(p.line())}</li>' for p in steps)
        parts.append(f"<ul>{items}</ul>")
    return '<section class="series">' + "\n".join(parts) + "</section>"


def _plot(points: Sequence[HistoryRow], stored: StoredRecord | None, steps: Sequence[int] = ()) -> str:
    """A PNG of value over time as base64; regressions in red, the baseline save as a dashed line,
    change points (indices of their first run) as orange lines."""
    import matplotlib

    matplotlib.use("Agg")  # no display on CI; must precede pyplot
    from matplotlib import pyplot as plt

    times = [_day_number(p.started_at) for p in points]
    fig, axes = plt.subplots(figsize=_PLOT_SIZE_IN, dpi=_PLOT_DPI)
    try:
        low, high = zip(*(spread(p) for p in points))
        axes.fill_between(times, low, high, color="#1f5f99", alpha=0.18, linewidth=0, label=SPREAD_LABEL)
        axes.plot(times, [p.value for p in points], marker="o", color="#1f5f99", label="value")
        recorded = [i for i, p in enumerate(points) if _verdict(p) is Verdict.RECORDED]
        if recorded:  # the runs whose figures became (or may have become) the baseline
            axes.scatter([times[i] for i in recorded], [points[i].value for i in recorded], marker="D", color="#2e7d32",
                         s=45, zorder=3, label="recorded as baseline")
        bad = [i for i, p in enumerate(points) if _verdict(p) is Verdict.REGRESSED]
        if bad:
            xs, ys = [times[i] for i in bad], [points[i].value for i in bad]
            axes.scatter(xs, ys, color="#c62828", s=70, zorder=3, label=Verdict.REGRESSED.value)
        if stored is not None:
            saved = _day_number(stored.saved_at)
            axes.axvline(saved, color="#777777", linestyle="--", label="baseline saved")
            axes.axhline(stored.measurement.value, color="#2e7d32", linestyle=":", label="baseline value")
        for number, index in enumerate(steps):
            axes.axvline(times[index], color="#ef6c00", linewidth=1.5, label="change point" if number == 0 else None)
        axes.xaxis_date()
        axes.set_ylabel(points[-1].unit)
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# What the band around each point is: the run's own spread, so one noisy run reads as noisy.
SPREAD_LABEL = "spread of each run (rounds p10-p90; accuracy 95% Wilson)"
_SPREAD_QUANTILES = (0.10, 0.90)


def spread(point: HistoryRow) -> tuple[float, float]:
    """The interval a run's figure came with: Wilson for per-example accuracy, else its samples' p10-p90."""
    samples = point.samples
    if point.kind is Kind.ACCURACY and samples and set(samples) <= {0.0, 1.0}:
        from modelperf.decide import wilson_interval

        return wilson_interval(int(sum(samples)), len(samples))
    if len(samples) < 2:
        return point.value, point.value
    ordered = sorted(samples)
    pick = [ordered[round(q * (len(ordered) - 1))] for q in _SPREAD_QUANTILES]
    return min(pick[0], point.value), max(pick[1], point.value)


def _day_number(iso_time: str) -> float:
    """An ISO time as matplotlib's date axis counts it (days since its epoch)."""
    from matplotlib import dates

    return float(dates.date2num(datetime.fromisoformat(iso_time)))  # type: ignore[no-untyped-call]


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
tr.regressed td, li.regressed { background: #fde0e0; color: #8e0000; font-weight: bold; }
li.step { color: #a84300; }
section.series { margin: 1.5em 0; }
img { max-width: 100%; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""
