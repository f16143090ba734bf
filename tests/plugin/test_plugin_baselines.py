"""What a session may do to stored baselines, seen from the outside: only ``--baseline-save`` replaces a
record, a partial or interrupted run removes none, and a bad location or record is one sentence at start.

The inner tests use the accuracy stand-in model (deterministic, no torch): an environment variable
changes its weights key (a record that is then not compared) or the answers it gets wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, RUN, STAND_IN, _write_dataset

TWO_TESTS = STAND_IN + """
    @pytest.mark.accuracy
    def test_1(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)

    @pytest.mark.accuracy
    def test_2(accuracy, sentiment_data):
        if os.environ.get("MODELPERF_TEST_INTERRUPT"):
            raise KeyboardInterrupt  # Ctrl-C while the second test runs
        accuracy.evaluate(StandIn(), sentiment_data)
"""
KEY_1, KEY_2 = "test_acc.py::test_1::accuracy", "test_acc.py::test_2::accuracy"


def _record_file(pytester: pytest.Pytester) -> Path:
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    return path


def _records(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    records: dict[str, dict[str, object]] = json.loads(_record_file(pytester).read_text())["records"]
    return records


def _first_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> bytes:
    for name in (FLIPS, KEY, "MODELPERF_TEST_INTERRUPT"):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=TWO_TESTS)
    pytester.runpytest(*RUN).assert_outcomes(passed=2)
    assert sorted(_records(pytester)) == [KEY_1, KEY_2]
    return _record_file(pytester).read_bytes()


def _usage_error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    return error


def test_a_record_that_is_not_compared_survives_a_run_without_baseline_save_byte_for_byte(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _first_run(pytester, monkeypatch)
    monkeypatch.setenv(KEY, "stand-in@ba9876543210")  # other weights, and far worse answers
    monkeypatch.setenv(FLIPS, "60")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=2)
    assert _record_file(pytester).read_bytes() == before
    result.stdout.fnmatch_lines([
        "*the baseline was measured with other weights*not compared; run with --baseline-save to replace it*",
        ("kept test_acc.py::test_1::accuracy 0.9: this run's 0.6 was not compared with it, so it was not written "
         "over it; run with --baseline-save to replace it"),
    ])
    assert "changed" not in result.stdout.str()


def test_a_new_test_is_still_recorded_beside_a_record_that_is_kept(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_run(pytester, monkeypatch)
    old = _records(pytester)
    pytester.makepyfile(test_acc=TWO_TESTS + """
    @pytest.mark.accuracy
    def test_3(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
""")
    monkeypatch.setenv(KEY, "stand-in@ba9876543210")
    result = pytester.runpytest(*RUN)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["added test_acc.py::test_3::accuracy"])
    new = _records(pytester)
    assert sorted(new) == [KEY_1, KEY_2, "test_acc.py::test_3::accuracy"]
    assert {KEY_1: new[KEY_1], KEY_2: new[KEY_2]} == old


@pytest.mark.parametrize("select", [("-k", "test_1"), ("test_acc.py::test_1",)], ids=["-k", "node id"])
def test_a_partial_save_replaces_only_what_it_measured(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, select: tuple[str, ...]
) -> None:
    _first_run(pytester, monkeypatch)
    old = _records(pytester)
    monkeypatch.setenv(FLIPS, "20")
    result = pytester.runpytest(*RUN, "--baseline-save", *select)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["changed test_acc.py::test_1::accuracy 0.9 -> 0.8 (-11.1 %)"])
    assert "removed" not in result.stdout.str()
    new = _records(pytester)
    assert new[KEY_2] == old[KEY_2] and new[KEY_1]["value"] == pytest.approx(0.8)


def test_ctrl_c_mid_run_with_baseline_save_keeps_the_records_of_tests_that_did_not_finish(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _first_run(pytester, monkeypatch)
    old = _records(pytester)
    monkeypatch.setenv(FLIPS, "20")
    monkeypatch.setenv("MODELPERF_TEST_INTERRUPT", "1")
    # no_reraise_ctrlc: the inner session's Ctrl-C must end that session, not this one.
    result = pytester.runpytest_inprocess(*RUN, "--baseline-save", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["changed test_acc.py::test_1::accuracy 0.9 -> 0.8 (-11.1 %)", "*KeyboardInterrupt*"])
    assert "removed" not in result.stdout.str()
    assert _records(pytester)[KEY_2] == old[KEY_2]


INTERRUPT_SAVE = """
    import modelperf.store.baselines as baselines

    _real = baselines.atomic_write_text

    def _interrupted(path, text):
        if path.name == "test_acc.json":
            raise KeyboardInterrupt  # Ctrl-C while the records file is written
        _real(path, text)

    def pytest_configure(config):
        baselines.atomic_write_text = _interrupted

    def pytest_unconfigure(config):
        baselines.atomic_write_text = _real
"""


def test_ctrl_c_during_a_save_prints_one_sentence_and_the_summary_and_leaves_the_files_whole(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _first_run(pytester, monkeypatch)
    pytester.makeconftest(INTERRUPT_SAVE)
    monkeypatch.setenv(FLIPS, "20")
    result = pytester.runpytest(*RUN, "--baseline-save")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*modelperf*",
        ("baselines NOT fully written: interrupted while saving under *; every file there is whole, either as it "
         "was or as this run saved it"),
    ])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert _record_file(pytester).read_bytes() == before


@pytest.mark.parametrize("save", [(), ("--baseline-save",)], ids=["compare", "save"])
def test_a_baseline_dir_that_is_a_file_is_an_error_at_session_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, save: tuple[str, ...]
) -> None:
    _first_run(pytester, monkeypatch)
    (pytester.path / "notadir").write_text("keep me\n")
    result = pytester.runpytest(*RUN, "--baseline-dir", "notadir", *save)
    error = _usage_error(result)
    assert "The baseline directory notadir cannot hold baselines because notadir is a file: point --baseline-dir at a folder" in error
    assert "saved as the new baseline" not in result.stdout.str()
    assert (pytester.path / "notadir").read_text() == "keep me\n"


def test_accuracy_output_that_is_a_directory_is_an_error_naming_the_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _first_run(pytester, monkeypatch)
    (pytester.path / "out").mkdir()
    result = pytester.runpytest(*RUN, "--accuracy-output", "out")
    error = _usage_error(result)
    assert "--accuracy-output " in error and "out is a directory, and it takes a file" in error
    assert _record_file(pytester).read_bytes() == before


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"samples": None}, "whose field 'samples' is missing or empty, but accuracy records are compared"),
        ({"samples": [-1.0] * 200}, "whose samples hold a value other than 0 or 1"),
        ({"kind": "latency", "samples": [-0.01, -0.02, -0.03], "metric": "p10_s", "unit": "s"},
         "whose samples or control hold a value that is not positive"),
    ],
    ids=["no samples", "negative accuracy samples", "negative latency samples"],
)
def test_a_record_decide_cannot_use_is_refused_at_start_naming_file_and_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, change: dict[str, object], problem: str
) -> None:
    _first_run(pytester, monkeypatch)
    path = _record_file(pytester)
    document = json.loads(path.read_text())
    record = document["records"].pop(KEY_2)
    record.update({k: v for k, v in change.items() if v is not None})
    for name in [k for k, v in change.items() if v is None]:
        record.pop(name)
    key = f"test_acc.py::test_2::{record['metric']}"
    document["records"][key] = record
    path.write_text(json.dumps(document))
    before = path.read_bytes()
    result = pytester.runpytest(*RUN)
    error = _usage_error(result)
    relative = path.relative_to(pytester.path)
    assert f"Baseline file {relative} has a record {key!r} {problem}" in error
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert path.read_bytes() == before


def test_a_bare_postgresql_history_url_is_one_note_and_the_summary_still_prints(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("psycopg2")
    before = _first_run(pytester, monkeypatch)
    args = [a for a in RUN if a not in ("--history", "off")]
    result = pytester.runpytest(*args, "--history", f"postgresql://nobody@/x?host={pytester.path}&port=1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*modelperf*", "history NOT written: History store postgresql+psycopg2://* cannot be*"])
    assert "ModuleNotFoundError" not in result.stdout.str() + result.stderr.str()
    assert _record_file(pytester).read_bytes() == before


def test_history_keeps_what_each_verdict_was_made_on(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelperf.report.series import verdict_change
    from modelperf.store.history import HistoryStore

    _first_run(pytester, monkeypatch)
    monkeypatch.setenv(FLIPS, "1")
    args = [a for a in RUN if a not in ("--history", "off")]
    pytester.runpytest(*args, "--history", "h.sqlite").assert_outcomes(passed=2)
    with HistoryStore(str(pytester.path / "h.sqlite")) as store:
        rows = store.series(test="test_1")
    assert [r.judgement.reference if r.judgement else None for r in rows] == [pytest.approx(0.9)]
    assert verdict_change(rows[0]) == "-0.6% vs baseline"
