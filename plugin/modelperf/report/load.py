"""The load table: one row per load test, its figures' percentiles, throughput, goodput and max rate.

The results table shows the gated figure and its verdict; this one shows what serving teams read
off a load run (as vLLM's ``bench serve`` prints it), from each measurement's typed
:class:`~modelperf.records.LoadDetail`.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelperf.records import LoadDetail, LoadPercentiles, TestResult
from modelperf.report.table import Table
from modelperf.units import format_duration
from modelperf.vocab import Kind

__all__ = ["LOAD_HEADERS", "LOAD_TITLE", "load_rows", "load_table", "objectives_text"]

LOAD_TITLE = "modelperf: under load (p50 / p90 / p99 over each run's completed requests)"
LOAD_HEADERS = ("test", "arrivals", "sent (failed)", "TTFT", "TPOT", "ITL", "end to end", "req/s", "tokens/s",
                "goodput", "max rate")


def _cell(found: LoadPercentiles | None) -> str:
    if found is None:
        return "-"
    return " / ".join(format_duration(v) for v in (found.p50, found.p90, found.p99))


def objectives_text(detail: LoadDetail) -> str:
    """The objectives as users wrote them: ``ttft_p99 <= 2 s, tpot_p99 <= 50 ms``."""
    return ", ".join(f"{o.key} <= {format_duration(o.limit_s)}" for o in detail.objectives)


def _max_rate(detail: LoadDetail) -> str:
    if detail.max_rate is None:
        return "-"
    above = f", fails {detail.failed_rate:.3g}" if detail.failed_rate is not None else ""
    return f"{detail.max_rate:.3g}/s ({objectives_text(detail)}{above})"


def load_rows(results: Sequence[TestResult]) -> list[list[str]]:
    rows = []
    for result in results:
        m, detail = result.measurement, result.measurement.load
        if m.kind is not Kind.LOAD or detail is None:
            continue
        goodput = "-" if detail.goodput is None else f"{detail.goodput:.3f}"
        rows.append([m.test_id.split("::", 1)[-1], detail.pattern, f"{detail.sent} ({detail.failed})",
                     _cell(detail.ttft), _cell(detail.tpot), _cell(detail.itl), _cell(detail.e2e),
                     f"{detail.requests_per_s:.3g}", f"{detail.output_tokens_per_s:.3g}" if detail.tpot else "-",
                     goodput, _max_rate(detail)])
    return rows


def load_table(results: Sequence[TestResult]) -> Table | None:
    """The session's load table, or None when it ran no load test."""
    rows = load_rows(results)
    return Table.of(LOAD_HEADERS, rows) if rows else None
