"""The HTML report's charts as plotly.js figures: plain JSON-safe dicts of traces and layout.

Nothing here imports plotly: the page embeds plotly.js and hands it these dicts, so the figures
can be tested as data. Every point carries its hover text, written here in the metric's human unit
(see :mod:`modelperf.report.vocabulary`), with its interval, commit and date.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from html import escape
from typing import Any

from modelperf.records import TestResult
from modelperf.report.series import SPREAD_LABEL, spread, verdict, verdict_change
from modelperf.report.trends import ChangePoint
from modelperf.report.vocabulary import MetricLabel, describe, short_test
from modelperf.store.history import HistoryRow
from modelperf.units import format_commit, format_time
from modelperf.vocab import Verdict

__all__ = ["RECORDED_NAME", "STEP_NAME", "VERDICT_COLOURS", "against_figure", "plot_time", "trend_figure",
           "value_range"]

Figure = dict[str, Any]

_BLUE = "#2563eb"
_BAND = "rgba(37, 99, 235, 0.16)"
_ORANGE = "#ea580c"
_GREEN = "#15803d"
_GREY = "#6b7280"
VERDICT_COLOURS = {Verdict.REGRESSED.value: "#dc2626", "improved": _GREEN, "pass": _GREY, "inconclusive": "#d97706",
                   Verdict.RECORDED.value: _GREEN, "not_compared": "#9ca3af"}
# A history of one run still gets a readable axis: an hour either side of it, not plotly's default years.
_LONE_RUN_PAD = timedelta(hours=1)
_MIN_PAD = timedelta(minutes=1)
_PAD = 0.04  # of the data's span, either side, so the first and last points are not cut by the frame
RECORDED_NAME = "recorded as baseline"  # the names of the marks, which the page's legend explains
STEP_NAME = "change point"
_FONT = {"family": "system-ui, -apple-system, 'Segoe UI', sans-serif", "size": 12, "color": "#1f2937"}


def plot_time(iso_time: str) -> datetime:
    """A stored ISO time as a naive UTC time, which plotly's date axis reads without shifting it."""
    moment = datetime.fromisoformat(iso_time)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _axis_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _time_range(times: Sequence[datetime]) -> list[str]:
    """The x range fitted to the data: its span plus a small margin, or an hour around a lone run."""
    first, last = min(times), max(times)
    pad = _LONE_RUN_PAD if first == last else max((last - first) * _PAD, _MIN_PAD)
    return [_axis_time(first - pad), _axis_time(last + pad)]


def value_range(label: MetricLabel, lows: Sequence[float], highs: Sequence[float]) -> list[float]:
    """A y range (in the shown unit) that holds every band, shared by one test's panels of all machines."""
    low, high = label.shown(min(lows)), label.shown(max(highs))
    pad = (high - low) * 0.08 or abs(high) * 0.05 or 1.0
    return [low - pad, high + pad]


def _hover(point: HistoryRow, label: MetricLabel) -> str:
    low, high = spread(point)
    lines = [f"<b>{escape(label.format(point.value))}</b>  {escape(label.name)}"]
    if (low, high) != (point.value, point.value):
        lines.append(f"interval {escape(label.format(low))} to {escape(label.format(high))}")
    lines.append(f"commit {escape(format_commit(point.commit, point.dirty))} · {escape(format_time(point.started_at))}")
    said = verdict(point)
    change = verdict_change(point)
    lines.append(f"run {escape(point.run_id[:8])}" + (f" · {escape(said)}" if said else ""))
    if change:
        lines.append(escape(change))
    return "<br>".join(lines)


def _markers(name: str, points: Sequence[HistoryRow], label: MetricLabel, symbol: str, colour: str,
             size: int) -> Figure:
    return {"type": "scatter", "mode": "markers", "name": name, "x": [_axis_time(plot_time(p.started_at)) for p in points],
            "y": [label.shown(p.value) for p in points], "text": [_hover(p, label) for p in points],
            "hovertemplate": "%{text}<extra></extra>", "marker": {"symbol": symbol, "color": colour, "size": size,
                                                                  "line": {"color": "white", "width": 1}}}


