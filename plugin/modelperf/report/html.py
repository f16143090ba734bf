"""The HTML report: one self-contained page of interactive charts over the history store and, when
given, one session's results (a pull request's ``--against`` verdicts).

The page must open anywhere, from a CI artifact or a mail attachment, with no network: it embeds
plotly.js (from the ``plotly`` package, the ``report`` extra), its own CSS and script, and the
figures as JSON. Each test and metric gets one card with a panel per machine side by side on a
shared value axis; filters narrow the page to a test, metric, model or machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

from modelperf.records import SessionResults
from modelperf.report import charts
from modelperf.report.assets import CSS, SCRIPT
from modelperf.report.series import SummaryLine, latest_summary, series_by_key, spread, verdict
from modelperf.report.table import Table
from modelperf.report.terminal import allocator_line
from modelperf.report.trends import ChangePoint, change_points
from modelperf.report.vocabulary import MetricLabel, describe, short_test
from modelperf.store.history import HistoryRow
from modelperf.units import format_change, format_commit, format_time
from modelperf.vocab import Verdict

if TYPE_CHECKING:
    from modelperf.store.baselines import StoredRecord

__all__ = ["Baselines", "ReportError", "model_name", "render_html"]

Baselines = Mapping[str, Mapping[str, "StoredRecord"]]  # hardware_id -> Measurement.key -> record
_INSTALL = "pip install 'pytest-modelperf[report]'"
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


class ReportError(Exception):
    """The report cannot be made here (a missing package); the message says how to fix it."""


@dataclass
class _Page:
    """What the page is being filled with: its HTML parts and the figures its script draws."""

    body: list[str] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def figure(self, figure: dict[str, Any], label: str) -> str:
        """A placeholder element the script draws ``figure`` into."""
        ident = f"plot-{len(self.figures)}"
        self.figures[ident] = figure
        return f'<div class="plot" id="{ident}" role="img" aria-label="{escape(label)}"></div>'


def model_name(row: HistoryRow) -> str:
    """The model a figure measured, by fixture name (``distilbert``); ``none`` for a test without one."""
    if row.model:
        return row.model.split("@", 1)[0]
    return (row.role or "").partition(":")[0] or "none"


def render_html(rows: Sequence[HistoryRow], baselines: Baselines | None = None, title: str = "",
                tradeoff: Sequence[Sequence[str]] | None = None, session: SessionResults | None = None) -> str:
    """The whole page: the session's ratio chart (if given), the latest run per machine, the trade-off
    table (if given), then the filterable trend charts. Raises :class:`ReportError` without plotly."""
    script = _plotly_js()
    title = title or "Model performance"
    page = _Page()
    page.body.append(_header(title, rows, session))
    if session is not None:
        page.body.append(_session_section(page, session))
    if rows:
        page.body.append(_summary_section(rows))
    if tradeoff:
        table = Table.of(("figure", "distilbert", "llama"), tradeoff)
        page.body.append(f'<section class="box"><h2>DistilBERT vs Llama (latest run)</h2>{table.html()}</section>')
    page.body.append(_trends_section(page, rows, baselines or {}))
    return _PAGE.format(title=escape(title), css=CSS, header=page.body[0], body="\n".join(page.body[1:]),
                        plotly=script, data=_json_safe({"figures": page.figures}), script=SCRIPT)


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ReportError(f"The HTML report needs the plotly package, which is not installed: {_INSTALL}.") from None
    return _script_safe(str(get_plotlyjs()))


def _script_safe(text: str) -> str:
    """Script text that cannot end the ``<script>`` element it is written into (``<\\/`` means ``</`` in a
    string or a regular expression)."""
    return _SCRIPT_END.sub(lambda found: "<\\/" + found[1], text)


def _json_safe(data: object) -> str:
    """JSON for a ``<script type="application/json">`` element: a ``<`` written as an escape cannot end it."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _header(title: str, rows: Sequence[HistoryRow], session: SessionResults | None) -> str:
    facts = []
    if rows:
        machines = {r.hardware_id for r in rows}
        runs = {r.run_id for r in rows}
        facts.append(f"{len(runs)} run{'s' * (len(runs) != 1)} on {len(machines)} machine{'s' * (len(machines) != 1)}"
                     f", {format_time(rows[0].started_at)} to {format_time(rows[-1].started_at)} UTC")
    if session is not None:
        side = f"against {session.against}" if session.against else "against the stored baselines"
        facts.append(f"session on {session.hardware_id} at commit {format_commit(session.commit, session.dirty)}, "
                     f"{side}")
        allocator = allocator_line(session)
        facts += [allocator] if allocator else []
    links = [("#session", "This change")] if session is not None else []
    links += [("#latest", "Latest runs"), ("#trends", "Trends")] if rows else []
    nav = "".join(f'<a href="{href}">{text}</a>' for href, text in links)
    about = escape("; ".join(facts)) if facts else "No runs recorded."
    return f'<header class="page"><div><h1>{escape(title)}</h1><p>{about}</p><nav>{nav}</nav></div></header>'


