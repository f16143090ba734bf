"""The HTML report as data: metric names and units, fitted axes, the ratio chart, the cards per machine,
``modelperf report --results``, and the report layer's imports (no cycle, nothing from measure/).

What a browser shows is tested in test_report_browser.py; here the page's figures are read as JSON.
"""

from __future__ import annotations

import ast
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelperf.cli import main
from modelperf.records import Judgement, Kind, Measurement, TestResult
from modelperf.report.vocabulary import HIGHER_IS_BETTER, LOWER_IS_BETTER, describe
from modelperf.store.history import HistoryStore, RunInfo
from modelperf.vocab import Verdict
from tests.report.report_data import AGAINST, MACHINES, page_figures, write_history, write_results

PACKAGE = Path(__file__).parents[2] / "plugin" / "modelperf"


@pytest.mark.parametrize(
    ("metric", "unit", "values", "name", "shown", "text"),
    [
        ("p10_s", "s", [0.0124], "latency p10", "ms", "12.40 ms"),
        ("median_s", "s", [42.5], "latency median", "s", "42.50 s"),  # a model load reads in seconds
        ("p99_s", "s", [0.00042], "latency p99", "µs", "420.0 µs"),
        ("median", "s", [0.011], "latency median", "ms", "11.00 ms"),  # keys of older histories
        ("memray_peak_bytes", "B", [412 * 2**20], "peak memory (memray)", "MiB", "412.0 MiB"),
        ("rss_delta_bytes", "B", [3 * 2**20], "memory growth (RSS)", "MiB", "3.000 MiB"),
        ("peak", "bytes", [300 * 2**20], "peak memory", "MiB", "300.0 MiB"),
        ("accuracy", "fraction", [0.8725], "accuracy", "%", "87.25 %"),
        ("perplexity", "ppl", [12.3456], "perplexity", "", "12.35"),
        ("decode_tokens_per_s", "tokens/s", [31.25], "decode tokens per s", "tokens/s", "31.25 tokens/s"),
    ],
)
def test_each_metric_has_a_human_name_and_unit(
    metric: str, unit: str, values: list[float], name: str, shown: str, text: str
) -> None:
    label = describe(metric, unit, values)
    assert (label.name, label.unit, label.format(values[0])) == (name, shown, text)


def test_rates_and_accuracy_are_better_higher_and_the_rest_lower() -> None:
    assert describe("accuracy", "fraction").better == HIGHER_IS_BETTER
    assert describe("requests", "requests/s").better == HIGHER_IS_BETTER
    assert describe("p10_s", "s").better == describe("memray_peak_bytes", "B").better == LOWER_IS_BETTER


@given(st.floats(min_value=2e-7, max_value=1e4, exclude_max=True))
def test_a_duration_is_shown_in_a_unit_that_keeps_its_number_readable(seconds: float) -> None:
    label = describe("p10_s", "s", [seconds])
    assert 0.1 <= label.shown(seconds) < 10_000, (seconds, label.unit)
    assert label.format(seconds).endswith(f" {label.unit}")


def _one_run_store(path: Path, test_id: str = "t.py::test_one") -> str:
    with HistoryStore(str(path)) as store:
        measured = Measurement(test_id, Kind.LATENCY, "p10_s", "s", 0.02, (0.02, 0.021, 0.022))
        figure = TestResult(measured, Judgement(Verdict.PASS, ""))
        store.append(RunInfo("a" * 32, "2026-05-01T10:00:00+00:00", MACHINES[0], commit="abc"), [figure])
    return str(path)


def _report(tmp_path: Path, *argv: str) -> str:
    page = tmp_path / "report.html"
    assert main(["report", *argv, "--html", str(page)]) == 0
    return page.read_text(encoding="utf-8")


def _span_hours(figure: dict[str, Any]) -> float:
    low, high = (datetime.fromisoformat(t) for t in figure["layout"]["xaxis"]["range"])
    return (high - low).total_seconds() / 3600


def test_the_time_axis_of_one_run_is_two_hours_not_years(tmp_path: Path) -> None:
    [figure] = page_figures(_report(tmp_path, "--history", _one_run_store(tmp_path / "h.sqlite"))).values()
    assert _span_hours(figure) == pytest.approx(2.0)
    assert figure["layout"]["yaxis"]["title"]["text"] == "latency p10 (ms)"


def test_the_time_axis_of_a_history_spans_its_runs_and_a_small_margin(tmp_path: Path) -> None:
    figures = page_figures(_report(tmp_path, "--history", write_history(tmp_path / "h.sqlite")))
    spans = [_span_hours(f) for f in figures.values()]
    assert all(11 * 24 <= span <= 11 * 24 * 1.1 for span in spans), spans  # 12 daily runs: 11 days of data


