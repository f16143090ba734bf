"""A write that fails after the tests ran fails the session: a baseline save or an output file on a folder
that is read-only or full exits non-zero with one sentence, never says "saved", and loses nothing.

Running as root, chmod cannot make a folder unwritable, so the inner conftest makes the disk refuse
through the one function every result file is created with (``modelperf.store.atomic.open_new``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.test_plugin_accuracy import FLIPS, KEY, RUN, STAND_IN, _write_dataset

TEST = STAND_IN + """
    @pytest.mark.accuracy
    def test_1(accuracy, sentiment_data):
        accuracy.evaluate(StandIn(), sentiment_data)
"""

# The disk refuses new files whose name contains MODELPERF_TEST_REFUSE (a comma-separated list), with the
# errno in MODELPERF_TEST_ERRNO; the start-up probe of a folder is refused too unless MODELPERF_TEST_LATE is set.
REFUSING_DISK = """
    import errno
    import os

    import modelperf.store.atomic as atomic

    _real = atomic.open_new

    def _refusing(path):
        names = [n for n in os.environ.get("MODELPERF_TEST_REFUSE", "").split(",") if n]
        late = os.environ.get("MODELPERF_TEST_LATE") and ".modelperf-write-check" in path.name
        if not late and any(n in str(path) for n in names):
            code = getattr(errno, os.environ.get("MODELPERF_TEST_ERRNO", "EROFS"))
            raise OSError(code, os.strerror(code), str(path))
        return _real(path)

    def pytest_configure(config):
        atomic.open_new = _refusing

    def pytest_unconfigure(config):
        atomic.open_new = _real
"""


def _record_file(pytester: pytest.Pytester) -> Path:
    [path] = (pytester.path / "baselines").rglob("test_acc.json")
    return path


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """A project whose first run recorded its baseline; the refusing disk is in place but refuses nothing yet."""
    for name in (FLIPS, KEY, "MODELPERF_TEST_REFUSE", "MODELPERF_TEST_LATE", "MODELPERF_TEST_ERRNO"):
        monkeypatch.delenv(name, raising=False)
    _write_dataset(pytester)
    pytester.makepyfile(test_acc=TEST)
    pytester.makeconftest(REFUSING_DISK)
    pytester.runpytest(*RUN).assert_outcomes(passed=1)
    return _record_file(pytester).read_bytes()


@pytest.mark.parametrize(("errno_name", "reason"), [("ENOSPC", "No space left on device"),
                                                     ("EROFS", "Read-only file system")])
def test_a_baseline_save_that_fails_after_the_tests_fails_the_session_and_never_says_saved(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, project: bytes, errno_name: str, reason: str
) -> None:
    monkeypatch.setenv("MODELPERF_TEST_REFUSE", ".test_acc.json.")
    monkeypatch.setenv("MODELPERF_TEST_LATE", "1")  # the disk fills up (or is remounted) during the run
    monkeypatch.setenv("MODELPERF_TEST_ERRNO", errno_name)
    monkeypatch.setenv(FLIPS, "20")
    result = pytester.runpytest(*RUN, "--baseline-save")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert "saved as the new baseline" not in output
    result.stdout.fnmatch_lines([
        "*NOT saved as a baseline: the save at the session's end failed*",
        f"baselines NOT written: Cannot write baseline * ({reason})*",
        "the session fails (exit status 1) because 1 of its files could not be written*",
    ])
    assert _record_file(pytester).read_bytes() == project
    assert not list(_record_file(pytester).parent.glob(".*.tmp"))


def test_a_first_baseline_that_cannot_be_recorded_fails_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, project: bytes
) -> None:
    pytester.makepyfile(test_new=TEST.replace("def test_1", "def test_2"))
    monkeypatch.setenv("MODELPERF_TEST_REFUSE", ".test_new.json.")
    result = pytester.runpytest(*RUN)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "recorded this run as its baseline" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*no baseline for hardware *: NOT saved as a baseline*"])
    assert not list((pytester.path / "baselines").rglob("test_new.json"))


def test_a_read_only_baseline_folder_stops_a_save_at_its_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, project: bytes
) -> None:
    monkeypatch.setenv("MODELPERF_TEST_REFUSE", str(pytester.path / "baselines"))
    result = pytester.runpytest(*RUN, "--baseline-save")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert "Cannot write baseline baselines/" in error and "(Read-only file system)" in error
    assert "choose another baseline directory" in error
    assert _record_file(pytester).read_bytes() == project


@pytest.mark.parametrize("option", ["--results-json", "--summary-markdown", "--accuracy-output"])
def test_an_output_file_that_cannot_be_written_fails_the_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, project: bytes, option: str
) -> None:
    (pytester.path / "out").mkdir()
    monkeypatch.setenv("MODELPERF_TEST_REFUSE", str(pytester.path / "out"))
    monkeypatch.setenv("MODELPERF_TEST_ERRNO", "ENOSPC")
    result = pytester.runpytest(*RUN, option, "out/file")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["could NOT write */out/file (No space left on device)*",
                                 "the session fails (exit status 1)*"])
    assert not (pytester.path / "out" / "file").exists()


def test_a_session_whose_writes_succeed_still_exits_0(pytester: pytest.Pytester, project: bytes) -> None:
    result = pytester.runpytest(*RUN, "--baseline-save", "--results-json", "results.json")
    assert result.ret == pytest.ExitCode.OK
    assert "NOT" not in result.stdout.str()
    assert json.loads((pytester.path / "results.json").read_text())["results"]