def _verdict_badge(said: str) -> str:
    return f'<span class="verdict {escape(said)}">{escape(said)}</span>' if said else ""


def _session_section(page: _Page, session: SessionResults) -> str:
    """The session's verdicts as a chart of change/base ratios with intervals, and as a table."""
    if session.against:
        title = f"This change against {session.against}"
    else:
        title = f"This session against the baselines of {session.hardware_id}"
    parts = [f'<section class="box" id="session"><h2>{escape(title)}</h2>']
    figure = charts.against_figure(session.results)
    if figure is not None:
        parts.append('<p class="caption">Each figure of this session over its base, with the 95 % interval the '
                     "verdict was made on; 1 is no change, right of it is larger (slower, more memory, or for "
                     "accuracy better).</p>")
        parts.append(page.figure(figure, title))
    rows, marked = [], []
    for index, result in enumerate(session.results):
        m = result.measurement
        label = describe(m.metric, m.unit, [m.value])
        interval = ""
        if result.judgement.ratio is not None:
            interval = f"×{result.judgement.ratio:.3f}"
            if result.judgement.ratio_low is not None and result.judgement.ratio_high is not None:
                interval += f" ({result.judgement.ratio_low:.3f} to {result.judgement.ratio_high:.3f})"
        rows.append([short_test(m.test_id), label.name, label.format(m.value), label.format(result.judgement.reference),
                     interval or "-", result.verdict.value])
        if result.regressed:
            marked.append(index)
    headers = ("test", "metric", "change" if session.against else "this session", "base" if session.against
               else "baseline", "change/base (95 % interval)", "verdict")
    parts.append(Table.of(headers, rows, marked=marked).html())
    regressed = sum(r.regressed for r in session.results)
    parts.append(f"<p>{len(session.results)} figures, {regressed} confirmed regression{'s' * (regressed != 1)}.</p>")
    return "\n".join(parts) + "</section>"


def _summary_section(rows: Sequence[HistoryRow]) -> str:
    """The latest run of every machine side by side: a row per test and metric, a column per machine,
    each machine (its run, commit and time) named once in its column's header."""
    summary = latest_summary(rows)
    machines = sorted({s.hardware_id for s in summary})
    runs = {r.run_id: r for r in rows}
    models = {(r.test_id, r.metric): model_name(r) for r in rows}
    cells: dict[tuple[str, str], dict[str, SummaryLine]] = {}
    for line in summary:
        cells.setdefault((line.test_id, line.metric), {})[line.hardware_id] = line
    head = ["<th>test</th><th>metric</th>"]
    for hardware in machines:
        run = runs[next(s.run_id for s in summary if s.hardware_id == hardware)]
        about = f"run {run.run_id[:8]} · commit {format_commit(run.commit, run.dirty)} · {format_time(run.started_at)}"
        head.append(f'<th class="num"{_data(machine=hardware)}><h3 class="hardware">Hardware {escape(hardware)}</h3>'
                    f'<span class="file">{escape(about)}</span></th>')
    body = []
    for (test, metric), mine in sorted(cells.items()):
        some = next(iter(mine.values()))
        label = describe(metric, some.unit, [line.value for line in mine.values()])
        row = [f'<td title="{escape(test)}"><code>{escape(short_test(test))}</code></td><td>{escape(label.name)}</td>']
        row += [_summary_cell(mine.get(hardware), label, hardware) for hardware in machines]
        body.append(f"<tr{_data(test=test, metric=label.name, model=models[(test, metric)])}>{''.join(row)}</tr>")
    return (f'<section class="box" id="latest"><h2>Latest run per machine</h2><table class="latest">'
            f"<tr>{''.join(head)}</tr>{''.join(body)}</table></section>")


