"""The ``modelperf`` command line, run through ``main([...])`` on a store filled with three runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from modelperf.cli import main
from modelperf.load_records import LoadDetail
from modelperf.records import Judgement, Kind, LatencyDetail, Measurement, TestResult
from modelperf.store.history import HistoryStore, RunInfo
from modelperf.vocab import Verdict
from tests.postgres import postgres_server, postgres_url  # noqa: F401
from tests.report.report_data import page_figures

HW = "x86_64-linux-abc123"
OTHER_HW = "arm64-darwin-def456"
LATENCY = "tests/test_models.py::test_latency"
MEMORY = "tests/test_models.py::test_memory"
RUN_IDS = ["aaaa1111" + "0" * 24, "aaaa2222" + "0" * 24, "bbbb3333" + "0" * 24]
BASELINE_SAVED = "2025-01-02T12:00:00+00:00"  # between the second and the third run


def _figures(day: int) -> list[TestResult]:
    """Latency grows 10 % a day (the third run is flagged), memory stays flat."""
    median = 0.010 * 1.1 ** (day - 1)
    verdict = "regressed" if day == 3 else "pass"
    return [
        _judged(Measurement(LATENCY, Kind.LATENCY, "median", "s", median, (median,) * 3), verdict),
        _judged(Measurement(LATENCY, Kind.LATENCY, "p95", "s", median * 1.5, (median * 1.5,) * 3), "pass"),
        _judged(Measurement(MEMORY, Kind.MEMORY, "peak", "bytes", 300 * 2**20), "pass"),
    ]


def _fill(location: str) -> str:
    with HistoryStore(location) as history:
        for day, run_id in enumerate(RUN_IDS, start=1):
            run = RunInfo(run_id, f"2025-01-0{day}T00:00:00+00:00", HW, commit=f"c0ffee{day}", dirty=day == 3)
            history.append(run, _figures(day))
    return location


@pytest.fixture
def store(tmp_path: Path) -> str:
    return _fill(str(tmp_path / "history.sqlite"))


@pytest.fixture
def baseline_dir(tmp_path: Path) -> Path:
    """The JSON layout baselines.py writes: <root>/<hardware>/<module-slug>.json."""
    root = tmp_path / "baselines"
    (root / HW).mkdir(parents=True)
    records = {
        r.measurement.key: {**r.measurement.to_json(), "commit": "c0ffee2", "dirty": False, "saved_at": BASELINE_SAVED}
        for r in _figures(2)
    }
    document = {"schema": 2, "hardware_id": HW, "records": records}
    (root / HW / "tests__test_models.json").write_text(json.dumps(document), encoding="utf-8")
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _data_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", line)]


def test_history_shows_every_point_of_every_metric(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["history", "--history", store], capsys)
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        f"{LATENCY}  median  [{HW}]",
        f"{LATENCY}  p95  [{HW}]",
        f"{MEMORY}  peak  [{HW}]",
    ]
    assert all(len(_data_lines(block)) == 3 for block in blocks)
    median = _data_lines(blocks[0])
    assert median[0].split()[2:] == ["aaaa1111", "c0ffee1", "10.0", "ms", "-", "pass"]
    assert median[2].split()[2:] == ["bbbb3333", "c0ffee3+dirty", "12.1", "ms", "+10.0", "%", "regressed"]
    assert "300.0 MiB" in blocks[2] and "+0.0 %" in blocks[2]


def test_history_reads_a_postgresql_url(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    url = _fill(str(request.getfixturevalue("postgres_url")))
    code, out, _ = _run(["history", "--history", url, "--metric", "median"], capsys)
    assert code == 0 and len(_data_lines(out)) == 3


def test_history_filters_and_limit_keep_the_change_to_the_hidden_point(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        ["history", "--history", store, "--test", "latency", "--metric", "median", "--limit", "1"], capsys
    )
    assert code == 0
    (line,) = _data_lines(out)
    assert "bbbb3333" in line and "+10.0 %" in line


def test_history_location_comes_from_the_environment_then_the_default(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELPERF_HISTORY", store)
    assert _run(["history"], capsys)[0] == 0
    monkeypatch.delenv("MODELPERF_HISTORY")
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["history"], capsys)
    assert code == 2 and "There is no history store at .modelperf/history.sqlite" in err
    default = tmp_path / ".modelperf" / "history.sqlite"
    default.parent.mkdir()
    Path(store).rename(default)
    assert _run(["history"], capsys)[0] == 0


def test_report_writes_one_self_contained_html_page(
    store: str, tmp_path: Path, baseline_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain, marked = tmp_path / "plain.html", tmp_path / "out" / "marked.html"
    assert _run(["report", "--history", store, "--html", str(plain)], capsys)[0] == 0
    argv = ["report", "--history", store, "--html", str(marked), "--baseline-dir", str(baseline_dir)]
    assert _run(argv, capsys)[0] == 0
    page = marked.read_text(encoding="utf-8")
    figures = page_figures(page)
    assert len(figures) == 3  # one trend chart per test and metric on the one hardware
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", page), "nothing may load from elsewhere"
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js itself is in the page
    assert 'class="regressed"' in page and "Baseline 11.00 ms saved 2025-01-02 12:00:00" in page
    names = [[str(trace.get("name")) for trace in figure["data"]] for figure in figures.values()]
    assert "baseline 11.00 ms" in names[0], "the baseline must be drawn on the chart"
    assert not any(name.startswith("baseline") for trace in page_figures(plain.read_text()).values()
                   for name in (str(t.get("name")) for t in trace["data"]))


def test_report_writes_a_markdown_summary_of_the_latest_run(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "summary.md"
    code, out, _ = _run(["report", "--history", store, "--markdown", str(target)], capsys)
    assert code == 0 and str(target) in out
    summary = target.read_text(encoding="utf-8")
    assert f"## {HW}" in summary and "Run `bbbb3333`" in summary
    assert f"| `{LATENCY}` | median | 12.1 ms | +10.0 % | **regressed** |" in summary
    assert f"| `{MEMORY}` | peak | 300.0 MiB | +0.0 % | pass |" in summary
    assert "3 figures, 1 regressed." in summary
    code, out, _ = _run(["report", "--history", store], capsys)
    assert code == 0 and out.strip() == summary.strip()


def test_compare_two_runs_side_by_side(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["compare", "previous", "latest", "--history", store], capsys)
    assert code == 0
    assert out.splitlines()[0].split() == [
        "test",
        "metric",
        "run",
        "aaaa2222",
        "run",
        "bbbb3333",
        "ratio",
        "change",
    ]
    (median,) = [line for line in out.splitlines() if " median " in line]
    assert median.split()[-3:] == ["1.100x", "+10.0", "%"]
    assert _run(["compare", "aaaa1", "BBBB", "--history", store], capsys)[1].count("1.210x") == 2


def test_compare_a_run_with_the_baselines(store: str, baseline_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["compare", "latest", "--baseline-dir", str(baseline_dir), "--history", store], capsys)
    assert code == 0 and "baseline" in out.splitlines()[0]
    (median,) = [line for line in out.splitlines() if " median " in line]
    assert "11.0 ms" in median and "12.1 ms" in median and "1.100x" in median


def test_baselines_lists_hardware_and_records(baseline_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["baselines", "--baseline-dir", str(baseline_dir)], capsys)
    assert code == 0
    assert out.splitlines()[2].split() == [HW, "3", "2", "2025-01-02", "12:00:00", "2025-01-02", "12:00:00"]
    code, out, _ = _run(["baselines", "--baseline-dir", str(baseline_dir), "--hardware", HW], capsys)
    assert code == 0 and len(out.splitlines()) == 2 + 3 and "c0ffee2" in out


def test_baselines_preview_shows_what_a_save_of_the_run_would_change(
    store: str, baseline_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["baselines", "--baseline-dir", str(baseline_dir), "--preview-run", "latest", "--history", store]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert f"changed {LATENCY}::median 0.011 -> 0.0121 (+10.0 %)" in out
    assert f"{MEMORY}::peak" not in out  # unchanged figures are not part of the diff
    argv[argv.index("latest")] = "aaaa2"
    assert "would change nothing" in _run(argv, capsys)[1]


def _garbage(tmp_path: Path) -> str:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    return str(path)


def _empty(tmp_path: Path) -> str:
    path = tmp_path / "empty.sqlite"
    HistoryStore(path).close()
    return str(path)


ERRORS = [
    (
        ["history", "--history", "{missing}"],
        "There is no history store at {missing}: run `pytest --benchmark`",
    ),
    (["history", "--history", "{empty}"], "History store {empty} holds no runs: run `pytest --benchmark`"),
    (
        ["history", "--history", "{garbage}"],
        "History store {garbage} cannot be read or written (file is not a",
    ),
    (
        ["history", "--history", "{store}", "--test", "nope"],
        "No test id in history store {store} contains 'nope'",
    ),
    (
        ["history", "--history", "{store}", "--metric", "p99"],
        "holds no metric 'p99': use one of median, p95, peak.",
    ),
    (
        ["history", "--history", "{store}", "--hardware", "hw-x"],
        f"no runs of hardware 'hw-x': pick one of {HW}",
    ),
    (
        ["compare", "zzz", "latest", "--history", "{store}"],
        "holds no run 'zzz': `modelperf history` shows run ids",
    ),
    (
        ["compare", "aaaa", "latest", "--history", "{store}"],
        "Run prefix 'aaaa' matches 2 runs in {store}: give more",
    ),
    (["compare", "latest", "--history", "{store}"], "Compare takes two runs, or one run with --baseline-dir"),
    (
        ["compare", "latest", "--baseline-dir", "{tmp}/none", "--history", "{store}"],
        "Baseline directory {tmp}/none ",
    ),
    (
        ["compare", "latest", "--baseline-dir", "{tmp}", "--history", "{store}"],
        f"no baselines for hardware '{HW}'",
    ),
    (
        ["baselines", "--baseline-dir", "{tmp}/none"],
        "Baseline directory {tmp}/none does not exist: run `pytest",
    ),
    (["baselines", "--baseline-dir", "{tmp}"], "Baseline directory {tmp} holds no baselines: run `pytest"),
    (
        ["baselines", "--baseline-dir", "{baselines}", "--hardware", "hw-x"],
        "no baselines for hardware 'hw-x' under",
    ),
    (["baselines", "--baseline-dir", "{broken}"], "is not valid JSON (line 1, column 2)"),
]


@pytest.mark.parametrize(("argv", "expected"), ERRORS, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(ERRORS)])
def test_each_error_is_one_sentence_and_exit_status_2(
    argv: list[str],
    expected: str,
    store: str,
    baseline_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = tmp_path / "broken"
    (broken / HW).mkdir(parents=True)
    (broken / HW / "tests__test_models.json").write_text("{oops", encoding="utf-8")
    places = {
        "missing": str(tmp_path / "missing.sqlite"),
        "empty": _empty(tmp_path),
        "garbage": _garbage(tmp_path),
        "store": store,
        "tmp": str(tmp_path),
        "baselines": str(baseline_dir),
        "broken": str(broken),
    }
    code, out, err = _run([arg.format(**places) for arg in argv], capsys)
    assert code == 2 and out == ""
    assert expected.format(**places) in err
    assert err.count("\n") == 1 and "Traceback" not in err and err.rstrip().endswith(".")


def test_newer_schema_is_an_error_not_a_traceback(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    with sqlite3.connect(store) as conn:
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    code, _, err = _run(["history", "--history", store], capsys)
    assert code == 2 and "(schema 3, this one reads up to 2): upgrade pytest-modelperf" in err


@pytest.mark.parametrize("command", ["history", "report", "compare", "baselines"])
def test_each_subcommand_help_names_its_defaults(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "MODELPERF_HISTORY" in out and ".modelperf/history.sqlite" in out
    entries = out.split("options:")[1].split("\n  -")[1:]
    assert len(entries) >= 2, "the subcommand offers options"
    for entry in entries:
        if not entry.startswith(("h, --help", "-history")):
            assert "default" in entry, f"{command}: -{entry.split()[0]} does not document its default"


def test_export_copies_every_run_once(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = str(tmp_path / "copy" / "history.sqlite")
    code, out, _ = _run(["export", "--history", store, "--to", target], capsys)
    assert code == 0 and out.startswith("Copied 3 runs from ") and "(0 were there already)" in out
    with HistoryStore(store) as source, HistoryStore(target) as copy:
        assert copy.runs() == source.runs()
        assert all(copy.measurements(r.run_id) == source.measurements(r.run_id) for r in source.runs())
    again = _run(["export", "--history", store, "--to", target], capsys)
    assert again[0] == 0 and "Copied 0 runs" in again[1] and "(3 were there already)" in again[1]


@pytest.mark.parametrize("order", [["latest", "previous"], ["previous", "latest"]])
def test_compare_shows_the_newer_runs_change_against_the_older_whatever_the_order(
    store: str, capsys: pytest.CaptureFixture[str], order: list[str]
) -> None:
    code, out, _ = _run(["compare", *order, "--history", store], capsys)
    assert code == 0
    assert out.splitlines()[0].split()[2:6] == ["run", "aaaa2222", "run", "bbbb3333"]  # older, then newer
    (median,) = [line for line in out.splitlines() if " median " in line]
    assert median.split()[-3:] == ["1.100x", "+10.0", "%"]  # the latency grew from the older run to the newer
    assert out.splitlines()[-1] == (
        "Change: the newer run bbbb3333 (2025-01-03 00:00:00) against the reference, the older run aaaa2222 "
        "(2025-01-02 00:00:00).")


def test_report_names_each_hardware_once_per_section_not_on_every_row(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "r.html"
    assert _run(["report", "--history", store, "--html", str(page)], capsys)[0] == 0
    text = page.read_text()
    assert f"<td>{HW}</td>" not in text
    assert text.count(f'<h3 class="hardware">Hardware {HW}</h3>') == 1


# ------------------------------------------------------------------------------------------- spread


def _spread_store(path: Path, offsets: dict[str, list[float]]) -> str:
    """Sessions of one latency test: per commit, one session per offset (its corrected figure's log),
    each with a control floor of 5 ms, so the plain figure carries the offset."""
    location = str(path / "spread.sqlite")
    with HistoryStore(location) as history:
        minute = 0
        for commit, logs in offsets.items():
            for log in logs:
                minute += 1
                value = 0.020 * float(np.exp(log))
                m = Measurement(LATENCY, Kind.LATENCY, "p10_s", "s", value, (value,) * 20, (0.005,) * 12,
                                latency=LatencyDetail("p10"))
                history.append(RunInfo(f"{minute:032x}", f"2025-02-01T00:{minute:02d}:00+00:00", HW, commit=commit),
                               [m])
    return location


def test_spread_pools_sessions_of_one_commit_and_suggests_a_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two commits 20 % apart: pooled within commits, the spread is that of the sessions around
    # their own commit's mean (sd 0.02 here), not the 20 % step between them.
    logs = [-0.02, 0.0, 0.02]
    store = _spread_store(tmp_path, {"c1": logs, "c2": [x + 0.18 for x in logs]})
    code, out, _ = _run(["spread", "--history", store], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if LATENCY in line)
    # A stored verdict uses the upper 80 % bound of that sd over 4 degrees of freedom: x1.56 of it.
    assert row.split()[-7:] == ["p10", "6", "2", "2.00", "%", "3.12", "%"]
    assert f"{HW}: largest latency spread 2.00 % ({LATENCY}); `--session-spread 0.020` would set that one value" in out


def test_spread_lists_served_figures_but_suggests_one_value_from_latency_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A served median that moves 30 % between sessions is listed with its own spread; one value for every
    # test is still the largest latency spread, which a served figure's would blunt.
    store = _spread_store(tmp_path, {"c1": [-0.02, 0.0, 0.02, 0.0, 0.01]})
    with HistoryStore(store) as history:
        for index, log in enumerate([-0.3, 0.0, 0.3, 0.1, -0.1]):
            value = 0.5 * float(np.exp(log))
            detail = LoadDetail("Poisson 2/s (seed 0)", "http://127.0.0.1", 10.0, 20, 20, 0, 2.0, 20.0)
            served = Measurement("t.py::test_served", Kind.LOAD, "e2e_p50", "s", value, (value,) * 20, load=detail)
            history.append(RunInfo(f"{index + 100:032x}", f"2025-02-02T00:{index:02d}:00+00:00", HW, commit="c1"),
                           [served])
    code, out, _ = _run(["spread", "--history", store], capsys)
    assert code == 0
    row = next(line for line in out.splitlines() if "test_served" in line)
    assert row.split()[2:5] == ["e2e_p50", "5", "1"]
    assert f"{HW}: largest latency spread" in out and f"({LATENCY})" in out and "test_served)" not in out


def test_spread_says_how_many_sessions_are_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _spread_store(tmp_path, {"c1": [0.0, 0.01], "c2": [0.0]})
    code, out, _ = _run(["spread", "--history", store], capsys)
    assert code == 0
    assert "- (needs 3 more)" in out
    assert "No latency test has enough repeated sessions yet (5 of one commit, or 3 of each of two)" in out


def test_spread_without_latency_figures_is_one_sentence(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["spread", "--history", store, "--test", "no_such_test"], capsys)
    assert code == 2 and not out
    assert err.startswith("modelperf spread: History store ")
    assert "holds no stored-mode latency figure with control rounds and no stored-mode load figure" in err
    assert "for tests containing 'no_such_test'" in err and err.count("\n") == 1


def _judged(measurement: Measurement, verdict: str) -> TestResult:
    return TestResult(measurement, Judgement(Verdict(verdict), ""))