def test_each_test_gets_one_card_with_a_panel_per_machine_on_a_shared_and_an_own_value_axis(tmp_path: Path) -> None:
    page = _report(tmp_path, "--history", write_history(tmp_path / "h.sqlite"))
    assert page.count("<article") == 4 and page.count('<div class="panel"') == 4 * len(MACHINES)
    figures = list(page_figures(page).values())
    batch1 = figures[2:4]  # cards sort by test id: accuracy, batch1, decode, memory
    shared = [f["layout"]["meta"]["sharedRange"] for f in batch1]
    own = [f["layout"]["yaxis"]["range"] for f in batch1]
    assert shared[0] == shared[1] and own[0] != own[1]
    assert all(s[0] <= o[0] and o[1] <= s[1] for s, o in zip(shared, own))
    for option in (f'<option value="{MACHINES[1]}">', '<option value="llama">', '<option value="latency p10">'):
        assert option in page


def test_a_test_id_that_closes_a_script_cannot_break_the_page(tmp_path: Path) -> None:
    nasty = "t.py::test_x[</script><script>alert(1)</script>]"
    page = _report(tmp_path, "--history", _one_run_store(tmp_path / "h.sqlite", nasty))
    assert "</script><script>alert" not in page
    [figure] = page_figures(page).values()  # the figure data still parses as JSON
    assert figure["data"][2]["text"][0].startswith("<b>20.00 ms</b>")
    assert 'data-test="t.py::test_x[&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;]"' in page


def test_the_pull_request_chart_has_each_ratio_with_its_interval(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Away from the checkout: after the README's first command, its .modelperf/history.sqlite exists,
    # and the report would find it by default.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELPERF_HISTORY", raising=False)
    results = write_results(tmp_path / "results.json")
    page = _report(tmp_path, "--results", str(results))
    figure = page_figures(page)["plot-0"]
    points = {(trace["name"], y): (x, plus, minus) for trace in figure["data"]
              for y, x, plus, minus in zip(trace["y"], trace["x"], trace["error_x"]["array"],
                                           trace["error_x"]["arrayminus"])}
    x, plus, minus = points[("regressed", "test_distilbert_batch1 · latency p10")]
    assert (x, x + plus, x - minus) == pytest.approx((1.121, 1.149, 1.094))
    x, plus, minus = points[("pass", "test_distilbert_accuracy · accuracy")]
    assert x == pytest.approx(0.8725 / 0.87) and plus == minus == 0  # compared, but with no ratio interval
    assert f"This change against {AGAINST}" in page and 'id="trends"' in page and "No history" in page


def test_report_of_results_alone_needs_no_history_and_links_its_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELPERF_HISTORY", raising=False)
    results = write_results(tmp_path / "results.json")
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"
    assert main(["report", "--results", str(results), "--markdown", "-", "--report-url", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"## pytest-modelperf: this change against `{AGAINST}`")
    assert f"**[Open the interactive report]({url})**" in out and "| test_distilbert_batch1 | p10_s |" in out
    assert not (tmp_path / ".modelperf").exists(), "reading results must not create a history store"


@pytest.mark.parametrize(("content", "says"), [
    (None, "Cannot read the results file"),
    ("{not json", "is not a results file written by `pytest --benchmark --results-json`"),
    ('{"results": [{"line": "x"}]}', "is not a results file written by `pytest --benchmark --results-json`"),
])
def test_a_missing_or_foreign_results_file_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", "--results", str(path), "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelperf report: ") and says in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_without_plotly_the_report_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # import fails as if not installed
    store = _one_run_store(tmp_path / "h.sqlite")
    assert main(["report", "--history", store, "--html", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "needs the plotly package, which is not installed: pip install 'pytest-modelperf[report]'." in err


def _imports(path: Path) -> set[str]:
    """The modelperf modules a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("modelperf"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("modelperf")}
    return found


def test_the_report_layer_has_no_import_cycle_and_imports_nothing_of_measure_or_pytest() -> None:
    modules = {f"modelperf.report.{p.stem}": p for p in (PACKAGE / "report").glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}
    for name, path in modules.items():
        below = {m for m in _imports(path) if m.startswith(("modelperf.measure", "modelperf.pytest", "modelperf.ab"))}
        assert not below, f"{name} imports {below}"
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, "import cycle: " + " -> ".join((*trail, name))
        if name not in done:
            for target in graph[name]:
                visit(target, (*trail, name))
            done.add(name)

    for name in graph:
        visit(name, ())
    cli = set().union(*(_imports(path) for path in (PACKAGE / "cli").glob("*.py")))
    assert not {m for m in cli if m.startswith("modelperf.report.html.") and m.split(".")[-1].startswith("format")}
    assert "modelperf.report.html" not in _imports(PACKAGE / "report" / "trends.py")
