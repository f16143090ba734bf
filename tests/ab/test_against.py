"""``pytest --benchmark --against REF``, as users meet it: an inner git repository, a commit as the
base, the working tree as the change, and real worker processes of both sides (see tests/ab/helpers.py).

Most tests read one of two shared sessions (tests/ab/conftest.py): ``changed``, whose change differs
from its base in every way a test can, and ``clean``, started in a subdirectory, where nothing
measured changed.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.ab.helpers import Session

Shared = tuple[Session, Path]


def test_same_code_on_both_sides_passes_with_both_figures_and_a_markdown_summary(clean: Shared) -> None:
    session, _ = clean
    assert session.ret == pytest.ExitCode.OK, session.output
    session.lines.fnmatch_lines(["*this change against HEAD (*), measured side by side*",
                                 "*test*metric*change*base*change/base (95% CI)*verdict*"])
    assert "p10_s" in session.row("test_spin") and session.row("test_spin").endswith("pass"), session.output


def test_the_markdown_summary_names_the_base_and_the_paired_ratio(clean: Shared) -> None:
    _, folder = clean
    markdown = (folder / "repo" / "summary.md").read_text()  # --summary-markdown is relative to the rootdir
    assert "this change against `HEAD (" in markdown and "| change/base (95% CI) |" in markdown


def test_started_from_a_subdirectory_the_same_tests_are_compared(clean: Shared) -> None:
    session, _ = clean
    assert session.row("test_spin").endswith("pass"), session.output  # not "new test": the ids matched


def test_new_and_removed_tests_are_listed_not_compared_and_do_not_fail_the_gate(clean: Shared) -> None:
    session, _ = clean
    assert session.ret == pytest.ExitCode.OK, session.output
    assert "not_compared" in session.row("test_new"), session.output
    session.lines.fnmatch_lines(["*new test: not in HEAD (*), so nothing to compare with*",
                                 "*removed since HEAD (*) (on the base side only, not compared): sub/test_old.py::test_old*"])


def test_an_against_run_leaves_nothing_in_the_temporary_directory(clean: Shared) -> None:
    session, folder = clean
    assert session.ret == pytest.ExitCode.OK, session.output
    assert list((folder / "tmp").iterdir()) == []


def test_a_slower_change_fails_with_a_one_line_verdict(changed: Shared) -> None:
    session, _ = changed
    assert session.ret == pytest.ExitCode.TESTS_FAILED
    session.lines.fnmatch_lines(["*test_slower.py R*",
                                 ("*p10_s: median * -> * (side-by-side p10 x*, 95% CI *, * blocks, look *): "
                                  "slower, past the alarm line x1.030 of the 5 % minimum effect*"),
                                 "*REGRESSED test_slower.py::test_slower*"])


def _verdict_line(folder: Path, test_id: str) -> str:
    results = json.loads((folder / "results.json").read_text())["results"]
    return next(str(r["judgement"]["line"]) for r in results if r["measurement"]["test_id"] == test_id)


def test_the_same_code_passes_at_its_first_look_and_says_so(changed: Shared) -> None:
    session, folder = changed
    assert session.row("test_spin").endswith("pass"), session.output
    assert "3 of up to 18 blocks, look 1: its 90 % interval inside 70 % of the minimum effect" in _verdict_line(
        folder, "test_same.py::test_spin")


def test_a_test_whose_pass_outlasts_the_budget_gets_one_pass_and_says_so(clean: Shared) -> None:
    session, folder = clean
    session.lines.fnmatch_lines([("*sub/test_spin.py::test_spin: a pass over the 3 processes takes about * s, so a "
                                 "close call gets at most 1 of 6 passes (--against-budget 0.001 s)*")])
    results = json.loads((folder / "repo" / "results.json").read_text())["results"]
    spin = next(r for r in results if r["measurement"]["test_id"] == "sub/test_spin.py::test_spin")
    assert spin["measurement"]["latency"]["paired"]["passes"] == 1
    assert "3 of up to 3 blocks, look 1" in spin["judgement"]["line"]


@pytest.mark.parametrize(("side", "test", "outcome"), [("base", "crash_base", "PASSED"),
                                                       ("change", "crash_change", "FAILED")])
def test_a_side_whose_worker_dies_is_one_sentence(changed: Shared, side: str, test: str, outcome: str) -> None:
    session, _ = changed
    session.lines.fnmatch_lines([(f"*the {side} side's worker process 0 (*) died with SIGSEGV (signal 11) while "
                                  f"running test_{test}.py::test_{test}*full log: *"),
                                 f"{outcome} test_{test}.py::test_{test}*"])


@pytest.mark.parametrize(("test", "figures"), [("acc_same", "1.000*1.000*pass"),
                                               ("acc_worse", "0.850*1.000*regressed")])
def test_accuracy_is_compared_example_by_example(changed: Shared, test: str, figures: str) -> None:
    session, _ = changed
    session.lines.fnmatch_lines([f"test_{test}*accuracy*{figures}*"])
    session.lines.fnmatch_lines(["*McNemar*"])


def test_peak_memory_compares_each_side_from_a_fresh_process(changed: Shared) -> None:
    session, _ = changed
    session.lines.fnmatch_lines(["test_mem_grow*memray_peak_bytes*regressed*", "*each from a fresh worker process*"])


@pytest.mark.parametrize(("test", "verdict"), [("ppl_same", "pass"), ("ppl_worse", "regressed")])
def test_a_perplexity_figure_is_judged_side_by_side(changed: Shared, test: str, verdict: str) -> None:
    session, _ = changed
    session.lines.fnmatch_lines([f"test_{test}*perplexity*{verdict}*"])


def test_a_figure_of_an_unmarked_test_is_listed_not_compared_with_the_reason(changed: Shared) -> None:
    session, _ = changed
    session.lines.fnmatch_lines(["*the test has no modelperf marker, so --against ran it on this side only*"])


def test_a_run_that_measures_nothing_is_not_compared_not_an_internal_error(changed: Shared) -> None:
    session, _ = changed
    assert "INTERNALERROR" not in session.output
    assert "pass" not in session.row("test_nothing")  # nothing measured on the change: no verdict


def test_a_base_side_whose_test_module_fails_to_import_fails_the_gate(changed: Shared) -> None:
    session, _ = changed
    assert session.ret == pytest.ExitCode.TESTS_FAILED
    assert "not_compared" in session.row("test_broken"), session.output
    session.lines.fnmatch_lines([
        "*the base side's tests failed to import*",
        ("*test(s) not compared because of the base side (*test_broken.py::test_broken*): the gate did not judge "
         "them, so the session fails; fix what fails on HEAD (*) or choose another --against REF*"),
    ])


@pytest.mark.skipif((psutil.cpu_count(logical=False) or 1) < 2, reason="one physical core: the sides' untimed "
                    "runs take turns there, as two model threads would share one core")
@pytest.mark.parametrize("kind", ["memory", "accuracy"])
def test_untimed_figures_are_measured_on_both_sides_at_once(changed: Shared, kind: str) -> None:
    session, folder = changed
    assert (folder / f"{kind}-base.met").read_text() == "True", session.output
    assert (folder / f"{kind}-change.met").read_text() == "True", session.output
    assert "pass" in session.row(f"test_meet_{kind}"), session.output


def _paced_calls(folder: Path) -> list[tuple[float, float, str, str]]:
    """(start, end, side, process) of every timed call of test_paced, in order."""
    return sorted((float(start), float(end), side, pid) for side, pid, start, end in
                  (line.split() for line in (folder / "paced.log").read_text().splitlines()))


def test_the_two_sides_take_turns_and_never_run_at_once(changed: Shared) -> None:
    _, folder = changed
    calls = _paced_calls(folder)
    assert {side for *_, side, _ in calls} == {"base", "change"}
    for (_, end, side, pid), (start, _, next_side, next_pid) in itertools.pairwise(calls):
        assert end <= start or pid == next_pid, f"{side} {pid} and {next_side} {next_pid} ran at the same time"
    # Within each block (one process of each side) the sides alternate call by call.
    switches = sum(a[2] != b[2] for a, b in itertools.pairwise(calls))
    assert switches >= len(calls) // 2, [side for *_, side, _ in calls]


def test_only_the_first_run_of_a_slow_test_makes_a_warm_up_call(changed: Shared) -> None:
    _, folder = changed
    calls_per_process = sorted(Counter(pid for *_, pid in _paced_calls(folder)).values())
    # 20 rounds for a call over 0.1 s, a third of them in each of 3 runs a side; one pass of 3 blocks,
    # where the sequential design stops a test that did not change.
    rounds = 7
    assert calls_per_process == [rounds] * 4 + [rounds + 1] * 2, calls_per_process
