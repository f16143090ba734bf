"""``--against`` never passes a gate it did not judge: a base side that fails to import its tests, a figure
measured on both sides but never compared, and the traces a run leaves in the temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.plugin.test_against import RUN, _commit, spin

# A perplexity test as the shipped suite writes it: no marker, the `accuracy` fixture records the figure.
PERPLEXITY = """
    from types import SimpleNamespace

    SCALE = {scale}

    def test_perplexity(accuracy):
        model = SimpleNamespace(info=SimpleNamespace(key="stand-in@0123456789ab"))
        accuracy.record_perplexity(model, SimpleNamespace(value=20.0 * SCALE, scored_tokens=500, chunks=1,
                                                          context=512))
"""


@pytest.fixture
def temp(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory of the inner sessions, outside the project (as a real one is)."""
    folder = pytester.path.with_name(pytester.path.name + "-tmp")
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def test_a_base_side_whose_test_module_fails_to_import_fails_the_gate(pytester: pytest.Pytester, temp: Path) -> None:
    pytester.makepyfile(test_spin=spin(5000) + "\nthis is not python\n")
    _commit(pytester)
    pytester.makepyfile(test_spin=spin(5000))  # the change fixes it; the base cannot be measured
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines([
        "*the base side's tests failed to import*",
        "*test_spin*not_compared*",
        ("*1 test(s) not compared because of the base side (test_spin.py::test_spin): the gate did not judge them, "
         "so the session fails; fix what fails on HEAD (*) or choose another --against REF*"),
    ])


def test_a_new_test_alone_does_not_fail_the_gate(pytester: pytest.Pytester, temp: Path) -> None:
    pytester.makepyfile(test_kept="def test_kept():\n    assert True\n")
    _commit(pytester)
    pytester.makepyfile(test_new=spin(5000))
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*new test: not in HEAD (*), so nothing to compare with*"])


@pytest.mark.parametrize(("scale", "verdict", "status"), [(1.0, "pass", pytest.ExitCode.OK),
                                                          (1.5, "regressed", pytest.ExitCode.TESTS_FAILED)])
def test_a_perplexity_figure_is_judged_side_by_side(
    pytester: pytest.Pytester, temp: Path, scale: float, verdict: str, status: pytest.ExitCode
) -> None:
    pytester.makepyfile(test_ppl=PERPLEXITY.format(scale=1.0))
    _commit(pytester)
    pytester.makepyfile(test_ppl=PERPLEXITY.format(scale=scale))  # the change alters how the text is scored
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.stdout.fnmatch_lines([f"test_perplexity*perplexity*{verdict}*"])
    assert result.ret == status, result.stdout.str()


def test_a_figure_of_an_unmarked_test_is_listed_not_compared_with_the_reason(
    pytester: pytest.Pytester, temp: Path
) -> None:
    source = """
        import pytest

        @pytest.fixture
        def recorder(request):
            from modelperf.pytest.plugin import get_hooks
            return get_hooks(request.config).instrument(request.node, "accuracy")

        def test_records(recorder):
            from modelperf.records import Kind, Measurement
            recorder.record(Measurement(
                "test_rec.py::test_records", Kind.ACCURACY, "perplexity", "ppl", 20.0, (20.0,), (), None))
    """
    pytester.makepyfile(test_rec=source)
    _commit(pytester)
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    result.stdout.fnmatch_lines(["*the test has no modelperf marker, so --against ran it on this side only*"])


def test_an_against_run_leaves_nothing_in_the_temporary_directory(pytester: pytest.Pytester, temp: Path) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    _commit(pytester)
    result = pytester.runpytest(*RUN, "--against", "HEAD")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert os.listdir(temp) == []


@pytest.mark.parametrize("count", ["0", "1", "2"])
def test_too_few_against_processes_says_3_from_the_start(pytester: pytest.Pytester, count: str) -> None:
    pytester.makepyfile(test_spin=spin(5000))
    result = pytester.runpytest("--benchmark", "--against", "HEAD", "--against-processes", count)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{count} worker processes per side are too few to judge*give 3 or more.*"])
    assert "at least 1" not in result.stderr.str()