def _summary_cell(line: SummaryLine | None, label: MetricLabel, hardware: str) -> str:
    if line is None:
        return f'<td class="num"{_data(machine=hardware)}>-</td>'
    # The verdict's own figure when it compared; a raw run-to-run change only when it did not.
    change = line.against_baseline or ("" if line.previous is None else
                                       f"{format_change(line.previous, line.value)} vs previous run")
    css = "num regressed" if line.verdict == Verdict.REGRESSED.value else "num"
    return (f'<td class="{css}"{_data(machine=hardware)}><b>{escape(label.format(line.value))}</b> '
            f'{_verdict_badge(line.verdict)}<br><span class="change">{escape(change)}</span></td>')


def _data(**values: str) -> str:
    return "".join(f' data-{name}="{escape(value)}"' for name, value in values.items())


def _options(name: str, title: str, values: Sequence[tuple[str, str]]) -> str:
    choices = "".join(f'<option value="{escape(value)}">{escape(text)}</option>' for value, text in values)
    return (f'<label>{title}<select data-filter="{name}"><option value="">all ({len(values)})</option>'
            f"{choices}</select></label>")


def _trends_section(page: _Page, rows: Sequence[HistoryRow], baselines: Baselines) -> str:
    if not rows:
        return '<section id="trends"><h2>Trends</h2><p class="empty">No history in this report.</p></section>'
    cards: dict[tuple[str, str], dict[str, list[HistoryRow]]] = {}
    for (hardware, test, metric), points in series_by_key(sorted(rows, key=lambda r: r.hardware_id)).items():
        cards.setdefault((test, metric), {})[hardware] = points
    labels = {key: describe(key[1], machines[next(iter(machines))][-1].unit,
                            [p.value for points in machines.values() for p in points])
              for key, machines in cards.items()}
    filters = [
        _options("test", "Test", [(t, short_test(t)) for t in sorted({t for t, _ in cards})]),
        _options("metric", "Metric", [(n, n) for n in sorted({label.name for label in labels.values()})]),
        _options("model", "Model", [(m, m) for m in sorted({model_name(r) for r in rows})]),
        _options("machine", "Machine", [(h, h) for h in sorted({r.hardware_id for r in rows})]),
    ]
    parts = ['<section id="trends"><h2>Trends</h2><div class="filters" role="search">', *filters,
             ('<label class="check"><input type="checkbox" id="shared-axis"> one value axis for all machines</label>'
             '<button type="button" id="reset-filters">Show all</button><span id="shown-count"></span>'
             '<span class="hint">Hover a point for its figures; drag across a chart to zoom, double-click to zoom '
             "out.</span></div>")]
    for (test, _metric), machines in sorted(cards.items()):
        parts.append(_card(page, test, labels[(test, _metric)], machines, baselines))
    return "\n".join(parts) + "</section>"


