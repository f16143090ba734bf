"""Formatters that turn a session's results into text: terminal tables and the markdown summary.

Everything here returns strings (or writes through the terminal reporter it is given); nothing
measures or decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelperf.report.table import Table
from modelperf.units import format_change, format_size, format_value

__all__ = ["markdown_summary", "models_rows", "results_rows", "terminal_summary"]

_MODEL_HEADERS = ("model", "architecture", "layers", "parameters", "file", "quant", "context", "threads",
                  "sha256", "source")
_RESULT_HEADERS = ("test", "metric", "current", "baseline", "change", "verdict")


def models_rows(model_info: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[name, info["architecture"], str(info["layers"]), f"{info['parameters'] / 1e6:.1f} M",
             format_size(info["file_bytes"]), info["quantization"], str(info["context_length"]),
             str(info["threads"]), info["weights_sha256"][:12], info["source"]]
            for name, info in sorted(model_info.items())]


def _short(test_id: str) -> str:
    return test_id.split("::", 1)[-1]


def results_rows(results: Sequence[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        m = r["measurement"]
        change = f"x{r['ratio']:.3f}" if "ratio" in r else format_change(r.get("baseline"), m["value"])
        rows.append([_short(m["test_id"]), m["metric"], format_value(m["value"], m["unit"]),
                     format_value(r.get("baseline"), m["unit"]), change, r["verdict"]])
    return rows


def terminal_summary(manager: Any, reporter: Any) -> None:
    if manager.model_info:
        reporter.write_sep("=", f"modelperf: models (hardware {manager.hardware_id})")
        for line in Table.of(_MODEL_HEADERS, models_rows(manager.model_info)).text():
            reporter.write_line(line)
    if manager.results:
        reporter.write_sep("=", "modelperf: results against this hardware's baselines")
        for line in Table.of(_RESULT_HEADERS, results_rows(manager.results)).text():
            reporter.write_line(line)
        drift = machine_drift(manager.results)
        if drift:
            reporter.write_line(drift)
        details = [r for r in manager.results if r["verdict"] not in ("pass",)]
        for r in details:
            reporter.write_line(f"{_short(r['measurement']['test_id'])} [{r['measurement']['metric']}]: {r['line']}")
    tradeoff = _tradeoff_lines(manager)
    if tradeoff:
        reporter.write_sep("=", "modelperf: DistilBERT vs Llama on this hardware")
        for line in tradeoff:
            reporter.write_line(line)
    for section, lines in manager.sections.items():
        reporter.write_sep("=", section)
        for line in lines:
            reporter.write_line(line)
    if manager.notes:
        reporter.write_sep("-", "modelperf: files")
        for note in manager.notes:
            reporter.write_line(note)


def machine_drift(results: Sequence[dict[str, Any]]) -> str | None:
    """How fast the machine ran against the baselines' sessions, from the control workload."""
    drifts = sorted(r["drift"] for r in results if "drift" in r)
    if not drifts:
        return None
    middle = drifts[len(drifts) // 2]
    return (f"machine drift against the baselines (control workload, current/baseline time): median x{middle:.3f}, "
            f"range x{drifts[0]:.3f}-x{drifts[-1]:.3f} over {len(drifts)} latency tests; verdicts are drift-corrected")


def _tradeoff_lines(manager: Any) -> list[str]:
    from modelperf.report.tradeoff import rows

    if len(manager.model_info) < 2:
        return []
    return Table.of(("figure", "distilbert", "llama"), rows(manager.model_info, manager.results)).text()


def markdown_summary(manager: Any) -> str:
    """The same tables as markdown, for $GITHUB_STEP_SUMMARY and --summary-markdown."""
    parts = [f"## pytest-modelperf on `{manager.hardware_id}`", ""]
    if manager.model_info:
        parts += Table.of(_MODEL_HEADERS, models_rows(manager.model_info)).markdown() + [""]
    if manager.results:
        regressed = sum(r["verdict"] == "regressed" for r in manager.results)
        parts.append(f"**{len(manager.results)} measurements, {regressed} confirmed regressions.**")
        drift = machine_drift(manager.results)
        if drift:
            parts += ["", drift]
        parts += [""] + Table.of(_RESULT_HEADERS, results_rows(manager.results)).markdown() + [""]
        parts += [f"- `{_short(r['measurement']['test_id'])}` {r['measurement']['metric']}: {r['line']}"
                  for r in manager.results if r["verdict"] != "pass"]
    tradeoff = _tradeoff_lines(manager)
    if tradeoff:
        parts += ["", "### DistilBERT vs Llama on this hardware", "", "```", *tradeoff, "```"]
    for section, lines in manager.sections.items():
        parts += ["", f"### {section}", "", "```", *lines, "```"]
    return "\n".join(parts) + "\n"
