"""A model cache (``MODELPERF_CACHE``) that is a file or cannot be written stops the session at once, in one
sentence naming the variable and the fix, before any model is probed, converted or scored."""

from __future__ import annotations

from pathlib import Path

import pytest

MODEL_TEST = """
    def test_generates(llama):
        raise AssertionError("no model work may start with an unusable cache")
"""
REFUSING = """
    import errno
    import os

    import modelperf.store.atomic as atomic

    _real = atomic.open_new

    def _read_only(path):
        if str(path).startswith(os.environ["MODELPERF_CACHE"]):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return _real(path)

    def pytest_configure(config):
        atomic.open_new = _read_only

    def pytest_unconfigure(config):
        atomic.open_new = _real
"""
ARGS = ("--benchmark", "--history", "off", "--baseline-dir", "baselines")


def _one_sentence(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    [error] = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert "probing" not in result.stdout.str()
    return error


def test_a_cache_that_is_a_regular_file_is_one_sentence_at_the_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pytester.path / "cache"
    cache.write_text("not a folder\n")
    monkeypatch.setenv("MODELPERF_CACHE", str(cache))
    pytester.makepyfile(test_model=MODEL_TEST)
    error = _one_sentence(pytester.runpytest_subprocess(*ARGS))
    assert f"MODELPERF_CACHE={cache} is a file, and the model cache must be a folder: point MODELPERF_CACHE at a " \
           "writable folder" in error
    assert cache.read_text() == "not a folder\n"


def test_a_read_only_cache_is_one_sentence_at_the_start(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pytester.path / "cache"
    cache.mkdir()
    monkeypatch.setenv("MODELPERF_CACHE", str(cache))
    pytester.makepyfile(test_model=MODEL_TEST)
    pytester.makeconftest(REFUSING)
    error = _one_sentence(pytester.runpytest_subprocess(*ARGS))
    assert f"MODELPERF_CACHE={cache} cannot be written (Read-only file system): point MODELPERF_CACHE at" in error
    assert list(cache.iterdir()) == []


def test_a_session_without_model_tests_does_not_need_the_cache(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = pytester.path / "cache"
    cache.write_text("not a folder\n")
    monkeypatch.setenv("MODELPERF_CACHE", str(cache))
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    assert pytester.runpytest_subprocess(*ARGS).ret == pytest.ExitCode.OK


def test_a_missing_cache_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelperf.pytest.preflight import check_cache_folder

    monkeypatch.setenv("MODELPERF_CACHE", str(tmp_path / "new" / "cache"))
    check_cache_folder()
    assert (tmp_path / "new" / "cache").is_dir() and list((tmp_path / "new" / "cache").iterdir()) == []