def trend_figure(points: Sequence[HistoryRow], label: MetricLabel, shared_range: Sequence[float],
                 baseline: tuple[float, str] | None = None, steps: Sequence[ChangePoint] = ()) -> Figure:
    """One machine's series of one test and metric: the figure of each run with its spread as a band,
    regressions in red, runs recorded as baseline as green diamonds, change points in orange, and
    the stored baseline (value, saved at) as a dashed line where one is known.

    The value axis fits this machine's series; ``shared_range`` (all machines' panels of the test) rides
    along in ``layout.meta`` for the page's switch to one axis for all machines."""
    times = [plot_time(p.started_at) for p in points]
    x = [_axis_time(t) for t in times]
    lows, highs = zip(*(spread(p) for p in points))
    traces: list[Figure] = [
        {"type": "scatter", "mode": "lines", "x": x, "y": [label.shown(v) for v in highs], "line": {"width": 0},
         "hoverinfo": "skip", "showlegend": False, "legendgroup": "band"},
        {"type": "scatter", "mode": "lines", "x": x, "y": [label.shown(v) for v in lows], "line": {"width": 0},
         "fill": "tonexty", "fillcolor": _BAND, "hoverinfo": "skip", "name": SPREAD_LABEL.split(" (")[0],
         "legendgroup": "band"},
        {"type": "scatter", "mode": "lines+markers", "name": label.name, "x": x, "y": [label.shown(p.value) for p in points],
         "text": [_hover(p, label) for p in points], "hovertemplate": "%{text}<extra></extra>",
         "line": {"color": _BLUE, "width": 2}, "marker": {"color": _BLUE, "size": 7}},
    ]
    recorded = [p for p in points if verdict(p) == Verdict.RECORDED.value]
    if recorded and len(recorded) < len(points):  # when every run recorded, the diamonds say nothing
        traces.append(_markers(RECORDED_NAME, recorded, label, "diamond", _GREEN, 10))
    regressed = [p for p in points if verdict(p) == Verdict.REGRESSED.value]
    if regressed:
        traces.append(_markers(Verdict.REGRESSED.value, regressed, label, "circle", VERDICT_COLOURS[Verdict.REGRESSED.value], 12))
    shapes: list[Figure] = []
    annotations: list[Figure] = []
    if steps:
        marker = _markers(STEP_NAME, [s.run for s in steps], label, "triangle-up", _ORANGE, 13)
        marker["text"] = [escape(f"change point: {s.line()}") for s in steps]
        traces.append(marker)
        for step in steps:
            at = _axis_time(plot_time(step.run.started_at))
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1,
                           "line": {"color": _ORANGE, "width": 1.5, "dash": "dot"}})
            annotations.append({"x": at, "y": 1, "xref": "x", "yref": "paper", "yanchor": "bottom", "showarrow": False,
                                "text": f"{step.step.change * 100:+.1f} %", "font": {"color": _ORANGE, "size": 11}})
    x_range = _time_range(times)
    own_range = value_range(label, [*lows, *([baseline[0]] if baseline else [])],
                            [*highs, *([baseline[0]] if baseline else [])])
    if baseline is not None:
        value, saved_at = baseline
        traces.append({"type": "scatter", "mode": "lines", "name": f"baseline {label.format(value)}", "x": x_range,
                       "y": [label.shown(value)] * 2, "line": {"color": _GREEN, "dash": "dash", "width": 1.5},
                       "hovertemplate": escape(f"baseline {label.format(value)}, saved {format_time(saved_at)}")
                       + "<extra></extra>"})
        saved = plot_time(saved_at)
        if x_range[0] <= _axis_time(saved) <= x_range[1]:
            at = _axis_time(saved)
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1,
                           "line": {"color": _GREY, "width": 1, "dash": "dash"}})
    layout = {
        "height": 270, "margin": {"l": 64, "r": 16, "t": 22, "b": 40}, "font": _FONT, "showlegend": False,
        "meta": {"ownRange": own_range, "sharedRange": list(shared_range)},
        "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
        "hoverlabel": {"bgcolor": "white", "bordercolor": "#cbd5e1", "font": {"size": 12, "color": "#111827"},
                       "align": "left"},
        "xaxis": {"type": "date", "range": x_range, "gridcolor": "#eef2f7", "linecolor": "#cbd5e1", "ticks": "outside",
                  "tickcolor": "#cbd5e1"},
        "yaxis": {"title": {"text": escape(label.title)}, "range": own_range, "gridcolor": "#eef2f7",
                  "zeroline": False, "linecolor": "#cbd5e1"},
        "shapes": shapes, "annotations": annotations,
    }
    return {"data": traces, "layout": layout}


