"""Stored results that are not what they seem: a NaN in a baseline, a file that is not a history store, a
history store another writer holds. Each is one sentence that names it, and nothing is written into it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelperf.cli import main
from tests.plugin.test_plugin_accuracy import FLIPS, KEY, RUN, STAND_IN, _write_dataset

TEST = STAND_IN + """
    @pytest.mark.accuracy
    def test_1(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (FLIPS, KEY):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=TEST)
    pytester.runpytest(*RUN).assert_outcomes(passed=1)
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    return path


@pytest.mark.parametrize("field", ["samples", "value"])
def test_a_nan_in_a_stored_baseline_is_named(pytester: pytest.Pytester, project: Path, field: str) -> None:
    document = json.loads(project.read_text())
    record = document["records"]["test_acc.py::test_1::accuracy"]
    if field == "samples":
        record["samples"][3] = float("nan")
    else:
        record["value"] = float("nan")
    project.write_text(json.dumps(document))  # Python writes NaN, as a hand edit or another tool may
    result = pytester.runpytest(*RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert f"field '{field}' holds NaN or an infinity" in error, error
    assert "test_acc.json" in error


def _foreign_sqlite(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE contacts (name TEXT)")
        connection.execute("INSERT INTO contacts VALUES ('someone')")
    connection.close()
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["empty file", "another program's SQLite"])
def test_modelperf_history_refuses_a_file_that_is_not_a_store_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "other.sqlite"
    if kind == "empty file":
        path.write_bytes(b"")
        before = b""
    else:
        before = _foreign_sqlite(path)
    assert main(["history", "--history", str(path)]) == 2
    error = capsys.readouterr().err
    assert f"{path} is not a pytest-modelperf history store (it has no modelperf tables), so it was left untouched" \
        in error
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("other.sqlite-*"))  # no journal or WAL files beside it either


def test_a_session_never_writes_its_history_into_another_programs_database(
    pytester: pytest.Pytester, project: Path
) -> None:
    path = pytester.path / "contacts.sqlite"
    before = _foreign_sqlite(path)
    result = pytester.runpytest(*[a for a in RUN if a not in ("--history", "off")], "--history", str(path))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "history NOT written: History store * holds tables that pytest-modelperf did not write*",
        "the session fails (exit status 1)*",
    ])
    with sqlite3.connect(path) as connection:
        tables = sorted(row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    connection.close()
    assert tables == ["contacts"] and before


def test_a_locked_history_store_says_it_waits_and_for_whom(pytester: pytest.Pytester, project: Path) -> None:
    store = pytester.path / "history.sqlite"
    first = pytester.runpytest(*[a for a in RUN if a not in ("--history", "off")], "--history", str(store))
    assert first.ret == pytest.ExitCode.OK
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, in this process, holds the write lock
    args = [a for a in RUN if a not in ("--history", "off")]
    session = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:randomly", *args, "--history", str(store)],
                               cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert session.stderr is not None
    try:
        deadline, waiting = time.monotonic() + 120, ""
        while time.monotonic() < deadline and "is locked by" not in waiting:
            waiting = session.stderr.readline()
            if not waiting and session.poll() is not None:
                break
        holder.execute("ROLLBACK")
        output, _ = session.communicate(timeout=120)
    finally:
        holder.close()
        session.kill()
        session.wait()
    assert f"the history store {store} is locked by process " in waiting, waiting
    assert "pytest" in waiting and "which is writing to it: waiting up to" in waiting
    assert session.returncode == pytest.ExitCode.OK, output
    assert "history: run " in output
