"""Formatters that turn a session's results into text: terminal tables and the markdown summary.

Everything here returns strings (or writes through the terminal reporter it is given); nothing
measures or decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from modelperf.records import Kind, SessionResults, TestResult
from modelperf.report.load import LOAD_TITLE, load_table
from modelperf.report.table import Table
from modelperf.units import format_change, format_size, format_value
from modelperf.vocab import Verdict

__all__ = ["Reporter", "allocator_line", "markdown_summary", "models_rows", "report_link", "results_rows", "terminal_summary",
           "underpowered_lines"]

_MODEL_HEADERS = ("model", "architecture", "layers", "parameters", "file", "quant", "context", "threads",
                  "repack", "sha256", "source")
_RESULT_HEADERS = ("test", "metric", "current", "baseline", "change", "verdict")
# A latency verdict's stated power: the smallest slowdown it would have caught with 95 % probability.
_DETECT_HEADER = "could detect (95 %)"


class Reporter(Protocol):
    """The part of pytest's terminal reporter the summary writes through."""

    def write_sep(self, sep: str, title: str) -> None: ...

    def write_line(self, line: str) -> None: ...


def models_rows(model_info: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    return [[name, info["architecture"], str(info["layers"]), f"{info['parameters'] / 1e6:.1f} M",
             format_size(info["file_bytes"]), info["quantization"], str(info["context_length"]),
             str(info["threads"]), _repack(info), info["weights_sha256"][:12], info["source"]]
            for name, info in sorted(model_info.items())]


def _repack(info: Mapping[str, Any]) -> str:
    """llama.cpp's weight repacking, "on" or "off" (it changes the speed); "-" for other models."""
    return str(info.get("details", {}).get("weight_repack", "-")).split(" ", 1)[0]


def _short(test_id: str) -> str:
    return test_id.split("::", 1)[-1]


def _result_headers(session: SessionResults) -> tuple[str, ...]:
    if session.against is None:
        return (*_RESULT_HEADERS[:-1], _DETECT_HEADER, _RESULT_HEADERS[-1])
    return ("test", "metric", "change", "base", "change/base (95% CI)", _DETECT_HEADER, "verdict")


def _results_title(session: SessionResults) -> str:
    if session.against is None:
        return "results against this hardware's baselines"
    return f"this change against {session.against}, measured side by side"


def results_rows(results: Sequence[TestResult]) -> list[list[str]]:
    rows = []
    for r in results:
        m = r.measurement
        change = _verdict_change(r) if r.judgement.ratio is not None else format_change(r.judgement.reference or None, m.value)
        detectable = r.judgement.detectable
        rows.append([_short(m.test_id), m.metric, format_value(m.value, m.unit), format_value(r.judgement.reference, m.unit),
                     change, "" if detectable is None else f">= x{detectable:.3f}", r.verdict.value])
    return rows


def underpowered_lines(results: Sequence[TestResult]) -> list[str]:
    """The verdicts whose precision could not have caught the change their marker asks to catch."""
    weak = [r for r in results if r.judgement.underpowered]
    if not weak:
        return []
    lines = [(f"{len(weak)} verdict(s) could not see their minimum effect (95 % power at the precision reached); "
              "a pass there vouches for less than the marker asks:")]
    for r in weak:
        judged = r.judgement
        assert judged.detectable is not None and judged.min_effect is not None
        lines.append(f"  {_short(r.measurement.test_id)} [{r.measurement.metric}]: could detect >= "
                     f"x{judged.detectable:.3f}, min_effect {judged.min_effect * 100:.3g} %")
    return lines


def _verdict_change(r: TestResult) -> str:
    """The drift-corrected ratio the verdict was made on, with its 95 % interval where known."""
    assert r.judgement.ratio is not None
    if r.judgement.ratio_low is None or r.judgement.ratio_high is None:
        return f"x{r.judgement.ratio:.3f}"
    return f"x{r.judgement.ratio:.3f} ({r.judgement.ratio_low:.3f}-{r.judgement.ratio_high:.3f})"


def _detail(r: TestResult) -> str:
    return f"{_short(r.measurement.test_id)} [{r.measurement.metric}]: {r.line}"


def terminal_summary(session: SessionResults, reporter: Reporter) -> None:
    """The end-of-session summary: models, results against the baselines, trade-off, sections, files."""
    blocks: list[tuple[str, str, list[str]]] = []
    if session.models:
        blocks.append(("=", f"modelperf: models (hardware {session.hardware_id})",
                       Table.of(_MODEL_HEADERS, models_rows(session.models)).text()))
    if session.results:
        lines = Table.of(_result_headers(session), results_rows(session.results)).text()
        drift = machine_drift(session.results, session.against)
        lines += [drift] if drift else []
        allocator = allocator_line(session)
        lines += [allocator] if allocator else []
        lines += [_detail(r) for r in session.results if r.verdict is not Verdict.PASS]
        lines += underpowered_lines(session.results)
        blocks.append(("=", f"modelperf: {_results_title(session)}", lines))
    load = load_table(session.results)
    if load:
        blocks.append(("=", LOAD_TITLE, load.text()))
    tradeoff = _tradeoff_table(session)
    if tradeoff:
        blocks.append(("=", "modelperf: DistilBERT vs Llama on this hardware", tradeoff.text()))
    blocks += [("=", section, list(lines)) for section, lines in session.sections.items()]
    if session.notes:
        blocks.append(("-", "modelperf: files", list(session.notes)))
    for sep, title, lines in blocks:
        reporter.write_sep(sep, title)
        for line in lines:
            reporter.write_line(line)


def machine_drift(results: Sequence[TestResult], against: str | None = None) -> str | None:
    """How fast the machine ran against the baselines' sessions, from the control workload."""
    drifts = sorted(r.judgement.drift for r in results if r.judgement.drift is not None)
    if not drifts:
        return None
    middle = drifts[len(drifts) // 2]
    if against is not None:
        return (f"control workload, change/base processes: median x{middle:.3f}, range x{drifts[0]:.3f}-"
                f"x{drifts[-1]:.3f} over {len(drifts)} latency tests (both sides took turns round by round, so "
                "verdicts compare their raw figures; near x1 the two saw the same machine)")
    return (f"machine drift against the baselines (control workload, current/baseline time): median x{middle:.3f}, "
            f"range x{drifts[0]:.3f}-x{drifts[-1]:.3f} over {len(drifts)} latency tests; verdicts are drift-corrected")


def allocator_line(session: SessionResults) -> str | None:
    """Which allocator served malloc while latency was measured (the session's machine info), if it measured latency."""
    allocator = session.machine.get("allocator")
    if not allocator or not any(r.measurement.kind is Kind.LATENCY for r in session.results):
        return None
    return f"latency measured under {allocator}"


def _tradeoff_table(session: SessionResults) -> Table | None:
    from modelperf.report.tradeoff import rows

    if len(session.models) < 2:
        return None
    return Table.of(("figure", "distilbert", "llama"), rows(session.models, [r.measurement for r in session.results]))


def markdown_summary(session: SessionResults, report_url: str | None = None) -> str:
    """The same tables as markdown, for $GITHUB_STEP_SUMMARY and --summary-markdown; ``report_url`` (from
    ``modelperf report --report-url``, the pull request comment) links it to the HTML report."""
    title = "" if session.against is None else f": this change against `{session.against}`"
    parts = [f"## pytest-modelperf{title} on `{session.hardware_id}`", "", *report_link(report_url)]
    if session.models:
        parts += Table.of(_MODEL_HEADERS, models_rows(session.models)).markdown() + [""]
    if session.results:
        regressed = sum(r.regressed for r in session.results)
        parts.append(f"**{len(session.results)} measurements, {regressed} confirmed regressions.**")
        drift = machine_drift(session.results, session.against)
        allocator = allocator_line(session)
        for line in filter(None, (drift, allocator)):
            parts += ["", line]
        parts += [""] + Table.of(_result_headers(session), results_rows(session.results)).markdown() + [""]
        parts += [f"- `{_short(r.measurement.test_id)}` {r.measurement.metric}: {r.line}"
                  for r in session.results if r.verdict is not Verdict.PASS]
        weak = underpowered_lines(session.results)
        parts += ["", *weak] if weak else []
    load = load_table(session.results)
    if load:
        parts += ["", f"### {LOAD_TITLE.removeprefix('modelperf: ')}", "", *load.markdown()]
    tradeoff = _tradeoff_table(session)
    if tradeoff:
        parts += ["", "### DistilBERT vs Llama on this hardware", "", "```", *tradeoff.text(), "```"]
    for section, lines in session.sections.items():
        parts += ["", f"### {section}", "", "```", *lines, "```"]
    return "\n".join(parts) + "\n"


def report_link(url: str | None) -> list[str]:
    """The lines that point a markdown summary at the HTML report; none without a URL."""
    if not url:
        return []
    return [(f"**[Open the interactive report]({url})**: each figure's history per machine, and the ratios with "
            "their intervals."), ""]