def _ratio(result: TestResult) -> float | None:
    if result.judgement.ratio is not None and math.isfinite(result.judgement.ratio):
        return result.judgement.ratio
    if result.judgement.reference:  # a figure compared without a ratio of its own (accuracy): change over base
        return result.measurement.value / result.judgement.reference
    return None


def _ratio_hover(result: TestResult, ratio: float, label: MetricLabel) -> str:
    m = result.measurement
    lines = [f"<b>{escape(short_test(m.test_id))}</b>", escape(label.name),
             f"change {escape(label.format(m.value))}, base {escape(label.format(result.judgement.reference))}"]
    interval = ""
    if result.judgement.ratio_low is not None and result.judgement.ratio_high is not None:
        interval = f" (95 % interval ×{result.judgement.ratio_low:.3f} to ×{result.judgement.ratio_high:.3f})"
    lines.append(f"change/base ×{ratio:.3f}{interval}")
    lines.append(f"verdict {escape(result.verdict.value)}")
    return "<br>".join(lines)


def against_figure(results: Sequence[TestResult]) -> Figure | None:
    """Each compared figure's change/base ratio with its 95 % interval, one row per test and metric,
    coloured by verdict; None when nothing was compared."""
    rows = [(r, ratio) for r in results if (ratio := _ratio(r)) is not None]
    if not rows:
        return None
    names = [f"{short_test(r.measurement.test_id)} · {_label(r).name}" for r, _ in rows]
    traces: list[Figure] = []
    for said in sorted({r.verdict.value for r, _ in rows}, key=lambda v: list(VERDICT_COLOURS).index(v)
                       if v in VERDICT_COLOURS else len(VERDICT_COLOURS)):
        mine = [(name, r, ratio) for name, (r, ratio) in zip(names, rows) if r.verdict.value == said]
        plus = [(r.judgement.ratio_high - ratio) if r.judgement.ratio_high is not None else 0.0 for _, r, ratio in mine]
        minus = [(ratio - r.judgement.ratio_low) if r.judgement.ratio_low is not None else 0.0 for _, r, ratio in mine]
        traces.append({"type": "scatter", "mode": "markers", "name": said, "y": [n for n, _, _ in mine],
                       "x": [ratio for _, _, ratio in mine],
                       "error_x": {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                                   "color": VERDICT_COLOURS.get(said, _GREY), "thickness": 2, "width": 5},
                       "marker": {"color": VERDICT_COLOURS.get(said, _GREY), "size": 10},
                       "text": [_ratio_hover(r, ratio, _label(r)) for _, r, ratio in mine],
                       "hovertemplate": "%{text}<extra></extra>"})
    layout = {
        "height": 90 + 30 * len(rows), "margin": {"l": 20, "r": 20, "t": 30, "b": 48}, "font": _FONT,
        "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "closest",
        "hoverlabel": {"bgcolor": "white", "bordercolor": "#cbd5e1", "font": {"size": 12, "color": "#111827"},
                       "align": "left"},
        "xaxis": {"title": {"text": "change / base (1 = no change; bars: 95 % interval)"}, "gridcolor": "#eef2f7",
                  "zeroline": False, "tickformat": ".2f", "ticksuffix": "×"},
        "yaxis": {"type": "category", "categoryorder": "array", "categoryarray": names, "autorange": "reversed",
                  "automargin": True, "gridcolor": "#f3f4f6"},
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": 1, "x1": 1, "y0": 0, "y1": 1,
                    "line": {"color": "#111827", "width": 1}}],
    }
    return {"data": traces, "layout": layout}


def _label(result: TestResult) -> MetricLabel:
    m = result.measurement
    return describe(m.metric, m.unit, [m.value])