def _card(page: _Page, test: str, label: MetricLabel, machines: Mapping[str, Sequence[HistoryRow]],
          baselines: Baselines) -> str:
    """One test and metric: a panel per machine, side by side, each on its own value axis (or one shared)."""
    stored = {hw: (baselines.get(hw) or {}).get(f"{test}::{label.key}") for hw in machines}
    lows, highs = [], []
    for hardware, points in machines.items():
        bands = [spread(p) for p in points]
        lows += [low for low, _ in bands]
        highs += [high for _, high in bands]
        record = stored[hardware]
        if record is not None:
            lows.append(record.measurement.value)
            highs.append(record.measurement.value)
    shared = charts.value_range(label, lows, highs)
    latest = max((points[-1] for points in machines.values()), key=lambda r: r.started_at)
    model = model_name(latest)
    path = test.split("::", 1)[0] if "::" in test else ""
    panels, drawn = [], set()
    for hardware, points in machines.items():
        steps = change_points(points)
        record = stored[hardware]
        baseline = (record.measurement.value, record.saved_at) if record is not None else None
        figure = charts.trend_figure(points, label, shared, baseline, steps)
        drawn |= {str(trace.get("name")) for trace in figure["data"]}
        panels.append(_panel(page, test, label, hardware, points, record, steps, figure))
    return (f'<article class="card" data-card{_data(test=test, metric=label.name, model=model)}><header>'
            f"<h3><code>{escape(short_test(test))}</code> &middot; <span class=\"metric\">{escape(label.name)}</span>"
            f'</h3><span class="tag">{escape(model)}</span><span class="file">{escape(path)}</span>'
            f"{_legend(label, drawn)}</header>"
            f'<div class="panels">{"".join(panels)}</div></article>')


# What each mark means, in the order the legend lists them; a card lists only the marks it draws.
_LEGEND = (
    ("value", '<i class="mark line"></i>{name} of each run'),
    ("spread", '<i class="mark band"></i>{spread}'),
    (charts.RECORDED_NAME, '<i class="mark diamond"></i>recorded as baseline'),
    (Verdict.REGRESSED.value, '<i class="mark dot"></i>regressed'),
    (charts.STEP_NAME, '<i class="mark triangle"></i>change point'),
    ("baseline", '<i class="mark dash"></i>stored baseline'),
)


def _legend(label: MetricLabel, drawn: set[str]) -> str:
    present = {"value", *drawn}
    if any(name.startswith("baseline ") for name in drawn):
        present.add("baseline")
    if label.unit == "%":  # per-example accuracy: its interval
        present.add("spread")
        band = "95 % Wilson interval"
    elif label.scale != 1 and label.unit not in ("MiB", "GiB"):  # durations: the rounds' spread; one peak has none
        present.add("spread")
        band = "spread of its rounds (p10-p90)"
    items = [text.format(name=escape(label.name), spread=band if "spread" in present else "")
             for key, text in _LEGEND if key in present]
    return f'<span class="legend">{"".join(f"<span>{item}</span>" for item in items)}</span>'


def _panel(page: _Page, test: str, label: MetricLabel, hardware: str, points: Sequence[HistoryRow],
           stored: StoredRecord | None, steps: Sequence[ChangePoint], figure: dict[str, Any]) -> str:
    notes = []
    if stored is not None:
        notes.append(f"<li>Baseline {escape(label.format(stored.measurement.value))} saved "
                     f"{escape(format_time(stored.saved_at))}.</li>")
    notes += [f'<li class="regressed">{escape(format_time(p.started_at))} commit '
              f"{escape(format_commit(p.commit, p.dirty))}: {escape(label.format(p.value))} regressed</li>"
              for p in points if verdict(p) == Verdict.REGRESSED.value]
    notes += [f'<li class="step">change point: {escape(step.line())}</li>' for step in steps]
    listed = f'<ul class="notes">{"".join(notes)}</ul>' if notes else ""
    runs = f"{len(points)} run{'s' * (len(points) != 1)}"
    plot = page.figure(figure, f"{label.name} of {short_test(test)} on {hardware} over time")
    return (f'<div class="panel"{_data(machine=hardware)}><h4>{escape(hardware)} <span class="file">{runs}</span>'
            f"</h4>{plot}{listed}</div>")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>{plotly}</script>
</head>
<body>
{header}
<main>
{body}
<footer>Made by pytest-modelperf. Times are UTC. Figures in their stored units are in
<code>modelperf history</code>.</footer>
</main>
<script type="application/json" id="modelperf-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
